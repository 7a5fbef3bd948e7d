"""GUI-Odyssey: one JSON annotation file per episode, screenshots in a sibling folder.

The release lays out ``annotations/<episode_id>.json`` beside ``screenshots/*.png``. A unit
is one annotation file: ``episode_id``, ``device_info`` (``w``, ``h``: the screen in pixels,
``device_name``, ...), ``task_info`` (``instruction``, ``task``, ``meta_task``, ``category``,
``app``), ``step_length`` and ``steps`` (``step``, ``screenshot``, ``action``, ``info``,
``ps``, and in the later release ``intention``, ``low_level_instruction``, ``description``,
``context``). Traps handled:

* Coordinates in ``info`` are on a 0–1000 grid of the screen (not pixels): x, y are divided
  by 1000 (``coord_space`` ``norm_1000``); the device's pixel size is kept as the screen size
  and ``scale`` is frame pixels per grid unit. Points off the grid are kept and warned.
* ``CLICK`` / ``LONG_PRESS`` ``info`` is ``[[x, y]]`` or ``[[x, y], [x, y]]`` (the point
  repeated) or a system key string: ``KEY_HOME`` -> home, ``KEY_BACK`` -> back,
  ``KEY_APPSELECT`` / ``KEY_RECENT`` -> key ``app_switch``. ``SCROLL`` ``info`` is the
  finger's start and end: a ``swipe`` whose direction is the finger's movement along the
  primary axis (``ps`` holds the full trajectory and stays in ``raw``). ``TYPE`` (``TEXT`` in
  the later release) carries the text in ``info``. ``COMPLETE`` -> done and ``INCOMPLETE``
  (``IMPOSSIBLE`` in the first README) -> fail, with the annotator's ``ps`` note as the
  text. ``HOME`` / ``BACK`` and ``KEY_*`` as action names are read too. Anything else is a
  step reject naming the accepted values.
* Per step, ``low_level_instruction`` goes to ``step_instruction`` and ``intention`` (the
  annotator's first-person reasoning) to ``thought``; ``description`` (a caption of the screen
  before the action) has no column and is left out.
* Screenshots are states *before* each action: s_t+1 is the next step's screenshot; the last
  step (COMPLETE/INCOMPLETE) has none after it (``final_state_not_recorded``). Screenshots are
  looked up in ``../screenshots/``, then ``./screenshots/``, then beside the file; a missing
  one is ``file_missing`` (one frame reject per episode lists the count), a corrupt one
  ``file_corrupt``. Only plain file names are looked up, never paths.
* Outcome from the terminal action the annotator chose (COMPLETE success, INCOMPLETE fail);
  no terminal action: unknown and truncated. Steps out of order (by ``step``) are sorted;
  a repeated ``step`` number is a step reject.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, canonical_json
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters._mobile import swipe_direction
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    load_json,
    point_in_frame,
)
from curate.sources.values import number_or_none, text_or_none
from curate.store.frames import Frame

GRID = 1000.0
MAX_ANNOTATION_BYTES = 16 << 20
_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "KEY_HOME": ("home", ()), "KEY_BACK": ("back", ()),
    "KEY_APPSELECT": ("key", ("app_switch",)), "KEY_RECENT": ("key", ("app_switch",)),
}
_NAMED = {"HOME": "KEY_HOME", "BACK": "KEY_BACK", **{key: key for key in _KEYS}}
_ACCEPTED = ("CLICK, LONG_PRESS, SCROLL, TYPE/TEXT, COMPLETE, INCOMPLETE/IMPOSSIBLE, HOME, "
             "BACK, KEY_HOME, KEY_BACK, KEY_APPSELECT, KEY_RECENT")


@register
class GuiOdysseyAdapter(Adapter):
    name: ClassVar[str] = "gui_odyssey"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "mobile"
    description: ClassVar[str] = (
        "GUI-Odyssey annotation JSON (one episode per file, 0-1000 grid coordinates, "
        "screenshots in ../screenshots)"
    )
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() == ".json"):
            return False
        try:
            if path.stat().st_size > MAX_ANNOTATION_BYTES:
                return False
            value = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return False
        return _is_annotation(value)

    def input_files(self, unit: SourceUnit) -> list[Path]:
        """The annotation and the screenshots it names that exist."""
        try:
            value = json.loads(unit.path.read_bytes())
        except (OSError, ValueError):
            return [unit.path] if unit.path.is_file() else []
        steps = value.get("steps") if isinstance(value, dict) else None
        names = [s.get("screenshot") for s in steps or [] if isinstance(s, dict)]
        found = (_screenshot(unit.path, name) for name in names if isinstance(name, str))
        return [unit.path, *sorted({path.absolute() for path in found if path is not None})]

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        value = load_json(unit.path, unit)
        if not _is_annotation(value):
            raise SourceError("not a GUI-Odyssey annotation: expected an object with "
                              "device_info, task_info and a list of steps",
                              file=unit.source_path, hint="pass the annotations/*.json files")
        inner = str(value.get("episode_id") or "") or None
        episode = out.episode()
        _describe(episode, value, inner)
        steps = _ordered_steps(unit, episode, value["steps"])
        if not steps:
            raise SourceError("the annotation has no step", file=unit.source_path,
                              hint="the episode is empty; re-export it")
        frames = _frames(unit, episode, steps)
        screen = _screen(value.get("device_info"))
        for k, step in enumerate(steps):
            _add_step(unit, episode, step, frames, k, screen)
        _finish(episode, value)


def _is_annotation(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("steps"), list)
            and isinstance(value.get("device_info"), dict)
            and isinstance(value.get("task_info"), dict))


def _describe(episode: EpisodeBuilder, value: dict[str, Any], inner: str | None) -> None:
    task = value["task_info"]
    instruction = task.get("instruction") or task.get("task")
    episode.instruction = instruction.strip() if isinstance(instruction, str) else None
    device = value["device_info"]
    episode.metadata.update({
        key: item for key, item in (
            ("episode_id", inner), ("category", task.get("category")), ("apps", task.get("app")),
            ("meta_task", task.get("meta_task")), ("task", task.get("task")),
            ("device_name", device.get("device_name")), ("step_length", value.get("step_length")),
        ) if item is not None
    })


# -- steps and screenshots ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    number: int  # the step's index in the file's list
    record: dict[str, Any]

    @property
    def position(self) -> str:
        step = self.record.get("step")
        return f"steps[{self.number}]" + (f" (step {step})" if step is not None else "")


def _ordered_steps(unit: SourceUnit, episode: EpisodeBuilder, steps: list[Any]) -> list[_Step]:
    kept: dict[int, _Step] = {}
    for number, record in enumerate(steps):
        if not isinstance(record, dict):
            episode.reject(file=unit.source_path, position=f"steps[{number}]",
                           reason=f"expected a step object, got {type(record).__name__}",
                           hint="the step is left out")
            continue
        key = record.get("step")
        order = key if isinstance(key, int) and not isinstance(key, bool) else number
        if order in kept:
            episode.reject(file=unit.source_path, position=f"steps[{number}]",
                           reason=f"step {order} repeats {kept[order].position}; the repeat is "
                                  "left out", hint="de-duplicate the annotation's steps")
            continue
        kept[order] = _Step(number, record)
    return [kept[order] for order in sorted(kept)]


def _screenshot(annotation: Path, name: str) -> Path | None:
    if not name or Path(name).name != name:
        return None
    for folder in (annotation.parent.parent / "screenshots", annotation.parent / "screenshots",
                   annotation.parent):
        if (folder / name).is_file():
            return folder / name
    return None


def _frames(unit: SourceUnit, episode: EpisodeBuilder, steps: list[_Step]
            ) -> list[tuple[Frame | None, str | None]]:
    """Each step's screenshot, or why it is missing; absent files are counted in one reject."""
    result: list[tuple[Frame | None, str | None]] = []
    absent: list[str] = []
    for step in steps:
        name = step.record.get("screenshot")
        if not isinstance(name, str) or not name:
            result.append((None, NO_SCREENSHOTS))
            continue
        path = _screenshot(unit.path, name)
        if path is None:
            absent.append(name)
            result.append((None, FILE_MISSING))
            continue
        frame = _add_frame(unit, episode, path)
        result.append((frame, None if frame else FILE_CORRUPT))
    if absent:
        episode.reject(file=unit.source_path, position="", level="frame",
                       reason=f"{len(absent)} screenshot(s) named in the annotation are not in "
                              f"../screenshots, ./screenshots or beside it (first: "
                              f"{absent[0]!r})",
                       hint="put the release's screenshots folder next to the annotations "
                            "folder; the steps are kept without those frames")
    return result


