"""AndroidControl: GZIP TFRecord shards, one ``tf.train.Example`` per episode.

A unit is one shard file (``android_control-00000-of-00020``, no suffix); each record is one
episode with ``episode_id`` (int64), ``goal`` (the high-level task), ``screenshots`` (PNG
bytes, one per state), ``screenshot_widths`` / ``screenshot_heights``,
``accessibility_trees`` (serialized AndroidAccessibilityForest protos), ``actions`` (JSON
strings) and ``step_instructions`` (one low-level instruction per action). Inner episode ids
are the ``episode_id`` values. Traps handled:

* ``len(actions) == len(screenshots) - 1``: action t goes from ``screenshots[t]`` (s_t) to
  ``screenshots[t + 1]`` (s_t+1); there is no terminal action and the last screenshot is the
  final state. Other lengths are kept as far as they go: a step past the screenshots gets
  null frames (``no_screenshots``) and a warning, and the episode metadata records the counts.
* Coordinates (``click``, ``long_press``, optionally ``input_text``) are screen pixels: they
  are normalised by the declared ``screenshot_widths[t]`` x ``screenshot_heights[t]`` (the
  PNG's own size when those are absent); when the PNG is smaller than the screen (a
  downscaled copy), ``scale`` records the ratio. Points outside the screen are kept, warned.
* Each step keeps its low-level instruction in ``step_instruction`` ("high" vs "low" level
  tasks); a count mismatch leaves the unmatched steps without one and says so.
* Actions: click, long_press, scroll {direction} (the direction AndroidControl names, the
  way the content moves into view, not the finger's), open_app {app_name}, input_text
  {text}, navigate_home, navigate_back, wait. An unknown type or malformed JSON is a step
  reject; the other steps keep their frames (indices come from the action's position).
* Outcome: demonstrations carry no success flag and no terminal action, so the outcome stays
  ``unknown`` (never guessed). An episode whose record holds one screenshot more than actions
  ends where the demonstrator stopped, with its final state: it is ``terminated`` (Stage-1
  answers end with "done" there); any other count may be a cut record and is ``truncated``.
* A corrupt record (bad CRC, not an Example) is an episode reject naming the record and byte
  offset; reading resumes at the next valid record when the framing allows, else stops with
  a reject saying everything after it is unread. A duplicate ``episode_id`` in one shard is
  rejected rather than merged. A PNG that is not an image is a frame reject (``file_corrupt``).
* The accessibility trees are not decoded yet: their count is kept in the episode metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action
from curate.errors import ActionParseError
from curate.sources.adapters import register
from curate.sources.adapters._mobile import (
    ExampleItem,
    has_features,
    iter_examples,
    record_position,
)
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    NO_SCREENSHOTS,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    point_in_frame,
)
from curate.sources.tfrecord import Example, ExampleError, is_gzip
from curate.sources.values import number_or_none
from curate.store.frames import Frame

REQUIRED_FEATURES = frozenset({"goal", "screenshots", "actions"})
_DIRECTIONS = frozenset({"up", "down", "left", "right"})
_SIMPLE = {"navigate_home": "home", "navigate_back": "back", "wait": "wait"}
_KNOWN = ("click, long_press, scroll, open_app, input_text, navigate_home, navigate_back, "
          "wait")


@register
class AndroidControlAdapter(Adapter):
    name: ClassVar[str] = "androidcontrol"
    version: ClassVar[str] = "3"  # 3: a demonstration ending on its final state is terminated
    platform: ClassVar[str] = "mobile"
    description: ClassVar[str] = (
        "AndroidControl TFRecord shards (GZIP): one episode per record, PNG screenshots, "
        "JSON actions, low-level step instructions"
    )
    streams: ClassVar[bool] = True
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        return has_features(path, REQUIRED_FEATURES)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        gzip = is_gzip(unit.path)
        seen: set[str] = set()
        for item in iter_examples(unit, out, what="episode"):
            if item.example is not None:
                _read_episode(unit, out, item, gzip, seen)


# -- one record: one episode --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Screens:
    """The episode's states: frame (or why it is missing) and declared size per index."""

    frames: list[Frame | None]
    widths: list[int]
    heights: list[int]

    def frame(self, index: int) -> tuple[str | None, str | None]:
        if index >= len(self.frames):
            return None, NO_SCREENSHOTS
        frame = self.frames[index]
        return (frame.frame_id, None) if frame is not None else (None, FILE_CORRUPT)

    def size(self, index: int) -> tuple[tuple[int, int] | None, list[str]]:
        """Screen size for state ``index``: declared, else its PNG's, else another PNG's."""
        if index < len(self.widths) and index < len(self.heights):
            width, height = self.widths[index], self.heights[index]
            if width > 0 and height > 0:
                return (width, height), []
        frame = self.frames[index] if index < len(self.frames) else None
        if frame is not None:
            return (frame.width, frame.height), []
        other = next((f for f in self.frames if f is not None), None)
        if other is None:
            return None, []
        return (other.width, other.height), [
            "no declared size and no readable screenshot for this state: the size of "
            "another screenshot of the episode is used"]


