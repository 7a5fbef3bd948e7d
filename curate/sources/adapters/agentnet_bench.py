"""AgentNetBench offline-evaluation episodes (OpenCUA ``evaluation/agentnetbench``).

A unit is one episode JSON file; screenshots live in ``images/`` beside it. Top level:
``task_id``, ``user_task_description``, ``high_level_task_description``, ``steps`` and
optionally ``meta_info``. Each step: ``step_num``, ``image``, ``action`` (OpenCUA code),
``inner_monologue`` {``observation``, ``thought``, ``low_level_instruction``},
``ground_truth_actions`` and ``alternative_options``. See docs/sources/agentnet_bench.md.

* The action is the benchmark's **ground truth** (what the evaluator scores), not the code:
  the two disagree (the code types ``"... this: '"``, the ground truth ``"... this: "``);
  the code is kept verbatim in ``raw``. ``moveTo`` + ``dragTo`` is one drag, ``moveTo`` +
  ``scroll`` one scroll, ``computer.terminate`` is ``done``/``fail``.
* Boxes: ``metadata.bboxes[0].rel_bbox`` is ``[x, y, width, height]`` in 0-1 of the
  screenshot; it becomes the target box (x0, y0, x1, y1).
* ``alternative_options`` (lists of action lists, most empty) are other correct answers: each
  that folds into one action is kept in episode metadata ``alternatives`` keyed by step index
  (the contract of :mod:`curate.rewards.alternatives`), which exports add to the reference step so
  the rewards take the best match; one that does not fold is listed in ``alternatives_skipped``.
* ``step_num`` is sparse (sub-sampled): the next state of a step is the next record's
  screenshot only when its ``step_num`` is the next number; otherwise ``record_missing``.
* ``meta_info.screen_resolution`` does not match the screenshots (1024x640 vs 1212x758) and
  ``action_frequency`` describes the full, unsampled trajectory: kept in metadata, unused.
* ``inner_monologue.low_level_instruction`` is the step instruction, ``thought`` the thought;
  ``observation`` describes the screen *before* the action, so it is kept as state text in
  episode metadata ``state_text`` (steps.observation means the result of the action).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from curate.errors import ActionParseError, SourceError
from curate.rewards.entrypoints import action_json
from curate.sources.adapters import register
from curate.sources.adapters._opencua import combine, ground_truth_call
from curate.sources.adapters.base import (
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    RECORD_MISSING,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    load_json,
    text_head,
)
from curate.sources.values import text_or_none
from curate.store.frames import Frame

IMAGES_DIR = "images"


@register
class AgentNetBenchAdapter(Adapter):
    name: ClassVar[str] = "agentnet_bench"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "desktop"
    description: ClassVar[str] = ("AgentNetBench episode JSON (ground_truth_actions, "
                                  "alternative_options) with images/ beside it")
    priority: ClassVar[int] = 30

    def claims(self, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() == ".json"):
            return False
        head = text_head(path)
        return head is not None and '"ground_truth_actions"' in head and '"steps"' in head

    def input_files(self, unit: SourceUnit) -> list[Path]:
        images = unit.path.parent / IMAGES_DIR
        stem = unit.path.stem
        shots = sorted(images.glob(f"{stem}_*")) if images.is_dir() else []
        own = [unit.path] if unit.path.is_file() else []
        return [*own, *(p for p in shots if p.is_file())]

    def image_files(self, unit: SourceUnit) -> list[Path]:
        return [path for path in self.input_files(unit) if path != unit.path]

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        document = load_json(unit.path, unit)
        steps = document.get("steps") if isinstance(document, dict) else None
        if not isinstance(steps, list):
            raise SourceError("expected an object with a 'steps' list", file=unit.source_path,
                              hint="an AgentNetBench episode file has task_id and steps")
        episode = out.episode()
        _episode_fields(episode, document)
        frames = _frames(unit, episode, steps)
        state_text: dict[str, str] = {}
        alternatives: dict[str, list[dict[str, Any]]] = {}
        skipped: dict[str, str] = {}
        for position, record in enumerate(steps):
            where = f"steps[{position}]"
            if not isinstance(record, dict):
                episode.reject(file=unit.source_path, position=where,
                               reason=f"expected a step object, got {type(record).__name__}",
                               hint="each item of steps is one object")
                continue
            where = f"steps[{position}] (step_num {record.get('step_num')})"
            try:
                actions, notes = combine(
                    [ground_truth_call(a) for a in record.get("ground_truth_actions") or []],
                    raw=record.get("action") if isinstance(record.get("action"), str) else None)
            except ActionParseError as error:
                episode.reject(file=unit.source_path, position=where, reason=str(error),
                               hint="the step is skipped; its screenshot stays unused")
                continue
            if len(actions) != 1:
                episode.reject(file=unit.source_path, position=where,
                               reason=f"ground truth folds into {len(actions)} actions, not one",
                               hint="a benchmark step is scored as one action")
                continue
            index = len(episode.steps)
            monologue = record.get("inner_monologue")
            monologue = monologue if isinstance(monologue, dict) else {}
            frame, missing = frames[position]
            next_frame, next_missing = _next_state(steps, frames, position)
            episode.add_step(
                actions[0], source_position=where,
                frame_id=frame.frame_id if frame else None, frame_missing=missing,
                next_frame_id=next_frame.frame_id if next_frame else None,
                next_frame_missing=next_missing,
                thought=text_or_none(monologue.get("thought")),
                step_instruction=text_or_none(monologue.get("low_level_instruction")),
                warnings=notes)
            if text_or_none(monologue.get("observation")):
                state_text[str(index)] = monologue["observation"]
            options, reasons = _alternatives(record.get("alternative_options"))
            if options:
                alternatives[str(index)] = options
            if reasons:
                skipped[str(index)] = "; ".join(reasons)
        if not episode.steps:
            out.drop_episode(episode, file=unit.source_path, position="steps",
                             reason="no usable step", hint="every step was rejected")
            return
        last = episode.steps[-1].action.type
        if last in {"done", "fail"}:
            episode.terminated = True
            episode.outcome = "success" if last == "done" else "fail"
        for key, value in (("state_text", state_text), ("alternatives", alternatives),
                           ("alternatives_skipped", skipped)):
            if value:
                episode.metadata[key] = value


def _sibling(unit: SourceUnit, name: str) -> str:
    """A file beside the unit's file, named the way the store names sources."""
    parent = unit.source_path.rpartition("/")[0]
    return f"{parent}/{name}" if parent else name


