"""The AgentNet Hugging Face release (``xlangai/AgentNet``): one trajectory per JSONL line.

Each line: ``task_id``, ``instruction``, optionally ``natural_language_task``,
``actual_task``, ``task_completed``, ``alignment_score``, ``efficiency_score``,
``task_difficulty``, ``reason``, ``domain``, and ``traj``: items with ``index``, ``image``
(screenshot file name, the state *before* the action) and ``value`` {``code``,
``observation``, ``thought``, ``action``, ``last_step_correct``, ``last_step_redundant``,
``reflection``}. ``value`` may hold only ``code`` (the CoT generator's input form). The
screenshots ship separately; they are looked up in ``images/`` beside the JSONL file (the
layout of OpenCUA's CoT generator example), and a missing one is a frame reject, not a guess.
See docs/sources/agentnet_hf.md.

* Actions come from ``value.code`` (OpenCUA's PyAutoGUI dialect with 0-1 coordinates, read by
  :mod:`curate.sources.adapters._opencua`); one item whose code does several things the action space
  cannot fold into one becomes several steps, the states between them
  ``intermediate_not_recorded``.
* ``value.action`` (prose) is the step instruction and ``thought`` the thought;
  ``observation`` describes the screen *before* the action and is kept as state text in
  episode metadata ``state_text`` (steps.observation is the action's result);
  ``reflection`` is kept in metadata ``reflection``.
* ``last_step_correct`` / ``last_step_redundant`` judge the **previous** step according to
  OpenCUA's CoT README (ADP's README says "the step"): metadata ``step_judgements`` records
  each flag pair with the step it judges (``judged_step``, the previous item's last step;
  null on the first item, where upstream does not say what the flags mean) and the step
  it was recorded on, so either reading can be applied without re-ingesting.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import IO, Any, ClassVar

from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters._opencua import combine, parse_code
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    INTERMEDIATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    RECORD_UNREADABLE,
    SNIFF_BYTES,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    iter_jsonl,
    text_head,
)
from curate.sources.values import text_or_none
from curate.store.frames import Frame

IMAGES_DIR = "images"
TASK_FIELDS = ("task_id", "natural_language_task", "actual_task", "task_completed",
               "alignment_score", "efficiency_score", "task_difficulty", "reason", "domain")


@register
class AgentNetHFAdapter(Adapter):
    name: ClassVar[str] = "agentnet_hf"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "desktop"
    description: ClassVar[str] = ("AgentNet Hugging Face release JSONL (task_id, instruction, "
                                  "traj[].value.code), screenshots in images/ beside it")
    priority: ClassVar[int] = 30
    streams: ClassVar[bool] = True

    def claims(self, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() == ".jsonl"):
            return False
        head = text_head(path)
        return head is not None and _is_release_line(head)

    def reads_remote(self, path: str) -> bool:
        # On the Hub the JSONL is streamed line by line; its images/ folder is mirrored.
        return path.lower().endswith(".jsonl")

    def claims_remote(self, handle: IO[bytes]) -> bool:
        return _is_release_line(handle.read(SNIFF_BYTES).decode("utf-8", errors="replace"))

    def input_files(self, unit: SourceUnit) -> list[Path]:
        # The screenshots are read (and so fingerprinted) as frames; a changed screenshot
        # changes the frame id, so only the JSONL makes the unit's fingerprint.
        return [unit.path] if unit.path.is_file() else []

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        images = unit.path.parent / IMAGES_DIR
        seen: dict[str, int] = {}
        limit = unit.remote.limit if unit.remote is not None else None  # ingest --limit
        started = 0  # trajectories begun, against the limit
        for line, record in iter_jsonl(unit.path, unit, out):
            if limit is not None and started >= limit:
                break
            task_id = record.get("task_id")
            traj = record.get("traj")
            if not isinstance(task_id, str) or not isinstance(traj, list):
                out.reject(file=unit.source_path, position=f"line {line}", level="episode",
                           reason="expected task_id (string) and traj (list)",
                           hint="each line is one AgentNet trajectory")
                continue
            count = seen.get(task_id, 0)
            seen[task_id] = count + 1
            started += 1
            episode = out.episode(task_id if count == 0 else f"{task_id}@line{line}")
            _trajectory(unit, episode, record, traj, line, images)
            if not episode.steps:
                out.drop_episode(episode, file=unit.source_path, position=f"line {line}",
                                 reason="no usable step in traj",
                                 hint="every step was rejected; see the step rejects")
                continue
            out.finish(episode)
        if not seen and not out.rejects:
            raise SourceError("the file holds no trajectory", file=unit.source_path,
                              hint="expected one JSON object per line with task_id and traj")


def _is_release_line(head: str) -> bool:
    first = head.split("\n", 1)[0]
    return '"traj"' in first and '"task_id"' in first and '"code"' in first


def _sibling(unit: SourceUnit, name: str) -> str:
    """A file beside the unit's file, named the way the store names sources."""
    parent = unit.source_path.rpartition("/")[0]
    return f"{parent}/{name}" if parent else name


