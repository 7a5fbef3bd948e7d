"""Playwright ``trace.zip`` files (trace format versions 4 to 10).

A unit is one ``trace.zip``: NDJSON ``*.trace`` files (one per browser context, ``trace.trace``
or ``0-trace.trace``..., plus the test runner's ``test.trace``), ``*.network`` (HTTP
resources), ``*.stacks`` and ``resources/`` (screencast JPEGs, snapshots' bodies). Each
*library* trace (one browser context) is one episode; its page-interaction calls
(``before``/``after`` pairs) are the steps and its ``screencast-frame`` events the states.
Lines are streamed from the zip one at a time and only the frames steps use are read.
Traps handled:

* **Format versions.** The ``context-options`` line carries ``version``. Versions 4-10 are
  read (v8 renamed ``apiName`` to ``title``, v9 names screencast frames by ``file`` instead
  of ``sha1``, v10 merged step and call ids: all three spellings are read). Newer versions
  are refused with a SourceError naming the version and the supported range (nothing is
  guessed about a format we have not seen); older ones (v3 ``action`` records) likewise.
* **Library vs test-runner traces.** ``test.trace`` (and, before v7, a ``N-trace.trace``
  without ``context-options``) holds the runner's own steps (hooks, fixtures, ``expect``);
  they duplicate the library calls, so they are not steps; their errors still count for the
  outcome.
* **Monotonic vs wall time.** Every time in a library trace (``startTime``, ``endTime``,
  screencast ``timestamp``) is the tracing process's monotonic clock in ms; frames are
  matched to actions on that clock only. Step timestamps are converted to unix seconds with
  the trace's own anchor: ``context-options`` ``wallTime``/``monotonicTime`` (v7+), else the
  first ``before`` event's ``wallTime``/``startTime``. The test runner runs on another
  process's clock (in ``trace-remote-time-diff.zip`` its monotonic origin differs from the
  remote browser's by about 57,977 s); the two are never mixed.
* **States.** s_t is the page's last screencast frame at or before the call's start; s_t+1
  its first frame at or after the call's end; a blank (all-white) s_t is replaced by the
  last non-blank frame written after the call started and before its ``input`` event, with
  a warning naming both. No frame before: ``initial_state_not_recorded``;
  no frame after (tracing stopped): ``no_screenshots`` with a warning; a trace recorded
  without screenshots: ``no_screenshots``. A frame named in the trace but absent from the
  zip: ``file_missing``, counted in one frame-level reject per episode.
* **Coordinates.** Input points (``input`` events or ``after.point``) are CSS pixels of the
  viewport (``context-options`` ``options.viewport``), normalised by it; screencast JPEGs are
  smaller than the viewport (800x450 for 1280x720), so ``scale`` is frame px per CSS px.
* **Calls that are not actions** (newPage, route, setContent, getAttribute, isVisible,
  ``expect``, evaluate, waitForSelector...) are not steps: counted per title in the episode
  metadata (``calls_not_steps``). A call with no ``after`` (trace cut) is kept with a
  warning and the episode is truncated. Unreadable lines are step-level rejects.

Action mapping: click (clickCount 2: double_click; right/middle buttons), tap, check,
uncheck, mouseClick, touchscreenTap → click family; dblclick → double_click; hover,
mouseMove → move; fill, type, keyboardType, keyboardInsertText → type; press,
keyboardPress → key; selectOption → type (the option labels); goto → navigate; goBack →
back; mouseWheel → scroll (pixels);
dragAndDrop → drag; waitForTimeout → wait (s); setInputFiles, goForward, reload, mouseDown,
mouseUp, keyboardDown, keyboardUp → tool_call with the call's parameters. The instruction is
the test title (``context-options`` ``title``) when present.
"""

from __future__ import annotations

import io
import json
import zipfile
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

from PIL import Image

from curate.actions import Action, Target, canonical_json, normalise_keys
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    INITIAL_STATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    point_in_frame,
)
from curate.sources.values import number_or_none
from curate.store.frames import Frame

