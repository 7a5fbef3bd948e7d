"""Read a model's response as actions, without ever raising.

Accepted, after taking the last ``<answer>...</answer>`` (or the text after ``</think>``), the
contents of ``<tool_call>`` tags or code fences, and the text after an ``Action:`` marker:

* canonical ``action_text`` lines, one action per line (bullets and numbering allowed);
* call-style lines with keyword or positional arguments, e.g. ``click(point='<point>120
  340</point>')`` or ``type(content='hi')`` (UI-TARS / GUI-R1 style);
* JSON: an object, a list of objects, one object per line, or ``{"actions": [...]}``; Python
  literals (single quotes) too; common key aliases (``action``/``action_type``,
  ``coordinate``, ``point``, ``bbox`` ...) and the Qwen ``computer_use``/``mobile_use`` calls;
* ``pyautogui`` code, read by :mod:`curate.actions.pyautogui` (pixels).

Coordinates are resolved for the whole response at once (``coords``): ``norm`` keeps them,
``grid1000`` divides by 1000, ``pixels`` divides by ``image_size``; ``auto`` keeps values that
are all within [0, 1], else reads them as pixels when ``image_size`` is known, and otherwise
fails with a reason (a 0-1000 grid and pixels cannot be told apart).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from curate.actions import ACTION_TYPES, POINTER_TYPES, Action, canonical_json, parse_action_text
from curate.errors import ActionParseError
from curate.rewards.presets import COORD_MODES

MAX_CHARS = 50_000  # longer responses are not actions; refusing keeps a reward call bounded
DIRECTIONS = frozenset({"up", "down", "left", "right"})


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The actions read (empty on failure), whether reading worked, and why not."""

    actions: list[Action]
    ok: bool
    reason: str
    format: str = ""


def parse_prediction(text: str, *, image_size: tuple[int, int] | None = None,
                     coords: str = "auto", keep_moves: bool = False) -> ParseResult:
    """Read ``text`` as a list of actions with coordinates normalised to [0, 1]. Never raises.

    ``keep_moves`` keeps a pyautogui ``moveTo`` that only aims the next click as a ``move``
    of its own (a reward sets it when the reference records moves, as OSWorld's does)."""
    if not isinstance(text, str):
        return _failed(f"expected the response as a string, got {type(text).__name__}")
    if coords not in COORD_MODES:
        return _failed(f"coords must be one of {sorted(COORD_MODES)}, got {coords!r}")
    if len(text) > MAX_CHARS:
        return _failed(f"response is {len(text)} characters; at most {MAX_CHARS} are read")
    try:
        return _parse(text, image_size, coords, keep_moves)
    except ActionParseError as error:
        return _failed(str(error))
    except Exception as error:  # a reward must never stop a training run over one odd sample
        return _failed(f"unreadable response ({type(error).__name__}: {error})")


def _failed(reason: str) -> ParseResult:
    return ParseResult([], False, reason)


def _parse(text: str, image_size: tuple[int, int] | None, coords: str,
           keep_moves: bool = False) -> ParseResult:
    body = extract_body(text)
    if not body.strip():
        raise ActionParseError("no actions found in the response")
    kind, actions = _read(body, keep_moves)
    if not actions:
        raise ActionParseError(f"no actions found in the {kind} response")
    if kind == "pyautogui" and coords == "auto" and image_size is None and _beyond_unit(actions):
        raise ActionParseError("pyautogui code uses screen pixels: pass the screenshot's "
                               "image_size [w, h] to normalise them")
    resolved = resolve_coordinates(actions, coords, image_size)
    return ParseResult(resolved, True, f"{len(resolved)} action(s) read as {kind}", kind)


