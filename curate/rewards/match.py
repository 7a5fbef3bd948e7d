"""Score one predicted action against a reference action (or against alternative references).

The score is ``type credit x argument credit`` in [0, 1]: the argument scorer is chosen by the
reference's type (pointer position, path, direction, text, key set, app, URL, tool call, or
type only), and every threshold comes from a :class:`~curate.rewards.presets.MatchPreset`.
Pure functions over :class:`~curate.actions.Action`; no I/O, no heavy imports.
"""

from __future__ import annotations

import functools
import json
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from curate.actions import Action, Target, canonical_json
from curate.rewards.presets import MatchPreset, get_preset

# Argument families: a wrong type can earn partial credit (type_mismatch_factor) only when the
# two types carry comparable arguments, e.g. a double click on the right spot for a click.
FAMILIES: dict[str, str] = {
    **dict.fromkeys(("click", "double_click", "right_click", "middle_click", "long_press",
                     "move"), "point"),
    "drag": "path", "swipe": "path", "type": "text", "answer": "text", "scroll": "scroll",
    "key": "key", "open_app": "app", "navigate": "url", "tool_call": "tool",
}
TYPE_ONLY = frozenset({"wait", "back", "home", "done", "fail"})
# Levenshtein is quadratic in pure Python; typed text and answers are short, and beyond this
# many characters the prefixes decide (keeps one reward call in the millisecond range).
MAX_EDIT_CHARS = 500

ImageSize = tuple[int, int] | None
Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class StepScore:
    """One step's credit in [0, 1], whether the types matched, and why."""

    score: float
    type_match: bool
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


class _Part(NamedTuple):
    score: float
    reason: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Context:
    rules: MatchPreset
    image_size: ImageSize
    # Boxes of other recorded elements: a point inside one of them (and outside the target)
    # clicked something else, however close it is to the reference point.
    elements: tuple[Box, ...] = ()


def score_step(predicted: Action, reference: Action | Sequence[Action], *,
               preset: MatchPreset | str = "default",
               image_size: tuple[int, int] | None = None,
               elements: Sequence[Target] = ()) -> StepScore:
    """Credit for ``predicted`` against ``reference`` (the best of several alternatives).

    ``image_size`` (width, height) lets the isotropic distance of some presets measure
    distances as on screen; without it distances are per-axis normalised. ``elements`` are
    other recorded elements: a point outside the reference's target box but inside one of
    them (one that does not also hold the reference point) earns nothing, even within the
    distance threshold.
    """
    return step_scorer(preset, image_size, elements)(predicted, reference)


StepScorer = Callable[[Action, "Action | Sequence[Action]"], StepScore]


def step_scorer(preset: MatchPreset | str = "default",
                image_size: tuple[int, int] | None = None,
                elements: Sequence[Target] = ()) -> StepScorer:
    """score_step with the preset and image size checked once, for scoring many pairs."""
    boxes = tuple(dict.fromkeys(box for box in map(_box, elements) if box is not None))
    context = _Context(get_preset(preset), _valid_size(image_size), boxes)

    def score(predicted: Action, reference: Action | Sequence[Action]) -> StepScore:
        if isinstance(reference, Action):
            return _score_one(predicted, reference, context)
        return _best_of(predicted, reference, context)

    return score


POINT_TYPES = frozenset(t for t, family in FAMILIES.items() if family == "point")


def credit_scorer(preset: MatchPreset | str = "default") -> Callable[[Action, Action], float]:
    """``step_scorer(preset)(predicted, reference).score`` alone, for scoring many pairs:
    pointer pairs skip building the reason and detail, every other pair is scored in full."""
    context = _Context(get_preset(preset), None, ())
    full = step_scorer(preset)

    def credit(predicted: Action, reference: Action) -> float:
        # Pointer types are never turned into taps (only swipes and drags are), and the
        # reference's scorer is then the point scorer: the same number as _score_one's.
        if (predicted.type in POINT_TYPES and reference.type in POINT_TYPES
                and types_match(predicted.type, reference.type, context.rules)):
            point = start_point(predicted)
            if point is None:
                return 0.0
            return _unit(_position_outcome(point, reference, context)[0])
        if (predicted.type == "tool_call" and reference.type == "tool_call"
                and types_match(predicted.type, reference.type, context.rules)):
            # Tool calls are never taps either: _score_tool's number without its reason
            # text (a third of a tool pair's cost).
            return _unit(_tool_credit(predicted, reference, context.rules))
        return full(predicted, reference).score

    return credit


