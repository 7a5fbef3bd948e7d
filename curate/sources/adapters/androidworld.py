"""AndroidWorld checkpoint pickles (``<TaskName>_<instance>.pkl.gz``).

AndroidWorld's checkpointer writes, per task instance, a gzip-compressed pickle holding a list
of episode dicts: ``goal``, ``task_template``, ``episode_data``, ``is_successful``,
``episode_length``, ``run_time``, ``finish_dtime``, ``screen_config``, ``exception_info``,
``agent_name``, ``seed``... One dict is one episode; a file with several gives episodes
``#0``, ``#1``... Pickles are read with :mod:`curate.sources.unpickle` (nothing they name is
imported or run): AndroidWorld classes (``JSONAction``, ``UIElement``, ``BoundingBox``) arrive as
inert stubs whose fields are read by name. Traps handled:

* **Column-oriented ``episode_data``**: a dict of lists (``action_output``, ``action_reason``,
  ``before_ui_elements``...), one entry per step; step k is the k-th item of every column.
  Columns of unequal length are read up to the longest, with a warning on the short ones.
* **Crashed episodes** have ``NaN`` where ``episode_data`` and ``is_successful`` should be,
  and a traceback in ``exception_info``. With no step, the episode is an episode-level
  reject whose reason quotes the exception; with steps, it is kept as ``fail`` (the run
  failed; the task was never evaluated, so ``score`` stays null), ``truncated``, and the
  traceback is in the metadata.
* **Actions** are ``JSONAction`` objects (``action_output_json``), dicts, or the JSON after
  ``Action:`` in the model's ``action_output`` text; ``index`` is resolved through the step's
  UI element list (``before_ui_elements`` / ``before_element_list``): the point is the centre
  of the element's ``bbox_pixels`` and the element becomes the Target. An index outside the
  list keeps the action without a point, with a warning.
* **Agents that record no action** (``simple_claude`` drives the phone through its own tool
  loop and keeps only its text): each step is kept as an opaque ``tool_call`` named
  ``agent_step`` (arguments: the agent and the step number) with the agent's text as the
  thought and a warning saying the individual actions were not recorded.
* **Screenshots**: none for agents that keep none (frames missing, ``no_screenshots``).
  NumPy arrays (``raw_screenshot`` / ``before_screenshot``, ``after_screenshot``) have no
  recorded encoding, so each is encoded once as PNG, deterministically; set-of-marks
  overlays (``*_with_som``) are not states. Without ``after_screenshot``, s_t+1 is the next
  step's s_t.
* **Outcome**: ``is_successful`` (a float in [0, 1]) is the score; 1.0 is success, anything
  lower fail; NaN without an exception is unknown.

Action mapping: click → click; double_tap → double_click; long_press → long_press;
input_text → type (at the element when given); scroll → scroll (AndroidWorld's direction is
the content direction, as curate's); swipe → swipe (finger direction); navigate_back → back;
navigate_home → home; keyboard_enter → key enter; open_app → open_app; wait → wait;
answer → answer; status complete → done, infeasible → fail; anything else is a step reject.
Pickles load whole (the format cannot be streamed); memory follows the largest file.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, Target, canonical_json, normalise, normalise_keys
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    NO_SCREENSHOTS,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    point_in_frame,
)
from curate.sources.unpickle import Stub, get_field, load_restricted_file
from curate.sources.values import is_nan, number_or_none, text_or_none
from curate.store.frames import Frame

SNIFF_BYTES = 1 << 16
OPAQUE_TOOL = "agent_step"
_NAME = re.compile(r".+\.(?:pkl|pickle)(?:\.gz)?", re.IGNORECASE)
_AGENTLAB_STEP = re.compile(r"step_\d+\.pkl(?:\.gz)?")
_ACTION_COLUMNS = ("action_output_json", "action", "converted_action", "action_output")
_ELEMENT_COLUMNS = ("before_ui_elements", "before_element_list", "ui_elements")
_BEFORE_SCREENS = ("raw_screenshot", "before_screenshot", "screenshot")
_AFTER_SCREENS = ("after_screenshot",)
_THOUGHT_COLUMNS = ("action_reason", "agent_output", "reason")
_OBSERVATION_COLUMNS = ("summary",)
_SIMPLE = {"navigate_back": "back", "navigate_home": "home", "wait": "wait"}
_POINTER = {"click": "click", "double_tap": "double_click", "long_press": "long_press"}
_DONE_STATUS = frozenset({"complete", "task_complete", "success", "successful"})
_FAIL_STATUS = frozenset({"infeasible", "fail", "failed", "impossible"})


@register
class AndroidWorldAdapter(Adapter):
    name: ClassVar[str] = "androidworld"
    version: ClassVar[str] = "2"  # 2: not terminated is truncated (EpisodeBuilder.ending)
    platform: ClassVar[str] = "mobile"
    description: ClassVar[str] = (
        "AndroidWorld checkpoint pickle (TaskName_N.pkl.gz): episodes with column-oriented "
        "episode_data"
    )
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        if not path.is_file() or not _NAME.fullmatch(path.name):
            return False
        if _AGENTLAB_STEP.fullmatch(path.name):
            return False
        head = _sniff(path)
        return b"episode_data" in head and (b"is_successful" in head or b"task_template" in head
                                            or b"goal" in head)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        data = load_restricted_file(unit.path)
        records = data if isinstance(data, list) else [data]
        if not records:
            raise SourceError("the checkpoint holds an empty list: no episode was saved",
                              file=unit.source_path,
                              hint="the task never ran; re-run it or leave the file out")
        for number, record in enumerate(records):
            inner = None if len(records) == 1 else str(number)
            _read_episode(unit, out, record, inner, number)


def _sniff(path: Path) -> bytes:
    """The first bytes of the (decompressed) pickle, or b'' when unreadable."""
    try:
        with path.open("rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=raw) as unpacked:
                    return unpacked.read(SNIFF_BYTES)
            return raw.read(SNIFF_BYTES)
    except (OSError, EOFError, zlib.error):
        return b""


# -- one episode -----------------------------------------------------------------------------


def exception_summary(info: Any) -> str | None:
    """The last non-empty line of a traceback string (``NameError: ...``), or None."""
    text = text_or_none(info)
    if text is None:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _position(number: int, inner: str | None) -> str:
    return "episode 0" if inner is None else f"episode {number}"


def _read_episode(unit: SourceUnit, out: UnitBuilder, record: Any, inner: str | None,
                  number: int) -> None:
    where = _position(number, inner)
    if not isinstance(record, dict):
        out.reject(file=unit.source_path, position=where, level="episode",
                   reason=f"expected an episode dict, got {type(record).__name__}",
                   hint="the file is not an AndroidWorld checkpoint")
        return
    columns = record.get("episode_data")
    crash = exception_summary(record.get("exception_info"))
    if not isinstance(columns, dict) or not _step_count(columns):
        state = "NaN" if is_nan(columns) else type(columns).__name__
        reason = (f"the episode crashed before recording any step ({crash})" if crash else
                  f"episode_data is {state}: no step was recorded")
        out.reject(file=unit.source_path, position=f"{where} episode_data", level="episode",
                   reason=reason, hint="nothing to train on; the traceback is in the "
                                       "checkpoint's exception_info; fix the agent and re-run "
                                       f"task {record.get('task_template')!r}")
        return
    episode = out.episode(inner)
    screen = _screen_size(record.get("screen_config"))
    _StepReader(unit, episode, columns, screen, record, where).run()
    _finish(episode, record, crash)


def _step_count(columns: dict[str, Any]) -> int:
    return max((len(v) for v in columns.values() if isinstance(v, list)), default=0)


def _screen_size(config: Any) -> tuple[int, int] | None:
    width, height = get_field(config, "width"), get_field(config, "height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    return None


@dataclass(frozen=True, slots=True)
class _Row:
    """Step k of the column-oriented episode_data."""

    index: int
    values: dict[str, Any]

    def get(self, *names: str) -> Any:
        for name in names:
            value = self.values.get(name)
            if value is not None and not is_nan(value):
                return value
        return None


class _StepReader:
    def __init__(self, unit: SourceUnit, episode: EpisodeBuilder, columns: dict[str, Any],
                 screen: tuple[int, int] | None, record: dict[str, Any], where: str) -> None:
        self.unit = unit
        self.episode = episode
        self.screen = screen
        self.record = record
        self.where = where
        count = _step_count(columns)
        lists = {k: v for k, v in columns.items() if isinstance(v, list)}
        self.short = sorted(k for k, v in lists.items() if len(v) < count)
        self.rows = [_Row(i, {k: v[i] for k, v in lists.items() if i < len(v)})
                     for i in range(count)]
        self.has_screens = any(r.get(*_BEFORE_SCREENS, *_AFTER_SCREENS) is not None
                               for r in self.rows)

    def run(self) -> None:
        befores = [self._frame(row, _BEFORE_SCREENS) for row in self.rows]
        for position, row in enumerate(self.rows):
            after = self._frame(row, _AFTER_SCREENS)
            if after is None and position + 1 < len(self.rows):
                after = befores[position + 1]
            self._step(row, befores[position], after)

    def _frame(self, row: _Row, names: tuple[str, ...]) -> Frame | None:
        for name in names:
            value = row.get(name)
            if value is not None:
                return _frame_from_array(self.episode, value, file=self.unit.source_path,
                                         position=f"{self.where} step {row.index} {name}")
        return None

    def _step(self, row: _Row, frame: Frame | None, next_frame: Frame | None) -> None:
        position = f"{self.where} step {row.index}"
        try:
            action, warnings = self._action(row, frame)
        except ActionParseError as error:
            self.episode.reject(file=self.unit.source_path, position=position,
                                reason=str(error),
                                hint="the step is left out; the agent's raw output is in the "
                                     "checkpoint's action_output column")
            return
        if self.short:
            warnings.append(f"episode_data columns shorter than the episode: {self.short}")
        if row.get("error") is True:
            warnings.append("the agent reported an error on this step ('error' is True)")
        missing = None if frame else NO_SCREENSHOTS
        self.episode.add_step(
            action, source_position=position,
            frame_id=frame.frame_id if frame else None,
            next_frame_id=next_frame.frame_id if next_frame else None,
            frame_missing=missing, next_frame_missing=None if next_frame else NO_SCREENSHOTS,
            thought=(text_or_none(row.get(*_THOUGHT_COLUMNS))
                     or reason_from_text(row.get("action_output"))),
            observation=text_or_none(row.get(*_OBSERVATION_COLUMNS)), warnings=warnings,
        )

    def _action(self, row: _Row, frame: Frame | None) -> tuple[Action, list[str]]:
        found = _find_action(row)
        if found is None:
            if text_or_none(row.get("agent_output")) is None:
                raise ActionParseError(
                    f"no action in step {row.index}: expected one of {list(_ACTION_COLUMNS)} "
                    "holding a JSONAction or an 'Action: {...}' text")
            return self._opaque(row), [
                "no action recorded: the agent acts through its own tool loop and keeps only "
                "its text; the step is one opaque agent turn"]
        fields, raw = found
        extent = self.screen or ((frame.width, frame.height) if frame else None)
        elements = row.get(*_ELEMENT_COLUMNS)
        return convert_action(fields, raw, extent,
                              elements if isinstance(elements, list) else None, frame)

    def _opaque(self, row: _Row) -> Action:
        args = {"agent": self.record.get("agent_name"),
                "step_number": row.get("step_number") if row.get("step_number") is not None
                else row.index}
        return Action("tool_call", tool_name=OPAQUE_TOOL, tool_args=canonical_json(args))


def _frame_from_array(episode: EpisodeBuilder, value: Any, *, file: str,
                      position: str) -> Frame | None:
    """A screenshot array encoded once as PNG; bytes are passed through as recorded."""
    return episode.add_frame_array(value, file=file, position=position)


# -- actions ---------------------------------------------------------------------------------


def _find_action(row: _Row) -> tuple[dict[str, Any], str] | None:
    """The step's action fields and their raw form, from the first column that has one."""
    for column in _ACTION_COLUMNS:
        value = row.get(column)
        if value is None:
            continue
        if isinstance(value, Stub):
            fields = {k: v for k, v in vars(value).items() if not is_nan(v)}
            return fields, canonical_json(_jsonable(fields))
        if isinstance(value, dict):
            return value, canonical_json(_jsonable(value))
        if isinstance(value, str):
            parsed = action_from_text(value)
            if parsed is not None:
                return parsed, value
    return None


