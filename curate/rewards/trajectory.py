"""Score a K-step forecast against the reference steps: aligned, discounted and penalised.

``score = alignment x length factor x contradiction factor``, in [0, 1]:

* **alignment**: the best monotone matching of predicted to reference steps (a weighted LCS by
  dynamic programming); a matched pair earns ``weight x step score x shift_decay^|offset|``,
  so the right actions in the wrong order or at the wrong time earn less than in place.
  Weights are ``discount^i`` over the real reference positions, normalised to sum to 1: the
  next action matters most.
* **mask**: reference positions with ``mask[i] = False`` are padding past the episode's end.
  They are not required, and predictions there earn and lose nothing (a cut-off episode's
  future is unknown) except through the contradiction rules.
* **length factor**: ``(1 - overlong_penalty)`` per predicted step beyond the horizon; a
  truncated forecast is penalised by the weight of the steps it leaves unmatched.
* **contradiction factor**: ``(1 - contradiction_penalty)`` per contradiction: an action
  after the prediction's own ``done``/``fail``/``answer`` (other than a closing
  ``done``/``fail``), or an action repeated at once on what is
  known (or, without ``next_states_equal``, assumed) to be an unchanged screen. A pattern the
  reference shows at the same position is not a contradiction.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from curate.actions import Action, Target
from curate.rewards.match import (
    StepScore,
    clean_text,
    direction_of,
    end_point,
    key_set,
    normalise_url,
    start_point,
    step_scorer,
)
from curate.rewards.presets import MatchPreset, get_preset

Reference = Action | Sequence[Action]
TERMINAL = frozenset({"done", "fail"})
# A forecast ends at its first done, fail or final answer: acting on after it contradicts it
# (only a closing done/fail may follow).
ENDS = TERMINAL | {"answer"}
# Waiting again, or stopping again, is never a loop.
REPEATABLE = frozenset({"wait", "done", "fail"})
SAME_POINT = 0.01  # two positions this close (normalised) are the same target for a repeat


@dataclass(frozen=True, slots=True)
class TrajectoryStep:
    """What one reference position earned and which predicted step it was matched with."""

    index: int
    masked: bool
    weight: float
    predicted_index: int | None
    step: StepScore | None
    credit: float
    reason: str


@dataclass(frozen=True, slots=True)
class TrajectoryScore:
    """The forecast's score in [0, 1], its factors, and the per-step detail."""

    score: float
    alignment: float
    length_factor: float
    contradiction_factor: float
    steps: tuple[TrajectoryStep, ...]
    contradictions: tuple[str, ...]
    reason: str

    @property
    def type_match_rate(self) -> float:
        """Share of the required reference steps matched by a step of the right type."""
        required = [step for step in self.steps if not step.masked]
        if not required:
            return 1.0
        hits = sum(1 for step in required if step.step is not None and step.step.type_match)
        return hits / len(required)


@dataclass(frozen=True, slots=True)
class _Reference:
    """The reference after padding to the horizon and optional merging, with its flags."""

    steps: list[tuple[Action, ...]]
    mask: list[bool]
    unchanged: list[bool | None]
    origin: list[int]  # each step's position in the reference as given


def score_trajectory(predicted: Sequence[Action], reference: Sequence[Reference], *,
                     preset: MatchPreset | str = "default", discount: float = 0.9,
                     mask: Sequence[bool] | None = None,
                     next_states_equal: Sequence[bool | None] | None = None,
                     image_size: tuple[int, int] | None = None, horizon: int | None = None,
                     shift_decay: float = 0.5, overlong_penalty: float = 0.1,
                     contradiction_penalty: float = 0.25,
                     elements: Sequence[Target] = ()) -> TrajectoryScore:
    """Score ``predicted`` against ``reference`` (each position an action or alternatives).

    ``mask[i]`` is True for a real reference step and False for padding; ``next_states_equal``
    says, per reference step, whether the screen after it equals the one before it (None:
    unknown); ``horizon`` (default: the reference's length) is K, the number of steps a
    forecast should have; ``elements`` are recorded elements a click must not land in
    instead of its target (see :func:`curate.rewards.match.score_step`). Raises ValueError
    for inconsistent arguments.
    """
    rules = get_preset(preset)
    _check_numbers(discount, shift_decay, overlong_penalty, contradiction_penalty)
    ref = _reference(reference, mask, next_states_equal, horizon)
    preds = list(predicted)
    if rules.merge_type_enter:
        # The enter is dropped, not appended to the text: text metrics ignore a trailing
        # newline anyway (AgentNetBench strips it before comparing).
        preds = [preds[i] for i in _merged_indices(preds)]
        ref = _merge_reference(ref)
    considered = preds[:len(ref.steps)]
    overlong = len(preds) - len(considered)
    steps, alignment = _align(considered, ref, rules, image_size, discount, shift_decay,
                              elements)
    contradictions = _contradictions(preds, ref)
    length_factor = (1 - overlong_penalty) ** overlong
    contradiction_factor = (1 - contradiction_penalty) ** len(contradictions)
    score = min(1.0, max(0.0, alignment * length_factor * contradiction_factor))
    reason = _summary(steps, alignment, overlong, contradictions)
    return TrajectoryScore(score, alignment, length_factor, contradiction_factor, tuple(steps),
                           tuple(contradictions), reason)


