"""Digests of every file an export writes, for a before/after check of a change that must
keep exports byte-identical (issue 21: "exports must stay byte-identical").

    .venv/bin/python benchmarks/export_digests.py [--package PATH] > digests.txt

Each real sample in ../shared/realdata that builds, and each example recording, is ingested,
labelled and segmented once (horizons 3, 10 and end, so stage1 windows of every shape) into
benchmarks/_work/digests/stores with this checkout; then it is exported, by the package in
``--package`` (default: this checkout) in a fresh process, in several flavour sets (plain,
trl, verl, easyr1; stage2 with history images and executions where present), and every
file of every export is listed with its SHA-256. Run it with the old and the new package and
``diff`` the two listings: an empty diff is the proof.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work" / "digests"
REALDATA = REPO.parent / "shared" / "realdata"
EXAMPLES = REPO / "examples" / "recordings"
# (name, ExportParams keywords): the flavours the byte-identity check covers.
VARIANTS = {
    "defaults": {},
    "easyr1": {"configs": ("stage1",), "flavours": ("easyr1", "plain")},
    "verl_trl_images": {"flavours": ("plain", "trl", "verl"), "history_images": 2,
                        "future_images": True},
    "stage2_useful": {"configs": ("stage2",), "flavours": ("plain", "verl", "trl"),
                      "stage2_steps": "useful", "history": 2},
    "no_redact": {"flavours": ("plain", "trl", "verl", "easyr1"), "redact": False},
}
EXPORT = """
import hashlib, shutil, sys
from pathlib import Path
from curate.export import ExportParams, export
store, out, variant = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
params = ExportParams(**eval(variant))
shutil.rmtree(out, ignore_errors=True)
try:
    export(store, out, params=params)
except Exception as error:
    print(f"error {type(error).__name__}: {str(error).splitlines()[0]}")
    raise SystemExit(0)
for path in sorted(p for p in out.rglob("*") if p.is_file()):
    print(hashlib.sha256(path.read_bytes()).hexdigest(), path.relative_to(out))
"""


def sources() -> list[Path]:
    real = sorted(p for p in REALDATA.iterdir() if p.is_dir()) if REALDATA.is_dir() else []
    return [*real, *sorted(p for p in EXAMPLES.iterdir() if p.is_dir())]


def built_store(source: Path) -> Path | None:
    """The source's store, built once (None when the source does not build)."""
    from curate.pipeline.ingest import ingest
    from curate.pipeline.label import label
    from curate.pipeline.segment import SegmentParams, parse_horizon, segment

    store = WORK / "stores" / f"{source.parent.name}-{source.name}"
    done = store / ".digests-complete"
    if done.exists():
        return store
    try:
        ingest([source], store)
        label(store)
        segment(store, params=SegmentParams(
            horizons=tuple(parse_horizon(h) for h in ("3", "10", "end"))))
    except Exception as error:  # a sample that does not build is listed, not fatal
        print(f"# {source.name}: does not build ({type(error).__name__})", file=sys.stderr)
        return None
    done.write_text("")
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--package", type=Path, default=REPO,
                        help="the checkout whose export is run (default: this one)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.package.resolve())}
    for source in sources():
        store = built_store(source)
        if store is None:
            continue
        for variant, keywords in VARIANTS.items():
            out = WORK / "dist"
            result = subprocess.run([sys.executable, "-c", EXPORT, str(store), str(out),
                                     repr(keywords)], capture_output=True, text=True, env=env,
                                    check=True)
            for line in result.stdout.splitlines():
                print(f"{store.name} {variant} {line}", flush=True)


if __name__ == "__main__":
    main()
