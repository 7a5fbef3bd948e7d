"""Pick the state frames of many actions from a screen video in ONE sequential decode.

Each action asks for a frame through a :class:`FrameRequest` on the video's clock:

* s_t: ``FrameRequest(not_after=start)`` -> the last frame at or before the action's start
  (never a frame from after it);
* s_t+1: ``FrameRequest(not_after=min(end + window, next_start), not_before=end,
  settle=True)`` -> the first frame of the screen's last settled stretch in that window: the
  earliest frame from which every later frame of the window stays within
  ``SETTLED_MAX_CELLS`` changed cells of it (a 32x32 grey grid, a cell changed when it moved
  by more than ``SETTLED_CELL_LEVELS``), so a transition or a slow app is waited out and a
  moving pointer is not. Flagged ``unsettled`` when the screen still changed on the
  window's last frame. No frame in the window: the first frame at or after the end
  (flagged ``late`` when that is past ``not_after``). Without ``settle`` (or without a way
  to compare frames) the window's last frame.

:class:`FramePicker` resolves the requests while frames stream past in time order, holding
only the previous frame, so memory does not grow with the video's length and nothing is
ever seeked. The same picker serves screenshot folders (items are file paths there). For
a video, a demux pass first finds the packets no request can see that nothing else depends
on (non-reference pictures, whole IDR groups: :mod:`curate.sources.video_packets`); they are
not decoded. The decode runs in a thread of its own, a few frames ahead of the picker.

Frames decoded from a video have no recorded encoding, so each picked frame is encoded once,
as JPEG quality 90 (see :func:`encode_jpeg` for why), deterministically: the same decoded
pixels and the same Pillow give the same bytes.
"""

from __future__ import annotations

import heapq
import io
import itertools
import math
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from queue import Queue
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image

from curate.errors import SourceError
from curate.extras import require
from curate.sources.video_packets import decode_plan

T = TypeVar("T")

# Why a request got no frame (the adapter maps these onto steps.frame_missing).
BEFORE_START = "before_video_start"
AFTER_END = "after_video_end"
DECODE_FAILED = "file_corrupt"

JPEG_QUALITY = 90
# Settling: frames are compared on a GRID x GRID grey grid. A cell has changed when it moved
# by more than SETTLED_CELL_LEVELS grey levels (codec noise and a blinking caret stay below);
# the screen has settled while at most SETTLED_MAX_CELLS of the 1,024 cells differ from the
# stretch's first frame (the pointer covers 2-4 cells of a 1276x718 screen, old place and new).
GRID = 32
SETTLED_CELL_LEVELS = 6
SETTLED_MAX_CELLS = 8
# A request this far past the last frame still takes it (one or two frame periods of
# slack for a recording that stops right after the action).
DEFAULT_END_TOLERANCE = 0.1
# Decoded frames waiting for the reader (each ~1.4 MB at 1276x718): enough to ride out the
# reader's pauses (a grid, an encoding to hand over), small enough to keep memory flat.
DECODE_AHEAD = 8
_END_OF_FRAMES = object()


@dataclass(frozen=True, slots=True)
class FrameRequest:
    """Which frame an action needs, in seconds on the video's clock (see the module doc)."""

    not_after: float
    not_before: float | None = None
    settle: bool = False  # the first frame of the last settled stretch, not the last frame


@dataclass(frozen=True, slots=True)
class Pick(Generic[T]):
    """The answer to one request: the frame (item) and its time, or why there is none."""

    request: int
    time: float | None
    item: T | None
    missing: str | None = None
    late: bool = False  # taken after not_after: nothing in the window
    unsettled: bool = False  # a settle request whose screen changed on the window's last frame


@dataclass(slots=True)
class _Stretch(Generic[T]):
    """The first frame of a settle request's current stretch of unchanged screen."""

    time: float
    item: T
    grid: Array
    last_time: float  # the newest frame seen in the window
    changes: int = 0  # how often a frame started a new stretch


