"""``segment``: K-step forecast windows with consistency, from steps and their labels.

Touches no image bytes: it reads the steps, labels and episodes tables of each batch and
writes a ``segments`` file beside them. Consistency is scored by the same code the exported
rewards use (``curate.rewards.score_trajectory``, run over all of a batch's windows at once by
``curate.rewards.windows``): the window's real actions against the next K steps of the
episode's loop-free path.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.actions import Action, format_action_text
from curate.engines import Engine
from curate.errors import CurateError
from curate.pipeline.label import label_params
from curate.pipeline.step_text import TEXT_COLUMNS, step_texts
from curate.review.overrides import (
    apply_action_corrections,
    apply_reviews_to_labels,
    apply_reviews_to_segments,
    read_reviews,
    reviews_fingerprint,
    step_text_corrections,
)
from curate.rewards.pair_arrays import ActionArrays
from curate.rewards.windows import PairCache, score_windows
from curate.store.core import Store, WriteQueue, open_store, read_parquet, store_lock
from curate.store.derived import PARAMS_KEY, is_current, read_current, write_derived
from curate.store.faults import fault
from curate.store.layout import batch_file
from curate.store.outputs import writing_to
from curate.store.schema import table_schema

DONE = Action("done")
DONE_TEXT = format_action_text(DONE)
DONE_ROW = DONE.to_row()
SEGMENT_VERSION = 3  # 2: target states, step instructions and their sources; --horizon end
# 3: `end` says how the episode ended for every window reaching its last step, padded or not
END = "end"  # --horizon end: every remaining step of the episode, capped by max_horizon
DEFAULT_MAX_HORIZON = 50
Indices = npt.NDArray[np.int64]


def parse_horizon(value: str | int) -> int | str:
    """A horizon as given on the command line or in a recipe: K >= 1 or ``end``."""
    if isinstance(value, str) and value.strip().lower() == END:
        return END
    try:
        horizon = int(value)
    except (TypeError, ValueError):
        raise CurateError(f"--horizon {value!r}: give a number of steps K >= 1 or 'end'"
                          ) from None
    if horizon < 1:
        raise CurateError("--horizon must be at least 1 (or 'end')")
    return horizon


def sorted_horizons(horizons: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """Distinct horizons, numbers ascending, ``end`` last."""
    numbers = sorted({h for h in horizons if isinstance(h, int)})
    return (*numbers, *((END,) if END in horizons else ()))


@dataclass(frozen=True)
class SegmentParams:
    horizons: tuple[int | str, ...] = (3,)
    stride: int = 1
    history: int = 4
    max_horizon: int = DEFAULT_MAX_HORIZON  # the cap of `end` windows

    def as_dict(self) -> dict[str, Any]:
        return {"version": SEGMENT_VERSION, "horizons": list(self.horizons),
                "stride": self.stride, "history": self.history,
                "max_horizon": self.max_horizon, "labels": label_params()}

    def check(self) -> None:
        if not self.horizons:
            raise CurateError("--horizon must be at least 1 (or 'end')")
        for horizon in self.horizons:
            if parse_horizon(horizon) != horizon:
                raise CurateError(f"horizon {horizon!r}: give a number K >= 1 or 'end'")
        if self.max_horizon < 1:
            raise CurateError("--max-horizon must be at least 1")
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


@dataclass(frozen=True)
class _Steps:
    """A batch's steps in (episode, step) order, with their labels and episode bounds.

    Columns stay Arrow arrays in the order they were read: windows are assembled with one
    ``take`` per column over index arrays, so the per-window cost is numpy arithmetic, and
    steps stored out of order are not copied into order first.
    """

    columns: dict[str, pa.Array]  # action, action_text, frame_id, next_frame_id, as read
    row: Indices  # per step position: its row in ``columns``
    episode_ids: pa.Array  # per step position
    start: Indices  # per step position: its episode's first position
    end: Indices  # per step position: one past its episode's last position
    on_path: npt.NDArray[np.bool_]  # per step position
    sources: pa.Array  # per step position: label_source
    # per step position: state after the step, step instruction, and where each came from
    texts: dict[str, pa.Array]

    def __len__(self) -> int:
        return len(self.row)

    def take(self, name: str, positions: Indices) -> pa.Array:
        return self.columns[name].take(pa.array(self.row[positions]))


KEYS = ["episode_id", "step_index"]


def _in_order(table: pa.Table) -> bool:
    """True when rows are sorted by (episode_id, step_index), as ingest and label write them."""
    if table.num_rows < 2:
        return True
    ids, steps = table.column("episode_id"), table.column("step_index")
    after = pc.or_(pc.greater(ids[1:], ids[:-1]),
                   pc.and_(pc.equal(ids[1:], ids[:-1]), pc.greater(steps[1:], steps[:-1])))
    return pc.all(after).as_py() is not False


def _order(table: pa.Table) -> Indices:
    """The row order that sorts ``table`` by (episode_id, step_index)."""
    if _in_order(table):
        return np.arange(table.num_rows, dtype=np.int64)
    order: Indices = pc.sort_indices(table.select(KEYS), [(key, "ascending") for key in KEYS]
                                     ).to_numpy().astype(np.int64)
    return order


def _label_columns(keys: pa.Table, labels: pa.Table) -> tuple[npt.NDArray[np.bool_], pa.Array]:
    """on_path and label_source for each row of ``keys`` (the sorted step keys); a step
    without labels is on the path with heuristic labels."""
    if not _in_order(labels):
        labels = labels.sort_by([(key, "ascending") for key in KEYS])
    if not (labels.column("episode_id").equals(keys.column("episode_id"))
            and labels.column("step_index").equals(keys.column("step_index"))):
        # Rows that do not line up (a foreign or partial labels file): join by key.
        positions = keys.append_column("position", pa.array(np.arange(keys.num_rows)))
        labels = positions.join(labels.select([*KEYS, "on_path", "label_source"]), KEYS,
                                join_type="left outer").sort_by("position")
        if labels.num_rows != keys.num_rows:
            raise CurateError("the labels table has several rows for one step; "
                              "run `curate label --force` to recompute it")
    on_path = pc.fill_null(labels.column("on_path"), True).to_numpy()
    sources = pc.fill_null(labels.column("label_source"), "heuristic").combine_chunks()
    return on_path.astype(bool), pc.if_else(pc.equal(sources, ""), "heuristic", sources)


def _layout(steps: pa.Table) -> tuple[Indices, pa.Table, pa.Array, Indices, Indices]:
    """(row of each step position, sorted keys, episode ids, first position of its episode,
    one past its episode's last position)."""
    row = _order(steps)
    keys = steps.select(KEYS).take(pa.array(row))
    episode_ids = keys.column("episode_id").combine_chunks()
    count = len(episode_ids)
    changes = pc.not_equal(episode_ids[1:], episode_ids[:-1]).to_numpy(zero_copy_only=False)
    bounds = np.concatenate([[0], np.flatnonzero(changes) + 1, [count]]).astype(np.int64)
    lengths = np.diff(bounds)
    start = np.repeat(bounds[:-1], lengths)
    return row, keys, episode_ids, start, start + np.repeat(lengths, lengths)


def _texts(steps: pa.Table, row: Indices, keys: pa.Table, end: Indices,
           annotations: pa.Table | None, corrections: pa.Table | None) -> dict[str, pa.Array]:
    count = len(row)
    text_columns = steps.select([name for name in TEXT_COLUMNS if name in steps.column_names])
    for name in TEXT_COLUMNS:  # a steps table without text columns has no texts
        if name not in text_columns.column_names:
            text_columns = text_columns.append_column(name, pa.nulls(count, pa.string()))
    if not np.array_equal(row, np.arange(count)):
        text_columns = text_columns.take(pa.array(row))
    return step_texts(text_columns, end - np.arange(count) > 1, _aligned(keys, annotations),
                      _aligned(keys, corrections))


def _prepare(steps: pa.Table, labels: pa.Table, annotations: pa.Table | None = None,
             corrections: pa.Table | None = None) -> _Steps:
    row, keys, episode_ids, start, end = _layout(steps)
    on_path, sources = _label_columns(keys, labels)
    columns = {name: steps.column(name).combine_chunks()
               for name in ("action", "action_text", "frame_id", "next_frame_id")}
    texts = _texts(steps, row, keys, end, annotations, corrections)
    return _Steps(columns, row, episode_ids, start, end, on_path, sources, texts)


def _aligned(keys: pa.Table, annotations: pa.Table | None) -> pa.Table | None:
    """The annotations' (or the reviewers' corrections') step_instruction and state for each
    row of ``keys`` (null where a step has none), or None without such a table."""
    if annotations is None or annotations.num_rows == 0:
        return None
    positions = keys.append_column("position", pa.array(np.arange(keys.num_rows)))
    wanted = annotations.select([*KEYS, "step_instruction", "state"])
    joined = positions.join(wanted, KEYS, join_type="left outer").sort_by("position")
    if joined.num_rows != keys.num_rows:
        raise CurateError("the annotations table has several rows for one step; "
                          "run `curate annotate --force` to rewrite it")
    return joined


def _windows(steps: _Steps, params: SegmentParams
             ) -> tuple[Indices, Indices, Indices, npt.NDArray[np.bool_]]:
    """(first step, horizon, real steps, runs to the end) of every window, in (episode, t, K)
    order. An ``end`` window's horizon is the number of steps left, capped by max_horizon."""
    local = np.arange(len(steps), dtype=np.int64) - steps.start
    firsts = np.flatnonzero(local % params.stride == 0)
    codes = np.array([h if isinstance(h, int) else 0 for h in params.horizons], dtype=np.int64)
    first = np.repeat(firsts, len(codes))
    code = np.tile(codes, len(firsts))
    left = steps.end[first] - first
    to_end = code == 0
    horizon = np.where(to_end, np.minimum(left, params.max_horizon), code)
    return first, horizon, np.minimum(horizon, left), to_end


def _ranges(begin: Indices, length: Indices) -> tuple[Indices, Indices]:
    """List offsets and the flattened positions begin[i] .. begin[i] + length[i] - 1."""
    offsets = np.zeros(len(length) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], length)
    return offsets, np.repeat(begin, length) + within


