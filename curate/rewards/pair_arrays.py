"""The step scorer's and the repeat rule's numbers for many pairs of actions at once.

``ActionArrays.of(actions).credits(predicted, reference)[n]`` equals
``credit_scorer(preset)(actions[predicted[n]], actions[reference[n]])`` and ``repeats(earlier,
later)[n]`` equals ``trajectory._is_repeat(actions[earlier[n]], actions[later[n]])``, bit for
bit (tests/test_rewards_windows.py holds them to it). The fields the rules read are numpy
columns, one entry per action:

* pointer pairs, most of a recording's pairs (every click has its own coordinates), are
  array operations; the two steps whose last bit could differ between numpy and Python,
  ``math.hypot`` and ``math.exp``, still run through Python's ``math``, on the pairs that
  reach them only;
* tool calls compare normalised names as codes and score each distinct pair of argument
  texts once;
* the repeat rule compares per-action codes of the normalised fields ``same_action`` reads;
* every other pair is scored by the Python scorer, one call each.

Strings are normalised once per distinct value (through an Arrow dictionary), with the same
Python functions the scorer uses, so no Unicode rule is restated here. Kept out of the
package's eager imports, like :mod:`curate.rewards.windows`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from curate.actions import Action
from curate.rewards.match import (
    _DIRECTION_ALIASES,
    POINT_TYPES,
    _json_similarity,
    _load_json,
    clean_text,
    credit_scorer,
    key_set,
    normalise_url,
    types_match,
)
from curate.rewards.presets import MatchPreset
from curate.rewards.trajectory import REPEATABLE, SAME_POINT, _json_text

Indices = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]

# The fields the scorer and the repeat rule read, as an Arrow struct (a subset of the
# store's action struct: a steps table's action column is read as it is).
_STRING = ("type", "text", "direction", "app", "url", "tool_name", "tool_args")
_FLOAT = ("x", "y", "x2", "y2")
_BOX = ("x0", "y0", "x1", "y1")
ACTION_FIELDS = pa.struct(
    [pa.field(name, pa.string()) for name in _STRING]
    + [pa.field(name, pa.float64()) for name in _FLOAT]
    + [pa.field("keys", pa.list_(pa.string())),
       pa.field("target", pa.struct([pa.field(name, pa.float64()) for name in _BOX]))])


def _valid(values: pa.Array) -> Flags:
    """True where ``values`` is not null (read from the validity bitmap)."""
    if values.null_count == 0:
        return np.ones(len(values), dtype=bool)
    if values.null_count == len(values):
        return np.zeros(len(values), dtype=bool)
    bits = np.frombuffer(values.buffers()[0], dtype=np.uint8)
    unpacked = np.unpackbits(bits, bitorder="little")
    return unpacked[values.offset:values.offset + len(values)].astype(bool)


def _floats(values: pa.Array) -> tuple[Scores, Flags]:
    """(values with NaN where null, validity) of a float64 array, read from its buffers."""
    valid = _valid(values)
    if not valid.any() or values.type == pa.null():
        return np.full(len(values), np.nan), valid
    data = np.frombuffer(values.buffers()[1], dtype=np.float64)
    found = data[values.offset:values.offset + len(values)].copy()
    found[~valid] = np.nan
    return found, valid


def _codes(values: pa.Array, normalise: Callable[[Any], Any],
           known: dict[Any, int] | None = None) -> tuple[Indices, list[Any]]:
    """Per row, the code of ``normalise(value)`` (value None for null): equal codes for
    equal normalised values; and the normalised value of each code. ``normalise`` runs once
    per distinct value; ``known`` fixes the codes of some normalised values."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    codes = dict(known or {})
    by_entry = np.array([codes.setdefault(normalise(value), len(codes))
                         for value in encoded.dictionary.to_pylist()] or [0], dtype=np.int64)
    indices = encoded.indices
    positions = np.frombuffer(indices.buffers()[1], dtype=np.dtype(
        f"int{indices.type.bit_width}"))[indices.offset:indices.offset + len(indices)]
    return by_entry[positions], list(codes)


def _child(values: pa.StructArray, name: str, kind: pa.DataType) -> pa.Array:
    """A field of the struct with the parent's nulls applied; all null where the struct
    type lacks the field (an older store's action struct)."""
    if values.type.get_field_index(name) < 0:
        return pa.nulls(len(values), kind)
    found = pc.struct_field(values, name)
    return found if found.type == kind else found.cast(kind)


