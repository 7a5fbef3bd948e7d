"""The one action schema every source is converted into, and its canonical text form.

``format_action_text`` writes ``type(key=value, ...)`` with JSON values in a fixed key order;
``parse_action_text`` reverses it, so ``parse_action_text(format_action_text(a)) ==
a.semantic()`` for every action (provenance fields are not part of the text form).
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from typing import Any, get_args, get_type_hints

from curate.errors import ActionParseError


class ActionType(StrEnum):
    CLICK = "click"
    DOUBLE_CLICK = "double_click"
    RIGHT_CLICK = "right_click"
    MIDDLE_CLICK = "middle_click"
    DRAG = "drag"
    SCROLL = "scroll"
    MOVE = "move"
    TYPE = "type"
    KEY = "key"
    WAIT = "wait"
    OPEN_APP = "open_app"
    NAVIGATE = "navigate"
    BACK = "back"
    HOME = "home"
    LONG_PRESS = "long_press"
    SWIPE = "swipe"
    TOOL_CALL = "tool_call"
    ANSWER = "answer"
    DONE = "done"
    FAIL = "fail"


ACTION_TYPES = frozenset(t.value for t in ActionType)
POINTER_TYPES = frozenset(
    {"click", "double_click", "right_click", "middle_click", "drag", "move", "long_press", "swipe"}
)
COORD_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class Target:
    """The element an action was aimed at; box edges normalised to [0, 1] of the frame."""

    text: str | None = None
    role: str | None = None
    x0: float | None = None
    y0: float | None = None
    x1: float | None = None
    y1: float | None = None
    element_id: str | None = None

    def contains(self, x: float, y: float) -> bool:
        if None in (self.x0, self.y0, self.x1, self.y1):
            return False
        assert self.x0 is not None and self.y0 is not None
        assert self.x1 is not None and self.y1 is not None
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass(frozen=True, slots=True)
class Action:
    """One action. Semantic fields first, then coordinate provenance and the raw source form."""

    type: str
    x: float | None = None
    y: float | None = None
    x2: float | None = None
    y2: float | None = None
    text: str | None = None
    keys: tuple[str, ...] = ()
    direction: str | None = None
    amount: float | None = None
    app: str | None = None
    url: str | None = None
    tool_name: str | None = None
    tool_args: str | None = None
    target: Target | None = None
    px: float | None = None
    py: float | None = None
    px2: float | None = None
    py2: float | None = None
    coord_space: str | None = None
    screen_width: int | None = None
    screen_height: int | None = None
    scale: float | None = None
    raw: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ACTION_TYPES:
            raise ActionParseError(
                f"unknown action type {self.type!r}; expected one of {sorted(ACTION_TYPES)}"
            )

    def semantic(self) -> Action:
        """This action without provenance (what the text form carries)."""
        return Action(**{name: getattr(self, name) for name in SEMANTIC_FIELDS})

    def with_target(self, target: Target | None) -> Action:
        return replace(self, target=target)

    def to_row(self) -> dict[str, Any]:
        """The action as a dict matching the Arrow struct in ``schemas/action.yaml``."""
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["keys"] = list(self.keys)
        row["target"] = asdict(self.target) if self.target is not None else None
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Action:
        values = dict(row)
        values["keys"] = tuple(values.get("keys") or ())
        target = values.get("target")
        values["target"] = Target(**target) if target else None
        return cls(**values)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence[Any]]) -> list[Action]:
        """Many actions from parallel value lists per field (an Arrow struct array's
        fields): twice as fast as ``from_row`` per row, with no dict per action."""
        count = len(columns["type"])
        empty: list[Any] = [None] * count
        values: list[Sequence[Any]] = []
        for name in (f.name for f in fields(cls)):
            column = columns.get(name, empty)
            if name == "keys":
                column = [tuple(item) if item else () for item in column]
            elif name == "target":
                column = [Target(**item) if item else None for item in column]
            values.append(column)
        # Recordings repeat actions (waits, the same tool call, the same button): each
        # distinct one is built once.
        built: dict[tuple[Any, ...], Action] = {}
        return [built[row] if row in built else built.setdefault(row, cls(*row))
                for row in zip(*values, strict=True)]


# Order of the text form; `name` and `args` are the text names of tool_name / tool_args.
SEMANTIC_FIELDS = (
    "type", "x", "y", "x2", "y2", "text", "keys", "direction", "amount",
    "app", "url", "tool_name", "tool_args",
)
_TEXT_NAMES = {"tool_name": "name", "tool_args": "args"}
_FIELD_FOR_TEXT_NAME = {text: name for name, text in _TEXT_NAMES.items()}


MODIFIERS = ("ctrl", "alt", "shift", "cmd")
_KEY_ALIASES = {
    "control": "ctrl", "ctl": "ctrl", "option": "alt", "opt": "alt", "meta": "cmd",
    "command": "cmd", "win": "cmd", "super": "cmd", "windows": "cmd", "esc": "escape",
    "return": "enter", "del": "delete", "arrowup": "up", "arrowdown": "down",
    "arrowleft": "left", "arrowright": "right", "pgup": "pageup", "pgdn": "pagedown",
    "page_up": "pageup", "page_down": "pagedown", "spacebar": "space", " ": "space",
    "ctrl_l": "ctrl", "ctrl_r": "ctrl", "alt_l": "alt", "alt_r": "alt", "shift_l": "shift",
    "shift_r": "shift", "cmd_l": "cmd", "cmd_r": "cmd", "altgr": "alt", "bksp": "backspace",
}


def normalise_key(key: str) -> str:
    """One key name in curate's vocabulary: lower case, common aliases folded."""
    lowered = key.strip().lower() if len(key) > 1 else key.lower()
    return _KEY_ALIASES.get(lowered, lowered)


