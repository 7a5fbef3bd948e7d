"""Multimodal-Mind2Web-shaped Parquet shards, for the Hub streaming tests and benchmark.

Columns and types follow the dataset card (../shared/realdata/multimodal_mind2web/SOURCE.md):
one row per action, JSON inside ``operation`` and the candidates, the whole page's HTML in
``raw_html`` / ``cleaned_html`` (which curate never reads), a full-page JPEG per row. Every
screenshot is distinct (noise seeded by task and action), so nothing deduplicates for free.
Shards are written one row group at a time, so a multi-GB shard is never in memory.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from .server import HubServer

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema([
    ("action_uid", pa.string()), ("raw_html", pa.string()), ("cleaned_html", pa.string()),
    ("operation", pa.string()), ("pos_candidates", pa.list_(pa.string())),
    ("neg_candidates", pa.list_(pa.string())), ("website", pa.string()),
    ("domain", pa.string()), ("subdomain", pa.string()), ("annotation_id", pa.string()),
    ("confirmed_task", pa.string()), ("screenshot", IMAGE),
    ("action_reprs", pa.list_(pa.string())), ("target_action_index", pa.string()),
    ("target_action_reprs", pa.string()),
])
REPRS = ["[textbox]  Search -> TYPE: tents", "[button]  Go -> CLICK",
         "[link]  Two-person tent -> CLICK", "[combobox]  Colour -> SELECT: Green"]


def jpeg(seed: int, size: tuple[int, int]) -> bytes:
    """A distinct full-page-shaped JPEG: coarse noise scaled up (compresses like a page)."""
    rng = random.Random(seed)
    small = Image.frombytes("RGB", (size[0] // 8, size[1] // 8),
                            rng.randbytes(3 * (size[0] // 8) * (size[1] // 8)))
    buffer = io.BytesIO()
    small.resize(size, Image.Resampling.NEAREST).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _html(seed: int, size: int) -> str:
    """A page's HTML of about ``size`` characters that compresses like markup, not to nothing."""
    rng = random.Random(seed)
    words = ("div", "span", "class", "button", "href", "item", "price", "tent", "nav", "id")
    body = " ".join(f"<{rng.choice(words)} id={rng.getrandbits(32):x}>"
                    for _ in range(size // 16))
    return f"<html><body>{body}</body></html>"


def _row(task: int, index: int, image: bytes, html: str) -> dict[str, object]:
    annotation_id = f"task-{task:06d}"
    operation = REPRS[index % len(REPRS)].rsplit("-> ", 1)[1]
    op, _, value = operation.partition(": ")
    rect = f"{10 + 20 * index},{40 + 60 * index},120,30"
    positive = {"tag": "button", "backend_node_id": f"{task}-{index}",
                "attributes": json.dumps({"backend_node_id": f"{task}-{index}",
                                          "bounding_box_rect": rect})}
    reprs = [REPRS[i % len(REPRS)] for i in range(len(REPRS))]
    return {
        "action_uid": f"{annotation_id}-a{index}", "raw_html": html, "cleaned_html": html,
        "operation": json.dumps({"op": op, "original_op": op, "value": value}),
        "pos_candidates": [json.dumps(positive)], "neg_candidates": [],
        "website": "outdoors", "domain": "Shopping", "subdomain": "Camping",
        "annotation_id": annotation_id, "confirmed_task": f"buy tent {task}",
        "screenshot": {"bytes": image, "path": None}, "action_reprs": reprs,
        "target_action_index": str(index), "target_action_reprs": reprs[index],
    }


def write_shard(path: Path, *, tasks: int, first_task: int = 0, actions: int = 4,
                page: tuple[int, int] = (320, 960), html_bytes: int = 2000,
                rows_per_group: int = 8) -> int:
    """Write a shard of ``tasks`` tasks of ``actions`` rows each; return its size in bytes."""
    rows: list[dict[str, object]] = []
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        for task in range(first_task, first_task + tasks):
            for index in range(actions):
                seed = task * 1000 + index
                rows.append(_row(task, index, jpeg(seed, page), _html(seed, html_bytes)))
                if len(rows) == rows_per_group:
                    writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
                    rows = []
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
    return path.stat().st_size


def publish_files(hub: HubServer, repo_id: str, files: dict[str, Path]) -> None:
    """Put ``files`` (path in repo -> local file) on the test Hub as LFS files, in one commit."""
    store = hub.store
    with store.lock:
        repo = store.get("dataset", repo_id) if store.exists("dataset", repo_id) else \
            store.create("dataset", repo_id, private=False)
        blobs = {name: repo.write_lfs_blob(local) for name, local in files.items()}
        repo.commit_blobs(f"add {len(blobs)} files", blobs)