def _list_column(name: str, offsets: Indices, values: pa.Array) -> pa.Array:
    kind = table_schema("segments").field(name).type
    if values.type != kind.value_type:
        values = values.cast(kind.value_type)
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), values, type=kind)


def _padded(column: pa.Array, pad: pa.Array, indices: Indices) -> pa.Array:
    """column[indices], where index len(column) is the padding value."""
    return _take(pa.concat_arrays([column, pad.cast(column.type)]), pa.array(indices))


def _take(values: pa.Array, indices: pa.Array) -> pa.Array:
    """values.take(indices), a struct taken field by field: Arrow's struct take was 7x
    slower than taking its children, and most action fields are null in a whole batch
    (an all-null child is not taken at all). The same array, so the same bytes."""
    if not pa.types.is_struct(values.type) or values.null_count:
        return values.take(indices)
    children = [pa.nulls(len(indices), field.type) if child.null_count == len(child)
                else _take(child, indices)
                for field, child in zip(values.type, (values.field(i) for i in
                                                      range(values.type.num_fields)),
                                        strict=True)]
    return pa.StructArray.from_arrays(children, fields=list(values.type))


def _consistency(steps: _Steps, first: Indices, horizon: Indices,
                 real: Indices) -> npt.NDArray[np.float64]:
    """Consistency per window: 1.0 when every real step is on the path (the window is the
    loop-free path itself), otherwise the window scored against the next K on-path steps.

    The windows to score, of every horizon, index one list of the batch's distinct actions
    and share one cache of pair scores: windows of close horizons (an `end` horizon has
    one per remaining length) are scored in one call, and the calls score mostly the same
    pairs."""
    off_path = np.concatenate([[0], np.cumsum(~steps.on_path)])
    scores = np.ones(len(first), dtype=np.float64)
    to_score = np.flatnonzero(off_path[first + real] - off_path[first] > 0)
    if not len(to_score):
        return scores
    on_path = np.flatnonzero(steps.on_path)
    groups = _horizon_groups(horizon, to_score)
    windows = [_window_steps(steps, on_path, first[chosen], real[chosen], horizon[chosen], k)
               for k, chosen in groups]
    used = np.unique(np.concatenate([indices[indices >= 0] for window, future, _ in windows
                                     for indices in (window, future)]))
    distinct: dict[Action, int] = {DONE: 0}
    rows = steps.take("action", used)
    ids = np.array([distinct.setdefault(action, len(distinct)) for action in Action.from_columns(
        {field.name: values.to_pylist() for field, values in zip(rows.type, rows.flatten(),
                                                                  strict=True)})],
                   dtype=np.int64)
    by_step = np.concatenate([[0], ids])  # position 0 is `done`
    # The distinct actions' fields as arrays, from their first rows (ids count up in the
    # order the actions first occur).
    distinct_ids, first_row = np.unique(ids, return_index=True)
    arrays = ActionArrays.from_arrow(pa.concat_arrays([
        pa.array([DONE_ROW], rows.type), rows.take(pa.array(first_row[distinct_ids > 0]))]),
        list(distinct))
    actions, pairs = list(distinct), PairCache(arrays)

    def action_ids(indices: Indices) -> Indices:
        found: Indices = by_step[np.where(indices >= 0, np.searchsorted(used, indices) + 1, 0)]
        return found

    for (_, chosen), (window, future, mask) in zip(groups, windows, strict=True):
        predicted, reference = action_ids(window), action_ids(future)
        group = np.ones(len(chosen), dtype=np.float64)
        differs = (predicted != reference).any(axis=1)  # the same actions score 1.0 as they are
        group[differs] = score_windows(actions, predicted[differs], reference[differs],
                                       mask[differs], pairs=pairs,
                                       lengths=horizon[chosen][differs])
        scores[chosen] = group
    return scores


