"""Memory soak (issue 2): is ingest's memory flat, or does it grow with what it has read?

    .venv/bin/python benchmarks/bench_memory.py [--steps 4000] [--rounds 3]

Ingests the same OSWorld-style corpus ``--rounds`` times in one process (into a fresh store
each time, so every round does the full work) and prints the process's anonymous memory
after every 1,000 steps. Peak RSS at 1x and 4x (bench_ingest.py) differ by the allocator's
warm-up; a leak would show here as memory that keeps rising from round to round.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from corpus import build_corpus

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"


def anonymous_mb() -> int:
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no Anonymous line in /proc/self/smaps_rollup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from curate.pipeline.extract import UnitTables
    from curate.pipeline.ingest import ingest

    corpus = build_corpus(WORK / f"corpus_x{args.steps // 1000}", args.steps)
    steps = [0]
    samples: list[int] = []

    def on_unit(result: UnitTables) -> None:
        before = steps[0]
        steps[0] += result.steps.num_rows
        if steps[0] // 1000 > before // 1000:
            samples.append(anonymous_mb())

    for round_index in range(args.rounds):
        store = WORK / "soak_store"
        shutil.rmtree(store, ignore_errors=True)
        ingest([corpus], store, on_unit=on_unit)
        shutil.rmtree(store, ignore_errors=True)
        print(f"round {round_index + 1}: anonymous MB every 1,000 steps: "
              + ", ".join(str(s) for s in samples[-(args.steps // 1000):]), flush=True)
    first, last = samples[: args.steps // 1000], samples[-(args.steps // 1000):]
    print(f"max of round 1: {max(first)} MB; max of round {args.rounds}: {max(last)} MB "
          f"(flat when they are about equal)")


if __name__ == "__main__":
    main()
