"""Reward functions for verl, EasyR1 and TRL, and the ground-truth JSON they all read.

All three are thin wrappers over :func:`score_response`: parse the response
(:mod:`curate.rewards.parse`), score it against the ground truth's steps
(:func:`curate.rewards.trajectory.score_trajectory`), mix in the preset's format weight.
Garbage never raises: it scores 0 and the reason says why. The ground-truth contract
(version 1) is documented in ``docs/rewards.md``; :func:`make_ground_truth` writes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, overload

from curate.actions import SEMANTIC_FIELDS, Action, Target, canonical_json, parse_action_text
from curate.errors import ActionParseError
from curate.rewards.parse import answer_tags_ok, parse_prediction
from curate.rewards.presets import COORD_MODES, PRESETS, MatchPreset, get_preset
from curate.rewards.trajectory import TrajectoryScore, score_trajectory

GROUND_TRUTH_VERSION = 1
_GT_KEYS = frozenset({"version", "actions", "mask", "preset", "image_size", "horizon", "coords",
                      "discount", "next_states_equal", "elements"})
_ACTION_FIELDS = frozenset(f.name for f in fields(Action))
_TARGET_FIELDS = frozenset(f.name for f in fields(Target))


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """One sample's reference: K steps (each a tuple of acceptable alternatives) and options."""

    actions: tuple[tuple[Action, ...], ...]
    mask: tuple[bool, ...] | None = None
    preset: str = "default"
    image_size: tuple[int, int] | None = None
    horizon: int | None = None
    coords: str | None = None
    discount: float = 0.9
    next_states_equal: tuple[bool | None, ...] | None = None
    elements: tuple[Target, ...] = ()

    def recorded_elements(self) -> tuple[Target, ...]:
        """Every element the reference records: its steps' targets and ``elements``."""
        targets = tuple(action.target for step in self.actions for action in step
                        if action.target is not None)
        return targets + self.elements

    def has_moves(self) -> bool:
        return any(action.type == "move" for step in self.actions for action in step)


@dataclass(frozen=True, slots=True)
class RewardResult:
    """A response's reward: ``score = (1 - w) * accuracy + w * format`` and why."""

    score: float
    accuracy: float
    format: float
    reason: str
    parsed_steps: int = 0
    type_match: float = 0.0
    trajectory: TrajectoryScore | None = None

    def as_verl(self) -> dict[str, float | str]:
        """The same keys for every sample: verl gathers each key across the batch."""
        return {"score": self.score, "accuracy": self.accuracy, "format": self.format,
                "type_match": self.type_match, "parsed_steps": float(self.parsed_steps),
                "reason": self.reason}

    def as_easyr1(self) -> dict[str, float]:
        """Numbers only: EasyR1 averages every returned key into its metrics."""
        return {"overall": self.score, "format": self.format, "accuracy": self.accuracy}


def _zero(reason: str) -> RewardResult:
    return RewardResult(0.0, 0.0, 0.0, reason)


# -- the ground-truth contract --------------------------------------------------------------------

def make_ground_truth(actions: Sequence[Action | Sequence[Action]], *,
                      mask: Sequence[bool] | None = None, preset: str = "default",
                      image_size: tuple[int, int] | None = None, horizon: int | None = None,
                      coords: str | None = None, discount: float | None = None,
                      next_states_equal: Sequence[bool | None] | None = None,
                      elements: Sequence[Target] = (), check: bool = True) -> str:
    """The ground-truth JSON string exports write, checked by reading it back unless
    ``check=False`` (an export validates every row afterwards anyway)."""
    document: dict[str, Any] = {"version": GROUND_TRUTH_VERSION,
                                "actions": [_step_json(step) for step in actions],
                                "preset": preset}
    optional = {"mask": None if mask is None else [bool(m) for m in mask],
                "image_size": None if image_size is None else [int(v) for v in image_size],
                "horizon": horizon, "coords": coords, "discount": discount,
                "next_states_equal": None if next_states_equal is None
                else list(next_states_equal),
                "elements": [_target_json(t) for t in elements] if elements else None}
    document.update({key: value for key, value in optional.items() if value is not None})
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if check:
        load_ground_truth(text)
    return text


