"""Start-up benchmark (issue 15): `curate --help`, `curate formats` and importing the stages,
before and after the lazy imports, measured side by side in one run.

    .venv/bin/python benchmarks/bench_startup.py [--baseline REV] [--repeat 9]

The baseline is the package as it was at git revision REV (default: the last commit before
the lazy imports), unpacked with `git archive` under benchmarks/_work/startup/; the current
one is this checkout. Each measurement is a fresh interpreter; the runs of the two trees are
interleaved and the median wall time is printed with the ratio. Bytecode is written to a
cache of each tree's own (PYTHONDONTWRITEBYTECODE is ignored here), and one untimed run
fills it, since an installed package has its bytecode compiled.
"""

from __future__ import annotations

import argparse
import os
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


def run_once(tree: Path, code: str) -> float:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    env["PYTHONPYCACHEPREFIX"] = str(WORK / "pycache" / tree.name)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default=BEFORE_LAZY_IMPORTS,
                        help="git revision of the 'before' package")
    parser.add_argument("--repeat", type=int, default=9, help="runs per case and tree")
    args = parser.parse_args()
    trees = {"before": unpack(args.baseline), "after": REPO}
    bare = statistics.median(run_once(REPO, "pass") for _ in range(args.repeat))
    print(f"bare interpreter: {bare * 1000:.0f} ms (included in every figure below)")
    print(f"{'case':<24} {'before':>9} {'after':>9} {'ratio':>7}")
    for name, code in CASES.items():
        for tree in trees.values():
            run_once(tree, code)  # fill the bytecode cache
        times: dict[str, list[float]] = {label: [] for label in trees}
        for _ in range(args.repeat):
            for label, tree in trees.items():
                times[label].append(run_once(tree, code))
        before, after = (statistics.median(times[label]) for label in ("before", "after"))
        print(f"{name:<24} {before * 1000:>7.0f}ms {after * 1000:>7.0f}ms "
              f"{before / after:>6.1f}x")


if __name__ == "__main__":
    main()