def _key_codes(keys: pa.Array) -> Indices:
    """Codes of key_set(keys) per row (a null list is no keys, as Action.from_row reads it)."""
    flat = pc.list_flatten(keys)
    if len(flat) and pc.any(pc.match_substring(flat, "\x00")).as_py():
        # A key holding the separator: join nothing, normalise each row's list itself.
        memo: dict[frozenset[str], int] = {}
        return np.array([memo.setdefault(key_set(row or ()), len(memo))
                         for row in keys.to_pylist()], dtype=np.int64)
    joined = pc.fill_null(pc.binary_join(keys, "\x00"), "")
    return _codes(joined, lambda text: key_set(text.split("\x00")) if text else frozenset())[0]


@dataclass
class ActionArrays:
    """The fields pair scoring reads, one entry per action of ``actions``."""

    actions: Sequence[Action]
    types: list[str]
    type_of: Indices
    x: Scores
    y: Scores
    x2: Scores
    y2: Scores
    has_start: Flags  # x and y both recorded
    has_end: Flags
    box: npt.NDArray[np.float64]  # (actions, 4): x0, y0, x1, y1
    has_box: Flags  # a target with all four edges
    codes: dict[str, Indices]  # normalised fields: equal codes for equal values
    args_text: list[str | None]  # tool_args per code of codes["args"]

    @classmethod
    def of(cls, actions: Sequence[Action]) -> ActionArrays:
        columns: dict[str, list[Any]] = {name: [getattr(action, name) for action in actions]
                                         for name in (*_STRING, *_FLOAT)}
        columns["keys"] = [list(action.keys) for action in actions]
        columns["target"] = [None if action.target is None else
                             {name: getattr(action.target, name) for name in _BOX}
                             for action in actions]
        arrays = [pa.array(columns[f.name], f.type) for f in ACTION_FIELDS]
        return cls.from_arrow(pa.StructArray.from_arrays(arrays, fields=list(ACTION_FIELDS)),
                              actions)

    @classmethod
    def from_arrow(cls, values: pa.StructArray, actions: Sequence[Action]) -> ActionArrays:
        """From an action struct array (a steps table's ``action`` column) and the same
        actions as objects (for the pairs scored in Python)."""
        kinds, types = _codes(_child(values, "type", pa.string()), str)
        floats = {name: _floats(_child(values, name, pa.float64())) for name in _FLOAT}
        target = _child(values, "target", ACTION_FIELDS.field("target").type)
        edges = [_floats(_child(target, name, pa.float64())) for name in _BOX]
        args = _child(values, "tool_args", pa.string())
        args_code, args_text = _codes(args, lambda text: text)
        tool_name = _child(values, "tool_name", pa.string())

        def cleaned(name: str) -> Indices:
            return _codes(_child(values, name, pa.string()),
                          lambda text: clean_text(text or ""))[0]

        codes = {
            "args": args_code,
            "tool_name": _codes(tool_name, lambda name: (name or "").strip().lower())[0],
            "tool": _codes(tool_name, lambda name: name or "")[0],
            "text": cleaned("text"), "app": cleaned("app"),
            "keys": _key_codes(_child(values, "keys", ACTION_FIELDS.field("keys").type)),
            "url": _codes(_child(values, "url", pa.string()),
                          lambda url: normalise_url(url or ""))[0],
            "args_json": _codes(args, _json_text)[0],
            "direction": _codes(_child(values, "direction", pa.string()), _direction_label,
                                _DIRECTIONS)[0],
        }
        arrays = cls(actions, types, kinds, floats["x"][0], floats["y"][0], floats["x2"][0],
                     floats["y2"][0], floats["x"][1] & floats["y"][1],
                     floats["x2"][1] & floats["y2"][1],
                     np.stack([edge[0] for edge in edges], axis=1)
                     if len(values) else np.zeros((0, 4)),
                     np.logical_and.reduce([edge[1] for edge in edges]), codes, args_text)
        with np.errstate(invalid="ignore"):
            arrays.codes["direction"] = arrays._directions()
        return arrays

    def _directions(self) -> Indices:
        """Codes of direction_of per action: the recorded label's where there is one, else
        the main axis of the movement (the same codes for the same words, see
        _DIRECTIONS)."""
        dx, dy = self.x2 - self.x, self.y2 - self.y
        moved = self.has_start & self.has_end & ~((dx == 0) & (dy == 0))
        horizontal = np.abs(dx) > np.abs(dy)
        by_motion = np.where(horizontal, np.where(dx > 0, _DIRECTIONS["right"],
                                                  _DIRECTIONS["left"]),
                             np.where(dy > 0, _DIRECTIONS["down"], _DIRECTIONS["up"]))
        label = self.codes["direction"]
        found: Indices = np.where(label != _DIRECTIONS[None], label,
                                  np.where(moved, by_motion, _DIRECTIONS[None]))
        return found

    def credits(self, predicted: Indices, reference: Indices, rules: MatchPreset) -> Scores:
        """credit_scorer(rules)(actions[p], actions[r]) for each pair (p, r)."""
        with np.errstate(invalid="ignore", over="ignore"):
            return self._credits(predicted, reference, rules)

    def _credits(self, predicted: Indices, reference: Indices, rules: MatchPreset) -> Scores:
        found = np.zeros(len(predicted), dtype=np.float64)
        count = len(self.types)
        pointer = np.zeros((count, count), dtype=bool)
        tool = np.zeros((count, count), dtype=bool)
        for i, p in enumerate(self.types):
            for j, r in enumerate(self.types):
                same_kind = types_match(p, r, rules)
                pointer[i, j] = same_kind and p in POINT_TYPES and r in POINT_TYPES
                tool[i, j] = same_kind and p == "tool_call" and r == "tool_call"
        kind_p, kind_r = self.type_of[predicted], self.type_of[reference]
        is_pointer, is_tool = pointer[kind_p, kind_r], tool[kind_p, kind_r]
        found[is_pointer] = self._pointer(predicted[is_pointer], reference[is_pointer], rules)
        found[is_tool] = self._tool(predicted[is_tool], reference[is_tool], rules)
        rest = np.flatnonzero(~is_pointer & ~is_tool)
        if len(rest):
            credit = credit_scorer(rules)
            found[rest] = [credit(self.actions[p], self.actions[r])
                           for p, r in zip(predicted[rest].tolist(), reference[rest].tolist(),
                                           strict=True)]
        return found

    def _pointer(self, predicted: Indices, reference: Indices, rules: MatchPreset) -> Scores:
        """match._position_outcome's credit of each predicted point against its reference
        (no image size, no other elements: what credit_scorer scores)."""
        px, py = self.x[predicted], self.y[predicted]
        x0, y0, x1, y1 = self.box[reference].T
        has_box = self.has_box[reference]
        grow_x, grow_y = (x1 - x0) * rules.box_grow / 2, (y1 - y0) * rules.box_grow / 2
        # Python's max(0.0, v) and min(1.0, v) as _grow computes them (NaN gives the bound).
        low_x, low_y = _at_least_zero(x0 - grow_x), _at_least_zero(y0 - grow_y)
        high_x, high_y = _at_most_one(x1 + grow_x), _at_most_one(y1 + grow_y)
        in_box = has_box & (low_x <= px) & (px <= high_x) & (low_y <= py) & (py <= high_y)
        has_point = self.has_start[reference]
        rx = np.where(has_point, self.x[reference], (x0 + x1) / 2)
        ry = np.where(has_point, self.y[reference], (y0 + y1) / 2)
        no_position = ~has_point & ~has_box
        found = np.where(no_position, 1.0, 0.0)
        found[in_box] = 1.0
        # Without its own point the reference is measured from its box's centre.
        measured = np.flatnonzero(self.has_start[predicted] & ~in_box & ~no_position)
        found[~self.has_start[predicted]] = 0.0
        if len(measured):
            found[measured] = _distance_credits(px[measured] - rx[measured],
                                                py[measured] - ry[measured], rules)
        return found

    def _tool(self, predicted: Indices, reference: Indices, rules: MatchPreset) -> Scores:
        """match._tool_credit per pair, through _unit: 0 for different tools, else the
        arguments' similarity, computed once per distinct pair of argument texts."""
        same = self.codes["tool_name"][predicted] == self.codes["tool_name"][reference]
        args = self.codes["args"]
        found = np.zeros(len(predicted), dtype=np.float64)
        codes = np.stack([args[predicted[same]], args[reference[same]]], axis=1)
        distinct, inverse = np.unique(codes, axis=0, return_inverse=True)
        known = _ARGS_CREDIT.setdefault(rules, {})
        if len(known) > _ARGS_CACHE_SIZE:
            known.clear()
        texts = self.args_text
        credits = [_args_credit(texts[p], texts[r], rules, known) for p, r in distinct.tolist()]
        found[same] = np.array(credits, dtype=np.float64)[inverse.ravel()] if credits else 0.0
        return found

    def repeats(self, earlier: Indices, later: Indices) -> Flags:
        """trajectory._is_repeat(actions[a], actions[b]) for each pair (a, b)."""
        with np.errstate(invalid="ignore"):
            return self._repeats(earlier, later)

    def _repeats(self, earlier: Indices, later: Indices) -> Flags:
        repeatable = np.array([name in REPEATABLE for name in self.types], dtype=bool)
        same = (self.type_of[earlier] == self.type_of[later]) & ~repeatable[self.type_of[later]]
        for name in ("tool", "text", "keys", "direction", "app", "url", "args_json"):
            same &= self.codes[name][earlier] == self.codes[name][later]
        for xs, ys, has in ((self.x, self.y, self.has_start), (self.x2, self.y2, self.has_end)):
            both = has[earlier] & has[later]
            close = ((np.abs(xs[earlier] - xs[later]) <= SAME_POINT)
                     & (np.abs(ys[earlier] - ys[later]) <= SAME_POINT))
            same &= np.where(both, close, ~has[earlier] & ~has[later])
        found: Flags = same
        return found


