"""Android in the Wild (AITW): TFRecord files, one ``tf.train.Example`` per *step*.

A unit is one TFRecord file (GZIP or not). Each record is one step: ``episode_id``,
``step_id``, ``episode_length``, ``goal_info`` (the instruction), the screen before the action
(``image/encoded`` with ``image/height``, ``image/width``, ``image/channels``), the action
(``results/action_type``, ``results/yx_touch``, ``results/yx_lift``, ``results/type_action``)
and UI annotations (``image/ui_annotations_positions`` / ``_text`` / ``_ui_types``). Inner
episode ids are the ``episode_id`` values. Traps handled:

* Steps of an episode are consecutive records: they are grouped while streaming and each
  group is turned into an episode as soon as the next episode starts, so only one episode is
  held at a time. An ``episode_id`` that comes back after another episode is rejected
  (record by record) instead of being merged or split silently. Inside a group, records are
  ordered by ``step_id``; a repeated ``step_id`` is a step reject.
* Alignment: s_t is the record's own image, s_t+1 the next step's record. Where step ids skip,
  s_t+1 is null: ``record_unreadable`` when a corrupt record was met in the group, else
  ``record_missing``. The last step has no state after it (``final_state_not_recorded``).
* ``results/action_type`` is AITW's enum: 3 TYPE, 4 DUAL_POINT, 5 PRESS_BACK, 6 PRESS_HOME,
  7 PRESS_ENTER, 10 STATUS_TASK_COMPLETE, 11 STATUS_TASK_IMPOSSIBLE (0, 1, 2, 8, 9 are unused
  placeholders): anything else is a step reject naming the valid values.
* Points are normalised to [0, 1] and **y first** (``yx_touch = [y, x]``). A dual-point
  gesture is a tap (``click`` at the touch point) when touch and lift are within 0.04 of each
  other (Euclidean, normalised units, the threshold AITW's own action matching uses, distance
  <= 0.04 inclusive); otherwise a ``swipe`` from touch to lift whose direction is the finger's
  movement along the primary axis (ties count as vertical).
* A tap inside an annotated UI element (positions are ``[y, x, height, width]`` boxes,
  normalised) gets that element as its target (the smallest box containing the point), with
  the annotation's text and UI type.
* ``image/encoded`` holds either an encoded image (passed through untouched) or the raw pixel
  array (height x width x channels bytes, what the public release holds): raw arrays are
  encoded as PNG, deterministically (same pixels, same bytes), once per record; the episode
  metadata says so. Anything else is a frame reject (``file_corrupt``).
* Outcome: the last step's STATUS_TASK_COMPLETE / STATUS_TASK_IMPOSSIBLE gives success /
  fail (the demonstrator's own verdict); an episode with fewer records than its
  ``episode_length``, or without a status action at the end, is truncated, outcome unknown.
* A corrupt record (bad CRC, truncated file, not an Example) is a step-level reject with its
  record number and byte offset; reading resumes at the next valid record when possible.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, canonical_json
from curate.errors import ActionParseError
from curate.sources.adapters import register
from curate.sources.adapters._mobile import (
    Box,
    ExampleItem,
    box_at,
    has_features,
    iter_examples,
    record_position,
    swipe_direction,
)
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FINAL_STATE_NOT_RECORDED,
    RECORD_MISSING,
    RECORD_UNREADABLE,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    point_in_frame,
)
from curate.sources.tfrecord import Example, ExampleError, is_gzip
from curate.store.frames import Frame, encode_array_png, sniff_format

REQUIRED_FEATURES = frozenset({"episode_id", "results/action_type", "image/encoded"})
TAP_THRESHOLD = 0.04
ACTION_NAMES = {3: "TYPE", 4: "DUAL_POINT", 5: "PRESS_BACK", 6: "PRESS_HOME",
                7: "PRESS_ENTER", 10: "STATUS_TASK_COMPLETE", 11: "STATUS_TASK_IMPOSSIBLE"}
_SIMPLE: dict[int, tuple[str, tuple[str, ...]]] = {
    5: ("back", ()), 6: ("home", ()), 7: ("key", ("enter",)), 10: ("done", ()), 11: ("fail", ())}
_PIXEL_CHANNELS = frozenset({1, 3, 4})


@register
class AitwAdapter(Adapter):
    name: ClassVar[str] = "aitw"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "mobile"
    description: ClassVar[str] = (
        "Android in the Wild TFRecord files: one step per record (y-first normalised "
        "touch/lift points, action_type enum, UI annotations)"
    )
    streams: ClassVar[bool] = True
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        return has_features(path, REQUIRED_FEATURES)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        for group in iter_episode_groups(unit, out):
            build_episode(unit, out, group)


# -- streaming: records -> episode groups -------------------------------------------------------


@dataclass(slots=True)
class AitwRecord:
    """One readable record of a group: where it was and what it says."""

    index: int
    offset: int
    example: Example
    step_id: int


@dataclass(slots=True)
class EpisodeGroup:
    """The consecutive records of one episode, and whether unreadable records touched it."""

    episode_id: str
    records: list[AitwRecord] = field(default_factory=list)
    unreadable_inside: bool = False  # a corrupt record between two of its records
    unreadable_after: bool = False  # a corrupt record right after its last record
    gzip: bool = False


@dataclass(slots=True)
class _Grouper:
    unit: SourceUnit
    out: UnitBuilder
    gzip: bool
    current: EpisodeGroup | None = None
    finished: set[str] = field(default_factory=set)
    error_pending: bool = False

    def add(self, item: ExampleItem) -> EpisodeGroup | None:
        """Take one record; return the group it completed, if any."""
        if item.example is None:
            self.error_pending = True
            return None
        position = record_position(item.index, item.offset, self.gzip)
        ids = self._ids(item.example, position)
        if ids is None:
            return None
        episode_id, step_id = ids
        done = None
        if self.current is not None and self.current.episode_id != episode_id:
            done = self.close()
        if episode_id in self.finished:
            self.out.reject(file=self.unit.source_path, position=position,
                            reason=f"episode_id {episode_id!r} already ended earlier in this "
                                   "file: the records of one episode must be consecutive; "
                                   "this record is left out",
                            hint="sort the file by episode (AITW's own files are)")
            return done
        if self.current is None:
            self.current = EpisodeGroup(episode_id, gzip=self.gzip)
        elif self.error_pending:
            self.current.unreadable_inside = True
        self.error_pending = False
        self.current.records.append(AitwRecord(item.index, item.offset, item.example, step_id))
        return done

    def close(self) -> EpisodeGroup | None:
        group, self.current = self.current, None
        if group is not None:
            group.unreadable_after = self.error_pending
            self.finished.add(group.episode_id)
        self.error_pending = False
        return group

    def _ids(self, example: Example, position: str) -> tuple[str, int] | None:
        try:
            episode_id = _text_or_int(example, "episode_id")
            step_id = example.int64("step_id")
        except ExampleError as error:
            episode_id, step_id, problem = None, None, str(error)
        else:
            problem = "it has no episode_id" if episode_id is None else "it has no step_id"
        if episode_id is None or step_id is None:
            self.out.reject(file=self.unit.source_path, position=position,
                            reason=f"cannot place this record in an episode: {problem}",
                            hint="AITW records carry episode_id and step_id; the record is "
                                 "left out")
            return None
        return episode_id, step_id


def _text_or_int(example: Example, key: str) -> str | None:
    if example.kind(key) == "int64_list":
        value = example.int64(key)
        return None if value is None else str(value)
    text = example.text(key)
    return text.strip() if text and text.strip() else None


def iter_episode_groups(unit: SourceUnit, out: UnitBuilder) -> Iterator[EpisodeGroup]:
    """Stream the file's records as one group per episode (one group in memory at a time)."""
    grouper = _Grouper(unit, out, is_gzip(unit.path))
    for item in iter_examples(unit, out, what="step"):
        done = grouper.add(item)
        if done is not None:
            yield done
    last = grouper.close()
    if last is not None:
        yield last