def _episode_id(example: Example) -> str | None:
    kind = example.kind("episode_id")
    if kind == "int64_list":
        value = example.int64("episode_id")
        return None if value is None else str(value)
    if kind == "bytes_list":
        return example.text("episode_id")
    return None


def _read_episode(unit: SourceUnit, out: UnitBuilder, item: ExampleItem, gzip: bool,
                  seen: set[str]) -> None:
    assert item.example is not None
    example = item.example
    position = record_position(item.index, item.offset, gzip)
    try:
        inner = _episode_id(example) or f"record-{item.index}"
        goal = example.text("goal")
        screenshots = example.bytes_list("screenshots")
        actions = example.bytes_list("actions")
        instructions = example.bytes_list("step_instructions")
        widths = example.int64_list("screenshot_widths")
        heights = example.int64_list("screenshot_heights")
        trees = len(example.bytes_list("accessibility_trees"))
    except ExampleError as error:
        out.reject(file=unit.source_path, position=position, level="episode",
                   reason=f"unexpected feature type: {error}; this episode is left out",
                   hint="the record does not follow the AndroidControl schema")
        return
    if inner in seen:
        out.reject(file=unit.source_path, position=position, level="episode",
                   reason=f"episode_id {inner} appears a second time in this shard; the "
                          "repeat is left out (one episode per id)",
                   hint="de-duplicate the shard, or ingest the copies as separate files")
        return
    seen.add(inner)
    episode = out.episode(inner)
    episode.instruction = goal.strip() if goal and goal.strip() else None
    screens = _Screens(
        [episode.add_frame(data, file=unit.source_path,
                           position=f"{position} screenshot {index}")
         for index, data in enumerate(screenshots)], widths, heights)
    episode.metadata.update({"episode_id": inner, "record": item.index,
                             "accessibility_trees": trees})
    _check_counts(episode, len(screenshots), len(actions), len(instructions), widths, heights)
    for index, raw in enumerate(actions):
        _add_step(unit, episode, screens, index, raw, instructions, position)
    # The demonstrator stopped after the last action and its result was recorded: the
    # episode ended, it was not cut (a missing screenshot or action may be a cut record).
    episode.terminated = bool(actions) and len(actions) == len(screenshots) - 1
    episode.truncated = not episode.terminated
    out.finish(episode)


def _check_counts(episode: EpisodeBuilder, screenshots: int, actions: int, instructions: int,
                  widths: list[int], heights: list[int]) -> None:
    if actions != screenshots - 1:
        episode.metadata["count_mismatch"] = {"actions": actions, "screenshots": screenshots}
    if instructions != actions:
        episode.metadata["step_instruction_count"] = instructions
    if len(widths) != screenshots or len(heights) != screenshots:
        episode.metadata["declared_sizes"] = {"widths": len(widths), "heights": len(heights)}


