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


def _export_files(root: Path) -> dict[str, bytes]:
    """Every file of an export but its marker (which names the command that made it)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".curate")}


def test_export_tasks_write_the_inline_bytes_and_return_only_metadata(
        native_episode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import curate.export.batches as batches_module
    from curate.export import export

    _recordings(native_episode)
    store = tmp_path / "store"
    ingest([tmp_path / "recordings"], store, batch_units=1)  # four batches: verl offsets
    label(store)
    segment(store)
    inline = export(store, tmp_path / "inline", steps_per_task=1)  # a task per batch
    engine = Recording(2)
    engine.inner.__enter__()  # fork the workers before the driver's function breaks

    def not_in_the_driver(*args: object) -> None:
        raise AssertionError("a batch was exported in the driver")

    monkeypatch.setattr(batches_module, "_in_turn", not_in_the_driver)
    try:
        pooled = export(store, tmp_path / "pooled", engine=engine, steps_per_task=1)
    finally:
        engine.close()
    files = _export_files(tmp_path / "pooled")
    assert files == _export_files(tmp_path / "inline")
    assert any(name.startswith("data/stage2_verl/") for name in files)
    # One shard per task: each of the four holds one episode, in one split or another.
    assert len([n for n in files if n.startswith("data/stage2/")]) == 4
    assert pooled.rows == inline.rows and pooled.files == inline.files
    sent = b"".join(engine.received)
    assert b"target_action" not in sent and b"PNG" not in sent  # no rows, no frames came back


def test_a_store_below_a_task_of_steps_is_one_group_and_larger_ones_are_cut_in_order(
        native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from curate.export.batches import batch_groups
    from curate.store.core import open_store

    _recordings(native_episode)  # four episodes of 2, 3, 4 and 2 steps
    ingest([tmp_path / "recordings"], tmp_path / "store", batch_units=1)
    store = open_store(tmp_path / "store")
    batches = tuple(sorted(store.manifest.batches))
    assert batch_groups(store, 10_000) == [batches]  # one pass, as before export tasks
    assert batch_groups(store, 1) == [(batch,) for batch in batches]
    groups = batch_groups(store, 5)
    assert [b for group in groups for b in group] == list(batches) and 1 < len(groups) < 4

