"""Score a TraceR1 answer (action–state steps to completion) against the reference answer.

``overall = (1 - format_weight) * accuracy + format_weight * format`` (0.9 / 0.1 by default, as
the author trains). ``format`` is the share of well-formed steps (screen description, action
object with ``action_type`` and ``step_instruction``, status ``done``/``not done``); 0 when
``require_tags`` and the response is not ``<think>...</think><answer>...</answer>``.

``accuracy`` (see ``docs/rewards.md``)::

    ((sum of matched gains) + completion bonus - penalty * (missed + extra))
        / (sum of gamma^i + bonus)          clamped to [0, 1]
    x (1 - overlong_penalty)^(predicted steps beyond the reference's length)
    x (1 - contradiction_penalty)^(contradictions)

* matched gains: the best *monotone* matching of predicted to reference steps
  (:func:`curate.rewards.trajectory.best_matching`); a pair earns
  ``gamma^i x credit x shift_decay^|i - j|`` for reference step i, predicted step j.
  ``credit`` is 0 for another action type, else ``1 - ws - wi + ws * sim(states) +
  wi * sim(instructions)`` with :func:`curate.rewards.match.text_similarity` (weights 0 by
  default: type only, as the author's reward);
* the completion bonus is earned when the forecast ends with ``done`` exactly when the reference
  does;
* missed: reference steps left unmatched; extra: predicted steps left unmatched;
* contradictions: a step after a ``done`` status or after an ``answer``/``done``/``fail``
  action (unless the reference ends its own forecast at that step and goes on); the same
  step (type and instruction) twice in a row where the reference does not repeat it there.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from curate.rewards.match import clean_text, text_similarity
from curate.rewards.tracer1 import ParsedAnswer, TraceStep, curate_type, parse_answer
from curate.rewards.trajectory import best_matching

GAMMA = 0.8  # the author's discount (gui.py's GAMMA)
FINAL_TYPES = frozenset({"answer", "done", "fail"})


@dataclass(frozen=True, slots=True)
class ScoreRules:
    """The knobs of :func:`score_answer`, checked once."""

    format_weight: float = 0.1
    state_weight: float = 0.0
    instruction_weight: float = 0.0
    gamma: float = GAMMA
    shift_decay: float = 0.5
    completion_bonus: float = 0.2
    step_penalty: float = 0.15
    contradiction_penalty: float = 0.25
    overlong_penalty: float = 0.1
    text_metric: str = "token_f1"
    require_tags: bool = False
    max_steps: int = 100

    def __post_init__(self) -> None:
        for name in ("format_weight", "state_weight", "instruction_weight", "shift_decay",
                     "contradiction_penalty", "overlong_penalty"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.state_weight + self.instruction_weight > 1:
            raise ValueError("state_weight + instruction_weight must not exceed 1")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma!r}")
        for name in ("completion_bonus", "step_penalty"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a finite number >= 0")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps!r}")


@dataclass(frozen=True, slots=True)
class AnswerScore:
    """One answer's reward, its two terms, and why."""

    overall: float
    accuracy: float
    format: float
    reason: str

    def as_easyr1(self) -> dict[str, float]:
        """Numbers only: EasyR1 averages every returned key into its metrics."""
        return {"overall": self.overall, "format": self.format, "accuracy": self.accuracy}


def score_answer(predict: object, ground_truth: object,
                 rules: ScoreRules | None = None) -> AnswerScore:
    """The reward of one response against one reference answer; never raises."""
    rules = rules or ScoreRules()
    reference = _reference(ground_truth, rules.max_steps) if isinstance(ground_truth, str) \
        else f"expected the reference answer as text, got {type(ground_truth).__name__}"
    if isinstance(reference, str):
        return AnswerScore(0.0, 0.0, 0.0, f"ground truth: {reference}")
    parsed = parse_answer(predict, max_steps=rules.max_steps)
    if not parsed.ok:
        return AnswerScore(0.0, 0.0, 0.0, f"unreadable answer: {parsed.reason}")
    form = _format_score(parsed, rules)
    steps = parsed.readable
    if not steps:
        return _mix(0.0, form, rules, "no step has a readable action")
    accuracy, reason = _accuracy(steps, reference, rules)
    bad = len(parsed.steps) - sum(1 for step in parsed.steps if step.well_formed)
    if bad:
        reason += f"; {bad} malformed step(s): {next(s.problem for s in parsed.steps if s.problem)}"
    if rules.require_tags and not parsed.tags:
        reason += "; not <think>...</think><answer>...</answer>"
    return _mix(accuracy, form, rules, reason)


