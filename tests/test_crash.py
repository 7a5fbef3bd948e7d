"""Crash safety, proven with SIGKILL: a real `curate` process is killed at named points
(CURATE_FAULT, see curate/store/faults.py) between files, between the data files and the
manifest, between stages and just before an export is swapped in. Afterwards the previous
store or export is still readable and byte-identical, and a run to completion gives the same
bytes as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from curate.export import ExportParams, export
from curate.pipeline.build import build
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import SegmentParams, segment
from curate.store.core import open_store
from curate.store.outputs import MARKER
from curate.store.schema import DERIVED_TABLES, TABLES

REPO = Path(__file__).resolve().parents[1]


def killed(cwd: Path, point: str, *args: str) -> None:
    """Run `curate ARGS` in ``cwd`` and check CURATE_FAULT=point killed it there."""
    result = subprocess.run([sys.executable, "-m", "curate.cli", *args], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO), "CURATE_FAULT": point},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, (point, result.stderr[-2000:])


def committed(store: Path) -> dict[str, bytes]:
    """What a reader of the store sees: the manifest and every file it points at."""
    opened = open_store(store)
    files = {"manifest.json": (store / "manifest.json").read_bytes()}
    for table in (*TABLES, *DERIVED_TABLES):
        for path in opened.files(table):
            files[path.relative_to(store).as_posix()] = path.read_bytes()
            opened.read(table)  # and it reads
    return files


def tree(root: Path, *, marker: bool = True) -> dict[str, bytes]:
    """Every file (without the lock, and without the marker when ``marker`` is False)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".curate-lock" and (marker or p.name != MARKER)}


