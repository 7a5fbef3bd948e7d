"""Label benchmark (issues 4, 21): `curate label` vs one PIL decode per unique frame.

    .venv/bin/python benchmarks/bench_label.py [--steps 1000] [--repeat 3]

The corpus's screenshots are distinct in bytes and in pixels: each step's has a window of
its own drawn in (benchmarks/corpus.py), so every frame is a distinct state and the state
search does its real work (the bench prints how many distinct states there are).
Prints, interleaved and the median of --repeat: the PIL baseline (decode every unique frame
once, from bytes in memory, in this process), label with --workers 1 and 2 (each a fresh
process on a fresh copy of the same store; wall and CPU time of the process and its
workers), and the ratios (issue 21's goals: label ≤ 1.1× the baseline with one worker,
≤ 0.65× with two).
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


def distinct_states(store: Path) -> tuple[int, int]:
    """(distinct states, frames) of the store's frames, once labelled."""
    from curate.pipeline.state_index import EarlierStates
    from curate.pipeline.states import StateGrid
    from curate.store.core import open_store

    rows = open_store(store).read("frame_states").to_pylist()
    kept = EarlierStates()
    for row in rows:
        grid = StateGrid(row["grid"], row["width"], row["height"])
        if kept.first_match(grid) is None:
            kept.add(len(kept), grid)
    return len(kept), len(rows)


def pil_baseline(store: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of decoding every frame once with PIL, bytes already in memory."""
    from PIL import Image

    from curate.store.core import open_store

    frames = open_store(store).read("frames", columns=["bytes"]).column("bytes").to_pylist()
    started, cpu = time.perf_counter(), time.process_time()
    for data in frames:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    return time.perf_counter() - started, time.process_time() - cpu


def timed_label(store: Path, workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds of label in a fresh process, its workers' CPU included."""
    copy = WORK / f"label_store_w{workers}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("frame_states", "labels",
                                                               "segments"))
    code = ("import resource,sys,time;from curate.pipeline.label import label;"
            "u=lambda:sum(getattr(resource.getrusage(w),f) for w in (0,-1) "
            "for f in ('ru_utime','ru_stime'));c=u();t=time.perf_counter();"
            f"label(sys.argv[1], workers={workers});print(time.perf_counter()-t, u()-c)")
    result = subprocess.run([sys.executable, "-c", code, str(copy)], check=True,
                            capture_output=True, text=True)
    shutil.rmtree(copy, ignore_errors=True)
    wall, cpu = result.stdout.split()[-2:]
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    corpus = build_corpus(WORK / f"corpus_px{args.steps}", args.steps, distinct_pixels=True)
    store = WORK / f"label_source_store_px{args.steps}"
    if not (store / "manifest.json").exists():
        from curate.pipeline.ingest import ingest

        ingest([corpus], store)
    runs: dict[str, list[tuple[float, float]]] = {"pil": [], "label w1": [], "label w2": []}
    for _ in range(args.repeat):  # interleaved, so drift on a noisy machine hits all alike
        runs["pil"].append(pil_baseline(store))
        runs["label w1"].append(timed_label(store, 1))
        runs["label w2"].append(timed_label(store, 2))
    median = {name: (sorted(v[0] for v in values)[len(values) // 2],
                     sorted(v[1] for v in values)[len(values) // 2])
              for name, values in runs.items()}
    for name, (seconds, cpu) in median.items():
        print(f"{name:<10}{seconds:>8.2f} s wall {cpu:>8.2f} s CPU")
    pil = median["pil"][0]
    print(f"label (1 worker) / PIL decode once: {median['label w1'][0] / pil:.2f}x "
          "(goal <= 1.1)")
    print(f"label (2 workers) / PIL decode once: {median['label w2'][0] / pil:.2f}x "
          "(goal <= 0.65)")
    label(store)  # untimed: the states, to show the corpus's screens are all distinct
    states, frames = distinct_states(store)
    print(f"corpus: {frames} frames, {states} distinct states")


def label(store: Path) -> None:
    from curate.pipeline.label import label as run_label

    run_label(store)


if __name__ == "__main__":
    main()
