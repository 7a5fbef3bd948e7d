"""Redaction benchmark (issue 14): what redaction costs an export of the real OSWorld
sample, and how often it fires on the real samples, which hold no credentials.

    .venv/bin/python benchmarks/bench_redaction.py [--repeats 5]

Cost: the same store is exported with redaction and with the scanner switched off
(curate.secrets.redact_text replaced by the identity for the baseline runs only), the two
interleaved, each scan cache cleared before every run; medians and their ratio. Redaction
runs at export only (ingest stores what was recorded), so an ingest pays nothing: the ratio
printed is redaction's share of ingest + export, and of export alone.

False positives: every text curate would export from every sample in ../shared/realdata
(instruction, step instruction, thought, action text, typed text, URL, tool arguments,
element text) is scanned; the real samples are public recordings, so every finding is
counted as a false positive and listed by kind with a masked excerpt for review.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work" / "redaction"
REALDATA = HERE.parents[1] / "shared" / "realdata"


def prepared_store(sample: Path, store: Path) -> float:
    from curate.pipeline.ingest import ingest
    from curate.pipeline.label import label
    from curate.pipeline.segment import segment

    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    ingest([sample], store)
    seconds = time.perf_counter() - start
    label(store)
    segment(store)
    return seconds


def timed_export(store: Path, out: Path, *, scan: bool) -> float:
    import curate.export.redact as redact_module
    from curate.export import ExportParams, export
    from curate.secrets import _cached, redact_text

    _cached.cache_clear()
    redact_module.redact_text = redact_text if scan else (lambda text: (text, ()))
    try:
        start = time.perf_counter()
        export(store, out, params=ExportParams())
        return time.perf_counter() - start
    finally:
        redact_module.redact_text = redact_text


def cost(repeats: int) -> dict[str, float]:
    store = WORK / "osworld.store"
    ingest_s = prepared_store(REALDATA / "osworld_sec_eval_claude", store)
    timed_export(store, WORK / "warm", scan=True)  # imports and OS caches, untimed
    with_scan, without = [], []
    for _ in range(repeats):
        with_scan.append(timed_export(store, WORK / "with", scan=True))
        without.append(timed_export(store, WORK / "without", scan=False))
    on, off = median(with_scan), median(without)
    return {"ingest_s": ingest_s, "export_redacted_s": on, "export_unredacted_s": off,
            "export_ratio": on / off, "pipeline_ratio": (ingest_s + on) / (ingest_s + off)}


def _texts(store: Path) -> list[str]:
    from curate.store.core import open_store

    opened = open_store(store)
    texts = [t for t in opened.read("episodes").column("instruction").to_pylist() if t]
    steps = opened.read("steps")
    for name in ("step_instruction", "thought", "action_text"):
        if name in steps.column_names:
            texts += [t for t in steps.column(name).to_pylist() if t]
    for action in steps.column("action").to_pylist():
        texts += [action.get(k) for k in ("text", "url", "tool_args") if action.get(k)]
        target = action.get("target") or {}
        texts += [target["text"]] if target.get("text") else []
    return texts


def _mask(value: str) -> str:
    return value[:3] + "…" + f"({len(value)} chars)"


def false_positives() -> dict[str, Any]:
    from curate.secrets import redact_text

    per_sample: dict[str, Any] = {}
    for sample in sorted(p for p in REALDATA.iterdir() if p.is_dir()):
        store = WORK / f"fp_{sample.name}.store"
        try:
            prepared_store(sample, store)
        except Exception as error:  # a sample no adapter reads yet is reported, not fatal
            per_sample[sample.name] = {"error": str(error)[:200]}
            continue
        texts = sorted(set(_texts(store)))
        kinds: Counter[str] = Counter()
        flagged, examples = 0, []
        for text in texts:
            findings = redact_text(text)[1]
            flagged += bool(findings)
            for finding in findings:
                kinds[finding.kind] += 1
                if len(examples) < 5:
                    examples.append(f"{finding.kind}: {_mask(finding.value)}")
        per_sample[sample.name] = {"texts": len(texts), "flagged": flagged,
                                   "kinds": dict(kinds), "examples": examples}
    return per_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-fp", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE.parent))
    figures = cost(args.repeats)
    print(f"OSWorld sample: ingest {figures['ingest_s']:.2f} s; export "
          f"{figures['export_redacted_s']:.2f} s redacted vs "
          f"{figures['export_unredacted_s']:.2f} s without the scanner: "
          f"export x{figures['export_ratio']:.3f}, ingest+export "
          f"x{figures['pipeline_ratio']:.3f} (goal <= 1.15)")
    if not args.skip_fp:
        samples = false_positives()
        total = sum(s.get("texts", 0) for s in samples.values())
        flagged = sum(s.get("flagged", 0) for s in samples.values())
        print(json.dumps(samples, indent=1))
        print(f"false positives: {flagged} of {total} distinct texts flagged "
              f"({100 * flagged / max(total, 1):.2f}%)")


if __name__ == "__main__":
    main()
