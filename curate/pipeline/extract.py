"""The per-unit pure function: one source unit in, Arrow tables out.

This is what a process pool (or a cluster) runs: it touches nothing but its input, so it can
run anywhere and in any order. Whatever goes wrong inside an adapter becomes rejects.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import struct
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from curate.errors import SourceError
from curate.sources import adapters
from curate.sources.adapters.base import (
    UNREFERENCED_IMAGE,
    Adapter,
    EpisodeBuilder,
    RejectRecord,
    SourceUnit,
    UnitBuilder,
    fingerprint_files,
    forget_inputs,
    unit_fingerprint,
)
from curate.sources.nearest import unrecognised_hint
from curate.store.frames import Frame, ImageBytes
from curate.store.schema import table_schema

# The reason of a file no adapter claims (its hint names the nearest format).
UNRECOGNISED = "no adapter recognised this file"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitTables:
    """What one unit contributed: rows for each store table (frames not yet deduplicated)."""

    source_path: str
    source_format: str | None
    fingerprint: str
    episodes: pa.Table
    steps: pa.Table
    frames: pa.Table
    rejects: pa.Table
    # Episodes and steps of this unit already written by a streaming ingest.
    streamed_episodes: int = 0
    streamed_steps: int = 0

    @property
    def summary(self) -> tuple[int, int, int]:
        """(episodes, steps, rejects) of the whole unit, streamed parts included."""
        return (self.episodes.num_rows + self.streamed_episodes,
                self.steps.num_rows + self.streamed_steps, self.rejects.num_rows)


def _settle(out: UnitBuilder, episode: EpisodeBuilder) -> bool:
    """Check a finished episode; an episode without a single step trains nothing, so it
    becomes a reject instead of an empty shell. True when the episode is kept."""
    episode.check()
    if episode.steps:
        return True
    out.episodes.append(episode)  # drop_episode removes it again and records why
    out.drop_episode(episode, file=out.unit.source_path, position="",
                     reason="no usable step in this episode",
                     hint="the recording is empty or every step was rejected "
                          "(see this source's other rejects)")
    return False


class _SinkFailed(Exception):
    """An error of the code an adapter hands finished episodes to (the store writer)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def read_unit(unit: SourceUnit, adapter: Adapter,
              sink: Callable[[EpisodeBuilder], None] | None = None) -> UnitBuilder:
    """Run an adapter over a unit; an unreadable unit becomes one episode-level reject.

    With ``sink``, episodes the adapter finishes early (``out.finish``) are checked and
    handed to it at once; the rest stay in the returned builder."""
    out = UnitBuilder(unit, adapter.name, adapter.platform)
    if sink is not None:
        def hand_over(episode: EpisodeBuilder) -> None:
            if not _settle(out, episode):
                return
            try:
                sink(episode)
            except Exception as error:
                raise _SinkFailed(error) from error

        out.sink = hand_over
    try:
        adapter.read(unit, out)
        for episode in list(out.episodes):
            out.episodes.remove(episode)
            if _settle(out, episode):
                out.episodes.append(episode)
        _report_unreferenced(unit, adapter, out)
    except _SinkFailed as failed:
        # Writing the store failed, not reading the source: stop the ingest, do not turn
        # it into a reject of whichever unit happened to be streaming.
        raise failed.error from failed.error.__cause__
    except SourceError as error:
        out.episodes.clear()
        out.reject(file=error.file or unit.source_path, position=error.position,
                   reason=error.reason, hint=error.hint or "see the reason", level="episode")
    except Exception as error:  # an adapter crash must not stop the run
        log.debug("adapter %s crashed on %s", adapter.name, unit.path, exc_info=True)
        where = traceback.extract_tb(error.__traceback__)[-1]
        out.episodes.clear()
        out.reject(
            file=unit.source_path, position="", level="episode",
            reason=f"{adapter.name} adapter failed: {type(error).__name__}: {error} "
                   f"(at {Path(where.filename).name}:{where.lineno})",
            hint="the input is malformed in a way the adapter does not recognise; "
                 "please report it with the file",
        )
    return out


def _report_unreferenced(unit: SourceUnit, adapter: Adapter, out: UnitBuilder) -> None:
    """A frame-level report for each of the unit's screenshots no step asked for: the
    episodes are whole, but the records do not name that image (a step lost from the log,
    a screenshot of a state no event started from)."""
    images = adapter.image_files(unit) if out.episodes else []  # none read: rejected whole
    if not images:
        return
    episode_id = out.episodes[0].episode_id if len(out.episodes) == 1 else None
    # Images of a part already rejected whole (a SeeAct action folder) are not told again.
    rejected = tuple(folder for r in out.rejects if r.level == "episode"
                     for folder in (r.file, r.file.rpartition("/")[0])
                     if folder and folder != unit.source_path)
    for path in images:
        name = _beside_unit(unit, path)
        if os.path.abspath(path) not in out.images_read and not any(
                name.startswith(f"{folder}/") for folder in rejected):
            out.reject(file=name, position="", level="frame",
                       reason=UNREFERENCED_IMAGE, episode_id=episode_id,
                       hint="nothing was lost: no step names this image, so it is not "
                            "stored; check the records, or leave the file out")


def _beside_unit(unit: SourceUnit, path: Path) -> str:
    """A file inside a unit folder, or beside a unit file (its images/ folder), named the
    way the store names sources."""
    if unit.path.is_dir():
        return unit.relative(path)
    parent = unit.source_path.rpartition("/")[0]
    try:
        inner = path.relative_to(unit.path.parent).as_posix()
    except ValueError:
        inner = path.name
    return f"{parent}/{inner}" if parent else inner