def _add_frame(unit: SourceUnit, episode: EpisodeBuilder, path: Path) -> Frame | None:
    """Keep a screenshot, naming it from the dataset root (it lies outside the unit)."""
    relative = os.path.relpath(path, unit.path.parent)
    name = posixpath.normpath(posixpath.join(posixpath.dirname(unit.source_path),
                                             Path(relative).as_posix()))
    return episode.add_frame_file(path, name=name)


def _screen(device: Any) -> tuple[int, int] | None:
    if not isinstance(device, dict):
        return None
    width, height = device.get("w"), device.get("h")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    return None


def _add_step(unit: SourceUnit, episode: EpisodeBuilder, step: _Step,
              frames: list[tuple[Frame | None, str | None]], k: int,
              screen: tuple[int, int] | None) -> None:
    frame, missing = frames[k]
    if k + 1 < len(frames):
        next_frame, next_missing = frames[k + 1]
    else:
        next_frame, next_missing = None, FINAL_STATE_NOT_RECORDED
    try:
        action, warnings = convert_action(step.record, frame, screen)
    except ActionParseError as error:
        episode.reject(file=unit.source_path, position=step.position,
                       reason=f"cannot read the action: {error}",
                       hint="the step is left out; its neighbours keep their screenshots")
        return
    episode.add_step(
        action, source_position=step.position,
        frame_id=frame.frame_id if frame else None, frame_missing=missing,
        next_frame_id=next_frame.frame_id if next_frame else None,
        next_frame_missing=next_missing, warnings=warnings,
        thought=text_or_none(step.record.get("intention"), strip=True),
        step_instruction=text_or_none(step.record.get("low_level_instruction"), strip=True))


