"""DroidBot output folders: ``events/``, ``states/`` and ``utg.js``.

A unit is one DroidBot output folder (``droidbot -o REPORT``): ``events/event_<tag>.json``
(one input event each, with the hashes of the state it started from and the state it led
to), ``states/state_<tag>.json`` (the view hierarchy of a state, with its hash
``state_str``) beside ``states/screen_<tag>.png``, and ``utg.js`` (the UI transition graph).
Each event file is one step; s_t is the screenshot of its ``start_state``, s_t+1 that of its
``stop_state``. Traps handled:

* **Order.** Steps follow the event tag (``2017-08-11_155422``: the time DroidBot sent the
  event), then the file name; the tag is also the step's timestamp. Tags are the device
  host's local time without a zone; they are read as UTC (said in the metadata).
* **States by hash.** Events name states by hash, not by file. The hash is looked up in the
  ``state_str`` of the ``states/state_*.json`` files (the capture at or before the event for
  s_t, at or after it for s_t+1), else in the ``utg.js`` node list (its ``image``).
* **States not in the folder** (a report copied in part, or a state DroidBot never saved):
  the step is kept with its frame missing (``file_missing``) and a warning; one frame-level
  reject per missing state names the events that refer to it.
* **Screenshots that are JPEG under a ``.png`` name**: the format is sniffed from the bytes
  and the bytes are stored as recorded.
* **Touch events with ``x``/``y`` null**: the point is the centre of the target view's
  ``bounds`` (device pixels, ``coord_space="element"``); the view becomes the action's
  Target (its box, text or content description, class, resource id).
* **Coordinates** are device pixels, normalised by the device size (the root view's bounds in
  the state files), else by the s_t screenshot's size; ``scale`` is screenshot pixels per
  device pixel when both are known.
* **``utg.js`` is JavaScript** (``var utg = {...}``), not JSON: the assignment is stripped
  and the object literal is parsed with ``json`` (never evaluated). An unreadable ``utg.js``
  is a file-level reject; the events are still read.
* **Unreadable or unknown events**: a step-level reject naming the file and what was
  expected; the other events are kept.

Action mapping: touch → click; long_touch → long_press; swipe → swipe; scroll → scroll
(DroidBot's ``direction`` names the content direction: ``DOWN`` swipes the finger up to
reveal what is below, as curate's ``down``); set_text → type at the view; key BACK → back,
HOME → home, other keys → key; intent ``am start PKG/ACTIVITY`` → open_app(PKG), other
intents → tool_call ``intent``; exit → done; nop → wait; kill_app, spawn and manual →
tool_call with the event's fields.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, Target, canonical_json, normalise, normalise_keys
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    images_in,
    point_in_frame,
)
from curate.sources.elements import distinct, element
from curate.sources.values import number_or_none, text_or_none
from curate.store.frames import Frame

EVENTS_DIR = "events"
STATES_DIR = "states"
UTG_FILE = "utg.js"
EVENT_FILE = re.compile(r"event_(.+)\.json")
STATE_FILE = re.compile(r"state_(.+)\.json")
TAG_FORMAT = "%Y-%m-%d_%H%M%S"
_UTG_ASSIGNMENT = re.compile(r"\A\s*(?:var|let|const)\s+[A-Za-z_$][\w$]*\s*=\s*")
_UTG_KEYS = ("app_package", "app_main_activity", "device_model_number", "device_sdk_version",
             "test_date", "num_input_events", "num_effective_events", "num_nodes", "num_edges")
_PASSTHROUGH_EVENTS = frozenset({"kill_app", "spawn", "manual"})


@register
class DroidBotAdapter(Adapter):
    name: ClassVar[str] = "droidbot"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "mobile"
    description: ClassVar[str] = (
        "DroidBot output folder: events/event_*.json + states/ (screens, view trees) + utg.js"
    )
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        if not path.is_dir():
            return False
        events = path / EVENTS_DIR
        if not events.is_dir():
            return False
        has_events = any(EVENT_FILE.fullmatch(child.name) for child in events.iterdir())
        return has_events and ((path / STATES_DIR).is_dir() or (path / UTG_FILE).is_file())

    def image_files(self, unit: SourceUnit) -> list[Path]:
        return images_in(unit.path / STATES_DIR)  # screen_<tag>.png of each saved state

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        event_files = _event_files(unit.path / EVENTS_DIR)
        if not event_files:
            raise SourceError("no events/event_*.json files: DroidBot recorded no event",
                              file=unit.relative(unit.path / EVENTS_DIR),
                              hint="the run stopped before its first event; re-run DroidBot")
        episode = out.episode()
        utg = _read_utg(unit, episode)
        states = _StateIndex.build(unit, episode, utg)
        frames = _FrameCache(unit, episode, states)
        reader = _EventReader(unit, episode, states, frames)
        for tag, path in event_files:
            reader.add(tag, path)
        frames.report_missing()
        _finish(episode, utg, states, len(event_files))


# -- files -----------------------------------------------------------------------------------


def _event_files(folder: Path) -> list[tuple[str, Path]]:
    """``event_<tag>.json`` files in tag order (tags sort as text in time order)."""
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = EVENT_FILE.fullmatch(child.name)
        if match and child.is_file():
            found.append((match.group(1), child))
    return sorted(found)


def parse_utg(data: bytes) -> dict[str, Any]:
    """The object of ``utg.js`` (``var utg = {...};``) without evaluating any JavaScript.

    Raises ValueError naming what was expected."""
    text = data.decode("utf-8-sig")
    match = _UTG_ASSIGNMENT.match(text)
    if match is None:
        raise ValueError("expected the file to start with 'var utg = {'")
    body = text[match.end():].strip().rstrip(";").rstrip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as error:
        raise ValueError(f"the object after 'var utg =' is not JSON: {error.msg} at "
                         f"line {error.lineno} column {error.colno}") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected 'var utg = {{...}}', got a {type(value).__name__}")
    return value


def _read_utg(unit: SourceUnit, episode: EpisodeBuilder) -> dict[str, Any] | None:
    path = unit.path / UTG_FILE
    if not path.is_file():
        return None
    try:
        return parse_utg(path.read_bytes())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        episode.reject(file=unit.relative(path), position="", level="file",
                       reason=f"cannot read utg.js: {error}",
                       hint="utg.js only adds metadata and a fallback state-to-screenshot map; "
                            "restore it from the DroidBot output to use them")
        return None


def _load_object(path: Path) -> dict[str, Any]:
    """A JSON object file; raises ValueError with the position of the problem."""
    try:
        value = json.loads(path.read_bytes())
    except json.JSONDecodeError as error:
        raise ValueError(f"invalid JSON: {error.msg} at line {error.lineno} column "
                         f"{error.colno}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the file: {error}") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


# -- states ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _StateIndex:
    """Where each state hash's screenshot is: (tag, path) captures, plus utg.js images."""

    captures: dict[str, list[tuple[str, Path]]] = field(default_factory=dict)
    utg_images: dict[str, Path] = field(default_factory=dict)
    device: tuple[int, int] | None = None
    # state hash -> its view hierarchy (from the first state file holding it)
    views: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, unit: SourceUnit, episode: EpisodeBuilder,
              utg: dict[str, Any] | None) -> _StateIndex:
        index = cls()
        folder = unit.path / STATES_DIR
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                match = STATE_FILE.fullmatch(path.name)
                if match and path.is_file():
                    index._add_state(unit, episode, match.group(1), path)
        for node in (utg or {}).get("nodes") or []:
            image = node.get("image") if isinstance(node, dict) else None
            state = (node.get("state_str") or node.get("id")) if isinstance(node, dict) else None
            if isinstance(image, str) and isinstance(state, str) and _is_inside(image):
                index.utg_images.setdefault(state, unit.path / image)
        for captures in index.captures.values():
            captures.sort()
        return index

    def _add_state(self, unit: SourceUnit, episode: EpisodeBuilder, tag: str,
                   path: Path) -> None:
        try:
            state = _load_object(path)
        except ValueError as error:
            episode.reject(file=unit.relative(path), position="", level="file",
                           reason=f"unreadable state file: {error}",
                           hint="its screenshot is still found through utg.js when listed "
                                "there; restore the file to use its view tree")
            return
        state_str = state.get("state_str")
        if not isinstance(state_str, str):
            episode.reject(file=unit.relative(path), position="state_str", level="file",
                           reason="state file has no 'state_str' hash; expected the state's "
                                  "32-hex-digit hash", hint="the file is not a DroidBot state")
            return
        own_tag = state.get("tag")
        tag = own_tag if isinstance(own_tag, str) else tag
        screen = path.with_name(f"screen_{tag}.png")
        self.captures.setdefault(state_str, []).append((tag, screen))
        views = state.get("views")
        if isinstance(views, list):
            self.views.setdefault(state_str, views)
        if self.device is None:
            self.device = _root_size(state.get("views"))

    def screen_for(self, state: str, tag: str, *, after: bool) -> Path | None:
        """The screenshot of ``state`` nearest the event: at/before it (s_t) or after it."""
        captures = [c for c in self.captures.get(state, []) if c[1].is_file()]
        if captures:
            tags = [c[0] for c in captures]
            if after:
                position = bisect_left(tags, tag)
                return captures[min(position, len(captures) - 1)][1]
            position = bisect_right(tags, tag)
            return captures[max(position - 1, 0)][1]
        image = self.utg_images.get(state)
        return image if image is not None and image.is_file() else None


