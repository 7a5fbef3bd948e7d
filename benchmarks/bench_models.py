"""Model client benchmark (issue 16): concurrency and the warm cache, side by side.

    .venv/bin/python benchmarks/bench_models.py [--requests 64] [--warm-requests 512]

Against the test chat-completions server (tests/modelserver) answering after ``--latency``
seconds, the grounding executor (UI-TARS 1.5 family) grounds ``--requests`` distinct steps
on the real OSWorld screenshots of ../shared/realdata:
1. cold, ``concurrency=1`` and cold, ``concurrency=8`` (each with an empty cache): requests
   per second and their ratio (goal ≥ 6×);
2. warm: ``--warm-requests`` steps again with their cache filled (goal: 0 requests), against
   a scan of that cache (list, read and decode every entry it holds): the ratio (goal ≤ 1.2×).
3. the issue's own warm goal: a re-run of ``curate execute --executor grounding`` (the
   in-process API, ``curate.pipeline.execute.execute``) on a store whose executions table is
   current, ``--store-copies`` copies of the real DroidBot sample (17 steps each, 544 steps at
   the default), against a scan of that store's executions table: pyarrow reading every
   batch's file whole, and DuckDB ``read_parquet`` of them grouping the columns the summary
   counts (executor, episode, action type, outcome: rows and reward sum), the summary computed
   from the table. 0 requests asserted by the server's counter. Wall and CPU time (the
   machine may be shared).
Warm timings are the median of ``--repeat`` interleaved runs. The server runs in its own
process, as a real one does (part 3's in this one: a current re-run sends it nothing).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

import subprocess  # noqa: E402
import urllib.request  # noqa: E402

from PIL import Image  # noqa: E402

from curate.executors.base import ProposedStep, StepContext  # noqa: E402
from curate.executors.grounding import GroundingExecutor  # noqa: E402
from curate.models.cache import ModelCache  # noqa: E402
from curate.store.frames import content_id  # noqa: E402

WORK = HERE / "_work" / "models"
FAMILY = "ui-tars-1.5"


REAL = HERE.parent.parent / "shared" / "realdata" / "osworld_sec_eval_claude"


def screenshots(count: int) -> list[bytes]:
    """The real OSWorld screenshots (93-580 KB PNGs), reused round-robin: requests differ
    by their instruction."""
    paths = sorted(REAL.rglob("*.png"))
    if not paths:
        raise SystemExit(f"the real OSWorld screenshots are not in {REAL}")
    return [paths[i % len(paths)].read_bytes() for i in range(count)]


def items(count: int) -> list[tuple[StepContext, ProposedStep]]:
    """Steps as the store gives them: bytes, size and frame id (computed at ingest)."""
    out = []
    for i, shot in enumerate(screenshots(count)):
        with Image.open(io.BytesIO(shot)) as picture:
            width, height = picture.size
        out.append((StepContext("bench", i, "desktop", screenshot=shot, width=width,
                                height=height, frame_id=content_id(shot)),
                    ProposedStep("click", f"click target {i}")))
    return out


class Server:
    """The test server in its own process (as a real model server is): its JSON and image
    decoding does not compete with the client for one GIL."""

    def __init__(self, targets: dict[str, list[float]], latency: float) -> None:
        WORK.mkdir(parents=True, exist_ok=True)
        table = WORK / "targets.json"
        table.write_text(json.dumps(targets))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelserver", "--family", FAMILY, "--targets", str(table),
             "--latency", str(latency)], cwd=HERE.parent / "tests", stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    @property
    def count(self) -> int:
        with urllib.request.urlopen(self.url + "/stats") as response:
            return int(json.loads(response.read())["requests"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def run(server: Server, work: list[tuple[StepContext, ProposedStep]], store: Path,
        concurrency: int) -> tuple[float, int]:
    executor = GroundingExecutor(url=server.url, model="ui-tars-1.5-7b", family=FAMILY,
                                 store=store, concurrency=concurrency)
    sent = server.count
    started = time.perf_counter()
    results = executor.execute_many(work)
    elapsed = time.perf_counter() - started
    executor.close()
    assert all(r.outcome == "executed" for r in results), {r.reason for r in results}
    return elapsed, server.count - sent


def scan_cache(store: Path) -> float:
    cache = ModelCache.in_store(store)
    started = time.perf_counter()
    for path in sorted(cache.root.glob("??/*.json")):
        json.loads(path.read_bytes())
    return time.perf_counter() - started


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def store_rerun(copies: int, repeat: int) -> None:
    """Part 3: a current re-run of ``curate execute`` against a scan of its executions."""
    import duckdb
    import pyarrow.parquet as pq

    sys.path.insert(0, str(HERE.parent / "tests"))
    from modelserver import ModelServer
    from modelserver.a11y import a11y_responder

    from curate.pipeline.execute import execute
    from curate.pipeline.ingest import ingest
    from curate.store.core import open_store
    from curate.store.layout import table_dir

    sample = HERE.parent.parent / "shared" / "realdata" / "droidbot_utg"
    sources = WORK / "droidbot"
    for index in range(copies):
        shutil.copytree(sample, sources / f"copy{index:03d}")
    store = WORK / "store"
    ingest([sources], store)
    execute(store, executor="a11y")  # the elements the test server grounds with
    steps = open_store(store).read_steps().select(["frame_id", "elements"]).to_pylist()
    elements = {s["frame_id"]: s["elements"] for s in steps if s["frame_id"] and s["elements"]}
    files = sorted(str(p) for p in table_dir(store, "executions").glob("batch-*.parquet"))
    with ModelServer(a11y_responder(FAMILY, elements)) as server:
        options = {"url": server.url, "model": "frozen-grounder", "family": FAMILY}
        cold = execute(store, executor="grounding", options=options)
        sent = server.count
        reruns, arrow, duck = [], [], []
        for _ in range(repeat):
            wall, cpu = clock()
            again = execute(store, executor="grounding", options=options)
            reruns.append((time.perf_counter() - wall, time.process_time() - cpu))
            assert again.batches_run == 0 and again.steps == cold.steps
            wall, cpu = clock()
            table = pq.read_table(files)
            assert table.num_rows >= cold.steps
            arrow.append((time.perf_counter() - wall, time.process_time() - cpu))
            wall, cpu = clock()
            duckdb.sql(f"SELECT executor, episode_id, proposed_type, outcome, count(*), "
                       f"sum(reward) FROM read_parquet({files!r}) GROUP BY ALL").fetchall()
            duck.append((time.perf_counter() - wall, time.process_time() - cpu))
        assert server.count == sent, "a current re-run asked the model server"
    print(f"curate execute re-run, {cold.steps} steps ({copies} copies of droidbot_utg), "
          f"{len(files)} executions file(s), median of {repeat}: {server.count - sent} "
          "requests sent")
    for name, runs in (("re-run (API)", reruns), ("pyarrow scan", arrow),
                       ("DuckDB scan", duck)):
        print(f"{name:14} {statistics.median(r[0] for r in runs) * 1000:7.1f} ms wall "
              f"{statistics.median(r[1] for r in runs) * 1000:7.1f} ms CPU")
    for name, runs in (("pyarrow", arrow), ("DuckDB", duck)):
        wall = statistics.median(r[0] for r in reruns) / statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in reruns) / statistics.median(r[1] for r in runs)
        print(f"  re-run / {name} scan: {wall:.2f}x wall, {cpu:.2f}x CPU (goal <= 1.2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--warm-requests", type=int, default=512,
                        help="steps of the warm part (more than --requests: a warm run of "
                             "64 takes a few ms, too short to time on a shared machine)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--store-copies", type=int, default=32,
                        help="copies of the DroidBot sample in part 3's store (17 steps each)")
    parser.add_argument("--only-store", action="store_true", help="run part 3 alone")
    args = parser.parse_args()
    if args.only_store:
        shutil.rmtree(WORK, ignore_errors=True)
        store_rerun(args.store_copies, args.repeat)
        shutil.rmtree(WORK, ignore_errors=True)
        return
    shutil.rmtree(WORK, ignore_errors=True)
    count = max(args.requests, args.warm_requests)
    every = items(count)
    work = every[:args.requests]
    targets = {f"target {i}": [0.1 + i % 8 * 0.1, 0.2, 0.15 + i % 8 * 0.1, 0.25]
               for i in range(count)}
    server = Server(targets, args.latency)
    try:
        serial, sent1 = run(server, work, WORK / "c1", 1)
        parallel, sent8 = run(server, work, WORK / "c8", 8)
        run(server, every[:args.warm_requests], WORK / "warm", 8)  # fills the cache
        warm, scans, warm_sent = [], [], 0
        for _ in range(args.repeat):
            elapsed, sent = run(server, every[:args.warm_requests], WORK / "warm", 8)
            warm.append(elapsed)
            warm_sent += sent
            scans.append(scan_cache(WORK / "warm"))
    finally:
        server.close()
    n = args.requests
    print(f"requests {n}, server latency {args.latency * 1000:.0f} ms, family {FAMILY}")
    print(f"cold concurrency 1   {serial:7.3f} s  {n / serial:7.1f} req/s  ({sent1} sent)")
    print(f"cold concurrency 8   {parallel:7.3f} s  {n / parallel:7.1f} req/s  ({sent8} sent)")
    print(f"  throughput ratio 8 vs 1: {serial / parallel:.2f}x (goal >= 6x)")
    warm_s, scan_s = statistics.median(warm), statistics.median(scans)
    print(f"warm re-run of {args.warm_requests} steps, median of {args.repeat}")
    print(f"warm re-run          {warm_s * 1000:7.1f} ms  ({warm_sent} requests sent)")
    print(f"scan of the cache    {scan_s * 1000:7.1f} ms")
    print(f"  warm / scan: {warm_s / scan_s:.2f}x (goal <= 1.2x, 0 requests)")
    store_rerun(args.store_copies, args.repeat)
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