def _finish(episode: EpisodeBuilder, value: dict[str, Any]) -> None:
    if not episode.steps:
        return
    last = episode.steps[-1].action.type
    if last in ("done", "fail"):
        episode.terminated = True
        episode.outcome = "success" if last == "done" else "fail"
    else:
        episode.truncated = True
    kinds = [step.action.type for step in episode.steps[:-1]]
    if "done" in kinds or "fail" in kinds:
        episode.metadata["steps_after_terminal_action"] = True
    length = value.get("step_length")
    if isinstance(length, int) and length != len(value["steps"]):
        episode.metadata["steps_found"] = len(value["steps"])


# -- actions ------------------------------------------------------------------------------------


def convert_action(record: dict[str, Any], frame: Frame | None,
                   screen: tuple[int, int] | None) -> tuple[Action, list[str]]:
    """One step's action; raises ActionParseError naming what was expected."""
    name = record.get("action")
    info, note = record.get("info"), text_or_none(record.get("ps"), strip=True)
    raw = canonical_json({"action": name, "info": info, "ps": record.get("ps")})
    if not isinstance(name, str):
        raise ActionParseError(f"'action' should be a string, got {name!r}")
    kind = name.strip().upper()
    if kind in ("CLICK", "LONG_PRESS"):
        if isinstance(info, str) and info.strip().upper() in _KEYS:
            return _key(info.strip().upper(), raw), []
        x, y = _points(info, kind, 1)[0]
        return _place(Action(type="click" if kind == "CLICK" else "long_press", raw=raw),
                      [(x, y)], frame, screen)
    if kind == "SCROLL":
        (x1, y1), (x2, y2) = _points(info, kind, 2)[:2]
        action = Action(type="swipe", direction=swipe_direction(x2 - x1, y2 - y1), raw=raw)
        return _place(action, [(x1, y1), (x2, y2)], frame, screen)
    if kind in ("TYPE", "TEXT"):
        if not isinstance(info, str):
            raise ActionParseError(f"{kind} needs the typed text in 'info', got {info!r:.60}")
        return Action(type="type", text=info, raw=raw), []
    if kind == "COMPLETE":
        return Action(type="done", text=note, raw=raw), []
    if kind in ("INCOMPLETE", "IMPOSSIBLE"):
        return Action(type="fail", text=note, raw=raw), []
    if kind in _NAMED:
        return _key(_NAMED[kind], raw), []
    raise ActionParseError(f"unknown action {name!r}; expected one of {_ACCEPTED}")


def _key(name: str, raw: str) -> Action:
    kind, keys = _KEYS[name]
    return Action(type=kind, keys=keys, raw=raw)


def _points(info: Any, kind: str, count: int) -> list[tuple[float, float]]:
    """At least ``count`` ``[x, y]`` points on the 0-1000 grid from ``info``."""
    points: list[tuple[float, float]] = []
    for item in info if isinstance(info, list) else []:
        pair = [number_or_none(v) for v in item] if isinstance(item, list | tuple) else []
        if len(pair) != 2 or pair[0] is None or pair[1] is None:
            break
        points.append((pair[0], pair[1]))
    if len(points) < count:
        shape = "[[x, y]]" if count == 1 else "[[x1, y1], [x2, y2]]"
        raise ActionParseError(f"{kind} needs {shape} on the 0-1000 grid in 'info', got "
                               f"{info!r:.60}")
    return points


def _place(action: Action, points: list[tuple[float, float]], frame: Frame | None,
           screen: tuple[int, int] | None) -> tuple[Action, list[str]]:
    warnings: list[str] = []
    placed: list[float] = []
    for px, py in points:
        x, y, notes = point_in_frame(px, py, width=GRID, height=GRID)
        placed += [x, y]
        warnings += notes
    width, height = screen if screen else (None, None)
    scale = round(frame.width / GRID, 6) if frame else None
    values: dict[str, Any] = {"x": placed[0], "y": placed[1], "px": points[0][0],
                              "py": points[0][1]}
    if len(points) > 1:
        values.update(x2=placed[2], y2=placed[3], px2=points[1][0], py2=points[1][1])
    return replace(action, coord_space="norm_1000", screen_width=width, screen_height=height,
                   scale=scale, **values), warnings
