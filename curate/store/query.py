"""SQL over a store with DuckDB, and the store overview ``info``."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from curate.errors import QueryError
from curate.store.schema import DERIVED_TABLES, DOCUMENTED_TABLES, TABLES, table_schema

if TYPE_CHECKING:  # loaded on first query: the CLI imports this module for OUTPUT_FORMATS
    import duckdb
    import pyarrow as pa

    from curate.store.core import Store

OUTPUT_FORMATS = ("table", "csv", "json", "jsonl")


# DuckDB's own guards, not string checks: no file system access at all from SQL (no COPY ...
# TO, no read_csv of other files, no ATTACH, no INSTALL), and the setting cannot be turned back
# on from inside a query. The store's tables reach DuckDB as Arrow datasets registered from
# Python, which the guard does not apply to, so they stay lazily scanned with projection and
# filter pushdown.
READ_ONLY_CONFIG = {"enable_external_access": False, "lock_configuration": True}


def connect(store: Store) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection with one view per store table (``DOCUMENTED_TABLES``)."""
    import duckdb
    import pyarrow.dataset as ds

    connection = duckdb.connect(config=dict(READ_ONLY_CONFIG))
    for table, files in _table_files(store):
        source = ds.dataset(files, format="parquet") if files else table_schema(
            table).empty_table()
        connection.register(f"_source_{table}", source)
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM _source_{table}")
    return connection


def _table_files(store: Store) -> list[tuple[str, list[str]]]:
    """Each queryable table with its files (the store-level reviews table included)."""
    from curate.review.table import reviews_path

    tables = [(t, [str(p) for p in store.files(t)]) for t in (*TABLES, *DERIVED_TABLES)]
    reviews = reviews_path(store.path)
    tables.append(("reviews", [str(reviews)] if reviews.exists() else []))
    return tables


def query(store: Store, sql: str) -> pa.Table:
    """Run SQL over the store's tables and return the result as Arrow."""
    import duckdb
    import pyarrow as pa

    connection = connect(store)
    try:
        relation = connection.sql(sql)
        if relation is None:  # a statement with no result (SET, CREATE VIEW ...)
            return pa.table({})
        return relation.to_arrow_table()
    except duckdb.Error as error:
        raise QueryError(f"{_without_internal_names(str(error))}\n"
                         f"Tables: {', '.join(DOCUMENTED_TABLES)}; `curate schema TABLE` "
                         "lists a table's columns. Queries are read-only: no file access "
                         "from SQL (use `curate query STORE SQL --format csv > FILE` "
                         "to save a result).") from None
    finally:
        connection.close()


def _without_internal_names(message: str) -> str:
    """DuckDB names the registered Arrow sources in its errors; users know the views."""
    return message.replace("_source_", "")


def _cell(value: Any, *, for_json: bool) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode() if for_json else f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {k: _cell(v, for_json=for_json) for k, v in value.items()}
    if isinstance(value, list):
        return [_cell(v, for_json=for_json) for v in value]
    return value


def render(table: pa.Table, output: str, *, max_width: int = 60) -> str:
    """Render a result: an aligned text table, CSV, a JSON array or JSON lines.

    Binary cells are base64 in JSON output and shown as ``<N bytes>`` otherwise.
    """
    rows = table.to_pylist()
    if output in ("json", "jsonl"):
        cleaned = [_cell(row, for_json=True) for row in rows]
        if output == "json":
            return json.dumps(cleaned, ensure_ascii=False, indent=2, default=str) + "\n"
        return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in cleaned)
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(table.column_names)
        for row in rows:
            writer.writerow([_text(_cell(row[c], for_json=False)) for c in table.column_names])
        return buffer.getvalue()
    if output == "table":
        return _text_table(table.column_names, rows, max_width)
    raise QueryError(f"unknown output format {output!r}; use one of {', '.join(OUTPUT_FORMATS)}")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _text_table(columns: Sequence[str], rows: list[dict[str, Any]], max_width: int) -> str:
    def clip(text: str) -> str:
        text = text.replace("\n", "\\n")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[clip(_text(_cell(row[c], for_json=False))) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(line.rstrip() for line in lines) + "\n"