def _step_json(step: Action | Sequence[Action]) -> dict[str, Any] | list[dict[str, Any]]:
    if isinstance(step, Action):
        return action_json(step)
    return [action_json(action) for action in step]


def action_json(action: Action) -> dict[str, Any]:
    """An action's semantic fields and target as a JSON object (no provenance, no nulls)."""
    out: dict[str, Any] = {}
    for name in SEMANTIC_FIELDS:
        value = getattr(action, name)
        if value is None or value == ():
            continue
        out[name] = list(value) if name == "keys" else value
    if action.target is not None:
        out["target"] = _target_json(action.target)
    return out


def _target_json(target: Target) -> dict[str, Any]:
    return {f: getattr(target, f) for f in sorted(_TARGET_FIELDS)
            if getattr(target, f) is not None}


_ENVELOPE_KEYS = frozenset({"ground_truth", "step"})


def make_step_ground_truth(ground_truth: str, *, episode_id: str, step_index: int,
                           check: bool = True) -> str:
    """A Stage-2 ground truth that also names its step (the *step envelope*
    ``{"ground_truth": {...}, "step": {"episode_id", "step_index"}}``), for trainers (EasyR1)
    that pass the reward nothing but the ground truth; the stage2_verl export's ``answer``
    (which skips the check, ``check=False``: an export validates every row afterwards)."""
    if check:
        load_ground_truth(ground_truth)
    return json.dumps({"ground_truth": json.loads(ground_truth),
                       "step": {"episode_id": episode_id, "step_index": int(step_index)}},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def split_step_envelope(value: Any) -> tuple[Any, tuple[str | None, int | None]]:
    """(ground truth, (episode_id, step_index)) of a step envelope; a plain ground truth
    comes back as it is, with (None, None)."""
    document = value
    if isinstance(value, str | bytes) and b'"step"' in (
            value if isinstance(value, bytes) else value.encode()):
        document = json.loads(value)
    document = _plain(document)
    if not isinstance(document, dict) or set(document) != _ENVELOPE_KEYS:
        return value, (None, None)
    step = document["step"] if isinstance(document["step"], dict) else {}
    index = step.get("step_index")
    return document["ground_truth"], (step.get("episode_id"),
                                      None if index is None else int(index))


def load_ground_truth(value: str | Mapping[str, Any] | GroundTruth) -> GroundTruth:
    """Read the ground-truth JSON (string or already-decoded mapping), or the one inside a
    step envelope; raises ValueError."""
    if isinstance(value, GroundTruth):
        return value
    document = _plain(json.loads(value) if isinstance(value, str | bytes) else value)
    if isinstance(document, dict) and set(document) == _ENVELOPE_KEYS:
        document = _plain(document["ground_truth"])
    if not isinstance(document, dict):
        raise ValueError(f"expected a JSON object, got {type(document).__name__}")
    unknown = sorted(set(document) - _GT_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; expected some of {sorted(_GT_KEYS)}")
    version = document.get("version", GROUND_TRUTH_VERSION)
    if version != GROUND_TRUTH_VERSION:
        raise ValueError(f"ground-truth version {version!r}; this curate reads version "
                         f"{GROUND_TRUTH_VERSION}")
    return GroundTruth(
        actions=_read_steps(document.get("actions")),
        mask=_bools(document.get("mask"), "mask"),
        preset=_read_preset(document.get("preset", "default")),
        image_size=_read_size(document.get("image_size")),
        horizon=_read_horizon(document.get("horizon")),
        coords=_read_coords(document.get("coords")),
        discount=_read_discount(document.get("discount", 0.9)),
        next_states_equal=_optional_bools(document.get("next_states_equal")),
        elements=_read_elements(document.get("elements")),
    )


def _plain(value: Any) -> Any:
    """numpy arrays and scalars (parquet structs read by pandas) as plain Python values."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _read_steps(value: Any) -> tuple[tuple[Action, ...], ...]:
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, list) or not value:
        raise ValueError("'actions' must be a non-empty list of actions")
    steps = []
    for index, item in enumerate(value):
        alternatives = item if isinstance(item, list) else [item]
        if not alternatives:
            raise ValueError(f"actions[{index}] is an empty list of alternatives")
        try:
            steps.append(tuple(_read_action(entry) for entry in alternatives))
        except (ActionParseError, TypeError, ValueError) as error:
            raise ValueError(f"actions[{index}]: {error}") from None
    return tuple(steps)


def _read_action(entry: Any) -> Action:
    if isinstance(entry, str):
        return parse_action_text(entry)
    if not isinstance(entry, dict):
        raise ValueError(f"expected an action object or action_text, got {type(entry).__name__}")
    values = {key: value for key, value in entry.items() if value is not None}
    unknown = sorted(set(values) - _ACTION_FIELDS)
    if unknown:
        raise ValueError(f"unknown action fields {unknown}")
    if "keys" in values:
        values["keys"] = tuple(values["keys"])
    if isinstance(values.get("tool_args"), dict | list):
        values["tool_args"] = canonical_json(values["tool_args"])
    if isinstance(values.get("target"), dict):
        target = {k: v for k, v in values["target"].items() if v is not None}
        extra = sorted(set(target) - _TARGET_FIELDS)
        if extra:
            raise ValueError(f"unknown target fields {extra}")
        values["target"] = Target(**target)
    if "type" not in values:
        raise ValueError("an action object needs a 'type'")
    for name, value in values.items():
        _check_field(name, value)
    return Action(**values)


_NUMBER_FIELDS = frozenset({"x", "y", "x2", "y2", "amount", "px", "py", "px2", "py2", "scale"})
_INT_FIELDS = frozenset({"screen_width", "screen_height"})


def _check_field(name: str, value: Any) -> None:
    """Action does not check argument types; a reward must not fail on them later."""
    if name in ("keys", "target"):
        ok = name == "target" or all(isinstance(key, str) for key in value)
    elif name in _NUMBER_FIELDS:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif name in _INT_FIELDS:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ValueError(f"action field {name!r} has the wrong type: {value!r:.40}")


def _read_elements(value: Any) -> tuple[Target, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("'elements' must be a list of element objects {x0, y0, x1, y1, ...}")
    elements = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f"elements[{index}] must be an object, got {type(entry).__name__}")
        fields = {k: v for k, v in entry.items() if v is not None}
        extra = sorted(set(fields) - _TARGET_FIELDS)
        if extra:
            raise ValueError(f"elements[{index}]: unknown fields {extra}")
        for name in ("x0", "y0", "x1", "y1"):
            if name in fields and not _is_number(fields[name]):
                raise ValueError(f"elements[{index}].{name} must be a number")
        elements.append(Target(**fields))
    return tuple(elements)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bools(value: Any, name: str) -> tuple[bool, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, bool) for v in value):
        raise ValueError(f"'{name}' must be a list of true/false")
    return tuple(value)


def _optional_bools(value: Any) -> tuple[bool | None, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(v is None or isinstance(v, bool) for v in value):
        raise ValueError("'next_states_equal' must be a list of true/false/null")
    return tuple(value)


def _read_preset(value: Any) -> str:
    if not isinstance(value, str) or value not in PRESETS:
        raise ValueError(f"unknown preset {value!r}; expected one of {sorted(PRESETS)}")
    return value


def _read_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise ValueError(f"'image_size' must be [width, height] in pixels, got {value!r}")
    return (value[0], value[1])


def _read_horizon(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"'horizon' must be a whole number >= 1, got {value!r}")
    return value


def _read_coords(value: Any) -> str | None:
    if value is not None and value not in COORD_MODES:
        raise ValueError(f"'coords' must be one of {sorted(COORD_MODES)}, got {value!r}")
    return value if value is None else str(value)


def _read_discount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"'discount' must be a number in (0, 1], got {value!r}")
    return float(value)


# -- the scoring core -----------------------------------------------------------------------------

def score_response(response: Any, ground_truth: str | Mapping[str, Any] | GroundTruth, *,
                   preset: MatchPreset | str | None = None,
                   format_weight: float | None = None) -> RewardResult:
    """The reward for one response. ``preset`` and ``format_weight`` override the data's."""
    try:
        truth = load_ground_truth(ground_truth)
        rules = get_preset(preset if preset is not None else truth.preset)
    except (ValueError, TypeError) as error:
        return _zero(f"ground truth: {error}")
    weight = rules.format_weight if format_weight is None else format_weight
    if rules.require_answer_tags and not answer_tags_ok(response):
        return _zero("format: expected <think>...</think><answer>...</answer>")
    parsed = parse_prediction(response, image_size=truth.image_size,
                              coords=truth.coords or rules.coords,
                              keep_moves=truth.has_moves())
    if not parsed.ok:
        return _zero(f"unparsable response: {parsed.reason}")
    try:
        trajectory = score_trajectory(
            parsed.actions, truth.actions, preset=rules, discount=truth.discount,
            mask=truth.mask, next_states_equal=truth.next_states_equal,
            image_size=truth.image_size, horizon=truth.horizon,
            elements=truth.recorded_elements())
    except ValueError as error:
        return _zero(f"ground truth: {error}")
    accuracy = trajectory.score
    score = (1 - weight) * accuracy + weight
    if not math.isfinite(score):
        return _zero("scoring produced a non-finite value")
    return RewardResult(min(1.0, max(0.0, score)), accuracy, 1.0, trajectory.reason,
                        len(parsed.actions), trajectory.type_match_rate, trajectory)


# -- verl -----------------------------------------------------------------------------------------

def compute_score(data_source: str | None, solution_str: str, ground_truth: Any,
                  extra_info: Mapping[str, Any] | None = None, *,
                  preset: str | None = None, format_weight: float | None = None
                  ) -> dict[str, float | str]:
    """verl's ``custom_reward_function``: ``{"score": ..., plus details}``.

    ``data_source`` and ``extra_info`` are not needed (the ground truth carries its preset);
    ``preset`` and ``format_weight`` can be set through verl's ``reward_kwargs``.
    """
    return score_response(solution_str, ground_truth, preset=preset,
                          format_weight=format_weight).as_verl()


# -- EasyR1 ---------------------------------------------------------------------------------------

@overload
def easyr1_compute_score(reward_inputs: list[dict[str, Any]], ground_truth: None = None, *,
                         preset: str | None = None, format_weight: float | None = None
                         ) -> list[dict[str, float]]: ...


@overload
def easyr1_compute_score(reward_inputs: list[str], ground_truth: list[Any], *,
                         preset: str | None = None, format_weight: float | None = None
                         ) -> list[dict[str, float]]: ...


@overload
def easyr1_compute_score(reward_inputs: dict[str, Any], ground_truth: None = None, *,
                         preset: str | None = None, format_weight: float | None = None
                         ) -> dict[str, float]: ...


@overload
def easyr1_compute_score(reward_inputs: str, ground_truth: str | Mapping[str, Any], *,
                         preset: str | None = None, format_weight: float | None = None
                         ) -> dict[str, float]: ...


def easyr1_compute_score(reward_inputs: list[dict[str, Any]] | list[str] | dict[str, Any] | str,
                         ground_truth: str | Mapping[str, Any] | list[Any] | None = None, *,
                         preset: str | None = None, format_weight: float | None = None
                         ) -> list[dict[str, float]] | dict[str, float]:
    """EasyR1's reward function, in all three of its calling conventions.

    ``reward_type: batch`` passes a list of ``{"response", "ground_truth", ...}`` dicts (older
    releases, such as the TraceR1 author's fork, two lists: responses and ground truths);
    ``sequential`` passes one such dict; older releases call ``(predict, ground_truth)``.
    ``preset``/``format_weight`` come from ``reward_function_kwargs``.
    """
    def one(response: Any, truth: Any) -> dict[str, float]:
        return score_response(response, truth, preset=preset,
                              format_weight=format_weight).as_easyr1()

    if isinstance(reward_inputs, list) and isinstance(ground_truth, list | tuple):
        # the TraceR1 author's fork: reward_fn(responses, ground_truths), two lists
        if len(reward_inputs) != len(ground_truth):
            raise ValueError(f"{len(reward_inputs)} responses but {len(ground_truth)} "
                             "ground truths")
        return [one(response, truth) for response, truth in zip(reward_inputs, ground_truth,
                                                                 strict=True)]
    if isinstance(reward_inputs, list):
        return [one(_get(item, "response"), _get(item, "ground_truth")) for item in reward_inputs]
    if isinstance(reward_inputs, dict):
        return one(reward_inputs.get("response"), reward_inputs.get("ground_truth"))
    return one(reward_inputs, ground_truth)


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else None


# -- TRL ------------------------------------------------------------------------------------------

def trl_reward(completions: Sequence[Any], solution: Sequence[Any] | None = None,
               **kwargs: Any) -> list[float]:
    """TRL's GRPO reward: one float per completion; ``solution`` is the ground-truth column.

    Completions may be strings or conversations (lists of ``{"role", "content"}``, content a
    string or a list of ``{"type": "text", "text"}`` parts). Other TRL keyword arguments
    (prompts, completion_ids, trainer_state, extra columns) are accepted and unused.
    """
    return _trl_scores(completions, solution, None)


def make_trl_reward(preset: str | None = None, format_weight: float | None = None,
                    name: str | None = None) -> Callable[..., list[float]]:
    """A TRL reward function with a fixed preset, named for TRL's logs (a partial has no name)."""
    def reward(completions: Sequence[Any], solution: Sequence[Any] | None = None,
               **kwargs: Any) -> list[float]:
        return _trl_scores(completions, solution, (preset, format_weight))

    reward.__name__ = reward.__qualname__ = name or f"curate_reward_{preset or 'data'}"
    return reward


def _trl_scores(completions: Sequence[Any], solution: Sequence[Any] | None,
                overrides: tuple[str | None, float | None] | None) -> list[float]:
    if solution is None:
        raise ValueError("the dataset has no 'solution' column: TRL passes extra columns to "
                         "reward functions by name, and curate's exports name it 'solution'")
    if len(solution) != len(completions):
        raise ValueError(f"{len(completions)} completions but {len(solution)} solutions")
    preset, weight = overrides or (None, None)
    return [score_response(completion_text(completion), truth, preset=preset,
                           format_weight=weight).score
            for completion, truth in zip(completions, solution, strict=True)]


def completion_text(completion: Any) -> Any:
    """The text of a completion: a string, or the last message's text of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence) and completion:
        return completion_text(completion[-1])
    return completion  # not text: the parser reports it


def _content_text(content: Any) -> Any:
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content
                       if isinstance(part, Mapping) and part.get("type", "text") == "text")
    return content


__all__ = ["GROUND_TRUTH_VERSION", "GroundTruth", "RewardResult", "action_json",
           "completion_text", "compute_score", "easyr1_compute_score", "load_ground_truth",
           "make_ground_truth", "make_step_ground_truth", "make_trl_reward", "score_response",
           "split_step_envelope", "trl_reward"]
