"""SeeAct's per-action Mind2Web folders (``seeact``, platform web).

SeeAct (OSU-NLP-Group/SeeAct, src/offline_experiments/screenshot_generation/*.py and
data/examples/) writes one folder per Mind2Web action, named
``<annotation_id>_<action_uid>``, holding:

* ``queries.jsonl``: one line per multiple-choice batch (``multichoice_id`` = line index),
  each a copy of the Mind2Web action sample (``confirmed_task``, ``website``,
  ``annotation_id``, ``action_uid``, ``operation``, ``pos_candidates``, ``neg_candidates``,
  ``previous_actions``) plus the batch's ``choices`` (``[backend_node_id, text]`` pairs);
* ``images/<batch>.jpg``: the full-page "before" screenshot cropped to the batch's
  candidates: full width, from 1024 px above the highest candidate to 1024 px below the
  lowest (clipped to the page);
* ``prediction*.jsonl``: a model's answers per batch (``multichoice_id``, ``gpt_output``,
  ``prompt``), present once an experiment ran.

A folder of such folders (an experiment's output) is one unit: the folders of one
``annotation_id`` are one episode, ordered by how many ``previous_actions`` each has; a
single action folder given alone is a one-step unit. See docs/sources/seeact.md.

Traps handled:

* the screenshots are crops: the target box (page CSS px) is moved up by the crop's top
  edge, recomputed from the boxes of the batch's candidates as SeeAct computes it; s_t is
  the image of the batch that holds the positive candidate;
* a step's own description is not in its folder: it is the ``previous_actions`` entry of a
  later action of the task, and is taken from there when one exists;
* the folders hold the actions SeeAct selected, not always the whole task: step indices
  that are absent are listed (``metadata.missing_steps``) and the episode is truncated;
* predictions are a model's answers, not the demonstration: they go to metadata
  (``predictions``: batch, element letter, action, value), never into the steps;
* bad lines, a folder name that disagrees with its records, an unknown operation and a
  missing image are rejected one by one with file, position and reason.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    RECORD_MISSING,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    images_in,
    iter_jsonl,
)
from curate.sources.adapters.mind2web import (
    _ActionInput,
    _candidate,
    _maybe_json,
    _Shot,
    _start_episode,
    _TaskBuilder,
)

QUERIES = "queries.jsonl"
IMAGES = "images"
CROP_MARGIN = 1024  # px SeeAct keeps above and below the batch's candidates
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
FOLDER_NAME = re.compile(rf"^(?P<annotation>{_UUID})_(?P<action>{_UUID})$")
_ANSWER = re.compile(r"ELEMENT:\s*(?P<element>[A-Z]+)\s*ACTION:\s*(?P<action>[A-Z]+)"
                     r"(?:\s*VALUE:\s*(?P<value>.*))?", re.DOTALL)


def _action_folders(path: Path) -> list[Path]:
    """The per-action folders of a unit: the folder itself, or its children."""
    if (path / QUERIES).is_file():
        return [path]
    return sorted(child for child in path.iterdir()
                  if FOLDER_NAME.match(child.name) and (child / QUERIES).is_file())


def _without_queries(path: Path) -> list[Path]:
    """Children named like action folders that lack their queries.jsonl."""
    if (path / QUERIES).is_file():
        return []
    return sorted(child for child in path.iterdir() if FOLDER_NAME.match(child.name)
                  and child.is_dir() and not (child / QUERIES).is_file())


@dataclass(slots=True)
class _Action:
    """One action folder, read."""

    folder: Path
    batches: list[tuple[int, dict[str, Any]]]  # (line, record)
    index: int  # len(previous_actions)
    previous: list[str]
    predictions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def record(self) -> dict[str, Any]:
        return self.batches[0][1]


@register
class SeeActAdapter(Adapter):
    name: ClassVar[str] = "seeact"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "web"
    description: ClassVar[str] = ("SeeAct per-action Mind2Web folders (<annotation_id>_"
                                  "<action_uid>/queries.jsonl + images/ + prediction*.jsonl), "
                                  "grouped into tasks")
    priority: ClassVar[int] = 30

    def claims(self, path: Path) -> bool:
        if not path.is_dir():
            return False
        if (path / QUERIES).is_file():
            return FOLDER_NAME.match(path.name) is not None
        try:
            with os.scandir(path) as entries:
                # The name is checked first, so a folder of many files costs no stat calls.
                return any(FOLDER_NAME.match(entry.name) is not None
                           and (Path(entry.path) / QUERIES).is_file() for entry in entries)
        except OSError:
            return False

    def image_files(self, unit: SourceUnit) -> list[Path]:
        # Each batch's crop: only the one holding the positive candidate is the step's s_t.
        return [image for folder in _action_folders(unit.path)
                for image in images_in(folder / IMAGES)]

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        tasks: dict[str, list[_Action]] = {}
        for folder in _without_queries(unit.path):
            out.reject(file=unit.relative(folder), position="", level="episode",
                       reason=f"action folder without {QUERIES}; its action is not read",
                       hint="SeeAct writes queries.jsonl in every action folder; restore it")
        for folder in _action_folders(unit.path):
            action = _read_folder(unit, out, folder)
            if action is not None:
                tasks.setdefault(str(action.record["annotation_id"]), []).append(action)
        seen: set[str] = set()
        for annotation_id in sorted(tasks):
            _task(unit, out, sorted(tasks[annotation_id], key=lambda a: (a.index,
                                                                         a.folder.name)), seen)


def _read_folder(unit: SourceUnit, out: UnitBuilder, folder: Path) -> _Action | None:
    queries = folder / QUERIES
    file = unit.relative(queries)
    batches = list(iter_jsonl(queries, unit, out))
    if not batches:
        out.reject(file=file, position="", level="episode",
                   reason="queries.jsonl holds no readable batch",
                   hint="SeeAct writes one JSON line per multiple-choice batch")
        return None
    record = batches[0][1]
    name = FOLDER_NAME.match(folder.name)
    ids = (record.get("annotation_id"), record.get("action_uid"))
    if not all(isinstance(value, str) and value for value in ids):
        out.reject(file=file, position=f"line {batches[0][0]}", level="episode",
                   reason="the batch has no 'annotation_id' / 'action_uid' strings",
                   hint="each line copies the Mind2Web action sample with its ids")
        return None
    if name is not None and (name["annotation"], name["action"]) != ids:
        out.reject(file=file, position=f"line {batches[0][0]}", level="episode",
                   reason=f"the folder is named {folder.name} but its records are "
                          f"{ids[0]}_{ids[1]}",
                   hint="a folder was renamed or its queries.jsonl copied from another one")
        return None
    previous = record.get("previous_actions")
    previous = [p for p in previous if isinstance(p, str)] if isinstance(previous, list) else []
    action = _Action(folder, batches, len(previous), previous)
    for prediction in sorted(folder.glob("prediction*.jsonl")):
        action.predictions.extend(_predictions(unit, out, prediction))
    return action


def _predictions(unit: SourceUnit, out: UnitBuilder, path: Path) -> list[dict[str, Any]]:
    """The model's final answer per batch (a model's, not the demonstration's)."""
    found = []
    for _, record in iter_jsonl(path, unit, out):
        outputs = record.get("gpt_output")
        last = outputs[-1] if isinstance(outputs, list) and outputs else None
        answer = _ANSWER.search(last) if isinstance(last, str) else None
        found.append({"file": path.name, "multichoice_id": record.get("multichoice_id"),
                      "element": answer["element"] if answer else None,
                      "action": answer["action"] if answer else None,
                      "value": (answer["value"] or "").strip() or None if answer else None})
    return found