def _score_one(predicted: Action, reference: Action, context: _Context) -> StepScore:
    pred, ref = _as_tap(predicted, context.rules), _as_tap(reference, context.rules)
    if not types_match(pred.type, ref.type, context.rules):
        return _mismatch(pred, ref, context)
    part = _SCORERS[ref.type](pred, ref, context)
    return StepScore(_unit(part.score), True, part.reason, part.detail)


def _best_of(predicted: Action, alternatives: Sequence[Action], context: _Context) -> StepScore:
    if not alternatives:
        return StepScore(0.0, False, "the reference step has no alternatives")
    if len(alternatives) == 1:
        return _score_one(predicted, alternatives[0], context)
    scores = [_score_one(predicted, alternative, context) for alternative in alternatives]
    index = max(range(len(scores)), key=lambda i: scores[i].score)
    best = scores[index]
    if len(scores) == 1:
        return best
    detail = {**best.detail, "alternative": index}
    return replace(best, reason=f"alternative {index}: {best.reason}", detail=detail)


def types_match(predicted: str, reference: str, rules: MatchPreset) -> bool:
    """Same type, or both in one of the preset's equivalence groups."""
    if predicted == reference:
        return True
    return any(predicted in group and reference in group for group in rules.type_groups)


def _family_credit(predicted: str, reference: str, rules: MatchPreset) -> bool:
    """Whether a step of the wrong type can still earn part of its arguments' credit."""
    family = FAMILIES.get(reference)
    return (rules.type_mismatch_factor > 0 and family is not None
            and FAMILIES.get(predicted) == family)


def zero_by_type(predicted: str, reference: str, rules: MatchPreset) -> bool:
    """True when every action of type ``predicted`` scores 0 against every action of type
    ``reference``, whatever their arguments: a pair that needs no scoring."""
    if rules.tap_lift_threshold is not None and {predicted, reference} & {"swipe", "drag"}:
        return False  # a swipe whose ends nearly coincide is scored as a tap
    return (not types_match(predicted, reference, rules)
            and not _family_credit(predicted, reference, rules))


def _mismatch(pred: Action, ref: Action, context: _Context) -> StepScore:
    factor = context.rules.type_mismatch_factor
    base = f"type {pred.type} instead of {ref.type}"
    if not _family_credit(pred.type, ref.type, context.rules):
        return StepScore(0.0, False, base, {"type_factor": 0.0})
    part = _SCORERS[ref.type](pred, ref, context)
    detail = {**part.detail, "type_factor": factor}
    return StepScore(_unit(factor * part.score), False, f"{base} (x{factor:g}); {part.reason}",
                     detail)


def _as_tap(action: Action, rules: MatchPreset) -> Action:
    """A swipe or drag whose ends nearly coincide is a tap at its start (AITW's rule)."""
    limit = rules.tap_lift_threshold
    if limit is None or action.type not in ("swipe", "drag"):
        return action
    start, end = start_point(action), end_point(action)
    if start is None or end is None or math.dist(start, end) > limit:
        return action
    return replace(action, type="click", x2=None, y2=None, direction=None)


# -- pointer positions --------------------------------------------------------------------------

def _score_point(pred: Action, ref: Action, context: _Context) -> _Part:
    point = start_point(pred)
    if point is None:
        return _Part(0.0, f"predicted {pred.type} has no position", {})
    return _position_credit(point, ref, context)


