"""Outputs never destroy what curate did not make; refusals come before any work; partial
outputs never outlive their run; a full disk or a read-only place ends in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.errors import OutputError
from curate.export import export
from curate.pipeline.build import build
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import segment
from curate.store.outputs import MARKER, read_marker

REPO = Path(__file__).resolve().parents[1]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def project_folder(root: Path) -> Path:
    """A user's folder that merely looks like a dataset: a README and a git repository."""
    root.mkdir(parents=True)
    (root / "README.md").write_text("# my thesis\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "chapter1.tex").write_text("precious")
    return root


@pytest.fixture
def labelled_store(native_episode, tmp_path: Path) -> Path:
    native_episode("a")
    native_episode("b")
    store = tmp_path / "store"
    ingest([tmp_path / "recordings"], store)
    label(store)
    segment(store)
    return store


# -- refusals, before any work ------------------------------------------------------------

def test_export_never_replaces_a_folder_with_a_readme_it_did_not_make(
        labelled_store: Path, tmp_path: Path) -> None:
    mine = project_folder(tmp_path / "thesis")
    before = tree(mine)
    code, _, err = run("export", str(labelled_store), "-o", str(mine))
    assert code == 2
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert f"{mine} exists, is not empty and is not a curate export" in err
    assert tree(mine) == before


def test_build_refuses_a_foreign_folder_before_ingest_runs(native_episode,
                                                           tmp_path: Path) -> None:
    native_episode("a")
    mine = project_folder(tmp_path / "dist")
    with pytest.raises(OutputError, match="is not a curate export"):
        build([tmp_path / "recordings"], mine, recipe="quick")
    assert not (tmp_path / "dist.store").exists()  # nothing was ingested


@pytest.mark.parametrize("command", ["export", "build"])
def test_an_output_that_is_a_file_is_refused_in_one_line(command: str, labelled_store: Path,
                                                         tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    first = str(labelled_store) if command == "export" else str(tmp_path / "recordings")
    code, _, err = run(command, first, "-o", str(target))
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"Error: -o {target} is an existing file, not a folder; choose a "
                           "new folder name")
    assert target.read_text() == "keep me"


def test_export_onto_its_own_store_is_refused(labelled_store: Path) -> None:
    before = tree(labelled_store)
    for out in (labelled_store, labelled_store / "dist"):
        code, _, err = run("export", str(labelled_store), "-o", str(out))
        assert code == 2 and f"-o {out} is the store {labelled_store} or overlaps it" in err
    assert tree(labelled_store) == before


def test_a_store_inside_its_source_folder_is_refused(native_episode, tmp_path: Path) -> None:
    native_episode("a")
    inside = tmp_path / "recordings" / "store"
    code, _, err = run("ingest", str(tmp_path / "recordings"), "-o", str(inside))
    assert code == 2 and f"-o {inside} is inside the source folder" in err
    assert not inside.exists()
    with pytest.raises(OutputError, match="is inside the source folder"):
        build([tmp_path / "recordings"], tmp_path / "recordings" / "dist", recipe="quick")
    assert not (tmp_path / "recordings" / "dist.store").exists()


# -- markers ------------------------------------------------------------------------------

def test_every_folder_curate_writes_carries_its_marker(labelled_store: Path,
                                                       tmp_path: Path) -> None:
    export(labelled_store, tmp_path / "dist")
    store_marker, export_marker = read_marker(labelled_store), read_marker(tmp_path / "dist")
    assert store_marker is not None and store_marker.kind == "store"
    assert export_marker is not None and export_marker.kind == "export"
    assert export_marker.store_id == store_marker.store_id
    assert export_marker.command == "curate export"
    body = json.loads((tmp_path / "dist" / MARKER).read_text())
    assert body["tool"] == "curate" and body["curate_version"]


def test_an_export_curate_made_is_replaced(labelled_store: Path, tmp_path: Path) -> None:
    export(labelled_store, tmp_path / "dist")
    (tmp_path / "dist" / "data" / "stale.parquet").write_bytes(b"old")
    export(labelled_store, tmp_path / "dist")
    assert not (tmp_path / "dist" / "data" / "stale.parquet").exists()
    assert not list(tmp_path.glob(".dist.*"))


def test_an_export_made_before_markers_is_recognised_by_its_layout(labelled_store: Path,
                                                                   tmp_path: Path) -> None:
    export(labelled_store, tmp_path / "dist")
    (tmp_path / "dist" / MARKER).unlink()  # what an earlier curate left
    export(labelled_store, tmp_path / "dist")
    assert read_marker(tmp_path / "dist") is not None
    # ... but one extra file of the user's means it is not only curate's any more
    (tmp_path / "dist" / MARKER).unlink()
    (tmp_path / "dist" / "my_notes.md").write_text("mine")
    with pytest.raises(OutputError, match="is not a curate export"):
        export(labelled_store, tmp_path / "dist")
    assert (tmp_path / "dist" / "my_notes.md").read_text() == "mine"


# -- partial outputs ----------------------------------------------------------------------

def test_a_failed_export_leaves_no_partial_folder(native_episode, tmp_path: Path) -> None:
    native_episode("a", steps=[{"action": "done()"}])  # no screenshot: no usable GUI row
    ingest([tmp_path / "recordings"], tmp_path / "store")
    label(tmp_path / "store")
    segment(tmp_path / "store")
    with pytest.raises(Exception, match="nothing to export"):
        export(tmp_path / "store", tmp_path / "dist")
    assert not (tmp_path / "dist").exists()
    assert not list(tmp_path.glob(".dist.*"))


def test_a_stale_partial_curate_made_is_cleaned_and_a_foreign_one_kept(
        labelled_store: Path, tmp_path: Path) -> None:
    stale = tmp_path / ".dist.partial"
    stale.mkdir()
    (stale / MARKER).write_text(json.dumps({"tool": "curate", "kind": "export",
                                            "store_id": "x", "command": "curate export",
                                            "curate_version": "0"}))
    (stale / "half.parquet").write_bytes(b"half")
    export(labelled_store, tmp_path / "dist")
    assert not stale.exists() and (tmp_path / "dist" / "README.md").exists()

    foreign = tmp_path / ".other.partial"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"\.other\.partial exists and was not made by curate"):
        export(labelled_store, tmp_path / "other")
    assert (foreign / "mine.txt").read_text() == "mine"