def _horizon_groups(horizon: Indices, to_score: Indices) -> list[tuple[int, Indices]]:
    """The windows to score in groups of close horizons, each with its widest horizon: one
    score_windows call per group instead of one per horizon (an `end` horizon has one per
    remaining length). A group's horizons are within 1.5x of one another, so padding the
    narrower windows to the widest costs less than the calls it saves."""
    groups: list[tuple[int, list[int]]] = []
    for k in np.unique(horizon[to_score]).tolist():
        if groups and k <= 1.5 * groups[-1][1][0]:
            groups[-1][1].append(k)
        else:
            groups.append((k, [k]))
    return [(members[-1], to_score[np.isin(horizon[to_score], members)])
            for _, members in groups]


def _window_steps(steps: _Steps, on_path: Indices, first: Indices, real: Indices,
                  horizon: Indices, width: int
                  ) -> tuple[Indices, Indices, npt.NDArray[np.bool_]]:
    """(window steps, on-path future steps, mask) of windows of horizons up to ``width``, as
    (windows, width) arrays of step positions; -1 is `done` padding (past each window's
    own horizon too)."""
    offsets = np.arange(width, dtype=np.int64)
    mask = offsets[None, :] < real[:, None]
    window = np.where(mask, first[:, None] + offsets[None, :], -1)
    position = np.searchsorted(on_path, first)[:, None] + offsets[None, :]
    future = on_path[np.minimum(position, len(on_path) - 1)] if len(on_path) else position
    future = np.where((position < len(on_path)) & (future < steps.end[first][:, None])
                      & (offsets[None, :] < horizon[:, None]), future, -1)
    return window, future, mask