def _position_credit(point: Point, ref: Action, context: _Context) -> _Part:
    credit, kind, distance, other = _position_outcome(point, ref, context)
    if kind == "box":
        return _Part(credit, "inside the target box", {"in_box": True})
    if kind == "outside":
        return _Part(credit, "outside the target box", {"in_box": False})
    if kind == "no_position":
        return _Part(credit, "reference has no position: type only", {})
    if kind == "other":
        return _Part(credit, "inside another recorded element, outside the target",
                     {"in_box": False, "other_element": list(other or ())})
    detail: dict[str, Any] = {"distance": distance,
                              "in_box": False if _box(ref.target) else None}
    return _Part(credit, f"{distance:.4f} from the reference point "
                         f"(threshold {context.rules.click_threshold:.4f})", detail)


def _position_outcome(point: Point, ref: Action, context: _Context
                      ) -> tuple[float, str, float, Box | None]:
    """(credit, which rule decided, distance, the other element hit) of a point against the
    reference's position: the number alone is what batch scoring needs, without the reason
    text (formatting it was a third of a pair's cost)."""
    rules = context.rules
    box = _box(ref.target)
    if box is not None and _inside(point, _grow(box, rules.box_grow)):
        return 1.0, "box", 0.0, None
    ref_point = start_point(ref) or (_centre(box) if box is not None else None)
    if ref_point is None:
        if box is not None:
            return 0.0, "outside", 0.0, None
        return 1.0, "no_position", 0.0, None
    other = _other_element(point, ref_point, box, context.elements)
    if other is not None:
        return 0.0, "other", 0.0, other
    distance = point_distance(point, ref_point, rules, context.image_size)
    return distance_credit(distance, rules.click_threshold, rules), "distance", distance, None


def _other_element(point: Point, ref_point: Point, box: Box | None,
                   elements: tuple[Box, ...]) -> Box | None:
    """The first recorded element other than the target that holds ``point`` (and not the
    reference point: a container of the target is not another element)."""
    for element in elements:
        if element != box and _inside(point, element) and not _inside(ref_point, element):
            return element
    return None


def point_distance(a: Point, b: Point, rules: MatchPreset, image_size: ImageSize = None) -> float:
    """Distance in normalised units; isotropic presets weigh the axes by the screen's sides.

    Isotropic distance is the pixel distance over sqrt((w^2 + h^2) / 2), so on a square screen
    it equals the per-axis normalised distance and thresholds mean the same thing.
    """
    dx, dy = a[0] - b[0], a[1] - b[1]
    if rules.distance == "isotropic" and image_size is not None:
        width, height = image_size
        return math.hypot(dx * width, dy * height) / math.sqrt((width**2 + height**2) / 2)
    return math.hypot(dx, dy)


def distance_credit(distance: float, threshold: float, rules: MatchPreset) -> float:
    """1 within the threshold, then exp(-decay * excess), or 0 for presets without decay."""
    within = distance <= threshold if rules.click_inclusive else distance < threshold
    if within:
        return 1.0
    if rules.click_decay is None or math.isnan(distance):
        return 0.0
    return math.exp(-rules.click_decay * (distance - threshold))


def _score_drag(pred: Action, ref: Action, context: _Context) -> _Part:
    rules = context.rules
    threshold = rules.click_threshold if rules.drag_threshold is None else rules.drag_threshold
    pairs = (("start", start_point(pred), start_point(ref)),
             ("end", end_point(pred), end_point(ref)))
    credits: dict[str, Any] = {}
    for name, mine, theirs in pairs:
        if theirs is None:
            continue
        if mine is None:
            credits[name] = 0.0
            continue
        distance = point_distance(mine, theirs, rules, context.image_size)
        credits[name] = distance_credit(distance, threshold, rules)
    if not credits:
        return _Part(1.0, "reference path has no position: type only", {})
    values = list(credits.values())
    credit = min(values) if rules.drag_combine == "min" else sum(values) / len(values)
    reasons = ", ".join(f"{name} {value:.2f}" for name, value in credits.items())
    return _Part(credit, f"path endpoints: {reasons} ({rules.drag_combine})", credits)