# -- one group -> one episode -------------------------------------------------------------------


def build_episode(unit: SourceUnit, out: UnitBuilder, group: EpisodeGroup) -> None:
    episode = out.episode(group.episode_id)
    first = group.records[0].example
    episode.instruction = _goal(first)
    records = _ordered(unit, episode, group)
    frames = [_frame(unit, episode, record, group.gzip) for record in records]
    for k, record in enumerate(records):
        next_frame, next_missing = _next_state(group, records, frames, k)
        _add_step(unit, episode, record, frames[k], next_frame, next_missing, group.gzip)
    _finish(episode, first, len(records), group)
    out.finish(episode)


def _goal(example: Example) -> str | None:
    goal = example.text("goal_info")
    return goal.strip() if goal and goal.strip() else None


def _ordered(unit: SourceUnit, episode: EpisodeBuilder, group: EpisodeGroup
             ) -> list[AitwRecord]:
    """The group's records by step_id; a repeated step_id is rejected."""
    kept: dict[int, AitwRecord] = {}
    for record in group.records:
        if record.step_id in kept:
            episode.reject(file=unit.source_path,
                           position=record_position(record.index, record.offset, group.gzip),
                           reason=f"step_id {record.step_id} of episode {group.episode_id!r} "
                                  f"repeats record {kept[record.step_id].index}; the repeat "
                                  "is left out",
                           hint="de-duplicate the file")
            continue
        kept[record.step_id] = record
    return [kept[step_id] for step_id in sorted(kept)]