MIN_VERSION = 4
MAX_VERSION = 10
TRACE_SUFFIX = ".trace"
TEST_TRACE = "test.trace"
MAX_LINE = 64 << 20  # a line longer than this is not a trace event we read
# A screencast frame is a JPEG of a browser viewport (tens of KB); an entry that expands past
# this is a zip bomb or not a frame. Checked on the entry's header and again while reading
# (a header can lie), so nothing bigger is ever held in memory.
MAX_FRAME_BYTES = 32 << 20
# A blank frame's darkest pixel: white with JPEG ringing; any text or border is far darker.
BLANK_MIN_LEVEL = 245
_BUTTON_CLICK = {"left": "click", "right": "right_click", "middle": "middle_click"}
_TOOL_METHODS = frozenset({"setInputFiles", "goForward", "reload", "mouseDown", "mouseUp",
                           "keyboardDown", "keyboardUp", "dispatchEvent"})


@register
class PlaywrightAdapter(Adapter):
    name: ClassVar[str] = "playwright"
    version: ClassVar[str] = "3"  # 2: a blank s_t gives way to a painted frame before input;
    # 3: not terminated is truncated (EpisodeBuilder.ending)
    platform: ClassVar[str] = "web"
    description: ClassVar[str] = (
        "Playwright trace.zip (format versions 4-10): actions and screencast frames"
    )
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".zip":
            return False
        try:
            with zipfile.ZipFile(path) as archive:
                return any(_is_trace_name(name) for name in archive.namelist())
        except (OSError, zipfile.BadZipFile, ValueError):
            return False

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        try:
            archive = zipfile.ZipFile(unit.path)
        except (OSError, zipfile.BadZipFile, ValueError) as error:
            raise SourceError(f"not a readable zip file: {error}", file=unit.source_path,
                              hint="the trace.zip is truncated or corrupt; download it again"
                              ) from None
        with archive:
            _read_archive(unit, out, archive)


def _is_trace_name(name: str) -> bool:
    return "/" not in name and name.endswith(TRACE_SUFFIX)


# -- the archive -----------------------------------------------------------------------------


@dataclass(slots=True)
class _TraceFile:
    name: str
    options: dict[str, Any] | None  # the context-options event, None for runner traces

    @property
    def is_library(self) -> bool:
        return self.options is not None and self.options.get("origin") != "testRunner"


def _unsafe_entries(unit: SourceUnit, out: UnitBuilder, archive: zipfile.ZipFile) -> set[str]:
    """Entries whose names climb out of the archive (``..``) or are absolute: never read
    (curate extracts nothing, but such a name is a crafted archive), one reject each."""
    unsafe = set()
    for name in archive.namelist():
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            unsafe.add(name)
            out.reject(file=unit.source_path, position=name, level="file",
                       reason="zip entry with an absolute path or '..' in its name; not read",
                       hint="a Playwright trace names its entries relative to the archive; "
                            "this one was made by another tool or crafted")
    return unsafe


def _read_archive(unit: SourceUnit, out: UnitBuilder, archive: zipfile.ZipFile) -> None:
    unsafe = _unsafe_entries(unit, out, archive)
    names = sorted(name for name in archive.namelist()
                   if _is_trace_name(name) and name not in unsafe)
    if not names:
        raise SourceError("no *.trace file in the zip; expected trace.trace or 0-trace.trace",
                          file=unit.source_path, hint="this zip is not a Playwright trace")
    traces = [_TraceFile(name, _first_event(unit, archive, name)) for name in names]
    for trace in traces:
        _check_version(unit, trace)
    runner_errors = sum(_count_errors(unit, out, archive, t.name)
                        for t in traces if not t.is_library)
    libraries = [t for t in traces if t.is_library]
    if not libraries:
        raise SourceError(
            "only test-runner traces in the zip (no browser context trace with "
            "context-options): no page actions or screencast frames were recorded",
            file=unit.source_path,
            hint="record the trace with the browser context traced (tracing.start in the "
                 "library, or trace: 'on' in the test config)")
    for trace in libraries:
        inner = None if len(libraries) == 1 else trace.name
        episode = out.episode(inner)
        context = _Context(unit, episode, archive, trace)
        context.read(runner_errors, [t.name for t in traces])
        if not episode.steps:
            out.drop_episode(episode, file=unit.source_path, position=trace.name,
                             reason=context.no_steps_reason(),
                             hint="a trace of setup, queries and assertions only has no "
                                  "action to learn from; nothing is wrong with the file")