def _score_swipe(pred: Action, ref: Action, context: _Context) -> _Part:
    wanted = direction_of(ref)
    if wanted is None:
        return _score_drag(pred, ref, context)
    return _direction_credit(pred, wanted, context.rules)


def _score_scroll(pred: Action, ref: Action, context: _Context) -> _Part:
    wanted = direction_of(ref)
    if not context.rules.scroll_direction or wanted is None:
        return _Part(1.0, "scroll: type only", {})
    return _direction_credit(pred, wanted, context.rules)


_AXIS = {"up": "vertical", "down": "vertical", "left": "horizontal", "right": "horizontal"}


def _direction_credit(pred: Action, wanted: str, rules: MatchPreset) -> _Part:
    got = direction_of(pred)
    detail = {"direction": got, "reference_direction": wanted}
    if got is None:
        return _Part(0.0, f"predicted {pred.type} has no direction", detail)
    if rules.direction_match == "axis":
        same = _AXIS.get(got, got) == _AXIS.get(wanted, wanted)
        return _Part(float(same), f"axis of {got} vs {wanted}", detail)
    return _Part(float(got == wanted), f"direction {got} vs {wanted}", detail)


_DIRECTION_ALIASES = {"top": "up", "bottom": "down", "upward": "up", "downward": "down"}


def direction_of(action: Action) -> str | None:
    """up/down/left/right: the action's own label, else the primary axis of its movement."""
    if action.direction:
        label = action.direction.strip().lower()
        return _DIRECTION_ALIASES.get(label, label)
    start, end = start_point(action), end_point(action)
    if start is None or end is None:
        return None
    dx, dy = end[0] - start[0], end[1] - start[1]
    if dx == 0 and dy == 0:
        return None
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"  # screen y grows downwards


def start_point(action: Action) -> Point | None:
    if action.x is None or action.y is None:
        return None
    return (action.x, action.y)


def end_point(action: Action) -> Point | None:
    if action.x2 is None or action.y2 is None:
        return None
    return (action.x2, action.y2)


Box = tuple[float, float, float, float]


def _box(target: Target | None) -> Box | None:
    if target is None or None in (target.x0, target.y0, target.x1, target.y1):
        return None
    assert target.x0 is not None and target.y0 is not None
    assert target.x1 is not None and target.y1 is not None
    return (target.x0, target.y0, target.x1, target.y1)


def _grow(box: Box, fraction: float) -> Box:
    """The box enlarged by ``fraction`` of its size, half on each side, clipped to the screen."""
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * fraction / 2, (y1 - y0) * fraction / 2
    return (max(0.0, x0 - dx), max(0.0, y0 - dy), min(1.0, x1 + dx), min(1.0, y1 + dy))