_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n?(.*?)```", re.DOTALL)
_MARKER = re.compile(r"^[ \t]*(?:final[ \t]+)?actions?[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE)
_THINK_TAGS = re.compile(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*",
                         re.DOTALL | re.IGNORECASE)


def extract_body(text: str) -> str:
    """The part of a response that holds the actions."""
    answers: list[str] = _ANSWER.findall(text)
    body: str
    if answers:
        body = answers[-1]
    elif "<answer>" in text.lower():
        body = re.split(r"<answer>", text, flags=re.IGNORECASE)[-1]
    else:
        body = re.split(r"</think>", text, flags=re.IGNORECASE)[-1]
    calls: list[str] = _TOOL_CALL.findall(body)
    if calls:
        body = "\n".join(calls)
    fenced: list[str] = _FENCE.findall(body)
    if fenced:
        body = "\n".join(fenced)
    elif body.lstrip().startswith("```"):
        body = body.lstrip().partition("\n")[2]  # a fence the generation never closed
    markers = list(_MARKER.finditer(body))
    if markers:
        body = body[markers[-1].end():]
    return body.strip()


def answer_tags_ok(text: str) -> bool:
    """The whole response is ``<think>...</think><answer>...</answer>`` (GUI-R1's format)."""
    return isinstance(text, str) and _THINK_TAGS.fullmatch(text) is not None


def _read(body: str, keep_moves: bool = False) -> tuple[str, list[Action]]:
    if body[0] in "{[":
        loaded = _load_json_like(body)
        if loaded is not None:
            return "json", _actions_from_json(loaded)
        if body[0] == "[" and "{" not in body and body.rstrip().endswith("]"):
            body = body.strip()[1:-1]  # GUI-R1 wraps a call in brackets: [click(point=...)]
        elif body[0] == "{":
            lines = [line for line in body.splitlines() if line.strip()]
            return "json", [a for line in lines for a in _actions_from_json(_json_line(line))]
    if "pyautogui." in body:
        return "pyautogui", _read_pyautogui(body, keep_moves)
    return _read_lines(body)