def _task(unit: SourceUnit, out: UnitBuilder, actions: list[_Action], seen: set[str]) -> None:
    first = actions[0]
    episode = _start_episode(out, first.record, seen, unit.relative(first.folder / QUERIES),
                             "line 1")
    if episode is None:
        return
    episode.terminated = False
    descriptions = _descriptions(actions)
    builder = _TaskBuilder(episode, "")
    kept: list[tuple[_Action, _ActionInput]] = []
    for action in actions:
        if kept and kept[-1][0].index == action.index:
            episode.reject(file=unit.relative(action.folder / QUERIES), position="line 1",
                           reason=f"a second folder for step {action.index} of the task; "
                                  "only the first (by name) was kept",
                           hint="remove the duplicate action folder")
            continue
        kept.append((action, _input(unit, episode, action, descriptions.get(action.index))))
    for position, (action, item) in enumerate(kept):
        following = kept[position + 1] if position + 1 < len(kept) else None
        if following is not None and following[0].index == action.index + 1:
            item.after = following[1].before
        else:
            item.after = _Shot(None, FINAL_STATE_NOT_RECORDED if following is None
                               else RECORD_MISSING)
        builder.file = unit.relative(action.folder / QUERIES)
        builder.add(item)
    indices = {action.index for action, _ in kept}
    missing = sorted(set(range(max(indices) + 1)) - indices)
    if missing:
        episode.metadata["missing_steps"] = missing
    episode.truncated = True  # the folders may stop before the task's last action
    episode.metadata["layout"] = "seeact per-action folders"
    episode.metadata["frame_crop"] = ("SeeAct crops: each s_t is the before-screenshot cut "
                                      "to the batch's candidates +-1024 px; boxes are moved "
                                      "into the crop")
    predictions = [dict(p, step=a.index) for a, _ in kept for p in a.predictions]
    if predictions:
        episode.metadata["predictions"] = predictions
    if not episode.steps:
        out.drop_episode(episode, file=unit.relative(first.folder / QUERIES), position="",
                         reason="no action of the task could be read",
                         hint="see the step rejects of its folders")


