"""Where reviews live in a store, and reading/writing them atomically.

    STORE/reviews/reviews.parquet   every pulled review (all projects), replaced on each pull
    STORE/reviews/projects.json     push ledger: per project, its unit and the keys pushed

The reviews table is store-level, not per batch: a review is about an item, and the item's
batch can be replaced by a re-ingest without the review being lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.store.core import Store, read_parquet, store_lock, write_atomic, write_table_atomic
from curate.store.schema import table_schema

REVIEWS_DIR = "reviews"
REVIEWS_FILE = "reviews.parquet"
LEDGER_FILE = "projects.json"


def reviews_path(store: Path) -> Path:
    return store / REVIEWS_DIR / REVIEWS_FILE


def ledger_path(store: Path) -> Path:
    return store / REVIEWS_DIR / LEDGER_FILE


def read_reviews(store: Store) -> pa.Table | None:
    """The store's reviews table, or None when nothing was ever pulled."""
    path = reviews_path(store.path)
    if not path.exists():
        return None
    table = read_parquet(path)
    schema = table_schema("reviews")
    for missing in (f for f in schema if f.name not in table.column_names):
        # a file pulled before the column existed (v1 had no step_instruction or state, nor
        # first_wrong_step): those reviews corrected or marked nothing there
        table = table.append_column(missing, pa.nulls(table.num_rows, missing.type))
    return table.select(schema.names).cast(schema)


def write_reviews(store: Path, table: pa.Table) -> None:
    """Replace the reviews file atomically (temporary file, fsync, rename)."""
    path = reviews_path(store)
    with store_lock(store):  # one writer at a time, like ingest, label and segment
        path.parent.mkdir(exist_ok=True)
        write_table_atomic(path, table_schema("reviews"), table)


def read_ledger(store: Path) -> dict[str, Any]:
    path = ledger_path(store)
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def record_push(store: Path, project: str, entry: dict[str, Any]) -> None:
    """Remember what was pushed to a project (keys merged with earlier pushes)."""
    with store_lock(store):  # read-merge-write: another pusher's keys must not be lost
        ledger = read_ledger(store)
        previous = ledger.get(project, {})
        keys = sorted(set(previous.get("keys", [])) | set(entry.pop("keys", [])))
        ledger[project] = {**previous, **entry, "keys": keys}
        (store / REVIEWS_DIR).mkdir(exist_ok=True)
        write_atomic(ledger_path(store), (json.dumps(ledger, indent=2, sort_keys=True)
                                          + "\n").encode())