def _load_json_like(text: str) -> Any:
    """JSON, else a Python literal (single quotes, True/None); None when it is neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _json_line(line: str) -> Any:
    loaded = _load_json_like(line.strip().rstrip(","))
    if loaded is None:
        raise ActionParseError(f"not JSON: {line.strip()[:60]!r}")
    return loaded


# -- JSON objects -------------------------------------------------------------------------------

_TYPE_KEYS = ("action_type", "action", "type", "actionType", "operation", "op", "event")
POINT_KEYS = ("coordinate", "coordinates", "point", "position", "pos", "start_box",
              "start_point", "start_coordinate", "start", "location", "xy", "bbox", "box",
              "from")
END_KEYS = ("coordinate2", "end_coordinate", "end_point", "end_box", "end", "end_position",
            "to")
TEXT_KEYS = ("text", "input_text", "content", "value", "typed_text", "message", "answer",
             "response")
KEY_KEYS = ("keys", "key", "hotkey", "combo", "key_comb")
AMOUNT_KEYS = ("amount", "pixels", "clicks", "distance", "duration", "time", "seconds", "t",
               "scroll_amount")
APP_KEYS = ("app", "app_name", "application", "package", "package_name")
URL_KEYS = ("url", "href", "link")
TOOL_NAME_KEYS = ("tool_name", "tool", "function", "name")
TOOL_ARGS_KEYS = ("tool_args", "args", "arguments", "parameters", "params", "input")


def _actions_from_json(value: Any) -> list[Action]:
    if isinstance(value, list):
        return [action for item in value for action in _actions_from_json(item)]
    if not isinstance(value, dict):
        raise ActionParseError(f"expected an action object, got {type(value).__name__}")
    return _actions_from_object(value)


def _actions_from_object(obj: dict[str, Any]) -> list[Action]:
    if isinstance(obj.get("actions"), list):
        return _actions_from_json(obj["actions"])
    arguments = obj.get("arguments")
    if isinstance(arguments, dict) and "action" in arguments:  # Qwen computer_use / mobile_use
        return _actions_from_object(arguments)
    nested = obj.get("action")
    if isinstance(nested, dict):
        return _actions_from_object({**{k: v for k, v in obj.items() if k != "action"},
                                     **nested})
    kind = next((obj[key] for key in _TYPE_KEYS if isinstance(obj.get(key), str)), None)
    if kind is None:
        if isinstance(obj.get("name"), str) and any(k in obj for k in TOOL_ARGS_KEYS):
            return [build_action("tool_call", obj)]
        raise ActionParseError("action object has no type; expected one of the keys "
                               f"{', '.join(_TYPE_KEYS[:3])}")
    return [build_action(kind, obj)]


# -- types --------------------------------------------------------------------------------------

def _aliases(target: str, *names: str, **implied: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    return dict.fromkeys(names, (target, implied))


_TYPE_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    **_aliases("click", "tap", "left_click", "leftclick", "left_single", "single_click",
               "tripleclick", "triple_click", "press_point"),
    **_aliases("double_click", "doubleclick", "double_tap", "left_double", "dbl_click"),
    **_aliases("right_click", "rightclick", "right_single", "context_click"),
    **_aliases("middle_click", "middleclick"),
    **_aliases("long_press", "longpress", "long_click", "long_tap", "press_and_hold"),
    **_aliases("drag", "dragto", "drag_to", "left_click_drag", "drag_and_drop", "select"),
    **_aliases("swipe", "fling", "swipe_to"),
    **_aliases("scroll", "vscroll", "hscroll", "scroll_to", "mouse_scroll"),
    **_aliases("move", "moveto", "move_to", "hover", "mouse_move", "mousemove"),
    **_aliases("type", "input", "input_text", "write", "typewrite", "type_text", "text",
               "enter_text", "set_text"),
    **_aliases("key", "press", "hotkey", "keypress", "key_press", "press_key", "keyboard",
               "keys", "key_comb"),
    **_aliases("key", "enter", "press_enter", keys=("enter",)),
    **_aliases("wait", "sleep", "pause"),
    **_aliases("open_app", "open", "launch", "launch_app", "open_application", "openapp",
               "start_app"),
    **_aliases("navigate", "goto", "go_to", "open_url", "visit", "navigate_to", "go_to_url",
               "browse"),
    **_aliases("back", "press_back", "navigate_back", "go_back", "goback"),
    **_aliases("home", "press_home", "navigate_home", "go_home", "gohome"),
    **_aliases("tool_call", "function_call", "call_tool", "tool", "call"),
    **_aliases("answer", "response", "respond", "reply", "final_answer"),
    **_aliases("done", "finished", "finish", "complete", "completed", "terminate", "stop",
               "status_task_complete", "success", "task_complete"),
    **_aliases("fail", "failed", "failure", "infeasible", "impossible",
               "status_task_impossible"),
}
_BUTTONS: dict[str, tuple[str, dict[str, Any]]] = {
    "back": ("back", {}), "home": ("home", {}), "enter": ("key", {"keys": ("enter",)}),
    "menu": ("key", {"keys": ("menu",)}),
}


def action_type(name: str, fields: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """The schema type for a type name as models write it, and the arguments it implies."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower()).removeprefix("pyautogui.")
    key = key.rsplit(".", 1)[-1]  # computer.click, mobile.tap
    fields = fields or {}
    if key == "system_button":
        button = str(fields.get("button", "")).strip().lower()
        if button not in _BUTTONS:
            raise ActionParseError(f"system_button {button!r}: expected back, home, enter, menu")
        return _BUTTONS[button]
    if key in ACTION_TYPES:
        found: tuple[str, dict[str, Any]] = (key, {})
    elif key in _TYPE_ALIASES:
        found = _TYPE_ALIASES[key]
    else:
        raise ActionParseError(f"unknown action type {name[:40]!r}")
    status = str(fields.get("status", "")).lower()
    if found[0] == "done" and any(word in status for word in ("fail", "infeasible", "imposs")):
        return ("fail", {})
    return found