def reason_from_text(text: Any) -> str | None:
    """The ``Reason: ...`` part before ``Action:`` in a model's output, or None."""
    if not isinstance(text, str) or "Reason:" not in text:
        return None
    body = text[text.find("Reason:") + len("Reason:"):]
    end = body.rfind("Action:")
    return text_or_none((body[:end] if end >= 0 else body).strip())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return None if is_nan(value) else value
    return repr(value)


def action_from_text(text: str) -> dict[str, Any] | None:
    """The JSON object after the last ``Action:`` (or the text itself when it is one)."""
    start = text.rfind("Action:")
    body = text[start + len("Action:"):] if start >= 0 else text
    brace = body.find("{")
    if brace < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(body[brace:])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and "action_type" in value else None


def _element(elements: list[Any] | None, index: Any) -> tuple[Any, list[str]]:
    try:
        position = int(index)
    except (TypeError, ValueError):
        return None, [f"element index {index!r} is not a number"]
    if elements is None:
        return None, [f"element index {position} but the step has no UI element list"]
    if not 0 <= position < len(elements):
        return None, [f"element index {position} outside the UI element list "
                      f"(0-{len(elements) - 1})"]
    return elements[position], []


def _element_box(element: Any) -> tuple[float, float, float, float] | None:
    box = get_field(element, "bbox_pixels")
    values = [number_or_none(get_field(box, name)) for name in ("x_min", "y_min", "x_max", "y_max")]
    if any(v is None for v in values):
        return None
    x0, y0, x1, y1 = (float(v) for v in values if v is not None)
    return x0, y0, x1, y1