def normalise_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """Key names folded to curate's vocabulary, modifiers first (in a fixed order)."""
    names = [normalise_key(k) for k in keys]
    modifiers = [m for m in MODIFIERS if m in names]
    return (*modifiers, *(k for k in names if k not in MODIFIERS))


def normalise(value: float, extent: float) -> float:
    """A source coordinate divided by its extent, rounded to the store's precision."""
    return round(value / extent, COORD_DECIMALS)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces variance: the form stored in tool_args/metadata."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def format_action_text(action: Action) -> str:
    """The canonical one-line text form, e.g. ``click(x=0.25, y=0.5)``."""
    parts: list[str] = []
    for name in SEMANTIC_FIELDS[1:]:
        value = getattr(action, name)
        if value is None or value == ():
            continue
        if name == "keys":
            value = list(value)
        if name == "tool_args":
            value = json.loads(value)
        parts.append(f"{_TEXT_NAMES.get(name, name)}={json.dumps(value, ensure_ascii=False)}")
    return f"{action.type}({', '.join(parts)})"


_HEAD = re.compile(r"\s*([a-z_]+)\s*\(")
_KEY = re.compile(r"\s*([a-z_0-9]+)\s*=\s*")
_SEP = re.compile(r"\s*(,|\))")


def parse_action_text(text: str) -> Action:
    """Parse the canonical text form back into an Action; raises ActionParseError."""
    head = _HEAD.match(text)
    if head is None:
        raise ActionParseError(f"expected 'type(key=value, ...)', got {text[:60]!r}")
    values: dict[str, Any] = {"type": head.group(1)}
    position = head.end()
    decoder = json.JSONDecoder()
    closing = _SEP.match(text, position)
    if closing is not None and closing.group(1) == ")":
        position = closing.end()
    else:
        while True:
            key = _KEY.match(text, position)
            if key is None:
                raise ActionParseError(f"expected 'name=' at character {position} of {text!r}")
            name = _FIELD_FOR_TEXT_NAME.get(key.group(1), key.group(1))
            if name not in SEMANTIC_FIELDS[1:]:
                raise ActionParseError(f"unknown argument {key.group(1)!r} in {text!r}")
            try:
                value, position = decoder.raw_decode(text, key.end())
            except json.JSONDecodeError as error:
                raise ActionParseError(f"bad value for {key.group(1)!r}: {error.msg}") from None
            values[name] = _coerce(name, value)
            separator = _SEP.match(text, position)
            if separator is None:
                raise ActionParseError(f"expected ',' or ')' at character {position} of {text!r}")
            position = separator.end()
            if separator.group(1) == ")":
                break
    if text[position:].strip():
        raise ActionParseError(f"unexpected text after the action: {text[position:][:40]!r}")
    return Action(**values)


def _coerce(name: str, value: Any) -> Any:
    if name == "keys":
        if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
            raise ActionParseError("keys must be a list of strings")
        return tuple(value)
    if name == "tool_args":
        return canonical_json(value)
    if name in ("x", "y", "x2", "y2", "amount"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ActionParseError(f"{name} must be a number")
        return float(value)
    if not isinstance(value, str):
        raise ActionParseError(f"{name} must be a string")
    return value


# -- the declaration this module implements -----------------------------------------------------

# Declared scalar type -> the Python type of the dataclass field.
_PYTHON_TYPES: dict[str, type] = {"string": str, "float64": float, "int32": int, "int64": int,
                                  "bool": bool, "list<string>": tuple}


def schema_differences(declared: Mapping[str, Any] | None = None) -> list[str]:
    """Where :class:`Action` (and :class:`Target`, :class:`ActionType`) differ from
    ``schemas/action.yaml``: field names and order, types, nullability and the action types
    the ``type`` column's doc lists. Empty when they agree; the one place both are compared
    (tests/test_actions.py asserts it, so a change to either side has to change the other)."""
    if declared is None:
        from curate.store.schema import declaration

        declared = declaration("action")
    differences = _field_differences(Action, declared["fields"], "action")
    type_doc = next(f["doc"] for f in declared["fields"] if f["name"] == "type")
    listed = {name.strip(" .") for name in type_doc.split("One of:", 1)[1].split(",")}
    if listed != set(ACTION_TYPES):
        differences.append(f"action.type: schema lists {sorted(listed - ACTION_TYPES)} more and "
                           f"{sorted(ACTION_TYPES - listed)} fewer than ActionType")
    return differences


def _field_differences(cls: type, specs: Sequence[Mapping[str, Any]], path: str) -> list[str]:
    hints = get_type_hints(cls)
    names = [field.name for field in fields(cls)]
    declared_names = [spec["name"] for spec in specs]
    if names != declared_names:
        return [f"{path}: fields {names} but the schema declares {declared_names}"]
    differences = []
    for spec in specs:
        hint = hints[spec["name"]]
        nullable = isinstance(hint, types.UnionType) and type(None) in get_args(hint)
        options = [a for a in get_args(hint) if a is not type(None)] if nullable else [hint]
        python_type = getattr(options[0], "__origin__", options[0])
        where = f"{path}.{spec['name']}"
        if spec["type"] == "struct":
            if not isinstance(python_type, type) or python_type.__module__ != __name__:
                differences.append(f"{where}: a struct in the schema, {hint} here")
            else:
                differences += _field_differences(python_type, spec["fields"], where)
        elif _PYTHON_TYPES.get(spec["type"]) is not python_type:
            differences.append(f"{where}: {spec['type']} in the schema, {hint} here")
        declared_nullable = spec.get("nullable", True)
        if spec["type"] != "list<string>" and declared_nullable != nullable:
            differences.append(f"{where}: nullable {declared_nullable} in the schema, "
                               f"{nullable} here")
    return differences
