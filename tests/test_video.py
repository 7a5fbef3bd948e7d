"""Frame picking from a video made in the test: frame i is a flat grey of level 8 * i."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from curate.errors import SourceError
from curate.sources.video import (
    AFTER_END,
    BEFORE_START,
    GRID,
    FramePicker,
    FrameRequest,
    Pick,
    PickedFrame,
    VideoStats,
    encode_jpeg,
    pick_video_frames,
)

FPS = 10
FRAMES = 30


def make_video(path: Path, frames: int = FRAMES, audio: bool = True,
               x264_params: str | None = None) -> Path:
    """A 64x48 H.264 video at 10 fps (frame i at i/10 s), optionally with an audio track
    (ultrafast: no B-frames, one IDR unless ``x264_params`` says otherwise)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        if x264_params is not None:
            stream.options = {**stream.options, "x264-params": x264_params}
        sound = out.add_stream("aac", rate=8000) if audio else None
        for index in range(frames):
            pixels = np.full((48, 64, 3), index * 8, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if sound is not None:
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32),
                                                 format="fltp", layout="mono")
            samples.sample_rate = 8000
            out.mux(sound.encode(samples))
            out.mux(sound.encode())
    return path


def level(data: bytes | None) -> int:
    """Which frame an encoded pick shows (its grey level / 8)."""
    assert data is not None
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return round(float(np.asarray(image.convert("L")).mean()) / 8)


PickDigest = tuple[float | None, str | None, str | None, bool, bool]


def digests(picked: Iterable[PickedFrame]) -> dict[int, PickDigest]:
    return {p.request: (p.time, _sha(p.data), p.missing, p.late, p.unsettled) for p in picked}


def _sha(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def plain_picks(video: Path, request_sets: list[list[FrameRequest]]
                ) -> list[dict[int, PickDigest]]:
    """The reference for pick_video_frames' shortcuts: every frame decoded, in this thread,
    by ``container.decode``, each grid from ``frame.to_ndarray`` (a fresh swscale context
    per frame), no early stop, each pick encoded on its own; one picker per request set."""

    def grid(frame: Any) -> np.ndarray[Any, Any]:
        return np.asarray(frame.to_ndarray(width=GRID, height=GRID, format="gray",
                                           interpolation="AREA"), dtype=np.int16)

    pickers: list[FramePicker[Any]] = [FramePicker(r, grid=grid) for r in request_sets]
    picks: list[list[Pick[Any]]] = [[] for _ in request_sets]
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        origin = float(stream.start_time * stream.time_base)
        for frame in container.decode(stream):
            for picker, found in zip(pickers, picks, strict=True):
                found += picker.offer(float(frame.time) - origin, frame)
    for picker, found in zip(pickers, picks, strict=True):
        found += picker.close()
    return [{p.request: (p.time, _sha(encode_jpeg(p.item)) if p.item is not None else None,
                         p.missing, p.late, p.unsettled) for p in found} for found in picks]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "screen recording.mp4")


def picks(path: Path, requests: list[FrameRequest],
          stats: VideoStats | None = None) -> dict[int, Any]:
    return {p.request: p for p in pick_video_frames(path, requests, stats=stats)}


def test_picks_last_frame_before_and_settled_frame_after(clip: Path) -> None:
    requests = [
        FrameRequest(not_after=0.55),  # frames at 0.5 and 0.6: the one at or before
        FrameRequest(not_after=1.0),  # exactly on a frame
        FrameRequest(not_after=1.2 + 0.3, not_before=1.2),  # settled: 1.5 s
        FrameRequest(not_after=1.25, not_before=1.21),  # no frame in window: first after
    ]
    got = picks(clip, requests)
    assert [level(got[i].data) for i in range(4)] == [5, 10, 15, 13]
    assert [got[i].late for i in range(4)] == [False, False, False, True]
    assert got[0].time == pytest.approx(0.5)