def _is_inside(relative: str) -> bool:
    """A utg.js image path that stays inside the report folder."""
    parts = Path(relative).parts
    return bool(parts) and not Path(relative).is_absolute() and ".." not in parts


def _root_size(views: Any) -> tuple[int, int] | None:
    """The device size from the root view's bounds ``[[0, 0], [w, h]]``."""
    if not isinstance(views, list):
        return None
    for view in views:
        if isinstance(view, dict) and view.get("parent") == -1:
            box = _bounds(view)
            if box is not None and box[0] == 0 and box[1] == 0 and box[2] > 0 and box[3] > 0:
                return int(box[2]), int(box[3])
    return None


class _FrameCache:
    """Each state's frame loaded once; states without a screenshot collected for one reject."""

    def __init__(self, unit: SourceUnit, episode: EpisodeBuilder, states: _StateIndex) -> None:
        self.unit = unit
        self.episode = episode
        self.states = states
        self._loaded: dict[Path, Frame | None] = {}
        self.missing: dict[str, list[str]] = {}

    def frame(self, state: Any, tag: str, event_name: str, *, after: bool
              ) -> tuple[Frame | None, str | None]:
        """(frame, None) or (None, reason) for the state an event names."""
        if not isinstance(state, str) or not state:
            return None, FILE_MISSING
        path = self.states.screen_for(state, tag, after=after)
        if path is None:
            events = self.missing.setdefault(state, [])
            if event_name not in events:
                events.append(event_name)
            return None, FILE_MISSING
        if path not in self._loaded:
            self._loaded[path] = self.episode.add_frame_file(path)
        frame = self._loaded[path]
        return (frame, None) if frame is not None else (None, FILE_CORRUPT)

    def report_missing(self) -> None:
        for state, events in self.missing.items():
            shown = ", ".join(events[:5]) + (f" and {len(events) - 5} more" if len(events) > 5
                                             else "")
            self.episode.reject(
                file=self.unit.relative(self.unit.path / STATES_DIR), position=f"state {state}",
                level="frame",
                reason=f"state {state} has no screenshot in this report (no states/state_*.json "
                       f"with this state_str and no utg.js node image on disk); referred to by "
                       f"{shown}",
                hint="the steps are kept with that frame missing; copy the state's "
                     "screen_<tag>.png and state_<tag>.json from the full DroidBot output")