Array = np.ndarray[Any, Any]


def changed_cells(a: Array, b: Array) -> int:
    """Cells of two grey grids that differ by more than SETTLED_CELL_LEVELS."""
    return int(np.count_nonzero(np.abs(a - b) > SETTLED_CELL_LEVELS))


def image_grid(path: Path) -> Array:
    """The grey grid of an image file (a screenshot folder's item); an unreadable one is
    unlike every other (it is reported where it is loaded)."""
    try:
        with Image.open(path) as image:
            image.draft("L", (GRID * 4, GRID * 4))
            small = image.convert("L").resize((GRID, GRID), Image.Resampling.BOX)
            return np.asarray(small, dtype=np.int16)
    except (OSError, ValueError, Image.DecompressionBombError):
        return np.full((GRID, GRID), -1024, dtype=np.int16)


def video_frame_grids() -> Callable[[Any], Array]:
    """The grid function of one decode: a decoded frame's grey grid, scaled by swscale
    (area-averaged) through ONE context reused for every frame.

    ``frame.to_ndarray(width=...)`` builds a new swscale context (filter tables, a thread
    pool) for each frame; on the AgentNet sample that was 1.05 ms CPU of a grid, against
    0.24 ms with the context reused, and the pixels are the same (the context only caches
    what the same parameters compute). One thread: a 32x32 output has nothing to split.
    """
    reformatter = _av().video.reformatter.VideoReformatter()

    def grid(frame: Any) -> Array:
        small = reformatter.reformat(frame, width=GRID, height=GRID, format="gray",
                                     interpolation="AREA", threads=1)
        return np.asarray(small.to_ndarray(), dtype=np.int16)

    return grid


class FramePicker(Generic[T]):
    """Resolve requests against (time, item) pairs offered in time order.

    A request is answered as soon as the first frame after its ``not_after`` arrives (the
    previous frame is then the last one at or before it), or, when that previous frame is
    earlier than ``not_before``, as soon as a frame at or after ``not_before`` arrives.
    """

    def __init__(self, requests: Sequence[FrameRequest], *,
                 end_tolerance: float = DEFAULT_END_TOLERANCE,
                 grid: Callable[[T], Array] | None = None) -> None:
        self.requests = list(requests)
        self.end_tolerance = end_tolerance
        order = sorted(range(len(self.requests)), key=lambda i: self.requests[i].not_after)
        self._pending: deque[int] = deque(order)
        self._waiting: list[tuple[float, int]] = []  # (not_before, request) heap
        self._prev: tuple[float, T] | None = None
        # Settle requests: the grid of each frame compares it with the stretch's first one.
        self._grid = grid
        self._to_open: list[tuple[float, int]] = []  # (window start, request) heap
        self._stretches: dict[int, _Stretch[T] | None] = {}  # open windows (None: no frame yet)
        if grid is not None:
            self._to_open = [(r.not_before or -math.inf, i) for i, r in enumerate(self.requests)
                             if r.settle]
            heapq.heapify(self._to_open)

    @property
    def done(self) -> bool:
        return not self._pending and not self._waiting

    def offer(self, time: float, item: T) -> list[Pick[T]]:
        """Feed the next frame; returns the requests it (or the frame before it) answers."""
        picks: list[Pick[T]] = []
        while self._waiting and self._waiting[0][0] <= time:
            _, index = heapq.heappop(self._waiting)
            picks.append(Pick(index, time, item, late=True))
        while self._pending and self.requests[self._pending[0]].not_after < time:
            index = self._pending.popleft()
            not_before = self.requests[index].not_before
            prev = self._prev
            stretch = self._stretches.pop(index, None)
            if stretch is not None:
                picks.append(_settled_pick(index, stretch))
            elif prev is not None and (not_before is None or prev[0] >= not_before):
                picks.append(Pick(index, prev[0], prev[1]))
            elif not_before is None:
                picks.append(Pick(index, None, None, missing=BEFORE_START))
            elif time >= not_before:
                picks.append(Pick(index, time, item, late=True))
            else:
                heapq.heappush(self._waiting, (not_before, index))
        self._watch(time, item)
        self._prev = (time, item)
        return picks

    def _watch(self, time: float, item: T) -> None:
        """Follow the frame in every open settle window (windows open at their start)."""
        if self._grid is None:
            return
        while self._to_open and self._to_open[0][0] <= time:
            _, index = heapq.heappop(self._to_open)
            if self.requests[index].not_after >= time:
                self._stretches[index] = None
        if not self._stretches:
            return
        grid = self._grid(item)
        for index, stretch in self._stretches.items():
            if stretch is None or changed_cells(grid, stretch.grid) > SETTLED_MAX_CELLS:
                changes = 0 if stretch is None else stretch.changes + 1
                self._stretches[index] = _Stretch(time, item, grid, time, changes)
            else:
                stretch.last_time = time

    def close(self) -> list[Pick[T]]:
        """No more frames: answer what is left (the last frame, or missing past the end)."""
        picks: list[Pick[T]] = []
        prev = self._prev
        for index in self._pending:
            request = self.requests[index]
            stretch = self._stretches.pop(index, None)
            if stretch is not None:
                picks.append(_settled_pick(index, stretch))
            elif prev is None:
                picks.append(Pick(index, None, None, missing=AFTER_END))
            elif request.not_before is not None:
                fits = prev[0] >= request.not_before
                picks.append(Pick(index, prev[0], prev[1]) if fits
                             else Pick(index, None, None, missing=AFTER_END))
            elif request.not_after - prev[0] <= self.end_tolerance:
                picks.append(Pick(index, prev[0], prev[1]))
            else:
                picks.append(Pick(index, None, None, missing=AFTER_END))
        picks.extend(Pick(index, None, None, missing=AFTER_END) for _, index in self._waiting)
        self._pending.clear()
        self._waiting.clear()
        return picks