def problem_fingerprint(problem: str) -> str:
    """What stands for the content of a unit that cannot be opened: the same problem on the
    next run leaves the store as it is."""
    return hashlib.sha256(f"unreadable\0{problem}".encode()).hexdigest()


def extract_unit(unit: SourceUnit, adapter_name: str | None,
                 problem: str | None = None) -> UnitTables:
    """Read one unit with the named adapter (None: no adapter claimed it) into Arrow tables.
    ``problem`` says why the unit cannot be opened at all: it becomes the unit's reject."""
    if problem is not None:
        out = UnitBuilder(unit, "", "desktop")
        out.reject(file=unit.source_path, position="", level="file", reason=problem,
                   hint="the rest of the folder was read; fix this entry and ingest again")
        return _tables(unit, [], out.rejects, None, "", problem_fingerprint(problem))
    if adapter_name is None:
        try:
            fingerprint = fingerprint_files(unit.path,
                                            [unit.path] if unit.path.is_file() else [])
        except OSError as error:
            return extract_unit(unit, None, f"cannot read: {error.strerror or error}")
        out = UnitBuilder(unit, "", "desktop")
        out.reject(file=unit.source_path, position="", level="file",
                   reason=UNRECOGNISED, hint=unrecognised_hint(unit.path))
        return _tables(unit, [], out.rejects, None, "", fingerprint)
    adapter = adapters.get(adapter_name)
    try:
        fingerprint = unit_fingerprint(unit, adapter.input_files(unit))
    except OSError as error:
        # Gone or unreadable between discovery and reading (an adapter may name a file
        # that no longer exists): the unit's reject, not a crash of the whole run.
        return extract_unit(unit, None, f"cannot read: {error.strerror or error}")
    try:
        out = read_unit(unit, adapter)
    finally:
        forget_inputs()
    return _tables(out.unit, out.episodes, out.rejects, adapter.name, adapter.version,
                   fingerprint)


def stream_unit(unit: SourceUnit, adapter_name: str,
                on_episode: Callable[[UnitTables], None]) -> UnitTables:
    """Like extract_unit, but each episode the adapter finishes early is converted and given
    to ``on_episode`` at once (a TFRecord shard of thousands of episodes never sits in
    memory whole); returns what is left: late episodes and every reject."""
    adapter = adapters.get(adapter_name)
    try:
        fingerprint = unit_fingerprint(unit, adapter.input_files(unit))
    except OSError as error:
        return extract_unit(unit, None, f"cannot read: {error.strerror or error}")

    def convert(episode: EpisodeBuilder) -> None:
        on_episode(_tables(unit, [episode], [], adapter.name, adapter.version, fingerprint))

    try:
        out = read_unit(unit, adapter, sink=convert)
    finally:
        forget_inputs()
    return _tables(out.unit, out.episodes, out.rejects, adapter.name, adapter.version,
                   fingerprint)


def _frames_table(frames: list[Frame]) -> pa.Table:
    """Frames column by column; the image bytes are not copied (see _bytes_column)."""
    schema = table_schema("frames")
    columns = {
        "frame_id": [f.frame_id for f in frames],
        "format": [f.format for f in frames],
        "width": [f.width for f in frames],
        "height": [f.height for f in frames],
        "byte_size": [len(f.data) for f in frames],
    }
    arrays = [_bytes_column(f.data for f in frames) if field.name == "bytes"
              else pa.array(columns[field.name], field.type) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _bytes_column(images: Iterable[ImageBytes]) -> pa.ChunkedArray:
    """One chunk per image, each wrapping the bytes as they were read (Python bytes, or a
    view into the Arrow buffer a Parquet source was read into): copying every screenshot
    into a fresh Arrow buffer cost ~9% of an ingest. The Parquet writer copies them once,
    into its pages."""
    chunks = [pa.Array.from_buffers(pa.binary(), 1, [None, _offsets(len(data)),
                                                      pa.py_buffer(data)])
              for data in images]
    return pa.chunked_array(chunks, pa.binary())


def _offsets(size: int) -> pa.Buffer:
    return pa.py_buffer(struct.pack("<ii", 0, size))


def _tables(unit: SourceUnit, built: list[EpisodeBuilder], reject_records: list[RejectRecord],
            source_format: str | None, version: str, fingerprint: str) -> UnitTables:
    episodes = [episode.episode_row(version, fingerprint) for episode in built]
    steps = [row for episode in built for row in episode.step_rows()]
    frames: dict[str, Frame] = {}
    for episode in built:
        for frame_id, frame in episode.frames.items():
            frames.setdefault(frame_id, frame)
    rejects = [
        {
            "source_path": unit.source_path,
            "file": reject.file,
            "position": reject.position,
            "level": reject.level,
            "reason": reject.reason,
            "hint": reject.hint,
            "source_format": source_format,
            "episode_id": reject.episode_id,
            "input_fingerprint": fingerprint,
        }
        for reject in reject_records
    ]
    return UnitTables(
        source_path=unit.source_path,
        source_format=source_format,
        fingerprint=fingerprint,
        episodes=_rows_table("episodes", episodes),
        steps=_rows_table("steps", steps),
        frames=_frames_table([frames[k] for k in sorted(frames)]) if frames
        else _empty_table("frames"),
        rejects=_rows_table("rejects", rejects),
    )


def _rows_table(table: str, rows: Sequence[Mapping[str, object]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table_schema(table)) if rows \
        else _empty_table(table)


@functools.cache
def _empty_table(table: str) -> pa.Table:
    """One shared empty table per store table (Arrow tables are immutable): building one
    from the nested schemas costs ~70 us, four times per unit, and most units have no
    rejects, and text-only ones no frames."""
    return table_schema(table).empty_table()
