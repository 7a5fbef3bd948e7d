"""Read pyautogui code strings as actions, without executing them.

Agents (OSWorld's among them) act by emitting small Python programs such as
``import pyautogui; pyautogui.moveTo(25, 25)``. This module reads such a program with
:mod:`ast` and turns each call into an :class:`~curate.actions.Action` in screen pixels
(``px``/``py``; normalising to ``x``/``y`` needs the screenshot size and is the adapter's job).

Only a closed set of statements is accepted: ``import pyautogui`` / ``import time`` (aliases
allowed; both names also work without the import, because OSWorld's controller prefixes every
program with ``import pyautogui; import time``), calls of the supported ``pyautogui`` and
``time`` functions whose arguments are literals, ``pyautogui.FAILSAFE``/``PAUSE`` settings and
``pass``. Anything else (variables,
loops, other modules, image locating) raises :class:`~curate.errors.ActionParseError`, so code
is never guessed at and never run.

Decisions worth knowing:

* The pointer state (cursor position, held mouse button, held keys) is threaded through calls
  and across code strings: :func:`parse_pyautogui` takes a :class:`PointerState` and returns
  the new one, so ``click()`` after ``moveTo(25, 25)`` on an earlier line resolves to (25, 25).
* ``tripleClick`` and ``click(clicks=3)`` become ``click`` with a note: the action space has no
  triple click and a double click selects something else (a word, not a line); the note and
  the verbatim ``raw`` keep what really happened.
* ``mouseDown``/``mouseUp`` become one ``drag`` (or a click when the pointer did not move);
  a ``mouseDown`` with no release yet leaves ``state.pending`` set and yields nothing, so a
  caller can join it with the code string that releases it.
* ``keyDown``/``keyUp`` with nothing in between become one ``key`` chord; keys held while
  ``press``/``hotkey`` run are prepended to them; any other action done while keys are held
  gets a note (the action schema has no modifier field).
* ``write`` of a list types runs of single characters as ``type`` and named keys as ``key``.
* Key names are lower-cased and modifiers are moved first, keeping their order.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from curate.actions import Action
from curate.errors import ActionParseError

MODIFIERS = frozenset({
    "ctrl", "ctrlleft", "ctrlright", "control", "shift", "shiftleft", "shiftright",
    "alt", "altleft", "altright", "altgr", "option", "optionleft", "optionright",
    "command", "cmd", "win", "winleft", "winright", "super", "meta", "fn",
})
MAX_REPEAT = 100  # presses=N beyond this is an error, not N thousand actions
_BUTTONS = {"left": "left", "primary": "left", "right": "right", "secondary": "right",
            "middle": "middle"}
_CLICK_TYPES = {"left": "click", "right": "right_click", "middle": "middle_click"}
# Arguments that change how an action is animated or paced, not what it does: never evaluated.
_PACING = frozenset({"duration", "tween", "interval", "logScreenshot", "_pause", "mouseDownUp"})
_ALLOWED_MODULES = frozenset({"pyautogui", "time"})
_SETTINGS = frozenset({"FAILSAFE", "PAUSE"})


@dataclass(frozen=True, slots=True)
class PointerState:
    """What is known about the machine between calls: cursor, held mouse button, held keys.

    ``x``/``y`` are None until a call places the cursor. ``pressed`` is the point and button of
    a mouseDown not yet released. ``chord_used`` records that an action already consumed the
    held keys, so releasing them adds no separate ``key`` action.
    """

    x: float | None = None
    y: float | None = None
    pressed: tuple[float, float, str] | None = None
    held_keys: tuple[str, ...] = ()
    chord_used: bool = False

    @property
    def pending(self) -> bool:
        """A button or key is still down: the action finishes in later code."""
        return self.pressed is not None or bool(self.held_keys)


@dataclass(frozen=True, slots=True)
class ParsedAction:
    """One action and the notes about what the action schema could not say."""

    action: Action
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The actions of one code string, in order, and the pointer state after them."""

    parsed: tuple[ParsedAction, ...]
    state: PointerState

    @property
    def actions(self) -> list[Action]:
        return [item.action for item in self.parsed]


