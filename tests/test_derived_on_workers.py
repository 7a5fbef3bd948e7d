"""Label and segment on an engine: each store batch is one task that computes and writes
its own labels / segments file and sends back only counts and scores.

The engine is the real local process pool. Once its workers exist, the driver's own
label_batch and segment_batch are broken: a batch computed in the driver fails the run.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from test_ingest_batches import Recording, parquet_files

import curate.pipeline.label as label_module
import curate.pipeline.segment as segment_module
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import segment


def _recordings(native_episode) -> None:  # type: ignore[no-untyped-def]
    for name, colours in (("a", 3), ("b", 4), ("c", 5), ("d", 3)):
        native_episode(name, colours=colours)


def test_label_and_segment_tasks_write_the_inline_bytes_and_return_only_counts(
        native_episode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    _recordings(native_episode)
    inline, pooled = tmp_path / "inline", tmp_path / "pooled"
    for store in (inline, pooled):
        ingest([tmp_path / "recordings"], store, batch_units=1)
    label(inline)
    inline_summary = segment(inline)

    engine = Recording(2)
    engine.inner.__enter__()  # fork the workers before the driver's functions break

    def not_in_the_driver(*args: object) -> None:
        raise AssertionError("a batch was computed in the driver")

    monkeypatch.setattr(label_module, "label_batch", not_in_the_driver)
    monkeypatch.setattr(segment_module, "segment_batch", not_in_the_driver)
    try:
        labelled = label(pooled, engine=engine)
        pooled_summary = segment(pooled, engine=engine)
    finally:
        engine.close()
    assert labelled.batches_labelled == pooled_summary.batches_segmented == 4
    assert parquet_files(pooled) == parquet_files(inline)
    assert any(name.startswith("segments/") for name in parquet_files(pooled))
    assert pooled_summary == inline_summary
    sent = b"".join(engine.received)
    assert b"episode_id" not in sent and b"target_action" not in sent  # no rows came back


def test_current_batches_are_not_sent_to_the_engine_again(
        native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _recordings(native_episode)
    store = tmp_path / "store"
    ingest([tmp_path / "recordings"], store, batch_units=2)
    engine = Recording(2)
    try:
        label(store, engine=engine)
        segment(store, engine=engine)
        before = len(engine.received)
        again = segment(store, engine=engine)
    finally:
        engine.close()
    assert (again.batches_segmented, again.batches_current) == (0, 2)
    assert len(engine.received) == before
    assert pickle.loads(engine.received[-1]) is not None
