"""Mind2Web: processed task JSON, raw-dump task folders, Multimodal-Mind2Web Parquet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from curate.actions import format_action_text, parse_action_text
from curate.pipeline.extract import extract_unit, read_unit
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    NO_SCREENSHOTS,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
)
from curate.sources.adapters.mind2web import _load_lean_json
from curate.sources.discover import discover

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "recordings"
REALDATA = REPO.parent / "shared" / "realdata"
FIXTURES = REPO / "tests" / "fixtures" / "mind2web"
PROCESSED = FIXTURES / "processed" / "test_website_0.json"
RAW_TASK = FIXTURES / "raw_dump" / "task" / "m2w-shoes"
PARQUET = FIXTURES / "multimodal" / "test_task-00000-of-00001.parquet"
A11Y_PARQUET = FIXTURES / "a11y" / "test_website-00000-of-00001.parquet"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("mind2web"))


def episode(out: UnitBuilder, annotation_id: str) -> EpisodeBuilder:
    found = [e for e in out.episodes if e.metadata.get("annotation_id") == annotation_id]
    assert len(found) == 1, [e.source_id for e in out.episodes]
    return found[0]


# ------------------------------------------------------------------------------ detection


@pytest.mark.parametrize("path", [PROCESSED, RAW_TASK, PARQUET], ids=lambda p: p.name)
def test_each_layout_is_detected(path: Path) -> None:
    adapter = adapters.detect(path)
    assert adapter is not None and adapter.name == "mind2web"


def test_files_of_other_adapters_are_not_claimed() -> None:
    adapter = adapters.get("mind2web")
    roots = [REPO / "tests" / "fixtures", EXAMPLES] + ([REALDATA] if REALDATA.is_dir() else [])
    others = [p for root in roots for p in discover([root])
              if p.adapter is not None and p.adapter != "mind2web"]
    assert others
    claimed = [p.unit.path for p in others if adapter.claims(p.unit.path)]
    assert not claimed


def test_json_without_mind2web_keys_is_not_claimed(tmp_path: Path) -> None:
    other = tmp_path / "tasks.json"
    other.write_text(json.dumps([{"id": "x", "task": "t", "actions": []}]))
    assert not adapters.get("mind2web").claims(other)


# --------------------------------------------------------------------------- processed JSON


def test_processed_operations_map_to_click_and_type_with_the_target_element() -> None:
    flight = episode(read(PROCESSED), "m2w-flight")
    kinds = [(s.action.type, s.action.text) for s in flight.steps]
    assert kinds == [("click", None), ("type", "New York"), ("type", "Economy"),
                     ("click", None), ("click", None)]
    typed = flight.steps[1].action
    assert typed.target is not None
    assert (typed.target.role, typed.target.text, typed.target.element_id) == (
        "textbox", "From", "102")
    assert json.loads(flight.steps[2].action.raw or "")["op"] == "SELECT"
    assert flight.instruction == "Find one-way flights from New York to Toronto."
    assert flight.metadata["website"] == "united"
    assert (flight.outcome, flight.terminated, flight.truncated) == ("success", True, False)


def test_action_reprs_become_the_step_instruction() -> None:
    flight = episode(read(PROCESSED), "m2w-flight")
    assert flight.steps[2].step_instruction == "[combobox]  Cabin -> SELECT: Economy"
    assert flight.step_rows()[2]["step_instruction"] == "[combobox]  Cabin -> SELECT: Economy"


def test_select_uses_the_original_target_among_several_positives() -> None:
    select = episode(read(PROCESSED), "m2w-flight").steps[2]
    assert select.action.target is not None and select.action.target.element_id == "104"
    assert (select.action.px, select.action.py) == (32.0, 108.0)  # centre of 8,100,48,16
    assert any("original target" in w for w in select.warnings)


def test_hover_and_enter_stay_clicks_with_a_warning() -> None:
    steps = episode(read(PROCESSED), "m2w-flight").steps
    assert steps[3].action.type == steps[4].action.type == "click"
    assert any("HOVER" in w for w in steps[3].warnings)
    assert any("ENTER" in w for w in steps[4].warnings)


def test_empty_positives_and_invisible_boxes_keep_the_step_without_coordinates() -> None:
    steps = episode(read(PROCESSED), "m2w-flight").steps
    for step in steps[3:]:
        assert step.action.px is None and step.action.x is None
    assert any("no positive candidate" in w for w in steps[3].warnings)
    assert any("-1,-1,-1,-1" in w for w in steps[4].warnings)
    assert steps[3].action.target is not None and steps[3].action.target.text == "Deals"


def test_processed_steps_have_no_screenshots_and_page_pixels_only() -> None:
    first = episode(read(PROCESSED), "m2w-flight").steps[0]
    assert first.frame_id is None and first.frame_missing == NO_SCREENSHOTS
    assert first.next_frame_missing == NO_SCREENSHOTS
    assert (first.action.x, first.action.px, first.action.py) == (None, 25.0, 25.0)
    assert first.action.coord_space == "page_css_px"


def test_bad_operations_and_bad_tasks_are_rejected_with_their_position() -> None:
    out = read(PROCESSED)
    assert [e.metadata["annotation_id"] for e in out.episodes] == ["m2w-flight", "m2w-recipe"]
    where = {(r.position, r.level) for r in out.rejects}
    assert ("[1].actions[0]", "step") in where  # SCROLL is not a Mind2Web operation
    assert {("[2]", "episode"), ("[3]", "episode"), ("[4]", "episode")} <= where
    duplicate = next(r for r in out.rejects if r.position == "[3]")
    assert "twice" in duplicate.reason and duplicate.episode_id == out.episodes[1].episode_id


def test_html_and_negative_candidates_are_dropped_while_parsing() -> None:
    data = _load_lean_json(PROCESSED, SourceUnit(PROCESSED, PROCESSED.name))
    action = data[0]["actions"][0]
    assert "raw_html" not in action and "cleaned_html" not in action
    assert "neg_candidates" not in action and action["neg_candidate_count"] == 2


def test_candidates_become_screen_elements_where_there_is_a_page_to_place_them() -> None:
    steps = episode(read(A11Y_PARQUET), "m2w-a11y").steps
    first = steps[0].elements
    # The positive (role and text from action_reprs) first; a name comes from aria_label or
    # placeholder; the nameless div keeps its tag; the unrendered "-1,-1,-1,-1" button is out.
    assert [(e["role"], e["text"], e["element_id"]) for e in first] == [
        ("button", "Search", "a-0"), ("a", "Help", "n-help"), ("div", None, "n-div"),
        ("input", "Search", "a-3")]
    box = (first[0]["x0"], first[0]["y0"], first[0]["x1"], first[0]["y1"])
    assert box == pytest.approx((40 / 64, 10 / 240, 56 / 64, 18 / 240), abs=1e-4)
    assert steps[2].elements is not None and len(steps[2].elements) == 2  # no positive
    raw = episode(read(RAW_TASK), "m2w-shoes").steps[0]
    assert raw.elements is not None and [e["element_id"] for e in raw.elements] == ["301"]
    assert all(s.elements is None for s in episode(read(PROCESSED), "m2w-flight").steps)


def test_a_single_task_object_file_is_read(tmp_path: Path) -> None:
    task = json.loads(PROCESSED.read_text())[1]
    path = tmp_path / "one.json"
    path.write_text(json.dumps(task))
    out = read(path)
    assert len(out.episodes) == 1 and len(out.episodes[0].steps) == 1
    assert out.rejects[0].position == "actions[0]"


def test_truncated_json_is_an_episode_reject_with_the_position(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(PROCESSED.read_text()[:500])
    out = read(path)
    assert not out.episodes
    assert out.rejects[0].level == "episode" and out.rejects[0].position.startswith("line")


# ---------------------------------------------------------------------------- raw dump


def test_raw_dump_normalises_against_the_full_page_screenshot() -> None:
    shoes = read(RAW_TASK).episodes[0]
    first = shoes.steps[0]
    # The raw dump's own box (8, 40, 16, 8) wins over the candidate rect "0,0,16,8".
    assert (first.action.x, first.action.y) == (0.25, round(44 / 240, 4))
    assert first.action.target is not None
    assert (first.action.target.y0, first.action.target.y1) == (round(40 / 240, 4), 0.2)
    assert shoes.screen_size() == (64, 240)
    assert "full-page" in shoes.metadata["frame_crop"]
    assert first.frame_id and first.next_frame_id and first.frame_id != first.next_frame_id
    assert shoes.source_id == RAW_TASK.name  # a task folder is one episode


def test_raw_dump_missing_and_corrupt_screenshots_keep_the_steps() -> None:
    out = read(RAW_TASK)
    steps = out.episodes[0].steps
    assert (steps[1].frame_missing, steps[1].next_frame_missing) == (FILE_MISSING, FILE_MISSING)
    assert steps[2].frame_id is not None and steps[2].next_frame_missing == FILE_CORRUPT
    reasons = " | ".join(r.reason for r in out.rejects)
    assert "s-1" in reasons and "not valid base64" in reasons
    assert all(r.level == "frame" for r in out.rejects)
    assert out.episodes[0].metadata["unused_screenshot_entries"] == ["s-9"]


def test_raw_dump_target_below_the_page_is_kept_with_a_warning() -> None:
    last = read(RAW_TASK).episodes[0].steps[2]
    assert last.action.y is not None and last.action.y > 1
    assert any("outside" in w for w in last.warnings)


def test_raw_dump_without_task_json_explains_what_is_missing(tmp_path: Path) -> None:
    folder = tmp_path / "m2w-shoes"
    shutil.copytree(RAW_TASK, folder)
    (folder / "task.json").unlink()
    out = read(folder)
    assert not out.episodes
    assert "task.json" in out.rejects[0].reason + out.rejects[0].hint


# ------------------------------------------------------------------------------- Parquet


def test_parquet_rows_are_ordered_and_json_in_json_is_decoded() -> None:
    books = episode(read(PARQUET), "m2w-books")
    assert [s.source_position for s in books.steps] == ["row 1", "row 0", "row 2"]
    assert [s.action.type for s in books.steps] == ["type", "click", "click"]
    typed = books.steps[0].action
    assert typed.text == "dune" and typed.target is not None
    assert (typed.x, typed.y) == (round(20 / 64, 4), round(14 / 240, 4))
    assert typed.target.element_id == "m2w-books-0"


def test_parquet_next_state_is_the_next_actions_screenshot() -> None:
    steps = episode(read(PARQUET), "m2w-books").steps
    assert steps[0].next_frame_id == steps[1].frame_id
    assert steps[1].next_frame_id == steps[2].frame_id
    assert steps[2].next_frame_id is None and steps[2].next_frame_missing == NO_SCREENSHOTS


def test_a_task_split_across_shards_is_partial_and_says_so() -> None:
    out = read(PARQUET)
    music = episode(out, "m2w-music")
    assert music.truncated and not music.terminated
    assert music.metadata["missing_action_indices"] == [1]
    assert music.steps[0].next_frame_id is None
    assert any("not in this file" in w for w in music.steps[0].warnings)
    assert music.steps[1].frame_missing == FILE_MISSING
    assert any(r.position == "row 4.screenshot" for r in out.rejects)


def test_corrupt_parquet_is_an_episode_reject(tmp_path: Path) -> None:
    path = tmp_path / "test_task-00000-of-00001.parquet"
    data = PARQUET.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = read(path)
    assert not out.episodes and out.rejects[0].level == "episode"


# ------------------------------------------------------------------------- store tables


@pytest.mark.parametrize("path", [PROCESSED, RAW_TASK, PARQUET], ids=lambda p: p.name)
def test_every_layout_extracts_into_store_tables(path: Path) -> None:
    tables = extract_unit(SourceUnit(path, path.name), "mind2web")
    assert tables.steps.num_rows > 0
    for text in tables.steps.column("action_text").to_pylist():
        assert format_action_text(parse_action_text(text)) == text
    assert set(tables.episodes.column("platform").to_pylist()) == {"web"}


def test_episode_ids_are_stable_across_runs() -> None:
    def ids() -> list[Any]:
        return [e.episode_id for e in read(PROCESSED).episodes]
    assert ids() == ids()