def _trajectory(unit: SourceUnit, episode: EpisodeBuilder, record: dict[str, Any],
                traj: list[Any], line: int, images: Path) -> None:
    episode.instruction = (text_or_none(record.get("instruction"))
                           or text_or_none(record.get("natural_language_task"))
                           or text_or_none(record.get("actual_task")))
    for key in TASK_FIELDS:
        if record.get(key) is not None:
            episode.metadata[key] = record[key]
    completed = record.get("task_completed")
    if isinstance(completed, bool):
        episode.outcome = "success" if completed else "fail"
    state_text: dict[str, str] = {}
    reflections: dict[str, str] = {}
    judgements: list[dict[str, Any]] = []
    previous_last: int | None = None
    previous_index: int | None = None
    for position, item in enumerate(traj):
        where = f"line {line} traj[{position}]"
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, dict):
            episode.reject(file=unit.source_path, position=where,
                           reason="expected an item with a 'value' object",
                           hint="each traj item has index, image and value")
            _gap(episode)
            previous_last = None
            continue
        index = item.get("index")
        if isinstance(index, int) and previous_index is not None and index <= previous_index:
            episode.metadata.setdefault("index_order_warnings", []).append(
                f"traj[{position}] index {index} after {previous_index}")
        previous_index = index if isinstance(index, int) else previous_index
        code = value.get("code")
        try:
            if not isinstance(code, str) or not code.strip():
                raise ActionParseError("value.code is missing or empty")
            actions, notes = combine(parse_code(code), raw=code)
        except ActionParseError as error:
            episode.reject(file=unit.source_path, position=where, reason=str(error),
                           hint="the step is skipped; the rest of the trajectory is kept")
            _gap(episode)
            previous_last = None
            continue
        frame, missing = _frame(unit, episode, item, images)
        first = len(episode.steps)
        for number, action in enumerate(actions):
            episode.add_step(
                action, source_position=where if len(actions) == 1 else f"{where} call {number}",
                frame_id=frame.frame_id if frame and number == 0 else None,
                frame_missing=missing if number == 0 else INTERMEDIATE_NOT_RECORDED,
                next_frame_missing=INTERMEDIATE_NOT_RECORDED if number + 1 < len(actions)
                else None,
                thought=text_or_none(value.get("thought")) if number == 0 else None,
                step_instruction=text_or_none(value.get("action")), warnings=list(notes))
        if text_or_none(value.get("observation")):
            state_text[str(first)] = value["observation"]
        if text_or_none(value.get("reflection")):
            reflections[str(first)] = value["reflection"]
        flags = {k: value[k] for k in ("last_step_correct", "last_step_redundant")
                 if isinstance(value.get(k), bool)}
        if flags:
            judgements.append({"recorded_on": first, "judged_step": previous_last, **flags})
        previous_last = len(episode.steps) - 1
    _link_next_frames(episode)
    if episode.steps and episode.steps[-1].action.type in {"done", "fail"}:
        episode.terminated = True
    for key, value in (("state_text", state_text), ("reflection", reflections),
                       ("step_judgements", judgements)):
        if value:
            episode.metadata[key] = value


def _frame(unit: SourceUnit, episode: EpisodeBuilder, item: dict[str, Any], images: Path
           ) -> tuple[Frame | None, str]:
    name = item.get("image")
    if not isinstance(name, str) or not name:
        return None, NO_SCREENSHOTS
    path = images / name
    shown = _sibling(unit, f"{IMAGES_DIR}/{name}")
    if not path.is_file():
        episode.reject(file=shown, position="", level="frame",
                       reason="screenshot file is missing",
                       hint=f"unpack the release's images into {IMAGES_DIR}/ beside the JSONL")
        return None, FILE_MISSING
    frame = episode.add_frame_file(path, name=shown)
    return frame, FILE_CORRUPT


def _gap(episode: EpisodeBuilder) -> None:
    """A rejected item follows the last kept step: the next kept screenshot is not its result."""
    if episode.steps and episode.steps[-1].next_frame_missing is None:
        episode.steps[-1].next_frame_missing = RECORD_UNREADABLE


def _link_next_frames(episode: EpisodeBuilder) -> None:
    """s_t+1 of a step is the next step's s_t (screenshots are before-states)."""
    steps = episode.steps
    for here, there in itertools.pairwise(steps):
        if here.next_frame_missing is None:
            here.next_frame_id = there.frame_id
            here.next_frame_missing = there.frame_missing
    if steps and steps[-1].next_frame_missing is None:
        steps[-1].next_frame_missing = FINAL_STATE_NOT_RECORDED