def _settled_pick(index: int, stretch: _Stretch[T]) -> Pick[T]:
    """A settle request's answer: its last stretch's first frame; unsettled when the screen
    changed on the window's last frame (the stretch is that one frame)."""
    unsettled = stretch.changes > 0 and stretch.last_time == stretch.time
    return Pick(index, stretch.time, stretch.item, unsettled=unsettled)


# -- video ------------------------------------------------------------------------------------


@dataclass(slots=True)
class VideoStats:
    """What one decode saw; filled in while :func:`pick_video_frames` runs."""

    width: int = 0
    height: int = 0
    fps: float | None = None
    duration: float | None = None  # the container's, seconds
    frames_decoded: int = 0
    packets_skipped: int = 0  # frames no request could see, left undecoded
    last_time: float | None = None
    bad_packets: int = 0
    first_error: str | None = None
    encoded: int = 0
    audio_streams: int = 0
    stopped_early: bool = False  # every request was answered before the end
    truncated: bool = False  # the demuxer stopped on an error before the end


@dataclass(frozen=True, slots=True)
class PickedFrame:
    """A picked video frame, encoded (JPEG), or the reason there is none."""

    request: int
    time: float | None
    data: bytes | None
    missing: str | None = None
    late: bool = False
    unsettled: bool = False


def encode_jpeg(frame: Any) -> bytes:
    """Encode a decoded video frame as JPEG quality 90, baseline, 4:2:0.

    Measured on the AgentNet sample (1276x718 H.264 screen video, 13 frames): PNG costs
    56 ms and 313 KB a frame (24 ms / 328 KB at compression 1) and stores H.264's noise
    losslessly; JPEG q90 costs 2.3 ms and 106 KB at 44.5 dB PSNR against the decoded frame
    (min 35.8 dB), text stays legible. The video is already 4:2:0, so JPEG's chroma
    subsampling loses nothing more. No timestamps or optional chunks are written, so the
    bytes depend on the pixels and the Pillow/libjpeg version only.
    """
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    # The RGB rows straight from the plane (frame.to_image copies them twice first).
    image = (Image.frombuffer("RGB", (plane.width, plane.height), plane, "raw", "RGB",
                              plane.line_size, 1)
             if plane.line_size > 0 else rgb.to_image())
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:0")
    return buffer.getvalue()


