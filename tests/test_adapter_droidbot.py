"""The DroidBot adapter, on the generated fixture report and on the real sample."""

from __future__ import annotations

import json
import shutil
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import FILE_MISSING, SourceUnit, UnitBuilder
from curate.sources.adapters.droidbot import parse_utg
from curate.sources.discover import discover

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "droidbot" / "report_tiny"
# Resolved: ../shared may be a symbolic link, and discover() names units by resolved paths.
REAL_ROOT = (Path(__file__).resolve().parents[2] / "shared/realdata").resolve()
REAL = REAL_ROOT / "droidbot_utg" / "report_com.yanzhenjie.album.sample"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real DroidBot sample absent: {REAL}")


def _read(folder: Path) -> UnitBuilder:
    return read_unit(SourceUnit(folder, folder.name), adapters.get("droidbot"))


def _rows(out: UnitBuilder) -> list[dict[str, Any]]:
    (episode,) = out.episodes
    return episode.step_rows()


def test_the_fixture_report_is_detected_as_droidbot() -> None:
    detected = adapters.detect(FIXTURE)
    assert detected is not None and detected.name == "droidbot"


def test_every_event_file_is_a_step_or_a_reject_in_tag_order() -> None:
    out = _read(FIXTURE)
    rows = _rows(out)
    events = sorted(p.name for p in (FIXTURE / "events").glob("event_*.json"))
    kept = [row["source_position"].removeprefix("events/") for row in rows]
    rejected = [r.file.rsplit("/", 1)[-1] for r in out.rejects if r.level == "step"]
    assert sorted(kept + rejected) == events
    assert kept == sorted(kept)
    assert [row["action_text"].split("(")[0] for row in rows] == [
        "home", "open_app", "click", "click", "type", "scroll", "swipe", "long_press", "back",
        "key"]


def test_touch_with_null_xy_lands_on_the_view_bounds_centre_with_the_view_as_target() -> None:
    row = _rows(_read(FIXTURE))[2]
    action = row["action"]
    assert (action["px"], action["py"]) == (180.0, 530.0)
    assert (action["x"], action["y"]) == (0.5, 0.8281)
    assert action["coord_space"] == "element"
    assert (action["screen_width"], action["screen_height"]) == (360, 640)
    target = action["target"]
    assert target["text"] == "OK" and target["role"] == "android.widget.Button"
    assert target["element_id"] == "com.example.app:id/ok"
    assert (target["x0"], target["y0"], target["x1"], target["y1"]) == (
        0.2778, 0.7812, 0.7222, 0.875)


def test_states_missing_from_the_report_keep_the_step_with_file_missing_and_a_reject() -> None:
    out = _read(FIXTURE)
    home, start = _rows(out)[:2]
    assert home["frame_missing"] == home["next_frame_missing"] == FILE_MISSING
    assert start["frame_missing"] == FILE_MISSING and start["next_frame_id"] is not None
    (reject,) = [r for r in out.rejects if r.level == "frame"]
    assert "f" * 32 in reject.reason and "event_2024-01-02_100000.json" in reject.reason


def test_screens_named_png_are_stored_as_jpeg_bytes_untouched() -> None:
    out = _read(FIXTURE)
    (episode,) = out.episodes
    assert {frame.format for frame in episode.frames.values()} == {"jpeg"}
    on_disk = (FIXTURE / "states" / "screen_2024-01-02_100005.png").read_bytes()
    assert any(frame.data == on_disk for frame in episode.frames.values())


def test_a_state_known_only_to_utg_js_still_gets_its_screenshot() -> None:
    rows = _rows(_read(FIXTURE))
    set_text = rows[4]
    assert set_text["action_text"] == 'type(x=0.5, y=0.2031, text="hello")'
    assert set_text["next_frame_id"] is not None  # state c... has no state file


def test_keys_intents_scrolls_and_swipes_map_to_curate_actions() -> None:
    texts = [row["action_text"] for row in _rows(_read(FIXTURE))]
    assert texts[1] == 'open_app(app="com.example.app")'
    assert texts[5] == 'scroll(x=0.5, y=0.5312, direction="down")'
    assert texts[6] == 'swipe(x=0.8333, y=0.5, x2=0.1667, y2=0.5, direction="left")'
    assert texts[8] == "back()" and texts[9] == 'key(keys=["menu"])'


def test_unknown_and_unreadable_events_are_step_rejects_naming_the_file() -> None:
    reasons = {r.file.rsplit("/", 1)[-1]: r.reason for r in _read(FIXTURE).rejects
               if r.level == "step"}
    assert "teleport" in reasons["event_2024-01-02_100050.json"]
    assert "invalid JSON" in reasons["event_2024-01-02_100055.json"]


def test_utg_js_is_parsed_without_evaluation() -> None:
    assert parse_utg(b'var utg = {"a": [1, 2]};\n') == {"a": [1, 2]}
    with pytest.raises(ValueError, match="var utg"):
        parse_utg(b'{"a": 1}')
    with pytest.raises(ValueError, match="not JSON"):
        parse_utg(b"var utg = {a: alert(1)}")


