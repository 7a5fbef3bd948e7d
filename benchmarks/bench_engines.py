"""Engine benchmark (issue 8): 1 vs 2 workers on the local pool and on Ray, and the
per-episode costs the capacity plan in docs/engines.md is computed from.

    .venv/bin/python benchmarks/bench_engines.py [--steps 1000] [--repeat 3] [--no-ray]

Prints, medians of ``--repeat`` interleaved runs on the OSWorld-style corpus of corpus.py
(1024x768 PNG screenshots, every one distinct):
- label and ingest on each engine with 1 and 2 workers, and label's 2-vs-1 speed-ups
  (goal >= 1.6x);
- ingest and segment per step, label per unique frame, export per row, one worker;
- Ray's overhead per task (an empty task, round trip) for the plan's small-task figures.
Ray runs as a private 2-CPU instance in this process (started before timing, warmed up).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corpus import build_corpus

from curate.engines import Engine, LocalEngine, RayEngine
from curate.export import export
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import segment

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "engines"
OBJECT_STORE_BYTES = 256 << 20
AGENTNET = HERE.parent.parent / "shared" / "realdata" / "opencua_agentnet_raw"


def fresh_copy(store: Path, name: str) -> Path:
    """The ingested store without derived tables, so label decodes every frame again."""
    copy = WORK / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("frame_states", "labels",
                                                               "segments"))
    return copy


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def timed_label(store: Path, engine: Engine) -> tuple[float, int]:
    copy = fresh_copy(store, f"label_{engine.name}")
    seconds, summary = timed(lambda: label(copy, engine=engine))
    shutil.rmtree(copy, ignore_errors=True)
    return seconds, summary.frames_decoded


def timed_ingest(corpus: Path, engine: Engine) -> float:
    store = WORK / f"ingest_{engine.name}"
    shutil.rmtree(store, ignore_errors=True)
    seconds, _ = timed(lambda: ingest([corpus], store, engine=engine))
    shutil.rmtree(store, ignore_errors=True)
    return seconds


def ray_task_overhead(engine: RayEngine, tasks: int = 200) -> float:
    seconds, _ = timed(lambda: list(engine.map_ordered(abs, range(tasks))))
    return seconds / tasks


def agentnet_cost(repeat: int) -> tuple[float, int, int] | None:
    """Seconds to ingest the real AgentNet sample (video decoded once), its trajectories and
    steps; None when the sample is not beside the repository."""
    if not AGENTNET.is_dir():
        return None
    seconds: list[float] = []
    store = WORK / "agentnet"
    for _ in range(repeat + 1):  # the first run warms the decoder's imports up
        shutil.rmtree(store, ignore_errors=True)
        elapsed, summary = timed(lambda: ingest([AGENTNET], store))
        seconds.append(elapsed)
    return median(seconds[1:]), summary.episodes, summary.steps


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true", help="Local engine only.")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(HERE / "_work" / f"corpus_x{args.steps // 1000 or 1}", args.steps)

    engines: dict[str, Engine] = {"local w1": LocalEngine(1), "local w2": LocalEngine(2)}
    if not args.no_ray:
        # A private instance: its own temp dir and token, so nothing lands in /tmp/ray or
        # ~/.ray (a new ray.init would otherwise write a token file there).
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
        import ray

        ray_temp = tempfile.mkdtemp(prefix="rb-", dir="/tmp")  # socket paths must be short
        ray.init(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                 logging_level="ERROR", log_to_driver=False, _temp_dir=ray_temp)
        engines.update({"ray w1": RayEngine(workers=1), "ray w2": RayEngine(workers=2)})

    store = WORK / "store"
    shutil.rmtree(store, ignore_errors=True)
    ingest_seconds, ingested = timed(lambda: ingest([corpus], store))
    if not args.no_ray:
        timed_label(store, engines["ray w2"])  # warm-up: start workers, import curate
    runs: dict[str, list[float]] = {name: [] for name in engines}
    ingest_runs: dict[str, list[float]] = {name: [] for name in engines}
    frames = 0
    for _ in range(args.repeat):  # interleaved: drift on a noisy machine hits all alike
        for name, engine in engines.items():
            seconds, frames = timed_label(store, engine)
            runs[name].append(seconds)
            ingest_runs[name].append(timed_ingest(corpus, engine))
    label(store)
    segment_seconds, _ = timed(lambda: segment(store))
    out = WORK / "dist"
    shutil.rmtree(out, ignore_errors=True)
    export_seconds, exported = timed(lambda: export(store, out))
    rows = sum(n for splits in exported.rows.values() for n in splits.values())

    print(f"corpus: {ingested.episodes} episodes, {ingested.steps} steps, {frames} unique "
          f"frames; export {rows} rows")
    for name, values in runs.items():
        print(f"label {name:<9}{median(values):>8.2f} s")
    for name, values in ingest_runs.items():
        print(f"ingest {name:<8}{median(values):>8.2f} s")
    for kind in ("local", "ray"):
        if f"{kind} w2" in runs:
            ratio = median(runs[f"{kind} w1"]) / median(runs[f"{kind} w2"])
            print(f"label {kind} workers 2 vs 1: {ratio:.2f}x faster (goal >= 1.6)")
    print("per-unit costs (one worker):")
    warm = median(ingest_runs["local w1"])
    print(f"  ingest  {1000 * warm / ingested.steps:7.2f} ms per step "
          f"(first, cold-cache run: {1000 * ingest_seconds / ingested.steps:.2f} ms)")
    print(f"  label   {1000 * median(runs['local w1']) / frames:7.2f} ms per unique frame")
    print(f"  segment {1000 * segment_seconds / ingested.steps:7.2f} ms per step")
    print(f"  export  {1000 * export_seconds / rows:7.2f} ms per row")
    agentnet = agentnet_cost(args.repeat)
    if agentnet is not None:
        seconds, trajectories, steps = agentnet
        print(f"  agentnet {seconds / trajectories:6.2f} s per trajectory with video "
              f"({steps} steps; {1000 * seconds / steps:.0f} ms per step)")
    if not args.no_ray:
        overhead = ray_task_overhead(engines["ray w2"])  # type: ignore[arg-type]
        print(f"  ray     {1000 * overhead:7.2f} ms per empty task (round trip, 2 in flight)")
    for engine in engines.values():
        engine.close()
    if not args.no_ray:
        ray.shutdown()
        shutil.rmtree(ray_temp, ignore_errors=True)
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
