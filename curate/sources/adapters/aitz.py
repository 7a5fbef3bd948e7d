"""Android in the Zoo (AITZ): AITW episodes with Chain-of-Action-Thought annotations.

A unit is one episode file ``<CATEGORY>-<episode_id>.json``: a JSON list of step objects with
``episode_id``, ``episode_length``, ``step_id``, ``instruction``, AITW's action
(``result_action_type``, ``result_action_text``, ``result_touch_yx``, ``result_lift_yx``, the
points as JSON strings ``"[y, x]"`` in 0-1, ``[-1, -1]`` when unused), ``image_path``
(relative to the dataset root), the OCR'd ``ui_positions``/``ui_text``/``ui_types`` and the
CoAT fields ``coat_screen_desc``, ``coat_action_think``, ``coat_action_desc``,
``coat_action_result``. See docs/sources/aitz.md.

* Action types are AITW's: 3 TYPE, 4 DUAL_POINT (a tap when touch and lift are within 0.04,
  else a swipe in the finger's direction), 5 BACK, 6 HOME, 7 ENTER, 10 COMPLETE, 11
  IMPOSSIBLE; any other code is a step reject.
* ``coat_action_desc`` is the step instruction, ``coat_action_think`` the thought;
  ``coat_screen_desc`` (the screen before the action) and ``coat_action_result`` (the
  outcome the annotator expected) are kept in episode metadata ``state_text`` and
  ``expected_result`` keyed by step index (steps.observation is what the action returned).
* Screenshots: the file name of ``image_path`` beside the JSON (the repository's example
  layout), else ``image_path`` under the folders above it.
* ``ui_positions`` are not used for targets: their units are not documented (the example's
  values are neither 0-1 nor the screenshot's pixels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, canonical_json
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters._mobile import swipe_direction
from curate.sources.adapters.aitw import ACTION_NAMES, is_tap
from curate.sources.adapters.base import (
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    RECORD_MISSING,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    load_json,
    point_in_frame,
    text_head,
)
from curate.sources.values import text_or_none
from curate.store.frames import Frame

_SIMPLE: dict[int, tuple[str, tuple[str, ...]]] = {
    5: ("back", ()), 6: ("home", ()), 7: ("key", ("enter",)), 10: ("done", ()), 11: ("fail", ())}
PARENT_LEVELS = 4  # how far up image_path is looked for


@register
class AitzAdapter(Adapter):
    name: ClassVar[str] = "aitz"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "mobile"
    description: ClassVar[str] = ("Android in the Zoo (AITZ) episode JSON: AITW actions with "
                                  "CoAT screen descriptions, thoughts and action descriptions")
    priority: ClassVar[int] = 30

    def claims(self, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() == ".json"):
            return False
        head = text_head(path)
        return head is not None and '"result_action_type"' in head and '"coat_' in head

    def input_files(self, unit: SourceUnit) -> list[Path]:
        if not unit.path.is_file():
            return []
        try:
            records = json.loads(unit.path.read_bytes())
        except (OSError, ValueError):
            return [unit.path]
        found = (_image(unit.path, r.get("image_path")) for r in records
                 if isinstance(r, dict)) if isinstance(records, list) else ()
        return [unit.path, *sorted({p for p in found if p is not None})]

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        records = load_json(unit.path, unit)
        if not isinstance(records, list) or not records:
            raise SourceError("expected a non-empty JSON list of steps", file=unit.source_path,
                              hint="an AITZ episode file is a list of step objects")
        steps = [(i, r) for i, r in enumerate(records) if _step_object(unit, out, i, r)]
        steps.sort(key=lambda item: (_step_id(item[1]), item[0]))
        if not steps:
            raise SourceError("no step object in the list", file=unit.source_path,
                              hint="each item needs step_id and result_action_type")
        first = steps[0][1]
        episode = out.episode()
        episode.instruction = first.get("instruction") or None
        for key in ("episode_id", "episode_length"):
            if first.get(key) is not None:
                episode.metadata[key] = first[key]
        frames = [_frame(unit, episode, record) for _, record in steps]
        state_text: dict[str, str] = {}
        expected: dict[str, str] = {}
        for number, (position, record) in enumerate(steps):
            where = f"[{position}] (step_id {record.get('step_id')})"
            frame, missing = frames[number]
            try:
                action, warnings = _action(record, frame)
            except ActionParseError as error:
                episode.reject(file=unit.source_path, position=where, reason=str(error),
                               hint="the step is skipped; the rest of the episode is kept")
                continue
            next_frame, next_missing = _next(steps, frames, number)
            index = len(episode.steps)
            episode.add_step(action, source_position=where,
                             frame_id=frame.frame_id if frame else None, frame_missing=missing,
                             next_frame_id=next_frame.frame_id if next_frame else None,
                             next_frame_missing=next_missing,
                             step_instruction=text_or_none(record.get("coat_action_desc")),
                             thought=text_or_none(record.get("coat_action_think")),
                             warnings=warnings)
            if text_or_none(record.get("coat_screen_desc")):
                state_text[str(index)] = record["coat_screen_desc"]
            if text_or_none(record.get("coat_action_result")):
                expected[str(index)] = record["coat_action_result"]
        if not episode.steps:
            out.drop_episode(episode, file=unit.source_path, position="",
                             reason="no usable step", hint="every step was rejected")
            return
        _outcome(episode, first, len(steps))
        for key, value in (("state_text", state_text), ("expected_result", expected)):
            if value:
                episode.metadata[key] = value


def _step_id(record: dict[str, Any]) -> int:
    value = record.get("step_id")
    return value if isinstance(value, int) else 1 << 30


def _step_object(unit: SourceUnit, out: UnitBuilder, position: int, record: Any) -> bool:
    if isinstance(record, dict) and "result_action_type" in record:
        return True
    out.reject(file=unit.source_path, position=f"[{position}]",
               reason="expected a step object with result_action_type",
               hint="each item of the list is one step")
    return False


def _image(json_path: Path, image_path: Any) -> Path | None:
    if not isinstance(image_path, str) or not image_path:
        return None
    beside = json_path.parent / Path(image_path).name
    if beside.is_file():
        return beside
    for parent in list(json_path.parents)[:PARENT_LEVELS]:
        candidate = parent / image_path
        if candidate.is_file():
            return candidate
    return None


def _frame(unit: SourceUnit, episode: EpisodeBuilder, record: dict[str, Any]
           ) -> tuple[Frame | None, str | None]:
    name = record.get("image_path")
    path = _image(unit.path, name)
    if path is None:
        episode.reject(file=str(name), position="", level="frame",
                       reason="screenshot file is missing",
                       hint="put it beside the episode JSON or under the dataset root")
        return None, FILE_MISSING
    frame = episode.add_frame_file(path)
    return frame, None if frame else "file_corrupt"


def _next(steps: list[tuple[int, dict[str, Any]]],
          frames: list[tuple[Frame | None, str | None]], number: int
          ) -> tuple[Frame | None, str | None]:
    if number + 1 >= len(steps):
        return None, FINAL_STATE_NOT_RECORDED
    here, there = _step_id(steps[number][1]), _step_id(steps[number + 1][1])
    if there != here + 1:
        return None, RECORD_MISSING
    return frames[number + 1]


def _point(record: dict[str, Any], key: str) -> tuple[float, float]:
    value = record.get(key)
    try:
        pair: Any = json.loads(value) if isinstance(value, str) else value
        y, x = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise ActionParseError(f"{key} should be \"[y, x]\", got {value!r}") from None
    return x, y


def _action(record: dict[str, Any], frame: Frame | None) -> tuple[Action, list[str]]:
    code = record.get("result_action_type")
    raw = canonical_json({k: record.get(k) for k in ("result_action_type", "result_action_text",
                                                     "result_touch_yx", "result_lift_yx")})
    if code == 3:
        text = record.get("result_action_text")
        if not isinstance(text, str):
            raise ActionParseError("TYPE (3) without result_action_text")
        return Action("type", text=text, raw=raw), []
    if code == 4:
        touch, lift = _point(record, "result_touch_yx"), _point(record, "result_lift_yx")
        size = (frame.width, frame.height) if frame else (None, None)
        x, y, warnings = point_in_frame(touch[0], touch[1], width=1.0, height=1.0)
        if is_tap(touch, lift):
            return Action("click", x=x, y=y, px=touch[0], py=touch[1], coord_space="norm_1",
                          screen_width=size[0], screen_height=size[1], raw=raw), warnings
        x2, y2, more = point_in_frame(lift[0], lift[1], width=1.0, height=1.0)
        return Action("swipe", x=x, y=y, x2=x2, y2=y2,
                      direction=swipe_direction(lift[0] - touch[0], lift[1] - touch[1]),
                      px=touch[0], py=touch[1], px2=lift[0], py2=lift[1], coord_space="norm_1",
                      screen_width=size[0], screen_height=size[1], raw=raw), warnings + more
    if isinstance(code, int) and code in _SIMPLE:
        kind, keys = _SIMPLE[code]
        return Action(kind, keys=keys, raw=raw), []
    known = ", ".join(f"{value} {name}" for value, name in ACTION_NAMES.items())
    raise ActionParseError(f"unknown result_action_type {code!r}; expected one of {known}")


def _outcome(episode: EpisodeBuilder, first: dict[str, Any], count: int) -> None:
    last = episode.steps[-1].action.type
    if last in {"done", "fail"}:
        episode.terminated = True
        episode.outcome = "success" if last == "done" else "fail"
    length = first.get("episode_length")
    if isinstance(length, int) and count < length:
        episode.truncated = True
        episode.metadata["missing_steps"] = length - count
