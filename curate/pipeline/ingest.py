"""``ingest``: source units in, committed store batches out; incremental and resumable.

The plan: discover units, run :func:`curate.pipeline.extract.extract_unit` on each (in a process
pool when ``workers > 1``, results consumed in discovery order so the bytes never depend on
scheduling), append their rows to the open batch, commit the batch every ``batch_units``
units. A unit whose fingerprint is already committed is skipped; a changed unit is written
anew and its old rows are removed from the batch that held them. An interrupted ingest keeps
every batch it committed; running it again picks up the rest.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from curate.engines import Engine, LocalEngine, fault_point, remote
from curate.pipeline.extract import UnitTables, extract_unit, problem_fingerprint, stream_unit
from curate.progress import Progress, SilentProgress
from curate.sources import adapters
from curate.sources.adapters.base import SourceUnit, fingerprint_files, forget_inputs
from curate.sources.discover import PlannedUnit, discover
from curate.store.core import (
    BatchWriter,
    Manifest,
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


@dataclass
class IngestSummary:
    """What one ingest did; the CLI prints it, the API returns it."""

    store: Path
    units_seen: int = 0
    units_read: int = 0
    units_unchanged: int = 0
    units_replaced: int = 0
    episodes: int = 0
    steps: int = 0
    frames_new: int = 0
    frame_bytes_new: int = 0
    rejects: int = 0
    rejects_by_level: Counter[str] = field(default_factory=Counter)
    episodes_by_format: Counter[str] = field(default_factory=Counter)
    batches_committed: int = 0

    @property
    def wrote_anything(self) -> bool:
        return self.batches_committed > 0


@dataclass(frozen=True)
class _Task:
    planned: PlannedUnit
    known_fingerprint: str | None


@dataclass(frozen=True)
class _Unchanged:
    source_path: str


@dataclass(frozen=True)
class _Streamed:
    """A unit whose adapter streams: read in this process, episode by episode."""

    task: _Task


def _streams(task: _Task) -> bool:
    name = task.planned.adapter
    return name is not None and adapters.get(name).streams


def _unchanged(task: _Task) -> bool:
    unit, adapter_name = task.planned.unit, task.planned.adapter
    if task.known_fingerprint is None:
        return False
    if task.planned.problem is not None:
        return problem_fingerprint(task.planned.problem) == task.known_fingerprint
    try:
        files = adapters.get(adapter_name).input_files(unit) if adapter_name else [unit.path]
        same = fingerprint_files(unit.path, files) == task.known_fingerprint
    except OSError:  # unreadable now: read it again, and its reject says why
        return False
    if same:
        forget_inputs()  # the unit is not read: drop the bytes fingerprinting kept
    return same


def _run_task(task: _Task) -> UnitTables | _Unchanged:
    """Worker body: skip an unchanged unit cheaply, else extract it."""
    if _unchanged(task):
        return _Unchanged(task.planned.unit.source_path)
    fault_point(task.planned.unit.source_path)
    return extract_unit(task.planned.unit, task.planned.adapter, task.planned.problem)


WORKER_CRASHED = "worker crashed while reading this source"


def _crashed_unit(task: _Task, why: str) -> UnitTables:
    """A unit whose worker died on it twice (a native decoder crash, the OOM killer): one
    episode-level reject naming it, instead of a failed ingest. The reason is the same on
    every engine (``why`` is in the log) so the rejects table's bytes are too; the unit's
    fingerprint is recorded, so like any unreadable unit it is read again once it changes."""
    unit, name = task.planned.unit, task.planned.adapter
    files = adapters.get(name).input_files(unit) if name else [unit.path]
    fingerprint = fingerprint_files(unit.path, files)
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


_Result = UnitTables | _Unchanged | _Streamed


def _results(tasks: Iterator[_Task], engine: Engine) -> Iterator[_Result]:
    """Run tasks on the engine, yielding results in task order (bounded in flight).
    Streaming units are not sent to workers: the tasks before one are drained, then it is
    handed back as a marker, so the order of the whole sequence is kept."""
    held: list[_Task] = []

    def until_streaming() -> Iterator[_Task]:
        for task in tasks:
            if _streams(task):
                held.append(task)
                return
            yield task

    while True:
        yield from engine.map_ordered(_run_task, until_streaming(), on_crash=_crashed_unit)
        if not held:
            return
        yield _Streamed(held.pop())


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
) -> IngestSummary:
    """Ingest recordings under ``sources`` into the store at ``store``.

    ``source_format`` forces one adapter instead of detection; ``workers`` > 1 runs adapters
    in a process pool; ``engine`` runs them elsewhere instead (a :class:`RayEngine`; the
    caller closes it); ``batch_units`` units are committed at a time (the resume
    granularity). Sources and the store may be URLs (see curate.engines.remote), mirrored through
    the local ``cache`` folder.
    """
    with remote.local_folder(store, cache, kind="stores", pull=True) as store_path, \
            _engine(engine, workers) as running:
        local_sources = remote.localise_sources(sources, cache)
        return _ingest(local_sources, store_path, source_format, batch_units, progress,
                       on_unit, running)


@contextmanager
def _engine(engine: Engine | None, workers: int) -> Iterator[Engine]:
    """The caller's engine (left open for its next stage), or a local pool closed here."""
    if engine is not None:
        yield engine
        return
    with LocalEngine(workers) as local:
        yield local


