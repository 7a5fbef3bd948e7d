"""Scale-out benchmark (issue 19) on a real local multi-node Ray cluster.

    .venv/bin/python benchmarks/bench_cluster.py [--steps 400] [--nodes 1,2] [--batch-units 5]
        [--task-steps 50] [--repeat 1]

For each node count N it starts a cluster on 127.0.0.1 with ``ray start``: a head that runs
no tasks (``--num-cpus 0``) and N worker nodes of one CPU each, every node in its own
process session. This process is the driver: it runs ``ingest``, ``label`` and ``segment``
on the cluster (``RayEngine(address)``), then ``export`` on the cluster too (one task per
group of ``--task-steps`` steps of store batches; curate.export.batches). Printed per N
and stage: wall time; the bytes of every result the driver
received from the cluster (pickled, as they travel); the driver's CPU time against the whole
cluster's (driver + every process of every node, from /proc, so Ray's own daemons count).
Then throughput of the whole ingest → label → segment → export and its scaling efficiency
against N=1 (goal in the issue: >= 0.7 up to the physical cores). Corpus: the OSWorld-style
runs of corpus.py (1024x768 PNGs, every one distinct).
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from corpus import build_corpus

from curate.engines import RayEngine
from curate.export import export
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import segment

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "cluster"
OBJECT_STORE_BYTES = 200 << 20
TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 600.0  # seconds for a node to register; `ray start` is slow under load
START_ATTEMPTS = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def node_ports() -> list[str]:
    names = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port")
    return [arg for name in names for arg in (name, str(free_port()))]


def session_cpu(session: int) -> float:
    """CPU seconds of every live process of a session, with its reaped children."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session:  # field 6 of stat: the session id
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def driver_cpu() -> float:
    """This process's CPU time with its reaped children's (export's plot process)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class Cluster:
    """A head (no CPUs) and ``nodes`` one-CPU worker nodes, stopped by their sessions."""

    def __init__(self, nodes: int) -> None:
        self.temp = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))
        self.address = f"127.0.0.1:{free_port()}"
        self.processes: list[subprocess.Popen[bytes]] = []
        binary = str(Path(sys.executable).with_name("ray"))
        common = ["--node-ip-address", "127.0.0.1", "--object-store-memory",
                  str(OBJECT_STORE_BYTES), "--disable-usage-stats", "--block",
                  "--min-worker-port", "0", "--max-worker-port", "0"]
        self._start([binary, "start", "--head", "--port", self.address.rsplit(":", 1)[1],
                     "--temp-dir", str(self.temp), "--include-dashboard", "false",
                     "--num-cpus", "0", *common, *node_ports()])
        try:
            self._wait(0)
            # One node at a time: on a loaded machine, nodes started together time out
            # registering (the second one never did in the first runs).
            for started in range(1, nodes + 1):
                worker = [binary, "start", "--address", self.address, "--num-cpus", "1",
                          *common]
                self._start([*worker, *node_ports()])
                # `ray start` gives up when its raylet has not registered within 30 s (a
                # constant inside Ray), which a loaded machine overruns: start it again.
                for _ in range(START_ATTEMPTS - 1):
                    if self._wait(started):
                        break
                    self._start([*worker, *node_ports()])
                else:
                    if not self._wait(started):
                        raise SystemExit(f"worker node {started} did not start in "
                                         f"{START_ATTEMPTS} attempts; node logs are kept in "
                                         f"{WORK}")
        except BaseException:
            self.stop(keep_logs=True)
            raise

    def _start(self, args: list[str]) -> None:
        log = (self.temp / f"node{len(self.processes)}.log").open("wb")
        self.processes.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True))

    def _wait(self, nodes: int) -> bool:
        """Wait until ``nodes`` worker nodes are alive: True; False when the node process
        last started has exited without registering."""
        import ray

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if nodes and self.processes[-1].poll() is not None:
                return False
            try:
                ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
                alive = [node for node in ray.nodes() if node["Alive"]]
                ray.shutdown()
                if len(alive) >= nodes + 1:
                    return True
            except (ConnectionError, RuntimeError):
                pass
            time.sleep(1.0)
        raise SystemExit(f"the cluster did not reach {nodes} worker node(s) in "
                         f"{START_TIMEOUT:.0f} s; node logs are kept in {WORK}")

    def cpu(self) -> float:
        return sum(session_cpu(process.pid) for process in self.processes)

    def stop(self, keep_logs: bool = False) -> None:
        if keep_logs:  # the temp folder goes below: keep what says why a node failed
            for log in self.temp.glob("node*.log"):
                shutil.copy(log, WORK / log.name)
        for process in reversed(self.processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except ProcessLookupError:
                continue
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


class Counting:
    """A Ray engine that counts the pickled size of every result it hands the driver."""

    def __init__(self, inner: RayEngine) -> None:
        self.inner = inner
        self.name = inner.name
        self.received = 0

    def map_ordered(self, function: Callable[[Any], Any], items: Iterable[Any], *,
                    window: int | None = None,
                    on_crash: Callable[[Any, str], Any] | None = None) -> Iterator[Any]:
        for result in self.inner.map_ordered(function, items, window=window, on_crash=on_crash):
            self.received += len(pickle.dumps(result))
            yield result

    def close(self) -> None:
        self.inner.close()


Stage = tuple[float, int, float, float]  # wall s, bytes to the driver, driver CPU, cluster CPU


def run(nodes: int, corpus: Path, batch_units: int, steps: int, repeat: int,
        task_steps: int) -> dict[str, Any]:
    """``repeat`` fresh builds on one cluster of ``nodes`` nodes; per stage, the run with the
    median wall time."""
    cluster = Cluster(nodes)
    engine = Counting(RayEngine(cluster.address))
    runs: list[dict[str, Stage]] = []
    try:
        list(engine.map_ordered(int, range(nodes * 2)))  # connect and start the workers
        for _ in range(repeat):
            runs.append(one_build(engine, cluster, corpus, batch_units, nodes, task_steps))
    finally:
        engine.close()
        cluster.stop()
    stages = {stage: sorted((run[stage] for run in runs), key=lambda s: s[0])[len(runs) // 2]
              for stage in runs[0]}
    total = statistics.median(sum(wall for wall, *_ in run.values()) for run in runs)
    return {"nodes": nodes, "stages": stages, "total": total, "steps_per_s": steps / total}


def one_build(engine: Counting, cluster: Cluster, corpus: Path, batch_units: int,
              nodes: int, task_steps: int) -> dict[str, Stage]:
    store, out = WORK / f"store{nodes}", WORK / f"dist{nodes}"
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    stages: dict[str, Stage] = {}
    for stage, action in (
            ("ingest", lambda: ingest([corpus], store, engine=engine, batch_units=batch_units)),
            ("label", lambda: label(store, engine=engine)),
            ("segment", lambda: segment(store, engine=engine)),
            ("export", lambda: export(store, out, engine=engine, steps_per_task=task_steps))):
        received, cpu0, cluster0 = engine.received, driver_cpu(), cluster.cpu()
        started = time.perf_counter()
        action()
        wall = time.perf_counter() - started
        stages[stage] = (wall, engine.received - received, driver_cpu() - cpu0,
                         cluster.cpu() - cluster0)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--nodes", default="1,2")
    parser.add_argument("--batch-units", type=int, default=5)
    parser.add_argument("--task-steps", type=int, default=50,
                        help="steps of store batches per export task")
    parser.add_argument("--repeat", type=int, default=1, help="builds per cluster (medians)")
    args = parser.parse_args()
    corpus = build_corpus(HERE / "_work" / f"corpus_s{args.steps}", args.steps)
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"{args.steps} steps, batches of {args.batch_units} units, export tasks of "
          f"{args.task_steps} steps, median of "
          f"{args.repeat} build(s) per cluster; machine: "
          f"{os.cpu_count()} CPUs (shared)")
    print("nodes stage     wall s   to driver  driver CPU s  cluster CPU s  driver share")
    results = []
    for nodes in args.nodes.split(","):
        result = run(int(nodes), corpus, args.batch_units, args.steps, args.repeat,
                     args.task_steps)
        results.append(result)
        for stage, (wall, received, own, whole) in result["stages"].items():
            # The driver is a process of no node: the cluster's total is the nodes' + its own.
            share = own / (own + whole) if own + whole else 0.0
            print(f"{result['nodes']:>5} {stage:<8} {wall:7.2f} {received / 1e6:9.3f} MB "
                  f"{own:12.2f} {whole:14.2f} {share:12.1%}", flush=True)
    cluster_stages = ("ingest", "label", "segment", "export")
    base = results[0]
    for result in results:
        wall = sum(result["stages"][stage][0] for stage in cluster_stages)
        own = sum(result["stages"][stage][2] for stage in cluster_stages)
        whole = sum(result["stages"][stage][3] for stage in cluster_stages)
        first = sum(base["stages"][stage][0] for stage in cluster_stages)
        efficiency = first / wall / (result["nodes"] / base["nodes"])
        print(f"{result['nodes']} node(s), ingest+label+segment+export: {wall:.2f} s, "
              f"efficiency {efficiency:.2f}, driver share {own / (own + whole):.1%}")
    for result in results:
        speedup = result["steps_per_s"] / base["steps_per_s"]
        efficiency = speedup / (result["nodes"] / base["nodes"])
        print(f"{result['nodes']} node(s): {result['total']:.2f} s, "
              f"{result['steps_per_s']:.1f} steps/s, {speedup:.2f}x, efficiency {efficiency:.2f}")


if __name__ == "__main__":
    main()
