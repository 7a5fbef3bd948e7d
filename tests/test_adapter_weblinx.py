"""WebLINX demonstrations: a dialogue of chat and browser turns read into steps (navigator
utterances as answers, instructor utterances as the instruction), scroll positions turned
into deltas, each turn's own screenshot or the latest earlier one as its state, follow-on
events counted rather than stepped, bad turns rejected one by one.

No WebLINX sample is in ../shared/realdata: the fixture was written from the format as
McGill-NLP/weblinx's Demonstration / Replay / Turn classes read it (docs/sources/weblinx.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import SourceUnit, UnitBuilder
from curate.sources.discover import discover

FIXTURES = Path(__file__).resolve().parent / "fixtures/weblinx/demonstrations"
DEMO = FIXTURES / "aaabbbc"


def read(path: Path = DEMO) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("weblinx"))


def test_a_demonstration_folder_is_one_unit_and_other_replays_are_not(tmp_path: Path) -> None:
    units = list(discover([FIXTURES.parent]))
    assert [(u.unit.path.name, u.adapter) for u in units if u.adapter] == [
        ("aaabbbc", "weblinx")]
    other = tmp_path / "recording"
    other.mkdir()
    (other / "replay.json").write_text(json.dumps({"events": [{"type": 2}]}))
    found = adapters.detect(other)
    assert found is None or found.name != "weblinx"


def test_the_dialogue_becomes_steps_and_the_instruction() -> None:
    episode = read().episodes[0]
    assert episode.instruction == "Find me running shoes under $50 on shoes.example"
    assert [s.action.type for s in episode.steps] == [
        "navigate", "answer", "click", "type", "scroll", "scroll", "click", "answer"]
    assert [s.source_position for s in episode.steps] == [
        "data[1]", "data[2]", "data[4]", "data[5]", "data[7]", "data[8]", "data[10]", "data[14]"]
    steps = episode.steps
    assert steps[0].action.url == "https://shoes.example/"  # typed in the address bar
    assert steps[1].action.text == "Sure, one moment"
    assert steps[-1].action.text == "Here are the blue running shoes for $45"
    # The instructor's latest utterance is each step's instruction.
    assert steps[5].step_instruction == episode.instruction
    assert steps[6].step_instruction == "Only the blue ones, please"
    assert episode.metadata["not_steps"] == {
        "load not typed by the user (follows a click, redirect or script)": 1,
        "submit (follows the click or Enter that sent the form)": 1,
        "tab switched (no tab action in curate's space)": 1}
    assert [s.timestamp for s in steps[:2]] == [9.0, 12.5] and episode.clock == "relative"
    assert episode.metadata["form"]["tasks"] == ["shopping"]


def test_points_targets_text_and_scroll_deltas() -> None:
    steps = read().episodes[0].steps
    click = steps[2].action
    assert (click.px, click.py, click.x, click.y) == (640.0, 90.0, 0.5, 0.125)
    assert click.coord_space == "viewport_css_px" and click.screen_width == 1280
    assert click.target is not None
    assert (click.target.role, click.target.element_id) == ("input", "a1b2c3d4-0001")
    assert (click.target.x0, click.target.y1) == (round(440 / 1280, 4), round(110 / 720, 4))
    typing = steps[3].action
    assert typing.text == "running shoes" and typing.target == click.target
    # scrollY went 0 -> 600 -> 400: positions, so the second scroll is 200 up.
    assert [(s.action.direction, s.action.amount) for s in steps[4:6]] == [
        ("down", 600.0), ("up", 200.0)]
    blue = steps[6].action.target
    assert blue is not None and blue.text == "Blue running shoes"  # whitespace folded


def test_states_are_the_turns_own_screenshot_or_the_latest_earlier_one() -> None:
    out = read()
    steps = out.episodes[0].steps
    navigate, answer, click = steps[0], steps[1], steps[2]
    assert navigate.frame_id is not None and navigate.next_frame_id == navigate.frame_id
    assert answer.frame_id == navigate.frame_id  # the chat turn has no screenshot of its own
    assert answer.warnings == ["no screenshot of its own; the state is the latest earlier one "
                               "(screenshots/screenshot-1-0.png)"]
    assert answer.next_frame_id == click.frame_id != navigate.frame_id
    assert steps[4].next_frame_id is None and steps[4].next_frame_missing == "file_missing"
    assert steps[6].frame_missing == "file_corrupt"  # marked broken: not used
    assert steps[-1].next_frame_missing == "final_state_not_recorded"
    frames = [(r.file, r.position) for r in out.rejects if r.level == "frame"]
    assert frames == [("aaabbbc/screenshots/screenshot-8-0.png", "data[8]"),
                      ("aaabbbc/replay.json", "data[10]")]


def test_bad_turns_are_rejected_one_by_one_and_the_rest_kept() -> None:
    out = read()
    steps = [(r.position, r.reason) for r in out.rejects if r.level == "step"]
    assert steps == [("data[12]", "unknown browser intent 'drag'; skipped"),
                     ("data[13]", "unknown turn (type 'str'); skipped")]
    assert all(r.file == "aaabbbc/replay.json" for r in out.rejects if r.level == "step")
    assert len(out.episodes[0].steps) == 8


def test_invalid_and_truncated_demonstrations_are_rejected_whole(tmp_path: Path) -> None:
    invalid = tmp_path / "invalid-demo"
    shutil.copytree(DEMO, invalid)
    (invalid / "invalid.json").write_text("{}")
    out = read(invalid)
    assert out.episodes == []
    assert [(r.file, r.level) for r in out.rejects] == [("invalid-demo/invalid.json",
                                                         "episode")]
    cut = tmp_path / "cut-demo"
    shutil.copytree(DEMO, cut)
    text = (cut / "replay.json").read_text()
    (cut / "replay.json").write_text(text[: len(text) // 2])
    out = read(cut)
    assert out.episodes == []
    assert len(out.rejects) == 1 and out.rejects[0].file == "cut-demo/replay.json"
    assert "invalid JSON" in out.rejects[0].reason and out.rejects[0].position.startswith("line")


def test_intent_names_are_folded_as_weblinx_folds_them(tmp_path: Path) -> None:
    demo = tmp_path / "underscored"
    shutil.copytree(DEMO, demo)
    replay = json.loads((demo / "replay.json").read_text())
    replay["data"][5]["action"]["intent"] = "text_input"
    (demo / "replay.json").write_text(json.dumps(replay))
    typing = read(demo).episodes[0].steps[3].action
    assert (typing.type, typing.text) == ("type", "running shoes")
