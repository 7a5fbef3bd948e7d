"""AgentNetTool / DuckTrack-style human recordings: raw input events + screen video.

A unit is a folder with ``events.jsonl`` (pynput events: move, click, scroll, press,
release, each with a monotonic ``time_stamp``) and ``metadata.json`` (screen size, OS,
``scroll_direction``, ``video_start_timestamp``, OBS timings), a screen video ``*.mp4``
(names may contain spaces) or a folder of timestamped screenshots, and optionally
``a11y.jsonl``, ``element.jsonl``, ``top_window.jsonl`` and ``task_name.json``. The
recorder's ``reduced_events*`` files are ignored (most recordings lack them): actions are
reduced from events.jsonl by :mod:`curate.sources.reduce`. See docs/sources/agentnet.md.

* Clock: frame ``t`` of the video shows the screen at ``time_stamp = anchor + t``, the
  anchor being the midpoint of OBS's OUTPUT_STARTING and OUTPUT_STARTED timings (fitted on
  the sample's cursor track, see :func:`clock_anchor`); step timestamps are video seconds.
* Frames: s_t is the last frame ``state_guard`` before the action starts; s_t+1 the first
  *settled* frame after it ends: the first frame of the screen's last unchanged stretch
  before the next action starts (watched for at most ``settle_window``), found by frame
  differences, so transitions and slow apps are waited out (else the first frame after the
  end, with a warning). One sequential decode for all (:mod:`curate.sources.video`).
* Coordinates: events are screen pixels of ``metadata.screen_width x screen_height`` (points
  on Retina); OBS scales that screen onto the video canvas, so x, y are normalised by the
  screen size and ``scale`` = video width / screen width. Points the video does not show
  (a resolution changed mid-recording) are kept with a warning.
* Targets: the element.jsonl record taken at the press, when its box contains the press
  point, is not a whole window, and the a11y tree then was in the events' coordinate space.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, Target, canonical_json, normalise
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    IMAGE_SUFFIXES,
    NO_SCREENSHOTS,
    NOT_IN_VIDEO,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    iter_jsonl,
    load_json,
    point_in_frame,
)
from curate.sources.elements import distinct
from curate.sources.elements import element as make_element
from curate.sources.reduce import RawEvent, ReducedAction, Reduction, ReductionParams, reduce_events
from curate.sources.values import number_or_none
from curate.sources.video import (
    AFTER_END,
    BEFORE_START,
    DECODE_FAILED,
    FramePicker,
    FrameRequest,
    VideoStats,
    image_grid,
    pick_video_frames,
)

EVENTS_FILE = "events.jsonl"
META_FILE = "metadata.json"
TASK_FILE = "task_name.json"
ELEMENT_FILE = "element.jsonl"
A11Y_FILE = "a11y.jsonl"
TOP_WINDOW_FILE = "top_window.jsonl"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm")
MAX_LISTED_REJECTS = 50
POINTER_ACTIONS = frozenset({"click", "double_click", "right_click", "middle_click", "drag"})
# The AgentNetTool stop chord (Ctrl+Alt+T), recorded as the last events of every recording.
AGENTNET_STOP_HOTKEY = ("ctrl", "alt", "t")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ROOT_BOX = re.compile(r'"BoundingRectangle":\s*\{\s*"left":\s*(-?\d+),\s*"top":\s*(-?\d+),'
                       r'\s*"right":\s*(-?\d+),\s*"bottom":\s*(-?\d+)')


@dataclass(frozen=True, slots=True)
class AgentNetParams:
    """Alignment settings (seconds) and target filters, with the reduction's thresholds."""

    reduction: ReductionParams = field(default_factory=lambda: ReductionParams(
        stop_hotkey=AGENTNET_STOP_HOTKEY))
    # s_t is taken at least this long before the action starts: one frame period at 30 fps
    # plus the clock fit's +-15 ms, so no frame from after the press slips in.
    state_guard: float = 0.05
    # s_t+1 is the first settled frame within this long after the action ends (capped by the
    # next action's start). On the sample the slowest response, the display-resolution
    # dialog, settled 2.6 s after the click; a fixed 1.0 s caught 2 of 26 steps mid-transition.
    settle_window: float = 5.0
    # Without OBS timings the anchor is video_start_timestamp + this (measured on the sample).
    video_lag: float = 0.28
    # element.jsonl records are written just before the press event; accept this window.
    element_before: float = 1.0
    element_after: float = 0.05
    # Boxes larger than this share of the screen are windows or panes, not targets.
    target_max_area: float = 0.25