# -- fields -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?")


def build_action(kind: str, fields: dict[str, Any]) -> Action:
    """An Action from a type name and loosely named fields; coordinates stay in raw units."""
    action_kind, implied = action_type(kind, fields)
    if action_kind != "tool_call" and isinstance(fields.get("params"), dict):
        fields = {**fields, **fields["params"]}  # AgentNet style: {"type": ..., "params": {...}}
    values: dict[str, Any] = {**implied, **_points(fields)}
    values.update(_arguments(action_kind, fields, values))
    return Action(type=action_kind, **values)


def _first(fields: dict[str, Any], keys: Iterable[str]) -> Any:
    return next((fields[key] for key in keys if fields.get(key) is not None), None)


def _points(fields: dict[str, Any]) -> dict[str, float]:
    values: dict[str, float] = {}
    start = _first(fields, POINT_KEYS)
    if start is None and _is_number(fields.get("x")) and _is_number(fields.get("y")):
        start = (fields["x"], fields["y"])
    if start is not None:
        values["x"], values["y"] = point_of(start)
    end = _first(fields, END_KEYS)
    if end is None and _is_number(fields.get("x2")) and _is_number(fields.get("y2")):
        end = (fields["x2"], fields["y2"])
    if end is not None:
        values["x2"], values["y2"] = point_of(end)
    return values


def point_of(value: Any) -> tuple[float, float]:
    """A point from [x, y], {"x", "y"}, a box [x0, y0, x1, y1] (its centre) or text with numbers."""
    if isinstance(value, dict):
        if "x" in value and "y" in value:
            return (_number(value["x"]), _number(value["y"]))
        raise ActionParseError(f"a point object needs x and y, got keys {sorted(value)[:4]}")
    if isinstance(value, str):
        numbers: list[Any] = _NUMBER.findall(value)
    elif isinstance(value, list | tuple):
        numbers = list(value)
    else:
        raise ActionParseError(f"expected a point, got {value!r:.40}")
    if len(numbers) == 2:
        return (_number(numbers[0]), _number(numbers[1]))
    if len(numbers) == 4:
        x0, y0, x1, y1 = (_number(n) for n in numbers)
        return ((x0 + x1) / 2, (y0 + y1) / 2)
    raise ActionParseError(f"expected a point [x, y] or a box [x0, y0, x1, y1], got {value!r:.40}")


def _arguments(kind: str, fields: dict[str, Any], implied: dict[str, Any]) -> dict[str, Any]:
    """The non-positional arguments; a type's main value may hide under a text key."""
    if kind == "tool_call":
        return _tool_arguments(fields)
    raw_text = _first(fields, TEXT_KEYS)
    text = None if raw_text is None or isinstance(raw_text, dict | list) else str(raw_text)
    out: dict[str, Any] = {"text": text, "amount": _amount(fields)}
    if kind == "key" and "keys" not in implied:
        keys = _first(fields, KEY_KEYS)
        if keys is None:  # {"action": "press", "text": "ctrl+s"}
            keys, out["text"] = text, None
        out["keys"] = None if keys is None else _keys(keys)
    if kind in ("scroll", "swipe"):
        out.update(_direction(kind, fields, text, out["amount"]))
    if kind == "open_app":
        out["app"] = _str_or_none(_first(fields, APP_KEYS), text)
    if kind == "navigate":
        out["url"] = _str_or_none(_first(fields, URL_KEYS), text)
    return {name: value for name, value in out.items() if value is not None}


def _amount(fields: dict[str, Any]) -> float | None:
    amount = _first(fields, AMOUNT_KEYS)
    try:
        return None if amount is None else _number(amount)
    except ActionParseError:
        return None  # "duration": "short" and the like: amounts are never scored