def segment_batch(store: Store, batch: str, params: SegmentParams) -> pa.Table:
    labels = read_current(store.path, "labels", batch, label_params(),
                          columns=["episode_id", "step_index", "on_path", "label_source"])
    if labels is None:
        raise CurateError(f"batch {batch} of {store.path} has no current labels; "
                          f"run `curate label {store.path}` first")
    # Human review takes precedence over the heuristics: corrected actions, reviewed labels,
    # corrected step instructions and states.
    reviews = read_reviews(store)
    steps = _reviewed_steps(store, batch, reviews)
    labels = apply_reviews_to_labels(labels, reviews)
    episodes = read_parquet(batch_file(store.path, "episodes", batch),
                            columns=["episode_id", "instruction", "terminated"])
    prepared = _prepare(steps, labels, read_annotations(store, batch),
                        step_text_corrections(reviews))
    return apply_reviews_to_segments(_segments_table(prepared, episodes, params), reviews)


def _reviewed_steps(store: Store, batch: str, reviews: pa.Table | None) -> pa.Table:
    steps = read_parquet(batch_file(store.path, "steps", batch),
                         columns=["episode_id", "step_index", "action", "action_text",
                                  "frame_id", "next_frame_id", "step_instruction",
                                  "observation"])
    return apply_action_corrections(steps, reviews)


StepTexts = dict[str, str | None]


