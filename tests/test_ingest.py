"""The store's promises: idempotent, incremental, resumable, deterministic, nothing lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.errors import OutputError, StoreError
from curate.pipeline.extract import UnitTables
from curate.pipeline.ingest import ingest
from curate.store.core import open_store
from curate.store.schema import TABLES


def snapshot(store: Path) -> dict[str, bytes]:
    """Every file's bytes but the store's identity marker and lock (which name the store
    and its last writer, not its data)."""
    return {p.relative_to(store).as_posix(): p.read_bytes()
            for p in sorted(store.rglob("*")) if p.is_file() and not p.name.startswith(".curate")}


def test_second_ingest_of_the_same_input_writes_nothing(native_episode, tmp_path: Path) -> None:
    native_episode("a")
    native_episode("b")
    first = ingest([tmp_path / "recordings"], tmp_path / "store")
    before = snapshot(tmp_path / "store")
    second = ingest([tmp_path / "recordings"], tmp_path / "store")
    assert first.episodes == 2 and first.steps == 4
    assert second.units_unchanged == 2 and not second.wrote_anything
    assert snapshot(tmp_path / "store") == before


def test_same_input_gives_byte_identical_stores(native_episode, tmp_path: Path) -> None:
    for name in "abc":
        native_episode(name)
    ingest([tmp_path / "recordings"], tmp_path / "one")
    ingest([tmp_path / "recordings"], tmp_path / "two", workers=2)
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


def test_changed_episode_replaces_its_rows(native_episode, tmp_path: Path) -> None:
    folder = native_episode("a")
    native_episode("b")
    ingest([tmp_path / "recordings"], tmp_path / "store")
    with (folder / "steps.jsonl").open("a") as handle:
        handle.write(json.dumps({"action": "done()", "frame": "frames/2.png"}) + "\n")
    summary = ingest([tmp_path / "recordings"], tmp_path / "store")
    assert summary.units_replaced == 1 and summary.units_unchanged == 1
    store = open_store(tmp_path / "store")
    episodes = store.read_episodes().to_pylist()
    assert sorted((e["source_path"], e["step_count"]) for e in episodes) == [
        ("recordings/a", 3), ("recordings/b", 2)]
    assert store.read_steps().num_rows == 5
    assert store.read("sources").num_rows == 2


def test_frames_shared_by_episodes_are_stored_once(native_episode, tmp_path: Path) -> None:
    native_episode("a")
    native_episode("b")  # same solid colours: identical PNG bytes
    ingest([tmp_path / "recordings"], tmp_path / "store")
    store = open_store(tmp_path / "store")
    assert store.read("frames").num_rows == 3
    used = set(store.read_steps().column("frame_id").to_pylist())
    assert used <= store.frame_ids()


def test_interrupted_ingest_resumes_without_duplicates(native_episode,
                                                       tmp_path: Path) -> None:
    for name in "abcd":
        native_episode(name)
    seen: list[str] = []

    def crash_after_two(unit: UnitTables) -> None:
        seen.append(unit.source_path)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest([tmp_path / "recordings"], tmp_path / "store", batch_units=1,
               on_unit=crash_after_two)
    assert open_store(tmp_path / "store").read_episodes().num_rows == 2
    leftovers = [p for p in (tmp_path / "store").rglob(".*tmp")]
    resumed = ingest([tmp_path / "recordings"], tmp_path / "store")
    assert resumed.units_unchanged == 2 and resumed.units_read == 2
    episodes = open_store(tmp_path / "store").read_episodes()
    assert sorted(episodes.column("source_path").to_pylist()) == [
        f"recordings/{n}" for n in "abcd"]
    assert not [p for p in (tmp_path / "store").rglob(".*tmp") if p not in leftovers]


def test_bad_lines_and_missing_frames_are_rejected_and_the_rest_kept(native_episode,
                                                                     tmp_path: Path) -> None:
    folder = native_episode("a", steps=[
        {"action": {"type": "click", "px": 1, "py": 2}, "frame": "frames/0.png"},
        {"action": {"type": "teleport"}},
        {"action": "done()", "frame": "frames/9.png"},
    ])
    with (folder / "steps.jsonl").open("a") as handle:
        handle.write('{"action": "wait(', )
    summary = ingest([tmp_path / "recordings"], tmp_path / "store")
    assert summary.steps == 2
    rejects = open_store(tmp_path / "store").read_rejects().to_pylist()
    where = sorted((r["file"].rsplit("/", 1)[-1], r["position"], r["level"]) for r in rejects)
    assert where == [("9.png", "", "frame"), ("steps.jsonl", "line 2", "step"),
                     ("steps.jsonl", "line 4", "step")]
    assert all(r["reason"] and r["hint"] for r in rejects)


def test_unrecognised_data_files_are_reported_not_dropped(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mystery.json").write_text('{"hello": 1}')
    (tmp_path / "in" / "notes.md").write_text("not data")
    summary = ingest([tmp_path / "in"], tmp_path / "store")
    (reject,) = open_store(tmp_path / "store").read_rejects().to_pylist()
    assert reject["file"] == "in/mystery.json" and reject["level"] == "file"
    assert summary.units_seen == 1


def test_a_foreign_folder_is_not_used_as_a_store(tmp_path: Path, native_episode) -> None:
    native_episode("a")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.docx").write_text("precious")
    with pytest.raises(OutputError, match="busy exists, is not empty and is not a curate store"):
        ingest([tmp_path / "recordings"], tmp_path / "busy")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(tmp_path / "nowhere")


def test_every_table_has_one_file_per_committed_batch(native_episode, tmp_path: Path) -> None:
    for name in "abc":
        native_episode(name)
    ingest([tmp_path / "recordings"], tmp_path / "store", batch_units=2)
    store = open_store(tmp_path / "store")
    assert len(store.manifest.batches) == 2
    for table in TABLES:
        assert all(p.is_file() for p in store.files(table))


def test_streaming_adapters_write_episode_by_episode_with_the_same_rows(tmp_path: Path) -> None:
    """A TFRecord shard of many episodes is written as its episodes finish; the store holds
    exactly what reading the whole shard at once gives."""
    from curate.pipeline.extract import extract_unit
    from curate.sources import adapters
    from curate.sources.discover import discover

    fixtures = Path(__file__).resolve().parent / "fixtures" / "androidcontrol"
    (planned,) = [p for p in discover([fixtures]) if p.adapter == "androidcontrol"][:1]
    assert adapters.get("androidcontrol").streams
    whole = extract_unit(planned.unit, planned.adapter)
    shard = tmp_path / "in" / planned.unit.path.name
    shard.parent.mkdir()
    shard.write_bytes(planned.unit.path.read_bytes())
    summary = ingest([shard.parent], tmp_path / "store")
    store = open_store(tmp_path / "store")
    assert summary.episodes == whole.episodes.num_rows > 1
    assert sorted(store.read_steps().column("action_text").to_pylist()) == sorted(
        whole.steps.column("action_text").to_pylist())
    assert store.read_rejects().num_rows == whole.rejects.num_rows
    (source,) = store.read("sources").to_pylist()
    assert (source["episodes"], source["steps"]) == (whole.episodes.num_rows,
                                                     whole.steps.num_rows)
