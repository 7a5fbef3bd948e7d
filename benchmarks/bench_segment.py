"""Segment benchmark (issue 4): `curate segment` vs one full scan of the steps table, at 1x
and 10x the corpus, side by side. Segmenting reads no image bytes, so the corpus is native
episodes without screenshots (the steps table is what matters).

    .venv/bin/python benchmarks/bench_segment.py [--steps 1000]

The scan baseline reads the steps table and turns every row into Python values (what any
per-row pass costs). Goal: segment ≤ 3× the scan at both sizes, growing linearly.

Issues 17 and 21 also name a DuckDB scan of the steps table, start-up included: each round
runs, as fresh processes, `curate segment --force` and a Python that imports DuckDB and
fetches every row of the steps files (``duckdb.sql(...).fetchall()``), interleaved; the
medians of wall and CPU time (user + system of the child) and their ratios are printed
last. Run it with bytecode cached (PYTHONDONTWRITEBYTECODE unset, one run before), as an
installed curate runs: otherwise every fresh process compiles curate's sources again.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
STEPS_PER_EPISODE = 20


def make_recordings(root: Path, steps: int) -> Path:
    if (root / ".complete").exists():
        return root
    rng = random.Random(0)
    for episode in range(steps // STEPS_PER_EPISODE):
        folder = root / f"ep{episode:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "episode.json").write_text(json.dumps(
            {"curate_native": 1, "instruction": f"task {episode}", "terminated": True}))
        lines = []
        for _ in range(STEPS_PER_EPISODE - 1):
            if rng.random() < 0.5:
                action = f"click(x={rng.random():.4f}, y={rng.random():.4f})"
            else:
                action = f'tool_call(name="search", args={{"q": "{rng.randrange(50)}"}})'
            lines.append({"action": action, "thought": "thinking " * 5})
        lines.append({"action": "done()"})
        (folder / "steps.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (root / ".complete").write_text("")
    return root


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def cached_store(recordings: Path, store: Path) -> None:
    """The store of earlier runs, ingested again when missing or when this curate refuses it
    (a store of an older schema version)."""
    from curate.errors import StoreError
    from curate.pipeline.ingest import ingest
    from curate.store.core import open_store

    if (store / "manifest.json").exists():
        try:
            open_store(store)
            return
        except StoreError:
            shutil.rmtree(store)
    ingest([recordings], store, workers=2)


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU time of ``work`` with the garbage collector run before and paused during
    it (as ``timeit`` does): a full collection lands in whichever contender happens to
    trigger it, and moved the scan between 0.03 and 0.09 s from one run to the next. On a
    shared machine the CPU time is the steadier of the two."""
    gc.collect()
    gc.disable()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        work()
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        gc.enable()


def scan(store: Path) -> tuple[float, float]:
    from curate.store.core import open_store, read_parquet

    def read_all() -> None:
        for path in open_store(store).files("steps"):
            read_parquet(path).to_pylist()

    return timed(read_all)


def segmented(store: Path, horizons: tuple[int | str, ...] = (3,)) -> tuple[float, float]:
    from curate.pipeline.segment import SegmentParams, segment

    shutil.rmtree(store / "segments", ignore_errors=True)
    (store / "segments").mkdir()
    return timed(lambda: segment(store, params=SegmentParams(horizons=horizons)))


DUCKDB_SCAN = ("import sys, duckdb; duckdb.sql(\"SELECT * FROM read_parquet('\" "
               "+ sys.argv[1] + \"/steps/*.parquet')\").fetchall()")


