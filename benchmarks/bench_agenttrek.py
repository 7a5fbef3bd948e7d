"""AgentTrek's release read as one big JSON list (issue 18): bounded memory, time vs json.load.

    .venv/bin/python benchmarks/bench_agenttrek.py [--mb 150 600] [--repeat 2]

For each size, generates a release-shaped JSON list (the test fixture's records with each
AXTree padded to the release's ~34 KB per record, goals made distinct per copy so trajectories
stay apart) and times, side by side and alternating, each in a fresh process:

- **json.load**: the whole file parsed by Python's json into one list (what loading the
  release as published does; its memory grows with the file);
- **curate**: ``curate ingest FILE -o STORE`` into a fresh store (the element-at-a-time reader,
  BrowserGym action parsing, trajectory joining, the store write).

Prints wall time, CPU time and peak RSS of each (the machine may be shared: CPU time beside
wall time), and steps per second of curate.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURE = REPO / "tests" / "fixtures" / "agenttrek" / "agenttrek_sample.json"

from bench_hub_stream import measured  # noqa: E402

LOAD = "import json, sys\nwith open(sys.argv[1], 'rb') as f:\n    print(len(json.load(f)))\n"
PAD_LINES = 450  # ~32 KB of AXTree per record: the release averages ~34 KB a record


def make_release(path: Path, megabytes: float) -> int:
    """Write a release-shaped list of about ``megabytes`` MB; returns its action records."""
    records = json.loads(FIXTURE.read_text())
    pad = "".join(f"\t\t[p{n}] link 'Generated item {n} of the benchmark page', clickable, "
                  "visible\n" for n in range(PAD_LINES))
    padded = [json.dumps(r, ensure_ascii=False).replace(", focused\\n", ", focused\\n"
                                                        + json.dumps(pad)[1:-1], 1)
              for r in records]
    copy, written, steps = 0, 0, 0
    with path.open("w") as handle:
        handle.write("[")
        while written < megabytes * 1e6:
            for number, text in enumerate(padded):
                text = text.replace("## Goal:\\n", f"## Goal:\\n(copy {copy}) ")
                handle.write(("," if written else "") + text + "\n")
                written += len(text) + 2
                steps += number not in (7, 9, 10)  # the fixture's three bad records
            copy += 1
        handle.write("]\n")
    return steps


def measure(command: list[str], work: Path) -> dict[str, float]:
    return measured(command, {**os.environ, "PYTHONPATH": str(REPO),
                              "CURATE_CACHE": str(work / "cache")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[150, 600])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-agenttrek-"))
    print(f"{'size MB':>8} {'contender':<10} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} "
          f"{'steps/s':>9}")
    try:
        for megabytes in args.mb:
            release = work / "agenttrek_1207.json"
            steps = make_release(release, megabytes)
            size = release.stat().st_size / 1e6
            runs: dict[str, list[dict[str, float]]] = {"json.load": [], "curate": []}
            for run in range(args.repeat):
                runs["json.load"].append(measure([sys.executable, "-c", LOAD, str(release)],
                                                 work))
                store = work / f"store-{run}"
                runs["curate"].append(measure([sys.executable, "-m", "curate.cli", "ingest",
                                               str(release), "-o", str(store),
                                               "--no-progress"], work))
                shutil.rmtree(store)
            medians = {name: {k: statistics.median(r[k] for r in found)
                              for k in ("wall", "cpu", "peak_mb")}
                       for name, found in runs.items()}
            for name, m in medians.items():
                rate = f"{steps / m['wall']:9,.0f}" if name == "curate" else f"{'':>9}"
                print(f"{size:8.0f} {name:<10} {m['wall']:8.1f} {m['cpu']:8.1f} "
                      f"{m['peak_mb']:8.0f} {rate}")
            ratio = {k: medians["curate"][k] / medians["json.load"][k] for k in ("wall", "cpu")}
            print(f"{'':8} curate / json.load: {ratio['wall']:.2f}x wall, {ratio['cpu']:.2f}x "
                  f"CPU; {steps} steps", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
