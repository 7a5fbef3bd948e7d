"""``label``: heuristic step labels (noop, loop, on_path, recovery, terminal) per episode.

Two passes. First every unique frame without a state grid is decoded once, in parallel over
row groups, and its grid stored in ``frame_states`` with the crops of the target boxes of the
clicks it is the before- or after-frame of. Then each steps batch is labelled from the grids
and crops alone (no image bytes are touched). Definitions, and how typing, waiting and tool
calls are treated, are in docs/labels.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.engines import Engine, LocalEngine, remote
from curate.pipeline.state_index import EarlierStates
from curate.pipeline.states import (
    BOX_CHANGED_PIXELS,
    BOX_DIFF_LEVELS,
    BOX_SIDE,
    CELL_DIFF_LEVELS,
    GRID,
    SAME_STATE_MAX_CELLS,
    Box,
    BoxCrop,
    StateGrid,
    changed_box_pixels,
    changed_cells,
    frame_state_of,
)
from curate.progress import Progress, SilentProgress
from curate.store.core import Store, open_store, read_parquet, store_lock
from curate.store.derived import is_current, write_derived
from curate.store.faults import fault
from curate.store.layout import batch_file
from curate.store.outputs import writing_to
from curate.store.schema import table_schema

LABEL_VERSION = 7  # 3: an answer the user replied to is not terminal; 4: a click
#   that focuses the field typed into next is not a no-op; 5: a return to a state seen only
#   inside a cut detour does not cut the path; 6: typing and keys whose
#   frame changed below the grid are not no-ops, nor loops unless the grid matches exactly;
#   a step that stays on its own frame is no loop; 7: a click whose target box's pixels
#   changed below the grid is not a no-op
NOOP_MAX_CELLS = 0  # any visible change, even one typed character, is not a no-op
TERMINAL_TYPES = frozenset({"done", "fail", "answer"})
# Actions whose visible effect is often smaller than a grid cell: a few typed characters, a
# save that only changes a window title.
FINE_EFFECT_TYPES = frozenset({"type", "key"})
CLICK_TYPES = frozenset({"click", "double_click", "long_press"})
UNDO_KEYS = (("escape",), ("esc",), ("ctrl", "z"), ("cmd", "z"), ("alt", "f4"),
             ("ctrl", "w"), ("cmd", "w"), ("alt", "left"), ("backspace",))


def state_params() -> dict[str, Any]:
    return {"grid": GRID, "version": 2, "box_side": BOX_SIDE,
            "box_diff_levels": BOX_DIFF_LEVELS, "box_changed_pixels": BOX_CHANGED_PIXELS}


def label_params() -> dict[str, Any]:
    # The state grids' parameters sit under their own key: spread in, their "version" hid
    # LABEL_VERSION, so a change of the labelling rules did not relabel stored batches.
    return {"version": LABEL_VERSION, "noop_max_cells": NOOP_MAX_CELLS,
            "same_state_max_cells": SAME_STATE_MAX_CELLS,
            "cell_diff_levels": CELL_DIFF_LEVELS, "states": state_params()}


@dataclass
class LabelSummary:
    frames_decoded: int = 0
    batches_labelled: int = 0
    batches_current: int = 0
    steps: int = 0
    counts: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------- pass 1: state grids


FrameBoxes = dict[str, list[Box]]  # frame id -> the target boxes to crop on it


def _grids_for_row_group(path: str, row_group: int, boxes: FrameBoxes
                         ) -> list[dict[str, Any]]:
    table = pq.ParquetFile(path).read_row_group(row_group, columns=["frame_id", "bytes"])
    rows = []
    # Each image is read in place from the Arrow buffer: to_pylist would copy every byte.
    images = (pa.BufferReader(value.as_buffer()) for chunk in table.column("bytes").chunks
              for value in chunk)
    for frame_id, image in zip(table.column("frame_id").to_pylist(), images, strict=True):
        state, crops = frame_state_of(image, boxes.get(frame_id, ()))
        rows.append({"frame_id": frame_id, "grid": state.grid, "width": state.width,
                     "height": state.height, "boxes": [crop.as_row() for crop in crops]})
    return rows


def _grids_for(task: tuple[str, int, FrameBoxes]) -> list[dict[str, Any]]:
    return _grids_for_row_group(*task)


def _step_box(step: dict[str, Any]) -> Box | None:
    """The recorded target box of a click that changed its frame's bytes, else None: only
    those are compared inside the box (byte-identical frames are a no-op whatever the box)."""
    action = step["action"]
    target = action.get("target") or {}
    edges: list[float] = [target[k] for k in ("x0", "y0", "x1", "y1")
                          if target.get(k) is not None]
    if (action["type"] not in CLICK_TYPES or len(edges) < 4 or not step["frame_id"]
            or not step["next_frame_id"] or step["frame_id"] == step["next_frame_id"]):
        return None
    x0, y0, x1, y1 = edges
    return (x0, y0, x1, y1)


def _boxes_by_frame(store: Store) -> FrameBoxes:
    """Every frame's target boxes to crop, from all steps batches (a frame may be shared)."""
    found: dict[str, set[Box]] = {}
    for path in store.files("steps"):
        rows = read_parquet(path, columns=["frame_id", "next_frame_id", "action"]).to_pylist()
        for row in rows:
            box = _step_box(row)
            if box is not None:
                for frame in (row["frame_id"], row["next_frame_id"]):
                    found.setdefault(frame, set()).add(box)
    return {frame: sorted(boxes) for frame, boxes in found.items()}


