"""Incremental build and store lock (issue 14, part 7), measured side by side in one run.

    .venv/bin/python benchmarks/bench_build.py [--steps 400] [--repeat 3]

1. A first `curate build` of the benchmark corpus against an unchanged second build, both
   as whole `curate` processes, in interleaved rounds, medians (goal: second <= 10% of the
   first).
2. The store lock against one ingest: the cost of taking and releasing it (a single writer
   takes it once per command) as a fraction of a whole ingest of the same corpus, in process
   (goal: nothing measurable).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from corpus import build_corpus

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
REPO = HERE.parent
# As a user runs curate: with its bytecode cached (an environment that turns the cache off
# would make every whole-process figure mostly compile time).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def curate_build(corpus: Path, out: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the process and its workers) of one whole build.

    CPU time is printed beside wall time because a machine shared with other work stretches
    wall time unevenly; CPU time is what the build itself spends."""
    started, cpu = time.perf_counter(), children_cpu()
    subprocess.run([sys.executable, "-m", "curate.cli", "build", str(corpus), "-o", str(out),
                    "--recipe", "quick"], check=True, capture_output=True, cwd=REPO, env=ENV)
    return time.perf_counter() - started, children_cpu() - cpu


def startup() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curate.cli", "--version"], check=True,
                   capture_output=True, cwd=REPO, env=ENV)
    return time.perf_counter() - started


def lock_cost(store: Path, cycles: int = 2000) -> float:
    """Seconds one single writer spends taking and releasing the lock (no contention)."""
    from curate.store.core import store_lock

    started = time.perf_counter()
    for _ in range(cycles):
        with store_lock(store):
            pass
    return (time.perf_counter() - started) / cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    corpus = build_corpus(WORK / f"corpus_build_{args.steps}", args.steps)
    startup()  # untimed: writes the bytecode cache
    first, second = [], []
    for round_ in range(args.repeat):
        out = WORK / f"build-{round_}"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(out.with_name(f"{out.name}.store"), ignore_errors=True)
        first.append(curate_build(corpus, out))
        second.append(curate_build(corpus, out))
    for what, index in (("wall", 0), ("CPU", 1)):
        one = statistics.median(f[index] for f in first)
        two = statistics.median(s[index] for s in second)
        print(f"build, {args.steps} steps, whole processes, {what} time: first {one:.2f} s, "
              f"unchanged second {two:.2f} s ({two / one:.1%} of the first; goal <= 10%)")
    floor = statistics.median(startup() for _ in range(args.repeat))
    print(f"  of which starting Python and importing curate (`curate --version`): {floor:.2f} s")

    from curate.pipeline.build import build

    out = WORK / "build-inproc"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.with_name(f"{out.name}.store"), ignore_errors=True)
    started = time.perf_counter()
    build([corpus], out, recipe="quick")
    one = time.perf_counter() - started
    started = time.perf_counter()
    build([corpus], out, recipe="quick")
    two = time.perf_counter() - started
    print(f"build, in one process (imports paid before): first {one:.2f} s, unchanged second "
          f"{two:.2f} s ({two / one:.1%} of the first)")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.with_name(f"{out.name}.store"), ignore_errors=True)

    from curate.pipeline.ingest import ingest

    store = WORK / "lock-store"
    ingests = []
    for _ in range(args.repeat):
        shutil.rmtree(store, ignore_errors=True)
        started = time.perf_counter()
        ingest([corpus], store)
        ingests.append(time.perf_counter() - started)
    per_lock = lock_cost(store)
    whole = statistics.median(ingests)
    print(f"lock: {per_lock * 1e6:.0f} µs to take and release, once per command; a whole "
          f"ingest of {args.steps} steps takes {whole:.2f} s: {per_lock / whole:.4%} of it")
    for round_ in range(args.repeat):
        shutil.rmtree(WORK / f"build-{round_}", ignore_errors=True)
        shutil.rmtree(WORK / f"build-{round_}.store", ignore_errors=True)
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
