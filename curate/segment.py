"""``segment``: K-step forecast windows with consistency, from steps and their labels.

Touches no image bytes: it reads the steps, labels and episodes tables of each batch and
writes a ``segments`` file beside them. Consistency is scored by the same code the exported
rewards use (``curate.rewards.score_trajectory``): the window's real actions against the next
K steps of the episode's loop-free path.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from curate.actions import Action, format_action_text
from curate.derived import is_current, write_derived
from curate.errors import CurateError
from curate.label import label_params
from curate.layout import batch_file
from curate.review.overrides import (
    apply_action_corrections,
    apply_reviews_to_labels,
    apply_reviews_to_segments,
    read_reviews,
    reviews_fingerprint,
)
from curate.rewards import score_trajectory
from curate.schema import table_schema
from curate.store import Store, open_store, read_parquet

DONE = Action("done")
DONE_TEXT = format_action_text(DONE)
DONE_ROW = DONE.to_row()
SEGMENT_VERSION = 1
Indices = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SegmentParams:
    horizons: tuple[int, ...] = (3,)
    stride: int = 1
    history: int = 4

    def as_dict(self) -> dict[str, Any]:
        return {"version": SEGMENT_VERSION, "horizons": list(self.horizons),
                "stride": self.stride, "history": self.history, "labels": label_params()}

    def check(self) -> None:
        if not self.horizons or min(self.horizons) < 1:
            raise CurateError("--horizon must be at least 1")
        if self.stride < 1:
            raise CurateError("--stride must be at least 1")
        if self.history < 0:
            raise CurateError("--history must be 0 or more")


@dataclass
class SegmentSummary:
    batches_segmented: int = 0
    batches_current: int = 0
    segments: int = 0
    mean_consistency: float = 0.0


def window_consistency(window: Sequence[Action], on_path_future: Sequence[Action],
                       mask: Sequence[bool]) -> float:
    """The window's actions scored against the loop-free continuation of the episode."""
    if window == on_path_future:
        return 1.0
    return float(score_trajectory(list(window), list(on_path_future), mask=list(mask)).score)


@dataclass(frozen=True)
class _Steps:
    """A batch's steps in (episode, step) order, with their labels and episode bounds.

    Columns stay Arrow arrays: windows are assembled with ``take`` over index arrays, so the
    per-window cost is numpy arithmetic, not Python dictionaries.
    """

    columns: dict[str, pa.Array]  # action, action_text, frame_id, next_frame_id
    episode_ids: list[str]
    start: Indices  # per step: index of its episode's first step
    end: Indices  # per step: one past its episode's last step
    on_path: npt.NDArray[np.bool_]  # per step
    sources: list[str]  # per step: label_source


def _sorted(table: pa.Table) -> pa.Table:
    order = pc.sort_indices(table, [("episode_id", "ascending"), ("step_index", "ascending")])
    if pc.all(pc.equal(order, pa.array(np.arange(len(order))))).as_py() in (True, None):
        return table  # ingest writes steps in this order: skip copying every column
    return table.take(order)


def _label_columns(steps: pa.Table, labels: pa.Table) -> tuple[npt.NDArray[np.bool_], list[str]]:
    """on_path and label_source per step (steps sorted); a step without labels is on the
    path with heuristic labels."""
    labels = _sorted(labels)
    if (labels.column("episode_id").equals(steps.column("episode_id"))
            and labels.column("step_index").equals(steps.column("step_index"))):
        on_path = labels.column("on_path").to_pylist()
        sources = labels.column("label_source").to_pylist()
    else:  # rows that do not line up (a foreign or partial labels file): join by key
        by_step = {(row["episode_id"], row["step_index"]): row for row in labels.to_pylist()}
        keys = zip(steps.column("episode_id").to_pylist(),
                   steps.column("step_index").to_pylist(), strict=True)
        found = [by_step.get(key, {}) for key in keys]
        on_path = [row.get("on_path") for row in found]
        sources = [row.get("label_source") for row in found]
    return (np.array([flag is not False for flag in on_path], dtype=bool),
            [source or "heuristic" for source in sources])


