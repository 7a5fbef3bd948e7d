"""The AndroidControl adapter: GZIP TFRecord shards, one episode per record."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from tfrecord_writer import bytes_feature, encode_example, int64_feature, write_tfrecord

from curate.pipeline.extract import extract_unit, read_unit
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    NO_SCREENSHOTS,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
)
from curate.sources.discover import discover

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "androidcontrol"
SHARD = FIXTURES / "android_control-00000-of-00002"
CUT = FIXTURES / "android_control-00001-of-00002"
NAME = "androidcontrol"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, f"androidcontrol/{path.name}"), adapters.get(NAME))


def episode(path: Path, inner: str) -> EpisodeBuilder:
    out = read(path)
    return next(e for e in out.episodes if e.source_id.endswith(f"#{inner}"))


def test_androidcontrol_one_episode_per_record_with_goal_and_ids() -> None:
    out = read(SHARD)
    assert [e.source_id.split("#")[1] for e in out.episodes] == ["101", "102", "104"]
    first = out.episodes[0]
    assert first.instruction == "Search for coffee shops in Maps"
    assert first.platform == "mobile" and first.outcome == "unknown"
    assert first.metadata["accessibility_trees"] == 5


def test_androidcontrol_actions_align_screenshot_t_to_t_plus_1() -> None:
    ep = episode(SHARD, "101")
    assert [s.action.type for s in ep.steps] == ["open_app", "click", "type", "scroll"]
    frames = [s.frame_id for s in ep.steps] + [ep.steps[-1].next_frame_id]
    assert len(set(frames)) == 5 and None not in frames  # five distinct screenshots in order
    for before, after in itertools.pairwise(ep.steps):
        assert before.next_frame_id == after.frame_id


def test_androidcontrol_keeps_the_step_level_instruction() -> None:
    ep = episode(SHARD, "101")
    assert [s.step_instruction for s in ep.steps] == [
        "Open the Maps app", "Tap the search bar", "Type coffee shops",
        "Scroll down to see more results"]
    short = episode(SHARD, "102")
    assert short.steps[-1].step_instruction is None
    assert any("no step instruction" in w for w in short.steps[-1].warnings)


def test_androidcontrol_click_pixels_normalised_by_declared_screen_size() -> None:
    click = episode(SHARD, "101").steps[1].action
    assert (click.x, click.y, click.px, click.py) == (0.5, 0.5, 540.0, 1200.0)
    assert (click.screen_width, click.screen_height) == (1080, 2400)
    assert click.coord_space == "screen_px" and click.scale == 0.05  # 54 px PNG of 1080


def test_androidcontrol_action_arguments() -> None:
    steps = episode(SHARD, "101").steps
    assert steps[0].action.app == "Maps"
    assert steps[2].action.text == "coffee shops"
    assert steps[3].action.direction == "down"
    assert json.loads(steps[3].action.raw or "") == {"action_type": "scroll",
                                                     "direction": "down"}


def test_androidcontrol_point_outside_screen_is_kept_and_warned() -> None:
    press = episode(SHARD, "102").steps[0]
    assert press.action.type == "long_press" and press.action.y == pytest.approx(1.0417)
    assert any("outside" in w for w in press.warnings)


def test_androidcontrol_unknown_action_is_a_step_reject_and_neighbours_keep_frames() -> None:
    out = read(SHARD)
    ep = next(e for e in out.episodes if e.source_id.endswith("#102"))
    assert [s.action.type for s in ep.steps] == ["long_press", "home"]
    assert ep.steps[0].next_frame_id != ep.steps[1].frame_id  # the rejected step sits between
    reject = next(r for r in out.rejects if "swipe" in r.reason)
    assert reject.level == "step" and reject.position.endswith("action 1")


def test_androidcontrol_length_mismatch_and_corrupt_screenshot() -> None:
    ep = episode(SHARD, "104")
    assert ep.metadata["count_mismatch"] == {"actions": 3, "screenshots": 3}
    assert ep.steps[0].next_frame_missing == FILE_CORRUPT
    assert ep.steps[1].frame_missing == FILE_CORRUPT
    assert ep.steps[2].next_frame_id is None and ep.steps[2].next_frame_missing == NO_SCREENSHOTS
    typed = ep.steps[1].action
    assert typed.type == "type" and typed.text == "hi" and typed.px == 27.0
    assert typed.x == 0.5  # no declared size: another screenshot's size (54x120) is used


def test_androidcontrol_bad_records_are_rejects_with_byte_offsets() -> None:
    rejects = read(SHARD).rejects
    crc = next(r for r in rejects if "CRC" in r.reason)
    assert crc.level == "episode" and crc.position == "record 2 (uncompressed byte 2860)"
    assert "resumed" in crc.reason
    assert any("appears a second time" in r.reason for r in rejects)
    assert any("not a tf.train.Example" in r.reason for r in rejects)


def test_androidcontrol_truncated_gzip_keeps_earlier_episodes_and_stops() -> None:
    out = read(CUT)
    assert [e.source_id.split("#")[1] for e in out.episodes] == ["201"]
    (reject,) = out.rejects
    assert reject.level == "episode" and "reading stopped" in reject.reason
    assert reject.position.startswith("record 1 ")


def test_androidcontrol_extracts_to_arrow_with_the_step_instruction_column() -> None:
    tables = extract_unit(SourceUnit(SHARD, "androidcontrol/" + SHARD.name), NAME)
    assert tables.episodes.num_rows == 3
    assert tables.steps.column("step_instruction").to_pylist()[:2] == [
        "Open the Maps app", "Tap the search bar"]


def test_androidcontrol_claims_only_its_shards(tmp_path: Path) -> None:
    ours = adapters.get(NAME)
    assert ours.claims(SHARD) and ours.claims(CUT)
    for path in (FIXTURES.parent / "aitw" / "general-00000-of-00002",
                 FIXTURES.parent / "gui_odyssey" / "annotations" / "0001.json", FIXTURES):
        assert not ours.claims(path)
    other = tmp_path / "other.tfrecord"
    write_tfrecord(other, [encode_example({"image/encoded": bytes_feature(b"x"),
                                           "label": int64_feature(1)})])
    assert not ours.claims(other)
    claimers = [a.name for a in adapters.all_adapters() if a.claims(SHARD)]
    assert claimers == [NAME]


def test_androidcontrol_claims_nothing_in_the_real_samples_or_other_fixtures() -> None:
    roots = [p for p in (HERE.parents[1] / "shared" / "realdata", HERE / "fixtures")
             if p.is_dir()]
    for planned in discover(roots):
        if planned.adapter == NAME:
            assert planned.unit.path.parent == FIXTURES, planned.unit.path


def test_androidcontrol_empty_or_foreign_file_is_one_clear_reject(tmp_path: Path) -> None:
    empty = tmp_path / "android_control-00009-of-00020"
    empty.write_bytes(b"")
    (reject,) = read(empty).rejects
    assert reject.level == "episode" and "holds no record" in reject.reason
    foreign = tmp_path / "notes.json"
    foreign.write_text('{"goal": "not a tfrecord"}')
    (reject,) = read(foreign).rejects
    assert "not a readable TFRecord file" in reject.reason and reject.position.startswith(
        "record 0 (byte 0)")


def test_androidcontrol_demonstration_ending_on_its_final_state_is_terminated() -> None:
    # 101 holds one screenshot more than actions: the demonstration ended, it was not cut.
    whole = episode(SHARD, "101")
    assert (whole.terminated, whole.truncated) == (True, False)
    assert whole.outcome == "unknown"  # ended is not succeeded: no success flag is recorded
    # 104 holds as many screenshots as actions: the record may be cut, so it is truncated.
    cut = episode(SHARD, "104")
    assert (cut.terminated, cut.truncated) == (False, True)
