"""Adapter throughput (issue 18): steps per second of each adapter on its sample.

    .venv/bin/python benchmarks/bench_adapters.py [--repeat 5] [--copies 200]

Every unit is read and converted to Arrow tables (``curate.pipeline.extract.extract_unit``:
detection excluded, fingerprints, screenshot hashing and frame probing included, no store writes),
interleaved round by round in this one process, median of ``--repeat`` rounds; the
remembered file digests are dropped before each run, so every run hashes its screenshots.

Existing adapters run on their real samples in ../shared/realdata. New adapters run on the real
AgentNetBench sample, and, where no real sample exists (the AgentNet release, AITZ, Codex
rollouts, rrweb, SeeAct, Phoenix, WebLINX, AgentTrek), on their test fixture copied
``--copies`` times with distinct ids (SeeAct's tasks inside one experiment folder, Phoenix's
traces inside one export, AgentTrek's records inside one JSON list, as real ones come) (the
fixtures have tiny screenshots, so those rows are an upper bound on the real cost of the JSON
side). Prints each adapter's steps/s and its ratio to the fastest existing adapter (goal >=
0.5), on wall time and on CPU time (steps per CPU second of this process, every thread),
which the load of a shared machine distorts less.
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


# Source records read, for samples where they are far more than the steps they make.
ROWS = {"openadapt_legacy": 2199}


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


# Adapters with no real sample: their test fixture (a file or a folder) copied --copies times.
COPIED_FIXTURES = {
    "codex_rollouts": "codex_rollouts/2025/10/29/rollout-2025-10-29T01-00-00-019a-child.jsonl",
    "rrweb": "rrweb/session.json",
    "weblinx": "weblinx/demonstrations/aaabbbc",
}


def copied_fixture(adapter: str, relative: str, copies: int) -> Path:
    folder = WORK / adapter
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    source = FIXTURES / relative
    for copy in range(copies):
        # Each copy in its own folder under the fixture's own name, so detection is unchanged.
        target = folder / f"copy-{copy:04d}" / source.name
        target.parent.mkdir()
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    return folder


def copied_seeact(copies: int) -> Path:
    """One experiment folder holding the fixture's tasks --copies times (new annotation ids,
    renamed in the folder names and the records alike), as a real SeeAct run is one folder."""
    folder = WORK / "seeact" / "exp_textual_choice"
    shutil.rmtree(folder.parent, ignore_errors=True)
    folder.mkdir(parents=True)
    for source in sorted((FIXTURES / "seeact" / "exp_textual_choice").iterdir()):
        annotation = source.name.split("_")[0]
        for copy in range(copies):
            fresh = f"{copy:08d}{annotation[8:]}"
            target = folder / source.name.replace(annotation, fresh)
            shutil.copytree(source, target)
            queries = target / "queries.jsonl"
            queries.write_text(queries.read_text().replace(annotation, fresh))
    return folder.parent


def copied_phoenix(copies: int) -> Path:
    """One Phoenix export holding the fixture's traces --copies times (new trace ids), as a
    project's spans are exported into one file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = WORK / "phoenix_spans"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    table = pq.read_table(FIXTURES / "phoenix_spans" / "spans.parquet")
    column = table.schema.get_field_index("context.trace_id")
    ids = table["context.trace_id"].to_pylist()
    parts = [table.set_column(column, "context.trace_id",
                              pa.array([f"{i}-{copy}" if i else i for i in ids]))
             for copy in range(copies)]
    pq.write_table(pa.concat_tables(parts), folder / "spans.parquet")
    return folder


def copied_agenttrek(copies: int) -> Path:
    """One release-shaped JSON list holding the fixture's records --copies times (each copy's
    goals made distinct, so its trajectories are not joined to the copy before), as the real
    release is one 1.8 GB list."""
    folder = WORK / "agenttrek"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    records = json.loads((FIXTURES / "agenttrek" / "agenttrek_sample.json").read_text())
    with (folder / "agenttrek_1207.json").open("w") as handle:
        handle.write("[")
        for copy in range(copies):
            for number, record in enumerate(records):
                text = json.dumps(record, ensure_ascii=False).replace("## Goal:\\n",
                                                                      f"## Goal:\\n(copy {copy}) ")
                handle.write(("," if copy or number else "") + text + "\n")
        handle.write("]\n")
    return folder