def _descriptions(actions: list[_Action]) -> dict[int, str]:
    """Step index → its description, from the previous_actions of later actions."""
    found: dict[int, str] = {}
    for action in actions:
        for index, text in enumerate(action.previous):
            found.setdefault(index, text)
    return found


def _input(unit: SourceUnit, episode: EpisodeBuilder, action: _Action,
           description: str | None) -> _ActionInput:
    line, record = action.batches[0]
    item = _ActionInput(f"{action.folder.name}/{QUERIES}: line {line}", record, description)
    if description is None:
        item.warnings.append("no later action of the task lists this one, so its "
                             "description is not known")
    batch, top = _target_batch(action)
    image = action.folder / IMAGES / f"{batch}.jpg"
    if batch is None or not image.is_file():
        what = (f"{IMAGES}/{batch}.jpg is missing" if batch is not None
                else "no batch's choices hold the positive candidate")
        episode.reject(file=unit.relative(action.folder / QUERIES), position=f"line {line}",
                       level="frame", reason=f"no screenshot for this action: {what}",
                       hint="the step is kept without its state")
        item.before = _Shot(None, FILE_MISSING)
        return item
    frame = episode.add_frame_file(image)
    item.before = _Shot(frame, None) if frame is not None else _Shot(None, FILE_MISSING)
    chosen = _candidate((record.get("pos_candidates") or [None])[0])
    if chosen.box is not None and top is not None:
        item.raw_box = (chosen.box.x, chosen.box.y - top, chosen.box.width, chosen.box.height)
        episode.metadata.setdefault("crop_tops", {})[str(action.index)] = top
    return item


def _target_batch(action: _Action) -> tuple[int | None, float | None]:
    """(batch index, crop top in page px) of the batch whose choices hold the target."""
    record = action.record
    boxes: dict[str, float] = {}
    for value in list(record.get("pos_candidates") or []) + list(
            record.get("neg_candidates") or []):
        candidate = _candidate(value)
        if candidate.node_id is not None and candidate.box is not None:
            boxes[candidate.node_id] = candidate.box.y
    positives = {_candidate(v).node_id for v in record.get("pos_candidates") or []}
    for batch, (_, line) in enumerate(action.batches):
        choices = _maybe_json(line.get("choices"))
        ids = [str(c[0]) for c in choices if isinstance(c, list) and c] if isinstance(
            choices, list) else []
        if positives & set(ids):
            tops = [boxes[i] for i in ids if i in boxes]
            return batch, (max(0.0, min(tops) - CROP_MARGIN) if tops else None)
    return None, None