# -- events to steps -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Geometry:
    """The coordinate space of an event: device pixels, and the frame the action is taken on."""

    width: int | None
    height: int | None
    frame: Frame | None

    def scale(self) -> float | None:
        if self.frame is None or not self.width:
            return None
        return round(self.frame.width / self.width, 4)


class _EventReader:
    def __init__(self, unit: SourceUnit, episode: EpisodeBuilder, states: _StateIndex,
                 frames: _FrameCache) -> None:
        self.unit = unit
        self.episode = episode
        self.states = states
        self.frames = frames

    def add(self, tag: str, path: Path) -> None:
        name = self.unit.relative(path)
        try:
            record = _load_object(path)
            event = record.get("event")
            if not isinstance(event, dict):
                raise ValueError("no 'event' object; expected {'event': {...}, 'start_state', "
                                 "'stop_state', 'tag'}")
        except ValueError as error:
            self.episode.reject(file=name, position="", reason=f"unreadable event: {error}",
                                hint="the event is left out; restore the file from the DroidBot "
                                     "output to keep it")
            return
        tag = record["tag"] if isinstance(record.get("tag"), str) else tag
        event_name = path.name
        frame, missing = self.frames.frame(record.get("start_state"), tag, event_name,
                                           after=False)
        next_frame, next_missing = self.frames.frame(record.get("stop_state"), tag, event_name,
                                                     after=True)
        geometry = self._geometry(frame, next_frame)
        try:
            action, warnings = convert_event(event, geometry)
        except ActionParseError as error:
            self.episode.reject(file=name, position="event", reason=str(error),
                                hint="the event is left out; see docs/sources/droidbot.md for "
                                     "the event types read")
            return
        for state, lost in ((record.get("start_state"), missing),
                            (record.get("stop_state"), next_missing)):
            note = f"state {state} is not in this report: its frame is missing"
            if lost == FILE_MISSING and note not in warnings:
                warnings.append(note)
        self.episode.add_step(
            action, source_position=f"{EVENTS_DIR}/{path.name}",
            frame_id=frame.frame_id if frame else None,
            next_frame_id=next_frame.frame_id if next_frame else None,
            frame_missing=missing, next_frame_missing=next_missing,
            timestamp=tag_time(tag), warnings=warnings,
            elements=self._elements(record.get("start_state"), geometry),
        )

    def _elements(self, state: Any, geometry: _Geometry) -> list[dict[str, Any]] | None:
        views = self.states.views.get(state) if isinstance(state, str) else None
        if not views or not geometry.width or not geometry.height:
            return None
        return distinct(
            element(text_or_none(view.get("text")) or text_or_none(view.get("content_description")),
                    text_or_none(view.get("class")), _bounds(view), geometry.width, geometry.height,
                    text_or_none(view.get("resource_id")) or text_or_none(view.get("view_str")))
            for view in views if isinstance(view, dict) and view.get("visible") is not False)

    def _geometry(self, frame: Frame | None, next_frame: Frame | None) -> _Geometry:
        shown = frame or next_frame
        if self.states.device is not None:
            return _Geometry(*self.states.device, frame=shown)
        if shown is not None:
            return _Geometry(shown.width, shown.height, shown)
        for other in self.episode.frames.values():
            return _Geometry(other.width, other.height, None)
        return _Geometry(None, None, None)


