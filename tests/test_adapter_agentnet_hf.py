"""The AgentNet Hugging Face release: one trajectory per JSONL line, screenshots in images/."""

from __future__ import annotations

import shutil
from pathlib import Path

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    RECORD_UNREADABLE,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "agentnet_hf"
SAMPLE = FIXTURES / "agentnet_sample.jsonl"
NAME = "agentnet_hf"


def read(path: Path = SAMPLE) -> UnitBuilder:
    return read_unit(SourceUnit(path, f"agentnet_hf/{path.name}"), adapters.get(NAME))


def episodes(out: UnitBuilder) -> dict[str, EpisodeBuilder]:
    return {e.source_id.rpartition("#")[2]: e for e in out.episodes}


def test_release_jsonl_is_detected_and_nothing_else_claims_it() -> None:
    assert adapters.detect(SAMPLE).name == NAME
    assert not adapters.get(NAME).claims(FIXTURES / "images" / "t1_0.png")


def test_cot_trajectory_keeps_instruction_prose_thought_and_state_text() -> None:
    ep = episodes(read())["t1"]
    assert ep.instruction == "Search the web for the weather in Paris"
    assert ep.outcome == "success" and ep.terminated
    assert ep.metadata["alignment_score"] == 9
    assert ep.metadata["actual_task"].startswith("Search 'weather paris'")
    first = ep.steps[0]
    assert first.step_instruction == "Click the search box in the middle of the page."
    assert first.thought == "I need to focus the search box first."
    assert first.observation is None  # state before the action is not the action's result
    assert ep.metadata["state_text"]["0"] == "Chrome shows a new tab with a search box."
    assert ep.metadata["reflection"]["2"] == "The query was typed twice."


def test_code_becomes_actions_with_normalised_coordinates() -> None:
    steps = episodes(read())["t1"].steps
    click, typed, scroll, done = (s.action for s in steps)
    assert (click.type, click.x, click.y, click.coord_space) == ("click", 0.5, 0.4, "norm_1")
    assert typed.type == "type" and typed.text == "weather paris\n"
    assert "folded" in steps[1].warnings[0]
    assert (scroll.direction, scroll.amount, scroll.x, scroll.y) == ("down", 5.0, 0.5, 0.6)
    assert done.type == "done" and done.raw == "computer.terminate(status='success')"


def test_correctness_flags_are_attached_to_the_step_they_judge() -> None:
    judgements = episodes(read())["t1"].metadata["step_judgements"]
    # OpenCUA: the flags on item i judge item i-1; the first judges nothing documented.
    assert judgements[0] == {"recorded_on": 0, "judged_step": None,
                             "last_step_correct": True, "last_step_redundant": False}
    assert judgements[2] == {"recorded_on": 2, "judged_step": 1,
                             "last_step_correct": False, "last_step_redundant": True}


def test_missing_screenshot_is_a_frame_reject_and_the_step_stays() -> None:
    out = read()
    steps = episodes(out)["t1"].steps
    assert steps[2].frame_id is None and steps[2].frame_missing == FILE_MISSING
    assert steps[1].next_frame_id is None  # s_t+1 of step 1 is the missing screenshot
    assert steps[3].frame_id is not None and steps[3].next_frame_missing == \
        FINAL_STATE_NOT_RECORDED
    assert steps[0].next_frame_id == steps[1].frame_id
    [frame_reject] = [r for r in out.rejects if r.level == "frame"]
    assert frame_reject.file == "agentnet_hf/images/t1_2.png"
    assert "missing" in frame_reject.reason


def test_code_only_items_positional_style_and_unknown_calls() -> None:
    out = read()
    ep = episodes(out)["t2"]
    assert [s.action.type for s in ep.steps] == ["double_click", "key", "key"]
    assert ep.steps[0].action.x == 0.25 and ep.steps[1].action.keys == ("ctrl", "c")
    assert ep.outcome == "unknown" and not ep.terminated
    # The rejected call sits between ctrl+c and ctrl+v: the next screenshot is not its result.
    assert ep.steps[1].next_frame_missing == RECORD_UNREADABLE
    reasons = {r.position: r.reason for r in out.rejects if r.level == "step"}
    assert reasons["line 2 traj[2]"] == "unknown pyautogui call 'locateOnScreen'"


def test_truncated_last_line_loses_only_itself() -> None:
    out = read()
    assert len(out.episodes) == 2
    assert any(r.position == "line 3" and "invalid JSON" in r.reason for r in out.rejects)


def test_images_folder_absent_keeps_every_step(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / SAMPLE.name)
    out = read(tmp_path / SAMPLE.name)
    ep = episodes(out)["t1"]
    assert len(ep.steps) == 4 and all(s.frame_missing == FILE_MISSING for s in ep.steps)
    assert sum(r.level == "frame" for r in out.rejects) == 7
