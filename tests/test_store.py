"""The store's writers: background writes keep order and bytes, and failures are not lost."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curate.store import BatchWriter, Manifest, TableSink, WriteQueue, init_store


def frames(start: int, count: int) -> pa.Table:
    from curate.schema import table_schema

    rows = [{"frame_id": f"f{i:05d}", "format": "png", "width": 1, "height": 1,
             "byte_size": 3, "bytes": bytes([i % 256]) * 3} for i in range(start, start + count)]
    return pa.Table.from_pylist(rows, schema=table_schema("frames"))


def test_background_writes_give_the_same_bytes_as_direct_ones(tmp_path: Path) -> None:
    schema = frames(0, 1).schema
    queue = WriteQueue(depth=1)
    queued = TableSink(tmp_path / "queued.parquet", schema, queue)
    direct = TableSink(tmp_path / "direct.parquet", schema)
    for start in range(0, 1000, 70):  # several row groups, flushed while others wait
        queued.add(frames(start, 70))
        direct.add(frames(start, 70))
    queued.close()
    direct.close()
    queue.close()
    assert (tmp_path / "queued.parquet").read_bytes() == (tmp_path / "direct.parquet").read_bytes()


def test_a_failed_background_write_raises_at_commit_and_abort_cleans_up(tmp_path: Path) -> None:
    store = tmp_path / "store"
    manifest = init_store(store)
    writer = BatchWriter(store)
    wrong = pa.table({"frame_id": ["x"] * 200})  # not the frames schema: the write fails
    writer.add("frames", wrong)
    with pytest.raises((ValueError, pa.ArrowException)):
        writer.commit(manifest)
    writer.abort()
    assert not [p for p in store.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert Manifest.load(store).batches == []


def test_a_shard_write_that_fails_in_the_background_raises_at_close(tmp_path: Path) -> None:
    from curate.export.writer import ShardWriter

    blocked = tmp_path / "data"
    blocked.write_text("a file where the shard folder should go")
    schema = pa.schema([("id", pa.string())])
    queue = WriteQueue()
    writer = ShardWriter(blocked / "stage2", "train", schema, 1 << 20, queue)
    for index in range(250):  # two row groups go to the background thread
        writer.add({"id": str(index)})
    with pytest.raises(OSError):
        writer.close()
    queue.close()
