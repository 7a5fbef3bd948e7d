"""Streaming a Multimodal-Mind2Web-shaped Parquet corpus from a Hub (issue 18).

    .venv/bin/python benchmarks/bench_hub_stream.py [--gb 2.0] [--shards 1] [--repeat 1]

Generates ``--shards`` Parquet files (default one) of distinct full-page JPEGs with the
dataset card's columns (HTML included, which curate never reads) holding ``--gb`` GB, puts
them on the test Hub (tests/hubserver, on 127.0.0.1, serving byte ranges from disk) and
times, side by side and alternating, each in a fresh process:

- **pyarrow**: ``HfFileSystem`` + ``pyarrow.parquet`` reading the columns curate reads (every
  row group, batches dropped as read): the floor for getting those bytes off the server;
- **curate**: ``curate ingest hf://datasets/...`` into a fresh store (recognise, fetch the
  same columns, hash and probe every screenshot, write the store).

Prints wall time, CPU time and peak RSS of each, and the ratios the issue sets (time ≤ 1.5×
pyarrow, peak memory ≤ 600 MB whatever the size). The machine may be shared: CPU time is
printed beside wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from hubserver.fixture import client_env  # noqa: E402
from hubserver.mind2web import publish_files, write_shard  # noqa: E402
from hubserver.server import HubServer  # noqa: E402

from curate.sources.adapters.mind2web import PARQUET_COLUMNS  # noqa: E402

REPO_ID = "bench/mm-mind2web"
# Full-page JPEGs of ~0.7 MB, 60 kB of HTML per row, 100-row groups (what `datasets` writes
# for image datasets).
SHARD = {"actions": 4, "page": (1280, 3600), "html_bytes": 60_000, "rows_per_group": 100}

# Runs a command, then prints its wall time, CPU time and peak RSS as JSON. A fresh wrapper
# per run, so RUSAGE_CHILDREN's peak is that run's alone.
MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024}))
"""

READ_COLUMNS = """
import sys
import pyarrow.parquet as pq
from huggingface_hub import HfFileSystem
fs = HfFileSystem()
columns = sys.argv[2].split(",")
for path in sorted(fs.glob(sys.argv[1] + "/*.parquet")):
    with fs.open(path, "rb", cache_type="none") as handle:
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=32, columns=columns):
            del batch
"""


def make_corpus(folder: Path, gigabytes: float, shards: int) -> dict[str, Path]:
    """``shards`` files holding ``gigabytes`` GB together (sized from a 5-task probe)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = write_shard(folder / "probe.parquet", tasks=5, **SHARD) / 5
    (folder / "probe.parquet").unlink()
    per_shard = math.ceil(gigabytes * 1e9 / probe / shards)
    files: dict[str, Path] = {}
    for number in range(shards):
        path = folder / f"train-{number:05d}-of-{shards:05d}.parquet"
        size = write_shard(path, tasks=per_shard, first_task=number * per_shard, **SHARD)
        files[f"data/{path.name}"] = path
        print(f"  shard {number + 1}: {per_shard} tasks, {size / 1e9:.2f} GB", flush=True)
    return files


def measure(hub: HubServer, work: Path, command: list[str]) -> dict[str, float]:
    env = client_env(hub.endpoint, work / "hf-home")
    env["PYTHONPATH"] = str(REPO)
    env["CURATE_CACHE"] = str(work / "cache")
    return measured(command, env)


def measured(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall time, CPU time and peak RSS of ``command`` run in a fresh measuring wrapper."""
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], env=env,
                            capture_output=True, text=True, check=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    if figures["code"] != 0:
        raise SystemExit(f"{command[:4]} failed: {result.stderr}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--shards", type=int, default=1,
                        help="files to split the corpus into (default one file of --gb GB)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the corpus here; a later run with the same folder reuses it")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-hub-"))
    results: dict[str, list[dict[str, float]]] = {"pyarrow": [], "curate": []}
    with HubServer(work / "hub", token="hf_bench") as hub:
        if not hub.has_repo(REPO_ID):  # a --work folder of an earlier run is reused
            print(f"generating {args.gb} GB of shards in {work}", flush=True)
            shards = make_corpus(work / "shards", args.gb, args.shards)
            publish_files(hub, REPO_ID, shards)
            for path in shards.values():
                path.unlink()  # the Hub holds its copy; keep the disk for the store
        repo = hub.repo(REPO_ID)
        files = repo.resolve("main").files
        names = [name for name in files if name.endswith(".parquet")]
        size = sum(repo.blob_size(files[name]) for name in names)
        columns = ",".join(PARQUET_COLUMNS)
        for run in range(args.repeat):
            results["pyarrow"].append(measure(hub, work, [
                sys.executable, "-c", READ_COLUMNS, f"datasets/{REPO_ID}/data", columns]))
            store = work / f"store-{run}"
            results["curate"].append(measure(hub, work, [
                sys.executable, "-m", "curate.cli", "ingest", f"hf://datasets/{REPO_ID}/data",
                "-o", str(store), "--no-progress"]))
            shutil.rmtree(store)
            print(f"  run {run + 1}: " + ", ".join(
                f"{name} {r[-1]['wall']:.1f} s" for name, r in results.items()), flush=True)
        served = sum(n for p, n in hub.bytes_sent.items() if p.endswith(".parquet"))
    print(f"\ncorpus: {len(names)} shards, {size / 1e9:.2f} GB on the Hub; "
          f"served {served / 1e9:.2f} GB in {args.repeat * 2} reads of the curate columns")
    print(f"{'':10} {'wall s':>8} {'cpu s':>8} {'peak MB':>8}")
    medians = {}
    for name, runs in results.items():
        medians[name] = {k: statistics.median(r[k] for r in runs)
                         for k in ("wall", "cpu", "peak_mb")}
        m = medians[name]
        print(f"{name:10} {m['wall']:8.1f} {m['cpu']:8.1f} {m['peak_mb']:8.0f}")
    ratio = medians["curate"]["wall"] / medians["pyarrow"]["wall"]
    print(f"\ncurate / pyarrow wall: {ratio:.2f}x (goal <= 1.5x); "
          f"cpu {medians['curate']['cpu'] / medians['pyarrow']['cpu']:.2f}x; "
          f"curate peak {medians['curate']['peak_mb']:.0f} MB (goal <= 600 MB)")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