def tag_time(tag: str) -> float | None:
    """Seconds since 1970 of a DroidBot tag (read as UTC), or None when it is not one."""
    try:
        return datetime.strptime(tag[:17], TAG_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _bounds(view: Any) -> tuple[float, float, float, float] | None:
    """A view's ``bounds`` ``[[x0, y0], [x1, y1]]`` as (x0, y0, x1, y1), or None."""
    bounds = view.get("bounds") if isinstance(view, dict) else None
    try:
        (x0, y0), (x1, y1) = bounds  # type: ignore[misc]
    except (TypeError, ValueError):
        return None
    values = [number_or_none(v) for v in (x0, y0, x1, y1)]
    if any(v is None for v in values):
        return None
    a, b, c, d = (float(v) for v in values if v is not None)
    return a, b, c, d


def _target(view: Any, geometry: _Geometry) -> Target | None:
    if not isinstance(view, dict):
        return None
    text = text_or_none(view.get("text")) or text_or_none(view.get("content_description"))
    element_id = text_or_none(view.get("resource_id")) or text_or_none(view.get("view_str"))
    box = _bounds(view)
    if box is None or not geometry.width or not geometry.height:
        return Target(text=text, role=text_or_none(view.get("class")), element_id=element_id)
    return Target(text=text, role=text_or_none(view.get("class")),
                  x0=normalise(box[0], geometry.width), y0=normalise(box[1], geometry.height),
                  x1=normalise(box[2], geometry.width), y1=normalise(box[3], geometry.height),
                  element_id=element_id)


def _point(event: dict[str, Any], view_key: str, x_key: str, y_key: str
           ) -> tuple[float, float, str] | None:
    """(px, py, coord_space) from explicit x/y, else the view's bounds centre."""
    px, py = number_or_none(event.get(x_key)), number_or_none(event.get(y_key))
    if px is not None and py is not None:
        return px, py, "screen_px"
    box = _bounds(event.get(view_key))
    if box is None:
        return None
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, "element"


def _place(action: Action, geometry: _Geometry, start: tuple[float, float, str] | None,
           end: tuple[float, float, str] | None = None) -> tuple[Action, list[str]]:
    """Normalise the start (and end) point by the device size; keep the pixels."""
    if start is None:
        return action, []
    values: dict[str, Any] = {"px": start[0], "py": start[1], "coord_space": start[2]}
    if end is not None:
        values.update(px2=end[0], py2=end[1])
    warnings: list[str] = []
    if geometry.width and geometry.height:
        x, y, warnings = point_in_frame(start[0], start[1], width=geometry.width,
                                        height=geometry.height)
        values.update(x=x, y=y, screen_width=geometry.width, screen_height=geometry.height,
                      scale=geometry.scale())
        if end is not None:
            x2, y2, more = point_in_frame(end[0], end[1], width=geometry.width,
                                          height=geometry.height)
            values.update(x2=x2, y2=y2)
            warnings += more
    else:
        warnings.append("no device size and no screenshot: x/y left empty, pixels kept")
    return replace(action, **values), warnings


def _swipe_direction(start: tuple[float, float, str], end: tuple[float, float, str]
                     ) -> str | None:
    dx, dy = end[0] - start[0], end[1] - start[1]
    if dx == 0 and dy == 0:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def convert_event(event: dict[str, Any], geometry: _Geometry) -> tuple[Action, list[str]]:
    """One DroidBot event dict as an Action (+ warnings); raises ActionParseError."""
    kind = event.get("event_type")
    raw = canonical_json(event)
    if kind in ("touch", "long_touch", "set_text"):
        return _pointer_event(kind, event, geometry, raw)
    if kind == "scroll":
        direction = text_or_none(event.get("direction"))
        action = Action("scroll", direction=direction.lower() if direction else None,
                        target=_target(event.get("view"), geometry), raw=raw)
        return _place(action, geometry, _point(event, "view", "x", "y"))
    if kind in ("swipe", "drag"):
        return _swipe(event, geometry, raw)
    if kind == "key":
        return _key(event, raw), []
    if kind == "intent":
        return _intent(event.get("intent"), raw), []
    if kind == "exit":
        return Action("done", raw=raw), []
    if kind == "nop":
        return Action("wait", raw=raw), []
    if kind in _PASSTHROUGH_EVENTS:
        args = {k: v for k, v in event.items() if k != "event_type"}
        return Action("tool_call", tool_name=str(kind), tool_args=canonical_json(args),
                      raw=raw), []
    raise ActionParseError(
        f"unknown DroidBot event_type {kind!r}; expected touch, long_touch, swipe, scroll, "
        "set_text, key, intent, kill_app, exit, nop, spawn or manual")


def _pointer_event(kind: str, event: dict[str, Any], geometry: _Geometry, raw: str
                   ) -> tuple[Action, list[str]]:
    point = _point(event, "view", "x", "y")
    if point is None:
        raise ActionParseError(f"{kind} event with x/y null and no view bounds; expected "
                               "x and y or a 'view' with 'bounds' [[x0, y0], [x1, y1]]")
    target = _target(event.get("view"), geometry)
    box = _bounds(event.get("view"))
    inverted = box is not None and (box[0] > box[2] or box[1] > box[3])
    if kind == "set_text":
        text = event.get("text")
        action = Action("type", text=text if isinstance(text, str) else "", target=target,
                        raw=raw)
    else:
        action = Action("click" if kind == "touch" else "long_press", target=target, raw=raw)
    placed, warnings = _place(action, geometry, point)
    if inverted and point[2] == "element":
        warnings.append("the view's bounds are inverted (top below bottom or left past right): "
                        "DroidBot tapped the centre of a view clipped off-screen; kept as sent")
    return placed, warnings


def _swipe(event: dict[str, Any], geometry: _Geometry, raw: str) -> tuple[Action, list[str]]:
    start = _point(event, "start_view", "start_x", "start_y")
    end = _point(event, "end_view", "end_x", "end_y")
    if start is None or end is None:
        raise ActionParseError("swipe event without a start or end point; expected start_x/"
                               "start_y or start_view and end_x/end_y or end_view")
    action = Action("swipe", direction=_swipe_direction(start, end),
                    target=_target(event.get("start_view"), geometry), raw=raw)
    return _place(action, geometry, start, end)


def _key(event: dict[str, Any], raw: str) -> Action:
    name = text_or_none(event.get("name"))
    if name is None:
        raise ActionParseError("key event without a 'name'; expected e.g. BACK, HOME, MENU")
    upper = name.upper()
    if upper == "BACK":
        return Action("back", raw=raw)
    if upper == "HOME":
        return Action("home", raw=raw)
    return Action("key", keys=normalise_keys([name]), raw=raw)


def _intent_words(intent: Any) -> list[str]:
    if isinstance(intent, list) and all(isinstance(word, str) for word in intent):
        return list(intent)
    if isinstance(intent, str):
        return intent.split()
    raise ActionParseError(f"intent event with intent {intent!r:.60}; expected a command "
                           "string such as 'am start PKG/ACTIVITY'")


def _intent(intent: Any, raw: str) -> Action:
    words = _intent_words(intent)
    command = " ".join(words)
    if words[:2] == ["am", "start"]:
        for word in _start_components(words[2:]):
            return Action("open_app", app=word.split("/", 1)[0], raw=raw)
    return Action("tool_call", tool_name="intent", tool_args=canonical_json({"intent": command}),
                  raw=raw)


def _start_components(words: list[str]) -> Iterator[str]:
    """``PKG/ACTIVITY`` words of an ``am start`` command (options and their values skipped)."""
    for word in words:
        if not word.startswith("-") and "/" in word and not word.startswith(("/", "http")):
            yield word


# -- episode ---------------------------------------------------------------------------------


def _finish(episode: EpisodeBuilder, utg: dict[str, Any] | None, states: _StateIndex,
            event_count: int) -> None:
    episode.clock = "unix"
    episode.metadata["timestamp_timezone"] = (
        "event tags are the DroidBot host's local time without a zone; read as UTC")
    episode.metadata["event_files"] = event_count
    if states.device is not None:
        episode.metadata["device_size"] = list(states.device)
    if states.captures:
        episode.metadata["states_in_report"] = len(states.captures)
    if utg is None:
        return
    for key in _UTG_KEYS:
        if key in utg and isinstance(utg[key], str | int | float):
            episode.metadata[key] = utg[key]
    recorded = utg.get("num_input_events")
    if isinstance(recorded, int) and recorded > event_count:
        # utg.js counts every event DroidBot sent; fewer event files means a partial report.
        episode.truncated = True
        episode.metadata["truncated_reason"] = (
            f"utg.js counts {recorded} input events; this report holds {event_count} event "
            "files")