def curate_process(*args: str, env: dict[str, str] | None = None,
                   cwd: Path | None = None) -> subprocess.Popen[str]:
    # As a command typed in a terminal: a test run started in the background (nohup, `&`)
    # ignores SIGINT, children inherit that, and Python then installs no KeyboardInterrupt.
    return subprocess.Popen([sys.executable, "-m", "curate.cli", *args], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the process never reached its fault point"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_export_removes_its_partial_folder(signum: int, labelled_store: Path,
                                                          tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = curate_process("export", str(labelled_store), "-o", str(tmp_path / "dist"),
                             env={"CURATE_FAULT": "export.after-episode@1:wait",
                                  "CURATE_FAULT_READY": str(ready)})
    wait_for(ready, process)
    assert (tmp_path / ".dist.partial").is_dir()
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err and err.strip().startswith("Error: interrupted")
    assert not (tmp_path / ".dist.partial").exists() and not (tmp_path / "dist").exists()


# -- places that cannot be written --------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KB filesystem (tmpfs, which needs root); elsewhere a file-size limit stands in."""
    place = tmp_path / "disk"
    place.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(place)],
        capture_output=True).returncode == 0
    if not mounted:
        pytest.skip("needs root to mount a small tmpfs")  # CI runs as root
    try:
        yield place
    finally:
        subprocess.run(["umount", "-l", str(place)], check=False)


def noisy_recordings(root: Path, count: int) -> Path:
    """Episodes whose screenshots do not compress: together larger than the small disk."""
    from PIL import Image

    for index in range(count):
        folder = root / f"ep{index}"
        (folder / "frames").mkdir(parents=True)
        for frame in range(2):
            Image.frombytes("RGB", (160, 120), os.urandom(160 * 120 * 3)).save(
                folder / "frames" / f"{frame}.png")
        (folder / "episode.json").write_text(json.dumps({"curate_native": 1,
                                                         "instruction": f"task {index}"}))
        (folder / "steps.jsonl").write_text(json.dumps(
            {"action": {"type": "click", "px": 3, "py": 4}, "frame": "frames/0.png",
             "next_frame": "frames/1.png"}) + "\n")
    return root


def test_a_full_disk_ends_ingest_in_one_line_naming_the_path(small_disk: Path,
                                                             tmp_path: Path) -> None:
    recordings = noisy_recordings(tmp_path / "recordings", 2)
    store = small_disk / "store"
    assert run("ingest", str(recordings), "-o", str(store))[0] == 0
    before = tree(store)
    noisy_recordings(tmp_path / "more", 12)
    process = curate_process("ingest", str(recordings), str(tmp_path / "more"), "-o",
                             str(store))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"Error: cannot write {store}") and "No space left on device" in err
    # the store is exactly what it was (lock and leftovers aside) and still opens
    after = {k: v for k, v in tree(store).items() if not k.endswith(".tmp")}
    assert {k: v for k, v in after.items() if k != ".curate-lock"} == {
        k: v for k, v in before.items() if k != ".curate-lock"}


def test_a_read_only_output_ends_export_in_one_line(labelled_store: Path,
                                                    tmp_path: Path) -> None:
    place = tmp_path / "readonly"
    place.mkdir()
    if os.geteuid() == 0:  # root ignores permissions: make it a read-only filesystem
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(place)],
                          capture_output=True).returncode != 0:
            pytest.skip("needs a read-only mount")
    else:
        place.chmod(0o555)
    try:
        code, _, err = run("export", str(labelled_store), "-o", str(place / "dist"))
        assert code == 2 and "Traceback" not in err and err.strip().count("\n") == 0
        assert err.startswith(f"Error: cannot write {place}")
        assert "Read-only file system" in err or "Permission denied" in err
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(place)], check=False)
        place.chmod(0o755)
    shutil.rmtree(place, ignore_errors=True)