# The codes of direction_of's answers that a movement can give; recorded labels get theirs
# after these (a label "up" and an upward movement are the same direction).
_DIRECTIONS: dict[str | None, int] = {None: 0, "up": 1, "down": 2, "left": 3, "right": 4}


def _direction_label(label: str | None) -> str | None:
    """direction_of's reading of a recorded label (None when there is none)."""
    if not label:
        return None
    cleaned = label.strip().lower()
    return _DIRECTION_ALIASES.get(cleaned, cleaned)


def _at_least_zero(values: Scores) -> Scores:
    found: Scores = np.where(values > 0.0, values, 0.0)
    return found


def _at_most_one(values: Scores) -> Scores:
    found: Scores = np.where(values < 1.0, values, 1.0)
    return found


def _distance_credits(dx: Scores, dy: Scores, rules: MatchPreset) -> Scores:
    """match.distance_credit of each distance, through _unit. The distance and the decay
    are Python's ``math.hypot`` and ``math.exp`` (numpy's may differ in the last bit); the
    comparisons and arithmetic around them are the same IEEE operations in numpy."""
    distance = np.fromiter(map(math.hypot, dx.tolist(), dy.tolist()), np.float64, len(dx))
    threshold = rules.click_threshold
    within = distance <= threshold if rules.click_inclusive else distance < threshold
    found = np.where(within, 1.0, 0.0)
    if rules.click_decay is None:
        return found
    decays = np.flatnonzero(~within & ~np.isnan(distance))
    exponent = -rules.click_decay * (distance[decays] - threshold)
    decayed = np.fromiter(map(math.exp, exponent.tolist()), np.float64, len(decays))
    # _unit: NaN (from an infinite distance with no decay) is no credit, then [0, 1].
    found[decays] = np.where(np.isnan(decayed), 0.0,
                             np.where(decayed < 1.0, np.where(decayed > 0.0, decayed, 0.0), 1.0))
    return found


# Tool argument similarity per preset and (predicted, reference) argument texts: a pure
# function of them, and the same calls recur across the batches of a store (the same tools
# asked the same things). Bounded: emptied when it grows past _ARGS_CACHE_SIZE.
_ARGS_CREDIT: dict[MatchPreset, dict[tuple[str | None, str | None], float]] = {}
_ARGS_CACHE_SIZE = 200_000


def _args_credit(predicted: str | None, reference: str | None, rules: MatchPreset,
                 known: dict[tuple[str | None, str | None], float]) -> float:
    value = known.get((predicted, reference))
    if value is None:
        value = known[predicted, reference] = _unit(_json_similarity(
            _load_json(predicted), _load_json(reference), rules))
    return value


def _unit(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


__all__ = ["ACTION_FIELDS", "ActionArrays"]