def _ingest(sources: list[Path], store_path: Path, source_format: str | None,
            batch_units: int, progress: Progress | None,
            on_unit: Callable[[UnitTables], None] | None, engine: Engine) -> IngestSummary:
    """Refuse a store that is a file, foreign, or inside a source folder (it would be read
    back as input), then ingest holding the store's write lock."""
    check_output(store_path, kind="store", sources=sources)
    with writing_to(store_path), store_lock(store_path):
        check_output(store_path, kind="store", sources=sources)  # now nobody else writes
        return _ingest_locked(sources, store_path, source_format, batch_units, progress,
                              on_unit, engine)


def _ingest_locked(sources: list[Path], store_path: Path, source_format: str | None,
                   batch_units: int, progress: Progress | None,
                   on_unit: Callable[[UnitTables], None] | None,
                   engine: Engine) -> IngestSummary:
    progress = progress or SilentProgress()
    manifest = init_store(store_path)
    existing = open_store(store_path)
    known = existing.known_sources()
    known_frames = existing.frame_ids()
    summary = IngestSummary(store_path)

    planned = list(discover(sources, forced=source_format))
    summary.units_seen = len(planned)
    tasks = (_Task(p, known.get(p.unit.source_path, (None, ""))[0]) for p in planned)
    commit = _Committer(store_path, manifest, known, summary)

    progress.start(len(planned), "ingest")
    writer = BatchWriter(store_path)
    try:
        for result in _results(tasks, engine):
            if isinstance(result, _Streamed):
                if _unchanged(result.task):
                    result = _Unchanged(result.task.planned.unit.source_path)
                else:
                    result = _stream_into(writer, result.task, known_frames, summary)
            if isinstance(result, _Unchanged):
                summary.units_unchanged += 1
                progress.advance(note="unchanged")
                continue
            if on_unit is not None:
                on_unit(result)
            if result.source_path in known:
                summary.units_replaced += 1
            _append(writer, result, known_frames, summary)
            progress.advance()
            fault("ingest.after-unit")
            if len(writer.units) >= batch_units:
                commit(writer)
                writer = BatchWriter(store_path)
        if not writer.empty:
            commit(writer)
        else:
            writer.abort()
    except BaseException:
        writer.abort()
        raise
    finally:
        progress.close()
    return summary


def _stream_into(writer: BatchWriter, task: _Task, known_frames: set[str],
                 summary: IngestSummary) -> UnitTables:
    """Write a streaming unit's episodes as the adapter finishes them; return the rest, with
    counts covering the whole unit so its sources row is complete."""
    written = [0, 0]

    def write(part: UnitTables) -> None:
        _append_rows(writer, part, known_frames, summary)
        written[0] += part.episodes.num_rows
        written[1] += part.steps.num_rows

    assert task.planned.adapter is not None
    rest = stream_unit(task.planned.unit, task.planned.adapter, write)
    return replace(rest, streamed_episodes=written[0], streamed_steps=written[1])


def _append_rows(writer: BatchWriter, result: UnitTables, known_frames: set[str],
                 summary: IngestSummary) -> None:
    ids = result.frames.column("frame_id").to_pylist()
    # Filtering copies the image bytes: only do it when some frame is already stored.
    new_frames = (rows_not_matching(result.frames, "frame_id", known_frames)
                  if known_frames.intersection(ids) else result.frames)
    known_frames.update(ids)
    writer.add("episodes", result.episodes)
    writer.add("steps", result.steps)
    writer.add("frames", new_frames)
    writer.add("rejects", result.rejects)
    summary.frames_new += new_frames.num_rows
    summary.frame_bytes_new += sum(new_frames.column("byte_size").to_pylist())
    summary.rejects_by_level.update(result.rejects.column("level").to_pylist())
    if result.source_format:
        summary.episodes_by_format[result.source_format] += result.episodes.num_rows


def _append(writer: BatchWriter, result: UnitTables, known_frames: set[str],
            summary: IngestSummary) -> None:
    _append_rows(writer, result, known_frames, summary)
    episodes, steps, rejects = result.summary
    writer.add("sources", pa.Table.from_pylist([{
        "source_path": result.source_path,
        "source_format": result.source_format,
        "input_fingerprint": result.fingerprint,
        "episodes": episodes,
        "steps": steps,
        "rejects": rejects,
        "batch": "",  # BatchWriter.commit fills in the batch's name
    }], schema=table_schema("sources")))
    summary.units_read += 1
    summary.episodes += episodes
    summary.steps += steps
    summary.rejects += rejects


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

    def __call__(self, writer: BatchWriter) -> None:
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
