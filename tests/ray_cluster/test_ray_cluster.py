"""The Ray engine on a real two-node cluster on 127.0.0.1.

The fixture starts a head and a second worker node with ``ray start --block`` (1 CPU and a
100 MiB object store each, no dashboard, no usage stats, a private temp dir), each in its own
process group, and at the end stops exactly those two groups (``ray stop`` would stop every
Ray on the machine). Without Ray the tests fail in CI (CI=true) and are skipped elsewhere.

The file is in the ``ray`` xdist group: with ``--dist loadgroup`` one worker runs it all and
the cluster is started once.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from browser import unavailable

from curate.engines import PID_DIR_ENV, SLOW_ENV, RayEngine
from curate.pipeline.build import build
from curate.pipeline.ingest import ingest
from curate.store.core import open_store

pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "recordings"
OBJECT_STORE_BYTES = 100 << 20  # small and explicit: the default is 30% of RAM per node
START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _node_ports() -> list[str]:
    """Every port a node opens, chosen free, so two clusters on one machine never collide."""
    names = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port")
    return [arg for name in names for arg in (name, str(_free_port()))]


def _ray_binary() -> str:
    try:
        import ray  # noqa: F401
    except ImportError:
        unavailable("ray is not installed (pip install 'curate[ray]')")
    return str(Path(sys.executable).with_name("ray"))


def _stop_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies, however it dies (a
    timeout's SIGKILL runs no teardown), so `ray start --block` still stops its node."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    # A new session: the node's daemons join this process group, and stopping the group
    # stops this node and nothing else.
    with log.open("wb") as handle:
        return subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_stop_with_parent)


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 15.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_nodes(address: str, nodes: int, processes: list[subprocess.Popen[bytes]],
                    logs: list[Path]) -> None:
    import ray

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                pytest.fail(f"ray start exited with {process.returncode}:\n"
                            f"{log.read_text(errors='replace')[-3000:]}")
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            alive = [node for node in ray.nodes() if node["Alive"]]
            ray.shutdown()
            if len(alive) >= nodes:
                return
        except (ConnectionError, RuntimeError):
            pass
        time.sleep(1.0)
    pytest.fail(f"the Ray cluster at {address} did not reach {nodes} nodes in "
                f"{START_TIMEOUT:.0f} s")


CLIENT_PORTS: dict[str, int] = {}  # cluster address -> its Ray Client server port


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"nothing listens on 127.0.0.1:{port} after {START_TIMEOUT:.0f} s")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Ray head and one worker node on 127.0.0.1, 1 CPU each; yields the address.

    Token authentication with a token of its own, given to the nodes and to this process
    by environment: nothing is read from or written to ~/.ray, and a token file a developer
    has there can neither break nor unlock the test cluster."""
    saved = {name: os.environ.get(name) for name in AUTH_ENV}
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)})
    try:
        yield from _cluster()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")


def _cluster() -> Iterator[str]:
    binary = _ray_binary()
    temp = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # Unix socket paths must be short
    port = _free_port()
    address = f"127.0.0.1:{port}"
    CLIENT_PORTS[address] = _free_port()
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory",
              str(OBJECT_STORE_BYTES), "--disable-usage-stats", "--block",
              "--min-worker-port", "0", "--max-worker-port", "0"]
    head_args = [binary, "start", "--head", "--port", str(port), "--temp-dir", str(temp),
                 "--include-dashboard", "false",
                 "--ray-client-server-port", str(CLIENT_PORTS[address]),
                 *common, *_node_ports()]
    logs = [temp / "head.log", temp / "worker.log"]
    processes = [_start(head_args, logs[0])]
    try:
        _wait_for_nodes(address, 1, processes, logs[:1])
        worker_args = [binary, "start", "--address", address, *common, *_node_ports()]
        processes.append(_start(worker_args, logs[1]))
        _wait_for_nodes(address, 2, processes, logs)
        _wait_for_port(CLIENT_PORTS[address])  # the Ray Client server comes up on its own time
        yield address
    finally:
        for process in reversed(processes):
            _stop(process)
        shutil.rmtree(temp, ignore_errors=True)


def parquet_files(*roots: Path) -> dict[str, bytes]:
    return {f"{root.name}/{path.relative_to(root).as_posix()}": path.read_bytes()
            for root in roots for path in sorted(root.rglob("*.parquet"))}