def current_step_texts(store: Store) -> dict[tuple[str, int], StepTexts]:
    """Each step's state and step instruction with their sources (state, state_source,
    step_instruction, step_instruction_source) as the next ``segment`` computes them, reviews
    and annotations applied: what a step review shows the reviewer to correct."""
    reviews = read_reviews(store)
    corrections = step_text_corrections(reviews)
    found: dict[tuple[str, int], StepTexts] = {}
    for batch in sorted(store.manifest.batches):
        steps = _reviewed_steps(store, batch, reviews)
        row, keys, _, _, end = _layout(steps)
        texts = _texts(steps, row, keys, end, read_annotations(store, batch), corrections)
        columns = {name: values.to_pylist() for name, values in texts.items()}
        for position, (episode, index) in enumerate(zip(
                keys.column("episode_id").to_pylist(), keys.column("step_index").to_pylist(),
                strict=True)):
            found[(episode, int(index))] = {name: values[position]
                                            for name, values in columns.items()}
    return found


def read_annotations(store: Store, batch: str) -> pa.Table | None:
    """The batch's annotations (step instructions and states a model wrote), if any."""
    path = batch_file(store.path, "annotations", batch)
    if not path.exists():
        return None
    return read_parquet(path, columns=[*KEYS, "step_instruction", "state"])


def annotations_fingerprint(store: Store) -> str:
    """Changes when any batch's annotations are rewritten, so segments follow them."""
    digest = hashlib.sha256()
    for batch in sorted(store.manifest.batches):
        path = batch_file(store.path, "annotations", batch)
        if path.exists():
            digest.update(batch.encode())
            digest.update((pq.read_schema(path).metadata or {}).get(PARAMS_KEY, b""))
            digest.update(str(pq.read_metadata(path).num_rows).encode())
    return digest.hexdigest()[:16]


def _segments_table(steps: _Steps, episodes: pa.Table, params: SegmentParams) -> pa.Table:
    first, horizon, real, to_end = _windows(steps, params)
    local = first - steps.start[first]
    columns = steps.columns
    episode_of = steps.episode_ids.take(pa.array(first))
    episode_row = pc.index_in(episode_of, value_set=episodes.column("episode_id"))
    if episode_row.null_count:
        missing = episode_of.filter(episode_row.is_null())[0]
        raise CurateError(f"episode {missing} has steps but no row in the episodes table")
    # An episode not known to have ended by itself counts as cut off: its padding is not a
    # real `done`, and exports must not teach the model to stop there.
    ending = pc.if_else(pc.fill_null(episodes.column("terminated"), False), "terminated",
                        "truncated").take(episode_row)
    history_from = np.maximum(steps.start[first], first - params.history)
    history_offsets, history = _ranges(history_from, first - history_from)
    target_offsets, target = _ranges(first, horizon)
    inside = target < np.repeat(first + real, horizon)
    # Past the episode's end the target is padding: index len(steps) in _padded.
    padded = np.where(inside, steps.row[np.where(inside, target, 0)], len(steps))
    padded_position = np.where(inside, target, len(steps))  # the texts are in position order
    reaches_end = first + real == steps.end[first]
    horizon_name = pc.if_else(pa.array(to_end), END, pa.array(horizon).cast(pa.string()))

    def text_list(name: str, pad: str | None) -> pa.Array:
        return _list_column(f"target_{name}s", target_offsets,
                            _padded(steps.texts[name], pa.array([pad], pa.string()),
                                    padded_position))

    return pa.Table.from_arrays([
        pc.binary_join_element_wise(episode_of, pa.array(local).cast(pa.string()),
                                    horizon_name, ":"),
        episode_of,
        pa.array(local, pa.int32()),
        pa.array(horizon, pa.int32()),
        episodes.column("instruction").take(episode_row),
        _list_column("history", history_offsets, steps.take("action_text", history)),
        _list_column("history_frame_ids", history_offsets, steps.take("frame_id", history)),
        steps.take("frame_id", first),
        _list_column("target_actions", target_offsets,
                     _padded(columns["action"], pa.array([DONE_ROW]), padded)),
        _list_column("target_action_texts", target_offsets,
                     _padded(columns["action_text"], pa.array([DONE_TEXT]), padded)),
        _list_column("target_next_frame_ids", target_offsets,
                     _padded(columns["next_frame_id"], pa.nulls(1), padded)),
        text_list("state", None), text_list("state_source", "none"),
        text_list("step_instruction", None), text_list("step_instruction_source", "none"),
        _list_column("mask", target_offsets, pa.array(inside)),
        pa.array(to_end),
        # A window that reaches the episode's end says how the episode ended, padded or not:
        # a K-step window whose last target is the last step ends where the episode does.
        pc.if_else(pa.array(reaches_end), ending, "within"),
        pa.array(_consistency(steps, first, horizon, real)),
        _window_sources(steps.sources, first, real),
    ], schema=table_schema("segments"))


