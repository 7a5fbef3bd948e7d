from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from curate.pipeline.ingest import ingest
from curate.store.core import open_store
from curate.store.schema import DOCUMENTED_TABLES, TABLES, column_docs, features, table_schema


def test_every_column_of_every_table_is_documented() -> None:
    for table in [*DOCUMENTED_TABLES, "action"]:
        docs = column_docs(table)
        assert docs, table
        undocumented = [c.name for c in docs if len(c.doc) < 10]
        assert not undocumented, f"{table}: {undocumented}"


def test_parquet_files_carry_the_schema_version(native_episode, tmp_path: Path) -> None:
    native_episode("a")
    ingest([tmp_path / "recordings"], tmp_path / "store")
    store = open_store(tmp_path / "store")
    for table in TABLES:
        (path,) = store.files(table)
        metadata = pq.read_schema(path).metadata
        assert metadata[b"curate.schema_version"] == (b"2" if table == "steps" else b"1")
        assert metadata[b"curate.table"] == table.encode()
        assert pq.read_schema(path).remove_metadata() == table_schema(table).remove_metadata()


def test_datasets_features_derive_from_the_same_declaration() -> None:
    steps = features("steps")
    assert set(steps) == set(table_schema("steps").names)
    derived = steps.arrow_schema.field("action").type
    declared = table_schema("steps").field("action").type
    assert [f.name for f in derived] == [f.name for f in declared]
    assert [f.type for f in derived] == [f.type for f in declared]