def recordings(native_episode, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """Every example recording plus a few native episodes (several frames each)."""
    root = tmp_path / "recordings"
    shutil.copytree(EXAMPLES, root)
    for name in ("n1", "n2", "n3", "n4"):
        native_episode(name, colours=3, root=root)
    return root


def test_builds_are_byte_identical_on_local_and_ray_with_1_and_2_workers(
        cluster: str, native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = recordings(native_episode, tmp_path)
    build([source], tmp_path / "local" / "dist", workers=1)
    expected = parquet_files(tmp_path / "local" / "dist", tmp_path / "local" / "dist.store")
    assert any(name.startswith("dist.store/frames/") for name in expected)
    for workers in (1, 2):
        with RayEngine(cluster, workers) as engine:
            out = tmp_path / f"ray{workers}" / "dist"
            summary = build([source], out, engine=engine)
        assert summary.ingest.episodes > 4 and summary.label.frames_decoded > 0
        assert parquet_files(out, out.with_name("dist.store")) == expected, workers


def test_tasks_run_on_both_nodes(cluster: str) -> None:
    import ray
    from ray import cloudpickle

    # Workers cannot import this test module: ship _node_of by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with RayEngine(cluster, 2) as engine:
            nodes = list(engine.map_ordered(_node_of, range(8)))
            assert ray.is_initialized()
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert not ray.is_initialized()  # the engine closes the connection it opened
    assert len(set(nodes)) == 2, nodes


def _node_of(_: int) -> str:
    import ray

    time.sleep(1.0)  # long enough that one node cannot take every task, even under load
    node: str = ray.get_runtime_context().get_node_id()
    return node


def test_a_killed_worker_loses_and_duplicates_nothing(
        cluster: str, native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b", "c", "d", "e"):
        native_episode(name)
    ingest([tmp_path / "recordings"], tmp_path / "clean")
    with _killing_the_slow_worker(cluster, tmp_path, "recordings/c") as engine:
        summary = ingest([tmp_path / "recordings"], tmp_path / "store", engine=engine)
    assert summary.rejects == 0 and summary.episodes == 5
    episodes = open_store(tmp_path / "store").read_episodes().column("source_path").to_pylist()
    assert sorted(episodes) == [f"recordings/{n}" for n in "abcde"]  # none lost, none twice
    assert parquet_files(tmp_path / "store") == {
        name.replace("clean/", "store/", 1): data
        for name, data in parquet_files(tmp_path / "clean").items()}


@contextmanager
def _killing_the_slow_worker(cluster: str, tmp_path: Path, slow: str) -> Iterator[RayEngine]:
    """A two-worker engine whose task for ``slow`` (a unit or export group) pauses once its
    work is written, and is SIGKILLed then; the block must have seen that kill."""
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {SLOW_ENV: slow, PID_DIR_ENV: str(pids)}
    killed: list[int] = []
    killer = threading.Thread(target=_kill_first_pid, args=(pids, killed), daemon=True)
    killer.start()
    with RayEngine(cluster, 2, runtime_env={"env_vars": env}) as engine:
        yield engine
    killer.join(timeout=5)
    assert killed, f"the worker of {slow} was never seen"


def _kill_first_pid(pids: Path, killed: list[int]) -> None:
    """Wait for the marker unit's worker to announce itself, then SIGKILL that process."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = sorted(pids.iterdir())
        if found:
            pid = int(found[0].name)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.05)


def test_a_recording_that_crashes_its_worker_becomes_a_reject(
        cluster: str, native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from curate.engines import CRASH_ENV

    for name in ("a", "b", "c"):
        native_episode(name)
    with RayEngine(cluster, 2, runtime_env={"env_vars": {CRASH_ENV: "recordings/b"}}) as engine:
        summary = ingest([tmp_path / "recordings"], tmp_path / "store", engine=engine)
    assert summary.episodes == 2 and summary.rejects == 1
    rejects = open_store(tmp_path / "store").read_rejects().to_pylist()
    assert [(r["source_path"], r["level"]) for r in rejects] == [("recordings/b", "episode")]
    assert "worker crashed while reading this source" in rejects[0]["reason"]


def test_ray_client_addresses_work_too(cluster: str) -> None:
    from curate.engines import EngineError

    # The client server starts a Python process per client; on 2 busy cores (the whole
    # suite under xdist) that can outlast Ray Client's ~35 s of connection attempts once.
    for attempt in range(3):
        try:
            with RayEngine(f"ray://127.0.0.1:{CLIENT_PORTS[cluster]}", 2) as engine:
                assert list(engine.map_ordered(abs, range(-5, 0))) == [5, 4, 3, 2, 1]
            return
        except EngineError:
            if attempt == 2:
                raise


def test_an_unreachable_cluster_is_a_clear_error() -> None:
    from curate.engines import EngineError

    _ray_binary()
    with pytest.raises(EngineError, match=r"cannot connect to the Ray cluster at 127\.0\.0\.1:"), \
            RayEngine(f"127.0.0.1:{_free_port()}") as engine:
        list(engine.map_ordered(abs, [1]))


def _export_files(root: Path) -> dict[str, bytes]:
    """Every file of an export but its marker (which names the command that made it)."""
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file() and not path.name.startswith(".curate")}


def test_export_tasks_on_the_cluster_give_the_local_bytes_through_a_killed_worker(
        cluster: str, native_episode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from curate.export import export
    from curate.pipeline.label import label
    from curate.pipeline.segment import segment

    source = recordings(native_episode, tmp_path)
    store = tmp_path / "store"
    ingest([source], store, batch_units=2)
    label(store)
    segment(store)
    export(store, tmp_path / "local", steps_per_task=1)  # one task per batch, in turn
    with _killing_the_slow_worker(cluster, tmp_path, "export/group-1") as engine:
        export(store, tmp_path / "ray", engine=engine, steps_per_task=1)
    files = _export_files(tmp_path / "ray")
    assert files == _export_files(tmp_path / "local")
    assert len([name for name in files if name.startswith("data/stage2/")]) > 2
    assert not list((tmp_path / "ray").rglob("*.tmp"))
