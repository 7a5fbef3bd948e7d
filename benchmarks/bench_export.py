"""Export benchmark (issue 5): `curate export` vs writing the same rows and image bytes with
pyarrow directly, side by side, at 1x and 4x the corpus; peak memory of each export.

    .venv/bin/python benchmarks/bench_export.py [--steps 1000] [--scales 1,4]
        [--horizon 10 --horizon end] [--config stage1] [--flavour easyr1] [--baseline REV]

With ``--horizon`` the store is segmented with those horizons (issue 17: the cost of K = 10
and ``end``), and ``--config`` / ``--flavour`` export only those (all of them by default).

The baseline takes the very tables the export produced (each read back into memory
beforehand, untimed) and times only `pyarrow.parquet.write_table` of each: the floor of any
exporter. It is timed twice: with the export's codec choices (zstd for every column, row
groups of 100 rows: the baseline the goal is measured against) and with pyarrow's defaults
(what a script would do). Goal: export ≤ 1.5× that, peak memory flat from
1x to 4x. Size: the export's Parquet bytes against pyarrow writing the same tables with zstd
for every column and its other defaults (issue 21: no larger).

With ``--baseline REV`` the export of the package as it was at git revision REV is timed
too, interleaved with the current one (before/after figures on the same loaded machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from statistics import median

import pyarrow.parquet as pq
from bench_startup import unpack
from corpus import build_corpus

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"


def prepared_store(scale: int, steps: int, horizons: list[str]) -> Path:
    from curate.pipeline.segment import SegmentParams, parse_horizon, segment

    store = WORK / f"export_store_x{scale}"
    if not (store / "segments").is_dir() or not any((store / "segments").iterdir()):
        from curate.pipeline.ingest import ingest
        from curate.pipeline.label import label

        corpus = build_corpus(WORK / f"corpus_x{scale}", steps * scale)
        ingest([corpus], store, workers=2)
        label(store, workers=2)
    # Re-segmenting with other horizons replaces the windows (and is a no-op when current).
    segment(store, params=SegmentParams(horizons=tuple(parse_horizon(h) for h in horizons))
            if horizons else None)
    return store


PEAK_RSS = (
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so a child started
    # by this (large) process would report the parent's peak as its own.
    "def peak_mb():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            return int(line.split()[1]) / 1024\n"
)


def timed_export(store: Path, out: Path, configs: list[str], flavours: list[str],
                 package: Path | None = None) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (every thread of the exporting process and
    of the children it waited for: the plots' process) of an export by the package in
    ``package`` (None: this checkout's). On a shared machine the CPU time is the steadier."""
    shutil.rmtree(out, ignore_errors=True)
    code = PEAK_RSS + (
        "import sys,time\nfrom curate.export import ExportParams, export\n"
        "configs, flavours = sys.argv[3].split(','), sys.argv[4].split(',')\n"
        "params = ExportParams(**{k: tuple(v) for k, v in "
        "(('configs', configs), ('flavours', flavours)) if v != ['']})\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        "export(sys.argv[1], sys.argv[2], params=params)\n"
        "import resource\nchild = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(time.perf_counter()-t, peak_mb(),\n"
        "      time.process_time()-c + child.ru_utime + child.ru_stime)\n")
    result = subprocess.run([sys.executable, "-c", code, str(store), str(out),
                             ",".join(configs), ",".join(flavours)],
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(package or HERE.parent)})
    if result.returncode:
        raise SystemExit(f"the export failed:\n{result.stderr}")
    seconds, peak_mb, cpu = result.stdout.split()[-3:]
    return float(seconds), float(peak_mb), float(cpu)


FLOOR = """
import shutil, sys, time
from pathlib import Path
import pyarrow.parquet as pq
dist, target, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
shutil.rmtree(target, ignore_errors=True)
target.mkdir(parents=True)
total, size, cpu = 0.0, 0, 0.0
for index, path in enumerate(sorted((dist / "data").rglob("*.parquet"))):
    table = pq.read_table(path)  # untimed: the baseline starts with the rows in memory
    started, cpu_started = time.perf_counter(), time.process_time()
    options = {"row_group_size": 100}
    if mode == "tuned":  # the export's own codec: zstd for every column, images included
        options["compression"] = "zstd"
    elif mode == "zstd":  # the size floor: every column zstd, pyarrow's other defaults
        options = {"compression": "zstd"}
    pq.write_table(table, target / f"{index}.parquet", **options)
    total += time.perf_counter() - started
    cpu += time.process_time() - cpu_started
    size += (target / f"{index}.parquet").stat().st_size
    del table
shutil.rmtree(target, ignore_errors=True)
print(total, size, cpu)
"""


