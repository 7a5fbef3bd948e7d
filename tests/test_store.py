"""The store's writers: background writes keep order and bytes, and failures are not lost."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from curate.errors import StoreError
from curate.store.core import BatchWriter, Manifest, TableSink, WriteQueue, init_store


def frames(start: int, count: int) -> pa.Table:
    from curate.store.schema import table_schema

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
    with pytest.raises((OSError, StoreError)):  # the queue stays failed
        queue.close()


def test_after_a_failed_write_every_later_call_fails_too() -> None:
    queue = WriteQueue(depth=0)

    def broken() -> None:
        raise OSError(5, "injected I/O error")

    with pytest.raises(OSError):
        queue.submit(broken)  # depth 0: waits for it at once
    with pytest.raises(StoreError, match="injected I/O error"):
        queue.submit(lambda: None)
    with pytest.raises(StoreError):
        queue.drain()
    with pytest.raises(StoreError):
        queue.close()


def test_a_write_failing_while_a_unit_streams_stops_the_ingest_and_commits_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A streaming adapter writes episodes from inside its read: a store error there must
    not become a reject of that unit, nor let the batch commit without the lost rows."""
    import shutil

    import curate.store.core as store_module
    from curate.pipeline.ingest import ingest

    fixture = Path(__file__).parent / "fixtures" / "androidcontrol"
    source = tmp_path / "in"
    shutil.copytree(fixture, source)
    monkeypatch.setattr(store_module, "TABLE_ROW_GROUP_ROWS", 2)  # write while streaming
    real_write = store_module.TableSink._write
    failures = {"steps": 0}

    def flaky(self: TableSink, parts: list[pa.Table]) -> None:
        if self.path.parent.name == "steps":
            failures["steps"] += 1
            if failures["steps"] == 2:
                raise OSError(5, "injected I/O error")
        real_write(self, parts)

    monkeypatch.setattr(store_module.TableSink, "_write", flaky)
    with pytest.raises((OSError, StoreError)):
        ingest([source], tmp_path / "store")
    assert failures["steps"] >= 2
    assert Manifest.load(tmp_path / "store").batches == []


def test_scan_gives_lazy_polars_frames_of_a_table(sample_store_template: Path) -> None:
    # Store.scan* is the optional `polars` extra (CI installs it): lazy, so only the filter's
    # rows are materialised, and an empty table keeps its declared columns.
    import polars as pl

    from curate.store.core import open_store

    store = open_store(sample_store_template)
    steps = store.scan_steps()
    assert isinstance(steps, pl.LazyFrame)
    total = store.read_steps().num_rows
    assert steps.select(pl.len()).collect().item() == total > 0
    first = steps.filter(pl.col("step_index") == 0).collect()
    assert first.height == store.read_episodes().num_rows
    labels = store.scan("labels").collect_schema().names()
    assert "episode_id" in labels


def test_a_second_large_write_waits_for_the_first_one_and_small_ones_do_not() -> None:
    import threading

    def queue_two(size: int) -> list[str]:
        queue = WriteQueue(depth=4, max_bytes=100)
        release, done = threading.Event(), []

        def first() -> None:
            release.wait()
            done.append("first")

        queue.submit(first, size)
        threading.Timer(0.2, release.set).start()  # the first write ends a little later
        queue.submit(lambda: None, size)
        seen = list(done)  # what had finished when the second submit returned
        release.set()
        queue.close()
        return seen

    # Two 80-byte writes exceed max_bytes: the second submit returns only after the first.
    assert queue_two(80) == ["first"]
    # Two 10-byte ones fit: the second is queued behind the first, still running.
    assert queue_two(10) == []