def _target(element: Any, index: Any, extent: tuple[int, int] | None) -> Target:
    text = (text_or_none(get_field(element, "text"))
            or text_or_none(get_field(element, "content_description")))
    role = text_or_none(get_field(element, "class_name"))
    element_id = text_or_none(get_field(element, "resource_name")) or str(index)
    box = _element_box(element)
    if box is None or extent is None:
        return Target(text=text, role=role, element_id=element_id)
    return Target(text=text, role=role, element_id=element_id,
                  x0=normalise(box[0], extent[0]), y0=normalise(box[1], extent[1]),
                  x1=normalise(box[2], extent[0]), y1=normalise(box[3], extent[1]))


def _point(fields: dict[str, Any], elements: list[Any] | None,
           extent: tuple[int, int] | None) -> tuple[tuple[float, float, str] | None,
                                                    Target | None, list[str]]:
    """(pixel point and its convention, target, warnings) from x/y or the element index."""
    x, y = number_or_none(fields.get("x")), number_or_none(fields.get("y"))
    index = fields.get("index")
    if index is None:
        return ((x, y, "screen_px") if x is not None and y is not None else None), None, []
    element, warnings = _element(elements, index)
    if element is None:
        point = (x, y, "screen_px") if x is not None and y is not None else None
        return point, Target(element_id=str(index)), warnings
    target = _target(element, index, extent)
    box = _element_box(element)
    if x is not None and y is not None:
        return (x, y, "screen_px"), target, warnings
    if box is None:
        return None, target, [*warnings, f"element {index} has no bbox_pixels"]
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, "element"), target, warnings


