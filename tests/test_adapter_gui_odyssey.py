"""The GUI-Odyssey adapter: annotation JSON + screenshots in a sibling folder."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

from curate.pipeline.extract import extract_unit, read_unit
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
)
from curate.sources.discover import discover

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "gui_odyssey"
LATER = FIXTURES / "annotations" / "0001.json"
FIRST = FIXTURES / "annotations" / "0002.json"
NAME = "gui_odyssey"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, f"gui_odyssey/annotations/{path.name}"),
                     adapters.get(NAME))


def episode(path: Path) -> EpisodeBuilder:
    out = read(path)
    assert len(out.episodes) == 1, out.rejects
    return out.episodes[0]


def test_gui_odyssey_episode_metadata_and_instruction() -> None:
    ep = episode(LATER)
    assert ep.instruction == "Use Clock to set an alarm, then write a note."
    assert ep.platform == "mobile" and ep.metadata["device_name"] == "Pixel 7 Pro"
    assert ep.metadata["apps"] == ["Clock", "Notes"]
    assert episode(FIRST).instruction == "Book a flight to Paris."  # empty instruction: task


def test_gui_odyssey_coordinates_on_the_0_1000_grid() -> None:
    click = episode(LATER).steps[0].action
    assert (click.type, click.x, click.y, click.px, click.py) == ("click", 0.5, 0.3, 500, 300)
    assert click.coord_space == "norm_1000"
    assert (click.screen_width, click.screen_height) == (1440, 3120)
    assert click.scale == 0.036  # a 36 px wide frame per 1000 grid units


def test_gui_odyssey_scroll_is_a_swipe_along_the_primary_axis() -> None:
    swipe = episode(LATER).steps[1].action
    assert swipe.type == "swipe" and swipe.direction == "up"
    assert (swipe.x, swipe.y, swipe.x2, swipe.y2) == (0.5, 0.8, 0.52, 0.2)
    assert "(510, 500)" in json.loads(swipe.raw or "")["ps"]


def test_gui_odyssey_system_keys_type_and_terminal_actions() -> None:
    steps = episode(LATER).steps
    assert [s.action.type for s in steps] == [
        "click", "swipe", "type", "home", "long_press", "key", "done"]
    assert steps[2].action.text == "hello"
    assert steps[5].action.keys == ("app_switch",)
    assert steps[6].action.text == "Alarm set"
    first = episode(FIRST).steps
    assert [s.action.type for s in first] == ["click", "type", "back", "fail"]
    assert first[-1].action.text == "No flights"


def test_gui_odyssey_keeps_intention_and_low_level_instruction() -> None:
    step = episode(LATER).steps[0]
    assert step.step_instruction == "Open the Clock app."
    assert step.thought == "I am opening the Clock app to set an alarm."
    assert episode(FIRST).steps[0].step_instruction is None


def test_gui_odyssey_off_grid_point_is_kept_and_warned() -> None:
    press = episode(LATER).steps[4]
    assert press.action.y == pytest.approx(1.01)
    assert any("outside the 1000x1000" in w for w in press.warnings)


def test_gui_odyssey_alignment_next_state_is_next_steps_screenshot() -> None:
    steps = episode(LATER).steps
    for before, after in itertools.pairwise(steps):
        assert before.next_frame_id == after.frame_id is not None
    assert steps[-1].next_frame_missing == FINAL_STATE_NOT_RECORDED


def test_gui_odyssey_steps_sorted_and_bad_steps_rejected() -> None:
    out = read(FIRST)
    (ep,) = out.episodes
    assert [s.source_position for s in ep.steps] == [
        "steps[1] (step 0)", "steps[0] (step 1)", "steps[2] (step 2)", "steps[4] (step 4)"]
    reject = next(r for r in out.rejects if "DRAG" in r.reason)
    assert reject.position == "steps[3] (step 3)" and "KEY_APPSELECT" in reject.reason


def test_gui_odyssey_missing_and_corrupt_screenshots() -> None:
    out = read(FIRST)
    steps = out.episodes[0].steps
    assert steps[1].next_frame_missing == FILE_MISSING and steps[2].frame_missing == FILE_MISSING
    assert steps[2].next_frame_missing == FILE_CORRUPT  # the rejected DRAG step's screenshot
    corrupt = next(r for r in out.rejects if "not a PNG" in r.reason)
    assert corrupt.file == "gui_odyssey/screenshots/0002_3.png"
    assert any("0002_missing.png" in r.reason for r in out.rejects)


def test_gui_odyssey_outcome_from_the_terminal_action() -> None:
    assert (episode(LATER).outcome, episode(LATER).terminated) == ("success", True)
    assert episode(FIRST).outcome == "fail"


def test_gui_odyssey_without_terminal_action_is_truncated(tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "screenshots", root / "screenshots")
    value = json.loads(LATER.read_text())
    value["steps"] = value["steps"][:3]
    (root / "annotations").mkdir()
    (root / "annotations" / "x.json").write_text(json.dumps(value))
    ep = episode(root / "annotations" / "x.json")
    assert ep.truncated and not ep.terminated and ep.outcome == "unknown"


def test_gui_odyssey_input_files_include_the_screenshots() -> None:
    unit = SourceUnit(LATER, "gui_odyssey/annotations/0001.json")
    files = adapters.get(NAME).input_files(unit)
    assert files[0] == LATER and len(files) == 8
    assert all(path.parent.name == "screenshots" for path in files[1:])


def test_gui_odyssey_extracts_to_arrow() -> None:
    tables = extract_unit(SourceUnit(LATER, "gui_odyssey/annotations/0001.json"), NAME)
    assert tables.steps.num_rows == 7 and tables.frames.num_rows == 7
    assert tables.steps.column("step_instruction").to_pylist()[0] == "Open the Clock app."


def test_gui_odyssey_claims_only_annotation_files(tmp_path: Path) -> None:
    ours = adapters.get(NAME)
    assert not ours.claims(FIXTURES / "annotations") and not ours.claims(FIXTURES)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"steps": []}))
    assert not ours.claims(other)
    claimers = [a.name for a in adapters.all_adapters() if a.claims(LATER)]
    assert claimers == [NAME]
    roots = [p for p in (HERE.parents[1] / "shared" / "realdata", HERE / "fixtures")
             if p.is_dir()]
    for planned in discover(roots):
        if planned.adapter == NAME:
            assert planned.unit.path.parent == FIXTURES / "annotations", planned.unit.path