def _av() -> Any:
    """PyAV (the optional `video` extra); every decode path starts by opening a container."""
    return require("av", needed_for="reading screen recordings (video files)")


def _open(path: Path) -> Any:
    av = _av()
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise SourceError(f"cannot open the video: {error}", file=path.name,
                          hint="the file is not a video or is truncated; re-export it from "
                               "the recorder (steps are kept without frames)") from None


def _video_stream(container: Any, path: Path) -> Any:
    if not container.streams.video:
        container.close()
        raise SourceError("the file has no video stream", file=path.name,
                          hint="expected a screen recording (H.264 MP4 or similar)")
    return container.streams.video[0]


def _describe(container: Any, stream: Any, stats: VideoStats) -> float:
    """Fill the stats from the headers; returns the clock origin (seconds)."""
    stats.width, stats.height = stream.codec_context.width, stream.codec_context.height
    rate = stream.average_rate or stream.base_rate
    stats.fps = float(rate) if rate else None
    if container.duration is not None:
        stats.duration = container.duration / 1_000_000
    stats.audio_streams = len(container.streams.audio)
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _frames(container: Any, stream: Any, stats: VideoStats,
            plan: list[bool] | None = None) -> Iterator[Any]:
    """Decode the video stream once; undecodable packets are counted, not fatal. ``plan``
    (see :mod:`curate.sources.video_packets`) says which packets need no decoding."""
    av = _av()
    packets = container.demux(stream)  # audio and other streams are never decoded
    for index in itertools.count():
        try:
            packet = next(packets)
        except StopIteration:
            return
        except (av.error.FFmpegError, OSError) as error:  # the demuxer gave up
            stats.bad_packets += 1
            stats.truncated = True
            stats.first_error = stats.first_error or f"demuxing stopped: {error}"
            return
        if plan is not None and index < len(plan) and not plan[index]:
            stats.packets_skipped += 1
            continue
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError) as error:
            stats.bad_packets += 1
            stats.first_error = stats.first_error or f"packet at {packet.pts}: {error}"
            continue
        yield from frames


def _frame_time(frame: Any, index: int, origin: float, fps: float | None) -> float:
    time = frame.time  # pts * time_base as a float, computed by PyAV (Fraction is slow)
    return float(time) - origin if time is not None else index / (fps or 30.0)


def pick_video_frames(path: Path, requests: Sequence[FrameRequest], *,
                      stats: VideoStats | None = None,
                      end_tolerance: float = DEFAULT_END_TOLERANCE) -> Iterator[PickedFrame]:
    """Decode ``path`` once, front to back (skipping the packets no request can see), and
    yield one :class:`PickedFrame` per request.

    Picks come in the order they are resolved (roughly by time), each frame encoded at most
    once, in a worker thread so that encoding overlaps decoding (both release the GIL).
    Raises SourceError when the file cannot be opened at all; when the demuxer gives up
    part-way, requests past the last good frame are ``file_corrupt`` (see ``stats``).
    """
    stats = stats if stats is not None else VideoStats()
    container = _open(path)
    with ThreadPoolExecutor(max_workers=1) as pool:
        encoder = _Encoder(pool, stats)
        try:
            stream = _video_stream(container, path)
            origin = _describe(container, stream, stats)
            picker: FramePicker[Any] = FramePicker(requests, end_tolerance=end_tolerance,
                                                   grid=video_frame_grids())
            plan = decode_plan(path, requests, origin)
            decoded = _DecodeAhead(_frames(container, stream, stats, plan))
            try:
                for frame in decoded:
                    time = _frame_time(frame, stats.frames_decoded, origin, stats.fps)
                    stats.frames_decoded += 1
                    stats.last_time = time
                    encoder.submit(picker.offer(time, frame))
                    yield from encoder.ready()
                    if picker.done:
                        stats.stopped_early = True
                        break
            finally:
                decoded.close()  # the decoding thread stops before the container closes
            picks = picker.close()
            if stats.truncated:
                # The demuxer gave up: what lies past the last good frame is unreadable,
                # not absent from the recording.
                picks = [replace(p, missing=DECODE_FAILED) if p.missing == AFTER_END else p
                         for p in picks]
            encoder.submit(picks)
            yield from encoder.ready(wait=True)
        finally:
            container.close()


