"""Start-up benchmark (issue 15): `curate --help`, `curate formats` and importing the stages,
before and after the lazy imports, measured side by side in one run.

    .venv/bin/python benchmarks/bench_startup.py [--baseline REV] [--repeat 9]

The baseline is the package as it was at git revision REV (default: the last commit before
the lazy imports), unpacked with `git archive` under benchmarks/_work/startup/; the current
one is this checkout. Each measurement is a fresh interpreter; the runs of the two trees are
interleaved and the median wall time is printed with the ratio, and beside it the median
CPU time (user + system) of the child process, which a busy shared machine inflates far
less than the wall time. Bytecode is written to a
cache of each tree's own (PYTHONDONTWRITEBYTECODE is ignored here), and one untimed run
fills it, since an installed package has its bytecode compiled.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work" / "startup"
BEFORE_LAZY_IMPORTS = "7c75728"

CASES = {
    "curate --help": "import sys; sys.argv = ['curate', '--help']\n"
                     "from curate.cli import main\ntry: main()\nexcept SystemExit: pass",
    "curate formats": "import sys; sys.argv = ['curate', 'formats']\n"
                      "from curate.cli import main\ntry: main()\nexcept SystemExit: pass",
    "import curate.pipeline.segment": "import curate.pipeline.segment",
    "import curate.export": "import curate.export",
    "import curate.pipeline.build": "import curate.pipeline.build",
}


def unpack(revision: str) -> Path:
    target = WORK / revision
    if not (target / "curate").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", "--format=tar", revision, "curate",
                                  "schemas", "pipelines", "annotations", "data_cards"],
                                 cwd=REPO, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(tree: Path, code: str) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh interpreter running ``code`` against ``tree``."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache" / tree.name)
    cpu, start = cpu_of_children(), time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, cpu_of_children() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BEFORE_LAZY_IMPORTS,
                        help="git revision of the 'before' package")
    parser.add_argument("--repeat", type=int, default=9, help="runs per case and tree")
    args = parser.parse_args()
    trees = {"before": unpack(args.baseline), "after": REPO}
    bare = statistics.median(run_once(REPO, "pass")[0] for _ in range(args.repeat))
    print(f"bare interpreter: {bare * 1000:.0f} ms (included in every figure below)")
    print(f"{'case':<32} {'before':>8} {'after':>8} {'ratio':>6}   "
          f"{'cpu before':>10} {'cpu after':>9}")
    for name, code in CASES.items():
        for tree in trees.values():
            run_once(tree, code)  # fill the bytecode cache
        times: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
        for _ in range(args.repeat):
            for label, tree in trees.items():
                times[label].append(run_once(tree, code))
        wall = {label: statistics.median(t[0] for t in runs) for label, runs in times.items()}
        cpu = {label: statistics.median(t[1] for t in runs) for label, runs in times.items()}
        print(f"{name:<32} {wall['before'] * 1000:>6.0f}ms {wall['after'] * 1000:>6.0f}ms "
              f"{wall['before'] / wall['after']:>5.1f}x   {cpu['before'] * 1000:>8.0f}ms "
              f"{cpu['after'] * 1000:>7.0f}ms")


if __name__ == "__main__":
    main()
