"""Ingest batches written where they are read: workers write, the driver only commits.

A batch of ``batch_units`` source units is one task. The worker reads its units (a TFRecord
shard with its own streaming reader, episode by episode: no shard passes through the
driver), writes the batch's Parquet files under temporary names straight into the store (a
path every node mounts) and hands back what the driver needs to commit it: the batch's
name, its units, the ids and sizes of the frames it wrote, and counts. No frame's bytes
travel to the driver.

The driver commits batches in input order, which keeps the store's bytes independent of the
engine and of scheduling. Frames are content-addressed and stored once: a worker drops
repeats within its batch, and the driver, which knows every frame committed before, has a
worker rewrite the frames file of a batch that repeats one (:func:`drop_frames`), so what
is committed is the same whichever worker wrote which batch, and whenever.

A task whose worker is killed is run again by the engine under the same temporary names
(it writes the same bytes over the leftover), and nothing is in the manifest until the
driver commits; the files carry the driver's pid, so the next writer removes what a dead
run left behind (curate.store.core.remove_leftovers).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.engines import fault_point
from curate.pipeline.extract import (
    UNRECOGNISED,
    UnitTables,
    extract_unit,
    problem_fingerprint,
    stream_unit,
)
from curate.sources import adapters
from curate.sources.adapters.base import forget_inputs, unit_fingerprint
from curate.sources.discover import PlannedUnit
from curate.store.core import (
    ROW_GROUP_ROWS,
    BatchWriter,
    Manifest,
    TableSink,
    install_batch,
    read_parquet,
    rows_not_matching,
    temporary_name,
)
from curate.store.faults import fault
from curate.store.layout import temp_batch_file
from curate.store.schema import table_schema


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
    # (file, hint) of each file no adapter claimed: the hint names the nearest format.
    unrecognised: list[tuple[str, str]] = field(default_factory=list)
    batches_committed: int = 0

    @property
    def wrote_anything(self) -> bool:
        return self.batches_committed > 0

    def add_read(self, other: IngestSummary) -> None:
        """Add the counts of units read elsewhere (a worker's batch) to these."""
        self.units_read += other.units_read
        self.episodes += other.episodes
        self.steps += other.steps
        self.rejects += other.rejects
        self.frames_new += other.frames_new
        self.frame_bytes_new += other.frame_bytes_new
        self.rejects_by_level.update(other.rejects_by_level)
        self.episodes_by_format.update(other.episodes_by_format)
        self.unrecognised.extend(other.unrecognised)


@dataclass(frozen=True)
class UnitTask:
    """One discovered unit, with the fingerprint the store has for it (None: new)."""

    planned: PlannedUnit
    known_fingerprint: str | None


def unit_unchanged(task: UnitTask) -> bool:
    """Whether the unit's files still have the fingerprint the store recorded."""
    unit, adapter_name = task.planned.unit, task.planned.adapter
    if task.known_fingerprint is None:
        return False
    if task.planned.problem is not None:
        return problem_fingerprint(task.planned.problem) == task.known_fingerprint
    try:
        files = adapters.get(adapter_name).input_files(unit) if adapter_name else [unit.path]
        same = unit_fingerprint(unit, files) == task.known_fingerprint
    except OSError:  # unreadable now: read it again, and its reject says why
        return False
    if same:
        forget_inputs()  # the unit is not read: drop the bytes fingerprinting kept
    return same


def streams(task: UnitTask) -> bool:
    """Whether the unit's adapter streams (a TFRecord shard of thousands of episodes)."""
    name = task.planned.adapter
    return name is not None and adapters.get(name).streams_unit(task.planned.unit)


def read_task(task: UnitTask) -> UnitTables:
    """Read one unit (the fault hooks of the engine tests fire here, in workers only)."""
    fault_point(task.planned.unit.source_path)
    return extract_unit(task.planned.unit, task.planned.adapter, task.planned.problem)


def append_rows(writer: BatchWriter, result: UnitTables, known_frames: set[str],
                summary: IngestSummary) -> None:
    """Add a unit's rows to the open batch; frames in ``known_frames`` are not added again."""
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
    if result.source_format is None:
        summary.unrecognised.extend(
            (row["file"], row["hint"]) for row in result.rejects.to_pylist()
            if row["reason"] == UNRECOGNISED)
    if result.source_format:
        summary.episodes_by_format[result.source_format] += result.episodes.num_rows


def stream_into(writer: BatchWriter, task: UnitTask, known_frames: set[str],
                summary: IngestSummary) -> UnitTables:
    """Write a streaming unit's episodes as the adapter finishes them; return the rest, with
    counts covering the whole unit so its sources row is complete."""
    written = [0, 0]

    def write(part: UnitTables) -> None:
        append_rows(writer, part, known_frames, summary)
        written[0] += part.episodes.num_rows
        written[1] += part.steps.num_rows

    assert task.planned.adapter is not None
    fault_point(task.planned.unit.source_path)
    rest = stream_unit(task.planned.unit, task.planned.adapter, write)
    return replace(rest, streamed_episodes=written[0], streamed_steps=written[1])


def read_into(writer: BatchWriter, task: UnitTask, known_frames: set[str],
              summary: IngestSummary) -> None:
    """Read one unit into the open batch: a streaming unit episode by episode with this
    process's own reader (the shard is never sent anywhere), any other unit whole."""
    rest = (stream_into(writer, task, known_frames, summary) if streams(task)
            else read_task(task))
    append_unit(writer, rest, known_frames, summary)


def append_unit(writer: BatchWriter, result: UnitTables, known_frames: set[str],
                summary: IngestSummary) -> None:
    """Add a whole unit: its rows and its sources row."""
    append_rows(writer, result, known_frames, summary)
    episodes, steps, rejects = result.summary
    writer.add("sources", pa.Table.from_pylist([{
        "source_path": result.source_path,
        "source_format": result.source_format,
        "input_fingerprint": result.fingerprint,
        "episodes": episodes,
        "steps": steps,
        "rejects": rejects,
        "batch": "",  # BatchWriter.finish fills in the batch's name
    }], schema=table_schema("sources")))
    summary.units_read += 1
    summary.episodes += episodes
    summary.steps += steps
    summary.rejects += rejects


@dataclass(frozen=True)
class BatchJob:
    """A batch for a worker to read and write: its units, in order, and the temporary
    name its files get in the store (``open-<driver pid>-<run>-<n>``)."""

    store: Path
    token: str
    tasks: tuple[UnitTask, ...]


@dataclass
class WrittenBatch:
    """A batch a worker wrote under ``token``, for the driver to commit: no frame bytes,
    only what committing needs (its name, units, frame ids and sizes) and counts."""

    store: Path
    token: str
    name: str
    units: list[tuple[str, str]]
    frame_ids: list[str]
    frame_sizes: list[int]
    summary: IngestSummary

    def commit(self, manifest: Manifest) -> str:
        install_batch(self.store, self.token, self.name, manifest)
        return self.name


def write_batch(job: BatchJob) -> WrittenBatch:
    """Worker body: read the batch's units, write its files (frames repeated within the
    batch written once), close them under the job's temporary names."""
    writer = BatchWriter(job.store, job.token)
    tally = IngestSummary(job.store)
    seen: set[str] = set()
    try:
        for task in job.tasks:
            read_into(writer, task, seen, tally)
            fault("ingest.after-unit")
        name = writer.finish()
    except BaseException:
        writer.abort()
        raise
    frames = read_parquet(temp_batch_file(job.store, "frames", job.token),
                          columns=["frame_id", "byte_size"])
    return WrittenBatch(job.store, job.token, name, writer.units,
                        frames.column("frame_id").to_pylist(),
                        frames.column("byte_size").to_pylist(), tally)


@dataclass(frozen=True)
class FrameDrop:
    """Frames a written batch repeats from batches committed before it."""

    store: Path
    token: str
    frame_ids: frozenset[str]


def drop_frames(drop: FrameDrop) -> None:
    """Worker body: rewrite a written batch's frames file without ``drop.frame_ids``,
    streaming row group by row group (bounded memory), and swap it in atomically."""
    path = temp_batch_file(drop.store, "frames", drop.token)
    temporary = temporary_name(path)
    sink = TableSink(temporary, table_schema("frames"))
    try:
        for rows in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP_ROWS):
            sink.add(rows_not_matching(pa.Table.from_batches([rows]), "frame_id",
                                       set(drop.frame_ids)))
        sink.close()
    except BaseException:
        sink.abort()
        raise
    temporary.replace(path)


__all__ = ["BatchJob", "FrameDrop", "IngestSummary", "UnitTask", "WrittenBatch", "drop_frames",
           "read_into", "streams", "unit_unchanged", "write_batch"]
