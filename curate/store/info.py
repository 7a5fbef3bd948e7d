"""``info``: what a store holds, in numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curate.store.core import Store
from curate.store.query import connect
from curate.store.schema import DOCUMENTED_TABLES, TABLES


@dataclass
class StoreInfo:
    path: str
    schema_version: int
    toolkit_version: str
    batches: int
    rows: dict[str, int]
    frame_bytes: int
    disk_bytes: int
    episodes_by_format: dict[str, int] = field(default_factory=dict)
    episodes_by_outcome: dict[str, int] = field(default_factory=dict)
    steps_by_action: dict[str, int] = field(default_factory=dict)
    rejects_by_level: dict[str, int] = field(default_factory=dict)
    steps_without_state: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _counts(connection: Any, sql: str) -> dict[str, int]:
    return {str(key): int(count) for key, count in connection.execute(sql).fetchall()}


def _scalar(connection: Any, sql: str) -> int:
    row = connection.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def store_info(store: Store) -> StoreInfo:
    """Row counts per table and the main breakdowns, computed with DuckDB."""
    connection = connect(store)
    try:
        rows = {t: _scalar(connection, f"SELECT count(*) FROM {t}") for t in DOCUMENTED_TABLES}
        frame_bytes = _scalar(connection, "SELECT sum(byte_size) FROM frames")
        info = StoreInfo(
            path=str(store.path),
            schema_version=store.manifest.schema_version,
            toolkit_version=store.manifest.toolkit_version,
            batches=len(store.manifest.batches),
            rows=rows,
            frame_bytes=int(frame_bytes),
            disk_bytes=sum(p.stat().st_size for t in TABLES for p in store.files(t)),
            episodes_by_format=_counts(connection, "SELECT source_format, count(*) FROM "
                                       "episodes GROUP BY 1 ORDER BY 2 DESC, 1"),
            episodes_by_outcome=_counts(connection, "SELECT outcome, count(*) FROM episodes "
                                        "GROUP BY 1 ORDER BY 2 DESC, 1"),
            steps_by_action=_counts(connection, "SELECT action.type, count(*) FROM steps "
                                    "GROUP BY 1 ORDER BY 2 DESC, 1"),
            rejects_by_level=_counts(connection, "SELECT level, count(*) FROM rejects "
                                     "GROUP BY 1 ORDER BY 2 DESC, 1"),
            steps_without_state=_scalar(
                connection, "SELECT count(*) FROM steps WHERE frame_id IS NULL"),
        )
    finally:
        connection.close()
    return info
