"""Label Studio results <-> curate values, both ways, for the three configs in annotations/.

Region coordinates in Label Studio are percent (0-100) of the image; curate's are [0, 1] of
s_t. Going out, curate values are multiplied by 100; coming back, divided by 100 and rounded
to the store's precision. annotations/mapping.md is the table of this module.
"""

from __future__ import annotations

import json
import re
from typing import Any

from curate.actions import COORD_DECIMALS, Action, Target, canonical_json, normalise_keys

# Which action field the step config's "text" box edits, per action type.
TEXT_FIELD = {
    "type": "text", "answer": "text", "done": "text", "fail": "text", "key": "keys",
    "scroll": "direction", "swipe": "direction", "navigate": "url", "open_app": "app",
    "tool_call": "tool_args", "wait": "amount",
}
# The fields a corrected action keeps, per type; the rest are dropped when the type changes.
FIELDS_FOR_TYPE: dict[str, tuple[str, ...]] = {
    "click": ("x", "y", "target"), "double_click": ("x", "y", "target"),
    "right_click": ("x", "y", "target"), "middle_click": ("x", "y", "target"),
    "move": ("x", "y", "target"), "long_press": ("x", "y", "target"),
    "drag": ("x", "y", "x2", "y2", "target"), "swipe": ("x", "y", "x2", "y2", "direction"),
    "scroll": ("x", "y", "direction", "amount", "target"), "type": ("text", "x", "y"),
    "key": ("keys",), "wait": ("amount",), "open_app": ("app",), "navigate": ("url",),
    "back": (), "home": (), "tool_call": ("tool_name", "tool_args"),
    "answer": ("text",), "done": ("text",), "fail": ("text",),
}
FLAG_NAMES = ("noop", "loop", "off_path", "recovery")


def _percent(value: float) -> float:
    return round(100.0 * value, 2)


def _unit(value: Any) -> float:
    return round(float(value) / 100.0, COORD_DECIMALS)


def choice(name: str, to_name: str, values: list[str]) -> dict[str, Any]:
    return {"id": name, "from_name": name, "to_name": to_name, "type": "choices",
            "value": {"choices": values}}


def textarea(name: str, to_name: str, text: str) -> dict[str, Any]:
    return {"id": name, "from_name": name, "to_name": to_name, "type": "textarea",
            "value": {"text": [text]}}


def _image_region(kind: str, name: str, size: tuple[int, int],
                  value: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{name}-{value.get(kind, [''])[0]}", "from_name": name, "to_name": "screen",
            "type": kind, "original_width": size[0], "original_height": size[1],
            "image_rotation": 0, "value": value}


def action_text_value(action: Action) -> str | None:
    """What the text box shows for an action (its typed text, keys, direction, ...)."""
    field = TEXT_FIELD.get(action.type)
    if field is None:
        return None
    value = getattr(action, field)
    if field == "keys":
        return "+".join(value) if value else None
    return None if value is None else str(value)


def step_prediction(action: Action, label: dict[str, Any] | None,
                    size: tuple[int, int]) -> list[dict[str, Any]]:
    """The recorded action and heuristic labels as a prediction the reviewer starts from."""
    results: list[dict[str, Any]] = []
    if action.x is not None and action.y is not None:
        results.append(_image_region("keypointlabels", "point", size, {
            "x": _percent(action.x), "y": _percent(action.y), "width": 1.0,
            "keypointlabels": ["click"]}))
    if action.x2 is not None and action.y2 is not None:
        results.append(_image_region("keypointlabels", "point", size, {
            "x": _percent(action.x2), "y": _percent(action.y2), "width": 1.0,
            "keypointlabels": ["end"]}))
    box = action.target
    if box is not None and None not in (box.x0, box.y0, box.x1, box.y1):
        assert box.x0 is not None and box.y0 is not None
        assert box.x1 is not None and box.y1 is not None
        results.append(_image_region("rectanglelabels", "target", size, {
            "x": _percent(box.x0), "y": _percent(box.y0), "width": _percent(box.x1 - box.x0),
            "height": _percent(box.y1 - box.y0), "rotation": 0, "rectanglelabels": ["target"]}))
    results.append(choice("verdict", "screen", ["accept"]))
    results.append(choice("action_type", "screen", [action.type]))
    text = action_text_value(action)
    if text:
        results.append(textarea("text", "screen", text))
    flags = _flags_of(label)
    if flags:
        results.append(choice("flags", "screen", flags))
    return results