def process_time(command: list[str]) -> tuple[float, float]:
    """Wall and CPU time (user + system) of a fresh process, start-up included."""
    import resource

    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (time.perf_counter() - started,
            after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def with_startup(store: Path, horizons: tuple[int | str, ...], repeat: int
                 ) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median (wall, CPU) times of `curate segment --force` and of the DuckDB scan, as fresh
    processes in interleaved rounds."""
    curate = [sys.executable, "-c", "from curate.cli import main; main()", "segment",
              str(store), "--force", *[f"--horizon={h}" for h in horizons]]
    duck = [sys.executable, "-c", DUCKDB_SCAN, str(store)]
    segments, scans = [], []
    for _ in range(repeat):
        segments.append(process_time(curate))
        scans.append(process_time(duck))
    return ((median([t[0] for t in segments]), median([t[1] for t in segments])),
            (median([t[0] for t in scans]), median([t[1] for t in scans])))


def segments_size(store: Path) -> tuple[int, int]:
    """Rows and bytes of the segments table just written."""
    import pyarrow.parquet as pq

    files = sorted((store / "segments").glob("*.parquet"))
    return (sum(pq.read_metadata(f).num_rows for f in files),
            sum(f.stat().st_size for f in files))


def scorers(store: Path) -> tuple[int, float, float]:
    """Consistency of the windows that need scoring, in the largest batch: one
    score_trajectory call per window vs score_windows over all of them (same inputs)."""
    import numpy as np

    from curate.actions import Action
    from curate.pipeline.segment import SegmentParams, _prepare, _windows
    from curate.rewards import score_trajectory
    from curate.rewards.windows import score_windows
    from curate.store.core import open_store, read_parquet
    from curate.store.layout import batch_file

    opened = open_store(store)
    batch = max(opened.manifest.batches, key=lambda name: read_parquet(
        batch_file(store, "steps", name), columns=["step_index"]).num_rows)
    steps = _prepare(read_parquet(batch_file(store, "steps", batch)),
                     read_parquet(batch_file(store, "labels", batch)))
    first, horizon, real, _ = _windows(steps, SegmentParams())
    off_path = np.concatenate([[0], np.cumsum(~steps.on_path)])
    chosen = np.flatnonzero(off_path[first + real] - off_path[first] > 0)
    on_path = np.flatnonzero(steps.on_path)
    actions = [Action.from_row(row) for row in steps.take(
        "action", np.arange(len(steps))).to_pylist()] + [Action("done")]
    k = int(horizon[0])
    windows, futures, masks = [], [], []
    for t, n in zip(first[chosen].tolist(), real[chosen].tolist(), strict=True):
        future = [i for i in on_path[np.searchsorted(on_path, t):][:k].tolist()
                  if i < steps.end[t]]
        windows.append([*range(t, t + n)] + [len(actions) - 1] * (k - n))
        futures.append(future + [len(actions) - 1] * (k - len(future)))
        masks.append([True] * n + [False] * (k - n))

    def one_by_one() -> None:
        for window, future, mask in zip(windows, futures, masks, strict=True):
            score_trajectory([actions[i] for i in window], [actions[i] for i in future],
                             mask=mask)

    at_once, _ = timed(lambda: score_windows(actions, windows, futures, masks))
    return len(windows), timed(one_by_one)[0], at_once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--processes", type=int, default=5,
                        help="rounds of the start-up-included comparison (0: skip it)")
    parser.add_argument("--horizon", action="append", default=None,
                        help="K or 'end' (repeat; default 3): the horizons segment cuts")
    args = parser.parse_args()
    from curate.pipeline.segment import parse_horizon, sorted_horizons

    horizons = sorted_horizons(tuple(parse_horizon(h) for h in (args.horizon or ["3"])))
    from curate.pipeline.label import label

    for scale in (1, 10):
        recordings = make_recordings(WORK / f"segment_rec_x{scale}", args.steps * scale)
        store = WORK / f"segment_store_x{scale}"
        cached_store(recordings, store)
        label(store)
        scans, segments = [], []
        for _ in range(args.repeat):
            scans.append(scan(store))
            segments.append(segmented(store, horizons))
        rows, size = segments_size(store)
        for kind, which in (("wall", 0), ("CPU", 1)):
            s = median([times[which] for times in scans])
            g = median([times[which] for times in segments])
            print(f"x{scale} ({args.steps * scale} steps, horizons {list(horizons)}), {kind}: "
                  f"scan {s * 1000:.1f} ms, segment {g * 1000:.1f} ms -> {g / s:.2f}x "
                  f"(goal <= 3); {rows} segments, {size / 1e6:.2f} MB")
    count, one_by_one, at_once = scorers(WORK / "segment_store_x10")
    print(f"consistency of {count} off-path windows: score_trajectory per window "
          f"{one_by_one * 1000:.1f} ms, score_windows {at_once * 1000:.1f} ms -> "
          f"{one_by_one / at_once:.1f}x faster")
    for scale in (1, 10) if args.processes else ():
        segment_s, duck_s = with_startup(WORK / f"segment_store_x{scale}", horizons,
                                         args.processes)
        for kind, which in (("wall", 0), ("CPU", 1)):
            print(f"x{scale} start-up included, median of {args.processes}, {kind}: curate "
                  f"segment {segment_s[which] * 1000:.0f} ms, DuckDB scan "
                  f"{duck_s[which] * 1000:.0f} ms -> {segment_s[which] / duck_s[which]:.2f}x "
                  "(goal <= 3)")


if __name__ == "__main__":
    main()