def _next_state(group: EpisodeGroup, records: list[AitwRecord], frames: list[Frame | None],
                k: int) -> tuple[Frame | None, str | None]:
    if k + 1 == len(records):
        # After a status action the episode is over: no record can follow it in the episode.
        lost = group.unreadable_after and not _is_status(records[k].example)
        return None, RECORD_UNREADABLE if lost else FINAL_STATE_NOT_RECORDED
    if records[k + 1].step_id != records[k].step_id + 1:
        return None, RECORD_UNREADABLE if group.unreadable_inside else RECORD_MISSING
    frame = frames[k + 1]
    return frame, (None if frame is not None else FILE_CORRUPT)


def _is_status(example: Example) -> bool:
    try:
        return example.int64_list("results/action_type") in ([10], [11])
    except ExampleError:
        return False


def _add_step(unit: SourceUnit, episode: EpisodeBuilder, record: AitwRecord,
              frame: Frame | None, next_frame: Frame | None, next_missing: str | None,
              gzip: bool) -> None:
    position = record_position(record.index, record.offset, gzip)
    try:
        action, warnings = convert_action(record.example, frame)
    except (ActionParseError, ExampleError) as error:
        episode.reject(file=unit.source_path, position=position,
                       reason=f"cannot read the action: {error}",
                       hint="the step is left out; its neighbours keep their screenshots")
        return
    episode.add_step(
        action, source_position=f"{position} step_id {record.step_id}",
        frame_id=frame.frame_id if frame else None,
        frame_missing=None if frame else FILE_CORRUPT,
        next_frame_id=next_frame.frame_id if next_frame else None,
        next_frame_missing=next_missing, warnings=warnings)


def _finish(episode: EpisodeBuilder, first: Example, count: int, group: EpisodeGroup) -> None:
    length = _int_or_none(first, "episode_length")
    metadata: dict[str, Any] = {"episode_id": group.episode_id, "episode_length": length}
    device = first.text("device_type") if first.kind("device_type") == "bytes_list" else None
    api = _int_or_none(first, "android_api_level")
    metadata.update({k: v for k, v in (("device_type", device), ("android_api_level", api))
                     if v is not None})
    episode.metadata.update(metadata)
    last = episode.steps[-1].action.type if episode.steps else None
    if length is not None and count < length:
        episode.metadata["records_found"] = count
        episode.truncated = True
    if last in ("done", "fail"):
        episode.terminated = True
        episode.outcome = "success" if last == "done" else "fail"
    else:
        episode.truncated = True


def _int_or_none(example: Example, key: str) -> int | None:
    try:
        return example.int64(key)
    except ExampleError:
        return None


# -- images -------------------------------------------------------------------------------------


def _frame(unit: SourceUnit, episode: EpisodeBuilder, record: AitwRecord,
           gzip: bool) -> Frame | None:
    position = f"{record_position(record.index, record.offset, gzip)} image/encoded"
    try:
        data, raw = image_bytes(record.example)
    except (ValueError, ExampleError) as error:
        episode.reject(file=unit.source_path, position=position, level="frame",
                       reason=str(error), hint="the step keeps a null frame (file_corrupt)")
        return None
    if raw:
        episode.metadata["frames_encoded"] = (
            "PNG made here from raw pixel arrays (image/encoded held height x width x "
            "channels bytes)")
    return episode.add_frame(data, file=unit.source_path, position=position)


def image_bytes(example: Example) -> tuple[bytes, bool]:
    """The screenshot as image bytes, and whether it was encoded here from raw pixels.

    Raises ValueError when the bytes are neither an image nor a height x width x channels
    pixel array."""
    values = example.bytes_list("image/encoded")
    if not values or not values[0]:
        raise ValueError("image/encoded is empty: expected an encoded image or raw pixels")
    data = values[0]
    if sniff_format(data) is not None:
        return data, False
    height, width = example.int64("image/height"), example.int64("image/width")
    channels = example.int64("image/channels") or 3
    if not height or not width or channels not in _PIXEL_CHANNELS:
        raise ValueError(f"image/encoded is not an encoded image and the record gives no "
                         f"usable height/width/channels ({height}, {width}, {channels}) to "
                         "read it as raw pixels")
    if len(data) != height * width * channels:
        raise ValueError(f"image/encoded holds {len(data)} bytes: neither an encoded image "
                         f"nor {height}x{width}x{channels} = {height * width * channels} raw "
                         "pixel bytes")
    return encode_png(data, width, height, channels), True