def _batch_boxes(store: Store, batch: str, boxes: FrameBoxes) -> FrameBoxes:
    ids = read_parquet(batch_file(store.path, "frames", batch), columns=["frame_id"])
    return {f: boxes[f] for f in sorted(set(ids.column("frame_id").to_pylist())) if f in boxes}


def _frame_state_params(batch_boxes: FrameBoxes) -> dict[str, Any]:
    """A frames batch's stamp: the grid parameters and a digest of the boxes cropped, so a
    new steps batch clicking on an older batch's frame has that batch cropped again."""
    digest = hashlib.sha256(json.dumps(batch_boxes, sort_keys=True).encode()).hexdigest()
    return {**state_params(), "boxes": digest[:16]}


def compute_frame_states(store: Store, *, workers: int, progress: Progress,
                         engine: Engine | None = None) -> int:
    """Decode each frame of batches lacking state grids once; return frames decoded.

    Row groups run on ``engine`` (default: a local pool of ``workers``), results in order,
    so the files are the same whatever ran them."""
    boxes = _boxes_by_frame(store)
    batch_boxes = {b: _batch_boxes(store, b, boxes) for b in sorted(store.manifest.batches)}
    params = {b: _frame_state_params(batch_boxes[b]) for b in batch_boxes}
    todo = [b for b in sorted(store.manifest.batches)
            if not is_current(store.path, "frame_states", b, params[b])]
    groups = {b: pq.ParquetFile(batch_file(store.path, "frames", b)).num_row_groups
              for b in todo}
    tasks = [(str(batch_file(store.path, "frames", b)), group, batch_boxes[b]) for b in todo
             for group in range(groups[b])]
    owners = [b for b in todo for _ in range(groups[b])]
    progress.start(len(tasks), "frame states")
    collected: dict[str, list[dict[str, Any]]] = {b: [] for b in todo}
    decoded = 0
    with ExitStack() as stack:
        running = engine or stack.enter_context(LocalEngine(workers))
        for owner, rows in zip(owners, running.map_ordered(_grids_for, tasks), strict=True):
            collected[owner].extend(rows)
            decoded += len(rows)
            progress.advance()
    progress.close()
    for batch in todo:
        table = pa.Table.from_pylist(collected[batch], schema=table_schema("frame_states"))
        write_derived(store.path, "frame_states", batch, table, params[batch])
    return decoded


CropKey = tuple[str, Box]  # (frame id, box)


def load_grids(store: Store, frame_ids: set[str]) -> dict[str, StateGrid]:
    """State grids of the given frames (only those rows are read)."""
    return load_frame_states(store, frame_ids)[0]