def _direction(kind: str, fields: dict[str, Any], text: str | None,
               amount: float | None) -> dict[str, Any]:
    direction = fields.get("direction") or fields.get("scroll_direction")
    word = (text or "").strip().lower()
    if direction is None and word in DIRECTIONS:
        direction = word  # GUI-R1 puts a swipe's direction in input_text
    if direction is None and kind == "scroll" and amount:
        # Signed scroll amounts (pyautogui, Qwen computer_use): positive scrolls up.
        return {"direction": "up" if amount > 0 else "down", "amount": abs(amount)}
    return {} if direction is None else {"direction": str(direction).strip().lower()}


def _str_or_none(value: Any, fallback: str | None) -> str | None:
    chosen = fallback if value is None else str(value)
    return chosen or None


def _tool_arguments(fields: dict[str, Any]) -> dict[str, Any]:
    name = _first(fields, TOOL_NAME_KEYS)
    arguments = _first(fields, TOOL_ARGS_KEYS)
    if isinstance(arguments, str):
        loaded = _load_json_like(arguments)
        arguments = loaded if loaded is not None else arguments
    out: dict[str, Any] = {"tool_name": str(name) if name is not None else None}
    if arguments is not None:
        out["tool_args"] = canonical_json(arguments)
    return {key: value for key, value in out.items() if value is not None}


