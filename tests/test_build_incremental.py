"""Incremental builds: an unchanged second build skips every stage and says so; changing
one recording redoes only the work that depends on it, and the dataset is what a build from
scratch gives."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from curate.cli import cli
from curate.pipeline.build import build


def files(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_unchanged_second_build_skips_every_stage_and_says_so(native_episode,
                                                                 tmp_path: Path) -> None:
    native_episode("a")
    native_episode("b")
    args = ["build", str(tmp_path / "recordings"), "-o", str(tmp_path / "dist"),
            "--recipe", "quick"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "skipped" not in first.stdout
    before = files(tmp_path / "dist")
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert ("unchanged       ingest, label, segment and export skipped: same inputs, recipe "
            "and curate version as the last build") in second.stdout
    assert files(tmp_path / "dist") == before  # not even rewritten with the same bytes
    assert "stage2          " in second.stdout  # the summary still shows what is there


def test_another_recipe_is_not_mistaken_for_an_unchanged_build(native_episode,
                                                               tmp_path: Path) -> None:
    native_episode("a")
    build([tmp_path / "recordings"], tmp_path / "dist", recipe="quick")
    again = build([tmp_path / "recordings"], tmp_path / "dist", recipe="tracer1")
    assert "export" not in again.skipped and "ingest" in again.skipped


def plain_rows(dist: Path, config: str) -> list[dict]:
    rows = [row for path in sorted((dist / "data" / config).glob("*.parquet"))
            for row in pq.read_table(path).to_pylist()]
    return sorted(rows, key=lambda row: str(row["id"]))


def test_changing_one_recording_redoes_only_what_depends_on_it(native_episode,
                                                               tmp_path: Path) -> None:
    for name in "abc":
        native_episode(name)
    build([tmp_path / "recordings"], tmp_path / "dist", recipe="quick")
    changed = tmp_path / "recordings" / "b" / "steps.jsonl"
    with changed.open("a") as handle:
        handle.write(json.dumps({"action": "done()", "frame": "frames/2.png"}) + "\n")
    again = build([tmp_path / "recordings"], tmp_path / "dist", recipe="quick")
    assert (again.ingest.units_read, again.ingest.units_unchanged) == (1, 2)
    # a and c keep their labels and segments (carried to the batch they now live in)
    assert (again.label.batches_labelled, again.label.batches_current) == (1, 1)
    assert (again.segment.batches_segmented, again.segment.batches_current) == (1, 1)
    assert again.skipped == []
    fresh = build([tmp_path / "recordings"], tmp_path / "fresh", recipe="quick")
    assert fresh.label.batches_labelled == 1
    for config in ("stage1", "stage2"):
        assert plain_rows(tmp_path / "dist", config) == plain_rows(tmp_path / "fresh", config)
