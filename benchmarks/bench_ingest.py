"""Ingest benchmark (issue 2): curate vs the scripts people write, side by side in one run.

    .venv/bin/python benchmarks/bench_ingest.py [--steps 1000] [--scales 1,4] [--repeat 1]

Every contender, curate and the naive baseline alike, runs as a whole fresh process, in
interleaved rounds, and its median is reported, so the ratios compare like with like.
Prints wall time, peak memory (max RSS of the process tree) and the ratios the issue names:
curate vs naive PIL→datasets (goal ≥30× faster), curate vs bytes→datasets (goal ≥0.8× its
speed), peak memory at 1× and 4× (goal <500 MB and flat), --workers 2 vs 1.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from corpus import build_corpus

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"


def run(name: str, corpus: Path, *extra: str) -> tuple[float, float]:
    """Run a contender in a fresh process; return (seconds, peak RSS in MB)."""
    out = WORK / "out" / f"{name}-{'-'.join(extra) or 'x'}"
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, str(HERE / "contenders.py"), name, str(corpus), str(out), *extra]
    # Peak RSS of one child: measure with a wrapper so earlier children do not count.
    wrapper = [sys.executable, "-c", (
        "import resource,subprocess,sys,time;t=time.perf_counter();"
        "subprocess.run(sys.argv[1:],check=True);"
        "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    ), *command]
    result = subprocess.run(wrapper, check=True, capture_output=True, text=True)
    seconds, peak_kb = result.stdout.split()
    shutil.rmtree(out, ignore_errors=True)
    return float(seconds), int(peak_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--scales", default="1,4")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds; each runs every contender once (interleaved); the "
                             "median of the rounds is reported for each")
    parser.add_argument("--skip-naive-at-scale", action="store_true",
                        help="run the slow naive script only at scale 1")
    args = parser.parse_args()
    print(f"{'scale':<6}{'contender':<20}{'seconds':>10}{'peak MB':>10}")
    results: dict[tuple[int, str], tuple[float, float]] = {}
    for scale in [int(s) for s in args.scales.split(",")]:
        corpus = build_corpus(WORK / f"corpus_x{scale}", args.steps * scale)
        contenders = [("curate", ("1",)), ("curate", ("2",)), ("bytes", ()), ("naive", ())]
        if scale > 1 and args.skip_naive_at_scale:
            contenders.remove(("naive", ()))
        # Every contender is timed the same way: a whole fresh process (imports included),
        # the rounds interleaved so a slow minute of the machine hits all of them, and the
        # median of the rounds reported.
        runs: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.repeat):
            for name, extra in contenders:
                label = name + (f" workers={extra[0]}" if extra else "")
                runs.setdefault(label, []).append(run(name, corpus, *extra))
        for label, measured in runs.items():
            seconds = sorted(s for s, _ in measured)[len(measured) // 2]
            peak = max(p for _, p in measured)
            results[(scale, label)] = (seconds, peak)
            print(f"{scale:<6}{label:<20}{seconds:>10.2f}{peak:>10.0f}", flush=True)
    print()
    for scale in sorted({s for s, _ in results}):
        one = results[(scale, "curate workers=1")][0]
        two = results[(scale, "curate workers=2")][0]
        careful = results[(scale, "bytes")][0]
        line = (f"x{scale}: curate is {careful / one:.2f}x the speed of bytes→datasets "
                f"(goal >= 0.8); workers 2 vs 1: {one / two:.2f}x")
        if (scale, "naive") in results:
            line += f"; {results[(scale, 'naive')][0] / one:.1f}x faster than naive (goal >= 30)"
        print(line)
    peaks = [results[(s, "curate workers=1")][1] for s in sorted({s for s, _ in results})]
    print("curate peak MB by scale (workers=1):", ", ".join(f"{p:.0f}" for p in peaks),
          "(goal < 500 and flat)")


if __name__ == "__main__":
    main()