def _flags_of(label: dict[str, Any] | None) -> list[str]:
    if label is None:
        return []
    flags = [name for name in ("noop", "loop") if label.get(name)]
    if label.get("on_path") is False:
        flags.append("off_path")
    if label.get("recovery"):
        flags.append("recovery")
    return flags


# ---------------------------------------------------------------- reading annotations


def by_control(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Results grouped by control name (from_name)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        grouped.setdefault(str(result.get("from_name")), []).append(result)
    return grouped


def chosen(grouped: dict[str, list[dict[str, Any]]], name: str) -> list[str]:
    values: list[str] = []
    for result in grouped.get(name, []):
        values.extend(str(v) for v in result.get("value", {}).get("choices", []))
    return values


def text_of(grouped: dict[str, list[dict[str, Any]]], name: str) -> str | None:
    for result in grouped.get(name, []):
        texts = result.get("value", {}).get("text") or []
        joined = "\n".join(str(t) for t in texts).strip()
        if joined:
            return joined
    return None


def number_of(grouped: dict[str, list[dict[str, Any]]], name: str) -> float | None:
    for result in grouped.get(name, []):
        number = result.get("value", {}).get("number")
        if number is not None:
            return float(number)
    return None


# Controls of each config and the result type Label Studio stores for them; a result with
# another control or type is refused, never guessed at. Relations (the UI's links between
# regions) carry no value curate uses: which box goes with a click is decided by containment.
STEP_CONTROLS = {"point": "keypointlabels", "target": "rectanglelabels", "verdict": "choices",
                 "action_type": "choices", "text": "textarea", "flags": "choices",
                 "step_instruction": "textarea", "state": "textarea", "comment": "textarea"}
SEGMENT_CONTROLS = {"first_wrong": "choices", "consistent": "choices", "consistency": "number",
                    "verdict": "choices", "comment": "textarea"}
EPISODE_CONTROLS = {"outcome": "choices", "usable": "choices", "comment": "textarea"}
CONTROLS = {"step": STEP_CONTROLS, "segment": SEGMENT_CONTROLS, "episode": EPISODE_CONTROLS}
# Types whose corrected action is meaningless without a point / without text.
POINT_TYPES = frozenset({"click", "double_click", "right_click", "middle_click", "move",
                         "long_press", "drag", "swipe"})
TEXT_TYPES = frozenset({"type", "key", "navigate", "open_app"})


def check_results(results: list[dict[str, Any]], unit: str) -> None:
    """Refuse results curate cannot read: an unknown control or region type, a point or box
    outside the image."""
    controls = CONTROLS[unit]
    for result in results:
        kind, name = result.get("type"), result.get("from_name")
        if kind == "relation":
            continue
        if controls.get(str(name)) != kind:
            raise ValueError(f"a {kind!r} result from control {name!r} is not part of the "
                             f"{unit} review config; curate does not know what it means")
        if kind in ("keypointlabels", "rectanglelabels"):
            _check_inside(result.get("value") or {}, str(name))


def _check_inside(value: dict[str, Any], name: str) -> None:
    x, y = value.get("x"), value.get("y")
    if not isinstance(x, int | float) or not isinstance(y, int | float):
        raise ValueError(f"the {name} region has no x/y")
    right = x + float(value.get("width", 0) if name == "target" else 0)
    bottom = y + float(value.get("height", 0) if name == "target" else 0)
    if not (0 <= x <= 100 and 0 <= y <= 100 and right <= 100 and bottom <= 100):
        raise ValueError(f"the {name} region at ({x}, {y}) % lies outside the image")


def step_flags(grouped: dict[str, list[dict[str, Any]]],
               verdict: str | None) -> dict[str, bool]:
    """Reviewed labels. The task starts from the heuristic flags, and Label Studio leaves a
    group with nothing ticked out of the annotation: no ``flags`` result means the reviewer
    ticked none (the step is on the path unless rejected)."""
    flags = set(chosen(grouped, "flags"))
    return {"noop": "noop" in flags, "loop": "loop" in flags,
            "on_path": "off_path" not in flags and verdict != "reject",
            "recovery": "recovery" in flags}


def corrected_action(grouped: dict[str, list[dict[str, Any]]], current: Action) -> Action:
    """The action as the reviewer left it. The annotation is the whole state they submitted:
    points and box come only from its regions (a deleted region is gone), the type and text
    from its controls (a cleared text box is empty); fields the type does not use are
    dropped. Raises ValueError when that is not an action (a click without a point, typing
    without text)."""
    types = chosen(grouped, "action_type")
    kind = types[0] if types else current.type
    allowed = FIELDS_FOR_TYPE.get(kind, ())
    values: dict[str, Any] = {name: getattr(current, name) for name in allowed
                              if name not in ("x", "y", "x2", "y2", "target")}
    values.update(_points(grouped))
    if kind in POINT_TYPES and values.get("x") is None:
        raise ValueError(f"a {kind} needs a click point and the annotation has none "
                         "(the point was deleted and no new one placed)")
    values["target"] = _target(grouped, current.target, values.get("x"), values.get("y"))
    field = TEXT_FIELD.get(kind)
    if field is not None:
        text = text_of(grouped, "text")
        if text is None and kind in TEXT_TYPES:
            raise ValueError(f"the corrected text of a {kind} action is empty")
        values[field] = None if text is None else _text_value(field, text)
        if field == "keys" and values[field] is None:
            values[field] = ()
    kept = {name: value for name, value in values.items() if name in allowed}
    return Action(kind, **kept, coord_space="norm_1",
                  px=kept.get("x"), py=kept.get("y"), px2=kept.get("x2"), py2=kept.get("y2"))


def _points(grouped: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    values: dict[str, float] = {}
    for result in grouped.get("point", []):
        value = result.get("value", {})
        label = (value.get("keypointlabels") or ["click"])[0]
        names = ("x2", "y2") if label == "end" else ("x", "y")
        if names[0] in values:
            raise ValueError(f"the annotation has two {label!r} points; keep one")
        values[names[0]], values[names[1]] = _unit(value["x"]), _unit(value["y"])
    return values


def _target(grouped: dict[str, list[dict[str, Any]]], recorded: Target | None,
            x: float | None, y: float | None) -> Target | None:
    """The annotation's box that contains the click (the first box for an action without
    one); None when no box does. A box left as predicted keeps the recorded element's text
    and role; a redrawn one is only a box."""
    for result in grouped.get("target", []):
        value = result.get("value", {})
        box = Target(x0=_unit(value["x"]), y0=_unit(value["y"]),
                     x1=_unit(value["x"] + value["width"]),
                     y1=_unit(value["y"] + value["height"]))
        if x is not None and y is not None and not box.contains(x, y):
            continue
        if recorded is not None and _same_box(recorded, box):
            return recorded
        return box
    return None


def _same_box(recorded: Target, box: Target) -> bool:
    edges = ("x0", "y0", "x1", "y1")
    return all(getattr(recorded, e) is not None
               and abs(float(getattr(recorded, e)) - float(getattr(box, e))) < 2e-4
               for e in edges)


def _text_value(field: str, text: str) -> Any:
    if field == "keys":
        return normalise_keys(k for k in text.replace(" ", "").split("+") if k)
    if field == "amount":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"the amount {text!r} is not a number") from None
    if field == "tool_args":
        try:
            return canonical_json(json.loads(text))
        except json.JSONDecodeError as error:
            raise ValueError(f"the tool arguments are not JSON: {error.msg}") from None
    if field == "direction":
        return text.strip().lower()
    return text


def first_wrong_step(grouped: dict[str, list[dict[str, Any]]], mask: list[bool]) -> int | None:
    """The window step (i of a_t+i) the reviewer marked as the first wrong one; None when they
    marked none (Label Studio leaves an empty choice group out: every step is right)."""
    marked = chosen(grouped, "first_wrong")
    if not marked:
        return None
    found = re.fullmatch(r"a_t\+(\d+)", marked[0])
    if found is None or int(found[1]) >= len(mask) or not mask[int(found[1])]:
        raise ValueError(f"the first wrong step {marked[0]!r} is not a real step of the window "
                         f"(a_t+0 ... a_t+{sum(mask) - 1})")
    return int(found[1])
