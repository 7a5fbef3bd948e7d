"""The Android-in-the-Wild adapter: one TFRecord record per step, grouped into episodes."""

from __future__ import annotations

import gzip
import io
import itertools
from pathlib import Path

import pytest
from PIL import Image
from tfrecord_writer import (
    Feature,
    bytes_feature,
    encode_example,
    float_feature,
    int64_feature,
    write_tfrecord,
)

from curate.pipeline.extract import extract_unit, read_unit
from curate.sources import adapters
from curate.sources.adapters.aitw import convert_action, encode_png, image_bytes, is_tap
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FINAL_STATE_NOT_RECORDED,
    RECORD_MISSING,
    RECORD_UNREADABLE,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
)
from curate.sources.discover import discover
from curate.sources.tfrecord import decode_example

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "aitw"
GENERAL = FIXTURES / "general-00000-of-00002"
PLAIN = FIXTURES / "plain-00001-of-00002"
NAME = "aitw"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, f"aitw/{path.name}"), adapters.get(NAME))


def episode(path: Path, inner: str) -> EpisodeBuilder:
    return next(e for e in read(path).episodes if e.source_id.endswith(f"#{inner}"))


def dual_point(touch: tuple[float, float], lift: tuple[float, float]) -> dict[str, Feature]:
    return {"results/action_type": int64_feature(4), "results/yx_touch": float_feature(*touch),
            "results/yx_lift": float_feature(*lift)}


def test_aitw_groups_consecutive_records_into_episodes() -> None:
    out = read(GENERAL)
    assert [e.source_id.split("#")[1] for e in out.episodes] == ["ep-a", "ep-b", "ep-c"]
    a = out.episodes[0]
    assert a.instruction == "Set an alarm for 7 am" and a.platform == "mobile"
    assert a.metadata["episode_length"] == 5 and a.metadata["android_api_level"] == 30


def test_aitw_points_are_y_first() -> None:
    tap = episode(GENERAL, "ep-a").steps[0].action
    assert (tap.type, tap.x, tap.y) == ("click", 0.25, 0.5)  # yx_touch = [0.5, 0.25]
    assert tap.coord_space == "norm_1" and (tap.px, tap.py) == (0.25, 0.5)


def test_aitw_tap_vs_swipe_at_0_04() -> None:
    assert is_tap((0.5, 0.5), (0.5, 0.5))
    assert is_tap((0.5, 0.5), (0.5, 0.539))
    assert not is_tap((0.5, 0.5), (0.5, 0.541))
    assert is_tap((0.5, 0.5), (0.523, 0.532))  # Euclidean: 0.0394 although dy > 0.03
    assert not is_tap((0.5, 0.5), (0.525, 0.533))  # 0.0414
    steps = episode(GENERAL, "ep-b").steps
    assert steps[0].action.type == "click"  # a 0.039 gesture
    swipe = steps[1].action
    assert swipe.type == "swipe" and swipe.direction == "right"  # 0.041 to the right
    assert (swipe.x, swipe.x2) == (0.3, 0.341)


def test_aitw_swipe_direction_from_primary_axis() -> None:
    swipe = episode(GENERAL, "ep-a").steps[1].action
    assert swipe.type == "swipe" and swipe.direction == "up"  # y 0.8 -> 0.2, x drifts 0.02
    assert (swipe.y, swipe.y2) == (0.8, 0.2)
    left = convert_action(decode_example(encode_example(dual_point((0.5, 0.9), (0.45, 0.1)))),
                          None)[0]
    assert left.direction == "left"


def test_aitw_tap_in_annotated_box_gets_the_smallest_target() -> None:
    target = episode(GENERAL, "ep-a").steps[0].action.target
    assert target is not None
    assert (target.text, target.role) == ("Clock", "ICON_CLOCK")
    assert (target.x0, target.y0, target.x1, target.y1) == (0.2, 0.45, 0.3, 0.55)
    assert episode(PLAIN, "ep-d").steps[0].action.target is None  # no annotations


def test_aitw_action_type_enum() -> None:
    types = [s.action.type for s in episode(GENERAL, "ep-a").steps]
    assert types == ["click", "swipe", "type", "key", "done"]
    steps = episode(GENERAL, "ep-a").steps
    assert steps[2].action.text == "7 am" and steps[3].action.keys == ("enter",)
    assert [s.action.type for s in episode(GENERAL, "ep-b").steps][-1] == "back"
    assert [s.action.type for s in episode(GENERAL, "ep-c").steps] == ["home", "fail"]
    for code, kind in ((5, "back"), (6, "home"), (10, "done"), (11, "fail")):
        example = decode_example(encode_example({"results/action_type": int64_feature(code)}))
        assert convert_action(example, None)[0].type == kind


def test_aitw_unknown_action_type_is_a_step_reject_naming_the_enum() -> None:
    reject = next(r for r in read(GENERAL).rejects if "action_type 9" in r.reason)
    assert reject.level == "step" and "4 DUAL_POINT" in reject.reason
    assert reject.position.startswith("record 10 ")