def parse_pyautogui(code: str, state: PointerState | None = None) -> ParseResult:
    """Parse pyautogui code into actions in screen pixels; raises ActionParseError.

    ``state`` is the pointer state left by earlier code (None: nothing known yet).
    """
    try:
        tree = ast.parse(code, mode="exec")
    except SyntaxError as error:
        where = f"line {error.lineno}: " if error.lineno else ""
        raise ActionParseError(
            f"not valid Python ({where}{error.msg}); expected pyautogui code") from None
    except (ValueError, RecursionError, MemoryError) as error:  # NUL bytes, absurd nesting
        raise ActionParseError(f"not readable as Python ({type(error).__name__}); expected "
                               "pyautogui code") from None
    parser = _Parser(code, state or PointerState())
    for statement in tree.body:
        parser.statement(statement)
    return ParseResult(tuple(parser.out), parser.state)


def order_keys(keys: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Lower-case key names, modifiers first (in their own order), duplicates dropped."""
    lowered = list(dict.fromkeys(key.lower() for key in keys))
    modifiers = [key for key in lowered if key in MODIFIERS]
    return (*modifiers, *(key for key in lowered if key not in MODIFIERS))


@dataclass(frozen=True, slots=True)
class _Signature:
    """Positional parameter names of a supported function, and whether it takes *args."""

    params: tuple[str, ...]
    varargs: bool = False


_XY_PACED = ("x", "y", "duration", "tween")
_SIGNATURES: dict[str, _Signature] = {
    "pyautogui.moveTo": _Signature(_XY_PACED),
    "pyautogui.moveRel": _Signature(("xOffset", "yOffset", "duration", "tween")),
    "pyautogui.move": _Signature(("xOffset", "yOffset", "duration", "tween")),
    "pyautogui.click": _Signature(("x", "y", "clicks", "interval", "button", "duration", "tween")),
    "pyautogui.leftClick": _Signature(("x", "y", "interval", "duration", "tween")),
    "pyautogui.rightClick": _Signature(("x", "y", "interval", "duration", "tween")),
    "pyautogui.middleClick": _Signature(("x", "y", "interval", "duration", "tween")),
    "pyautogui.doubleClick": _Signature(("x", "y", "interval", "button", "duration", "tween")),
    "pyautogui.tripleClick": _Signature(("x", "y", "interval", "button", "duration", "tween")),
    "pyautogui.dragTo": _Signature(("x", "y", "duration", "tween", "button")),
    "pyautogui.dragRel": _Signature(("xOffset", "yOffset", "duration", "tween", "button")),
    "pyautogui.drag": _Signature(("xOffset", "yOffset", "duration", "tween", "button")),
    "pyautogui.mouseDown": _Signature(("x", "y", "button", "duration", "tween")),
    "pyautogui.mouseUp": _Signature(("x", "y", "button", "duration", "tween")),
    "pyautogui.scroll": _Signature(("clicks", "x", "y")),
    "pyautogui.vscroll": _Signature(("clicks", "x", "y")),
    "pyautogui.hscroll": _Signature(("clicks", "x", "y")),
    "pyautogui.write": _Signature(("message", "interval")),
    "pyautogui.typewrite": _Signature(("message", "interval")),
    "pyautogui.press": _Signature(("keys", "presses", "interval")),
    "pyautogui.hotkey": _Signature((), varargs=True),
    "pyautogui.keyDown": _Signature(("key",)),
    "pyautogui.keyUp": _Signature(("key",)),
    "pyautogui.sleep": _Signature(("seconds",)),
    "time.sleep": _Signature(("seconds",)),
}


class _Parser:
    """Walks one program's statements, emitting actions and updating the pointer state."""

    def __init__(self, code: str, state: PointerState) -> None:
        self.code = code
        self.state = state
        # OSWorld runs agent code after its own `import pyautogui; import time`.
        self.aliases: dict[str, str] = {name: name for name in _ALLOWED_MODULES}
        self.out: list[ParsedAction] = []
        self.call_text = ""
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "pyautogui.moveTo": self._move_to,
            "pyautogui.moveRel": self._move_rel,
            "pyautogui.move": self._move_rel,
            "pyautogui.click": self._click_call,
            "pyautogui.leftClick": lambda a: self._click_at(a, clicks=1, button="left"),
            "pyautogui.rightClick": lambda a: self._click_at(a, clicks=1, button="right"),
            "pyautogui.middleClick": lambda a: self._click_at(a, clicks=1, button="middle"),
            "pyautogui.doubleClick": lambda a: self._click_at(a, clicks=2),
            "pyautogui.tripleClick": lambda a: self._click_at(a, clicks=3),
            "pyautogui.dragTo": self._drag_to,
            "pyautogui.dragRel": self._drag_rel,
            "pyautogui.drag": self._drag_rel,
            "pyautogui.mouseDown": self._mouse_down,
            "pyautogui.mouseUp": self._mouse_up,
            "pyautogui.scroll": lambda a: self._scroll(a, ("up", "down")),
            "pyautogui.vscroll": lambda a: self._scroll(a, ("up", "down")),
            "pyautogui.hscroll": lambda a: self._scroll(a, ("right", "left")),
            "pyautogui.write": self._write,
            "pyautogui.typewrite": self._write,
            "pyautogui.press": self._press,
            "pyautogui.hotkey": self._hotkey,
            "pyautogui.keyDown": self._key_down,
            "pyautogui.keyUp": self._key_up,
            "pyautogui.sleep": self._sleep,
            "time.sleep": self._sleep,
        }

    # -- statements -------------------------------------------------------------------------

    def statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            self._import(node)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            self._call(node.value)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # a bare string (a docstring-like comment) does nothing
        elif isinstance(node, ast.Pass) or self._is_setting(node):
            return
        else:
            raise self._error(node, f"unsupported statement {type(node).__name__}: only imports "
                                    "and pyautogui/time calls with literal arguments are read")

    def _import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in _ALLOWED_MODULES:
                raise self._error(node, f"import of {alias.name!r} is not allowed; only "
                                        "pyautogui and time are read")
            self.aliases[alias.asname or alias.name] = alias.name

    def _is_setting(self, node: ast.stmt) -> bool:
        """``pyautogui.FAILSAFE = False`` and the like configure pyautogui; they do nothing."""
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            return False
        target = node.targets[0]
        return (isinstance(target, ast.Attribute) and target.attr in _SETTINGS
                and isinstance(target.value, ast.Name)
                and self.aliases.get(target.value.id) == "pyautogui"
                and isinstance(node.value, ast.Constant))

    def _call(self, call: ast.Call) -> None:
        name = self._function_name(call)
        self.call_text = ast.get_source_segment(self.code, call) or name
        arguments = self._bind(call, name, _SIGNATURES[name])
        self._handlers[name](arguments)

    def _function_name(self, call: ast.Call) -> str:
        func = call.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            raise self._error(call, "only calls of the form pyautogui.name(...) or "
                                    "time.sleep(...) are read")
        module = self.aliases.get(func.value.id)
        if module is None:
            raise self._error(call, f"{func.value.id}.{func.attr}() is not a supported call; "
                                    "only pyautogui functions and time.sleep are read")
        name = f"{module}.{func.attr}"
        if name not in _SIGNATURES:
            raise self._error(call, f"{name}() is not a supported call; supported: "
                                    f"{', '.join(sorted(_SIGNATURES))}")
        return name

    def _bind(self, call: ast.Call, name: str, signature: _Signature) -> dict[str, Any]:
        """Map arguments to parameter names; literals only, pacing arguments left unread."""
        values: dict[str, Any] = {}
        if signature.varargs:
            values["*args"] = [self._literal(arg, name) for arg in call.args]
        elif len(call.args) > len(signature.params):
            raise self._error(call, f"{name}() takes at most {len(signature.params)} "
                                    f"positional arguments, got {len(call.args)}")
        else:
            for param, arg in zip(signature.params, call.args, strict=False):
                if param not in _PACING:
                    values[param] = self._literal(arg, name)
        for keyword in call.keywords:
            if keyword.arg is None:
                raise self._error(call, f"{name}(**...) is not read; pass literal arguments")
            if keyword.arg in _PACING:
                continue
            if keyword.arg not in signature.params:
                raise self._error(call, f"{name}() has no argument {keyword.arg!r}")
            values[keyword.arg] = self._literal(keyword.value, name)
        return values

    def _literal(self, node: ast.expr, name: str) -> Any:
        if isinstance(node, ast.Starred):
            raise self._error(node, f"{name}(*...) is not read; pass literal arguments")
        try:
            return ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise self._error(node, f"argument {ast.unparse(node)[:60]!r} of {name}() is not "
                                    "a literal; variables and expressions are never evaluated"
                              ) from None

    def _error(self, node: ast.AST, reason: str) -> ActionParseError:
        line = getattr(node, "lineno", 1)
        column = getattr(node, "col_offset", 0) + 1
        return ActionParseError(f"{reason} (code line {line}, column {column})")

    def _fail(self, reason: str) -> ActionParseError:
        call = self.call_text if len(self.call_text) <= 80 else self.call_text[:77] + "..."
        return ActionParseError(f"{call}: {reason}")

    # -- emitting ---------------------------------------------------------------------------

    def _emit(self, action_type: str, *notes: str, **values: Any) -> None:
        """Add an action; a non-key action done while keys are held gets a note and uses them."""
        all_notes = [note for note in notes if note]
        if self.state.held_keys and action_type != "key":
            all_notes.append(f"done while holding {'+'.join(self.state.held_keys)} "
                             "(the action schema has no modifiers)")
        if self.state.held_keys:
            self.state = replace(self.state, chord_used=True)
        action = Action(type=action_type, raw=self.call_text, **values)
        self.out.append(ParsedAction(action, tuple(all_notes)))

    def _place(self, x: float, y: float) -> None:
        self.state = replace(self.state, x=x, y=y)

    # -- pointer ----------------------------------------------------------------------------

    def _point(self, arguments: dict[str, Any]) -> tuple[float, float]:
        """The x/y a call aims at; missing coordinates come from the cursor, like pyautogui."""
        x, y = arguments.get("x"), arguments.get("y")
        if isinstance(x, str):
            raise self._fail(f"locating the image {x!r} on screen cannot be read from code; "
                             "only numeric coordinates are supported")
        if isinstance(x, tuple | list) and y is None:
            if len(x) != 2:
                raise self._fail(f"expected an (x, y) pair, got {x!r}")
            x, y = x
        x = self.state.x if x is None else _number(x, "x", self._fail)
        y = self.state.y if y is None else _number(y, "y", self._fail)
        if x is None or y is None:
            raise self._fail("no coordinates and no earlier moveTo/click placed the cursor; "
                             "expected x and y, or a preceding call with coordinates")
        return x, y

    def _move_to(self, arguments: dict[str, Any]) -> None:
        point = self._point(arguments)
        self._move(*point)

    def _move_rel(self, arguments: dict[str, Any]) -> None:
        self._move(*self._offset(arguments))

    def _move(self, x: float, y: float) -> None:
        self._place(x, y)
        if self.state.pressed is None:  # while a button is held, the move is part of a drag
            self._emit("move", px=x, py=y)

    def _offset(self, arguments: dict[str, Any]) -> tuple[float, float]:
        """The cursor position moved by xOffset/yOffset (a relative call needs a known cursor)."""
        if self.state.x is None or self.state.y is None:
            raise self._fail("relative move with no known cursor position; expected a "
                             "preceding call with absolute coordinates")
        dx = _number(arguments.get("xOffset") or 0, "xOffset", self._fail)
        dy = _number(arguments.get("yOffset") or 0, "yOffset", self._fail)
        return self.state.x + dx, self.state.y + dy

    def _click_call(self, arguments: dict[str, Any]) -> None:
        clicks = arguments.get("clicks", 1)
        self._click_at(arguments, clicks=clicks, button=arguments.get("button", "left"))

    def _click_at(self, arguments: dict[str, Any], *, clicks: Any,
                  button: Any = None) -> None:
        if self.state.pressed is not None:
            raise self._fail("click while a mouse button is held down; expected mouseUp first")
        button = _button(arguments.get("button", "left") if button is None else button,
                         self._fail)
        if isinstance(clicks, bool) or not isinstance(clicks, int) or clicks < 1:
            raise self._fail(f"clicks must be a whole number >= 1, got {clicks!r}")
        point = self._point(arguments)
        self._place(*point)
        action_type, note = _click_type(button, clicks)
        self._emit(action_type, note, px=point[0], py=point[1])

    def _drag_to(self, arguments: dict[str, Any]) -> None:
        end = self._point(arguments)
        self._drag(end, arguments)

    def _drag_rel(self, arguments: dict[str, Any]) -> None:
        self._drag(self._offset(arguments), arguments)

    def _drag(self, end: tuple[float, float], arguments: dict[str, Any]) -> None:
        start = (self.state.x, self.state.y)
        if start[0] is None or start[1] is None:
            raise self._fail("drag with no known start position; expected a preceding moveTo")
        if self.state.pressed is not None:
            raise self._fail("drag while a mouse button is already held; expected mouseUp first")
        button = _button(arguments.get("button", "left"), self._fail)
        note = "" if button == "left" else f"dragged with the {button} button"
        self._place(*end)
        self._emit("drag", note, px=start[0], py=start[1], px2=end[0], py2=end[1])

    def _mouse_down(self, arguments: dict[str, Any]) -> None:
        if self.state.pressed is not None:
            raise self._fail("mouseDown while a button is already held; expected mouseUp first")
        point = self._point(arguments)
        button = _button(arguments.get("button", "left"), self._fail)
        self.state = replace(self.state, x=point[0], y=point[1],
                             pressed=(point[0], point[1], button))

    def _mouse_up(self, arguments: dict[str, Any]) -> None:
        pressed = self.state.pressed
        if pressed is None:
            raise self._fail("mouseUp without a preceding mouseDown")
        end = self._point(arguments)
        self.state = replace(self.state, x=end[0], y=end[1], pressed=None)
        start_x, start_y, button = pressed
        if (start_x, start_y) == end:
            action_type, note = _click_type(button, 1)
            self._emit(action_type, note, px=end[0], py=end[1])
            return
        note = "" if button == "left" else f"dragged with the {button} button"
        self._emit("drag", note, px=start_x, py=start_y, px2=end[0], py2=end[1])

    def _scroll(self, arguments: dict[str, Any], directions: tuple[str, str]) -> None:
        clicks = arguments.get("clicks")
        amount = _number(clicks, "clicks", self._fail)
        if amount == 0:
            raise self._fail("scroll by 0 has no direction; expected a non-zero amount")
        position: dict[str, float] = {}
        if arguments.get("x") is not None or arguments.get("y") is not None:
            x, y = self._point(arguments)
            self._place(x, y)  # pyautogui moves to x, y before scrolling
        if self.state.x is not None and self.state.y is not None:
            position = {"px": self.state.x, "py": self.state.y}  # scrolls where the cursor is
        direction = directions[0] if amount > 0 else directions[1]
        self._emit("scroll", direction=direction, amount=abs(amount), **position)

    # -- keyboard ---------------------------------------------------------------------------

    def _write(self, arguments: dict[str, Any]) -> None:
        message = arguments.get("message")
        if isinstance(message, str):
            if not message:
                raise self._fail("writes an empty string; expected text to type")
            self._emit("type", text=message)
            return
        if not isinstance(message, list | tuple) or not message or not all(
                isinstance(key, str) and key for key in message):
            raise self._fail(f"expected a string or a list of key names, got {message!r}")
        for run in _runs(list(message)):
            if len(run[0]) == 1:
                self._emit("type", text="".join(run))
            else:
                self._emit("key", keys=order_keys((*self.state.held_keys, run[0])))

    def _press(self, arguments: dict[str, Any]) -> None:
        keys = _key_list(arguments.get("keys"), self._fail)
        presses = arguments.get("presses", 1)
        if isinstance(presses, bool) or not isinstance(presses, int) or not (
                1 <= presses <= MAX_REPEAT):
            raise self._fail(f"presses must be a whole number from 1 to {MAX_REPEAT}, "
                             f"got {presses!r}")
        for _ in range(presses):
            for key in keys:
                self._emit("key", keys=order_keys((*self.state.held_keys, key)))

    def _hotkey(self, arguments: dict[str, Any]) -> None:
        keys = _key_list(list(arguments["*args"]), self._fail)
        self._emit("key", keys=order_keys((*self.state.held_keys, *keys)))

    def _key_down(self, arguments: dict[str, Any]) -> None:
        key = _key_list(arguments.get("key"), self._fail)[0].lower()
        if key not in self.state.held_keys:
            self.state = replace(self.state, held_keys=(*self.state.held_keys, key),
                                 chord_used=False)

    def _key_up(self, arguments: dict[str, Any]) -> None:
        key = _key_list(arguments.get("key"), self._fail)[0].lower()
        if key not in self.state.held_keys:
            raise self._fail(f"keyUp({key!r}) without a preceding keyDown({key!r})")
        if not self.state.chord_used:
            # Nothing used the held keys: pressing and releasing them is itself the action.
            self._emit("key", keys=order_keys(self.state.held_keys))
        held = tuple(k for k in self.state.held_keys if k != key)
        self.state = replace(self.state, held_keys=held, chord_used=bool(held))

    def _sleep(self, arguments: dict[str, Any]) -> None:
        seconds = _number(arguments.get("seconds"), "seconds", self._fail)
        if seconds < 0:
            raise self._fail(f"sleep for a negative time ({seconds:g} s)")
        self._emit("wait", amount=seconds)