def pyarrow_floor(dist: Path, mode: str) -> tuple[float, int, float]:
    """Time pyarrow writing each exported file's table, one file in memory at a time, in a
    fresh process (holding every table at once would slow the baseline with memory
    pressure and leave this process large); seconds and bytes written. ``mode``:
    ``defaults`` (pyarrow's own settings), ``tuned`` (the export's codec choices: the
    baseline of the goal) or ``zstd`` (every column zstd, one row group per file unless
    it is huge: the size floor); seconds, bytes and CPU seconds."""
    result = subprocess.run([sys.executable, "-c", FLOOR, str(dist), str(WORK / "floor"), mode],
                            check=True, capture_output=True, text=True)
    seconds, size, cpu = result.stdout.split()[-3:]
    return float(seconds), int(size), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--scales", default="1,4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--horizon", action="append", default=[],
                        help="segment with these horizons (K or end), repeatable")
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--flavour", action="append", default=[])
    parser.add_argument("--baseline", help="also time the export of git revision REV")
    args = parser.parse_args()
    baseline = unpack(args.baseline) if args.baseline else None
    for scale in [int(s) for s in args.scales.split(",")]:
        store = prepared_store(scale, args.steps, args.horizon)
        out = WORK / f"export_dist_x{scale}"
        exports, peaks, cpus = [], [], []
        before: list[tuple[float, float, float]] = []
        floors: dict[str, list[float]] = {"tuned": [], "defaults": [], "zstd": []}
        sizes: dict[str, int] = {}
        floor_cpus: list[float] = []
        for _ in range(args.repeat):  # interleaved: export, then the baselines
            seconds, peak, cpu = timed_export(store, out, args.config, args.flavour)
            exports.append(seconds)
            cpus.append(cpu)
            peaks.append(peak)
            for mode, times in floors.items():
                floor_seconds, sizes[mode], floor_cpu = pyarrow_floor(out, mode)
                times.append(floor_seconds)
                if mode == "tuned":
                    floor_cpus.append(floor_cpu)
            if baseline:
                before.append(timed_export(store, WORK / "export_dist_baseline", args.config,
                                           args.flavour, baseline))
        exported = median(exports)
        tuned, defaults = median(floors["tuned"]), median(floors["defaults"])
        size = sum(p.stat().st_size for p in out.rglob("*.parquet"))
        print(f"x{scale}: export {exported:.2f} s ({median(cpus):.2f} s CPU, the plots' "
              f"process included); pyarrow write of the same tables "
              f"{tuned:.2f} s with the export's codecs -> {exported / tuned:.2f}x "
              f"(goal <= 1.5; CPU {median(cpus) / median(floor_cpus):.2f}x), "
              f"{defaults:.2f} s with pyarrow's defaults -> "
              f"{exported / defaults:.2f}x; {size / 2**20:.1f} MB written, pyarrow zstd "
              f"{sizes['zstd'] / 2**20:.1f} MB -> {size / sizes['zstd']:.5f}x (goal <= 1; "
              f"{size - sizes['zstd']:+,} bytes); "
              f"peak RSS {max(peaks):.0f} MB", flush=True)
        if before:
            then = median(b[0] for b in before)
            print(f"  {args.baseline}: export {then:.2f} s ({median(b[2] for b in before):.2f} s "
                  f"CPU, peak RSS {max(b[1] for b in before):.0f} MB) -> now "
                  f"{then / exported:.2f}x as fast, {then / tuned:.2f}x the pyarrow write then",
                  flush=True)
        for folder in sorted(p for p in (out / "data").iterdir() if p.is_dir()):
            files = list(folder.glob("*.parquet"))
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            print(f"  {folder.name}: {rows} rows, "
                  f"{sum(f.stat().st_size for f in files) / 2**20:.1f} MB", flush=True)

if __name__ == "__main__":
    main()