def _keys(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        if not value.strip():
            return ("space",) if value else ()
        if len(value.strip()) == 1:
            return (value.strip().lower(),)
        return tuple(part.lower() for part in re.split(r"[+\s]+", value.strip()) if part)
    if isinstance(value, list | tuple) and all(isinstance(key, str) for key in value):
        return tuple(key.strip().lower() or key for key in value)
    raise ActionParseError(f"expected key names, got {value!r:.40}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> float:
    if _is_number(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ActionParseError(f"expected a number, got {value!r:.40}")


# -- lines: canonical action_text, else call style ------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+\s*[.):]|step\s*\d+\s*[.):])\s*", re.IGNORECASE)


def _read_lines(body: str) -> tuple[str, list[Action]]:
    actions: list[Action] = []
    kinds: set[str] = set()
    for raw in body.splitlines():
        line = _BULLET.sub("", raw).strip().strip("`").rstrip(";").strip()
        if not line:
            continue
        if line in OSWORLD_PSEUDO:
            actions.append(Action(OSWORLD_PSEUDO[line], raw=line))
            kinds.add("osworld")
            continue
        try:
            actions.append(parse_action_text(line))
            kinds.add("action_text")
        except ActionParseError:
            actions.append(_read_call(line))
            kinds.add("call")
    if kinds <= {"action_text", "osworld"} and kinds:
        return ("osworld" if kinds == {"osworld"} else "action_text"), actions
    return "call", actions


def _read_call(line: str) -> Action:
    try:
        node = ast.parse(line, mode="eval").body
    except SyntaxError:
        node = None
    if not isinstance(node, ast.Call):
        raise ActionParseError("expected an action like click(x=0.5, y=0.5) per line, JSON or "
                               f"pyautogui code; got {line[:60]!r}")
    name = ast.unparse(node.func)
    fields: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise ActionParseError(f"{name}(**...) is not read; pass literal arguments")
        fields[keyword.arg] = _literal(keyword.value, name)
    kind, _ = action_type(name, fields)
    fields.update(_positional(kind, [_literal(arg, name) for arg in node.args]))
    return build_action(name, fields)


def _literal(node: ast.expr, name: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ActionParseError(f"argument {ast.unparse(node)[:40]!r} of {name}() is not a "
                               "literal") from None


def _positional(kind: str, args: list[Any]) -> dict[str, Any]:
    """Positional arguments by type: coordinates for pointers, else the type's main text."""
    if not args:
        return {}
    if all(_is_number(arg) for arg in args):
        if kind in ("wait", "scroll") and len(args) == 1:
            return {"amount": args[0]}
        return dict(zip(("x", "y", "x2", "y2"), args, strict=False))
    if kind in POINTER_TYPES:
        return {"point": args[0], **({"end": args[1]} if len(args) > 1 else {})}
    if kind == "key":
        return {"keys": [str(arg) for arg in args]}
    main = {"open_app": "app", "navigate": "url", "scroll": "direction", "swipe": "direction",
            "tool_call": "tool_name"}.get(kind, "text")
    out: dict[str, Any] = {main: args[0]}
    if len(args) > 1:
        out["args" if kind == "tool_call" else "amount"] = args[1]
    return out


# -- pyautogui ----------------------------------------------------------------------------------

# OSWorld's pyautogui action space ends or pauses with these words on a line of their own.
OSWORLD_PSEUDO = {"WAIT": "wait", "DONE": "done", "FAIL": "fail"}
_PSEUDO_LINE = re.compile(r"^[ \t]*(WAIT|DONE|FAIL)[ \t]*;?[ \t]*$", re.MULTILINE)


def _read_pyautogui(code: str, keep_moves: bool = False) -> list[Action]:
    from curate.actions.pyautogui import PointerState, parse_pyautogui  # only code needs it

    parsed: list[Action] = []
    state = PointerState()
    start = 0
    for match in [*_PSEUDO_LINE.finditer(code), None]:
        chunk = code[start:match.start() if match else len(code)]
        if chunk.strip():
            result = parse_pyautogui(chunk, state)
            parsed.extend(result.actions)
            state = result.state
        if match:
            parsed.append(Action(OSWORLD_PSEUDO[match.group(1)], raw=match.group(1)))
            start = match.end()
    raw = [replace(action, x=action.px, y=action.py, x2=action.px2, y2=action.py2)
           if action.px is not None or action.px2 is not None else action for action in parsed]
    return raw if keep_moves else _drop_aiming_moves(raw)


def _drop_aiming_moves(actions: list[Action]) -> list[Action]:
    """``moveTo(x, y)`` then ``click()`` is one click: drop a move the next action starts at."""
    kept = []
    for index, action in enumerate(actions):
        following = actions[index + 1] if index + 1 < len(actions) else None
        if (action.type == "move" and following is not None and following.type != "move"
                and (following.x, following.y) == (action.x, action.y)):
            continue
        kept.append(action)
    return kept


# -- coordinates --------------------------------------------------------------------------------

def _beyond_unit(actions: list[Action]) -> bool:
    return any(not 0.0 <= v <= 1.0 for a in actions for v in (a.x, a.y, a.x2, a.y2)
               if v is not None)


def resolve_coordinates(actions: list[Action], coords: str,
                        image_size: tuple[int, int] | None) -> list[Action]:
    """Coordinates of all actions normalised to [0, 1] by one rule; raises ActionParseError."""
    mode = coords
    if mode == "auto":
        if not _beyond_unit(actions):
            return actions
        if image_size is None:
            raise ActionParseError("coordinates above 1 with no image_size: pass image_size "
                                   "for pixels, or coords='grid1000' for a 0-1000 grid")
        mode = "pixels"
    if mode == "norm":
        return actions
    if mode == "grid1000":
        return [_scaled(a, 1000.0, 1000.0, "norm_1000") for a in actions]
    if image_size is None or min(image_size) <= 0:
        raise ActionParseError("pixel coordinates need the screenshot's image_size [w, h]")
    width, height = image_size
    return [_scaled(a, float(width), float(height), "screen_px") for a in actions]


def _scaled(action: Action, width: float, height: float, space: str) -> Action:
    def scale(value: float | None, extent: float) -> float | None:
        return None if value is None else value / extent

    if action.x is None and action.x2 is None:
        return action
    return replace(action, x=scale(action.x, width), y=scale(action.y, height),
                   x2=scale(action.x2, width), y2=scale(action.y2, height),
                   px=action.x, py=action.y, px2=action.x2, py2=action.y2, coord_space=space)


__all__ = ["ParseResult", "action_type", "answer_tags_ok", "build_action", "extract_body",
           "parse_prediction", "point_of", "resolve_coordinates"]