def encode_png(pixels: bytes, width: int, height: int, channels: int) -> bytes:
    """Raw row-major pixels as PNG bytes, with the toolkit's one deterministic PNG encoding
    (:func:`curate.store.frames.encode_array_png`): the same pixels always give the same bytes."""
    import numpy as np

    shape = (height, width) if channels == 1 else (height, width, channels)
    return encode_array_png(np.frombuffer(pixels, dtype=np.uint8).reshape(shape))


# -- actions ------------------------------------------------------------------------------------


def convert_action(example: Example, frame: Frame | None) -> tuple[Action, list[str]]:
    """The record's action; raises ActionParseError naming what was expected."""
    codes = example.int64_list("results/action_type")
    if len(codes) != 1:
        raise ActionParseError(f"results/action_type holds {len(codes)} values; expected one")
    code = codes[0]
    if code == 4:
        return _dual_point(example, frame)
    if code == 3:
        text = example.text("results/type_action")
        if text is None:
            raise ActionParseError("TYPE (3) without results/type_action text")
        return Action(type="type", text=text, raw=canonical_json(
            {"action_type": code, "type_action": text})), []
    if code in _SIMPLE:
        kind, keys = _SIMPLE[code]
        return Action(type=kind, keys=keys, raw=canonical_json({"action_type": code})), []
    known = ", ".join(f"{value} {name}" for value, name in ACTION_NAMES.items())
    raise ActionParseError(f"unknown results/action_type {code}; expected one of {known}")


def _point(example: Example, key: str) -> tuple[float, float]:
    """A y-first point ``[y, x]`` as (x, y)."""
    values = example.float_list(key)
    if len(values) != 2 or not all(math.isfinite(v) for v in values):
        raise ActionParseError(f"{key} should be two numbers [y, x], got {values!r}")
    y, x = values
    return x, y


def is_tap(touch: tuple[float, float], lift: tuple[float, float]) -> bool:
    """AITW's rule: a dual-point gesture whose ends are within 0.04 (normalised) is a tap."""
    return math.dist(touch, lift) <= TAP_THRESHOLD


def _dual_point(example: Example, frame: Frame | None) -> tuple[Action, list[str]]:
    touch, lift = _point(example, "results/yx_touch"), _point(example, "results/yx_lift")
    raw = canonical_json({"action_type": 4, "yx_lift": [lift[1], lift[0]],
                          "yx_touch": [touch[1], touch[0]]})
    x, y, warnings = point_in_frame(touch[0], touch[1], width=1.0, height=1.0)
    width, height = (frame.width, frame.height) if frame else (None, None)
    if is_tap(touch, lift):
        box = box_at(touch[0], touch[1], _boxes(example))
        return Action(type="click", x=x, y=y, px=touch[0], py=touch[1], coord_space="norm_1",
                      target=box.target() if box else None, screen_width=width,
                      screen_height=height, raw=raw), warnings
    x2, y2, end_warnings = point_in_frame(lift[0], lift[1], width=1.0, height=1.0)
    direction = swipe_direction(lift[0] - touch[0], lift[1] - touch[1])
    return Action(type="swipe", x=x, y=y, x2=x2, y2=y2, direction=direction, px=touch[0],
                  py=touch[1], px2=lift[0], py2=lift[1], coord_space="norm_1",
                  screen_width=width, screen_height=height, raw=raw), warnings + end_warnings


def _boxes(example: Example) -> list[Box]:
    """UI annotations as boxes; positions are ``[y, x, height, width]``, normalised."""
    positions = example.float_list("image/ui_annotations_positions")
    texts = example.bytes_list("image/ui_annotations_text")
    types = example.bytes_list("image/ui_annotations_ui_types")
    boxes = []
    for i in range(len(positions) // 4):
        y, x, height, width = positions[4 * i:4 * i + 4]
        text = texts[i].decode("utf-8", errors="replace").strip() if i < len(texts) else None
        role = types[i].decode("utf-8", errors="replace").strip() if i < len(types) else None
        boxes.append(Box(x, y, x + width, y + height, text=text, role=role))
    return boxes
