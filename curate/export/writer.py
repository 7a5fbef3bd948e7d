"""Sharded Parquet writing in the Hub layout: ``data/<config>/<split>-NNNNN-of-NNNNN.parquet``.

Shards are written under temporary names (the total is unknown until the end) and renamed
when the split is complete. An export writes each store batch with writers of its own (on a
worker, or in turn in the driver; curate.export.tasks), so a shard never spans two batches and
the bytes are the same on every engine; :func:`name_shards` then names the batches' shards in
batch order. Row groups of ~100 rows keep image pages seekable; a shard closes
when it passes ``max_shard_bytes``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.export.features import IMAGE
from curate.export.images import ImagePool
from curate.store.core import WriteQueue

ROW_GROUP_ROWS = 100
# zstd for every leaf column, nested ones and the screenshots included (one codec name, not a
# dict keyed by column: pyarrow applies a dict by leaf path, and one keyed by top-level names
# left nested columns uncompressed). Encoded screenshots shrink a little further (0.7 % of a
# PNG corpus) for about as much CPU as writing them; stored as-is, an export came out larger
# than a plain pyarrow zstd write of the same tables (issue 21).
CODEC = "zstd"


def shard_name(split: str, index: int, total: int) -> str:
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


def name_shards(folder: Path, split: str, temporaries: list[Path]) -> list[Path]:
    """Give the split's shards, in order, their final ``-of-N`` names."""
    final = []
    for index, temporary in enumerate(temporaries):
        path = folder / shard_name(split, index, len(temporaries))
        os.replace(temporary, path)
        final.append(path)
    return final


class ShardWriter:
    """Writes one (config, split) as shards of at most ``max_shard_bytes``.

    With a ``queue`` (one shared by every writer of an export), Parquet encoding and writing
    run on its background thread while the next rows are built; ``close`` waits for them.
    Image columns hold :class:`curate.export.images.FrameImage` references, taken into Arrow
    by ``pool`` (one shared by the writers of an export shares the bytes between them).
    """

    def __init__(self, folder: Path, split: str, schema: pa.Schema, max_shard_bytes: int,
                 queue: WriteQueue | None = None, pool: ImagePool | None = None,
                 part: str = "") -> None:
        self.folder = folder
        self.part = part  # in the temporary names: the writers of other batches have others
        self.split = split
        self.schema = schema
        self.max_shard_bytes = max_shard_bytes
        self.rows = 0
        self.bytes = 0
        self._queue = queue
        self._pool = pool or ImagePool()
        self._images = {f.name: f.type != IMAGE for f in schema
                        if f.type == IMAGE or f.type == pa.list_(IMAGE)}  # name -> is a list
        self._values = pa.schema([f for f in schema if f.name not in self._images])
        self._pending: list[dict[str, Any]] = []
        self._writer: pq.ParquetWriter | None = None
        self._shard_bytes = 0
        self._temporary: list[Path] = []

    def add(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        if len(self._pending) >= ROW_GROUP_ROWS:
            self._flush()

    def _open(self) -> pq.ParquetWriter:
        path = self.folder / f".{self.split}{self.part}-{len(self._temporary):05d}.parquet.tmp"
        self._temporary.append(path)
        return pq.ParquetWriter(path, self.schema, compression=CODEC,
                                write_page_index=True, write_statistics=False)

    def _flush(self) -> None:
        if not self._pending:
            return
        table = self._table(self._pending)
        self._pending = []
        self.rows += table.num_rows
        self.bytes += table.nbytes
        if self._queue is None:
            self._write(table)
        else:
            self._queue.submit(lambda: self._write(table))

    def _table(self, rows: list[dict[str, Any]]) -> pa.Table:
        """The rows as Arrow: value columns converted, image columns taken from the frames."""
        values = pa.Table.from_pylist(rows, schema=self._values)
        columns = [self._pool.column([row[field.name] for row in rows],
                                     is_list=self._images[field.name])
                   if field.name in self._images else values.column(field.name)
                   for field in self.schema]
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _write(self, table: pa.Table) -> None:
        if self._writer is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._writer = self._open()
            self._shard_bytes = 0
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self._shard_bytes += table.nbytes
        if self._shard_bytes >= self.max_shard_bytes:
            self._writer.close()
            self._writer = None

    def finish(self) -> list[Path]:
        """Finish the last shard; the shards, still under their temporary names."""
        self._flush()
        if self._queue is not None:
            self._queue.drain()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return list(self._temporary)

    def close(self) -> list[Path]:
        """Finish the last shard and give every shard its final ``-of-N`` name."""
        return name_shards(self.folder, self.split, self.finish())
