"""ToolBench DFS answer files: the final path, Finish, nested JSON results, outcomes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import TEXT_ONLY, SourceUnit, UnitBuilder
from curate.sources.adapters.toolbench import choose_path, decode_nested, observation_text
from curate.store import open_store

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "toolbench"
ANSWER = FIXTURES / "answer/G1_answer/7_ChatGPT_DFS_woFilter_w2.json"
QUERIES = FIXTURES / "instruction/G1_query.json"
REAL = Path(__file__).resolve().parents[2] / "shared/realdata/toolbench/data_example"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("toolbench"))


def only_episode(out: UnitBuilder) -> Any:
    assert len(out.episodes) == 1, out.rejects
    return out.episodes[0]


def variant(tmp_path: Path, change: Any) -> Path:
    """A copy of the fixture answer file with ``change(data)`` applied."""
    data = json.loads(ANSWER.read_text())
    change(data)
    path = tmp_path / "answer" / "G1_answer" / "1_ChatGPT_DFS_woFilter_w2.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_answer_file_is_detected_and_query_file_is_not_claimed() -> None:
    found = adapters.detect(ANSWER)
    assert found is not None and found.name == "toolbench"
    assert adapters.detect(QUERIES) is None


def test_final_path_is_the_episode_and_the_other_paths_are_listed() -> None:
    out = read(ANSWER)
    episode = only_episode(out)
    assert [s.action.type for s in episode.steps] == ["tool_call", "tool_call", "answer"]
    paths = episode.metadata["train_messages"]
    assert paths["chosen"] == "train_messages[2]" and paths["count"] == 3
    assert [(o["id"], o["prefix_of_chosen"]) for o in paths["others"]] == [
        ("train_messages[0]", True), ("train_messages[1]", True)]
    assert episode.steps[0].source_position == (
        "answer_generation.train_messages[2][2].function_call")
    assert not out.rejects


def test_legacy_function_calls_become_tool_calls_with_canonical_args() -> None:
    episode = only_episode(read(ANSWER))
    search, details, _ = episode.steps
    assert search.action.tool_name == "search_places_for_citymap"
    assert search.action.tool_args == '{"query": "Lyon library"}'
    assert details.thought == "The search found BML; now the details."
    assert search.frame_missing == TEXT_ONLY and search.next_frame_missing == TEXT_ONLY


def test_nested_json_results_are_decoded_and_python_reprs_stay_text() -> None:
    search, details, _ = only_episode(read(ANSWER)).steps
    assert json.loads(search.observation) == {
        "error": "", "response": [{"id": "BML", "name": "Bibliotheque municipale",
                                   "city": "Lyon"}]}
    decoded = json.loads(details.observation)
    assert decoded["response"].startswith("{'id': 'BML'")  # a Python repr: never evaluated


def test_finish_give_answer_is_the_answer_action_and_outcome_success() -> None:
    episode = only_episode(read(ANSWER))
    answer = episode.steps[-1]
    assert answer.action.text.startswith("The Lyon municipal library")
    assert episode.outcome == "success" and episode.terminated
    assert episode.instruction == "Find the opening hours of the Lyon library and its address."
    assert episode.metadata["finish_type"] == "give_answer"


def test_give_up_is_a_fail_action_and_outcome_fail(tmp_path: Path) -> None:
    def give_up(data: dict[str, Any]) -> None:
        generation = data["answer_generation"]
        arguments = json.dumps({"return_type": "give_up_and_restart"})
        generation["train_messages"][-1][-1]["function_call"]["arguments"] = arguments
        generation["final_answer"] = arguments
        generation["finish_type"] = "give_up"

    episode = only_episode(read(variant(tmp_path, give_up)))
    assert episode.steps[-1].action.type == "fail"
    assert episode.outcome == "fail" and episode.terminated


def test_invalid_data_has_unknown_outcome_and_instruction_falls_back(tmp_path: Path) -> None:
    def invalid(data: dict[str, Any]) -> None:
        data["answer_generation"]["valid_data"] = False
        del data["answer_generation"]["query"]

    episode = only_episode(read(variant(tmp_path, invalid)))
    assert episode.outcome == "unknown"
    assert episode.instruction == "Find the opening hours of the Lyon library and its address."


def test_the_path_ending_in_the_final_answer_wins_over_a_longer_one() -> None:
    finish = {"role": "assistant", "content": None,
              "function_call": {"name": "Finish", "arguments": '{"return_type": "give_answer", '
                                                              '"final_answer": "42"}'}}
    call = {"role": "assistant", "content": None,
            "function_call": {"name": "probe", "arguments": "{}"}}
    result = {"role": "function", "name": "probe", "content": "x"}
    head = [{"role": "user", "content": "q"}]
    paths = [[*head, call, result, finish], [*head, call, result, call, result, call]]
    final = json.dumps({"return_type": "give_answer", "final_answer": "42"}, indent=2)
    assert choose_path(paths, final) == 0
    assert choose_path(paths, None) == 0  # the only path ending in Finish
    assert choose_path([[*head, call], [*head, call, result, call]], None) == 1


def test_not_an_answer_file_is_rejected_with_what_was_expected() -> None:
    out = read(QUERIES)  # forced onto a query file
    [reject] = out.rejects
    assert reject.level == "episode" and "answer_generation" in reject.reason
    assert "instruction/G*_query.json" in reject.hint


def test_decode_nested_unwraps_json_strings_only() -> None:
    assert decode_nested('{"a": "[1, 2]"}') == {"a": [1, 2]}
    assert decode_nested('"\\"<html>\\""') == "<html>"
    assert decode_nested("{'a': 1}") == "{'a': 1}"
    assert decode_nested("123") == "123"
    assert observation_text('{"response": "{\\"k\\": \\"é\\"}"}') == '{"response": {"k": "é"}}'


# ------------------------------------------------------------------------------- real data


def real_answers() -> list[Path]:
    if not REAL.is_dir():
        pytest.skip(f"real ToolBench sample not available at {REAL} "
                    "(../shared/realdata is absent)")
    return sorted((REAL / "answer").glob("G*_answer/*.json"))


def function_calls(messages: list[dict[str, Any]]) -> list[str]:
    return [m["function_call"]["name"] for m in messages if m.get("function_call")]


@pytest.mark.realdata
def test_real_answers_every_function_call_of_the_final_path_is_a_step() -> None:
    answers = real_answers()
    assert len(answers) == 3
    for path in answers:
        found = adapters.detect(path)
        assert found is not None and found.name == "toolbench", path
        data = json.loads(path.read_text())
        final = data["answer_generation"]["train_messages"][-1]
        episode = only_episode(read(path))
        names = [s.action.tool_name or "Finish" for s in episode.steps]
        assert names == function_calls(final), path.name
        assert episode.steps[-1].action.type in ("answer", "fail")
        assert all(s.observation is not None for s in episode.steps[:-1]), path.name
        assert len(episode.metadata["train_messages"]["others"]) == len(
            data["answer_generation"]["train_messages"]) - 1


@pytest.mark.realdata
def test_real_query_file_is_not_claimed() -> None:
    real_answers()
    assert adapters.detect(REAL / "instruction/G1_query.json") is None


@pytest.mark.realdata
def test_real_nested_json_string_result_is_decoded() -> None:
    real_answers()
    episode = only_episode(read(REAL / "answer/G3_answer/21_ChatGPT_DFS_woFilter_w2.json"))
    dota = next(s for s in episode.steps if s.action.tool_name == "dota_2_steam_web")
    # The response was a JSON string holding a JSON string: both layers removed.
    assert json.loads(dota.observation)["response"].startswith("<html><head><title>Forbidden")
    sponsorships = episode.steps[2]
    assert json.loads(sponsorships.observation)["response"] == "{'value': []}"
    # Finish(give_answer) with valid_data, but the answer is "I'm sorry, but I couldn't
    # fetch...": the agent gave up in words, so it is no success.
    assert episode.outcome == "fail"
    assert "apologises" in episode.metadata["outcome_from"]


@pytest.mark.realdata
def test_real_answers_take_the_stabletoolbench_evaluator_verdict(tmp_path: Path) -> None:
    """A pass-rate file beside the answers (eval_pass_rate.py's output: query id ->
    is_solved, one verdict per run) decides the outcome: query 10 answered, but the
    evaluator found it solved in 1 run of 4 and unsure in 1 (mean 0.375); the file is
    recognised, not rejected."""
    real_answers()
    source = tmp_path / "data"
    shutil.copytree(REAL / "answer", source / "answer")
    runs = ["AnswerStatus.Unsolved", "AnswerStatus.Solved", "AnswerStatus.Unsolved",
            "AnswerStatus.Unsure"]
    verdicts = {"10": {"query": "...", "tool_names": [], "answer_steps": [],
                       "final_step": "", "is_solved": dict(enumerate(runs))}}
    rates = source / "pass_rate_results" / "ChatGPT" / "G1_instruction_ChatGPT.json"
    rates.parent.mkdir(parents=True)
    rates.write_text(json.dumps(verdicts, indent=4))
    episode = only_episode(read(source / "answer/G1_answer/10_ChatGPT_DFS_woFilter_w2.json"))
    assert episode.outcome == "fail" and episode.score == pytest.approx(0.375)
    assert "G1_instruction_ChatGPT.json" in episode.metadata["outcome_from"]
    # A verdict file named for G1 does not speak for G2's answers.
    other = only_episode(read(source / "answer/G2_answer/127_ChatGPT_DFS_woFilter_w2.json"))
    assert other.score is None and other.outcome == "fail"
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["ingest", str(source), "-o", str(store),
                                      "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert open_store(store).read_rejects().num_rows == 0


@pytest.mark.realdata
def test_real_give_up_path_with_a_dfs_prompt() -> None:
    real_answers()
    episode = only_episode(read(REAL / "answer/G2_answer/127_ChatGPT_DFS_woFilter_w2.json"))
    assert [s.action.type for s in episode.steps] == ["tool_call", "tool_call", "fail"]
    assert episode.outcome == "fail"
    first = episode.steps[0]
    assert "[user] This is not the first time you try this task" in first.observation
    assert any("user message" in w for w in first.warnings)
    assert episode.steps[1].thought.startswith("Based on the previous action")


@pytest.mark.realdata
def test_real_result_cut_short_by_the_recorder_stays_text_with_a_warning() -> None:
    real_answers()
    episode = only_episode(read(REAL / "answer/G1_answer/10_ChatGPT_DFS_woFilter_w2.json"))
    listing = episode.steps[0]
    assert listing.observation.endswith("...")
    assert any("cut short" in w for w in listing.warnings)
    assert episode.steps[1].warnings == []
