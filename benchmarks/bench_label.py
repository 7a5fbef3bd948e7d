"""Label benchmark (issue 4): `curate label` vs one PIL decode per unique frame, side by side.

    .venv/bin/python benchmarks/bench_label.py [--steps 1000]

Prints: the PIL baseline (decode every unique frame once, from bytes in memory), label with
--workers 1 and 2 (each on a fresh copy of the same store), the ratios (goals: label ≤ 1.3×
the baseline; workers 2 ≥ 1.6× faster than 1).
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

from corpus import build_corpus

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"


def pil_baseline(store: Path) -> float:
    from PIL import Image

    from curate.store.core import open_store

    frames = open_store(store).read("frames", columns=["bytes"]).column("bytes").to_pylist()
    started = time.perf_counter()
    for data in frames:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    return time.perf_counter() - started


def timed_label(store: Path, workers: int) -> float:
    copy = WORK / f"label_store_w{workers}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("frame_states", "labels",
                                                               "segments"))
    code = ("import sys,time;from curate.pipeline.label import label;t=time.perf_counter();"
            f"label(sys.argv[1], workers={workers});print(time.perf_counter()-t)")
    result = subprocess.run([sys.executable, "-c", code, str(copy)], check=True,
                            capture_output=True, text=True)
    shutil.rmtree(copy, ignore_errors=True)
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    corpus = build_corpus(WORK / f"corpus_x{args.steps // 1000 or 1}", args.steps)
    store = WORK / "label_source_store"
    if not (store / "manifest.json").exists():
        from curate.pipeline.ingest import ingest

        ingest([corpus], store)
    runs: dict[str, list[float]] = {"pil": [], "label w1": [], "label w2": []}
    for _ in range(args.repeat):  # interleaved, so drift on a noisy machine hits all alike
        runs["pil"].append(pil_baseline(store))
        runs["label w1"].append(timed_label(store, 1))
        runs["label w2"].append(timed_label(store, 2))
    median = {name: sorted(values)[len(values) // 2] for name, values in runs.items()}
    for name, seconds in median.items():
        print(f"{name:<10}{seconds:>8.2f} s")
    print(f"label (1 worker) / PIL decode once: {median['label w1'] / median['pil']:.2f}x "
          "(goal <= 1.3)")
    print(f"workers 2 vs 1: {median['label w1'] / median['label w2']:.2f}x faster (goal >= 1.6)")


if __name__ == "__main__":
    main()