def test_decodes_once_and_encodes_each_frame_once(clip: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = av.open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        opened.append(str(args[0]))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    stats = VideoStats()
    requests = [FrameRequest(not_after=t / 10) for t in (25, 3, 3, 12)]  # unsorted, repeated
    got = picks(clip, requests, stats)
    assert len(opened) == 2  # the packet scan (demuxed, not decoded) and the decode
    assert [level(got[i].data) for i in range(4)] == [25, 3, 3, 12]
    assert stats.encoded == 3  # the repeated frame is encoded once
    assert stats.frames_decoded == 27  # stops after the last request is answered
    assert stats.audio_streams == 1 and (stats.width, stats.height) == (64, 48)


def test_short_video_leaves_later_requests_missing(clip: Path) -> None:
    requests = [FrameRequest(not_after=2.9), FrameRequest(not_after=2.95),
                FrameRequest(not_after=9.0), FrameRequest(not_after=9.3, not_before=9.0),
                FrameRequest(not_after=-1.0)]
    got = picks(clip, requests)
    assert level(got[0].data) == 29 and level(got[1].data) == 29  # within the tolerance
    assert got[2].missing == AFTER_END and got[3].missing == AFTER_END
    assert got[4].missing == BEFORE_START


def test_encoding_is_deterministic(clip: Path) -> None:
    requests = [FrameRequest(not_after=1.0), FrameRequest(not_after=2.0)]
    first = [p.data for p in pick_video_frames(clip, requests)]
    second = [p.data for p in pick_video_frames(clip, requests)]
    assert first == second


def test_unreadable_file_is_a_source_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(SourceError) as error:
        list(pick_video_frames(junk, [FrameRequest(not_after=1.0)]))
    assert "junk.mp4" in error.value.file


def test_truncated_video_never_crashes(clip: Path, tmp_path: Path) -> None:
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    requests = [FrameRequest(not_after=t / 10) for t in range(0, 30, 5)]
    try:
        got = picks(cut, requests)
    except SourceError:
        return  # an unopenable file is a clear error, which is fine too
    assert sorted(got) == list(range(len(requests)))
    for pick in got.values():
        assert pick.data is not None or pick.missing is not None


def test_video_without_audio_and_first_frame(tmp_path: Path) -> None:
    path = make_video(tmp_path / "v.mp4", frames=5, audio=False)
    got = picks(path, [FrameRequest(not_after=0.0), FrameRequest(not_after=0.4)])
    assert [level(got[0].data), level(got[1].data)] == [0, 4]


def test_a_settle_request_waits_out_a_transition_and_ignores_the_pointer() -> None:
    """Screens as grids: a transition (0.1-0.3 s), a settled screen from 0.4 s on with a
    pointer moving over two cells of it, and a window ending at 1.0 s. The answer is the
    settled screen's first frame, not the window's last frame or a transitional one."""
    before, after = np.zeros((32, 32), np.int16), np.full((32, 32), 200, np.int16)
    def moved_pointer(step: int) -> np.ndarray:
        grid = after.copy()
        grid[5, step % 30:step % 30 + 2] = 0
        return grid
    frames = [(0.0, before)] + [(0.1 * k, (before + after * k // 4).astype(np.int16))
                                for k in (1, 2, 3)]
    frames += [(0.1 * k, moved_pointer(k)) for k in range(4, 13)]
    picker: FramePicker[np.ndarray] = FramePicker(
        [FrameRequest(not_after=1.0, not_before=0.05, settle=True),
         FrameRequest(not_after=1.0, not_before=0.05)], grid=lambda grid: grid)
    picks = [p for time, grid in frames for p in picker.offer(time, grid)] + picker.close()
    by_request = {p.request: p for p in picks}
    assert by_request[0].time == pytest.approx(0.4) and not by_request[0].unsettled
    assert by_request[1].time == pytest.approx(1.0)  # without settle: the window's last frame


def test_a_screen_still_changing_when_the_window_closes_is_flagged_unsettled() -> None:
    frames = [(0.1 * k, np.full((32, 32), 20 * k, np.int16)) for k in range(8)]
    picker: FramePicker[np.ndarray] = FramePicker(
        [FrameRequest(not_after=0.5, not_before=0.05, settle=True)], grid=lambda grid: grid)
    (pick,) = [p for time, grid in frames for p in picker.offer(time, grid)] + picker.close()
    assert pick.time == pytest.approx(0.5) and pick.unsettled


def test_packets_no_request_can_see_are_not_decoded_and_picks_stay_the_same(
        tmp_path: Path) -> None:
    """A video with B-frames (non-reference) and an IDR every 0.5 s: the B-frames and the
    half second (2.0-2.5 s) that no request looks at are skipped; the picks equal a full
    decode's."""
    path = make_video(tmp_path / "b.mp4", audio=False,
                      x264_params="keyint=5:min-keyint=5:bframes=2:b-pyramid=0:scenecut=0")
    requests = [FrameRequest(not_after=0.55),
                FrameRequest(not_after=1.5, not_before=1.2, settle=True),
                FrameRequest(not_after=2.72, not_before=2.71)]  # no frame inside: late
    stats = VideoStats()
    got = digests(pick_video_frames(path, requests, stats=stats))
    assert got == plain_picks(path, [requests])[0]
    assert stats.packets_skipped >= 5 and stats.frames_decoded + stats.packets_skipped <= 30
    by_request = {p.request: p for p in pick_video_frames(path, requests)}
    assert [level(by_request[i].data) for i in (0, 2)] == [5, 28] and by_request[2].late
