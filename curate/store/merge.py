"""``merge``: stores built on different machines or at different times, combined into one.

Batches are the unit. Inputs are read in the order given, each one's batches in name order;
a batch whose name the output already lists holds the same units and is skipped (so a store
merged with itself, or twice, changes nothing). Another batch is copied file for file,
derived tables included, unless it repeats something the output holds:

- a frame already in the output (frames are content-addressed: the same id is the same
  image) is not copied again;
- a source unit with the same path and fingerprint is already there: its rows are left out;
- a source unit with the same path but other content is a conflict, and the merge is
  refused before anything is written (which recording is right is not ours to guess).

Such a batch is written anew without the repeats, named by its remaining units as ingest
names batches; its derived tables are not carried (label, segment and the rest recompute
them for that batch). Inputs are only read. The output is written like any store: files
under temporary names, renamed, then one manifest naming the new batches, so an
interrupted merge leaves the output as it was (its leftovers are removed by the next
writer) and every input untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from curate.errors import StoreError
from curate.store.core import (
    BatchWriter,
    Manifest,
    Store,
    init_store,
    open_store,
    read_parquet,
    rows_matching,
    rows_not_matching,
    store_lock,
    temporary_name,
    write_atomic,
)
from curate.store.faults import fault
from curate.store.layout import batch_file, manifest_path
from curate.store.outputs import check_output, writing_to
from curate.store.schema import DERIVED_TABLES, TABLES

log = logging.getLogger(__name__)


@dataclass
class MergeSummary:
    """What a merge did; the CLI prints it."""

    output: Path
    inputs: int = 0
    batches_copied: int = 0
    batches_rewritten: int = 0
    batches_present: int = 0
    units_skipped: int = 0
    frames_skipped: int = 0
    not_carried: list[str] = field(default_factory=list)  # store-level files left behind

    @property
    def wrote_anything(self) -> bool:
        return bool(self.batches_copied or self.batches_rewritten)


def merge_stores(inputs: list[Path], output: Path) -> MergeSummary:
    """Merge the stores ``inputs`` into ``output`` (created when missing)."""
    opened = [open_store(path) for path in inputs]  # each one must be a readable store
    check_output(output, kind="store")
    summary = MergeSummary(output, inputs=len(inputs))
    with writing_to(output), store_lock(output):
        check_output(output, kind="store")
        target = open_store(output) if manifest_path(output).exists() else None
        version = target.manifest.schema_version if target else None
        others = [store for store in opened if not _same_folder(store.path, output)]
        _check_versions(others, output, version)
        manifest = init_store(output, command="curate merge")
        _merge_locked(others, output, manifest, summary)
    return summary


def _same_folder(a: Path, b: Path) -> bool:
    return b.exists() and os.path.samefile(a, b)


def _check_versions(stores: list[Store], output: Path, version: int | None) -> None:
    """Refuse stores of different schema versions (their tables do not line up)."""
    versions = {store.path: store.manifest.schema_version for store in stores}
    if version is not None:
        versions = {output: version, **versions}
    if len(set(versions.values())) > 1:
        listed = ", ".join(f"{path} has {found}" for path, found in versions.items())
        raise StoreError(f"cannot merge stores of different schema versions ({listed}); "
                         "re-ingest the older ones with this curate first")


def _merge_locked(stores: list[Store], output: Path, manifest: Manifest,
                  summary: MergeSummary) -> None:
    present = open_store(output)
    units = {path: fingerprint for path, (fingerprint, _) in present.known_sources().items()}
    _check_conflicts(stores, units)
    frames = present.frame_ids()
    listed = set(manifest.batches)
    for store in stores:
        summary.not_carried.extend(_store_level_files(store.path))
        for name in sorted(store.manifest.batches):
            if name in listed:
                summary.batches_present += 1
                continue
            written = _merge_batch(store, name, output, manifest, units, frames, summary)
            if written is not None:
                listed.add(written)
            fault("merge.after-batch")
    if summary.wrote_anything:
        write_atomic(manifest_path(output), manifest.to_json().encode())


def _check_conflicts(stores: list[Store], units: dict[str, str]) -> None:
    """Refuse, before writing, a source path that two stores hold with different content."""
    seen = dict(units)
    where = {path: "the output" for path in units}
    for store in stores:
        for path, (fingerprint, _) in sorted(store.known_sources().items()):
            if seen.setdefault(path, fingerprint) != fingerprint:
                raise StoreError(
                    f"{path} is in {where[path]} and in {store.path} with different content "
                    "(it was ingested from files that changed in between); ingest it again "
                    "into one of them and merge from that one")
            where.setdefault(path, str(store.path))


def _store_level_files(store: Path) -> list[str]:
    """Files beside the batches (reviews pulled from Label Studio) that merge leaves."""
    reviews = store / "reviews"
    return [str(reviews)] if reviews.is_dir() and any(reviews.iterdir()) else []


def _merge_batch(store: Store, name: str, output: Path, manifest: Manifest,
                 units: dict[str, str], frames: set[str], summary: MergeSummary) -> str | None:
    """Bring one batch of ``store`` into ``output``; the name it has there (None: all of
    it was there already)."""
    sources = _read(store, "sources", name)
    batch_units = dict(zip(sources.column("source_path").to_pylist(),
                           sources.column("input_fingerprint").to_pylist(), strict=True))
    repeated_units = {path for path in batch_units if path in units}
    frame_ids = _read(store, "frames", name, ["frame_id"]).column("frame_id").to_pylist()
    repeated_frames = frames.intersection(frame_ids)
    units.update(batch_units)
    frames.update(frame_ids)
    summary.units_skipped += len(repeated_units)
    summary.frames_skipped += len(repeated_frames)
    if not repeated_units and not repeated_frames:
        _copy_batch(store.path, name, output)
        manifest.batches.append(name)
        summary.batches_copied += 1
        return name
    return _rewrite_batch(store, name, output, manifest, repeated_units, repeated_frames,
                          summary)


def _read(store: Store, table: str, name: str, columns: list[str] | None = None) -> pa.Table:
    return read_parquet(batch_file(store.path, table, name), columns)


def _copy_batch(source: Path, name: str, output: Path) -> None:
    """Copy every file of the batch (derived ones too) byte for byte, each to a temporary
    name first: a file in place is always whole."""
    for table in (*TABLES, *DERIVED_TABLES):
        origin = batch_file(source, table, name)
        if not origin.exists():
            continue
        final = batch_file(output, table, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporary = temporary_name(final)
        shutil.copyfile(origin, temporary)
        with temporary.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, final)


def _rewrite_batch(store: Store, name: str, output: Path, manifest: Manifest,
                   repeated_units: set[str], repeated_frames: set[str],
                   summary: MergeSummary) -> str | None:
    """Write the batch anew without the units and frames the output already has."""
    tables = {table: _read(store, table, name) for table in TABLES}
    episodes = tables["episodes"]
    gone = set(rows_matching(episodes, "source_path", repeated_units)
               .column("episode_id").to_pylist())
    kept = {
        "episodes": rows_not_matching(episodes, "source_path", repeated_units),
        "steps": rows_not_matching(tables["steps"], "episode_id", gone),
        "frames": rows_not_matching(tables["frames"], "frame_id", repeated_frames),
        "rejects": rows_not_matching(tables["rejects"], "source_path", repeated_units),
        "sources": rows_not_matching(tables["sources"], "source_path", repeated_units),
    }
    writer = BatchWriter(output)
    for table, rows in kept.items():
        writer.add(table, rows)
    if writer.empty:
        writer.abort()
        return None
    # A batch left with frames only is named after the batch it came from, as ingest does.
    new = writer.commit(manifest, salt="" if writer.units else f"frames-of-{name}",
                        write_manifest=False)
    summary.batches_rewritten += 1
    return new


__all__ = ["MergeSummary", "merge_stores"]
