"""EasyR1's batch reward for TraceR1 answers, called the way EasyR1's reward managers call it."""

from __future__ import annotations

import importlib.util
import random
import sys
from functools import partial
from pathlib import Path

import pytest

import curate.rewards.easyr1 as easyr1_module
from curate.rewards.easyr1 import compute_score
from curate.rewards.tracer1 import TraceStep, format_answer

REFERENCE = [
    TraceStep("open_app", "open the Mail app", "Mail inbox", False),
    TraceStep("click", "click on Compose to start a message", "empty draft", False),
    TraceStep("input_text", "type 'Ada' in the To field", "recipient filled", False),
    TraceStep("click", "click on Send", "message sent", True),
]


def answer(steps: list[TraceStep]) -> str:
    return f"<think>plan</think><answer>{format_answer(steps)}</answer>"


def scores(predict: str, reference: list[TraceStep] = REFERENCE, **options: object
           ) -> dict[str, object]:
    return compute_score([predict], [format_answer(reference)], reasons=True, **options)[0]


def test_the_reference_itself_scores_one_with_or_without_tags() -> None:
    assert scores(answer(REFERENCE))["overall"] == 1.0
    assert scores(format_answer(REFERENCE))["overall"] == 1.0


def test_every_perturbation_scores_below_the_reference() -> None:
    rng = random.Random(7)
    shuffled = REFERENCE[:]
    while shuffled == REFERENCE:
        rng.shuffle(shuffled)
    perturbed = {
        "reversed": REFERENCE[::-1],
        "shuffled": shuffled,
        "truncated": REFERENCE[:2],
        "padded": [*REFERENCE[:3], TraceStep("wait", "wait", "", False), *REFERENCE[3:]],
        "retyped": [TraceStep("long_press", s.step_instruction, s.state, s.done)
                    for s in REFERENCE],
        "never done": [TraceStep(s.action_type, s.step_instruction, s.state, False)
                       for s in REFERENCE],
        "done at once": [TraceStep(s.action_type, s.step_instruction, s.state, True)
                         for s in REFERENCE],
    }
    for name, steps in perturbed.items():
        got = scores(answer(steps))
        assert float(got["overall"]) < 1.0, (name, got)  # type: ignore[arg-type]


def test_a_repeated_step_is_penalised_unless_the_reference_repeats_it() -> None:
    again = [*REFERENCE[:2], REFERENCE[1], *REFERENCE[2:]]
    got = scores(answer(again))
    assert "step 2 repeats step 1" in str(got["reason"])
    assert scores(answer(again), reference=again)["overall"] == 1.0


def test_steps_after_a_final_answer_or_done_status_are_contradictions() -> None:
    after = [*REFERENCE[:3], TraceStep("answer", "answer 'sent'", "", False), REFERENCE[3]]
    got = scores(answer(after))
    assert "1 step(s) after step 3's answer" in str(got["reason"])


def test_states_count_only_with_a_state_weight() -> None:
    blind = [TraceStep(s.action_type, s.step_instruction, "something else", s.done)
             for s in REFERENCE]
    assert scores(answer(blind))["overall"] == 1.0
    weighted = scores(answer(blind), state_weight=0.5)
    assert 0.4 < float(weighted["accuracy"]) < 0.6  # type: ignore[arg-type]
    assert scores(answer(REFERENCE), state_weight=0.5)["overall"] == 1.0


def test_the_format_term_is_the_share_of_well_formed_steps() -> None:
    text = answer(REFERENCE).replace('"status": "not done"', '"status": "later"', 1)
    got = scores(text)
    assert got["format"] == 0.75
    assert "malformed" in str(got["reason"])
    untagged = scores(format_answer(REFERENCE), require_tags=True)
    assert (untagged["format"], untagged["accuracy"]) == (0.0, 1.0)
    assert untagged["overall"] == pytest.approx(0.9)


@pytest.mark.parametrize(("predict", "why"), [
    ("", "unreadable answer: no 'Step k:' in the answer"),
    (None, "unreadable answer: expected text, got NoneType"),
    ('<answer>Step 1: "action": {"action_type": "click", ', "no step has a readable action"),
    ("\n".join(f'Step {i}: "screenshot_abstraction": "s", "action": {{"action_type": "click", '
               f'"step_instruction": "c"}}, "status": "not done"' for i in range(1000)),
     "unreadable answer: 1000 steps: more than the 100 read"),
])
def test_garbage_scores_zero_or_the_format_penalty_with_a_reason(predict: object,
                                                                 why: str) -> None:
    got = compute_score([predict], [format_answer(REFERENCE)], reasons=True)[0]
    assert got["accuracy"] == 0.0 and got["overall"] <= 0.1
    assert str(got["reason"]).startswith(why)


def test_a_broken_reference_scores_zero_and_names_the_ground_truth() -> None:
    got = compute_score([answer(REFERENCE)], ["{not a trace}"], reasons=True)[0]
    assert got["overall"] == 0.0 and str(got["reason"]).startswith("ground truth:")
    assert compute_score([answer(REFERENCE)], [None], reasons=True)[0]["overall"] == 0.0


def _load_like_easyr1(path: str) -> object:
    """What EasyR1's reward manager does with ``reward_function: path:compute_score``."""
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["custom_reward_fn"]
    return module


def test_easyr1_loads_the_file_by_path_and_calls_it_in_both_batch_conventions() -> None:
    module = _load_like_easyr1(str(Path(easyr1_module.__file__)))
    assert module.REWARD_TYPE == "batch"  # type: ignore[attr-defined]
    # reward_function_kwargs become a partial, as in EasyR1's FunctionRewardManager
    reward_fn = partial(module.compute_score, format_weight=0.1)  # type: ignore[attr-defined]
    truth = format_answer(REFERENCE)
    responses = [answer(REFERENCE), answer(REFERENCE[::-1])]
    # the author's fork: BatchFunctionRewardManager calls reward_fn(response_str, ground_truth)
    fork = reward_fn(responses, [truth, truth])
    # current EasyR1: compute_reward_batch calls reward_fn(reward_inputs)
    current = reward_fn([{"response": r, "response_length": 9, "ground_truth": truth}
                         for r in responses])
    assert fork == current
    assert [set(s) for s in fork] == [{"overall", "format", "accuracy"}] * 2
    assert all(isinstance(v, float) for s in fork for v in s.values())  # EasyR1 averages them
    assert fork[0]["overall"] == 1.0 > fork[1]["overall"]


def test_lists_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 responses but 1 ground truths"):
        compute_score(["a", "b"], ["c"])
