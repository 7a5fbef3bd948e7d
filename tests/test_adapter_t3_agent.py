"""T3-Agent / MM-Traj: streamed array (truncated tail), tool calls parsed from Python code,
observations by step, judge verdicts, image paths kept while the pictures are absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import FILE_MISSING, TEXT_ONLY, SourceUnit, UnitBuilder
from curate.sources.adapters.t3_agent import images, iter_array, tool_calls, verdict

FIXTURE = Path(__file__).resolve().parent / "fixtures/t3_agent/train_subset.json"
REAL = (Path(__file__).resolve().parents[2] / "shared/realdata/t3_agent/experiments/"
        "Qwen-VL/data/train_20241116_1628_subset.json")


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("t3_agent"))


def by_id(out: UnitBuilder) -> dict[str, Any]:
    return {episode.source_id.split("#")[-1]: episode for episode in out.episodes}


def test_file_is_detected() -> None:
    found = adapters.detect(FIXTURE)
    assert found is not None and found.name == "t3_agent"


def test_truncated_tail_is_one_reject_and_complete_trajectories_are_kept() -> None:
    out = read(FIXTURE)
    assert set(by_id(out)) == {"aaaa0001", "bbbb0002"}
    assert len(out.rejects) == 1
    reject = out.rejects[0]
    assert reject.position.startswith("[2] (char ") and reject.level == "episode"
    assert "the 2 complete ones before it are kept" in reject.reason


def test_a_record_cut_after_its_first_actions_keeps_them_as_a_truncated_episode(
        tmp_path: Path) -> None:
    """The file ends inside the second tool output: the task, the first code block and its
    output are whole and kept; the cut turn and every later field are lost and said so."""
    whole = FIXTURE.read_text(encoding="utf-8")
    cut_inside = whole.index('"[OUTPUT OF STEP 0] Observation:\\n1024')
    path = tmp_path / "train_subset.json"
    path.write_text(whole[:cut_inside + 20], encoding="utf-8")
    out = read(path)
    kept = by_id(out)["bbbb0002"]
    assert kept.truncated and kept.instruction == "compute 2 ** 10"
    assert [s.action.tool_name for s in kept.steps] == ["python"]
    assert kept.steps[0].observation is None  # the output is the turn that was cut
    assert "inside conversations[3]" in kept.metadata["truncated_reason"]
    assert kept.outcome == "unknown"  # the judge's verdict came after the cut
    # What was lost is a reject too, so a cut file never reads as a whole one.
    [lost] = out.rejects
    assert lost.level == "step" and "rest of the record is lost" in lost.reason
    assert lost.position.startswith("[1] (char ")


def test_tool_calls_come_from_the_code_in_order_with_literal_arguments() -> None:
    steps = by_id(read(FIXTURE))["aaaa0001"].steps
    first, second, search, answer = steps
    assert (first.action.tool_name, json.loads(first.action.tool_args)) == (
        "visualizer", {"question": "count cats", "image_path": "data/a.jpg"})
    assert json.loads(second.action.tool_args) == {"args": ["count cats"],
                                                   "image_path": "data/b.jpg"}
    assert first.thought == "Look at both pictures." and second.thought is None
    # print and the imported floor are not tools; one output for two calls goes to the last.
    assert first.observation is None and second.observation == "1 cat\n1 cat"
    assert any("attached to the last" in w for w in second.warnings)
    assert search.action.tool_name == "ask_search_agent"
    assert answer.action.type == "answer" and answer.action.text == "2"
    assert answer.thought == "I think I have enough.\n\nDone."


def test_error_outputs_are_marked() -> None:
    episode = by_id(read(FIXTURE))["aaaa0001"]
    search = episode.steps[2]
    assert search.observation == "Error code: 429 rate limit"
    assert "the code raised an error (Error: output)" in search.warnings
    assert episode.metadata["tool_errors"] == ["[0].conversations[5]"]


def test_images_are_kept_in_order_and_frames_are_missing_not_text_only() -> None:
    episodes = by_id(read(FIXTURE))
    cats = episodes["aaaa0001"]
    assert cats.metadata["images"] == ["data/a.jpg", "data/b.jpg"]
    assert cats.instruction == "How many cats are in both pictures?"
    assert all(s.frame_missing == FILE_MISSING for s in cats.steps)
    assert all(s.frame_missing == TEXT_ONLY for s in episodes["bbbb0002"].steps)


def test_code_without_tools_is_a_python_step_and_prose_last_turn_the_answer() -> None:
    steps = by_id(read(FIXTURE))["bbbb0002"].steps
    assert [s.action.type for s in steps] == ["tool_call", "answer"]
    assert json.loads(steps[0].action.tool_args) == {"code": "x = 2 ** 10\nprint(x)"}
    assert steps[0].observation == "1024"
    assert steps[1].action.text == "The answer is 1024."


def test_judge_verdict_is_the_outcome() -> None:
    episodes = by_id(read(FIXTURE))
    assert episodes["aaaa0001"].outcome == "success"
    assert episodes["bbbb0002"].outcome == "fail"
    assert episodes["bbbb0002"].metadata["judge"]["thought"] == "wrong tool use"
    assert verdict("no json here") == ("unknown", None)


def test_helpers_never_run_code_and_handle_odd_input() -> None:
    assert tool_calls("def (") is None
    assert tool_calls("__import__('os').system('false')") == []  # a builtin: not a tool
    assert images({"<image_10>": "c", "<image_02>": "b"}) == ["b", "c"]
    assert [i for i, _ in iter_array("[1, 2, 3]")] == [0, 1, 2]


def test_real_sample_keeps_94_trajectories_and_its_tool_counts() -> None:
    out = read(REAL)
    assert len(out.episodes) == 94
    assert len(out.rejects) == 1 and out.rejects[0].position.startswith("[94]")
    # Cut inside its system prompt: no whole turn, nothing to keep; the reason says so.
    assert "(id n0cAyCdv), inside conversations[0]" in out.rejects[0].reason
    assert "nothing to keep" in out.rejects[0].reason
    names: dict[str, int] = {}
    for episode in out.episodes:
        for step in episode.steps:
            key = step.action.tool_name or step.action.type
            names[key] = names.get(key, 0) + 1
    # SOURCE.md's counts of tool calls in the sample.
    for name, count in {"ask_search_agent": 48, "visualizer": 36, "objectlocation": 9,
                        "image_generator": 7, "facedetection": 5, "segmentation": 2,
                        "image_edit": 1}.items():
        assert names[name] == count, name
    assert names["answer"] == 94
    # Each ends with its final_answer: terminated, so its segments end as done, not cut off.
    assert all(e.terminated and not e.truncated for e in out.episodes)
    assert {e.outcome for e in out.episodes} <= {"success", "fail"}
