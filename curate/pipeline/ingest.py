"""``ingest``: source units in, committed store batches out; incremental and resumable.

The plan: discover units; fingerprint the ones the store already knows (on the engine) and
skip those unchanged; cut the rest, in discovery order, into batches of ``batch_units``
units. Each batch is one engine task: a worker reads its units and writes the batch's files
straight into the store (curate.pipeline.batches), and the driver commits the batches in
input order, so the bytes never depend on the engine or on scheduling. A changed unit is
written anew and its old rows are removed from the batch that held them. An interrupted
ingest keeps every batch it committed; running it again picks up the rest.

A TFRecord shard (a streaming unit) is read like any other unit, by the worker that writes
its batch, episode by episode. Only a batch whose worker kept dying is read and written by
the driver, unit by unit (the unit that kills its worker becomes a reject), and every batch
when the caller asks for each unit's tables (``on_unit``).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from curate.engines import Engine, LocalEngine, remote
from curate.errors import CurateError
from curate.pipeline.batches import (
    BatchJob,
    FrameDrop,
    IngestSummary,
    UnitTask,
    WrittenBatch,
    append_unit,
    drop_frames,
    read_task,
    stream_into,
    streams,
    unit_unchanged,
    write_batch,
)
from curate.pipeline.extract import UnitTables
from curate.progress import Progress, SilentProgress
from curate.sources import adapters, hub
from curate.sources.adapters.base import SourceUnit, forget_inputs, unit_fingerprint
from curate.sources.discover import PlannedUnit, discover
from curate.store.core import (
    BatchWriter,
    Manifest,
    discard_batch,
    init_store,
    open_store,
    read_parquet,
    rows_matching,
    rows_not_matching,
    store_lock,
)
from curate.store.derived import carry_over
from curate.store.faults import fault
from curate.store.layout import batch_file
from curate.store.outputs import check_output, writing_to
from curate.store.schema import DERIVED_TABLES, TABLES, table_schema

log = logging.getLogger(__name__)

DEFAULT_BATCH_UNITS = 256


@dataclass(frozen=True)
class _Streamed:
    """A unit whose adapter streams: read in this process, episode by episode."""

    task: UnitTask


WORKER_CRASHED = "worker crashed while reading this source"


def _crashed_unit(task: UnitTask, why: str) -> UnitTables:
    """A unit whose worker died on it twice (a native decoder crash, the OOM killer): one
    episode-level reject naming it, instead of a failed ingest. The reason is the same on
    every engine (``why`` is in the log) so the rejects table's bytes are too; the unit's
    fingerprint is recorded, so like any unreadable unit it is read again once it changes."""
    unit, name = task.planned.unit, task.planned.adapter
    files = adapters.get(name).input_files(unit) if name else [unit.path]
    fingerprint = unit_fingerprint(unit, files)
    log.warning("%s: %s (%s)", unit.source_path, WORKER_CRASHED, why)
    reject = {
        "source_path": unit.source_path, "file": unit.source_path, "position": "",
        "level": "episode", "source_format": name, "episode_id": None,
        "input_fingerprint": fingerprint,
        "reason": f"{WORKER_CRASHED}: the process died on it twice (a crash in a native "
                  "decoder, or out of memory)",
        "hint": "check the file opens in a viewer; if memory ran out, retry with fewer "
                "workers; it is read again when it changes",
    }
    return UnitTables(
        source_path=unit.source_path, source_format=name, fingerprint=fingerprint,
        episodes=table_schema("episodes").empty_table(),
        steps=table_schema("steps").empty_table(),
        frames=table_schema("frames").empty_table(),
        rejects=pa.Table.from_pylist([reject], schema=table_schema("rejects")))


def _unit_results(tasks: Iterator[UnitTask], engine: Engine) -> Iterator[UnitTables | _Streamed]:
    """Read units on the engine one task each, yielding results in task order. Streaming
    units are not sent to workers: the tasks before one are drained, then it is handed back
    as a marker, so the order of the whole sequence is kept."""
    held: list[UnitTask] = []

    def until_streaming() -> Iterator[UnitTask]:
        for task in tasks:
            if streams(task):
                held.append(task)
                return
            yield task

    while True:
        yield from engine.map_ordered(read_task, until_streaming(), on_crash=_crashed_unit)
        if not held:
            return
        yield _Streamed(held.pop())


@dataclass(frozen=True)
class _CrashedBatch:
    """A batch whose worker died on it on every attempt: the driver reads it unit by unit
    (so the unit that kills its worker becomes that unit's reject) and writes it."""

    job: BatchJob


def _crashed_batch(job: BatchJob, why: str) -> WrittenBatch | _CrashedBatch:
    log.warning("a worker died twice writing a batch of %d unit(s) (%s); reading them one "
                "at a time", len(job.tasks), why)
    return _CrashedBatch(job)


_Outcome = WrittenBatch | _CrashedBatch | list[UnitTask]


def _batch_outcomes(chunks: Iterator[list[UnitTask]], engine: Engine, store: Path,
                    in_driver: Callable[[list[UnitTask]], bool]) -> Iterator[_Outcome]:
    """Batches written by workers, in order; a chunk ``in_driver`` claims (one holding a
    streaming unit) is handed back as it is, once the jobs before it are done."""
    run = f"open-{os.getpid()}-r{uuid.uuid4().hex[:8]}"
    held: list[list[UnitTask]] = []
    numbered = enumerate(chunks)

    def until_driver() -> Iterator[BatchJob]:
        for number, chunk in numbered:
            if in_driver(chunk):
                held.append(chunk)
                return
            yield BatchJob(store, f"{run}-{number}", tuple(chunk))

    while True:
        yield from engine.map_ordered(write_batch, until_driver(), on_crash=_crashed_batch)
        if not held:
            return
        yield held.pop()


def ingest(
    sources: list[str | Path],
    store: str | Path,
    *,
    source_format: str | None = None,
    workers: int = 1,
    batch_units: int = DEFAULT_BATCH_UNITS,
    progress: Progress | None = None,
    on_unit: Callable[[UnitTables], None] | None = None,
    engine: Engine | None = None,
    cache: Path | None = None,
    limit: int | None = None,
    task_configs: Path | None = None,
) -> IngestSummary:
    """Ingest recordings under ``sources`` into the store at ``store``.

    ``source_format`` forces one adapter instead of detection; ``workers`` > 1 runs adapters
    in a process pool; ``engine`` runs them elsewhere instead (a :class:`RayEngine`; the
    caller closes it); ``batch_units`` units are committed at a time (the resume
    granularity). Sources and the store may be URLs (see curate.engines.remote), mirrored through
    the local ``cache`` folder; ``hf://`` sources stream the files an adapter reads in place
    (curate.sources.hub), at most ``limit`` episodes from each. ``task_configs`` is a folder of
    task configs that adapters search for a run's instruction (``--tasks``; OSWorld).
    """
    with remote.local_folder(store, cache, kind="stores", pull=True) as store_path, \
            _engine(engine, workers) as running:
        local_sources, streamed = localise_inputs(
            sources, cache, forced=source_format, limit=limit,
            known=_known_fingerprints(store_path, sources))
        return _ingest(local_sources, streamed, store_path, source_format, batch_units,
                       progress, on_unit, running, task_configs)


def localise_inputs(sources: list[str | Path], cache: Path | None, *,
                    forced: str | None = None, limit: int | None = None,
                    known: Mapping[str, str] | None = None
                    ) -> tuple[list[Path], list[PlannedUnit]]:
    """Sources as local paths to discover, and the Hub files to stream. An ``hf://`` source
    streams what an adapter reads in place (curate.sources.hub); the rest of it is mirrored
    into the cache like any URL."""
    if limit is not None and not any(hub.is_hub_url(source) for source in sources):
        raise CurateError("--limit applies to files streamed from the Hub (hf:// sources)")
    local: list[Path] = []
    streamed: list[PlannedUnit] = []
    for source in sources:
        if not hub.is_hub_url(source):
            local.extend(remote.localise_sources([source], cache))
            continue
        url = str(source)
        plan = hub.plan_hub_source(url, remote.input_root(url, cache), forced=forced,
                                   limit=limit, known=known)
        streamed.extend(plan.streamed)
        if plan.mirrored:
            local.append(remote.fetch(url, cache, only=plan.mirrored))
    return local, streamed


def _known_fingerprints(store_path: Path, sources: list[str | Path]) -> dict[str, str]:
    """source_path -> fingerprint the store records, read only for hf:// sources (their
    unchanged files are then not opened at all); any doubt about the folder means none."""
    if not any(hub.is_hub_url(source) for source in sources):
        return {}
    try:
        known = open_store(store_path).known_sources()
    except CurateError:  # no store yet, or not one (check_output then says so)
        return {}
    return {path: fingerprint for path, (fingerprint, _) in known.items()}


@contextmanager
def _engine(engine: Engine | None, workers: int) -> Iterator[Engine]:
    """The caller's engine (left open for its next stage), or a local pool closed here."""
    if engine is not None:
        yield engine
        return
    with LocalEngine(workers) as local:
        yield local


def _ingest(sources: list[Path], streamed: list[PlannedUnit], store_path: Path,
            source_format: str | None, batch_units: int, progress: Progress | None,
            on_unit: Callable[[UnitTables], None] | None, engine: Engine,
            task_configs: Path | None = None) -> IngestSummary:
    """Refuse a store that is a file, foreign, or inside a source folder (it would be read
    back as input), then ingest holding the store's write lock."""
    check_output(store_path, kind="store", sources=sources)
    with writing_to(store_path), store_lock(store_path):
        check_output(store_path, kind="store", sources=sources)  # now nobody else writes
        return _ingest_locked(sources, streamed, store_path, source_format, batch_units,
                              progress, on_unit, engine, task_configs)


def _ingest_locked(sources: list[Path], streamed: list[PlannedUnit], store_path: Path,
                   source_format: str | None,
                   batch_units: int, progress: Progress | None,
                   on_unit: Callable[[UnitTables], None] | None,
                   engine: Engine, task_configs: Path | None = None) -> IngestSummary:
    progress = progress or SilentProgress()
    manifest = init_store(store_path)
    existing = open_store(store_path)
    known = existing.known_sources()
    summary = IngestSummary(store_path)

    planned = streamed + list(discover(sources, forced=source_format))
    if task_configs is not None:
        folder = task_configs.resolve()
        planned = [replace(p, unit=replace(p.unit, tasks=folder)) for p in planned]
    summary.units_seen = len(planned)
    tasks = [UnitTask(p, known.get(p.unit.source_path, (None, ""))[0]) for p in planned]
    run = _Run(store_path, engine, progress, summary, existing.frame_ids(), on_unit,
               _Committer(store_path, manifest, known, summary))
    progress.start(len(planned), "ingest")
    try:
        changed = _changed(tasks, engine, progress, summary)
        chunks = (changed[i:i + batch_units] for i in range(0, len(changed), batch_units))

        def in_driver(chunk: list[UnitTask]) -> bool:
            return on_unit is not None  # it wants every unit's tables in this process

        for outcome in _batch_outcomes(chunks, engine, store_path, in_driver):
            if isinstance(outcome, WrittenBatch):
                run.commit_written(outcome)
            elif isinstance(outcome, _CrashedBatch):
                discard_batch(store_path, outcome.job.token)
                run.write_here(list(outcome.job.tasks))
            else:
                run.write_here(outcome)
    finally:
        progress.close()
    return summary


def _changed(tasks: list[UnitTask], engine: Engine, progress: Progress,
             summary: IngestSummary) -> list[UnitTask]:
    """The tasks whose units are new or changed, in order. Units the store knows are
    fingerprinted on the engine (that reads their files); unchanged ones are counted."""
    known = [task for task in tasks if task.known_fingerprint is not None]
    flags: Iterable[bool]
    if isinstance(engine, LocalEngine) and engine.workers > 1:
        # Hashing and reading release the GIL, so threads here fingerprint in parallel; a
        # worker process would first import every adapter to find a unit's files, which
        # made an unchanged build's pool cost more than the whole check.
        with ThreadPoolExecutor(max_workers=engine.workers) as pool:
            flags = list(pool.map(unit_unchanged, known))
        forget_inputs()  # changed units are read by the workers, not from bytes kept here
    else:
        flags = engine.map_ordered(unit_unchanged, known, on_crash=lambda task, why: False)
    unchanged = {id(task) for task, same in zip(known, flags, strict=True) if same}
    for _ in unchanged:
        summary.units_unchanged += 1
        progress.advance(note="unchanged")
    # Checked already: the readers below need not fingerprint them again.
    return [replace(task, known_fingerprint=None) for task in tasks if id(task) not in unchanged]


@dataclass
class _Run:
    """The driver's side of one ingest: commits batches in order, dropping frames the store
    already holds from each one."""

    store: Path
    engine: Engine
    progress: Progress
    summary: IngestSummary
    known_frames: set[str]
    on_unit: Callable[[UnitTables], None] | None
    commit: _Committer

    def commit_written(self, written: WrittenBatch) -> None:
        """Commit a batch a worker wrote, after the worker drops repeated frames from it."""
        repeated = self.known_frames.intersection(written.frame_ids)
        if repeated:
            drop = FrameDrop(self.store, written.token, frozenset(repeated))
            list(self.engine.map_ordered(drop_frames, [drop]))
            written.summary.frames_new -= len(repeated)
            written.summary.frame_bytes_new -= sum(
                size for frame_id, size in zip(written.frame_ids, written.frame_sizes,
                                               strict=True) if frame_id in repeated)
        self.known_frames.update(written.frame_ids)
        self.summary.add_read(written.summary)
        self._count_replaced(written.units)
        self.commit(written)
        for _ in written.units:
            self.progress.advance()

    def write_here(self, tasks: list[UnitTask]) -> None:
        """Read and write one batch in the driver, unit by unit (for on_unit, or a batch
        whose worker kept dying)."""
        writer = BatchWriter(self.store)
        try:
            for result in _unit_results(iter(tasks), self.engine):
                if isinstance(result, _Streamed):
                    result = stream_into(writer, result.task, self.known_frames, self.summary)
                if self.on_unit is not None:
                    self.on_unit(result)
                append_unit(writer, result, self.known_frames, self.summary)
                self.progress.advance()
                fault("ingest.after-unit")
            self._count_replaced(writer.units)
            self.commit(writer)
        except BaseException:
            writer.abort()
            raise

    def _count_replaced(self, units: list[tuple[str, str]]) -> None:
        self.summary.units_replaced += sum(path in self.commit.known for path, _ in units)


class _Committer:
    """Commits batches so that a crash never shows a source twice or not at all: the old
    batches holding re-read sources are rewritten without them first (files only), then one
    manifest write lists the new batch and the rewritten ones and drops the old, then the
    old files are removed."""

    def __init__(self, store: Path, manifest: Manifest, known: dict[str, tuple[str, str]],
                 summary: IngestSummary) -> None:
        self.store, self.manifest, self.known, self.summary = store, manifest, known, summary
        self.renamed: dict[str, str | None] = {}  # rewritten batch -> its successor

    def _current(self, batch: str) -> str | None:
        while batch in self.renamed:
            successor = self.renamed[batch]
            if successor is None:
                return None
            batch = successor
        return batch

    def __call__(self, writer: BatchWriter | WrittenBatch) -> None:
        moved: dict[str, set[str]] = {}
        for source_path, _ in writer.units:
            if source_path in self.known:
                old = self._current(self.known[source_path][1])
                if old is not None:
                    moved.setdefault(old, set()).add(source_path)
        for old, paths in sorted(moved.items()):
            self.renamed[old] = _rewrite_without(self.store, self.manifest, old, paths)
        name = writer.commit(self.manifest)
        for old in sorted(moved):
            for table in (*TABLES, *DERIVED_TABLES):
                batch_file(self.store, table, old).unlink(missing_ok=True)
        self.summary.batches_committed += 1
        log.info("committed batch %s (%d units)", name, len(writer.units))


def _rewrite_without(store: Path, manifest: Manifest, old: str, moved: set[str]) -> str | None:
    """Write ``old`` again without the rows of re-read units, under its new name, and swap
    the names in ``manifest`` (the caller writes it); the name, or None when nothing is left."""
    if old not in manifest.batches:
        return None
    source = {table: read_parquet(batch_file(store, table, old)) for table in TABLES}
    gone_episodes = set(rows_matching(source["episodes"], "source_path", moved)
                        .column("episode_id").to_pylist())
    kept = {
        "episodes": rows_not_matching(source["episodes"], "source_path", moved),
        "steps": rows_not_matching(source["steps"], "episode_id", gone_episodes),
        "frames": source["frames"],  # content-addressed: other episodes may share them
        "rejects": rows_not_matching(source["rejects"], "source_path", moved),
        "sources": rows_not_matching(source["sources"], "source_path", moved),
    }
    writer = BatchWriter(store)
    for table, rows in kept.items():
        writer.add(table, rows)
    manifest.batches.remove(old)
    if writer.empty:
        writer.abort()
        return None
    # A batch left with frames only is named after the batch it came from.
    new = writer.commit(manifest, salt="" if writer.units else f"frames-of-{old}",
                        write_manifest=False)
    for table in DERIVED_TABLES:  # what the kept sources had computed stays valid
        carry_over(store, table, old, new, gone_episodes)
    return new


__all__ = ["IngestSummary", "SourceUnit", "ingest"]
