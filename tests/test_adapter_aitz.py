"""Android in the Zoo (AITZ): AITW actions with CoAT annotations, one JSON list per episode."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    SourceUnit,
    UnitBuilder,
)

EPISODE = Path(__file__).resolve().parent / "fixtures" / "aitz" / "GENERAL-1001" / \
    "GENERAL-1001.json"


def read(path: Path = EPISODE) -> UnitBuilder:
    return read_unit(SourceUnit(path, f"aitz/{path.name}"), adapters.get("aitz"))


def test_detected_as_aitz() -> None:
    assert adapters.detect(EPISODE).name == "aitz"


def test_aitw_actions_with_yx_points() -> None:
    [ep] = read().episodes
    tap, typed, enter, swipe, done = (s.action for s in ep.steps)
    assert (tap.type, tap.x, tap.y, tap.coord_space) == ("click", 0.5, 0.12, "norm_1")
    assert tap.screen_width == 36  # the screenshot's size
    assert typed.type == "type" and typed.text == "pizza near me"
    assert enter.type == "key" and enter.keys == ("enter",)
    # touch (y 0.8) to lift (y 0.2): the finger moves up, a swipe, not a tap
    assert (swipe.type, swipe.direction, swipe.y, swipe.y2) == ("swipe", "up", 0.8, 0.2)
    assert done.type == "done" and ep.outcome == "success" and ep.terminated


def test_coat_fields_go_to_instruction_thought_state_and_expected_result() -> None:
    [ep] = read().episodes
    assert ep.instruction == "search for a pizza place nearby"
    first = ep.steps[0]
    assert first.step_instruction == "click on the search bar at the top"
    assert first.thought.startswith("The home screen has a search bar")
    assert ep.metadata["state_text"]["0"] == "A home screen with a search bar at the top."
    assert ep.metadata["expected_result"]["0"] == "By doing so, the keyboard opens."
    assert first.observation is None


def test_unknown_action_type_and_missing_screenshots_are_rejects() -> None:
    out = read()
    [ep] = out.episodes
    assert len(ep.steps) == 5
    [step_reject] = [r for r in out.rejects if r.level == "step"]
    assert step_reject.position == "[4] (step_id 4)"
    assert "unknown result_action_type 99" in step_reject.reason
    assert sorted(r.file for r in out.rejects if r.level == "frame") == [
        "general/GENERAL-1001/GENERAL-1001_4.png", "general/GENERAL-1001/GENERAL-1001_5.png"]
    assert ep.steps[3].next_frame_missing == FILE_MISSING
    assert ep.steps[4].frame_missing == FILE_MISSING
    assert ep.steps[4].next_frame_missing == FINAL_STATE_NOT_RECORDED
    assert ep.steps[0].next_frame_id == ep.steps[1].frame_id


def test_steps_are_ordered_by_step_id_and_short_episodes_are_truncated(tmp_path: Path) -> None:
    records = json.loads(EPISODE.read_text())
    folder = tmp_path / "ep"
    shutil.copytree(EPISODE.parent, folder)
    (folder / EPISODE.name).write_text(json.dumps(list(reversed(records[:3]))))
    [ep] = read(folder / EPISODE.name).episodes
    assert [s.action.type for s in ep.steps] == ["click", "type", "key"]
    assert ep.truncated and ep.metadata["missing_steps"] == 3
    assert ep.outcome == "unknown"


def test_truncated_json_is_one_episode_reject(tmp_path: Path) -> None:
    path = tmp_path / EPISODE.name
    path.write_text(EPISODE.read_text()[:500])
    out = read(path)
    assert not out.episodes and out.rejects[0].level == "episode"
    assert "invalid JSON" in out.rejects[0].reason