def episodes(root: Path, names: str, *, changed: str = "") -> Path:
    """Native episodes under root/recordings; those in ``changed`` get one more step."""
    from PIL import Image

    for name in names:
        folder = root / "recordings" / name
        (folder / "frames").mkdir(parents=True, exist_ok=True)
        for index in range(3):
            Image.new("RGB", (64, 48), (index * 70, ord(name) % 256, 90)).save(
                folder / "frames" / f"{index}.png")
        (folder / "episode.json").write_text(json.dumps({"curate_native": 1,
                                                         "instruction": f"task {name}"}))
        steps = [{"action": {"type": "click", "px": 30, "py": 20}, "frame": "frames/0.png",
                  "next_frame": "frames/1.png"},
                 {"action": "type(text=\"hi\")", "frame": "frames/1.png",
                  "next_frame": "frames/2.png"}]
        if name in changed:
            steps.append({"action": "done()", "frame": "frames/2.png"})
        (folder / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    return root / "recordings"


# -- ingest -------------------------------------------------------------------------------

@pytest.mark.parametrize("point", ["store.commit-before-rename@1",
                                   "store.commit-between-files@2",
                                   "store.commit-before-manifest@1"])
def test_ingest_killed_before_its_manifest_leaves_the_store_as_it_was(
        point: str, tmp_path: Path) -> None:
    work, reference = tmp_path / "work", tmp_path / "reference"
    for root in (work, reference):
        ingest([episodes(root, "ab")], root / "store", batch_units=1)
    before = committed(work / "store")
    for root in (work, reference):
        episodes(root, "acd", changed="a")  # two new episodes, one changed
    killed(work, point, "ingest", "recordings", "-o", "store")
    assert committed(work / "store") == before
    ingest([work / "recordings"], work / "store")
    ingest([reference / "recordings"], reference / "store")
    assert tree(work / "store", marker=False) == tree(reference / "store", marker=False)


def test_ingest_killed_between_committed_batches_never_shows_a_source_twice(
        tmp_path: Path) -> None:
    work, reference = tmp_path / "work", tmp_path / "reference"
    for root in (work, reference):
        ingest([episodes(root, "ab")], root / "store", batch_units=1)
        episodes(root, "acd", changed="a")
    # a (changed), c, d, one batch each: killed after a's and c's batches were committed
    killed(work, "ingest.after-unit@3", "ingest", "recordings", "-o", "store",
           "--batch-units", "1")
    store = open_store(work / "store")
    sources = store.read("sources").column("source_path").to_pylist()
    assert sorted(sources) == sorted(set(sources)) == ["recordings/a", "recordings/b",
                                                       "recordings/c"]
    assert store.read_episodes().num_rows == 3
    ingest([work / "recordings"], work / "store", batch_units=1)
    ingest([reference / "recordings"], reference / "store", batch_units=1)
    assert tree(work / "store", marker=False) == tree(reference / "store", marker=False)


# -- segment ------------------------------------------------------------------------------

def labelled(root: Path) -> Path:
    ingest([episodes(root, "abc")], root / "store", batch_units=1)
    label(root / "store")
    segment(root / "store")
    return root / "store"


@pytest.mark.parametrize("point", ["store.table-before-rename@1", "segment.after-batch@2"])
def test_segment_killed_leaves_every_segments_file_whole(point: str, tmp_path: Path) -> None:
    work, reference = labelled(tmp_path / "work"), labelled(tmp_path / "reference")
    before = committed(work)
    segment(reference, params=SegmentParams(horizons=(2,)))
    after = committed(reference)
    killed(work.parent, point, "segment", "store", "--horizon", "2")
    now = committed(work)
    # each file is the old one or the new one, never a torn one; the first point changed none
    assert set(now) == set(before)
    assert all(now[name] in (before[name], after[name]) for name in now)
    if point.startswith("store.table-before-rename"):
        assert now == before
    segment(work, params=SegmentParams(horizons=(2,)))
    assert tree(work, marker=False) == tree(reference, marker=False)


# -- export -------------------------------------------------------------------------------

@pytest.mark.parametrize("point", ["export.after-episode@2", "outputs.before-swap@1"])
def test_export_killed_leaves_the_previous_export_identical(point: str,
                                                            tmp_path: Path) -> None:
    store = labelled(tmp_path)
    export(store, tmp_path / "dist", params=ExportParams(flavours=("plain",)))
    before = tree(tmp_path / "dist")
    killed(tmp_path, point, "export", "store", "-o", "dist", "--flavour", "plain",
           "--seed", "7")
    assert tree(tmp_path / "dist") == before
    export(store, tmp_path / "dist", params=ExportParams(flavours=("plain",), seed=7))
    export(store, tmp_path / "reference", params=ExportParams(flavours=("plain",), seed=7))
    assert tree(tmp_path / "dist") == tree(tmp_path / "reference")
    assert not list(tmp_path.glob(".dist.*"))  # the killed run's staging folder is gone


# -- build --------------------------------------------------------------------------------

COMMAND = "curate build recordings -o dist --recipe quick"


@pytest.mark.parametrize("point", ["ingest.after-unit@1", "label.after-batch@1",
                                   "segment.after-batch@1", "outputs.before-swap@1"])
def test_build_killed_at_any_stage_leaves_the_previous_dataset_identical(
        point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, reference = tmp_path / "work", tmp_path / "reference"
    for root in (reference, work):  # the same history in both, the reference uninterrupted
        episodes(root, "ab")
        monkeypatch.chdir(root)
        build([Path("recordings")], Path("dist"), recipe="quick", command=COMMAND)
        episodes(root, "ac", changed="a")
    monkeypatch.chdir(reference)
    build([Path("recordings")], Path("dist"), recipe="quick", command=COMMAND)
    before = tree(work / "dist")
    killed(work, point, "build", "recordings", "-o", "dist", "--recipe", "quick")
    assert tree(work / "dist") == before
    committed(work / "dist.store")  # the store still reads
    monkeypatch.chdir(work)
    build([Path("recordings")], Path("dist"), recipe="quick", command=COMMAND)
    assert tree(work / "dist", marker=False) == tree(reference / "dist", marker=False)
    assert not list(work.glob(".dist.*"))