def _place(action: Action, point: tuple[float, float, str] | None,
           extent: tuple[int, int] | None, frame: Frame | None) -> tuple[Action, list[str]]:
    if point is None:
        return action, []
    if extent is None:
        return replace(action, px=point[0], py=point[1], coord_space=point[2]), [
            "no screen size (screen_config) and no screenshot: x/y left empty, pixels kept"]
    x, y, warnings = point_in_frame(point[0], point[1], width=extent[0], height=extent[1])
    scale = round(frame.width / extent[0], 4) if frame is not None else None
    return replace(action, x=x, y=y, px=point[0], py=point[1], coord_space=point[2],
                   screen_width=extent[0], screen_height=extent[1], scale=scale), warnings


def convert_action(fields: dict[str, Any], raw: str, extent: tuple[int, int] | None,
                   elements: list[Any] | None = None, frame: Frame | None = None
                   ) -> tuple[Action, list[str]]:
    """An AndroidWorld JSONAction's fields as an Action; raises ActionParseError."""
    kind = fields.get("action_type")
    if not isinstance(kind, str):
        raise ActionParseError(f"action without an action_type: {raw[:80]!r}")
    if kind in _SIMPLE:
        return Action(_SIMPLE[kind], raw=raw), []
    if kind == "keyboard_enter":
        return Action("key", keys=normalise_keys(["enter"]), raw=raw), []
    if kind == "open_app":
        app = text_or_none(fields.get("app_name"))
        if app is None:
            raise ActionParseError("open_app without app_name; expected the app's name")
        return Action("open_app", app=app, raw=raw), []
    if kind == "answer":
        return Action("answer", text=str(fields.get("text") or ""), raw=raw), []
    if kind == "status":
        return _status(fields, raw), []
    if kind in _POINTER or kind in ("input_text", "scroll", "swipe"):
        return _located(kind, fields, raw, extent, elements, frame)
    raise ActionParseError(
        f"unknown AndroidWorld action_type {kind!r}; expected click, double_tap, long_press, "
        "input_text, scroll, swipe, navigate_back, navigate_home, keyboard_enter, open_app, "
        "wait, answer or status")