def _lines(unit: SourceUnit, archive: zipfile.ZipFile, name: str,
           out: UnitBuilder | EpisodeBuilder) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) for each good NDJSON line; bad lines become step rejects."""
    try:
        handle: IO[bytes] = archive.open(name)
    except (KeyError, zipfile.BadZipFile, OSError) as error:
        raise SourceError(f"cannot open {name} in the zip: {error}", file=unit.source_path,
                          hint="the zip is corrupt; download the trace again") from None
    with handle:
        number = 0
        while True:
            try:
                raw = handle.readline(MAX_LINE)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                out.reject(file=unit.source_path, position=f"{name} line {number + 1}",
                           reason=f"the zip entry is corrupt from here on: {error}",
                           hint="the rest of this trace file is lost; download the trace again")
                return
            if not raw:
                return
            number += 1
            event = _parse_line(raw)
            if isinstance(event, str):
                out.reject(file=unit.source_path, position=f"{name} line {number}",
                           reason=event, hint="the line is left out; the trace file is "
                                              "truncated or corrupt there")
                continue
            if event is not None:
                yield number, event


def _parse_line(raw: bytes) -> dict[str, Any] | str | None:
    """The event of one line, None for a blank line, or the reason it is unreadable."""
    if not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"invalid JSON line: {error}; expected one trace event object per line"
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return "expected a JSON object with a 'type' (a trace event)"
    return value


def _first_event(unit: SourceUnit, archive: zipfile.ZipFile, name: str) -> dict[str, Any] | None:
    """The context-options event heading a trace file, or None (a runner trace before v7)."""
    scratch = UnitBuilder(unit, "playwright", "web")  # rejects are reported by the full pass
    for _, event in _lines(unit, archive, name, scratch):
        return event if event.get("type") == "context-options" else None
    return None


def _check_version(unit: SourceUnit, trace: _TraceFile) -> None:
    if trace.options is None:
        return
    version = trace.options.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SourceError(f"context-options of {trace.name} has no integer version "
                          f"(got {version!r})", file=unit.source_path,
                          position=f"{trace.name} line 1",
                          hint="the trace is damaged; re-record it")
    if version > MAX_VERSION:
        raise SourceError(
            f"trace format version {version} is newer than this adapter reads (versions "
            f"{MIN_VERSION}-{MAX_VERSION}); it was written by a newer Playwright",
            file=unit.source_path, position=f"{trace.name} line 1",
            hint="upgrade curate, or re-record the trace with a Playwright version whose "
                 f"format is {MAX_VERSION} or older")
    if version < MIN_VERSION:
        raise SourceError(
            f"trace format version {version} is older than this adapter reads (versions "
            f"{MIN_VERSION}-{MAX_VERSION}): its actions are single 'action' records",
            file=unit.source_path, position=f"{trace.name} line 1",
            hint="open it once in a current Playwright trace viewer and re-record, or use "
                 "Playwright 1.31 or newer")


def _count_errors(unit: SourceUnit, out: UnitBuilder, archive: zipfile.ZipFile,
                  name: str) -> int:
    """Failed steps in a test-runner trace (an ``error`` on ``after``, or ``error`` events)."""
    return sum(1 for _, event in _lines(unit, archive, name, out)
               if event.get("type") == "error" or
               (event.get("type") == "after" and event.get("error")))


# -- one browser context ---------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    call_id: str
    line: int
    before: dict[str, Any]
    after: dict[str, Any] | None = None
    point: tuple[float, float] | None = None
    input_line: int | None = None  # the trace line of its ``input`` event (the action itself)

    @property
    def method(self) -> str:
        return str(self.before.get("method") or "")

    @property
    def title(self) -> str:
        value = self.before.get("title") or self.before.get("apiName") or self.method
        return str(value)

    @property
    def start(self) -> float | None:
        return number_or_none(self.before.get("startTime"))

    @property
    def end(self) -> float | None:
        return None if self.after is None else number_or_none(self.after.get("endTime"))

    @property
    def params(self) -> dict[str, Any]:
        params = self.before.get("params")
        return params if isinstance(params, dict) else {}


@dataclass(slots=True)
class _Screencast:
    """One page's screencast frames, in time order: (timestamp, resource path)."""

    times: list[float] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def add(self, timestamp: float, path: str, line: int = 0) -> None:
        position = bisect_right(self.times, timestamp)
        self.times.insert(position, timestamp)
        self.paths.insert(position, path)
        self.lines.insert(position, line)

    def recorded_before_input(self, start: float, input_line: int) -> list[tuple[float, str]]:
        """Frames after ``start`` that the trace wrote before the call's ``input`` event (the
        page as it was when the action was performed), latest first."""
        position = bisect_right(self.times, start)
        return [(self.times[i], self.paths[i]) for i in range(len(self.times) - 1, position - 1, -1)
                if self.lines[i] < input_line]

    def at_or_before(self, time: float) -> str | None:
        position = bisect_right(self.times, time)
        return self.paths[position - 1] if position else None

    def at_or_after(self, time: float) -> str | None:
        position = bisect_left(self.times, time)
        return self.paths[position] if position < len(self.paths) else None