class _DecodeAhead:
    """Decodes in a thread of its own, at most DECODE_AHEAD frames ahead of the reader.

    The decoder runs without the GIL, so it overlaps what the reading thread does with each
    frame (the picker, the grids, submitting encodings). Frames come out in decode order,
    each decoded once; :meth:`close` stops the thread, so the container can be closed.
    """

    def __init__(self, frames: Iterator[Any]) -> None:
        self._queue: Queue[Any] = Queue(maxsize=DECODE_AHEAD)
        self._stop = threading.Event()
        self._ended = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._decode, args=(frames,),
                                        name="curate-video-decode", daemon=True)
        self._thread.start()

    def _decode(self, frames: Iterator[Any]) -> None:
        try:
            for frame in frames:
                self._queue.put(frame)
                if self._stop.is_set():
                    break
        except BaseException as error:  # re-raised in the reading thread
            self._error = error
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
            self._queue.put(_END_OF_FRAMES)

    def __iter__(self) -> Iterator[Any]:
        while (frame := self._queue.get()) is not _END_OF_FRAMES:
            yield frame
        self._ended = True
        self._thread.join()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        self._stop.set()
        interrupted: BaseException | None = None
        while True:
            try:
                while not self._ended:  # unblock a put() so the thread sees the stop
                    self._ended = self._queue.get() is _END_OF_FRAMES
                self._thread.join()
                break
            except KeyboardInterrupt as error:
                # The caller closes the container next: FFmpeg must not free it while
                # this thread still decodes from it, so finish stopping, then re-raise.
                interrupted = error
        if interrupted is not None:
            raise interrupted


class _Encoder:
    """Encodes picked frames in a worker thread; yields them in pick order."""

    def __init__(self, pool: ThreadPoolExecutor, stats: VideoStats) -> None:
        self.pool, self.stats = pool, stats
        self.queue: deque[tuple[Pick[Any], Future[bytes] | None]] = deque()
        # frame time -> its encoding: only the current and previous frame can be picked
        # together, so two entries are enough to encode each frame once.
        self.recent: dict[float, Future[bytes]] = {}

    def submit(self, picks: list[Pick[Any]]) -> None:
        for pick in picks:
            if pick.item is None or pick.time is None:
                self.queue.append((pick, None))
                continue
            future = self.recent.get(pick.time)
            if future is None:
                if len(self.recent) >= 2:
                    self.recent.pop(next(iter(self.recent)))
                future = self.pool.submit(encode_jpeg, pick.item)
                self.recent[pick.time] = future
                self.stats.encoded += 1
            self.queue.append((pick, future))

    def ready(self, *, wait: bool = False) -> Iterator[PickedFrame]:
        while self.queue and (wait or self.queue[0][1] is None or self.queue[0][1].done()):
            pick, future = self.queue.popleft()
            if future is None:
                yield PickedFrame(pick.request, pick.time, None, missing=pick.missing)
            else:
                yield PickedFrame(pick.request, pick.time, future.result(), late=pick.late,
                                  unsettled=pick.unsettled)


def decode_all(path: Path) -> int:
    """Decode every frame of the video stream once and count them (the benchmark baseline)."""
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        return sum(1 for _ in container.decode(stream))
    finally:
        container.close()
