"""Stage-2 rewards that execute, called as verl, EasyR1 and TRL call them, against a real
chat-completions server on 127.0.0.1 and a real store built from examples/recordings."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from modelserver import ModelServer, grounding_responder

from curate.actions import Action, parse_action_text
from curate.rewards.entrypoints import make_ground_truth
from curate.rewards.executed import (
    compute_score,
    easyr1_compute_score,
    make_step_ground_truth,
    make_trl_reward,
    parse_proposed_step,
    trl_reward,
)
from curate.store.core import open_store

FAMILY = "ui-tars-1.5"


@pytest.fixture
def store(sample_store_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(sample_store_template, copy)
    return copy


def click_steps(store: Path) -> list[dict[str, Any]]:
    """The store's click steps that have a screenshot, with their reference actions."""
    steps = open_store(store).read_steps().select(
        ["episode_id", "step_index", "action_text", "frame_id"]).to_pylist()
    return [s for s in steps if s["action_text"].startswith("click(") and s["frame_id"]][:4]


def box_around(action: Action, half: float = 0.01) -> tuple[float, float, float, float]:
    assert action.x is not None and action.y is not None
    return (action.x - half, action.y - half, action.x + half, action.y + half)


@pytest.fixture
def server(store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModelServer]:
    """The grounding model knows "target N" as the box around click step N's reference
    point, and "the wrong button" as a box far from every one of them."""
    targets = {f"target {i}": box_around(parse_action_text(s["action_text"]))
               for i, s in enumerate(click_steps(store))}
    targets["the wrong button"] = (0.96, 0.96, 0.99, 0.99)
    with ModelServer(grounding_responder(FAMILY, targets)) as running:
        monkeypatch.setenv("CURATE_EXECUTOR_URL", running.url)
        monkeypatch.setenv("CURATE_EXECUTOR_MODEL", "ui-tars-1.5-7b")
        monkeypatch.setenv("CURATE_EXECUTOR_FAMILY", FAMILY)
        monkeypatch.setenv("CURATE_STORE", str(store))
        yield running


def truth(step: dict[str, Any]) -> str:
    return make_ground_truth([parse_action_text(step["action_text"])])


def extra(step: dict[str, Any]) -> dict[str, Any]:
    return {"index": 0, "split": "train", "episode_id": step["episode_id"],
            "step_index": step["step_index"]}


def test_proposed_steps_are_read_in_every_accepted_form() -> None:
    step = parse_proposed_step('<think>hm</think><answer>click(instruction="the OK button")'
                               '</answer>')
    assert (step.action_type, step.step_instruction) == ("click", "the OK button")
    step = parse_proposed_step('{"action_type": "double_click", "step_instruction": "a file"}')
    assert (step.action_type, step.step_instruction) == ("double_click", "a file")
    typed = parse_proposed_step('type(text="hello")')
    assert typed.action == Action("type", text="hello") and typed.step_instruction is None
    call = parse_proposed_step('{"name": "search", "arguments": {"q": "flights"}}')
    assert call.action is not None and call.action.tool_name == "search"
    for bad in ("", "I would click it", "{not json", "fly(to=\"moon\")"):
        with pytest.raises(ValueError):
            parse_proposed_step(bad)


def test_verl_per_sample_reward_is_1_when_the_executed_click_lands_on_the_reference(
        server: ModelServer, store: Path) -> None:
    step = click_steps(store)[0]
    right = compute_score("curate/stage2", 'click(instruction="press target 0")', truth(step),
                          extra(step))
    wrong = compute_score("curate/stage2", 'click(instruction="press the wrong button")',
                          truth(step), extra(step))
    assert isinstance(right, dict) and isinstance(wrong, dict)
    assert (right["score"], right["executed"], right["outcome"]) == (1.0, 1.0, "executed")
    assert (wrong["score"], wrong["executed"]) == (0.0, 1.0)
    assert set(right) == set(wrong)  # verl gathers every key across the batch
    assert server.count == 2
    prompt = server.requests[0]
    assert "press target 0" in prompt.text and len(prompt.image_sizes) == 1


def test_verl_batch_reward_manager_lists_are_executed_concurrently(
        server: ModelServer, store: Path) -> None:
    steps = click_steps(store)
    server.latency = 0.25
    responses = [f'click(instruction="target {i}")' for i in range(len(steps))]
    scores = compute_score(data_sources=["curate/stage2"] * len(steps), solution_strs=responses,
                           ground_truths=[truth(s) for s in steps],
                           extra_infos=[extra(s) for s in steps])
    assert isinstance(scores, list)
    assert [s["score"] for s in scores] == [1.0] * len(steps)
    # Not one request after the other: several were held at the server at once (counted
    # there, not timed: a wall-clock bound is noise on a shared machine).
    assert len(steps) > 1 and server.max_in_flight >= 2
    again = compute_score(data_sources=["curate/stage2"] * len(steps), solution_strs=responses,
                          ground_truths=[truth(s) for s in steps],
                          extra_infos=[extra(s) for s in steps])
    assert again == scores and server.count == len(steps)  # the second pass: all cached
    assert (store / "cache" / "models").is_dir()