def _check_numbers(discount: float, shift_decay: float, overlong_penalty: float,
                   contradiction_penalty: float) -> None:
    if not 0 < discount <= 1:
        raise ValueError(f"discount must be in (0, 1], got {discount}")
    for name, value in (("shift_decay", shift_decay), ("overlong_penalty", overlong_penalty),
                        ("contradiction_penalty", contradiction_penalty)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value}")


def _reference(reference: Sequence[Reference], mask: Sequence[bool] | None,
               unchanged: Sequence[bool | None] | None, horizon: int | None) -> _Reference:
    steps = [(item,) if isinstance(item, Action) else tuple(item) for item in reference]
    flags = [True] * len(steps) if mask is None else [bool(flag) for flag in mask]
    states: list[bool | None] = [None] * len(steps) if unchanged is None else list(unchanged)
    if len(flags) != len(steps):
        raise ValueError(f"mask has {len(flags)} entries for {len(steps)} reference steps")
    if len(states) != len(steps):
        raise ValueError(f"next_states_equal has {len(states)} entries for {len(steps)} "
                         "reference steps")
    if horizon is not None:
        if horizon < len(steps):
            raise ValueError(f"horizon {horizon} is shorter than the {len(steps)} reference "
                             "steps")
        padding = horizon - len(steps)
        steps += [(Action("done"),)] * padding  # past the end: padding, as segments write it
        flags += [False] * padding
        states += [None] * padding
    return _Reference(steps, flags, states, list(range(len(steps))))


# -- AgentNetBench's write + enter merge ----------------------------------------------------------

def _is_type_enter(first: Action, second: Action) -> bool:
    return first.type == "type" and second.type == "key" and key_set(second.keys) == {"enter"}


def _merged_indices(actions: Sequence[Action]) -> list[int]:
    """Indices that survive merging: every action except an enter that follows typing."""
    keep: list[int] = []
    index = 0
    while index < len(actions):
        keep.append(index)
        step = 2 if index + 1 < len(actions) and _is_type_enter(actions[index],
                                                                 actions[index + 1]) else 1
        index += step
    return keep


def _merge_reference(ref: _Reference) -> _Reference:
    singles = [alternatives[0] if len(alternatives) == 1 else Action("wait")
               for alternatives in ref.steps]
    keep = _merged_indices(singles)
    return _Reference([ref.steps[i] for i in keep], [ref.mask[i] for i in keep],
                      [ref.unchanged[i] for i in keep], [ref.origin[i] for i in keep])


# -- alignment ------------------------------------------------------------------------------------

def _weights(mask: list[bool], discount: float) -> list[float]:
    raw = [discount**index if real else 0.0 for index, real in enumerate(mask)]
    total = sum(raw)
    return [value / total for value in raw] if total > 0 else raw


def _align(preds: list[Action], ref: _Reference, rules: MatchPreset,
           image_size: tuple[int, int] | None, discount: float, shift_decay: float,
           elements: Sequence[Target] = ()) -> tuple[list[TrajectoryStep], float]:
    weights = _weights(ref.mask, discount)
    required = [i for i, real in enumerate(ref.mask) if real]
    if not required:
        return _steps(ref, weights, {}, {}, len(preds), shift_decay), 1.0
    score = step_scorer(rules, image_size, elements)
    scores = {(i, j): score(pred, ref.steps[i]) for i in required for j, pred in enumerate(preds)}
    gains = [[weights[i] * scores[i, j].score * shift_decay ** abs(i - j)
              for j in range(len(preds))] for i in required]
    total, pairs = best_matching(gains, required)
    matched = {required[k]: j for k, j in pairs.items()}
    return _steps(ref, weights, matched, scores, len(preds), shift_decay), total


def best_matching(gains: list[list[float]], positions: list[int]
                   ) -> tuple[float, dict[int, int]]:
    """Maximum-gain monotone matching of rows to columns (each used at most once).

    ``positions[k]`` is row k's column when in place: among equally good matchings, pairs
    that earn nothing are kept only in place, so a wrong step is reported where it stands.
    """
    rows = len(gains)
    cols = len(gains[0]) if rows else 0
    best = [[0.0] * (cols + 1) for _ in range(rows + 1)]
    for k in range(1, rows + 1):
        for j in range(1, cols + 1):
            best[k][j] = max(best[k - 1][j], best[k][j - 1],
                             best[k - 1][j - 1] + gains[k - 1][j - 1])
    pairs: dict[int, int] = {}
    k, j = rows, cols
    while k > 0 and j > 0:
        gain = gains[k - 1][j - 1]
        useful = gain > 0 or positions[k - 1] == j - 1
        if useful and best[k][j] == best[k - 1][j - 1] + gain:
            pairs[k - 1] = j - 1
            k, j = k - 1, j - 1
        elif best[k][j] == best[k - 1][j]:
            k -= 1
        else:
            j -= 1
    return best[rows][cols], pairs