def _number(value: Any, name: str, fail: Callable[[str], ActionParseError]) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(f"{name} must be a number, got {value!r:.60}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise fail(f"{name} must be a finite number, got {value!r:.60}")
    return number


def _button(value: Any, fail: Callable[[str], ActionParseError]) -> str:
    button = _BUTTONS.get(value.lower()) if isinstance(value, str) else None
    if button is None:
        raise fail(f"unknown mouse button {value!r}; expected left, right or middle")
    return button


def _click_type(button: str, clicks: int) -> tuple[str, str]:
    """The action type for ``clicks`` presses of ``button``, and a note when it is lossy."""
    if button == "left" and clicks == 2:
        return "double_click", ""
    action_type = _CLICK_TYPES[button]
    if clicks == 1:
        return action_type, ""
    return action_type, (f"{clicks} clicks of the {button} button recorded as {action_type}: "
                         "the action space has no such click; raw keeps the original")


def _key_list(value: Any, fail: Callable[[str], ActionParseError]) -> list[str]:
    keys = [value] if isinstance(value, str) else value
    if not isinstance(keys, list | tuple) or not keys or not all(
            isinstance(key, str) and key for key in keys):
        raise fail(f"expected a key name or a list of key names, got {value!r}")
    return [key.lower() for key in keys]


def _runs(keys: list[str]) -> list[list[str]]:
    """Split a typewrite list into runs of single characters and single named keys."""
    runs: list[list[str]] = []
    for key in keys:
        if len(key) == 1 and runs and len(runs[-1][0]) == 1:
            runs[-1].append(key)
        else:
            runs.append([key if len(key) == 1 else key.lower()])
    return runs


__all__ = ["MODIFIERS", "ParseResult", "ParsedAction", "PointerState", "order_keys",
           "parse_pyautogui"]