def _is_blank_image(data: bytes) -> bool:
    """Every pixel white, allowing for JPEG noise (an unreadable image is not blank: it is
    reported where it is loaded)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (64, 64))  # JPEG decodes at a fraction of the size
            darkest = image.convert("L").getextrema()[0]  # one band: (min, max)
    except (OSError, ValueError, Image.DecompressionBombError):
        return False
    return isinstance(darkest, int | float) and darkest >= BLANK_MIN_LEVEL


def _frame_path(event: dict[str, Any]) -> str | None:
    """``resources/<sha1>`` (v4-8) or the v9+ ``file`` path of a screencast frame."""
    file = event.get("file")
    if isinstance(file, str) and file:
        return file
    sha1 = event.get("sha1")
    return f"resources/{sha1}" if isinstance(sha1, str) and sha1 else None


class _Context:
    def __init__(self, unit: SourceUnit, episode: EpisodeBuilder, archive: zipfile.ZipFile,
                 trace: _TraceFile) -> None:
        self.unit = unit
        self.episode = episode
        self.archive = archive
        self.trace = trace
        self.options = trace.options or {}
        self.calls: dict[str, _Call] = {}
        self.pages: dict[str, _Screencast] = {}
        self.anchor: tuple[float, float] | None = None  # (wall ms, monotonic ms)
        self.members = {name for name in archive.namelist()
                        if ".." not in PurePosixPath(name).parts and not name.startswith("/")}
        self.loaded: dict[str, Frame | None] = {}
        self.read_bytes: dict[str, bytes | None] = {}
        self.blank: dict[str, bool] = {}
        self.not_steps: Counter[str] = Counter()

    def read(self, runner_errors: int, trace_names: list[str]) -> None:
        self._collect()
        errors = runner_errors
        for call in sorted(self.calls.values(), key=lambda c: (c.start or 0.0, c.line)):
            errors += self._step(call)
        self._report_absent()
        self._finish(errors, trace_names)

    def _collect(self) -> None:
        wall = number_or_none(self.options.get("wallTime"))
        monotonic = number_or_none(self.options.get("monotonicTime"))
        if wall is not None and monotonic is not None:
            self.anchor = (wall, monotonic)
        for number, event in _lines(self.unit, self.archive, self.trace.name, self.episode):
            self._event(number, event)

    def _event(self, number: int, event: dict[str, Any]) -> None:
        kind = event["type"]
        call_id = event.get("callId")
        if kind == "before" and isinstance(call_id, str):
            self.calls[call_id] = _Call(call_id, number, event)
            if self.anchor is None and number_or_none(event.get("wallTime")) is not None \
                    and number_or_none(event.get("startTime")) is not None:
                self.anchor = (float(event["wallTime"]), float(event["startTime"]))
        elif kind in ("input", "after") and isinstance(call_id, str) and call_id in self.calls:
            call = self.calls[call_id]
            if kind == "after":
                call.after = event
            elif call.input_line is None:
                call.input_line = number
            point = event.get("point")
            if isinstance(point, dict):
                x, y = number_or_none(point.get("x")), number_or_none(point.get("y"))
                if x is not None and y is not None:
                    call.point = (x, y)
        elif kind == "screencast-frame":
            self._screencast(number, event)

    def _screencast(self, number: int, event: dict[str, Any]) -> None:
        page, timestamp, path = event.get("pageId"), number_or_none(event.get("timestamp")), \
            _frame_path(event)
        if not isinstance(page, str) or timestamp is None or path is None:
            self.episode.reject(file=self.unit.source_path,
                                position=f"{self.trace.name} line {number}", level="frame",
                                reason="screencast-frame without pageId, timestamp or "
                                       "sha1/file; expected all three",
                                hint="the frame is left out; neighbouring frames are used")
            return
        self.pages.setdefault(page, _Screencast()).add(timestamp, path, number)

    # -- steps -----------------------------------------------------------------------------

    def _step(self, call: _Call) -> int:
        """Add the call as a step when it is a page action; returns 1 when it failed."""
        failed = 1 if call.after is not None and call.after.get("error") else 0
        try:
            action = convert_call(call.method, call.params, call.point)
        except ActionParseError as error:
            self.episode.reject(file=self.unit.source_path,
                                position=f"{self.trace.name} line {call.line} ({call.call_id})",
                                reason=f"{call.title}: {error}",
                                hint="the call is left out; see docs/sources/playwright.md")
            return failed
        if action is None:
            self.not_steps[call.title] += 1
            return failed
        warnings: list[str] = []
        frame, missing, next_frame, next_missing = self._states(call, warnings)
        action, placed = self._place(action, frame)
        warnings = placed + warnings
        if call.after is None:
            warnings.append("the call has no 'after' event (the trace stops inside it)")
            self.episode.truncated = True
        self.episode.add_step(
            action, source_position=f"{self.trace.name} line {call.line} ({call.call_id})",
            frame_id=frame.frame_id if frame else None,
            next_frame_id=next_frame.frame_id if next_frame else None,
            frame_missing=missing, next_frame_missing=next_missing,
            timestamp=self._unix(call.start), timestamp_end=self._unix(call.end),
            observation=_error_text(call.after), warnings=warnings,
        )
        return failed

    def _viewport(self) -> tuple[int, int] | None:
        options = self.options.get("options")
        viewport = options.get("viewport") if isinstance(options, dict) else None
        if isinstance(viewport, dict):
            width, height = viewport.get("width"), viewport.get("height")
            if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
                return width, height
        return None

    def _place(self, action: Action, frame: Frame | None) -> tuple[Action, list[str]]:
        if action.px is None or action.py is None:
            return action, []
        viewport = self._viewport()
        if viewport is None:
            return action, ["no viewport in context-options: x/y left empty, CSS pixels kept"]
        x, y, warnings = point_in_frame(action.px, action.py, width=viewport[0],
                                        height=viewport[1])
        values: dict[str, Any] = {"x": x, "y": y, "screen_width": viewport[0],
                                  "screen_height": viewport[1]}
        if frame is not None:
            values["scale"] = round(frame.width / viewport[0], 4)
        if action.px2 is not None and action.py2 is not None:
            values["x2"], values["y2"], more = point_in_frame(
                action.px2, action.py2, width=viewport[0], height=viewport[1])
            warnings += more
        return replace(action, **values), warnings

    def _states(self, call: _Call, warnings: list[str]
                ) -> tuple[Frame | None, str | None, Frame | None, str | None]:
        page = call.before.get("pageId")
        screencast = self.pages.get(page) if isinstance(page, str) else None
        if screencast is None:
            return None, NO_SCREENSHOTS, None, NO_SCREENSHOTS
        before = screencast.at_or_before(call.start) if call.start is not None else None
        if before is not None:
            before = self._unblank(before, screencast, call, warnings)
        after = screencast.at_or_after(call.end) if call.end is not None else None
        frame, missing = self._frame(before) if before else (None, INITIAL_STATE_NOT_RECORDED)
        if after is None:
            if call.end is not None:
                warnings.append("no screencast frame after the call ended (tracing stopped "
                                "first)")
            return frame, missing, None, NO_SCREENSHOTS
        next_frame, next_missing = self._frame(after)
        return frame, missing, next_frame, next_missing

    def _unblank(self, before: str, screencast: _Screencast, call: _Call,
                 warnings: list[str]) -> str:
        """s_t, replacing a blank (all-white) frame by the last non-blank one the trace wrote
        after the call started and before its input event: a page paints white before its
        content, and the white frame is not the state the action was taken on."""
        if not self._is_blank(before):
            return before
        if call.start is not None and call.input_line is not None:
            for time, path in screencast.recorded_before_input(call.start, call.input_line):
                if not self._is_blank(path):
                    warnings.append(
                        f"s_t: the last screencast frame before the call ({before}) is blank "
                        f"(all white); used {path}, {time - call.start:.1f} ms after the call "
                        "started and written before its input event")
                    return path
        warnings.append(f"s_t is a blank (all-white) screencast frame ({before}): no "
                        "non-blank frame was recorded before the action")
        return before

    def _is_blank(self, path: str) -> bool:
        if path not in self.blank:
            data = self._bytes(path)
            self.blank[path] = data is not None and _is_blank_image(data)
        return self.blank[path]

    def _frame(self, path: str) -> tuple[Frame | None, str | None]:
        if path not in self.loaded:
            self.loaded[path] = self._load(path)
        frame = self.loaded[path]
        if frame is not None:
            return frame, None
        return None, FILE_MISSING if path not in self.members else FILE_CORRUPT

    def _load(self, path: str) -> Frame | None:
        data = self._bytes(path)
        name = PurePosixPath(path).as_posix()
        return None if data is None else self.episode.add_frame(
            data, file=self.unit.source_path, position=name)

    def _bytes(self, path: str) -> bytes | None:
        """A screencast frame's bytes; None (with a reject, once) when unreadable."""
        name = PurePosixPath(path).as_posix()
        if name in self.read_bytes:
            return self.read_bytes[name]
        self.read_bytes[name] = data = self._read_member(name)
        return data

    def _read_member(self, name: str) -> bytes | None:
        if name not in self.members:
            return None
        declared = self.archive.getinfo(name).file_size
        try:
            data = b""
            if declared <= MAX_FRAME_BYTES:
                with self.archive.open(name) as handle:
                    data = handle.read(MAX_FRAME_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            self.episode.reject(file=self.unit.source_path, position=name, level="frame",
                                reason=f"cannot read the screencast frame: {error}",
                                hint="the zip is corrupt; download the trace again")
            return None
        if declared > MAX_FRAME_BYTES or len(data) > MAX_FRAME_BYTES:
            self.episode.reject(
                file=self.unit.source_path, position=name, level="frame",
                reason=f"the screencast frame expands to {max(declared, len(data)):,} bytes, "
                       f"more than the {MAX_FRAME_BYTES:,} a frame can have (a zip bomb?); "
                       "it was not decompressed",
                hint="the step is kept without this screenshot; record the trace again")
            return None
        return data

    def _report_absent(self) -> None:
        """One reject for every screencast frame the trace names and the zip lacks."""
        named = sorted({path for page in self.pages.values() for path in page.paths})
        absent = [path for path in named if path not in self.members]
        if not absent:
            return
        used = sum(1 for path in absent if path in self.loaded)
        self.episode.reject(
            file=self.unit.source_path, position=absent[0], level="frame",
            reason=f"{len(absent)} of {len(named)} screencast frame(s) named in "
                   f"{self.trace.name} are not in the zip ({used} of them a step's s_t or "
                   f"s_t+1; first: {absent[0]}); expected them under resources/",
            hint="the steps are kept with those frames missing (file_missing); the trace was "
                 "saved without its screenshots or trimmed; re-record to get them")

    def no_steps_reason(self) -> str:
        calls = ", ".join(f"{title} x{count}" for title, count in sorted(self.not_steps.items()))
        return (f"no page action among the {len(self.calls)} traced call(s) of "
                f"{self.trace.name} ({calls or 'none'}): only setup, queries or assertions")

    def _unix(self, monotonic: float | None) -> float | None:
        if monotonic is None or self.anchor is None:
            return None
        return round((self.anchor[0] + monotonic - self.anchor[1]) / 1000.0, 6)

    def _finish(self, errors: int, trace_names: list[str]) -> None:
        episode = self.episode
        title = self.options.get("title")
        episode.instruction = title if isinstance(title, str) and title else None
        episode.clock = "unix" if self.anchor is not None else "none"
        episode.outcome = "fail" if errors else "unknown"
        metadata = episode.metadata
        metadata["trace_version"] = self.options.get("version")
        metadata["trace_files"] = trace_names
        for key in ("browserName", "platform", "sdkLanguage", "origin", "playwrightVersion"):
            if isinstance(self.options.get(key), str) and self.options[key]:
                metadata[key] = self.options[key]
        viewport = self._viewport()
        if viewport is not None:
            metadata["viewport"] = list(viewport)
        if self.anchor is not None:
            metadata["clock_anchor_ms"] = {"wall": self.anchor[0], "monotonic": self.anchor[1]}
        if errors:
            metadata["failed_calls"] = errors
        metadata["calls_not_steps"] = dict(sorted(self.not_steps.items()))


def _error_text(after: dict[str, Any] | None) -> str | None:
    error = None if after is None else after.get("error")
    if isinstance(error, dict):
        nested = error.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else error
        message = inner.get("message")
        return str(message) if message else canonical_json(error)
    return str(error) if error else None


# -- calls to actions ------------------------------------------------------------------------


def _keys(combo: Any) -> tuple[str, ...]:
    """``Control+Shift+A`` as curate keys; a trailing ``+`` is the plus key."""
    if not isinstance(combo, str) or not combo:
        raise ActionParseError(f"press without a key; got {combo!r}")
    parts = combo.split("+")
    names = [part for part in parts if part]
    if combo.endswith("+"):
        names.append("+")
    return normalise_keys(names)


def _selector_target(params: dict[str, Any]) -> Target | None:
    selector = params.get("selector")
    return Target(element_id=selector) if isinstance(selector, str) and selector else None


def _pointer(kind: str, params: dict[str, Any], point: tuple[float, float] | None,
             raw: str) -> Action:
    px, py = point if point is not None else (None, None)
    return Action(kind, target=_selector_target(params), px=px, py=py,
                  coord_space="screen_px" if point is not None else None, raw=raw)


def _click_kind(params: dict[str, Any]) -> str:
    button = params.get("button") or "left"
    if params.get("clickCount") == 2 and button == "left":
        return "double_click"
    return _BUTTON_CLICK.get(str(button), "click")


def _wheel(params: dict[str, Any], raw: str) -> Action:
    dx, dy = (number_or_none(params.get(key)) or 0.0 for key in ("deltaX", "deltaY"))
    if abs(dy) >= abs(dx):
        direction = "down" if dy > 0 else "up" if dy < 0 else None
    else:
        direction = "right" if dx > 0 else "left"
    return Action("scroll", direction=direction, amount=max(abs(dx), abs(dy)), raw=raw)


def _options_text(params: dict[str, Any]) -> str:
    options = params.get("options")
    labels: list[str] = []
    for option in options if isinstance(options, list) else []:
        if isinstance(option, dict):
            value = (option.get("valueOrLabel") or option.get("label") or option.get("value")
                     or option.get("index"))
            labels.append(str(value))
    return ", ".join(labels)


def convert_call(method: str, params: dict[str, Any], point: tuple[float, float] | None
                 ) -> Action | None:
    """One traced call as an Action, None when it is not a page action (setup, query,
    assertion); raises ActionParseError for an action call missing what it needs."""
    raw = canonical_json({"method": method, "params": params})
    if method in ("click", "tap", "check", "uncheck", "setChecked", "mouseClick",
                  "touchscreenTap"):
        if method in ("mouseClick", "touchscreenTap"):
            point = (number_or_none(params.get("x")) or 0.0, number_or_none(params.get("y")) or 0.0)
        kind = _click_kind(params) if method in ("click", "mouseClick") else "click"
        return _pointer(kind, params, point, raw)
    if method == "dblclick":
        return _pointer("double_click", params, point, raw)
    if method in ("hover", "mouseMove"):
        if method == "mouseMove":
            point = (number_or_none(params.get("x")) or 0.0, number_or_none(params.get("y")) or 0.0)
        return _pointer("move", params, point, raw)
    if method in ("fill", "type", "keyboardType", "keyboardInsertText"):
        text = params.get("value", params.get("text"))
        if not isinstance(text, str):
            raise ActionParseError(f"{method} without text; expected 'value' or 'text'")
        return replace(_pointer("type", params, point, raw), text=text)
    if method in ("press", "keyboardPress"):
        return Action("key", keys=_keys(params.get("key")), target=_selector_target(params),
                      raw=raw)
    if method == "selectOption":
        return replace(_pointer("type", params, point, raw), text=_options_text(params))
    return _other_call(method, params, point, raw)


def _other_call(method: str, params: dict[str, Any], point: tuple[float, float] | None,
                raw: str) -> Action | None:
    if method == "goto":
        url = params.get("url")
        if not isinstance(url, str):
            raise ActionParseError("goto without a url")
        return Action("navigate", url=url, raw=raw)
    if method == "goBack":
        return Action("back", raw=raw)
    if method == "mouseWheel":
        return _wheel(params, raw)
    if method == "dragAndDrop":
        source = params.get("source")
        target = Target(element_id=source) if isinstance(source, str) and source else None
        return replace(_pointer("drag", params, point, raw), target=target)
    if method == "waitForTimeout":
        timeout = number_or_none(params.get("timeout")) or number_or_none(params.get("waitTimeout"))
        return Action("wait", amount=None if timeout is None else timeout / 1000.0, raw=raw)
    if method in _TOOL_METHODS:
        return Action("tool_call", tool_name=method, tool_args=canonical_json(params), raw=raw)
    return None
