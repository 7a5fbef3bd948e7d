"""OpenCUA's action dialects, shared by the AgentNet release and AgentNetBench adapters.

Two forms describe the same actions:

* **code**: PyAutoGUI-like Python with *normalised* 0-1 coordinates and OpenCUA's own keyword
  style (``pyautogui.click(x=0.70, y=0.94)``, ``pyautogui.hotkey(keys=['ctrl', 'c'])``,
  ``pyautogui.write(message='hi')``, ``computer.terminate(status='success')``); the real
  PyAutoGUI positional style (``pyautogui.hotkey('ctrl', 'c')``) is accepted too. Read with
  :mod:`ast`, never executed.
* **benchmark ground truth**: ``{type, params, metadata.bboxes}`` objects (AgentNetBench).

Both become curate actions through :func:`combine`, which folds OpenCUA's multi-call steps
into one action where the pair means one thing: ``moveTo`` + ``dragTo`` is a drag,
``moveTo`` + ``scroll`` a scroll at that point, ``write`` + ``press(enter)`` one ``type``
whose text ends in a newline (AgentNetBench's evaluator merges the same pair).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from curate.actions import Action, Target, normalise_keys
from curate.errors import ActionParseError
from curate.sources.values import number_or_none

COORD_DECIMALS = 4
_CLICKS = {"click": "click", "leftclick": "click", "doubleclick": "double_click",
           "double_click": "double_click", "rightclick": "right_click",
           "right_click": "right_click", "middleclick": "middle_click",
           "middle_click": "middle_click", "tripleclick": "click", "triple_click": "click"}


@dataclass(frozen=True, slots=True)
class Call:
    """One OpenCUA call in a neutral form: a verb and its arguments."""

    verb: str  # moveTo, dragTo, click, double_click, ..., write, press, hotkey, scroll, terminate
    x: float | None = None
    y: float | None = None
    x2: float | None = None
    y2: float | None = None
    text: str | None = None
    keys: tuple[str, ...] = ()
    amount: float | None = None
    horizontal: bool = False
    status: str | None = None
    target: Target | None = None


def _literal(node: ast.expr, code: str) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ActionParseError(
            f"argument {ast.get_source_segment(code, node)!r} is not a literal") from None


def parse_code(code: str) -> list[Call]:
    """The calls of one OpenCUA code string; raises ActionParseError for anything else."""
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        raise ActionParseError(f"code is not Python: {error.msg} (line {error.lineno})") from None
    calls = []
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom | ast.Pass):
            continue
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
            raise ActionParseError(f"expected only calls, got {type(statement).__name__}")
        call = statement.value
        func = call.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                and func.value.id in {"pyautogui", "computer", "time"}):
            raise ActionParseError(
                f"unsupported call {ast.get_source_segment(code, func)!r}; expected "
                "pyautogui.* or computer.*")
        args = [_literal(a, code) for a in call.args]
        kwargs = {k.arg: _literal(k.value, code) for k in call.keywords if k.arg}
        calls.append(_call(func.value.id, func.attr, args, kwargs))
    return calls


def _numeric(value: Any, name: str) -> float:
    number = number_or_none(value)
    if number is None:
        raise ActionParseError(f"{name} must be a finite number, got {value!r}")
    return number


def _keys(args: list[Any], kwargs: dict[str, Any]) -> tuple[str, ...]:
    raw = kwargs.get("keys", kwargs.get("key", args[0] if len(args) == 1 else args))
    keys = [raw] if isinstance(raw, str) else raw
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ActionParseError(f"keys must be key names, got {raw!r}")
    return normalise_keys(keys)


def _call(module: str, verb: str, args: list[Any], kwargs: dict[str, Any]) -> Call:
    lowered = verb.lower()
    if module == "time" and lowered == "sleep":
        return Call("wait", amount=_numeric(args[0] if args else kwargs.get("seconds"), "seconds"))
    if module == "computer":
        if lowered == "terminate":
            return Call("terminate", status=str(kwargs.get("status", args[0] if args else "")))
        if lowered == "wait":
            return Call("wait", amount=float(kwargs.get("seconds", args[0] if args else 1)))
        raise ActionParseError(f"unknown computer call {verb!r}; expected terminate or wait")
    if lowered in _CLICKS or lowered in {"moveto", "dragto"}:
        name = {"moveto": "moveTo", "dragto": "dragTo"}.get(lowered, _CLICKS.get(lowered))
        assert name is not None
        return Call(name, *_point(args, kwargs))
    if lowered in {"write", "typewrite"}:
        text = kwargs.get("message", kwargs.get("text", args[0] if args else None))
        if not isinstance(text, str):
            raise ActionParseError(f"write needs a text, got {text!r}")
        return Call("write", text=text)
    if lowered in {"press", "hotkey"}:
        return Call(lowered, keys=_keys(args, kwargs))
    if lowered in {"scroll", "vscroll", "hscroll"}:
        amount = kwargs.get("clicks", kwargs.get("amount", args[0] if args else None))
        x = kwargs.get("x", args[1] if len(args) >= 3 else None)
        y = kwargs.get("y", args[2] if len(args) >= 3 else None)
        located = x is not None and y is not None
        return Call("scroll", _numeric(x, "x") if located else None,
                    _numeric(y, "y") if located else None,
                    amount=_numeric(amount, "scroll amount"), horizontal=lowered == "hscroll")
    if lowered == "drag" and len(args) == 4:  # ADP's documented drag(x1, y1, x2, y2)
        x1, y1, x2, y2 = (_numeric(v, "drag coordinate") for v in args)
        return Call("drag4", x1, y1, x2, y2)
    raise ActionParseError(f"unknown pyautogui call {verb!r}")


def _point(args: list[Any], kwargs: dict[str, Any]) -> tuple[float | None, float | None]:
    x = kwargs.get("x", args[0] if len(args) >= 2 else None)
    y = kwargs.get("y", args[1] if len(args) >= 2 else None)
    if x is None or y is None:
        return None, None
    return _numeric(x, "x"), _numeric(y, "y")


def box_target(rel_bbox: Any) -> Target | None:
    """A target from an [x, y, width, height] box in 0-1 (AgentNetBench's rel_bbox)."""
    if not (isinstance(rel_bbox, list) and len(rel_bbox) == 4
            and all(isinstance(v, int | float) for v in rel_bbox)):
        return None
    x, y, w, h = (float(v) for v in rel_bbox)
    return Target(x0=round(x, COORD_DECIMALS), y0=round(y, COORD_DECIMALS),
                  x1=round(x + w, COORD_DECIMALS), y1=round(y + h, COORD_DECIMALS))


def ground_truth_call(item: Any) -> Call:
    """One AgentNetBench ground-truth object as a call; raises ActionParseError."""
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise ActionParseError(f"expected an object with a 'type', got {str(item)[:80]!r}")
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise ActionParseError(f"params must be an object, got {params!r}")
    kind = item["type"]
    position = params.get("position")
    x = y = None
    if isinstance(position, dict):
        x, y = _numeric(position.get("x"), "x"), _numeric(position.get("y"), "y")
    metadata = item.get("metadata") or {}
    boxes = metadata.get("bboxes") if isinstance(metadata, dict) else None
    target = box_target(boxes[0].get("rel_bbox")) if (
        isinstance(boxes, list) and boxes and isinstance(boxes[0], dict)) else None
    lowered = kind.lower()
    if lowered in _CLICKS or lowered in {"moveto", "dragto"}:
        name = {"moveto": "moveTo", "dragto": "dragTo"}.get(lowered, _CLICKS.get(lowered))
        assert name is not None
        return Call(name, x, y, target=target)
    if lowered == "write":
        text = params.get("text")
        if not isinstance(text, str):
            raise ActionParseError(f"write needs params.text, got {text!r}")
        return Call("write", text=text)
    if lowered in {"press", "hotkey"}:
        return Call(lowered, keys=_keys([], params))
    if lowered in {"scroll", "hscroll", "vscroll"}:
        return Call("scroll", x, y, amount=_numeric(params.get("amount"), "scroll amount"),
                    horizontal=lowered == "hscroll", target=target)
    if lowered == "terminate":
        return Call("terminate", status=str(params.get("status", "")))
    if lowered == "wait":
        return Call("wait", amount=float(params.get("seconds", 1)))
    raise ActionParseError(
        f"unknown action type {kind!r}; expected click, doubleClick, rightClick, moveTo, "
        "dragTo, write, press, hotkey, scroll, hscroll, wait or terminate")


def _located(action: Action, call: Call) -> Action:
    if call.x is None or call.y is None:
        return action
    return replace(action, x=round(call.x, COORD_DECIMALS), y=round(call.y, COORD_DECIMALS),
                   px=call.x, py=call.y, coord_space="norm_1", target=call.target)


def combine(calls: Sequence[Call], raw: str | None) -> tuple[list[Action], list[str]]:
    """curate actions for one recorded step's calls, with notes on what was folded."""
    actions: list[Action] = []
    notes: list[str] = []
    index = 0
    while index < len(calls):
        call = calls[index]
        following = calls[index + 1] if index + 1 < len(calls) else None
        if call.verb == "moveTo" and following is not None and following.verb == "dragTo":
            drag = _located(Action("drag", raw=raw), call)
            if following.x is not None and following.y is not None:
                drag = replace(drag, x2=round(following.x, COORD_DECIMALS),
                               y2=round(following.y, COORD_DECIMALS),
                               px2=following.x, py2=following.y)
            actions.append(drag)
            index += 2
            continue
        if call.verb == "moveTo" and following is not None and following.verb == "scroll":
            # The benchmark repeats the position on the scroll; code scrolls where it moved.
            x, y = (following.x, following.y) if following.x is not None else (call.x, call.y)
            actions.append(_single(replace(following, x=x, y=y,
                                           target=following.target or call.target), raw))
            index += 2
            continue
        if (call.verb == "write" and following is not None and following.verb == "press"
                and following.keys == ("enter",)):
            actions.append(Action("type", text=(call.text or "") + "\n", raw=raw))
            notes.append("write + press(enter) folded into one type ending in a newline")
            index += 2
            continue
        actions.append(_single(call, raw))
        index += 1
    return actions, notes


def _single(call: Call, raw: str | None) -> Action:
    verb = call.verb
    if verb in {"click", "double_click", "right_click", "middle_click"}:
        return _located(Action(verb, raw=raw), call)
    if verb == "moveTo":
        return _located(Action("move", raw=raw), call)
    if verb == "dragTo":
        raise ActionParseError("dragTo without a moveTo before it: the drag's start is unknown")
    if verb == "drag4" and call.x2 is not None and call.y2 is not None:
        start = _located(Action("drag", raw=raw), call)
        return replace(start, x2=round(call.x2, COORD_DECIMALS),
                       y2=round(call.y2, COORD_DECIMALS), px2=call.x2, py2=call.y2)
    if verb == "write":
        return Action("type", text=call.text, raw=raw)
    if verb in {"press", "hotkey"}:
        return Action("key", keys=call.keys, raw=raw)
    if verb == "scroll":
        assert call.amount is not None
        if call.amount == 0:
            raise ActionParseError("scroll by 0 has no direction")
        up, down = ("right", "left") if call.horizontal else ("up", "down")
        return _located(Action("scroll", direction=up if call.amount > 0 else down,
                               amount=abs(call.amount), raw=raw), call)
    if verb == "wait":
        return Action("wait", amount=call.amount, raw=raw)
    if verb == "terminate":
        status = (call.status or "").lower()
        return Action("fail" if status in {"failure", "fail", "failed"} else "done",
                      text=call.status or None, raw=raw)
    raise ActionParseError(f"unknown call {verb!r}")