DEFAULT_PARAMS = AgentNetParams()


@register
class AgentNetAdapter(Adapter):
    name: ClassVar[str] = "agentnet"
    version: ClassVar[str] = "4"  # 2: s_t+1 settled; 3: triple click, double-click-drag;
    # 4: not terminated is truncated (EpisodeBuilder.ending)
    platform: ClassVar[str] = "desktop"
    description: ClassVar[str] = (
        "AgentNetTool/DuckTrack recordings: events.jsonl + metadata.json + screen video "
        "(or timestamped screenshots), optional a11y/element jsonl")
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        return (path.is_dir() and (path / EVENTS_FILE).is_file()
                and (path / META_FILE).is_file())

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        read_recording(unit, out, DEFAULT_PARAMS)


# -- the recording ------------------------------------------------------------------------------


@dataclass(slots=True)
class Recording:
    """What the folder says about the screen, the clock and the media."""

    screen_width: int
    screen_height: int
    anchor: float
    anchor_source: str
    scroll_sign: int
    meta: dict[str, Any]
    video: Path | None = None
    screenshots: list[tuple[float, Path]] = field(default_factory=list)


def read_recording(unit: SourceUnit, out: UnitBuilder, params: AgentNetParams) -> None:
    meta = _read_meta(unit)
    episode = out.episode()
    events, records = _read_events(unit, episode)
    if not events:
        raise SourceError(f"{EVENTS_FILE} has no usable event",
                          file=unit.relative(unit.path / EVENTS_FILE),
                          hint="the recording is empty or every line is malformed")
    recording = _recording(unit, meta, events, episode, params)
    reduction_params = _reduction_params(params.reduction, recording.scroll_sign)
    reduction = reduce_events(events, reduction_params)
    _report_reduction(unit, episode, reduction)
    steps = _StepWriter(unit, episode, recording, records, params)
    steps.write(reduction.actions)
    _attach_frames(unit, episode, recording, reduction.actions, params)
    _attach_targets(unit, episode, recording, reduction.actions, params)
    _attach_elements(unit, episode, recording, reduction.actions)
    _finish(unit, episode, recording, reduction, reduction_params)


def _read_meta(unit: SourceUnit) -> dict[str, Any]:
    path = unit.path / META_FILE
    meta = load_json(path, unit)
    if not isinstance(meta, dict):
        raise SourceError(f"{META_FILE} must be a JSON object", file=unit.relative(path),
                          hint="re-export the recording's metadata")
    for key in ("screen_width", "screen_height"):
        value = meta.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SourceError(
                f"{META_FILE} needs a positive integer {key!r} (the screen size the event "
                f"coordinates refer to), found {value!r}", file=unit.relative(path),
                hint="add the recording screen's size in pixels to metadata.json")
    return meta


def _first_timing(meta: dict[str, Any], name: str) -> float | None:
    timings = meta.get("obs_record_state_timings")
    values = timings.get(name) if isinstance(timings, dict) else None
    return number_or_none(values[0]) if isinstance(values, list) and values else None


def clock_anchor(meta: dict[str, Any], first_event: float,
                 params: AgentNetParams) -> tuple[float, str]:
    """The events' time_stamp of video time 0, and where it came from.

    Fitted on the sample by matching the cursor drawn in 801 frame-to-frame differences
    against the move events: best offsets 30673.875-30673.900 over the whole 122 s (no
    drift). ``video_start_timestamp`` (30673.604) is 0.28 s early (it would pick s_t eight
    frames after the action started); OUTPUT_STARTED (30674.108) is 0.22 s late; the midpoint
    of OUTPUT_STARTING and OUTPUT_STARTED (30673.885) lies in the fitted range.
    """
    starting = _first_timing(meta, "OBS_WEBSOCKET_OUTPUT_STARTING")
    started = _first_timing(meta, "OBS_WEBSOCKET_OUTPUT_STARTED")
    if starting is not None and started is not None and starting <= started:
        return (starting + started) / 2, "midpoint of OBS output starting/started"
    start = number_or_none(meta.get("video_start_timestamp"))
    if start is not None:
        return start + params.video_lag, f"video_start_timestamp + {params.video_lag} s"
    if started is not None:
        return started, "OBS output started"
    return first_event, "first event (metadata has no video start time)"


