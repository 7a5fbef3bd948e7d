"""Mutation testing (issue 14): how many deliberately broken versions of label, segment,
export and rewards the tests catch, with mutmut.

    .venv/bin/python benchmarks/mutation.py [--target label ...] [--max-children 2]

Each target is one group of modules and the tests that specify them. For each, the committed
tree (``git archive HEAD``) is unpacked into benchmarks/_work/mutation/<target>/, mutmut is
configured there (never in the repository's own pyproject.toml) and run; the script prints
killed / survived / timeout / no-tests per target and the kill rate, and writes the surviving
mutants' names to benchmarks/_work/mutation/<target>/survivors.txt so they can be read with
``mutmut show NAME`` in that folder.

Kill rate = killed / (killed + survived + timeouts counted as killed): mutants no test reaches
("no tests") are reported apart, since they are blind spots rather than weak assertions.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work" / "mutation"

# target -> (modules to mutate, the tests that specify them)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "label": (["curate/pipeline/label.py", "curate/pipeline/states.py"], ["tests/test_label.py"]),
    "segment": (["curate/pipeline/segment.py"], ["tests/test_segment.py"]),
    "rewards": (["curate/rewards/match.py", "curate/rewards/trajectory.py"],
                ["tests/test_rewards_match.py", "tests/test_rewards_trajectory.py",
                 "tests/test_rewards_windows.py"]),
    # The export tests build a dataset per run (seconds each), so export's own target is the
    # row builder with the alignment tests; stop it with --max-seconds.
    "export": (["curate/export/rows.py", "curate/export/splits.py"],
               ["tests/test_alignment_truth.py", "tests/test_honest_defaults.py"]),
}
RESOURCES = ["schemas/", "pipelines/", "annotations/", "data_cards/", "examples/"]


def prepare(target: str) -> Path:
    """A fresh copy of the committed tree with mutmut configured for ``target``."""
    folder = WORK / target
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    modules, tests = TARGETS[target]
    config = "\n".join([
        "", "[tool.mutmut]", 'source_paths = ["curate/"]',
        f"also_copy = {RESOURCES!r}".replace("'", '"'),
        f"only_mutate = {modules!r}".replace("'", '"'),
        f"pytest_add_cli_args_test_selection = {tests!r}".replace("'", '"'),
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]', ""])
    with (folder / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write(config)
    # Tests read the real samples as ../shared/realdata relative to the tree mutmut runs in
    # (<folder>/mutants): point that at the repository's own neighbour.
    shared = REPO.parent / "shared"
    if shared.is_dir():
        (folder / "shared").symlink_to(shared)
    return folder


def run(target: str, max_children: int, max_seconds: float) -> dict[str, int]:
    folder = prepare(target)
    mutmut = Path(sys.executable).with_name("mutmut")
    # mutmut puts its mutants/ tree first on the path itself; a PYTHONPATH pointing anywhere
    # (even there) hides the mutated modules from its coverage tracking.
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = time.monotonic()
    log = (folder / "mutmut.log").open("wb")
    process = subprocess.Popen([str(mutmut), "run", "--max-children", str(max_children)],
                               cwd=folder, env=environment, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        process.wait(timeout=max_seconds)
    except subprocess.TimeoutExpired:
        # What was checked by then is reported; the rest shows as "not checked". mutmut forks
        # a child per mutant, so the whole session goes.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()
    results = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=folder,
                             env=environment, capture_output=True, text=True).stdout
    counts: dict[str, int] = {}
    survivors = []
    for line in results.splitlines():
        match = re.match(r"\s*(\S+): (.+)$", line)
        if match:
            status = match.group(2).strip()
            counts[status] = counts.get(status, 0) + 1
            if status == "survived":
                survivors.append(match.group(1))
    (folder / "survivors.txt").write_text("".join(f"{s}\n" for s in survivors))
    counts["seconds"] = round(time.monotonic() - started)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="a group of modules (repeat); default: all")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=1800,
                        help="stop a target's run after this long (default 1800)")
    args = parser.parse_args()
    print(f"{'target':<10} {'mutants':>8} {'killed':>7} {'survived':>9} {'timeout':>8} "
          f"{'no tests':>9} {'unchecked':>10} {'kill rate':>10} {'seconds':>8}")
    for target in args.target or list(TARGETS):
        counts = run(target, args.max_children, args.max_seconds)
        killed, survived = counts.get("killed", 0), counts.get("survived", 0)
        timeout = counts.get("timeout", 0)
        total = sum(v for k, v in counts.items() if k != "seconds")
        reached = killed + survived + timeout
        rate = (killed + timeout) / reached if reached else 0.0
        print(f"{target:<10} {total:>8} {killed:>7} {survived:>9} {timeout:>8} "
              f"{counts.get('no tests', 0):>9} {counts.get('not checked', 0):>10} "
              f"{rate:>9.1%} {counts['seconds']:>8}",
              flush=True)


if __name__ == "__main__":
    main()
