"""Two processes writing one store: the second waits for the first (a flock on the store's
lock file) or fails clearly after a timeout; rows are never interleaved or lost; another
live process's temporary files are never deleted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from curate.errors import StoreLocked
from curate.pipeline.ingest import ingest
from curate.store.core import init_store, open_store, remove_leftovers, store_lock
from curate.store.layout import temp_batch_file

REPO = Path(__file__).resolve().parents[1]
TRIALS = 16

# One interpreter imports curate once, then each trial forks two real processes that ingest
# different folders into one new store at the same moment.
RACE = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from curate.pipeline.ingest import ingest

    root, trials = Path(sys.argv[1]), int(sys.argv[2])
    ingest([root / "left"], root / "warm-up")  # the lazy imports happen once, not per child
    results = []
    for trial in range(trials):
        store = root / f"store{trial}"
        children = []
        for side in ("left", "right"):
            pid = os.fork()
            if pid == 0:
                try:
                    ingest([root / side], store, batch_units=1)
                    os._exit(0)
                except BaseException as error:
                    print(f"{side}: {error!r}", file=sys.stderr)
                    os._exit(1)
            children.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
        results.append({"store": str(store), "codes": codes})
    print(json.dumps(results))
""")


def episodes(root: Path, names: list[str]) -> Path:
    from PIL import Image

    for name in names:
        folder = root / name
        (folder / "frames").mkdir(parents=True)
        Image.new("RGB", (32, 24), (len(name) * 9 % 256, 40, 90)).save(folder / "frames/0.png")
        (folder / "episode.json").write_text(json.dumps({"curate_native": 1,
                                                         "instruction": name}))
        (folder / "steps.jsonl").write_text(json.dumps(
            {"action": {"type": "click", "px": 3, "py": 4}, "frame": "frames/0.png"}) + "\n")
    return root


def test_two_concurrent_ingests_into_one_store_lose_nothing(tmp_path: Path) -> None:
    left = [f"l{i}" for i in range(3)]
    right = [f"r{i}" for i in range(3)]
    episodes(tmp_path / "left", left)
    episodes(tmp_path / "right", right)
    result = subprocess.run([sys.executable, "-c", RACE, str(tmp_path), str(TRIALS)],
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for trial in json.loads(result.stdout):
        assert trial["codes"] == [0, 0], result.stderr[-3000:]
        store = open_store(trial["store"])
        sources = store.read("sources").column("source_path").to_pylist()
        assert sorted(sources) == sorted([*(f"left/{n}" for n in left),
                                          *(f"right/{n}" for n in right)])
        assert store.read_episodes().num_rows == 6 and store.read_steps().num_rows == 6
        assert not [p for p in Path(trial["store"]).rglob("*.tmp")]


def test_a_second_writer_waits_then_fails_clearly_naming_the_holder(native_episode,
                                                                    tmp_path: Path) -> None:
    native_episode("a")
    native_episode("b", root=tmp_path / "more")
    ready = tmp_path / "ready"
    first = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "ingest", str(tmp_path / "recordings"), "-o",
         str(tmp_path / "store")],
        env={**os.environ, "PYTHONPATH": str(REPO),
             "CURATE_FAULT": "store.commit-before-rename@1:wait",
             "CURATE_FAULT_READY": str(ready)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        temporaries = sorted((tmp_path / "store").rglob(".batch-open-*.tmp"))
        assert temporaries  # the first writer's files, closed, not yet renamed
        second = subprocess.run(
            [sys.executable, "-m", "curate.cli", "ingest", str(tmp_path / "more"), "-o",
             str(tmp_path / "store")],
            env={**os.environ, "PYTHONPATH": str(REPO), "CURATE_LOCK_TIMEOUT": "1"},
            capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert (f"{tmp_path / 'store'} is being written by another curate process "
                f"(pid {first.pid}) and stayed locked for 1 s") in second.stderr
        assert sorted((tmp_path / "store").rglob(".batch-open-*.tmp")) == temporaries
        ready.unlink()  # let the first writer finish
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
    ingest([tmp_path / "more"], tmp_path / "store")
    assert open_store(tmp_path / "store").read_episodes().num_rows == 2


def test_opening_a_store_keeps_a_live_writers_temporary_files(tmp_path: Path) -> None:
    store = tmp_path / "store"
    init_store(store)
    sleeper = subprocess.Popen(["sleep", "60"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    try:
        live = temp_batch_file(store, "steps", f"open-{sleeper.pid}-1")
        dead = temp_batch_file(store, "steps", f"open-{gone.pid}-1")
        dead_manifest = store / f".manifest.json.{gone.pid}.tmp"
        for path in (live, dead, dead_manifest):
            path.write_bytes(b"half")
        init_store(store)
        assert live.exists() and not dead.exists() and not dead_manifest.exists()
        with store_lock(store):
            remove_leftovers(store)
        assert live.exists()
    finally:
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()
    remove_leftovers(store)
    assert not live.exists()


def test_the_lock_is_reentrant_in_one_process_and_exclusive_across_processes(
        tmp_path: Path) -> None:
    store = tmp_path / "store"
    holder = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from curate.store.core import store_lock
        with store_lock(Path({str(store)!r})):
            print("held", flush=True)
            time.sleep(30)
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        with pytest.raises(StoreLocked, match=f"pid {process.pid}"), \
                store_lock(store, timeout=0.2):
            pass
    finally:
        process.kill()  # a holder killed by SIGKILL releases the lock with its process
        process.wait()
    with store_lock(store, timeout=5), store_lock(store, timeout=0):
        pass
