"""EasyR1's batch reward for TraceR1 answers: ``compute_score(predicts, ground_truths, ...)``.

Point EasyR1 at this file (it loads reward functions by path, ``file.py:function``)::

    REWARD=$(python -c "import curate.rewards.easyr1 as m; print(m.__file__)")
    ... worker.reward.reward_type=batch worker.reward.reward_function=$REWARD:compute_score

It reads both of EasyR1's batch conventions: the author's fork passes two lists
(``reward_fn(response_str, ground_truth)``); current EasyR1 passes one list of
``{"response", "response_length", "ground_truth"}`` dicts. ``reward_function_kwargs`` reach
the keyword options (``format_weight``, ``state_weight``, ``require_tags``, ...). Absolute
imports only: EasyR1 runs this file as a module of its own (``custom_reward_fn``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from curate.rewards.tracer1_score import GAMMA, ScoreRules, score_answer

REWARD_NAME = "curate_tracer1"  # read by current EasyR1's AutoRewardManager
REWARD_TYPE = "batch"


def compute_score(predicts: Sequence[Any], ground_truths: Sequence[Any] | None = None, *,
                  format_weight: float = 0.1, state_weight: float = 0.0,
                  instruction_weight: float = 0.0, gamma: float = GAMMA,
                  require_tags: bool = False, max_steps: int = 100,
                  reasons: bool = False) -> list[dict[str, Any]]:
    """One ``{"overall", "format", "accuracy"}`` per response (plus ``"reason"`` with
    ``reasons=True``, for reading, not for EasyR1, which averages every key). Never raises on a
    response or a reference; raises ValueError for bad options or lists of different lengths.
    """
    rules = ScoreRules(format_weight=format_weight, state_weight=state_weight,
                       instruction_weight=instruction_weight, gamma=gamma,
                       require_tags=require_tags, max_steps=max_steps)
    pairs = _pairs(predicts, ground_truths)
    out: list[dict[str, Any]] = []
    for predict, truth in pairs:
        result = score_answer(predict, truth, rules)
        row: dict[str, Any] = result.as_easyr1()
        if reasons:
            row["reason"] = result.reason
        out.append(row)
    return out


def _pairs(predicts: Sequence[Any], ground_truths: Sequence[Any] | None
           ) -> list[tuple[Any, Any]]:
    if ground_truths is None:  # current EasyR1: one list of reward inputs
        return [(item.get("response"), item.get("ground_truth")) if isinstance(item, Mapping)
                else (item, None) for item in predicts]
    if len(predicts) != len(ground_truths):
        raise ValueError(f"{len(predicts)} responses but {len(ground_truths)} ground truths")
    return list(zip(predicts, ground_truths, strict=True))


__all__ = ["REWARD_NAME", "REWARD_TYPE", "compute_score"]