def _recording(unit: SourceUnit, meta: dict[str, Any], events: list[RawEvent],
               episode: EpisodeBuilder, params: AgentNetParams) -> Recording:
    anchor, source = clock_anchor(meta, min(e.time for e in events), params)
    sign = meta.get("scroll_direction")
    recording = Recording(meta["screen_width"], meta["screen_height"], anchor, source,
                          sign if sign in (1, -1) else -1, meta)
    if sign not in (1, -1):
        episode.metadata.setdefault("warnings", []).append(
            f"scroll_direction {sign!r} is not 1 or -1; assumed -1 (negative dy = down)")
    videos = sorted(p for p in unit.path.iterdir()
                    if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if videos:
        recording.video = max(videos, key=lambda p: p.stat().st_size)
    else:
        recording.screenshots = _screenshots(unit, events, anchor)
    return recording


def _screenshots(unit: SourceUnit, events: list[RawEvent],
                 anchor: float) -> list[tuple[float, Path]]:
    """Images with a number in their name, in the first sub-folder that has any, as
    (video seconds, path). The number is a time_stamp on the events' clock, or seconds
    since the recording started when no stamp falls in the events' span."""
    for folder in sorted(p for p in unit.path.iterdir() if p.is_dir()):
        stamped = []
        for path in sorted(folder.iterdir()):
            numbers = _NUMBER.findall(path.stem)
            if path.suffix.lower() in IMAGE_SUFFIXES and numbers:
                stamped.append((float(numbers[-1]), path))
        if stamped:
            low, high = min(e.time for e in events), max(e.time for e in events)
            absolute = any(low - 60 <= t <= high + 60 for t, _ in stamped)
            shift = anchor if absolute else 0.0
            return sorted((t - shift, path) for t, path in stamped)
    return []


def _reduction_params(params: ReductionParams, sign: int) -> ReductionParams:
    values = asdict(params)
    values["scroll_sign"] = sign
    values["stop_hotkey"] = tuple(values["stop_hotkey"])
    return ReductionParams(**values)


# -- events.jsonl -------------------------------------------------------------------------------


def _read_events(unit: SourceUnit, episode: EpisodeBuilder
                 ) -> tuple[list[RawEvent], dict[int, dict[str, Any]]]:
    """RawEvents keyed by line number, and the non-move records (for ``raw``)."""
    path = unit.path / EVENTS_FILE
    events: list[RawEvent] = []
    records: dict[int, dict[str, Any]] = {}
    for number, record in iter_jsonl(path, unit, episode):
        try:
            event = to_raw_event(number, record)
        except ValueError as error:
            episode.reject(file=unit.relative(path), position=f"line {number}",
                           reason=f"unusable event: {error}",
                           hint="the event is left out of the reduction; fix the line to use it")
            continue
        events.append(event)
        if event.kind != "move":
            records[number] = record
    return events, records


_KINDS = {"move": "move", "scroll": "scroll", "press": "key_down", "release": "key_up"}


def to_raw_event(seq: int, record: dict[str, Any]) -> RawEvent:
    """One events.jsonl record as a RawEvent; raises ValueError naming what is wrong."""
    time = number_or_none(record.get("time_stamp"))
    if time is None:
        raise ValueError(f"'time_stamp' must be a number, got {record.get('time_stamp')!r}")
    action = record.get("action")
    if action == "click":
        pressed = record.get("pressed")
        if not isinstance(pressed, bool):
            raise ValueError(f"click needs 'pressed' true/false, got {pressed!r}")
        button = str(record.get("button", "left")).removeprefix("Button.")
        return RawEvent(seq, time, "button_down" if pressed else "button_up",
                        *_point(record), button=button)
    kind = _KINDS.get(str(action))
    if kind is None:
        raise ValueError(f"unknown action {action!r}; expected move, click, scroll, press or "
                         "release")
    if kind in ("move", "scroll"):
        dx, dy = number_or_none(record.get("dx")) or 0.0, number_or_none(record.get("dy")) or 0.0
        return RawEvent(seq, time, kind, *_point(record), dx=dx, dy=dy)
    return RawEvent(seq, time, kind, key=key_name(record))


def _point(record: dict[str, Any]) -> tuple[float, float]:
    x, y = number_or_none(record.get("x")), number_or_none(record.get("y"))
    if x is None or y is None:
        raise ValueError(f"'x' and 'y' must be numbers, got {record.get('x')!r}, "
                         f"{record.get('y')!r}")
    return x, y


def key_name(record: dict[str, Any]) -> str:
    """The key of a press/release: ``name``, else pynput's repr (Key.x, 'c', <vk>)."""
    name = record.get("name")
    if isinstance(name, str) and name:
        # With ctrl held, Windows reports letters as control characters (ctrl+a = \\x01).
        if len(name) == 1 and 1 <= ord(name) <= 26:
            return chr(ord(name) + 96)
        return name
    raw = str(record.get("pynput_key") or "")
    if raw.startswith("Key."):
        return raw[4:]
    if len(raw) == 3 and raw[0] == raw[2] == "'":
        return raw[1]
    vk = re.fullmatch(r"<(\d+)>", raw)
    if vk and (48 <= int(vk.group(1)) <= 57 or 65 <= int(vk.group(1)) <= 90):
        return chr(int(vk.group(1))).lower()
    raise ValueError(f"key event without a usable 'name' or 'pynput_key' ({raw!r})")


def _report_reduction(unit: SourceUnit, episode: EpisodeBuilder, reduction: Reduction) -> None:
    file = unit.relative(unit.path / EVENTS_FILE)
    for seq, why in reduction.ignored[:MAX_LISTED_REJECTS]:
        episode.reject(file=file, position=f"line {seq}", reason=f"event not used: {why}",
                       hint="usually harmless (an event cut off by the recording's start or "
                            "end); check the step around it if it matters")
    if len(reduction.ignored) > MAX_LISTED_REJECTS:
        episode.reject(file=file, position="",
                       reason=f"{len(reduction.ignored) - MAX_LISTED_REJECTS} more unused "
                              "events (see metadata warnings)",
                       hint="the recording's event stream is unusually inconsistent")
    if reduction.warnings:
        episode.metadata.setdefault("warnings", []).extend(reduction.warnings)


# -- steps --------------------------------------------------------------------------------------


class _StepWriter:
    def __init__(self, unit: SourceUnit, episode: EpisodeBuilder, recording: Recording,
                 records: dict[int, dict[str, Any]], params: AgentNetParams) -> None:
        self.unit, self.episode, self.rec = unit, episode, recording
        self.records, self.params = records, params

    def write(self, actions: tuple[ReducedAction, ...]) -> None:
        for action in actions:
            converted, warnings = self.action(action)
            self.episode.add_step(
                converted, source_position=self.position(action),
                timestamp=round(action.start - self.rec.anchor, 6),
                timestamp_end=round(action.end - self.rec.anchor, 6), warnings=warnings)

    def position(self, action: ReducedAction) -> str:
        return f"{EVENTS_FILE} lines {line_ranges(action.events)}"

    def action(self, reduced: ReducedAction) -> tuple[Action, list[str]]:
        warnings: list[str] = []
        values: dict[str, Any] = {}
        width, height = self.rec.screen_width, self.rec.screen_height
        for name, (px, py) in (("", (reduced.x, reduced.y)), ("2", (reduced.x2, reduced.y2))):
            if px is None or py is None:
                continue
            x, y, outside = point_in_frame(px, py, width=width, height=height)
            warnings.extend(f"{w} (the video does not show it)" for w in outside)
            values |= {f"x{name}": x, f"y{name}": y, f"px{name}": px, f"py{name}": py}
        if values:
            values |= {"coord_space": "screen_px", "screen_width": width,
                       "screen_height": height}
        if reduced.clicks == 3:
            warnings.append("a triple click (selects a line or paragraph) recorded as one "
                            "click: the action space has no triple click; raw keeps all "
                            "three presses")
        elif reduced.clicks == 2 and reduced.type == "drag":
            warnings.append("a double click then a drag (selects word by word) recorded as "
                            "one drag from the first press; raw keeps every press")
        raw = [self.records[seq] for seq in reduced.events if seq in self.records]
        moves = len(reduced.events) - len(raw)
        action = Action(type=reduced.type, text=reduced.text, keys=reduced.keys,
                        direction=reduced.direction, amount=reduced.amount,
                        raw=canonical_json({"events": raw, "moves_folded": moves}), **values)
        return action, warnings


def line_ranges(numbers: tuple[int, ...]) -> str:
    """1,2,3,7 -> '1-3, 7'."""
    parts: list[str] = []
    start = prev = None
    for number in sorted(numbers):
        if prev is not None and number == prev + 1:
            prev = number
            continue
        if start is not None:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        start = prev = number
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(parts)


# -- frames -------------------------------------------------------------------------------------


def frame_requests(actions: tuple[ReducedAction, ...], anchor: float,
                   params: AgentNetParams) -> list[FrameRequest]:
    """Two requests per action (s_t at 2i, s_t+1 at 2i+1), in video seconds."""
    requests = []
    for index, action in enumerate(actions):
        start, end = action.start - anchor, action.end - anchor
        requests.append(FrameRequest(not_after=start - params.state_guard))
        limit = math.inf
        if index + 1 < len(actions):
            limit = actions[index + 1].start - anchor - params.state_guard
        requests.append(FrameRequest(not_after=min(end + params.settle_window, limit),
                                     not_before=end + params.state_guard, settle=True))
    return requests


_MISSING = {BEFORE_START: NOT_IN_VIDEO, AFTER_END: NOT_IN_VIDEO, DECODE_FAILED: FILE_CORRUPT}


def _attach_frames(unit: SourceUnit, episode: EpisodeBuilder, recording: Recording,
                   actions: tuple[ReducedAction, ...], params: AgentNetParams) -> None:
    if recording.video is None and not recording.screenshots:
        _no_media(unit, episode)
        return
    requests = frame_requests(actions, recording.anchor, params)
    picks = (_video_picks(unit, episode, recording, requests) if recording.video is not None
             else _screenshot_picks(episode, recording, requests))
    missing: dict[str, list[int]] = {}
    for request, frame_id, reason, late, unsettled in picks:
        step = episode.steps[request // 2]
        if request % 2 == 0:
            step.frame_id, step.frame_missing = frame_id, reason
        else:
            step.next_frame_id, step.next_frame_missing = frame_id, reason
            if late:
                step.warnings.append("s_t+1 is later than the next action's start (no frame "
                                     "between this action's end and the next one)")
            if unsettled:
                step.warnings.append("the screen was still changing when the next action "
                                     "started (or settle_window ran out): s_t+1 is its last "
                                     "frame before then, possibly mid-transition")
        if reason is not None:
            missing.setdefault(reason, []).append(request // 2)
    _report_missing(unit, episode, recording, missing)


def _video_picks(unit: SourceUnit, episode: EpisodeBuilder, recording: Recording,
                 requests: list[FrameRequest]
                 ) -> Iterator[tuple[int, str | None, str | None, bool, bool]]:
    assert recording.video is not None
    name = unit.relative(recording.video)
    stats = VideoStats()
    try:
        for pick in pick_video_frames(recording.video, requests, stats=stats):
            frame = None
            if pick.data is not None:
                frame = episode.add_frame(pick.data, file=name, position=f"t={pick.time:.3f}s")
            reason = _MISSING.get(pick.missing or "", pick.missing)
            yield (pick.request, frame.frame_id if frame else None, reason, pick.late,
                   pick.unsettled)
    except SourceError as error:
        episode.reject(file=name, position="", level="frame", reason=error.reason,
                       hint=error.hint)
        for index in range(len(requests)):
            yield index, None, FILE_CORRUPT, False, False
        return
    _video_metadata(episode, name, stats, recording)
    if stats.first_error is not None:
        episode.reject(file=name, position="", level="frame",
                       reason=f"{stats.bad_packets} undecodable packet(s) in the video "
                              f"(first: {stats.first_error})",
                       hint="the video is damaged; steps whose frames could not be decoded "
                            "are marked file_corrupt")


def _video_metadata(episode: EpisodeBuilder, name: str, stats: VideoStats,
                    recording: Recording) -> None:
    scale = stats.width / recording.screen_width if stats.width else None
    episode.metadata.update({
        "video": name, "video_width": stats.width, "video_height": stats.height,
        "video_fps": stats.fps, "video_duration": stats.duration,
        "video_scale": round(scale, 6) if scale else None,
    })
    if scale:
        for step in episode.steps:
            if step.action.px is not None:
                step.action = _with_scale(step.action, scale)


def _with_scale(action: Action, scale: float) -> Action:
    return replace(action, scale=round(scale, 6))


def _screenshot_picks(episode: EpisodeBuilder, recording: Recording,
                      requests: list[FrameRequest]
                      ) -> Iterator[tuple[int, str | None, str | None, bool, bool]]:
    # Screenshots are sparse: the last one before a late action is still its state.
    picker: FramePicker[Path] = FramePicker(requests, end_tolerance=math.inf, grid=image_grid)
    picks = [p for time, path in recording.screenshots for p in picker.offer(time, path)]
    picks.extend(picker.close())
    scale: float | None = None
    for pick in picks:
        frame = episode.add_frame_file(pick.item) if pick.item is not None else None
        if frame is not None and scale is None:
            scale = frame.width / recording.screen_width
        reason = (FILE_CORRUPT if pick.item is not None
                  else _MISSING.get(pick.missing or "", pick.missing))
        yield pick.request, frame.frame_id if frame else None, (
            None if frame else reason), pick.late, pick.unsettled
    folder = recording.screenshots[0][1].parent
    episode.metadata["screenshots"] = folder.name
    if scale is not None:
        episode.metadata["video_scale"] = round(scale, 6)
        for step in episode.steps:
            if step.action.px is not None:
                step.action = _with_scale(step.action, scale)


def _no_media(unit: SourceUnit, episode: EpisodeBuilder) -> None:
    for step in episode.steps:
        step.frame_missing = step.next_frame_missing = FILE_MISSING
    episode.reject(file=unit.source_path, position="", level="frame",
                   reason="no screen video (*.mp4) and no folder of timestamped screenshots "
                          "in the recording; every step is kept without its states",
                   hint="copy the recording's video next to events.jsonl to get the frames")


def _report_missing(unit: SourceUnit, episode: EpisodeBuilder, recording: Recording,
                    missing: dict[str, list[int]]) -> None:
    steps = sorted(set(missing.get(NOT_IN_VIDEO, [])))
    if not steps:
        return
    media = recording.video or (recording.screenshots[0][1].parent
                                if recording.screenshots else unit.path)
    episode.reject(
        file=unit.relative(media), position="", level="frame",
        reason=f"{len(steps)} step(s) (first: step {steps[0]}) fall outside the recorded "
               "video, which is shorter than the events; their states are "
               f"missing ({NOT_IN_VIDEO})",
        hint="the video was cut short; re-export it from the recorder to get these frames")


# -- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Element:
    time: float
    name: str | None
    role: str | None
    box: tuple[float, float, float, float]


def _read_elements(unit: SourceUnit, episode: EpisodeBuilder) -> list[Element]:
    path = unit.path / ELEMENT_FILE
    if not path.is_file():
        return []
    elements = []
    for _, record in iter_jsonl(path, unit, episode):
        tree = record.get("a11y_tree")
        if isinstance(tree, str):  # the recorder writes some trees as JSON strings
            try:
                tree = json.loads(tree)
            except json.JSONDecodeError:
                tree = None
        time, box = number_or_none(record.get("time_stamp")), _box(tree)
        if time is None or box is None or not isinstance(tree, dict):
            continue
        name, role = tree.get("Name"), tree.get("ControlType")
        elements.append(Element(time, name if isinstance(name, str) and name else None,
                                role if isinstance(role, str) and role else None, box))
    return sorted(elements, key=lambda e: e.time)


def _box(tree: Any) -> tuple[float, float, float, float] | None:
    rect = tree.get("BoundingRectangle") if isinstance(tree, dict) else None
    if not isinstance(rect, dict):
        return None
    edges = [number_or_none(rect.get(k)) for k in ("left", "top", "right", "bottom")]
    if any(e is None for e in edges):
        return None
    left, top, right, bottom = (float(e or 0.0) for e in edges)
    return (left, top, right, bottom) if right > left and bottom > top else None


def a11y_widths(unit: SourceUnit, episode: EpisodeBuilder) -> list[tuple[float, int]]:
    """(time, screen width the a11y tree implies) from maximised windows in a11y.jsonl.

    A maximised Windows window overhangs the screen by its border on each side, so
    ``left + right`` is the screen width in the a11y tree's coordinates: after a display
    scaling change it is the logical width (1093 at 125 % of 1366), no longer the events'."""
    path = unit.path / A11Y_FILE
    if not path.is_file():
        return []
    widths = []
    for _, record in iter_jsonl(path, unit, episode):
        tree, time = record.get("axtree"), number_or_none(record.get("time_stamp"))
        head = tree[:2000] if isinstance(tree, str) else json.dumps(tree)[:2000]
        match = _ROOT_BOX.search(head)
        if time is None or match is None:
            continue
        left, top, right, _ = (int(v) for v in match.groups())
        if -16 <= left < 0 and -16 <= top < 0:
            widths.append((time, right + left))
    return sorted(widths)


def _attach_targets(unit: SourceUnit, episode: EpisodeBuilder, recording: Recording,
                    actions: tuple[ReducedAction, ...], params: AgentNetParams) -> None:
    elements = _read_elements(unit, episode)
    if not elements:
        return
    widths = a11y_widths(unit, episode)
    used: set[int] = set()
    for step, action in zip(episode.steps, actions, strict=True):
        if action.type not in POINTER_ACTIONS or action.x is None or action.y is None:
            continue
        index = _element_at(elements, action.start, params, used)
        if index is None:
            continue
        used.add(index)
        element = elements[index]
        why = _target_problem(element, action.x, action.y, recording, widths, params)
        if why is not None:
            step.warnings.append(f"element.jsonl target {element.name!r} not attached: {why}")
            continue
        step.action = step.action.with_target(_target(element, recording))


def _element_at(elements: list[Element], start: float, params: AgentNetParams,
                used: set[int]) -> int | None:
    best = None
    for index, element in enumerate(elements):
        if index in used or not (start - params.element_before <= element.time
                                 <= start + params.element_after):
            continue
        if best is None or abs(element.time - start) < abs(elements[best].time - start):
            best = index
    return best


def _target_problem(element: Element, x: float, y: float, recording: Recording,
                    widths: list[tuple[float, int]], params: AgentNetParams) -> str | None:
    left, top, right, bottom = element.box
    width = next((w for t, w in reversed(widths) if t <= element.time), None)
    if width is not None and abs(width - recording.screen_width) > 2:
        return (f"the a11y tree was in a {width}-px-wide space, not the {recording.screen_width}"
                " px of the events (display scaling or resolution changed)")
    if not (left - 1 <= x <= right + 1 and top - 1 <= y <= bottom + 1):
        return f"its box {element.box} does not contain the press point ({x:g}, {y:g})"
    area = (right - left) * (bottom - top) / (recording.screen_width * recording.screen_height)
    if area > params.target_max_area:
        return f"its box covers {area:.0%} of the screen (a window or pane, not a target)"
    return None


def _target(element: Element, recording: Recording) -> Target:
    left, top, right, bottom = element.box
    width, height = recording.screen_width, recording.screen_height
    return Target(text=element.name, role=element.role, x0=normalise(left, width),
                  y0=normalise(top, height), x1=normalise(right, width),
                  y1=normalise(bottom, height))


def _attach_elements(unit: SourceUnit, episode: EpisodeBuilder, recording: Recording,
                     actions: tuple[ReducedAction, ...]) -> None:
    """Each step's screen elements: the last a11y.jsonl tree taken before the action starts,
    when that tree is in the events' pixel space (each tree parsed and flattened once)."""
    trees = _read_trees(unit, episode, recording)
    if not trees:
        return
    times = [time for time, _ in trees]
    for step, action in zip(episode.steps, actions, strict=True):
        index = bisect_right(times, action.start) - 1
        if index >= 0:
            step.elements = trees[index][1]


def _read_trees(unit: SourceUnit, episode: EpisodeBuilder, recording: Recording
                ) -> list[tuple[float, list[dict[str, Any]] | None]]:
    path = unit.path / A11Y_FILE
    if not path.is_file():
        return []
    trees: list[tuple[float, list[dict[str, Any]] | None]] = []
    for _, record in iter_jsonl(path, unit, episode):
        tree, time = record.get("axtree"), number_or_none(record.get("time_stamp"))
        if isinstance(tree, str):  # the recorder writes some trees as JSON strings
            try:
                tree = json.loads(tree)
            except json.JSONDecodeError:
                tree = None
        if time is None or not isinstance(tree, dict):
            continue
        root = _box(tree)
        if root is not None and -16 <= root[0] < 0 and -16 <= root[1] < 0 and abs(
                root[2] + root[0] - recording.screen_width) > 2:
            # A maximised window in another pixel space (display scaling changed): its
            # boxes would not match the screen, so this tree gives no elements.
            trees.append((time, None))
            continue
        trees.append((time, distinct(_flatten(tree, recording))))
    return sorted(trees, key=lambda item: item[0])


def _flatten(tree: dict[str, Any], recording: Recording) -> Iterator[dict[str, Any] | None]:
    stack = [tree]
    while stack:
        node = stack.pop()
        name, role = node.get("Name"), node.get("ControlType")
        if isinstance(name, str) and name.strip():  # unnamed panes cannot be grounded on
            yield make_element(name, role if isinstance(role, str) else None, _box(node),
                          recording.screen_width, recording.screen_height)
        children = node.get("Children")
        if isinstance(children, list):
            stack.extend(reversed([c for c in children if isinstance(c, dict)]))


# -- the episode --------------------------------------------------------------------------------


def _instruction(unit: SourceUnit, meta: dict[str, Any]) -> tuple[str | None, str | None]:
    path = unit.path / TASK_FILE
    if path.is_file():
        task = load_json(path, unit)
        if isinstance(task, dict):
            for key in ("task_name", "instruction", "task"):
                value = task.get(key)
                if isinstance(value, str) and value.strip():
                    description = task.get("description")
                    return value.strip(), (description.strip() or None
                                           if isinstance(description, str) else None)
    for key in ("task_name", "instruction", "task"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip(), None
    return None, None


def _top_windows(unit: SourceUnit, episode: EpisodeBuilder) -> list[str]:
    path = unit.path / TOP_WINDOW_FILE
    if not path.is_file():
        return []
    names = [r.get("top_window_name") for _, r in iter_jsonl(path, unit, episode)]
    return list(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def _finish(unit: SourceUnit, episode: EpisodeBuilder, recording: Recording,
            reduction: Reduction, params: ReductionParams) -> None:
    episode.instruction, description = _instruction(unit, recording.meta)
    episode.platform = "desktop"
    episode.clock = "relative"
    meta = recording.meta
    episode.metadata.update({
        "os": " ".join(str(meta[k]) for k in ("system", "release") if meta.get(k)) or None,
        "screen_width": recording.screen_width, "screen_height": recording.screen_height,
        "clock_anchor": round(recording.anchor, 6), "clock_anchor_source": recording.anchor_source,
        "timestamps": "seconds since the video's first frame",
        "scroll_direction": recording.scroll_sign,
        "reduction": {k: list(v) if isinstance(v, tuple) else v
                      for k, v in asdict(params).items()},
        "events_trimmed": len(reduction.trimmed),
        "events_ignored": len(reduction.ignored),
    })
    if description:
        episode.metadata["description"] = description
    windows = _top_windows(unit, episode)
    if windows:
        episode.metadata["top_windows"] = windows
    if recording.video is None and not recording.screenshots:
        episode.metadata["media"] = NO_SCREENSHOTS