def _status(fields: dict[str, Any], raw: str) -> Action:
    status = str(fields.get("goal_status") or "").lower()
    if status in _DONE_STATUS:
        return Action("done", raw=raw)
    if status in _FAIL_STATUS:
        return Action("fail", raw=raw)
    raise ActionParseError(f"status action with goal_status {status!r}; expected complete or "
                           "infeasible")


def _located(kind: str, fields: dict[str, Any], raw: str, extent: tuple[int, int] | None,
             elements: list[Any] | None, frame: Frame | None) -> tuple[Action, list[str]]:
    point, target, warnings = _point(fields, elements, extent)
    if kind in _POINTER:
        if point is None and target is None:
            raise ActionParseError(f"{kind} without x/y or index; expected one of them")
        action = Action(_POINTER[kind], target=target, raw=raw)
    elif kind == "input_text":
        action = Action("type", text=str(fields.get("text") or ""), target=target, raw=raw)
    else:
        direction = text_or_none(fields.get("direction"))
        if direction is None:
            raise ActionParseError(f"{kind} without a direction; expected up/down/left/right")
        action = Action("scroll" if kind == "scroll" else "swipe",
                        direction=direction.lower(), target=target, raw=raw)
    placed, more = _place(action, point, extent, frame)
    return placed, warnings + more


# -- episode ---------------------------------------------------------------------------------


def _finish(episode: EpisodeBuilder, record: dict[str, Any], crash: str | None) -> None:
    episode.instruction = text_or_none(record.get("goal"))
    score = number_or_none(record.get("is_successful"))
    if crash is not None:
        episode.outcome, episode.truncated = "fail", True
        episode.metadata["exception"] = crash
        episode.metadata["traceback"] = record.get("exception_info")
    elif score is not None:
        episode.outcome = "success" if score >= 1.0 else "fail"
        episode.score = score
    last = episode.steps[-1].action.type if episode.steps else None
    episode.terminated = last in ("done", "fail", "answer")
    for key in ("task_template", "agent_name", "seed", "instance_id", "run_time",
                "episode_length"):
        value = record.get(key)
        if isinstance(value, str | int | float) and not is_nan(value):
            episode.metadata[key] = value
    finished = record.get("finish_dtime")
    if isinstance(finished, datetime):
        episode.metadata["finish_dtime"] = finished.isoformat()
    config = record.get("screen_config")
    if isinstance(config, dict):
        episode.metadata["screen_config"] = _jsonable(config)
