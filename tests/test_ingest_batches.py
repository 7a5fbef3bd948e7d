"""Workers write, the driver commits (curate.pipeline.batches): each batch is one engine
task that writes the batch's files into the store and returns only names, ids and counts.

The engine is the real local process pool; an engine wrapper pickles every result the
driver receives, which is exactly what would cross a process or the network, and counts it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from curate.engines import LocalEngine
from curate.pipeline.ingest import ingest
from curate.store.core import open_store

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def parquet_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*.parquet"))}


class Recording:
    """An engine that runs on a real local pool and keeps the pickled results it hands
    the driver (what a remote engine sends back)."""

    name = "recording"

    def __init__(self, workers: int) -> None:
        self.inner = LocalEngine(workers)
        self.received: list[bytes] = []

    def map_ordered(self, function: Callable[[Any], Any], items: Iterable[Any], *,
                    window: int | None = None,
                    on_crash: Callable[[Any, str], Any] | None = None) -> Iterator[Any]:
        for result in self.inner.map_ordered(function, items, window=window,
                                             on_crash=on_crash):
            self.received.append(pickle.dumps(result))
            yield result

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("batch_units", [1, 2, 256])
def test_worker_written_batches_match_the_inline_store_and_send_no_frame_bytes(
        native_episode, tmp_path: Path, batch_units: int) -> None:  # type: ignore[no-untyped-def]
    for name in "abcde":
        native_episode(name)  # every episode has the same three screenshots
    native_episode("f", colours=5, steps=[  # and one has two more
        {"action": {"type": "click", "px": 1, "py": 2}, "frame": "frames/3.png",
         "next_frame": "frames/4.png"}])
    inline = ingest([tmp_path / "recordings"], tmp_path / "inline", batch_units=batch_units)
    engine = Recording(2)
    try:
        pooled = ingest([tmp_path / "recordings"], tmp_path / "pooled", engine=engine,
                        batch_units=batch_units)
    finally:
        engine.close()
    assert parquet_files(tmp_path / "pooled") == parquet_files(tmp_path / "inline")
    store = open_store(tmp_path / "pooled")
    assert store.read("frames").num_rows == 5  # repeats across batches stored once
    assert pooled.frames_new == inline.frames_new == 5
    assert pooled.frame_bytes_new == inline.frame_bytes_new
    assert pooled.batches_committed == inline.batches_committed == -(-6 // batch_units)
    sent = b"".join(engine.received)
    assert PNG_SIGNATURE not in sent  # no screenshot came back to the driver
    for image in store.read("frames").column("bytes").to_pylist():
        assert image[8:] not in sent
    assert not list((tmp_path / "pooled").rglob("*.tmp"))


def test_a_batch_repeating_committed_frames_is_rewritten_without_them(
        native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    native_episode("a")
    ingest([tmp_path / "recordings"], tmp_path / "store")
    native_episode("b")  # the same three screenshots as a, already in the store
    with LocalEngine(2) as engine:
        summary = ingest([tmp_path / "recordings"], tmp_path / "store", engine=engine)
    assert summary.units_read == 1 and summary.units_unchanged == 1
    assert summary.frames_new == 0 and summary.frame_bytes_new == 0
    store = open_store(tmp_path / "store")
    frames = store.read("frames").column("frame_id").to_pylist()
    assert len(frames) == len(set(frames)) == 3
    newest = [p for p in store.files("frames")]
    assert sorted(f.num_rows for f in map(_rows, newest)) == [0, 3]


def _rows(path: Path) -> Any:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_tfrecord_shards_are_read_and_written_by_workers_never_by_the_driver(
        native_episode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """AITW and AndroidControl shards (streaming units, GZIP and plain) beside a native
    episode: with a pool, each shard is read by the worker writing its batch. The driver's
    TFRecord reader is broken once the workers exist, so a shard read in the driver fails
    the ingest; the store still equals the inline engine's, byte for byte."""
    import shutil

    import curate.sources.adapters._mobile as mobile

    source = tmp_path / "recordings"
    native_episode("a")
    for dataset in ("aitw", "androidcontrol"):
        shutil.copytree(FIXTURES / dataset, source / dataset,
                        ignore=shutil.ignore_patterns("*.py", "*.md"))
    inline = ingest([source], tmp_path / "inline", batch_units=2)
    assert inline.episodes_by_format["aitw"] and inline.episodes_by_format["androidcontrol"]
    engine = Recording(2)
    engine.inner.__enter__()  # fork the workers now, before the driver's reader breaks

    def no_shard_in_the_driver(*args: object, **kwargs: object) -> None:
        raise AssertionError("the driver read a TFRecord shard")

    monkeypatch.setattr(mobile, "iter_records", no_shard_in_the_driver)
    try:
        pooled = ingest([source], tmp_path / "pooled", engine=engine, batch_units=2)
    finally:
        engine.close()
    assert parquet_files(tmp_path / "pooled") == parquet_files(tmp_path / "inline")
    assert pooled.episodes_by_format == inline.episodes_by_format
    assert pooled.steps == inline.steps and pooled.rejects == inline.rejects
    sent = b"".join(engine.received)
    for image in open_store(tmp_path / "pooled").read("frames").column("bytes").to_pylist():
        assert image[8:] not in sent
