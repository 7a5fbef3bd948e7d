"""Label benchmark (issues 4, 21): `curate label` vs one PIL decode per unique frame.

    .venv/bin/python benchmarks/bench_label.py [--steps 1000] [--repeat 3] [--jpeg]

The corpus's screenshots are distinct in bytes and in pixels: each step's has a window of
its own drawn in (benchmarks/corpus.py), so every frame is a distinct state and the state
search does its real work (the bench prints how many distinct states there are).
Prints, interleaved and the median of --repeat: the PIL baseline (decode every unique frame
once, from bytes in memory, in this process), label with --workers 1 and 2 (each a fresh
process on a fresh copy of the same store; wall and CPU time of the process and its
workers), and the ratios in wall and in CPU time (issue 21's goals: label ≤ 1.1× the
baseline with one worker, ≤ 0.65× with two). "label w1 boxes" labels the same frames as
curate-native episodes whose every click has a recorded target box, so both frames of
every step are cropped there (LABEL_VERSION 7): its ratio to "label w1" is what the crops
cost. With --jpeg the same is done on the frames saved as JPEG (quality 90), where a frame
without boxes decodes at draft scale and one with boxes at full resolution.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from corpus import build_boxed_corpus, build_corpus

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


def cpu_split(store: Path, repeat: int) -> dict[str, float]:
    """Median CPU seconds of label's pass 1 piece by piece on the store's frames, in this
    process: reading the frames' row groups (as label does, one at a time), PIL's decode
    alone (the baseline), decode + convert to L, and frame_state_of (decode, L, the 32x32
    BOX resize); then a fresh interpreter importing label, and its first pa.array of Python
    values (pyarrow imports pandas there)."""
    import pyarrow.parquet as pq
    from PIL import Image

    from curate.pipeline.states import GRID, frame_state_of
    from curate.store.core import open_store

    paths = open_store(store).files("frames")

    def read() -> None:
        for path in paths:
            frames = pq.ParquetFile(path)
            for group in range(frames.num_row_groups):
                frames.read_row_group(group, columns=["frame_id", "bytes"])

    images = open_store(store).read("frames", columns=["bytes"]).column("bytes").to_pylist()

    def each(work: Callable[[bytes], object]) -> Callable[[], None]:
        def run() -> None:
            for data in images:
                work(data)
        return run

    def decode(data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.load()

    def grey(data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.convert("L")

    def state(data: bytes) -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.convert("L").resize((GRID, GRID), Image.Resampling.BOX).tobytes()

    pieces = {"read row groups": read, "PIL decode": each(decode),
              "decode + L": each(grey), "decode + L + grid": each(state),
              "frame_state_of": each(frame_state_of)}
    times: dict[str, list[float]] = {name: [] for name in pieces}
    for _ in range(repeat):
        for name, work in pieces.items():
            cpu = time.process_time()
            work()
            times[name].append(time.process_time() - cpu)
    code = ("import resource,time;u=lambda:(lambda r:r.ru_utime+r.ru_stime)("
            "resource.getrusage(0));import curate.pipeline.label;a=u();"
            "import pyarrow as pa;pa.array([1]);print(a,u()-a)")
    starts = [subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True).stdout.split() for _ in range(repeat)]
    times["start-up: interpreter + import label"] = [float(s[0]) for s in starts]
    times["first pa.array (imports pandas)"] = [float(s[1]) for s in starts]
    return {name: sorted(v)[len(v) // 2] for name, v in times.items()}


def command_cpu(store: Path, refuse_pandas: bool) -> float:
    """CPU seconds of `curate label STORE --workers 1` in a fresh process (a fresh copy of
    the store), with its refusal of pandas (curate.without_pandas) or without it."""
    copy = WORK / "label_store_command"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("frame_states", "labels",
                                                               "segments"))
    allow = ("" if refuse_pandas else "import contextlib,curate.without_pandas as w;"
             "w.pandas_refused=contextlib.nullcontext;")
    code = ("import resource,sys;" + allow + "from curate.cli import main;"
            "sys.argv=['curate','label',sys.argv[1],'--workers','1','--no-progress']\n"
            "try:\n main()\nexcept SystemExit:\n pass\n"
            "r=resource.getrusage(0);print(r.ru_utime+r.ru_stime)")
    result = subprocess.run([sys.executable, "-c", code, str(copy)], check=True,
                            capture_output=True, text=True)
    shutil.rmtree(copy, ignore_errors=True)
    return float(result.stdout.split()[-1])


def frame_ids(store: Path) -> set[str]:
    from curate.store.core import open_store

    return set(open_store(store).read("frames", columns=["frame_id"])
               .column("frame_id").to_pylist())


def ingested(corpus: Path, store: Path) -> Path:
    if not (store / "manifest.json").exists():
        from curate.pipeline.ingest import ingest

        ingest([corpus], store)
    return store


def timed_label(store: Path, workers: int, source: Path | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of label in a fresh process, its workers' CPU included; with
    ``source``, the curate of that source tree (a checkout of an earlier commit)."""
    copy = WORK / f"label_store_{store.name}_w{workers}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store, copy, ignore=shutil.ignore_patterns("frame_states", "labels",
                                                               "segments"))
    code = ("import resource,sys,time;from curate.pipeline.label import label;"
            "u=lambda:sum(getattr(resource.getrusage(w),f) for w in (0,-1) "
            "for f in ('ru_utime','ru_stime'));c=u();t=time.perf_counter();"
            f"label(sys.argv[1], workers={workers});print(time.perf_counter()-t, u()-c)")
    env = {**os.environ, "PYTHONPATH": str(source or HERE.parent)}
    result = subprocess.run([sys.executable, "-c", code, str(copy)], check=True,
                            capture_output=True, text=True, env=env)
    shutil.rmtree(copy, ignore_errors=True)
    wall, cpu = result.stdout.split()[-2:]
    return float(wall), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jpeg", action="store_true",
                        help="also the same frames as JPEG, with and without target boxes")
    parser.add_argument("--before", type=Path,
                        help="a source tree of an earlier commit: its label w1 and w2 beside")
    args = parser.parse_args()
    n = args.steps
    store = ingested(build_corpus(WORK / f"corpus_px{n}", n, distinct_pixels=True),
                     WORK / f"label_source_store_px{n}")
    boxed = ingested(build_boxed_corpus(WORK / f"corpus_boxes{n}", n),
                     WORK / f"label_source_store_boxes{n}")
    print(f"boxed corpus: the same frames as the main one: {frame_ids(boxed) == frame_ids(store)}")
    contenders = {"pil": lambda: pil_baseline(store), "label w1": lambda: timed_label(store, 1),
                  "label w2": lambda: timed_label(store, 2),
                  "label w1 boxes": lambda: timed_label(boxed, 1)}
    if args.before:
        before = args.before.resolve()
        contenders.update({"before w1": lambda: timed_label(store, 1, before),
                           "before w2": lambda: timed_label(store, 2, before)})
    if args.jpeg:
        jpeg = ingested(build_boxed_corpus(WORK / f"corpus_boxes_jpeg{n}", n,
                                           image_format="JPEG"),
                        WORK / f"label_source_store_boxes_jpeg{n}")
        plain = WORK / f"label_source_store_jpeg{n}"
        if not plain.exists():  # the same JPEG frames, the clicks without their boxes
            shutil.copytree(jpeg, plain)
            _drop_targets(plain)
        contenders.update({"pil jpeg": lambda: pil_baseline(jpeg),
                           "label w1 jpeg": lambda: timed_label(plain, 1),
                           "label w1 jpeg boxes": lambda: timed_label(jpeg, 1)})
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(args.repeat):  # interleaved, so drift on a noisy machine hits all alike
        for name, run in contenders.items():
            runs[name].append(run())
    median = {name: (sorted(v[0] for v in values)[len(values) // 2],
                     sorted(v[1] for v in values)[len(values) // 2])
              for name, values in runs.items()}
    for name, (seconds, cpu) in median.items():
        print(f"{name:<20}{seconds:>8.2f} s wall {cpu:>8.2f} s CPU")
    (pil, pil_cpu) = median["pil"]
    for name, goal in (("label w1", "1.1"), ("label w2", "0.65"), ("label w1 boxes", "")):
        print(f"{name} / PIL decode once: {median[name][0] / pil:.2f}x wall, "
              f"{median[name][1] / pil_cpu:.2f}x CPU" + (f" (goal <= {goal})" if goal else ""))
    if args.before:
        for workers in (1, 2):
            now, then = median[f"label w{workers}"], median[f"before w{workers}"]
            print(f"label w{workers} / before: {now[0] / then[0]:.2f}x wall, "
                  f"{now[1] / then[1]:.2f}x CPU; before / PIL decode once: "
                  f"{then[0] / pil:.2f}x wall, {then[1] / pil_cpu:.2f}x CPU")
    print(f"label w1 boxes / label w1: {median['label w1 boxes'][0] / median['label w1'][0]:.2f}x "
          f"wall, {median['label w1 boxes'][1] / median['label w1'][1]:.2f}x CPU (the crops)")
    if args.jpeg:
        (jpil, jpil_cpu) = median["pil jpeg"]
        for name in ("label w1 jpeg", "label w1 jpeg boxes"):
            print(f"{name} / PIL decode once (JPEG): {median[name][0] / jpil:.2f}x wall, "
                  f"{median[name][1] / jpil_cpu:.2f}x CPU")
    split = cpu_split(store, args.repeat)
    print(f"label's pass 1 piece by piece, CPU (median of {args.repeat}), against PIL decode:")
    for name, seconds in split.items():
        print(f"  {name:<40}{seconds:>8.2f} s {seconds / split['PIL decode']:>8.1%}")
    small = ingested(build_corpus(WORK / "corpus_px40", 40, distinct_pixels=True),
                     WORK / "label_source_store_px40")
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeat):
        for refused in (True, False):
            cpu[refused].append(command_cpu(small, refused))
    refused_cpu, allowed_cpu = (sorted(cpu[r])[len(cpu[r]) // 2] for r in (True, False))
    print(f"`curate label` of 40 frames, CPU: {refused_cpu:.2f} s with pandas refused, "
          f"{allowed_cpu:.2f} s with pandas imported (the fixed cost the refusal saves: "
          f"{allowed_cpu - refused_cpu:.2f} s, {(allowed_cpu - refused_cpu) / pil_cpu:.1%} "
          "of the PIL decode above)")
    label(store)  # untimed: the states, to show the corpus's screens are all distinct
    states, frames = distinct_states(store)
    print(f"corpus: {frames} frames, {states} distinct states")


def _drop_targets(store: Path) -> None:
    """Rewrite the store's steps without the clicks' target boxes (in place, a copy)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curate.store.core import open_store

    for path in open_store(store).files("steps"):
        table = pq.read_table(path)
        actions = [{**action, "target": None} for action in table.column("action").to_pylist()]
        column = table.schema.get_field_index("action")
        table = table.set_column(column, table.schema.field(column),
                                 pa.array(actions, type=table.schema.field(column).type))
        pq.write_table(table, path)


def label(store: Path) -> None:
    from curate.pipeline.label import label as run_label

    run_label(store)


if __name__ == "__main__":
    main()
