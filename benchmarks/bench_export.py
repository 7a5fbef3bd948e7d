"""Export benchmark (issue 5): `curate export` vs writing the same rows and image bytes with
pyarrow directly, side by side, at 1x and 4x the corpus; peak memory of each export.

    .venv/bin/python benchmarks/bench_export.py [--steps 1000] [--scales 1,4]
        [--horizon 10 --horizon end] [--config stage1] [--flavour easyr1]

With ``--horizon`` the store is segmented with those horizons (issue 17: the cost of K = 10
and ``end``), and ``--config`` / ``--flavour`` export only those (all of them by default).

The baseline takes the very tables the export produced (each read back into memory
beforehand, untimed) and times only `pyarrow.parquet.write_table` of each: the floor of any
exporter. It is timed twice: with the export's codec choices (images stored as they are, no
dictionary for them: the strongest baseline, the one the goal is measured against) and with
pyarrow's defaults (what a script would do). Goal: export ≤ 1.5× that, peak memory flat from
1x to 4x.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from statistics import median

import pyarrow.parquet as pq
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


def timed_export(store: Path, out: Path, configs: list[str], flavours: list[str]
                 ) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    code = PEAK_RSS + (
        "import sys,time\nfrom curate.export import ExportParams, export\n"
        "configs, flavours = sys.argv[3].split(','), sys.argv[4].split(',')\n"
        "params = ExportParams(**{k: tuple(v) for k, v in "
        "(('configs', configs), ('flavours', flavours)) if v != ['']})\n"
        "t=time.perf_counter()\n"
        "export(sys.argv[1], sys.argv[2], params=params)\n"
        "print(time.perf_counter()-t, peak_mb())\n")
    result = subprocess.run([sys.executable, "-c", code, str(store), str(out),
                             ",".join(configs), ",".join(flavours)],
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"the export failed:\n{result.stderr}")
    seconds, peak_mb = result.stdout.split()[-2:]
    return float(seconds), float(peak_mb)


FLOOR = """
import shutil, sys, time
from pathlib import Path
import pyarrow.parquet as pq
dist, target, tuned = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "tuned"
shutil.rmtree(target, ignore_errors=True)
target.mkdir(parents=True)
total = 0.0
for index, path in enumerate(sorted((dist / "data").rglob("*.parquet"))):
    table = pq.read_table(path)  # untimed: the baseline starts with the rows in memory
    started = time.perf_counter()
    options = {}
    if tuned:  # the export's own codec choices: images stored as they are, no dictionary
        images = [n for n in table.schema.names if "image" in n]
        options = dict(compression={n: "none" if n in images else "zstd"
                                    for n in table.schema.names},
                       use_dictionary=[n for n in table.schema.names if n not in images])
    pq.write_table(table, target / f"{index}.parquet", row_group_size=100, **options)
    total += time.perf_counter() - started
    del table
shutil.rmtree(target, ignore_errors=True)
print(total)
"""


def pyarrow_floor(dist: Path, mode: str) -> float:
    """Time pyarrow writing each exported file's table, one file in memory at a time, in a
    fresh process (holding every table at once would slow the baseline with memory
    pressure and leave this process large). ``mode``: ``defaults`` (pyarrow's own
    settings) or ``tuned`` (the export's codec choices: the fastest honest baseline)."""
    result = subprocess.run([sys.executable, "-c", FLOOR, str(dist), str(WORK / "floor"), mode],
                            check=True, capture_output=True, text=True)
    return float(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--scales", default="1,4")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--horizon", action="append", default=[],
                        help="segment with these horizons (K or end), repeatable")
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--flavour", action="append", default=[])
    args = parser.parse_args()
    for scale in [int(s) for s in args.scales.split(",")]:
        store = prepared_store(scale, args.steps, args.horizon)
        out = WORK / f"export_dist_x{scale}"
        exports, peaks = [], []
        floors: dict[str, list[float]] = {"tuned": [], "defaults": []}
        for _ in range(args.repeat):  # interleaved: export, then both baselines
            seconds, peak = timed_export(store, out, args.config, args.flavour)
            exports.append(seconds)
            peaks.append(peak)
            for mode, times in floors.items():
                times.append(pyarrow_floor(out, mode))
        exported = median(exports)
        tuned, defaults = median(floors["tuned"]), median(floors["defaults"])
        size = sum(p.stat().st_size for p in out.rglob("*.parquet")) / 2**20
        print(f"x{scale}: export {exported:.2f} s; pyarrow write of the same tables "
              f"{tuned:.2f} s with the export's codecs -> {exported / tuned:.2f}x "
              f"(goal <= 1.5), {defaults:.2f} s with pyarrow's defaults -> "
              f"{exported / defaults:.2f}x; {size:.0f} MB written; "
              f"peak RSS {max(peaks):.0f} MB", flush=True)
        for folder in sorted(p for p in (out / "data").iterdir() if p.is_dir()):
            files = list(folder.glob("*.parquet"))
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            print(f"  {folder.name}: {rows} rows, "
                  f"{sum(f.stat().st_size for f in files) / 2**20:.1f} MB", flush=True)

if __name__ == "__main__":
    main()
