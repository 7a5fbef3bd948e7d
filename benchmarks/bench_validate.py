"""The driver's share of an export on a cluster (issue 19): validation of the exported
folder, which runs in the driver after the export tasks and reads every exported row's
non-image columns. Measures its CPU time per row and per step at several corpus sizes, so
the capacity plan in docs/engines.md can scale it to AITW.

    .venv/bin/python benchmarks/bench_validate.py [--steps 1000 4000] [--repeat 3]

Each size: the benchmark corpus (benchmarks/corpus.py, one distinct screenshot per step)
built with `curate build` (default configs and flavours) once, then
``validate(dist, images=False)`` as the export runs it, best CPU time of ``--repeat``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow.parquet as pq
from corpus import build_corpus

from curate.export.validate import validate
from curate.pipeline.build import build

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "validate"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for steps in args.steps:
        recordings, dist = WORK / f"recordings-{steps}", WORK / f"dist-{steps}"
        if not recordings.exists():
            build_corpus(recordings, steps)
        if not dist.exists():
            build([recordings], dist)
        rows = sum(pq.ParquetFile(path).metadata.num_rows for path in dist.rglob("*.parquet"))
        best = float("inf")
        for _ in range(args.repeat):
            start = time.process_time()
            validate(dist, images=False)
            best = min(best, time.process_time() - start)
        print(f"{steps} steps, {rows} rows: validate {best:.3f} s CPU, "
              f"{best / rows * 1e3:.3f} ms a row, {best / steps * 1e3:.3f} ms a step")


if __name__ == "__main__":
    main()