def load_frame_states(store: Store, frame_ids: set[str]
                      ) -> tuple[dict[str, StateGrid], dict[CropKey, BoxCrop]]:
    """State grids and target-box crops of the given frames (only those rows are read)."""
    rows = store.read_where_in("frame_states", "frame_id", frame_ids).to_pylist()
    grids = {row["frame_id"]: StateGrid(row["grid"], row["width"], row["height"])
             for row in rows}
    crops: dict[CropKey, BoxCrop] = {}
    for row in rows:
        for crop in row.get("boxes") or ():
            box = (crop["x0"], crop["y0"], crop["x1"], crop["y1"])
            crops[(row["frame_id"], box)] = BoxCrop(box, crop["width"], crop["height"],
                                                    crop["pixels"])
    return grids, crops


# ---------------------------------------------------------------- pass 2: labels

_STEP_COLUMNS = ["episode_id", "step_index", "action", "frame_id", "next_frame_id",
                 "observation"]


def _is_terminal(step: dict[str, Any], is_last: bool) -> bool:
    """The episode ends here: its last step, or an ending action, except an answer the user
    replied to (the tool adapters keep the reply as its observation): the conversation went
    on, so the task did not end there."""
    kind = step["action"]["type"]
    if is_last:
        return True
    if kind == "answer" and step.get("observation"):
        return False
    return kind in TERMINAL_TYPES


def _is_recovery_action(action: dict[str, Any]) -> bool:
    if action["type"] == "back":
        return True
    keys = tuple(k.lower() for k in (action.get("keys") or ()))
    return action["type"] == "key" and keys in UNDO_KEYS


def label_episode(steps: list[dict[str, Any]], grids: dict[str, StateGrid],
                  crops: dict[CropKey, BoxCrop] | None = None) -> list[dict[str, Any]]:
    """Label one episode's steps (sorted by step_index) from its frames' state grids and
    the crops of clicked target boxes (without them a click is judged by the grid alone)."""
    labels: list[dict[str, Any]] = []
    # Before-states of the steps so far, searched in one call; told the episode's states
    # up front so a long episode prepares them all at once.
    earlier = EarlierStates(grids[frame] for step in steps
                            for frame in (step["frame_id"], step["next_frame_id"])
                            if frame in grids)
    calls_seen: set[tuple[str, str]] = set()
    path: list[int] = []
    befores: dict[int, StateGrid] = {}  # step index -> its before-state
    for position, step in enumerate(steps):
        action = step["action"]
        before = grids.get(step["frame_id"] or "")
        after = grids.get(step["next_frame_id"] or "")
        label: dict[str, Any] = {
            "episode_id": step["episode_id"], "step_index": step["step_index"],
            "noop": None, "loop": None, "recovery": False, "label_source": "heuristic",
            "changed_cells": None, "revisits_step": None,
            "terminal": _is_terminal(step, position == len(steps) - 1),
        }
        evidence: list[str] = []
        in_box = 0  # pixels changed inside the click's target box, when the grid saw none
        if before is not None and after is not None:
            cells = changed_cells(before, after)
            label["changed_cells"] = cells
            # Waiting and ending (done/fail/answer) do not aim to change the screen.
            never_noop = action["type"] == "wait" or action["type"] in TERMINAL_TYPES
            focuses = _focuses_for_typing(action, steps, position)
            fine = cells <= NOOP_MAX_CELLS and _changed_below_grid(step)
            in_box = _changed_in_box(step, crops or {}) if cells <= NOOP_MAX_CELLS else 0
            label["noop"] = (not (never_noop or focuses or fine or in_box)
                             and cells <= NOOP_MAX_CELLS)
            evidence.append(f"{cells} of {GRID * GRID} state cells changed"
                            + (f" ({action['type']}: never a no-op)" if never_noop else "")
                            + (" (a click giving focus to the field typed into next: not a "
                               "no-op)" if focuses and not never_noop else "")
                            + (f" (the frame changed below the grid's resolution, as a "
                               f"{action['type']} does: not a no-op)"
                               if fine and not (never_noop or focuses) else "")
                            + (f" ({in_box} pixels changed inside the clicked target box, "
                               "too few for the grid: not a no-op)"
                               if in_box and not (never_noop or focuses) else ""))
        if label["noop"]:
            label["loop"] = False  # staying put is a no-op, not a return to an old state
        elif after is not None:
            match = earlier.first_match(after)
            label["loop"] = match is not None
            if match is not None:
                label["revisits_step"] = match
                near = changed_cells(befores[match], after)
                if step["frame_id"] == step["next_frame_id"]:
                    label["loop"] = False
                    evidence.append(f"stays on its own frame (the state before step {match}): "
                                    "the step that came back there made the loop")
                elif in_box:
                    label["loop"] = False
                    evidence.append(f"s_t+1 matches the state before step {match} on the "
                                    "grid, which cannot see the target box that changed: "
                                    "no loop")
                elif near and _changed_below_grid(step):
                    label["loop"] = False
                    evidence.append(f"s_t+1 is within {near} cells of the state before step "
                                    f"{match}, not the same: a {action['type']} changes what "
                                    "the grid cannot see (a title, a few characters): no loop")
                else:
                    evidence.append(f"s_t+1 is the state before step {match}")
        elif after is None and before is None and action["type"] == "tool_call":
            call = (action.get("tool_name") or "", action.get("tool_args") or "")
            label["loop"] = call in calls_seen
            calls_seen.add(call)
            evidence.append("text-only: loop means the same tool call was made before")
        elif after is None:
            evidence.append("no after-state frame: noop/loop unknown")
        if label["loop"] and _is_recovery_action(action):
            label["recovery"] = True
            evidence.append("undo/back action returning to an earlier state")
        cut_from = _path_revisit(label["revisits_step"] if label["loop"] else None, after,
                                 path, befores)
        if before is not None:  # added after the search: a step never revisits itself
            earlier.add(step["step_index"], before)
            befores[step["step_index"]] = before
        path = _extend_path(path, step["step_index"], label, cut_from)
        label["evidence"] = "; ".join(evidence) or "no frames"
        labels.append(label)
    on_path = set(path)
    for label in labels:
        label["on_path"] = label["step_index"] in on_path
    return labels