def planned(folder: Path, adapter: str) -> list[PlannedUnit]:
    return [unit for unit in discover([folder]) if unit.adapter == adapter]


def input_megabytes(units: list[PlannedUnit]) -> float:
    from curate.sources import adapters

    files = {f for u in units for f in adapters.get(u.adapter or "").input_files(u.unit)}
    return sum(f.stat().st_size for f in files) / 1e6


def run(units: list[PlannedUnit]) -> tuple[float, float, int]:
    """Wall and CPU seconds (this process, every thread) of reading ``units``; steps read."""
    base._FILE_DIGESTS.clear()
    start, cpu = time.perf_counter(), time.process_time()
    steps = sum(extract_unit(unit.unit, unit.adapter).steps.num_rows for unit in units)
    return time.perf_counter() - start, time.process_time() - cpu, steps


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
    for adapter, relative in COPIED_FIXTURES.items():
        contenders[adapter] = (f"new, fixture x{args.copies}",
                               planned(copied_fixture(adapter, relative, args.copies), adapter))
    contenders["seeact"] = (f"new, fixture tasks x{args.copies}",
                            planned(copied_seeact(args.copies), "seeact"))
    contenders["agenttrek"] = (f"new, fixture list x{args.copies}",
                               planned(copied_agenttrek(args.copies), "agenttrek"))
    contenders["phoenix_spans"] = (f"new, fixture traces x{args.copies}",
                                   planned(copied_phoenix(args.copies), "phoenix_spans"))
    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpus: dict[str, list[float]] = {name: [] for name in contenders}
    steps: dict[str, int] = {}
    for _ in range(args.repeat):
        for name, (_, units) in contenders.items():
            elapsed, cpu, count = run(units)
            times[name].append(elapsed)
            cpus[name].append(cpu)
            steps[name] = count
    # On a shared machine wall time carries the other processes' load: the same table on
    # CPU time (steps per CPU second) is printed beside it.
    wall = {name: statistics.median(times[name]) for name in contenders}
    cpu = {name: max(statistics.median(cpus[name]), 1e-6) for name in contenders}
    rate = {name: steps[name] / wall[name] for name in contenders if steps[name]}
    cpu_rate = {name: steps[name] / cpu[name] for name in rate}
    existing = [n for n in rate if contenders[n][0].startswith("existing")]
    fastest = max(existing, key=lambda n: rate[n])
    fastest_cpu = max(existing, key=lambda n: cpu_rate[n])
    print(f"fastest existing adapter: {fastest} at {rate[fastest]:,.0f} steps/s (wall); "
          f"{fastest_cpu} at {cpu_rate[fastest_cpu]:,.0f} steps per CPU second")
    print(f"{'adapter':<20} {'sample':<38} {'units':>5} {'steps':>5} {'rows':>6} "
          f"{'wall s':>7} {'cpu s':>7} {'steps/s':>8} {'ratio':>6} {'cpu st/s':>8} "
          f"{'ratio':>6} {'MB/s':>6}")
    for name, (sample, units) in contenders.items():
        if name not in rate:
            continue
        records = ROWS.get(name, "")
        print(f"{name:<20} {sample:<38} {len(units):>5} {steps[name]:>5} {records:>6} "
              f"{wall[name]:>7.3f} {cpu[name]:>7.3f} {rate[name]:>8,.0f} "
              f"{rate[name] / rate[fastest]:>6.2f} {cpu_rate[name]:>8,.0f} "
              f"{cpu_rate[name] / cpu_rate[fastest_cpu]:>6.2f} "
              f"{input_megabytes(units) / cpu[name]:>6.0f}")
    print("ratio: steps/s over the fastest existing adapter's (goal >= 0.5), on wall and on "
          "CPU time; MB/s: input bytes per CPU second; rows: source records read where they "
          "are not steps (openadapt_legacy: the dump's INSERT rows)")


if __name__ == "__main__":
    main()
