"""Score many K-step windows that index one list of actions, all at once.

``score_windows(actions, predicted, reference, mask)[w]`` equals
``score_trajectory([actions[i] for i in predicted[w]], [actions[i] for i in reference[w]],
mask=mask[w]).score`` bit for bit (a property test holds it to that), for forecasts exactly
as long as their reference and single-action reference steps: what ``curate segment`` scores
for every window of a batch.

It is faster because windows overlap. Each distinct (predicted, reference) pair of actions
is scored once with the same step scorer, and the alignment and contradiction rules of
:mod:`curate.rewards.trajectory` run as array operations over all windows instead of one
Python call per window. Kept out of the package's eager imports: it needs numpy, and a
trainer's reward worker does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from curate.actions import Action
from curate.rewards.match import zero_by_type
from curate.rewards.pair_arrays import ActionArrays
from curate.rewards.presets import MatchPreset, get_preset
from curate.rewards.trajectory import ENDS, TERMINAL, _check_numbers, _weights, score_trajectory

Indices = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float64]


class PairCache:
    """Step scores of (predicted, reference) action pairs computed so far, for calls over
    one list of actions and one preset, and the actions' fields as arrays. Kept as sorted
    key arrays, so a call looks up all of its pairs in one ``searchsorted``."""

    def __init__(self, arrays: ActionArrays | None = None) -> None:
        self.known: dict[str, tuple[Indices, Scores]] = {}
        self.arrays = arrays

    def arrays_of(self, actions: Sequence[Action]) -> ActionArrays:
        """The actions' fields as arrays, built on first use (a caller holding the actions
        as an Arrow column passes them ready: ActionArrays.from_arrow)."""
        if self.arrays is None:
            self.arrays = ActionArrays.of(actions)
        return self.arrays

    def values(self, what: str, keys: Indices, compute: Callable[[Indices], Scores]
               ) -> Scores:
        """The value of each of the distinct sorted ``keys``; ``compute`` is called once,
        with the keys not seen before."""
        known_keys, known_values = self.known.get(
            what, (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)))
        at = np.searchsorted(known_keys, keys)
        found = at < len(known_keys)
        found[found] = known_keys[at[found]] == keys[found]
        values = np.empty(len(keys), dtype=np.float64)
        values[found] = known_values[at[found]]
        missing = keys[~found]
        if len(missing):
            values[~found] = new = compute(missing)
            merged = np.concatenate([known_keys, missing])
            order = np.argsort(merged, kind="stable")
            self.known[what] = (merged[order], np.concatenate([known_values, new])[order])
        return values


def score_windows(actions: Sequence[Action], predicted: npt.ArrayLike, reference: npt.ArrayLike,
                  mask: npt.ArrayLike, *, preset: MatchPreset | str = "default",
                  discount: float = 0.9, shift_decay: float = 0.5,
                  contradiction_penalty: float = 0.25,
                  pairs: PairCache | None = None,
                  lengths: npt.ArrayLike | None = None) -> Scores:
    """score_trajectory's score for every row of the (windows, K) index arrays.

    ``predicted`` and ``reference`` index ``actions``; ``mask`` is True for real reference
    steps and False for padding. ``lengths``, when given, is each window's own horizon
    (1..K): its first ``lengths[w]`` steps are the forecast and its reference, what lies
    beyond is ignored, so windows of several horizons are scored in one call. ``pairs``,
    kept by the caller across calls over the same ``actions`` and preset, holds the step
    scores already computed (several horizons of one batch share most of their pairs) and
    the actions' fields as arrays. Raises ValueError
    for arrays of different shapes, indices out of range, or numbers out of range.
    """
    rules = get_preset(preset)
    _check_numbers(discount, shift_decay, 0.0, contradiction_penalty)
    preds, refs, flags = _checked(len(actions), predicted, reference, mask)
    inside = _inside(lengths, preds.shape)
    flags = flags & inside
    if rules.merge_type_enter:
        # Merging typing with its enter changes each window's length differently: there is
        # no common shape to vectorise over, so these presets are scored one window at a time.
        return np.array([score_trajectory(
            [actions[i] for i in p[:n]], [actions[i] for i in r[:n]], mask=list(m[:n]),
            preset=rules, discount=discount, shift_decay=shift_decay,
            contradiction_penalty=contradiction_penalty).score
            for p, r, m, n in zip(preds.tolist(), refs.tolist(), flags.tolist(),
                                  inside.sum(axis=1).tolist(), strict=True)],
            dtype=np.float64)
    if preds.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    cache = PairCache() if pairs is None else pairs
    arrays = cache.arrays_of(actions)
    # A pair outside a window's own horizon never scores: its gain is 0, which leaves the
    # matching's total as it is at the window's last column.
    zero = (_zero_by_type(arrays.types, arrays.type_of, rules, preds, refs)
            | ~inside[:, None, :])
    alignment = _alignment(arrays, preds, refs, flags, rules, discount, shift_decay, zero,
                           cache)
    contradictions = _contradictions(arrays, preds, refs, flags, inside)
    horizon = preds.shape[1]
    # The factors are Python powers, as score_trajectory computes them.
    factors = np.array([(1 - contradiction_penalty) ** n for n in range(horizon + 1)])
    length_factor = 1.0  # forecasts here are never longer than the horizon
    scores: Scores = np.minimum(1.0, np.maximum(
        0.0, alignment * length_factor * factors[contradictions]))
    return scores


def _checked(count: int, predicted: npt.ArrayLike, reference: npt.ArrayLike,
             mask: npt.ArrayLike) -> tuple[Indices, Indices, npt.NDArray[np.bool_]]:
    preds = np.asarray(predicted, dtype=np.int64)
    refs = np.asarray(reference, dtype=np.int64)
    flags = np.asarray(mask, dtype=bool)
    if preds.ndim != 2 or preds.shape != refs.shape or preds.shape != flags.shape:
        raise ValueError(f"predicted {preds.shape}, reference {refs.shape} and mask "
                         f"{flags.shape} must be (windows, K) arrays of one shape")
    for name, values in (("predicted", preds), ("reference", refs)):
        if values.size and (values.min() < 0 or values.max() >= count):
            raise ValueError(f"{name} indexes outside the {count} actions")
    return preds, refs, flags


def _inside(lengths: npt.ArrayLike | None, shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    """[w, j]: position j is within window w's own horizon."""
    windows, horizon = shape
    if lengths is None:
        return np.ones(shape, dtype=bool)
    own = np.asarray(lengths, dtype=np.int64)
    if own.shape != (windows,) or (own.size and (own.min() < 1 or own.max() > horizon)):
        raise ValueError(f"lengths must be one horizon in 1..{horizon} per window")
    found: npt.NDArray[np.bool_] = np.arange(horizon)[None, :] < own[:, None]
    return found