def _focuses_for_typing(action: dict[str, Any], steps: list[dict[str, Any]],
                        position: int) -> bool:
    """A click right before typing puts the caret where the text goes: a caret or a focus
    ring is too small for the state grid, so an unchanged grid does not make it a no-op."""
    if action["type"] not in CLICK_TYPES or position + 1 >= len(steps):
        return False
    following = steps[position + 1]["action"]
    return following["type"] == "type" and bool(following.get("text"))


def _path_revisit(first: int | None, after: StateGrid | None, path: list[int],
                  befores: dict[int, StateGrid]) -> int | None:
    """The first step still on the path whose before-state s_t+1 returns to.

    ``first`` is the first earlier step of all with that before-state (``revisits_step``);
    when a cut detour holds it, an on-path step after it may still match. A return to a state
    seen only inside a cut detour is a step along the path: cutting to there would leave the
    path's last step ending in one state and the next on-path step starting in another."""
    if first is None or after is None:
        return None
    on_path = set(path)
    if first in on_path:
        return first
    later = [s for s in path if s > first and s in befores
             and (befores[s].width, befores[s].height) == (after.width, after.height)]
    if not later:
        return None
    cells = np.stack([befores[s].cells for s in later])
    changed = np.count_nonzero(np.abs(cells - after.cells) > CELL_DIFF_LEVELS, axis=1)
    hits = np.flatnonzero(changed <= SAME_STATE_MAX_CELLS)
    return later[int(hits[0])] if hits.size else None


def _changed_in_box(step: dict[str, Any], crops: dict[CropKey, BoxCrop]) -> int:
    """Pixels changed inside a click's recorded target box between s_t and s_t+1 (0 when
    the step has no box, its crops are missing, or the change is noise: changed_box_pixels)."""
    box = _step_box(step)
    if box is None:
        return 0
    before = crops.get((step["frame_id"], box))
    after = crops.get((step["next_frame_id"], box))
    if before is None or after is None:
        return 0
    return changed_box_pixels(before, after)


def _changed_below_grid(step: dict[str, Any]) -> bool:
    """A typing or key step whose after-frame is not byte-identical to its before-frame
    (frame ids are content hashes): its effect may be finer than the state grid."""
    action = step["action"]
    if action["type"] not in FINE_EFFECT_TYPES:
        return False
    if action["type"] == "type" and not action.get("text"):
        return False
    return bool(step["frame_id"] != step["next_frame_id"])


