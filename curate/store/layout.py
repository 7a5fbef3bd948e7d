"""The on-disk layout of a store, in one place.

    STORE/
      manifest.json                      what is committed: schema version, batches
      .curate-output.json                marker: curate made this folder (store id, command)
      .curate-lock                       writers hold flock on it (one writer at a time)
      <table>/batch-<id>.parquet         one file per table per committed batch
      <table>/.batch-open-<pid>-<n>.parquet.tmp   being written by process <pid> (ignored;
                                         removed by the next writer once <pid> is gone)

Tables: episodes, steps, frames, rejects, sources (written by ingest), and the derived
frame_states, labels, segments (written by label and segment, one file per batch, carrying
the parameters they were computed with in their Parquet metadata).

A batch is the unit of commit: its five files are written under temporary names, renamed
into place, and only then listed in the manifest, which is itself replaced atomically.
Readers trust the manifest alone, so a crash at any moment leaves the last committed state
readable.
"""

from __future__ import annotations

from pathlib import Path

from curate.store.schema import DERIVED_TABLES, TABLES

MANIFEST = "manifest.json"
LOCK = ".curate-lock"
STORE_FORMAT = "curate-store"


def manifest_path(store: Path) -> Path:
    return store / MANIFEST


def table_dir(store: Path, table: str) -> Path:
    if table not in TABLES and table not in DERIVED_TABLES:
        known = ", ".join((*TABLES, *DERIVED_TABLES))
        raise ValueError(f"unknown table {table!r}; tables are {known}")
    return store / table


def batch_file(store: Path, table: str, batch: str) -> Path:
    return table_dir(store, table) / f"batch-{batch}.parquet"


def temp_batch_file(store: Path, table: str, batch: str) -> Path:
    return table_dir(store, table) / f".batch-{batch}.parquet.tmp"