def _inside(point: Point, box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _centre(box: Box) -> Point:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


# -- text ---------------------------------------------------------------------------------------

def _score_text(pred: Action, ref: Action, context: _Context) -> _Part:
    similarity = text_similarity(pred.text or "", ref.text or "", context.rules.text_metric,
                                 single_token_substring=context.rules.single_token_substring)
    credit = text_credit(similarity, context.rules)
    return _Part(credit, f"text {context.rules.text_metric} {similarity:.2f}",
                 {"text_similarity": similarity})


def text_credit(similarity: float, rules: MatchPreset) -> float:
    """1 at the preset's threshold; below it 0 (binary) or similarity / threshold (scaled)."""
    threshold = rules.text_threshold
    passed = similarity >= threshold if rules.text_inclusive else similarity > threshold
    if passed:
        return 1.0
    if rules.text_credit == "scaled" and threshold > 0:
        return similarity / threshold
    return 0.0


def text_similarity(a: str, b: str, metric: str = "edit", *,
                    single_token_substring: bool = False) -> float:
    """Similarity in [0, 1] of two strings, compared lower-cased with whitespace collapsed.

    ``token_f1``: F1 of the word multisets; ``edit``: 1 - Levenshtein / longer length;
    ``anls``: ``edit`` cut to 0 below 0.5 (ANLS with tau = 0.5); ``exact``: equality.
    Every metric is symmetric.
    """
    a, b = clean_text(a), clean_text(b)
    if a == b:
        return 1.0
    if metric == "exact" or not a or not b:
        return 0.0
    if metric == "token_f1":
        return _token_f1(a, b, single_token_substring)
    similarity = 1.0 - levenshtein(a, b) / max(len(a), len(b))
    if metric == "anls":
        return similarity if similarity > 0.5 else 0.0
    return similarity


def clean_text(text: str) -> str:
    """Lower-cased with runs of whitespace collapsed: the form every text metric compares."""
    return " ".join(text.lower().split())


def _tokens(text: str) -> list[str]:
    stripped = (token.strip(string.punctuation) for token in text.split())
    return [token for token in stripped if token]


def _token_f1(a: str, b: str, single_token_substring: bool) -> float:
    left, right = _tokens(a), _tokens(b)
    if single_token_substring and len(set(left)) == 1 and len(set(right)) == 1 and (
            left[0] in right[0] or right[0] in left[0]):
        return 1.0
    common = sum((Counter(left) & Counter(right)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(left), common / len(right)
    return 2 * precision * recall / (precision + recall)


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute), over at most MAX_EDIT_CHARS of each."""
    a, b = a[:MAX_EDIT_CHARS], b[:MAX_EDIT_CHARS]
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


# -- keys, apps, URLs, tool calls ---------------------------------------------------------------

_KEY_ALIASES = {
    **dict.fromkeys(("control", "ctrlleft", "ctrlright", "lctrl", "rctrl", "ctl"), "ctrl"),
    **dict.fromkeys(("cmd", "command", "win", "windows", "super", "winleft", "winright",
                     "cmdleft", "cmdright", "commandleft", "commandright", "os"), "meta"),
    **dict.fromkeys(("option", "altleft", "altright", "optionleft", "optionright", "lalt",
                     "ralt"), "alt"),
    **dict.fromkeys(("shiftleft", "shiftright", "lshift", "rshift"), "shift"),
    "return": "enter", "esc": "escape", "del": "delete", "spacebar": "space", " ": "space",
    "pgup": "pageup", "page_up": "pageup", "pgdn": "pagedown", "page_down": "pagedown",
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
    "back_space": "backspace", "bksp": "backspace",
}


def key_set(keys: Iterable[str]) -> frozenset[str]:
    """Order-free, lower-case key names with aliases merged; "ctrl+c" counts as two keys."""
    names: set[str] = set()
    for key in keys:
        parts = key.split("+") if len(key) > 1 and "+" in key.strip("+") else [key]
        for part in parts:
            name = part.lower() if part == " " else part.strip().lower()
            if name:
                names.add(_KEY_ALIASES.get(name, name))
    return frozenset(names)


def _score_keys(pred: Action, ref: Action, context: _Context) -> _Part:
    mine, theirs = key_set(pred.keys), key_set(ref.keys)
    detail = {"keys": sorted(mine), "reference_keys": sorted(theirs)}
    if mine == theirs:
        return _Part(1.0, "same key set", detail)
    return _Part(0.0, f"keys {'+'.join(sorted(mine)) or 'none'} vs "
                      f"{'+'.join(sorted(theirs)) or 'none'}", detail)


def _score_app(pred: Action, ref: Action, context: _Context) -> _Part:
    if context.rules.app_metric == "text":
        similarity = text_similarity(pred.app or "", ref.app or "", context.rules.text_metric,
                                     single_token_substring=context.rules.single_token_substring)
        return _Part(text_credit(similarity, context.rules), f"app similarity {similarity:.2f}",
                     {"app_similarity": similarity})
    same = clean_text(pred.app or "") == clean_text(ref.app or "")
    return _Part(float(same), "same app" if same else f"app {pred.app!r} vs {ref.app!r}", {})


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def normalise_url(url: str) -> str:
    """Lower-case, no scheme, no leading www., no trailing slash: how URLs are compared."""
    text = _SCHEME.sub("", url.strip().lower())
    text = text.removeprefix("www.")
    return text.rstrip("/")


def _score_url(pred: Action, ref: Action, context: _Context) -> _Part:
    same = normalise_url(pred.url or "") == normalise_url(ref.url or "")
    return _Part(float(same), "same URL" if same else f"URL {pred.url!r} vs {ref.url!r}", {})


def _score_tool(pred: Action, ref: Action, context: _Context) -> _Part:
    if not _same_tool(pred, ref):
        return _Part(0.0, f"tool {pred.tool_name!r} vs {ref.tool_name!r}", {})
    similarity = _tool_credit(pred, ref, context.rules)
    return _Part(similarity, f"same tool, arguments {similarity:.2f}",
                 {"args_similarity": similarity})


def _same_tool(pred: Action, ref: Action) -> bool:
    return (pred.tool_name or "").strip().lower() == (ref.tool_name or "").strip().lower()


def _tool_credit(pred: Action, ref: Action, rules: MatchPreset) -> float:
    """The similarity of the calls' arguments, 0 for different tools."""
    if not _same_tool(pred, ref):
        return 0.0
    return _json_similarity(_load_json(pred.tool_args), _load_json(ref.tool_args), rules)


@functools.lru_cache(maxsize=4096)
def _load_json(text: str | None) -> Any:
    # Cached: the same arguments are compared many times over overlapping windows, and a
    # string's hash is computed once. Callers only read the result.
    if text is None:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text  # compared as a plain string


def _json_similarity(a: Any, b: Any, rules: MatchPreset) -> float:
    """Mean credit over the union of keys; strings by the preset's text rule, numbers equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        if not keys:
            return 1.0
        # Summed in key order: a set's order follows the process's string hashing, and a
        # float sum in another order can differ in the last bit from one run to the next.
        return sum(_json_similarity(a[k], b[k], rules) if k in a and k in b else 0.0
                   for k in sorted(keys)) / len(keys)
    if isinstance(a, str) and isinstance(b, str):
        return text_credit(text_similarity(a, b, rules.text_metric), rules)
    if _is_number(a) and _is_number(b):
        return float(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9))
    try:
        return float(canonical_json(a) == canonical_json(b))
    except (TypeError, ValueError):
        return float(a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_only(pred: Action, ref: Action, context: _Context) -> _Part:
    return _Part(1.0, f"{ref.type}: type only", {})


Scorer = Callable[[Action, Action, _Context], _Part]
_SCORERS: dict[str, Scorer] = {
    **dict.fromkeys(("click", "double_click", "right_click", "middle_click", "long_press",
                     "move"), _score_point),
    "drag": _score_drag, "swipe": _score_swipe, "scroll": _score_scroll,
    "type": _score_text, "answer": _score_text, "key": _score_keys, "open_app": _score_app,
    "navigate": _score_url, "tool_call": _score_tool,
    **dict.fromkeys(TYPE_ONLY, _type_only),
}


def _unit(value: float) -> float:
    """Clamp to [0, 1]; NaN (from NaN coordinates) is no credit."""
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


def _valid_size(size: tuple[int, int] | None) -> ImageSize:
    if size is None:
        return None
    width, height = size
    if not (_is_number(width) and _is_number(height)) or width <= 0 or height <= 0:
        return None
    return (int(width), int(height))


__all__ = ["FAMILIES", "POINT_TYPES", "StepScore", "clean_text", "credit_scorer",
           "direction_of", "distance_credit", "end_point", "key_set", "levenshtein",
           "normalise_url", "point_distance",
           "score_step", "start_point", "text_credit", "text_similarity", "types_match"]