def _add_step(unit: SourceUnit, episode: EpisodeBuilder, screens: _Screens, index: int,
              raw: bytes, instructions: list[bytes], position: str) -> None:
    where = f"{position} action {index}"
    try:
        action, warnings = _action(raw, screens, index)
    except ActionParseError as error:
        episode.reject(file=unit.source_path, position=where,
                       reason=f"cannot read the action: {error}",
                       hint="the step is left out; the other steps keep their screenshots")
        return
    frame_id, frame_missing = screens.frame(index)
    next_id, next_missing = screens.frame(index + 1)
    if index + 1 >= len(screens.frames):
        warnings.append(f"action {index} has no screenshot after it: the record holds "
                        f"{len(screens.frames)} screenshots for more actions than that")
    instruction = None
    if index < len(instructions):
        instruction = instructions[index].decode("utf-8", errors="replace").strip() or None
    else:
        warnings.append(f"no step instruction for action {index} "
                        f"({len(instructions)} instructions in the record)")
    episode.add_step(action, source_position=where, frame_id=frame_id,
                     frame_missing=frame_missing, next_frame_id=next_id,
                     next_frame_missing=next_missing, step_instruction=instruction,
                     warnings=warnings)


# -- actions ------------------------------------------------------------------------------------


def _action(raw: bytes, screens: _Screens, index: int) -> tuple[Action, list[str]]:
    """One AndroidControl JSON action; raises ActionParseError with what was expected."""
    text = raw.decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ActionParseError(f"not JSON ({error.msg}): {text[:60]!r}") from None
    if not isinstance(value, dict):
        raise ActionParseError(f"expected a JSON object, got {text[:60]!r}")
    kind = value.get("action_type")
    if kind in _SIMPLE:
        return Action(type=_SIMPLE[kind], raw=text), []
    if kind in ("click", "long_press"):
        return _pointer("click" if kind == "click" else "long_press", value, text, screens,
                        index)
    if kind == "scroll":
        direction = value.get("direction")
        if direction not in _DIRECTIONS:
            raise ActionParseError(f"scroll direction {direction!r}; expected up, down, left "
                                   "or right")
        return Action(type="scroll", direction=direction, raw=text), []
    if kind == "open_app":
        return Action(type="open_app", app=_string(value, "app_name"), raw=text), []
    if kind == "input_text":
        action = Action(type="type", text=_string(value, "text", allow_empty=True), raw=text)
        if all(number_or_none(value.get(axis)) is not None for axis in ("x", "y")):
            return _pointer("type", value, text, screens, index, base=action)
        return action, []
    raise ActionParseError(f"unknown action_type {kind!r}; expected one of {_KNOWN}")


def _string(value: dict[str, Any], key: str, *, allow_empty: bool = False) -> str:
    text = value.get(key)
    if not isinstance(text, str) or (not allow_empty and not text.strip()):
        raise ActionParseError(f"{value.get('action_type')} needs a string {key!r}, got "
                               f"{text!r}")
    return text


def _pointer(kind: str, value: dict[str, Any], text: str, screens: _Screens, index: int,
             base: Action | None = None) -> tuple[Action, list[str]]:
    px, py = number_or_none(value.get("x")), number_or_none(value.get("y"))
    if px is None or py is None:
        raise ActionParseError(f"{value.get('action_type')} needs numeric x and y (screen "
                               f"pixels), got x={value.get('x')!r} y={value.get('y')!r}")
    action = base or Action(type=kind, raw=text)
    size, notes = screens.size(index)
    if size is None:
        return replace(action, px=px, py=py, coord_space="screen_px"), [
            "no screen size for this step (no declared width/height, no readable "
            "screenshot): x/y left empty, px/py kept"]
    width, height = size
    x, y, warnings = point_in_frame(px, py, width=width, height=height)
    frame = screens.frames[index] if index < len(screens.frames) else None
    scale = round(frame.width / width, 6) if frame is not None else None
    return replace(action, x=x, y=y, px=px, py=py, coord_space="screen_px", screen_width=width,
                   screen_height=height, scale=scale), [*notes, *warnings]