def _prepare(steps: pa.Table, labels: pa.Table) -> _Steps:
    steps = _sorted(steps)
    episode_ids = steps.column("episode_id").to_pylist()
    count = len(episode_ids)
    firsts = [i for i in range(count) if i == 0 or episode_ids[i] != episode_ids[i - 1]]
    bounds = np.array([*firsts, count], dtype=np.int64)
    lengths = np.diff(bounds)
    start = np.repeat(bounds[:-1], lengths)
    on_path, sources = _label_columns(steps, labels)
    columns = {name: steps.column(name).combine_chunks()
               for name in ("action", "action_text", "frame_id", "next_frame_id")}
    return _Steps(columns, episode_ids, start, start + np.repeat(lengths, lengths), on_path,
                  sources)


def _windows(steps: _Steps, params: SegmentParams) -> tuple[Indices, Indices, Indices]:
    """(first step, horizon, real steps) of every window, in (episode, t, K) order."""
    local = np.arange(len(steps.episode_ids), dtype=np.int64) - steps.start
    firsts = np.flatnonzero(local % params.stride == 0)
    horizons = np.array(params.horizons, dtype=np.int64)
    first = np.repeat(firsts, len(horizons))
    horizon = np.tile(horizons, len(firsts))
    return first, horizon, np.minimum(horizon, steps.end[first] - first)


def _ranges(begin: Indices, length: Indices) -> tuple[Indices, Indices]:
    """List offsets and the flattened positions begin[i] .. begin[i] + length[i] - 1."""
    offsets = np.zeros(len(length) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], length)
    return offsets, np.repeat(begin, length) + within


def _list_column(name: str, offsets: Indices, values: pa.Array) -> pa.Array:
    kind = table_schema("segments").field(name).type
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values.cast(
        kind.value_type), type=kind)


def _padded(column: pa.Array, pad: pa.Array, indices: Indices) -> pa.Array:
    """column[indices], where index len(column) is the padding value."""
    values = pa.concat_arrays([column, pad.cast(column.type)])
    return values.take(pa.array(indices))


def _consistency(steps: _Steps, first: Indices, horizon: Indices,
                 real: Indices) -> npt.NDArray[np.float64]:
    """Consistency per window: 1.0 when every real step is on the path (the window is the
    loop-free path itself), otherwise the window scored against the next K on-path steps."""
    off_path = np.concatenate([[0], np.cumsum(~steps.on_path)])
    scores = np.ones(len(first), dtype=np.float64)
    to_score = np.flatnonzero(off_path[first + real] - off_path[first] > 0)
    if len(to_score) == 0:
        return scores
    # Plain lists from here: indexing numpy scalars one by one is slower than Python ints.
    on_path = np.flatnonzero(steps.on_path).tolist()
    ends = steps.end.tolist()
    windows = [(t, k, n) for t, k, n in zip(first[to_score].tolist(), horizon[to_score].tolist(),
                                            real[to_score].tolist(), strict=True)]
    futures = []
    needed: set[int] = set()
    for t, k, n in windows:
        begin = bisect.bisect_left(on_path, t)
        future = [i for i in on_path[begin:begin + k] if i < ends[t]]
        futures.append(future)
        needed.update(range(t, t + n))
        needed.update(future)
    order = sorted(needed)
    rows = steps.columns["action"].take(pa.array(order)).to_pylist()
    actions = {i: Action.from_row(row) for i, row in zip(order, rows, strict=True)}
    for w, (t, k, n), future in zip(to_score.tolist(), windows, futures, strict=True):
        window = [actions[i] for i in range(t, t + n)] + [DONE] * (k - n)
        reference = [actions[i] for i in future] + [DONE] * (k - len(future))
        scores[w] = window_consistency(window, reference, [True] * n + [False] * (k - n))
    return scores
def segment_batch(store: Store, batch: str, params: SegmentParams) -> pa.Table:
    labels_path = batch_file(store.path, "labels", batch)
    if not is_current(store.path, "labels", batch, label_params()):
        raise CurateError(f"batch {batch} of {store.path} has no current labels; "
                          f"run `curate label {store.path}` first")
    steps = read_parquet(batch_file(store.path, "steps", batch),
                          columns=["episode_id", "step_index", "action", "action_text",
                                   "frame_id", "next_frame_id"])
    labels = read_parquet(labels_path, columns=["episode_id", "step_index", "on_path",
                                                 "label_source"])
    # Human review takes precedence over the heuristics: corrected actions, reviewed labels.
    reviews = read_reviews(store)
    steps = apply_action_corrections(steps, reviews)
    labels = apply_reviews_to_labels(labels, reviews)
    episodes = {row["episode_id"]: row for row in read_parquet(
        batch_file(store.path, "episodes", batch),
        columns=["episode_id", "instruction", "terminated"]).to_pylist()}
    table = _segments_table(_prepare(steps, labels), episodes, params)
    return apply_reviews_to_segments(table, reviews)


