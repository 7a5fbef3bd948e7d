"""Engines (curate.engines) and URL inputs/outputs (curate.engines.remote), without Ray.

The local engine's faults are real: a pool process is SIGKILLed mid-task, or exits hard on a
marked unit (CURATE_TEST_CRASH_UNITS). The URL tests use fsspec's real ``memory://`` and
``file://`` filesystems. The Ray engine on a real cluster is in tests/ray_cluster/.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import fsspec
import pytest

from curate.engines import (
    CRASH_ENV,
    PID_DIR_ENV,
    SLOW_ENV,
    EngineError,
    LocalEngine,
    WorkerCrashed,
    get_engine,
)
from curate.engines.remote import fetch, is_url, localise_sources
from curate.pipeline.build import build
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.store.core import open_store


def snapshot(root: Path, suffix: str = "") -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()  # not the marker and lock
            for p in sorted(root.rglob(f"*{suffix}"))
            if p.is_file() and not p.name.startswith(".curate")}


def _square(value: int) -> int:
    time.sleep(0.01 * (value % 3))  # uneven durations: completion order differs from input
    return value * value


def _fail_on_three(value: int) -> int:
    if value == 3:
        raise ValueError("three")
    return value


def _exit_on_two(value: int) -> int:
    from curate.engines import _in_worker_process

    if value == 2 and _in_worker_process:
        os._exit(9)
    return value


# ---------------------------------------------------------------- the local engine


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_local_engine_yields_results_in_input_order(workers: int) -> None:
    with LocalEngine(workers) as engine:
        assert list(engine.map_ordered(_square, range(20))) == [v * v for v in range(20)]


def test_local_engine_keeps_a_bounded_number_in_flight() -> None:
    pulled: list[int] = []

    def items() -> object:
        for value in range(50):
            pulled.append(value)
            yield value

    with LocalEngine(2) as engine:
        results = engine.map_ordered(_square, items(), window=3)  # type: ignore[arg-type]
        assert next(results) == 0
        assert len(pulled) <= 4  # the window, plus the one that made it full
        assert list(results) == [v * v for v in range(1, 50)]


def test_python_errors_propagate_and_are_not_retried() -> None:
    with LocalEngine(2) as engine, pytest.raises(ValueError, match="three"):
        list(engine.map_ordered(_fail_on_three, range(6)))


def test_a_crashing_item_goes_to_on_crash_and_the_rest_complete() -> None:
    crashed: list[int] = []

    def on_crash(item: int, why: str) -> int:
        crashed.append(item)
        return -1

    with LocalEngine(2) as engine:
        results = list(engine.map_ordered(_exit_on_two, range(6), on_crash=on_crash))
    assert results == [0, 1, -1, 3, 4, 5]
    assert crashed == [2]


def test_without_on_crash_a_crashing_item_raises_worker_crashed() -> None:
    with LocalEngine(2) as engine, pytest.raises(WorkerCrashed, match="died"):
        list(engine.map_ordered(_exit_on_two, range(4)))


def test_get_engine_explains_its_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(get_engine("local", workers=2), LocalEngine)
    with pytest.raises(EngineError, match="unknown engine 'spark'"):
        get_engine("spark")
    with pytest.raises(EngineError, match="--engine ray"):
        get_engine("local", address="auto")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(EngineError, match=r"pip install 'curate\[ray\]'"):
        get_engine("ray", address="auto")


# ---------------------------------------------------------------- faults during ingest


def test_local_ingest_survives_a_killed_worker(native_episode, tmp_path: Path,  # type: ignore[no-untyped-def]
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name in "abcde":
        native_episode(name)
    ingest([tmp_path / "recordings"], tmp_path / "clean")
    pids = tmp_path / "pids"
    pids.mkdir()
    monkeypatch.setenv(SLOW_ENV, "recordings/c")
    monkeypatch.setenv(PID_DIR_ENV, str(pids))
    killed: list[int] = []
    killer = threading.Thread(target=_kill_first_pid, args=(pids, killed), daemon=True)
    killer.start()
    summary = ingest([tmp_path / "recordings"], tmp_path / "store", workers=2)
    killer.join(timeout=5)
    assert killed and killed[0] != os.getpid()
    assert summary.episodes == 5 and summary.rejects == 0
    sources = open_store(tmp_path / "store").read_episodes().column("source_path").to_pylist()
    assert sorted(sources) == [f"recordings/{n}" for n in "abcde"]  # none lost, none twice
    assert snapshot(tmp_path / "store", ".parquet") == snapshot(tmp_path / "clean", ".parquet")
    assert not list((tmp_path / "store").rglob("*.tmp"))  # the retry wrote over its files


def _kill_first_pid(pids: Path, killed: list[int]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = sorted(pids.iterdir())
        if found:
            killed.append(int(found[0].name))
            os.kill(killed[0], signal.SIGKILL)
            return
        time.sleep(0.05)


def test_local_ingest_turns_a_worker_crash_into_a_reject(native_episode, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in "abc":
        native_episode(name)
    monkeypatch.setenv(CRASH_ENV, "recordings/b")
    summary = ingest([tmp_path / "recordings"], tmp_path / "store", workers=2)
    assert summary.episodes == 2 and summary.rejects == 1
    store = open_store(tmp_path / "store")
    rejects = store.read_rejects().to_pylist()
    assert [(r["source_path"], r["level"], r["file"]) for r in rejects] == [
        ("recordings/b", "episode", "recordings/b")]
    assert rejects[0]["reason"].startswith("worker crashed while reading this source")
    # Recorded like any unreadable source: a re-run does not crash on it again.
    again = ingest([tmp_path / "recordings"], tmp_path / "store", workers=2)
    assert again.units_unchanged == 3


def test_the_crash_hook_never_fires_in_the_driver(native_episode, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    native_episode("a")
    monkeypatch.setenv(CRASH_ENV, "*")
    assert ingest([tmp_path / "recordings"], tmp_path / "store").episodes == 1  # inline


# ---------------------------------------------------------------- URLs


def _to_memory(local: Path, url: str) -> None:
    fs = fsspec.filesystem("memory")
    fs.put(str(local), url, recursive=True)


def test_is_url() -> None:
    assert is_url("s3://bucket/x") and is_url("memory://a") and is_url("file:///tmp/x")
    assert not is_url("recordings/a") and not is_url(Path("s3://x")) and not is_url("C:\\x")


def test_memory_url_sources_give_the_same_store_as_local_paths(native_episode, tmp_path: Path  # type: ignore[no-untyped-def]
                                                               ) -> None:
    for name in "ab":
        native_episode(name)
    url = f"memory://{tmp_path.name}/in/recordings"
    _to_memory(tmp_path / "recordings", url)
    cache = tmp_path / "cache"
    ingest([tmp_path / "recordings"], tmp_path / "local")
    ingest([url], tmp_path / "remote", cache=cache)
    assert snapshot(tmp_path / "remote") == snapshot(tmp_path / "local")
    again = ingest([url], tmp_path / "remote", cache=cache)
    assert again.units_unchanged == 2 and not again.wrote_anything


def test_fetch_refreshes_changed_and_deleted_files(native_episode, tmp_path: Path  # type: ignore[no-untyped-def]
                                                   ) -> None:
    native_episode("a")
    native_episode("b")
    url = f"memory://{tmp_path.name}/fetch/recordings"
    _to_memory(tmp_path / "recordings", url)
    local = fetch(url, tmp_path / "cache")
    assert (local / "a" / "episode.json").exists() and local.name == "recordings"
    fs = fsspec.filesystem("memory")
    fs.rm(f"{url}/b", recursive=True)
    fs.pipe(f"{url}/a/episode.json", b'{"changed": true}')
    local = fetch(url, tmp_path / "cache")
    assert not (local / "b").exists()
    assert (local / "a" / "episode.json").read_bytes() == b'{"changed": true}'


def test_file_urls_are_read_in_place(native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    native_episode("a")
    [local] = localise_sources([f"file://{tmp_path / 'recordings'}"], tmp_path / "cache")
    assert local == tmp_path / "recordings" and not (tmp_path / "cache").exists()


def test_a_missing_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="memory://nowhere/x does not exist"):
        fetch("memory://nowhere/x", tmp_path / "cache")


@pytest.mark.slow
def test_build_reads_and_writes_urls(native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in "abc":
        native_episode(name)
    build([tmp_path / "recordings"], tmp_path / "dist")
    base = f"memory://{tmp_path.name}/build"
    _to_memory(tmp_path / "recordings", f"{base}/recordings")
    cache = tmp_path / "cache"
    build([f"{base}/recordings"], f"{base}/dist", store=f"{base}/dist.store", cache=cache)
    fs = fsspec.filesystem("memory")
    for table in ("dist", "dist.store"):
        local = snapshot(tmp_path / table, ".parquet")
        assert local
        for name, data in local.items():
            assert fs.cat_file(f"{base}/{table}/{name}") == data, name
    assert fs.exists(f"{base}/dist/README.md") and fs.exists(f"{base}/dist.store/manifest.json")
    # With the local copy gone, the store comes back from the URL whole: nothing to relabel.
    shutil.rmtree(cache / "stores")
    again = label(f"{base}/dist.store", cache=cache)
    assert again.batches_labelled == 0 and again.batches_current > 0
