"""The programs compared in bench_ingest.py. Each runs in its own process:
``python contenders.py NAME CORPUS OUT`` and prints nothing but errors.

- ``naive``: what people write today: open every screenshot with PIL, convert it to RGB and
  put the image into a ``datasets.Dataset`` with an ``Image()`` column, written to Parquet.
- ``bytes``: the careful version: read the PNG bytes and put them straight into the Dataset
  (no decode), written to Parquet.
- ``curate``: ``curate.pipeline.ingest`` (workers from argv[4], default 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _rows(corpus: Path, load: Any) -> Any:
    for traj in sorted(corpus.rglob("traj.jsonl")):
        for line in traj.read_text().splitlines():
            record = json.loads(line)
            yield {"run": traj.parent.as_posix(), "step": record["step_num"],
                   "action": record["action"],
                   "image": load(traj.parent / record["screenshot_file"])}


def naive(corpus: Path, out: Path) -> None:
    from datasets import Dataset, Features, Image, Value
    from PIL import Image as PILImage

    def load(path: Path) -> Any:
        with PILImage.open(path) as image:
            return image.convert("RGB")

    features = Features({"run": Value("string"), "step": Value("int32"),
                         "action": Value("string"), "image": Image()})
    dataset = Dataset.from_generator(lambda: _rows(corpus, load), features=features,
                                     cache_dir=str(out / "cache"))
    dataset.to_parquet(str(out / "naive.parquet"))


def careful(corpus: Path, out: Path) -> None:
    from datasets import Dataset, Features, Image, Value

    def load(path: Path) -> Any:
        return {"bytes": path.read_bytes(), "path": path.name}

    features = Features({"run": Value("string"), "step": Value("int32"),
                         "action": Value("string"), "image": Image()})
    dataset = Dataset.from_generator(lambda: _rows(corpus, load), features=features,
                                     cache_dir=str(out / "cache"))
    dataset.to_parquet(str(out / "bytes.parquet"))


def curate_ingest(corpus: Path, out: Path, workers: int) -> None:
    from curate.pipeline.ingest import ingest

    summary = ingest([corpus], out / "store", workers=workers)
    assert summary.rejects == 0, summary


if __name__ == "__main__":
    name, corpus_arg, out_arg = sys.argv[1:4]
    corpus_path, out_path = Path(corpus_arg), Path(out_arg)
    out_path.mkdir(parents=True, exist_ok=True)
    if name == "naive":
        naive(corpus_path, out_path)
    elif name == "bytes":
        careful(corpus_path, out_path)
    elif name == "curate":
        curate_ingest(corpus_path, out_path, int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    else:
        raise SystemExit(f"unknown contender {name}")