def _steps(ref: _Reference, weights: list[float], matched: dict[int, int],
           scores: dict[tuple[int, int], StepScore], predicted: int,
           shift_decay: float) -> list[TrajectoryStep]:
    steps = []
    for i, real in enumerate(ref.mask):
        if not real:
            steps.append(TrajectoryStep(ref.origin[i], True, 0.0, None, None, 0.0,
                                        "padding past the episode's end: not required"))
            continue
        j = matched.get(i)
        if j is None:
            why = ("missing: the forecast has no step here" if i >= predicted
                   else "no predicted step aligned with it")
            steps.append(TrajectoryStep(ref.origin[i], False, weights[i], None, None, 0.0, why))
            continue
        step = scores[i, j]
        shift = abs(i - j)
        credit = weights[i] * step.score * shift_decay**shift
        where = f"predicted step {j}" + (f" ({shift} off)" if shift else "")
        steps.append(TrajectoryStep(ref.origin[i], False, weights[i], j, step, credit,
                                    f"{where}: {step.reason}"))
    return steps


# -- contradictions -------------------------------------------------------------------------------

def same_action(a: Action, b: Action) -> bool:
    """The same action again: same type, same target (within SAME_POINT), same arguments."""
    if a.type != b.type or (a.tool_name or "") != (b.tool_name or ""):
        return False
    if not _close(start_point(a), start_point(b)) or not _close(end_point(a), end_point(b)):
        return False
    return (clean_text(a.text or "") == clean_text(b.text or "")
            and key_set(a.keys) == key_set(b.keys) and direction_of(a) == direction_of(b)
            and clean_text(a.app or "") == clean_text(b.app or "")
            and normalise_url(a.url or "") == normalise_url(b.url or "")
            and _json_text(a.tool_args) == _json_text(b.tool_args))


def _close(a: tuple[float, float] | None, b: tuple[float, float] | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a[0] - b[0]) <= SAME_POINT and abs(a[1] - b[1]) <= SAME_POINT


@functools.lru_cache(maxsize=4096)
def _json_text(text: str | None) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True) if text else ""
    except ValueError:
        return text or ""


def _is_repeat(previous: Action, current: Action) -> bool:
    return current.type not in REPEATABLE and same_action(previous, current)


def _contradictions(preds: list[Action], ref: _Reference) -> list[str]:
    found: list[str] = []
    stop = next((j for j, action in enumerate(preds) if action.type in ENDS), None)
    for j in range(1, len(preds)):
        action = preds[j]
        if stop is not None and j > stop and action.type not in TERMINAL:
            if not _reference_acts_after_end(ref, j):
                found.append(f"step {j}: {action.type} after {preds[stop].type} at step {stop}")
        elif _is_repeat(preds[j - 1], action) and not _repeat_excused(ref, j):
            found.append(f"step {j} repeats step {j - 1} on an unchanged screen")
    return found


def _reference_acts_after_end(ref: _Reference, j: int) -> bool:
    if j >= len(ref.steps) or not ref.mask[j]:
        return False
    earlier = [alts for alts in ref.steps[:j] if any(a.type in ENDS for a in alts)]
    return bool(earlier) and any(a.type not in TERMINAL for a in ref.steps[j])


def _repeat_excused(ref: _Reference, j: int) -> bool:
    """The reference repeats here too, or its screen is known to change after step j - 1."""
    if j < len(ref.steps) and any(_is_repeat(before, after) for before in ref.steps[j - 1]
                                  for after in ref.steps[j]):
        return True
    return j - 1 < len(ref.unchanged) and ref.unchanged[j - 1] is False


def _summary(steps: list[TrajectoryStep], alignment: float, overlong: int,
             contradictions: list[str]) -> str:
    required = [step for step in steps if not step.masked]
    full = sum(1 for step in required if step.step is not None and step.step.score >= 1.0)
    parts = [f"{full}/{len(required)} reference steps fully matched, alignment {alignment:.3f}"]
    if overlong:
        parts.append(f"{overlong} predicted step(s) past the horizon")
    parts.extend(contradictions)
    return "; ".join(parts)


__all__ = ["ENDS", "TERMINAL", "Reference", "TrajectoryScore", "TrajectoryStep", "best_matching",
           "same_action", "score_trajectory"]
