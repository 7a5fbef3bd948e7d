"""Adapter throughput (issue 18): steps per second of each adapter on its sample.

    .venv/bin/python benchmarks/bench_adapters.py [--repeat 5] [--copies 200]

Every unit is read and converted to Arrow tables (``curate.pipeline.extract.extract_unit``:
detection excluded, fingerprints, screenshot hashing and frame probing included, no store writes),
interleaved round by round in this one process, median of ``--repeat`` rounds; the
remembered file digests are dropped before each run, so every run hashes its screenshots.

Existing adapters run on their real samples in ../shared/realdata. New adapters run on the
real AgentNetBench sample, and, where no real sample exists (the AgentNet release, AITZ), on
their test fixture copied ``--copies`` times with distinct ids (the fixtures have tiny
screenshots, so those rows are an upper bound on the real cost of the JSON side). Prints each
adapter's steps/s and its ratio to the fastest existing adapter (goal >= 0.5).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from curate.pipeline.extract import extract_unit  # noqa: E402
from curate.sources.adapters import base  # noqa: E402
from curate.sources.discover import PlannedUnit, discover  # noqa: E402

WORK = HERE / "_work" / "adapters"
REAL = REPO.parent / "shared" / "realdata"
FIXTURES = REPO / "tests" / "fixtures"
EXISTING = {"agentlab": "agentlab_browsergym", "droidbot": "droidbot_utg",
            "playwright": "playwright_traces", "osworld": "osworld_sec_eval_claude",
            "androidworld": "androidworld_checkpoints", "toolbench": "toolbench"}
NEW_REAL = {"agentnet_bench": "agentnet_bench", "claude_code_sessions": "claude_code_sessions",
            "t3_agent": "t3_agent", "langfuse_traces": "langfuse_traces", "adp": "adp",
            "openadapt_legacy": "openadapt_legacy"}


def copied_agentnet_hf(copies: int) -> Path:
    folder = WORK / "agentnet_hf"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(FIXTURES / "agentnet_hf" / "images", folder / "images")
    lines = (FIXTURES / "agentnet_hf" / "agentnet_sample.jsonl").read_text().splitlines()
    good = [json.loads(line) for line in lines[:2]]
    with (folder / "release.jsonl").open("w") as handle:
        for copy in range(copies):
            for record in good:
                handle.write(json.dumps({**record, "task_id": f"{record['task_id']}-{copy}"})
                             + "\n")
    return folder


def copied_aitz(copies: int) -> Path:
    folder = WORK / "aitz"
    shutil.rmtree(folder, ignore_errors=True)
    source = FIXTURES / "aitz" / "GENERAL-1001"
    for copy in range(copies):
        target = folder / f"GENERAL-{copy}"
        shutil.copytree(source, target)
        (target / "GENERAL-1001.json").rename(target / f"GENERAL-{copy}.json")
    return folder


def planned(folder: Path, adapter: str) -> list[PlannedUnit]:
    return [unit for unit in discover([folder]) if unit.adapter == adapter]


def input_megabytes(units: list[PlannedUnit]) -> float:
    from curate.sources import adapters

    files = {f for u in units for f in adapters.get(u.adapter or "").input_files(u.unit)}
    return sum(f.stat().st_size for f in files) / 1e6


def run(units: list[PlannedUnit]) -> tuple[float, int]:
    base._FILE_DIGESTS.clear()
    start = time.perf_counter()
    steps = sum(extract_unit(unit.unit, unit.adapter).steps.num_rows for unit in units)
    return time.perf_counter() - start, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--copies", type=int, default=200)
    args = parser.parse_args()
    contenders: dict[str, tuple[str, list[PlannedUnit]]] = {}
    for adapter, folder in {**EXISTING, **NEW_REAL}.items():
        if (REAL / folder).is_dir():
            kind = "existing" if adapter in EXISTING else "new"
            contenders[adapter] = (f"{kind}, real {folder}", planned(REAL / folder, adapter))
    contenders["agentnet_hf"] = (f"new, fixture x{args.copies}",
                                 planned(copied_agentnet_hf(args.copies), "agentnet_hf"))
    contenders["aitz"] = (f"new, fixture x{args.copies}",
                          planned(copied_aitz(args.copies), "aitz"))
    times: dict[str, list[float]] = {name: [] for name in contenders}
    steps: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, (_, units) in contenders.items():
            elapsed, count = run(units)
            times[name].append(elapsed)
            steps[name] = count
    rate = {name: steps[name] / statistics.median(times[name]) for name in contenders
            if steps[name]}
    fastest = max((r, n) for n, r in rate.items() if contenders[n][0].startswith("existing"))
    print(f"fastest existing adapter: {fastest[1]} at {fastest[0]:,.0f} steps/s")
    print(f"{'adapter':<16} {'sample':<34} {'units':>6} {'steps':>6} {'median s':>9} "
          f"{'steps/s':>9} {'MB/s':>6} {'ratio':>6}")
    for name, (sample, units) in contenders.items():
        if name not in rate:
            continue
        print(f"{name:<16} {sample:<34} {len(units):>6} {steps[name]:>6} "
              f"{statistics.median(times[name]):>9.3f} {rate[name]:>9,.0f} "
              f"{input_megabytes(units) / statistics.median(times[name]):>6.0f} "
              f"{rate[name] / fastest[0]:>6.2f}")


if __name__ == "__main__":
    main()
