"""a11y executor benchmark (issue 16): time per step on the real AgentNet sample vs 1 ms.

    .venv/bin/python benchmarks/bench_a11y.py [--repeat 200]

Ingests ../shared/realdata/opencua_agentnet_raw once (tree parsing happens there, once per
episode), then times the a11y executor over every step's elements and instruction, as
`curate execute` calls it, and prints milliseconds per step and the ratio to the 1 ms budget.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "shared" / "realdata" / "opencua_agentnet_raw"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    from curate.executors.a11y import A11yExecutor
    from curate.pipeline.execute import _batch_steps, _contexts, _episodes, _item
    from curate.pipeline.ingest import ingest
    from curate.pipeline.instructions import step_instructions
    from curate.store.core import open_store

    work = Path(tempfile.mkdtemp(prefix="bench-a11y-"))
    try:
        ingest([SAMPLE], work / "store")
        store = open_store(work / "store")
        executor = A11yExecutor()
        items = []
        for batch in sorted(store.manifest.batches):
            steps = _batch_steps(store, batch, "all")
            texts, _ = step_instructions(store.path, steps)
            rows = steps.to_pylist()
            contexts = _contexts(store, rows, _episodes(store), executor)
            items += [(c, _item(r, t, "a11y")) for c, r, t in zip(contexts, rows, texts,
                                                                   strict=True)]
        grounded = [item for item in items if item[0].elements]
        start = time.perf_counter()
        for _ in range(args.repeat):
            executor.execute_many(items)
        per_step = (time.perf_counter() - start) / (args.repeat * len(items)) * 1000
        start = time.perf_counter()
        for _ in range(args.repeat):
            executor.execute_many(grounded)
        per_grounded = (time.perf_counter() - start) / (args.repeat * len(grounded)) * 1000
        elements = sum(len(c.elements) for c, _ in grounded) / max(1, len(grounded))
        print(f"steps {len(items)}, with elements {len(grounded)} ({elements:.0f} elements each)")
        print(f"a11y per step (all steps)        {per_step:.4f} ms  = {per_step:.3f}x the 1 ms "
              "budget")
        print(f"a11y per step (with elements)    {per_grounded:.4f} ms  = {per_grounded:.3f}x "
              "the 1 ms budget")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