def _episode_fields(episode: EpisodeBuilder, document: dict[str, Any]) -> None:
    episode.instruction = (text_or_none(document.get("high_level_task_description"))
                           or text_or_none(document.get("user_task_description")))
    for key in ("task_id", "user_task_description", "meta_info"):
        if document.get(key) is not None:
            episode.metadata[key] = document[key]
    episode.metadata["step_nums"] = [s.get("step_num") for s in document["steps"]
                                     if isinstance(s, dict)]


def _frames(unit: SourceUnit, episode: EpisodeBuilder, steps: list[Any]
            ) -> list[tuple[Frame | None, str | None]]:
    images = unit.path.parent / IMAGES_DIR
    found: list[tuple[Frame | None, str | None]] = []
    for record in steps:
        name = record.get("image") if isinstance(record, dict) else None
        if not isinstance(name, str) or not name:
            found.append((None, FILE_MISSING))
            continue
        path = images / name
        shown = _sibling(unit, f"{IMAGES_DIR}/{name}")
        if not path.is_file():
            episode.reject(file=shown, position="", level="frame",
                           reason="screenshot file is missing",
                           hint=f"put it in {IMAGES_DIR}/ beside the episode file")
            found.append((None, FILE_MISSING))
            continue
        frame = episode.add_frame_file(path, name=shown)
        found.append((frame, None if frame else "file_corrupt"))
    return found


def _next_state(steps: list[Any], frames: list[tuple[Frame | None, str | None]],
                position: int) -> tuple[Frame | None, str | None]:
    if position + 1 >= len(steps):
        return None, FINAL_STATE_NOT_RECORDED
    here, there = steps[position], steps[position + 1]
    numbers = (here.get("step_num") if isinstance(here, dict) else None,
               there.get("step_num") if isinstance(there, dict) else None)
    if not (isinstance(numbers[0], int) and isinstance(numbers[1], int)
            and numbers[1] == numbers[0] + 1):
        return None, RECORD_MISSING  # the benchmark sub-sampled the step in between away
    return frames[position + 1]


def _alternatives(options: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if not isinstance(options, list):
        return [], [] if options is None else [f"alternative_options is not a list: {options!r}"]
    kept: list[dict[str, Any]] = []
    reasons: list[str] = []
    for number, option in enumerate(options):
        items = option if isinstance(option, list) else [option]
        try:
            actions, _ = combine([ground_truth_call(a) for a in items], raw=None)
        except ActionParseError as error:
            reasons.append(f"option {number}: {error}")
            continue
        if len(actions) != 1:
            reasons.append(f"option {number} folds into {len(actions)} actions, not one")
            continue
        kept.append(action_json(actions[0]))
    return kept, reasons