def test_aitw_records_are_ordered_by_step_id_and_next_state_is_next_record() -> None:
    steps = episode(GENERAL, "ep-a").steps
    assert [s.source_position.split("step_id ")[1] for s in steps] == ["0", "1", "2", "3", "4"]
    for before, after in itertools.pairwise(steps):
        assert before.next_frame_id == after.frame_id is not None
    assert steps[-1].next_frame_missing == FINAL_STATE_NOT_RECORDED


def test_aitw_corrupt_record_leaves_a_hole_marked_unreadable() -> None:
    out = read(GENERAL)
    crc = next(r for r in out.rejects if "CRC" in r.reason)
    assert crc.position == "record 7 (uncompressed byte 24788)" and "resumed" in crc.reason
    b = next(e for e in out.episodes if e.source_id.endswith("#ep-b"))
    assert b.steps[1].next_frame_id is None
    assert b.steps[1].next_frame_missing == RECORD_UNREADABLE
    assert b.truncated and not b.terminated and b.outcome == "unknown"
    assert b.metadata["records_found"] == 3


def test_aitw_step_gap_without_error_is_record_missing(tmp_path: Path) -> None:
    path = tmp_path / "gap.tfrecord"
    write_tfrecord(path, [encode_example(_step("e", 0, 6)), encode_example(_step("e", 2, 10))])
    steps = read(path).episodes[0].steps
    assert steps[0].next_frame_missing == RECORD_MISSING


def test_aitw_outcome_from_status_actions() -> None:
    out = read(GENERAL)
    a, _, c = out.episodes
    assert (a.outcome, a.terminated, a.truncated) == ("success", True, False)
    assert (c.outcome, c.terminated) == ("fail", True)


def test_aitw_non_consecutive_episode_and_repeated_step_are_rejected() -> None:
    rejects = read(GENERAL).rejects
    assert any("already ended" in r.reason and r.position.startswith("record 13 ")
               for r in rejects)
    assert any("step_id 2 of episode 'ep-c' repeats record 11" in r.reason for r in rejects)


def test_aitw_raw_pixel_arrays_become_deterministic_png() -> None:
    ep = episode(GENERAL, "ep-a")
    frame = ep.frames[ep.steps[0].frame_id or ""]
    assert frame.format == "png" and (frame.width, frame.height) == (24, 48)
    assert "raw pixel arrays" in ep.metadata["frames_encoded"]
    pixels = bytes(range(256)) * 9  # 48 x 16 x 3
    assert encode_png(pixels, 16, 48, 3) == encode_png(pixels, 16, 48, 3)
    with Image.open(io.BytesIO(encode_png(pixels, 16, 48, 3))) as image:
        assert image.tobytes() == pixels


def test_aitw_encoded_images_pass_through_untouched() -> None:
    ep = episode(GENERAL, "ep-a")
    typed = ep.steps[2]  # its record carries an encoded PNG
    data = ep.frames[typed.frame_id or ""].data
    assert data.startswith(b"\x89PNG") and data in gzip.decompress(GENERAL.read_bytes())
    png = b"\x89PNG\r\n\x1a\n-not-decoded-here"
    example = decode_example(encode_example({"image/encoded": bytes_feature(png)}))
    assert image_bytes(example) == (png, False)


def test_aitw_bad_image_bytes_are_a_frame_reject() -> None:
    out = read(GENERAL)
    reject = next(r for r in out.rejects if r.level == "frame")
    assert "neither an encoded image nor 48x24x3" in reject.reason
    c = next(e for e in out.episodes if e.source_id.endswith("#ep-c"))
    assert c.steps[0].frame_missing == FILE_CORRUPT


def test_aitw_plain_file_with_unpacked_lists_and_truncated_tail() -> None:
    out = read(PLAIN)
    (d,) = out.episodes
    assert d.steps[0].action.x == pytest.approx(0.1) and d.steps[0].action.y == pytest.approx(0.9)
    assert d.steps[-1].next_frame_missing == FINAL_STATE_NOT_RECORDED  # after a status action
    (reject,) = out.rejects
    assert "file ends inside a record" in reject.reason
    assert reject.position == "record 2 (byte 7994)"


def test_aitw_extracts_to_arrow() -> None:
    tables = extract_unit(SourceUnit(GENERAL, "aitw/" + GENERAL.name), NAME)
    assert tables.episodes.num_rows == 3 and tables.steps.num_rows == 10
    assert tables.rejects.num_rows == 5


def test_aitw_claims_only_its_files() -> None:
    claimers = {path.name: [a.name for a in adapters.all_adapters() if a.claims(path)]
                for path in (GENERAL, PLAIN)}
    assert claimers == {GENERAL.name: [NAME], PLAIN.name: [NAME]}
    roots = [p for p in (HERE.parents[1] / "shared" / "realdata", HERE / "fixtures")
             if p.is_dir()]
    for planned in discover(roots):
        if planned.adapter == NAME:
            assert planned.unit.path.parent == FIXTURES, planned.unit.path


def _step(episode_id: str, step_id: int, action_type: int) -> dict[str, Feature]:
    return {"episode_id": bytes_feature(episode_id), "step_id": int64_feature(step_id),
            "image/encoded": bytes_feature(bytes(12)), "image/height": int64_feature(2),
            "image/width": int64_feature(2), "image/channels": int64_feature(3),
            "results/action_type": int64_feature(action_type)}
