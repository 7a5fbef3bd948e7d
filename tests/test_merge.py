"""`curate merge`: stores ingested separately combine into one, repeats stored once; a
store merged with itself is a no-op; bad merges are refused before anything is written; a
merge killed halfway (SIGKILL, curate/store/faults.py) leaves the inputs untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.errors import StoreError
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.store.core import open_store
from curate.store.merge import merge_stores

REPO = Path(__file__).resolve().parents[1]


def tree(root: Path) -> dict[str, bytes]:
    """Every file but the lock (which any writer touches)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".curate-lock"}


def rows(store: Path, table: str) -> list[str]:
    listed = open_store(store).read(table).to_pylist()
    for row in listed:
        row.pop("batch", None)  # sources name their batch, which depends on the grouping
    return sorted(json.dumps(row, sort_keys=True, default=repr) for row in listed)


@pytest.fixture
def two_stores(native_episode, tmp_path: Path) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """Store A holds recordings a, b; store B holds c, d and b again (same files): every
    episode has the same three screenshots, d two more."""
    for name in "abc":
        native_episode(name)
    native_episode("d", colours=5, steps=[
        {"action": {"type": "click", "px": 1, "py": 2}, "frame": "frames/3.png",
         "next_frame": "frames/4.png"}])
    ingest([tmp_path / "recordings" / "a", tmp_path / "recordings" / "b"], tmp_path / "A")
    ingest([tmp_path / "recordings" / n for n in "bcd"], tmp_path / "B", batch_units=2)
    return tmp_path / "A", tmp_path / "B"


def test_merged_stores_hold_what_one_ingest_of_everything_holds(
        two_stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_stores
    label(a)  # derived tables of a batch copied whole come along
    summary = merge_stores([a, b], tmp_path / "merged")
    ingest([tmp_path / "recordings" / n for n in "abcd"], tmp_path / "together")
    merged, together = tmp_path / "merged", tmp_path / "together"
    for table in ("episodes", "steps", "frames", "rejects", "sources"):
        assert rows(merged, table) == rows(together, table), table
    assert summary.batches_copied == 2 and summary.batches_rewritten == 1  # (b, c) repeats b
    assert summary.units_skipped == 1 and summary.frames_skipped == 3
    store = open_store(merged)
    assert store.read("labels").num_rows == open_store(a).read("labels").num_rows
    assert tree(a)["manifest.json"] != b""  # inputs are still stores


def test_a_store_merged_with_itself_changes_nothing(two_stores: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    a, b = two_stores
    before = tree(a)
    summary = merge_stores([a], a)
    assert not summary.wrote_anything and tree(a) == before
    merge_stores([a, b], tmp_path / "once")
    merge_stores([a, b, a, b], tmp_path / "twice")
    merge_stores([a, b], tmp_path / "twice")
    assert tree(tmp_path / "twice").keys() - {".curate-output.json"} == \
        tree(tmp_path / "once").keys() - {".curate-output.json"}
    for name, data in tree(tmp_path / "once").items():
        if name != ".curate-output.json":  # the marker carries a random store id
            assert tree(tmp_path / "twice")[name] == data, name


def test_merge_is_deterministic(two_stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_stores
    merge_stores([a, b], tmp_path / "one")
    merge_stores([a, b], tmp_path / "two")
    one, two = tree(tmp_path / "one"), tree(tmp_path / "two")
    one.pop(".curate-output.json")
    two.pop(".curate-output.json")
    assert one == two


def test_stores_of_different_schema_versions_are_refused(two_stores: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    a, b = two_stores
    manifest = json.loads((b / "manifest.json").read_text())
    (b / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 0}))
    before = tree(a)
    # An older store is refused when opened, before anything is merged.
    with pytest.raises(StoreError, match=r"schema version 0, older than this curate.*re-ingest"):
        merge_stores([a, b], tmp_path / "merged")
    with pytest.raises(StoreError, match="older than this curate"):
        merge_stores([b], a)
    assert tree(a) == before
    assert not (tmp_path / "merged" / "manifest.json").exists()


def test_one_source_with_two_contents_is_refused(native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    native_episode("a")
    ingest([tmp_path / "recordings"], tmp_path / "old")
    native_episode("a", steps=[{"action": "done()", "frame": "frames/0.png"}])
    ingest([tmp_path / "recordings"], tmp_path / "new")
    before = tree(tmp_path / "old")
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "new"), "-o",
                                      str(tmp_path / "old")])
    assert result.exit_code != 0
    assert "recordings/a is in the output and in" in result.output
    assert "different content" in result.output
    assert tree(tmp_path / "old") == before


def test_the_cli_reports_what_it_merged(two_stores: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two_stores
    result = CliRunner().invoke(cli, ["merge", str(a), str(b), "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "2 copied, 1 written without repeats, 0 already there" in result.output
    assert "1 source(s), 3 frame(s) already in the output" in result.output


def test_a_merge_killed_halfway_leaves_the_inputs_untouched(two_stores: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    a, b = two_stores
    inputs = (tree(a), tree(b))
    out = tmp_path / "merged"
    result = subprocess.run(
        [sys.executable, "-m", "curate.cli", "merge", str(a), str(b), "-o", str(out)],
        env={**os.environ, "PYTHONPATH": str(REPO), "CURATE_FAULT": "merge.after-batch@2"},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert (tree(a), tree(b)) == inputs
    assert open_store(out).manifest.batches == []  # nothing committed, still readable
    merge_stores([a, b], out)
    merge_stores([a, b], tmp_path / "clean")
    done, clean = tree(out), tree(tmp_path / "clean")
    done.pop(".curate-output.json")
    clean.pop(".curate-output.json")
    assert done == clean  # the leftovers of the killed run are gone