def test_easyr1_batch_reads_the_step_from_the_ground_truth_envelope(
        server: ModelServer, store: Path) -> None:
    steps = click_steps(store)[:2]
    inputs = [{"response": 'click(instruction="target 1")', "response_length": 9,
               "ground_truth": make_step_ground_truth(truth(s), episode_id=s["episode_id"],
                                                      step_index=s["step_index"])}
              for s in steps]
    scores = easyr1_compute_score(inputs)
    assert isinstance(scores, list)
    assert [s["overall"] for s in scores] == [0.0, 1.0]  # target 1 is step 1's target
    assert all(set(s) == {"overall", "format", "accuracy", "executed"} for s in scores)
    single = easyr1_compute_score(inputs[1])
    assert isinstance(single, dict) and single["overall"] == 1.0


def test_easyr1_scores_the_stage2_verl_export_answers_as_they_are(
        server: ModelServer, store: Path, tmp_path: Path) -> None:
    from curate.export import export
    from curate.export.params import ExportParams

    export(store, tmp_path / "dist", params=ExportParams(
        configs=("stage2",), flavours=("verl",), splits={"train": 1.0}))
    rows = [row for path in sorted((tmp_path / "dist/data/stage2_verl").glob("*.parquet"))
            for row in pq.read_table(path, columns=["answer", "extra_info"]).to_pylist()]
    index = {(s["episode_id"], s["step_index"]): i for i, s in enumerate(click_steps(store))}
    step_of = [(row["extra_info"]["episode_id"], row["extra_info"]["step_index"])
               for row in rows]
    clicks = [(row, index[step]) for row, step in zip(rows, step_of, strict=True)
              if step in index]
    assert len(clicks) == len(index) >= 2
    inputs = [{"response": f'click(instruction="target {i}")', "response_length": 5,
               "ground_truth": row["answer"]} for row, i in clicks]
    scores = easyr1_compute_score(inputs)
    assert isinstance(scores, list) and [s["overall"] for s in scores] == [1.0] * len(clicks)
    assert server.count == len(clicks)


def test_trl_reward_takes_the_step_columns_as_keyword_arguments(
        server: ModelServer, store: Path) -> None:
    steps = click_steps(store)[:2]
    completions = [[{"role": "assistant", "content": [
        {"type": "text", "text": f'click(instruction="target {i}")'}]}] for i in range(2)]
    rewards = trl_reward(completions, solution=[truth(s) for s in steps],
                         episode_id=[s["episode_id"] for s in steps],
                         step_index=[s["step_index"] for s in steps], prompts=["p", "p"])
    assert rewards == [1.0, 1.0]
    bound = make_trl_reward(name="grounded", url=server.url, family=FAMILY, model="m2")
    assert bound.__name__ == "grounded"
    assert bound(completions[:1], solution=[truth(steps[1])], episode_id=[steps[1]["episode_id"]],
                 step_index=[steps[1]["step_index"]]) == [0.0]


def test_shaped_rewards_give_graded_credit_near_the_target(server: ModelServer,
                                                           store: Path) -> None:
    step = click_steps(store)[0]
    reference = parse_action_text(step["action_text"])
    assert reference.x is not None and reference.y is not None
    near = {"near it": (reference.x + 0.05, reference.y, reference.x + 0.07, reference.y + 0.01)}
    server.responder = grounding_responder(FAMILY, near)
    binary = compute_score(None, 'click(instruction="near it")', truth(step), extra(step))
    shaped = compute_score(None, 'click(instruction="near it")', truth(step), extra(step),
                           shaped=True)
    assert isinstance(binary, dict) and isinstance(shaped, dict)
    assert binary["score"] == 0.0 and 0.0 < float(shaped["score"]) < 1.0


def test_what_cannot_be_executed_scores_0_with_the_reason(server: ModelServer,
                                                          store: Path) -> None:
    step = click_steps(store)[0]
    server.inject("garbage")
    cases = {
        "unparsable": compute_score(None, "I think I would click", truth(step), extra(step)),
        "invalid_answer": compute_score(None, 'click(instruction="target 0 please")',
                                        truth(step), extra(step)),
        "no_step": compute_score(None, 'click(instruction="target 0")', truth(step), {}),
        "bad_ground_truth": compute_score(None, 'click(instruction="target 0")', "{}",
                                          extra(step)),
    }
    for outcome, result in cases.items():
        assert isinstance(result, dict)
        assert (result["score"], result["outcome"]) == (0.0, outcome), result["reason"]


def test_an_unreachable_executor_scores_0_and_the_run_goes_on(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step = click_steps(store)[0]
    monkeypatch.setenv("CURATE_STORE", str(store))
    result = compute_score(None, 'click(instruction="target 0")', truth(step), extra(step),
                           url="http://127.0.0.1:9/v1", model="m", family=FAMILY,
                           concurrency=1)
    assert isinstance(result, dict)
    assert result["outcome"] == "unreachable" and "127.0.0.1:9" in str(result["reason"])


def test_a_missing_store_is_named_in_the_reason(
        server: ModelServer, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURATE_STORE")
    step = click_steps(store)[0]
    result = compute_score(None, 'click(instruction="target 0")', truth(step), extra(step))
    assert isinstance(result, dict)
    assert result["outcome"] == "unconfigured" and "CURATE_STORE" in str(result["reason"])
    json.dumps(result)  # verl logs it