def _alignment(arrays: ActionArrays, preds: Indices, refs: Indices,
               flags: npt.NDArray[np.bool_], rules: MatchPreset, discount: float,
               shift_decay: float, zero: npt.NDArray[np.bool_], cache: PairCache) -> Scores:
    """The weighted monotone matching's total per window (trajectory._align's number).

    Padding rows are kept in the table with weight 0: a row of zero gains leaves every
    dynamic-programming value exactly as it was, so the result equals skipping the row.
    ``zero[w, i, j]`` marks pairs (reference i, predicted j) whose types alone score 0.
    """
    windows, horizon = preds.shape
    # Weights depend on the mask only: computed once per distinct mask.
    if horizon < 63:  # a row's bits as one integer key: much faster than unique rows
        keys = flags.astype(np.int64) @ (np.int64(1) << np.arange(horizon, dtype=np.int64))
        distinct, which = np.unique(keys, return_inverse=True)
        patterns = [[bool(key >> i & 1) for i in range(horizon)] for key in distinct.tolist()]
    else:
        rows, which = np.unique(flags, axis=0, return_inverse=True)
        patterns = rows.tolist()
    weights = np.array([_weights(row, discount) for row in patterns])[which.ravel()]
    pair_scores = np.zeros((windows, horizon, horizon), dtype=np.float64)
    # [w, reference i, predicted j]: real reference steps, of a type the prediction can match
    needed = flags[:, :, None] & ~zero
    count = len(arrays.type_of)
    pair_keys = (np.broadcast_to(preds[:, None, :], pair_scores.shape)[needed] * count
                 + np.broadcast_to(refs[:, :, None], pair_scores.shape)[needed])
    distinct_pairs, inverse = np.unique(pair_keys, return_inverse=True)
    pair_scores[needed] = cache.values("score", distinct_pairs, lambda missing: arrays.credits(
        missing // count, missing % count, rules))[inverse.ravel()]
    decay = np.array([[shift_decay ** abs(i - j) for j in range(horizon)]
                      for i in range(horizon)])
    gains = weights[:, :, None] * pair_scores * decay[None]
    previous = np.zeros((windows, horizon + 1), dtype=np.float64)
    for i in range(horizon):
        # best[i][j] = max(best[i-1][j], best[i][j-1], best[i-1][j-1] + gain): the first and
        # last terms for every j at once, then the running maximum along j. Every value is a
        # sum of non-negative gains, and a maximum is exact in any order: the same numbers
        # as best_matching's loop.
        row = np.zeros_like(previous)
        row[:, 1:] = np.maximum.accumulate(
            np.maximum(previous[:, 1:], previous[:, :-1] + gains[:, i, :]), axis=1)
        previous = row
    return np.where(flags.any(axis=1), previous[:, horizon], 1.0)


def _zero_by_type(types: list[str], type_of: Indices, rules: MatchPreset, preds: Indices,
                  refs: Indices) -> npt.NDArray[np.bool_]:
    """[w, reference i, predicted j]: pairs whose types alone make their score 0 (see
    match.zero_by_type)."""
    zero = np.array([[zero_by_type(p, r, rules) for r in types] for p in types], dtype=bool)
    found: npt.NDArray[np.bool_] = zero[type_of[preds[:, None, :]], type_of[refs[:, :, None]]]
    return found


def _contradictions(arrays: ActionArrays, preds: Indices, refs: Indices,
                    flags: npt.NDArray[np.bool_], inside: npt.NDArray[np.bool_]) -> Indices:
    """Contradictions per window, by trajectory._contradictions' rules (no screen states).
    A step past a window's own horizon is no contradiction: every rule at a position reads
    that position and the ones before it only."""
    ends = np.array([name in ENDS for name in arrays.types], dtype=bool)[arrays.type_of]
    terminal = np.array([name in TERMINAL for name in arrays.types],
                        dtype=bool)[arrays.type_of]
    predicted_end = ends[preds]
    horizon = preds.shape[1]
    positions = np.arange(horizon)
    stop = np.where(predicted_end.any(axis=1), predicted_end.argmax(axis=1), horizon)
    after_stop = (positions[None, :] > stop[:, None]) & ~terminal[preds]
    reference_ended = np.zeros_like(predicted_end)
    reference_ended[:, 1:] = np.logical_or.accumulate(ends[refs], axis=1)[:, :-1]
    reference_acts_after_end = flags & reference_ended & ~terminal[refs]

    def repeats(indices: Indices) -> npt.NDArray[np.bool_]:
        found = np.zeros(indices.shape, dtype=bool)
        found[:, 1:] = arrays.repeats(indices[:, :-1].ravel(), indices[:, 1:].ravel()
                                      ).reshape(len(indices), horizon - 1)
        return found

    found = inside & ((after_stop & ~reference_acts_after_end)
                      | (~after_stop & repeats(preds) & ~repeats(refs)))
    counts: Indices = found[:, 1:].sum(axis=1)
    return counts


__all__ = ["PairCache", "score_windows"]