def _extend_path(path: list[int], step_index: int, label: dict[str, Any],
                 cut_from: int | None) -> list[int]:
    """Cut the loop a step closes: a no-op removes itself, a return to the before-state of
    on-path step j removes steps j..t, a repeated tool call removes itself."""
    if label["noop"]:
        return path
    if cut_from is not None:
        return [s for s in path if s < cut_from]
    if label["loop"] and label["revisits_step"] is None:
        return path  # a repeated tool call
    return [*path, step_index]


def sorted_step_rows(table: pa.Table) -> list[dict[str, Any]]:
    """A steps-like table's rows in (episode_id, step_index) order."""
    rows: list[dict[str, Any]] = table.sort_by(
        [("episode_id", "ascending"), ("step_index", "ascending")]).to_pylist()
    return rows


def episode_groups(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive runs of rows with the same episode_id (rows sorted by episode)."""
    start = 0
    for index in range(1, len(rows) + 1):
        if index == len(rows) or rows[index]["episode_id"] != rows[start]["episode_id"]:
            yield rows[start:index]
            start = index


def label_batch(store: Store, batch: str) -> pa.Table:
    steps = read_parquet(batch_file(store.path, "steps", batch), columns=_STEP_COLUMNS)
    needed = {f for column in ("frame_id", "next_frame_id")
              for f in steps.column(column).to_pylist() if f}
    grids, crops = load_frame_states(store, needed)
    labels = [label for episode in episode_groups(sorted_step_rows(steps))
              for label in label_episode(episode, grids, crops)]
    return pa.Table.from_pylist(labels, schema=table_schema("labels"))


@dataclass(frozen=True)
class LabelJob:
    """One batch for a worker to label and write, stamped with ``params``."""

    store: Store
    batch: str
    params: dict[str, Any]


def label_and_write(job: LabelJob) -> int:
    """Worker body: the batch's labels file, written where the store is; its row count."""
    table = label_batch(job.store, job.batch)
    write_derived(job.store.path, "labels", job.batch, table, job.params)
    rows: int = table.num_rows
    return rows


def label(store_path: str | Path, *, workers: int = 1, force: bool = False,
          progress: Progress | None = None, engine: Engine | None = None,
          cache: Path | None = None) -> LabelSummary:
    """Compute state grids (once per unique frame) and heuristic labels for every batch.

    Frames are decoded on ``engine`` (default: a local pool of ``workers``); a URL store is
    mirrored through the local ``cache`` folder (see curate.engines.remote)."""
    with remote.local_folder(store_path, cache, kind="stores", pull=True) as local:
        open_store(local)  # a missing or foreign store is refused before the lock is made
        with writing_to(local), store_lock(local):
            return _label(local, workers, force, progress or SilentProgress(), engine)


def _label(store_path: Path, workers: int, force: bool, progress: Progress,
           engine: Engine | None) -> LabelSummary:
    store = open_store(store_path)
    summary = LabelSummary()
    summary.frames_decoded = compute_frame_states(store, workers=workers, progress=progress,
                                                  engine=engine)
    params = label_params()
    stale = [LabelJob(store, batch, params) for batch in sorted(store.manifest.batches)
             if force or not is_current(store.path, "labels", batch, params)]
    summary.batches_current = len(store.manifest.batches) - len(stale)
    # On an engine each batch is a task that writes its own labels file; here, in order.
    written = (map(label_and_write, stale) if engine is None
               else engine.map_ordered(label_and_write, stale))
    for _ in written:
        summary.batches_labelled += 1
        fault("label.after-batch")
    for table in (read_parquet(p) for p in store.files("labels")):
        summary.steps += table.num_rows
        for name in ("noop", "loop", "on_path", "recovery", "terminal"):
            column = table.column(name)
            # pc.sum skips nulls (fill_null(False) would build a scalar, importing pandas)
            summary.counts[name] = summary.counts.get(name, 0) + int(
                pc.sum(column).as_py() or 0)
    return summary


def describe_params() -> str:
    return json.dumps(label_params(), sort_keys=True)