def _segments_table(steps: _Steps, episodes: dict[str, dict[str, Any]],
                    params: SegmentParams) -> pa.Table:
    first, horizon, real = _windows(steps, params)
    local = first - steps.start[first]
    columns = steps.columns
    episode_of = [steps.episode_ids[i] for i in first.tolist()]
    # An episode not known to have ended by itself counts as cut off: its padding is not a
    # real `done`, and exports must not teach the model to stop there.
    ending = {key: "terminated" if row["terminated"] else "truncated"
              for key, row in episodes.items()}
    history_from = np.maximum(steps.start[first], first - params.history)
    history_offsets, history = _ranges(history_from, first - history_from)
    target_offsets, target = _ranges(first, horizon)
    inside = target < np.repeat(first + real, horizon)
    padded = np.where(inside, target, len(steps.episode_ids))
    return pa.Table.from_arrays([
        pa.array([f"{e}:{t}:{k}" for e, t, k in zip(episode_of, local.tolist(),
                                                    horizon.tolist(), strict=True)]),
        pa.array(episode_of),
        pa.array(local, pa.int32()),
        pa.array(horizon, pa.int32()),
        pa.array([episodes[e]["instruction"] for e in episode_of], pa.string()),
        _list_column("history", history_offsets,
                     columns["action_text"].take(pa.array(history))),
        _list_column("history_frame_ids", history_offsets,
                     columns["frame_id"].take(pa.array(history))),
        columns["frame_id"].take(pa.array(first)),
        _list_column("target_actions", target_offsets,
                     _padded(columns["action"], pa.array([DONE_ROW]), padded)),
        _list_column("target_action_texts", target_offsets,
                     _padded(columns["action_text"], pa.array([DONE_TEXT]), padded)),
        _list_column("target_next_frame_ids", target_offsets,
                     _padded(columns["next_frame_id"], pa.nulls(1), padded)),
        _list_column("mask", target_offsets, pa.array(inside)),
        pa.array(["within" if n == k else ending[e] for e, n, k in zip(
            episode_of, real.tolist(), horizon.tolist(), strict=True)]),
        pa.array(_consistency(steps, first, horizon, real)),
        pa.array(_window_sources(steps.sources, first, real)),
    ], schema=table_schema("segments"))


def _window_sources(sources: list[str], first: Indices, real: Indices) -> list[str]:
    """The label_source shared by every real step of each window, or ``mixed``."""
    changes = np.concatenate([[0], np.cumsum(
        [a != b for a, b in itertools.pairwise(sources)], dtype=np.int64)])
    last = first + real - 1
    uniform = (changes[last] - changes[first] == 0).tolist()
    return [sources[t] if same else "mixed"
            for t, same in zip(first.tolist(), uniform, strict=True)]


def segment(store_path: str | Path, *, params: SegmentParams | None = None,
            force: bool = False) -> SegmentSummary:
    """Cut every labelled episode into K-step windows for each horizon."""
    params = params or SegmentParams()
    params.check()
    store = open_store(store_path)
    summary = SegmentSummary()
    # A new review pull changes the stamp, so segments are recomputed with it.
    stamp = {**params.as_dict(), "reviews": reviews_fingerprint(store)}
    for batch in sorted(store.manifest.batches):
        if not force and is_current(store.path, "segments", batch, stamp):
            summary.batches_current += 1
            continue
        write_derived(store.path, "segments", batch, segment_batch(store, batch, params), stamp)
        summary.batches_segmented += 1
    total, weighted = 0, 0.0
    for path in store.files("segments"):
        column = read_parquet(path, columns=["consistency"]).column("consistency").to_pylist()
        total += len(column)
        weighted += sum(column)
    summary.segments = total
    summary.mean_consistency = weighted / total if total else 0.0
    return summary