def test_a_broken_utg_js_is_a_file_reject_and_the_events_still_load(tmp_path: Path) -> None:
    copy = tmp_path / "report"
    shutil.copytree(FIXTURE, copy)
    (copy / "utg.js").write_text("var utg = {broken")
    out = _read(copy)
    assert any(r.level == "file" and "utg.js" in r.reason for r in out.rejects)
    assert len(_rows(out)) == 10


def test_ingest_is_deterministic() -> None:
    first, second = _rows(_read(FIXTURE)), _rows(_read(FIXTURE))
    assert json.dumps(first, default=str) == json.dumps(second, default=str)


def test_claims_only_droidbot_folders() -> None:
    roots = [REPO / "tests" / "fixtures", REPO / "examples"]
    if REAL_ROOT.is_dir():
        roots.append(REAL_ROOT)
    planned = [p for root in roots if root.is_dir() for p in discover([root])]
    claimed = {p.unit.path for p in planned if p.adapter == "droidbot"}
    expected = {FIXTURE} | ({REAL} if REAL.is_dir() else set())
    assert claimed == expected


# -- the real sample -----------------------------------------------------------------------


@needs_real
def test_real_sample_accounts_for_all_17_events_step_by_step() -> None:
    out = _read(REAL)
    rows = _rows(out)
    events = sorted(p.name for p in (REAL / "events").glob("event_*.json"))
    assert len(events) == 17
    assert [row["source_position"] for row in rows] == [f"events/{name}" for name in events]
    assert [r.level for r in out.rejects] == ["frame"]
    types = [row["action"]["type"] for row in rows]
    assert types == ["home", "open_app"] + ["click"] * 15


@needs_real
def test_real_sample_events_from_the_unsaved_home_state_lose_only_those_frames() -> None:
    out = _read(REAL)
    rows = _rows(out)
    missing = "c871d40def92fccd628177c86619eb53"
    assert rows[0]["frame_missing"] == rows[0]["next_frame_missing"] == FILE_MISSING
    assert rows[1]["frame_missing"] == FILE_MISSING and rows[1]["next_frame_id"] is not None
    assert all(row["frame_id"] and row["next_frame_id"] for row in rows[2:])
    (reject,) = out.rejects
    assert missing in reject.position and "event_2017-08-11_155424.json" in reject.reason


@needs_real
def test_real_sample_touches_use_view_bounds_in_device_pixels() -> None:
    (episode,) = _read(REAL).episodes
    rows = episode.step_rows()
    first_touch = rows[2]["action"]
    assert (first_touch["px"], first_touch["py"]) == (1344.0, 208.0)  # [[1248,112],[1440,304]]
    assert (first_touch["screen_width"], first_touch["screen_height"]) == (1440, 2560)
    assert first_touch["scale"] == 1.0
    assert first_touch["target"]["text"] == "Select Image"
    assert episode.screen_size() == (1440, 2560)
    assert {frame.format for frame in episode.frames.values()} == {"jpeg"}
    clipped = [row for row in rows if any("inverted" in w for w in row["warnings"])]
    assert [row["source_position"][-11:-5] for row in clipped] == ["155437", "155441"]


@needs_real
def test_real_sample_metadata_says_the_report_is_partial() -> None:
    (episode,) = _read(REAL).episodes
    assert episode.truncated
    assert episode.metadata["num_input_events"] == 71
    assert episode.metadata["app_package"] == "com.yanzhenjie.album.sample"
    assert episode.instruction is None and episode.outcome == "unknown"


@needs_real
def test_real_sample_on_path_chain_is_connected_and_ends_with_the_last_step(
        tmp_path: Path) -> None:
    """The sample wanders 1d67 -> 56e9 -> 1d67 -> 56e9: the second return to 56e9 revisits a
    state seen only in the detour already cut, so it is the step along the path (cutting
    there left the path ending in one screen and its next step starting in another)."""
    from curate.pipeline.ingest import ingest
    from curate.pipeline.label import label, load_grids
    from curate.pipeline.states import same_state
    from curate.store.core import open_store

    ingest([REAL_ROOT / "droidbot_utg"], tmp_path / "store")
    label(tmp_path / "store")
    store = open_store(tmp_path / "store")
    steps = {row["step_index"]: row for row in store.read("steps").to_pylist()}
    labels = sorted(store.read("labels").to_pylist(), key=lambda r: r["step_index"])
    path = [row["step_index"] for row in labels if row["on_path"]]
    assert path[-1] == max(steps)
    grids = load_grids(store, {f for s in steps.values()
                               for f in (s["frame_id"], s["next_frame_id"]) if f})
    links = 0
    for earlier, later in pairwise(path):
        arrived, left = steps[earlier]["next_frame_id"], steps[later]["frame_id"]
        if arrived and left:
            assert same_state(grids[arrived], grids[left]), (earlier, later)
            links += 1
    assert links >= 5