def _window_sources(sources: pa.Array, first: Indices, real: Indices) -> pa.Array:
    """The label_source shared by every real step of each window, or ``mixed``."""
    changed = pc.not_equal(sources[1:], sources[:-1]).to_numpy(zero_copy_only=False)
    changes = np.concatenate([[0], np.cumsum(changed, dtype=np.int64)])
    last = first + real - 1
    uniform = changes[last] - changes[first] == 0
    return pc.if_else(pa.array(uniform), sources.take(pa.array(first)), "mixed")


def segment(store_path: str | Path, *, params: SegmentParams | None = None,
            force: bool = False, engine: Engine | None = None) -> SegmentSummary:
    """Cut every labelled episode into K-step windows for each horizon.

    With ``engine`` (a process pool, a RayEngine; the caller closes it) each batch is one
    task that computes and writes its own segments file, returning only counts; without,
    batches are computed here, each file written while the next is computed."""
    params = params or SegmentParams()
    params.check()
    path = Path(store_path)
    open_store(path)  # a missing or foreign store is refused before the lock is made
    with writing_to(path), store_lock(path):
        return _segment(open_store(path), params, force, engine)


@dataclass(frozen=True)
class SegmentJob:
    """One batch for a worker to segment and write, stamped with ``stamp``."""

    store: Store
    batch: str
    params: SegmentParams
    stamp: dict[str, Any]


def segment_and_write(job: SegmentJob) -> pa.Array:
    """Worker body: the batch's segments file, written where the store is; only its
    consistency scores go back (what the summary needs)."""
    table = segment_batch(job.store, job.batch, job.params)
    write_derived(job.store.path, "segments", job.batch, table, job.stamp)
    return table.column("consistency").combine_chunks()


def _segmented_here(jobs: list[SegmentJob], queue: WriteQueue | None) -> Iterator[pa.Array]:
    for job in jobs:
        table = segment_batch(job.store, job.batch, job.params)
        write = functools.partial(write_derived, job.store.path, "segments", job.batch, table,
                                  job.stamp)
        if queue is not None:
            queue.submit(write)
        else:
            write()
        yield table.column("consistency").combine_chunks()


def _segment(store: Store, params: SegmentParams, force: bool,
             engine: Engine | None) -> SegmentSummary:
    summary = SegmentSummary()
    # A new review pull changes the stamp, so segments are recomputed with it.
    stamp = {**params.as_dict(), "reviews": reviews_fingerprint(store),
             "annotations": annotations_fingerprint(store)}
    total, weighted = 0, 0.0
    batches = sorted(store.manifest.batches)
    stale = [SegmentJob(store, batch, params, stamp) for batch in batches
             if force or not is_current(store.path, "segments", batch, stamp)]
    # In this process with several batches, each file is written on a background thread
    # while the next batch is computed; with one there is nothing to overlap, so no thread.
    queue = WriteQueue() if engine is None and len(stale) > 1 else None
    computed = iter(_segmented_here(stale, queue) if engine is None
                    else engine.map_ordered(segment_and_write, stale))
    stale_names = {job.batch for job in stale}
    try:
        for batch in batches:
            if batch in stale_names:
                scores = next(computed)
                summary.batches_segmented += 1
                fault("segment.after-batch")
            else:
                summary.batches_current += 1
                scores = read_parquet(batch_file(store.path, "segments", batch),
                                      columns=["consistency"]).column("consistency")
            total += len(scores)
            weighted += pc.sum(scores).as_py() or 0.0
    finally:
        if queue is not None:
            queue.close()
    summary.segments = total
    summary.mean_consistency = weighted / total if total else 0.0
    return summary