def _mix(accuracy: float, form: float, rules: ScoreRules, reason: str) -> AnswerScore:
    overall = (1 - rules.format_weight) * accuracy + rules.format_weight * form
    return AnswerScore(min(1.0, max(0.0, overall)), accuracy, form, reason)


@functools.lru_cache(maxsize=8192)
def _reference(text: str, max_steps: int) -> tuple[TraceStep, ...] | str:
    """The reference's steps, or why it cannot be read. Cached: GRPO scores n responses of
    each prompt against the same reference."""
    parsed = parse_answer(text, max_steps=max_steps)
    if not parsed.ok:
        return parsed.reason
    broken = next((step.problem for step in parsed.steps if not step.step.action_type), None)
    return f"a step has {broken}" if broken else tuple(parsed.readable)


def _format_score(parsed: ParsedAnswer, rules: ScoreRules) -> float:
    if rules.require_tags and not parsed.tags:
        return 0.0
    return sum(1 for step in parsed.steps if step.well_formed) / len(parsed.steps)


def _accuracy(steps: list[TraceStep], reference: tuple[TraceStep, ...],
              rules: ScoreRules) -> tuple[float, str]:
    weights = [rules.gamma**i for i in range(len(reference))]
    decay = [rules.shift_decay**shift for shift in range(max(len(steps), len(reference)))]
    kinds = [curate_type(step.action_type) for step in steps]
    ref_kinds = [curate_type(step.action_type) for step in reference]
    gains = [[weights[i] * decay[abs(i - j)] * _credit(pred, ref, rules)
              if kinds[j] == ref_kinds[i] else 0.0 for j, pred in enumerate(steps)]
             for i, ref in enumerate(reference)]
    total, pairs = best_matching(gains, list(range(len(reference))))
    matched = sum(1 for i, j in pairs.items() if gains[i][j] > 0)
    missed, extra = len(reference) - matched, len(steps) - matched
    completes = steps[-1].done == reference[-1].done
    bonus = rules.completion_bonus if completes else 0.0
    raw = (total + bonus - rules.step_penalty * (missed + extra)) / (sum(weights)
                                                                     + rules.completion_bonus)
    contradictions = _contradictions(steps, reference)
    overlong = max(0, len(steps) - len(reference))
    accuracy = (min(1.0, max(0.0, raw)) * (1 - rules.overlong_penalty) ** overlong
                * (1 - rules.contradiction_penalty) ** len(contradictions))
    parts = [f"{matched}/{len(reference)} reference steps matched, alignment {total:.3f}"]
    if missed or extra:
        parts.append(f"{missed} missed, {extra} extra")
    if not completes:
        parts.append("ends done" if steps[-1].done else "does not end done")
    parts.extend(contradictions)
    return accuracy, "; ".join(parts)


def _credit(pred: TraceStep, ref: TraceStep, rules: ScoreRules) -> float:
    """A step of the right type's credit: 1, or mixed with its texts' similarity."""
    if not (rules.state_weight or rules.instruction_weight):
        return 1.0
    credit = 1.0 - rules.state_weight - rules.instruction_weight
    if rules.state_weight:
        credit += rules.state_weight * text_similarity(pred.state or "", ref.state or "",
                                                       rules.text_metric)
    if rules.instruction_weight:
        credit += rules.instruction_weight * text_similarity(
            pred.step_instruction, ref.step_instruction, rules.text_metric)
    return credit


def _same_step(a: TraceStep, b: TraceStep) -> bool:
    return (curate_type(a.action_type) == curate_type(b.action_type)
            and clean_text(a.step_instruction) == clean_text(b.step_instruction))


def _end(steps: list[TraceStep] | tuple[TraceStep, ...]) -> int | None:
    """The first step that ends the forecast: status done, or a final action."""
    return next((j for j, step in enumerate(steps)
                 if step.done or curate_type(step.action_type) in FINAL_TYPES), None)


def _contradictions(steps: list[TraceStep], reference: tuple[TraceStep, ...]) -> list[str]:
    found: list[str] = []
    end = _end(steps)
    excused = end is not None and end == _end(reference) and end + 1 < len(reference)
    if end is not None and end + 1 < len(steps) and not excused:
        why = "status done" if steps[end].done else steps[end].action_type
        found.append(f"{len(steps) - end - 1} step(s) after step {end}'s {why}")
    for j in range(1, len(steps) if end is None else end + 1):
        if _same_step(steps[j - 1], steps[j]) and not (
                j < len(reference) and _same_step(reference[j - 1], reference[j])):
            found.append(f"step {j} repeats step {j - 1}")
    return found


__all__ = ["GAMMA", "AnswerScore", "ScoreRules", "score_answer"]
