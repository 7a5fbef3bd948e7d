"""AgentNetTool recordings: a synthetic recording made here, and the real sample."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.agentnet import (
    DEFAULT_PARAMS,
    clock_anchor,
    frame_requests,
    key_name,
)
from curate.sources.adapters.base import FILE_MISSING, NOT_IN_VIDEO, SourceUnit, UnitBuilder
from curate.sources.video import (
    GRID,
    SETTLED_MAX_CELLS,
    FrameRequest,
    VideoStats,
    changed_cells,
    pick_video_frames,
)
from tests.test_video import digests, plain_picks

SCREEN = (640, 360)
FPS = 10


def _fixture_maker() -> ModuleType:
    """The fixture generator: its event stream and video writer serve these tests too."""
    path = Path(__file__).resolve().parent / "fixtures" / "agentnet" / "make_fixture.py"
    spec = importlib.util.spec_from_file_location("agentnet_make_fixture", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _fixture_maker()


def _video(path: Path, seconds: float) -> None:
    """320x180 video (half the screen) at 10 fps; frame i is a flat grey of level 4 * i."""
    MAKER.video(path, seconds, size=(320, 180))


def _events() -> list[dict[str, Any]]:
    """Anchor 100.0: a click at 0.57 s, "Hi" typed at 1.2 s, a scroll at 2.0 s, stop chord."""
    events: list[dict[str, Any]] = MAKER.events()
    return events


def make_recording(root: Path, *, video_seconds: float | None = 3.0,
                   events: list[dict[str, Any]] | None = None) -> Path:
    folder = root / "20240101_annotator_x"
    folder.mkdir(parents=True)
    meta = {"system": "Windows", "release": "10", "screen_width": SCREEN[0],
            "screen_height": SCREEN[1], "scroll_direction": -1,
            "video_start_timestamp": 99.7,
            "obs_record_state_timings": {"OBS_WEBSOCKET_OUTPUT_STARTING": [99.9],
                                         "OBS_WEBSOCKET_OUTPUT_STARTED": [100.1]}}
    (folder / "metadata.json").write_text(json.dumps(meta))
    (folder / "task_name.json").write_text(json.dumps({"task_name": "Say hi", "description": ""}))
    rows = _events() if events is None else events
    (folder / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    element = {"time_stamp": 100.569, "a11y_tree": json.dumps({
        "Name": "OK", "ControlType": "ButtonControl", "Depth": 0, "Children": [],
        "BoundingRectangle": {"left": 300, "top": 170, "right": 340, "bottom": 190}})}
    (folder / "element.jsonl").write_text(json.dumps(element) + "\n")
    if video_seconds is not None:
        _video(folder / "2024-01-01 10-00-00.mp4", video_seconds)
    return folder


def read(folder: Path) -> UnitBuilder:
    adapter = adapters.get("agentnet")
    assert adapter.claims(folder)
    return read_unit(SourceUnit(folder, folder.name), adapter)


def grey(out: UnitBuilder, frame_id: str | None) -> int:
    """Which synthetic frame a stored frame shows."""
    assert frame_id is not None
    frame = out.episodes[0].frames[frame_id]
    with Image.open(io.BytesIO(frame.data)) as image:
        return round(float(np.asarray(image.convert("L")).mean()) / 4)


def test_synthetic_recording_steps_frames_coordinates_target(tmp_path: Path) -> None:
    out = read(make_recording(tmp_path))
    [episode] = out.episodes
    assert episode.instruction == "Say hi" and episode.clock == "relative"
    assert [s.action.type for s in episode.steps] == ["click", "type", "scroll"]
    click, typed, scroll = episode.steps
    assert (click.action.x, click.action.y, click.action.px, click.action.py) == (
        0.5, 0.5, 320, 180)
    assert click.action.scale == 0.5 and click.action.screen_width == 640
    assert click.action.coord_space == "screen_px"
    assert click.timestamp == pytest.approx(0.57) and click.timestamp_end == pytest.approx(0.62)
    # s_t: last frame at or before 0.57 - 0.05; s_t+1: the first frame of the last settled
    # stretch before the typing starts at 1.25 s (window capped 0.05 s before it). Frames
    # brighten 4 grey levels each: 11 and 12 differ by less than SETTLED_CELL_LEVELS, 10 and
    # 12 by more, so the stretch starts at 11.
    assert grey(out, click.frame_id) == 5 and grey(out, click.next_frame_id) == 11
    assert typed.action.text == "Hi"
    assert (scroll.action.direction, scroll.action.amount) == ("down", 2.0)
    target = click.action.target
    assert target is not None and (target.text, target.role) == ("OK", "ButtonControl")
    assert (target.x0, target.y0, target.x1, target.y1) == (0.4688, 0.4722, 0.5312, 0.5278)
    assert episode.metadata["events_trimmed"] == 4  # Ctrl+Alt+T
    assert click.source_position == "events.jsonl lines 1-4"
    assert not out.rejects


def test_recording_without_video_keeps_actions(tmp_path: Path) -> None:
    out = read(make_recording(tmp_path, video_seconds=None))
    [episode] = out.episodes
    assert [s.action.type for s in episode.steps] == ["click", "type", "scroll"]
    assert all(s.frame_id is None and s.frame_missing == FILE_MISSING for s in episode.steps)
    assert [r.level for r in out.rejects] == ["frame"]
    assert "no screen video" in out.rejects[0].reason


def test_video_shorter_than_events_is_reported(tmp_path: Path) -> None:
    out = read(make_recording(tmp_path, video_seconds=1.0))
    steps = out.episodes[0].steps
    assert steps[0].frame_id is not None
    assert steps[2].frame_id is None and steps[2].frame_missing == NOT_IN_VIDEO
    assert any("outside the recorded video" in r.reason for r in out.rejects)


def test_screenshot_folder_instead_of_video(tmp_path: Path) -> None:
    folder = make_recording(tmp_path, video_seconds=None)
    shots = folder / "screenshots"
    shots.mkdir()
    for index, stamp in enumerate((100.2, 100.5, 101.0, 101.9, 102.5)):
        Image.new("RGB", (640, 360), (index * 40,) * 3).save(shots / f"shot_{stamp}.png")
    out = read(folder)
    [episode] = out.episodes
    frames = episode.frames

    def shade(frame_id: str | None) -> int:
        assert frame_id is not None
        with Image.open(io.BytesIO(frames[frame_id].data)) as image:
            return int(image.getpixel((0, 0))[0]) // 40  # type: ignore[index]

    click = episode.steps[0]
    assert shade(click.frame_id) == 1 and shade(click.next_frame_id) == 2
    assert frames[click.frame_id or ""].format == "png"  # bytes as recorded
    assert click.action.scale == 1.0
    assert not out.rejects


def test_out_of_order_and_unbalanced_events_are_reported(tmp_path: Path) -> None:
    rows = _events()
    rows[2], rows[3] = rows[3], rows[2]  # release logged before its press
    rows.insert(5, {"time_stamp": 101.22, "action": "release", "name": "q"})
    rows.append({"time_stamp": 101.5, "action": "bogus"})
    out = read(make_recording(tmp_path, events=rows))
    [episode] = out.episodes
    assert [s.action.type for s in episode.steps] == ["click", "type", "scroll"]
    warnings = " ".join(episode.metadata["warnings"])
    assert "out of time order" in warnings
    reasons = [r.reason for r in out.rejects]
    assert any("released without a press" in r for r in reasons)
    assert any("unknown action 'bogus'" in r for r in reasons)


def test_key_names_from_pynput_forms() -> None:
    assert key_name({"name": "\x01"}) == "a"  # ctrl+a on Windows
    assert key_name({"pynput_key": "Key.enter"}) == "enter"
    assert key_name({"pynput_key": "'x'"}) == "x"
    assert key_name({"pynput_key": "<84>"}) == "t"


def test_clock_anchor_sources() -> None:
    obs = {"obs_record_state_timings": {"OBS_WEBSOCKET_OUTPUT_STARTING": [10.0],
                                        "OBS_WEBSOCKET_OUTPUT_STARTED": [10.5]},
           "video_start_timestamp": 9.9}
    assert clock_anchor(obs, 0.0, DEFAULT_PARAMS)[0] == pytest.approx(10.25)
    assert clock_anchor({"video_start_timestamp": 9.9}, 0.0, DEFAULT_PARAMS)[0] == (
        pytest.approx(10.18))
    assert clock_anchor({}, 5.0, DEFAULT_PARAMS)[0] == 5.0


# -- the real sample ----------------------------------------------------------------------------

EXPECTED_TYPES = (["click", "right_click", "click", "drag", "click", "scroll"] + ["click"] * 13
                  + ["scroll", "scroll", "click", "click", "click", "scroll", "scroll"])
EXPECTED_CLICKS = [(1328, 745), (1305, 393), (1268, 406), (621, 206), (360, 256), None,
                   (562, 277), (544, 316), (732, 563), (640, 176), (1039, 556), (846, 782),
                   (827, 843), (835, 872), (435, 790), (436, 708), (1056, 566), (773, 785),
                   (773, 785)]


SAMPLE = Path(__file__).resolve().parents[2] / "shared/realdata/opencua_agentnet_raw"


def sample_folder() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip(f"real sample {SAMPLE} is not available (../shared/realdata is absent)")
    return next(SAMPLE.rglob("events.jsonl")).parent


@pytest.fixture(scope="module")
def sample() -> UnitBuilder:
    return read(sample_folder())


@pytest.mark.realdata
@pytest.mark.slow
def test_real_sample_steps(sample: UnitBuilder) -> None:
    [episode] = sample.episodes
    steps = episode.steps
    assert [s.action.type for s in steps] == EXPECTED_TYPES
    points = [(s.action.px, s.action.py) if s.action.type != "scroll" else None
              for s in steps[:19]]
    assert points == EXPECTED_CLICKS
    assert steps[3].action.px2 == 561 and steps[3].action.py2 == 213
    assert [(s.action.direction, s.action.amount) for s in steps if s.action.type == "scroll"] \
        == [("down", 3.0), ("down", 2.0), ("down", 4.0), ("down", 6.0), ("up", 4.0)]
    assert not any(s.action.type == "key" for s in steps)  # Ctrl+Alt+T trimmed
    assert episode.metadata["events_trimmed"] == 4
    first = steps[0].action
    assert first.scale == pytest.approx(1276 / 1366, abs=1e-6)
    assert (first.screen_width, first.screen_height) == (1366, 768)
    assert first.x == pytest.approx(1328 / 1366, abs=1e-4)
    assert all(s.frame_id is not None and s.next_frame_id is not None for s in steps)
    assert {f.width for f in episode.frames.values()} == {1276}
    assert episode.instruction is not None and episode.instruction.startswith("Open the system")


@pytest.mark.realdata
@pytest.mark.slow
def test_real_sample_targets(sample: UnitBuilder) -> None:
    steps = sample.episodes[0].steps
    names = [s.action.target.text if s.action.target else None for s in steps[:8]]
    assert names == ["Action Centre, No new notifications (Off)", "Night light",
                     "Go to Settings", "Change brightness for the built-in display",
                     "Night light", None, "100% (Recommended)", "125%"]
    # After the display scaling changed, element.jsonl boxes are in another space: dropped
    # (the recorder names "Projecting to this PC" for the click on "Power & sleep").
    assert steps[21].action.target is None
    assert any("1121-px-wide" in w for w in steps[21].warnings)


def _sample_requests(sample: UnitBuilder) -> list[FrameRequest]:
    """The frame requests the adapter makes for the sample's steps."""
    from curate.sources.reduce import ReducedAction

    episode = sample.episodes[0]
    anchor = episode.metadata["clock_anchor"]
    actions = tuple(ReducedAction(s.action.type, anchor + (s.timestamp or 0),
                                  anchor + (s.timestamp_end or 0), ()) for s in episode.steps)
    return frame_requests(actions, anchor, DEFAULT_PARAMS)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_sample_frames_never_after_or_before_the_action(sample: UnitBuilder) -> None:
    episode = sample.episodes[0]
    requests = _sample_requests(sample)
    video = next(sample_folder().glob("*.mp4"))
    for pick in pick_video_frames(video, requests):
        step = episode.steps[pick.request // 2]
        assert pick.time is not None
        if pick.request % 2 == 0:
            assert pick.time <= (step.timestamp or 0)
        else:
            assert pick.time >= (step.timestamp_end or 0)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_sample_picks_and_bytes_equal_a_plain_decode(sample: UnitBuilder) -> None:
    """pick_video_frames (one reused swscale context, decoding ahead in a thread, packets
    no request can see left undecoded) picks the same frames with the same JPEG bytes and
    flags as the plain decode of every frame: for the adapter's requests (985 of the 3,678
    packets skipped) and for settle windows that overlap three deep, a window past the end,
    one before the start and one within the end tolerance."""
    video = next(sample_folder().glob("*.mp4"))
    adapters_requests = _sample_requests(sample)
    crowded = [FrameRequest(not_after=t + 5.0, not_before=t, settle=True)
               for t in (0.1 * k for k in range(0, 1220, 17))]
    crowded += [FrameRequest(not_after=200.0, not_before=190.0, settle=True),
                FrameRequest(not_after=-1.0), FrameRequest(not_after=122.4)]
    expected = plain_picks(video, [adapters_requests, crowded])
    stats = VideoStats()
    assert digests(pick_video_frames(video, adapters_requests, stats=stats)) == expected[0]
    assert stats.packets_skipped == 985 and stats.frames_decoded == 3678 - 985
    got = digests(pick_video_frames(video, crowded))
    assert got == expected[1]
    assert sum(p[4] for p in got.values()) > 0  # some windows closed mid-change


def _bytes_grid(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("L").resize((GRID, GRID), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.int16)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_sample_next_state_is_the_settled_screen_not_a_transition(
        sample: UnitBuilder) -> None:
    """Steps 12 and 15 change the display resolution: 1.0 s after the click Windows is
    still redrawing (hundreds of the 1,024 grid cells move between then and when the
    "Keep these display settings?" dialog has settled). s_t+1 is the settled screen."""
    episode = sample.episodes[0]
    steps = episode.steps
    video = next(sample_folder().glob("*.mp4"))
    requests = []
    for index in (12, 15):
        end = steps[index].timestamp_end or 0.0
        limit = (steps[index + 1].timestamp or 0.0) - DEFAULT_PARAMS.state_guard
        requests += [FrameRequest(not_after=end + 1.0),  # the old fixed settle time
                     FrameRequest(not_after=min(end + DEFAULT_PARAMS.settle_window, limit))]
    picked = {p.request: p.data for p in pick_video_frames(video, requests)}
    for position, index in enumerate((12, 15)):
        one_second, settled = (_bytes_grid(picked[2 * position + k] or b"") for k in (0, 1))
        stored = _bytes_grid(episode.frames[steps[index].next_frame_id or ""].data)
        assert changed_cells(one_second, settled) > 100, index  # mid-transition at 1.0 s
        assert changed_cells(stored, settled) <= SETTLED_MAX_CELLS, index
        assert not any("still changing" in w for w in steps[index].warnings)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_sample_without_video(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    shutil.copytree(sample_folder(), folder, ignore=shutil.ignore_patterns("*.mp4"))
    out = read(folder)
    steps = out.episodes[0].steps
    assert [s.action.type for s in steps] == EXPECTED_TYPES
    assert all(s.frame_missing == FILE_MISSING for s in steps)
    assert any("no screen video" in r.reason for r in out.rejects)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_sample_with_screenshot_folder(tmp_path: Path) -> None:
    from curate.sources.video import FrameRequest

    source = sample_folder()
    folder = tmp_path / "rec"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.mp4"))
    (folder / "screenshots").mkdir()
    anchor = clock_anchor(json.loads((source / "metadata.json").read_text()), 0.0,
                          DEFAULT_PARAMS)[0]
    times = [float(t) for t in range(5, 121, 4)]
    video = next(source.glob("*.mp4"))
    for pick in pick_video_frames(video, [FrameRequest(not_after=t) for t in times]):
        assert pick.data is not None and pick.time is not None
        (folder / "screenshots" / f"{anchor + pick.time:.4f}.jpg").write_bytes(pick.data)
    out = read(folder)
    episode = out.episodes[0]
    assert [s.action.type for s in episode.steps] == EXPECTED_TYPES
    shot_time = {path.read_bytes(): float(path.stem) - anchor
                 for path in (folder / "screenshots").iterdir()}
    by_id = {frame_id: shot_time[frame.data] for frame_id, frame in episode.frames.items()}
    for step in episode.steps:
        assert step.frame_id is not None
        assert by_id[step.frame_id] <= (step.timestamp or 0)
        assert step.action.scale == pytest.approx(1276 / 1366, abs=1e-6)


def test_committed_fixture_reads_and_keeps_targets_in_matching_a11y_space() -> None:
    folder = Path(__file__).resolve().parent / "fixtures" / "agentnet" / "rec_small"
    out = read(folder)
    [episode] = out.episodes
    assert [s.action.type for s in episode.steps] == ["click", "type", "scroll"]
    assert episode.steps[0].action.target is not None  # a11y width 648 - 8 = 640 = screen
    assert episode.steps[0].action.scale == 0.25
    assert episode.metadata["top_windows"] == ["App"]
    assert not out.rejects
