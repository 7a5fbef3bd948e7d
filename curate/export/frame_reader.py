"""Random access to frame bytes by id, reading whole row groups and keeping a few cached.

Exports walk episodes in order, and an episode's frames sit together in the row groups of the
batch that ingested it, so a small LRU of row groups serves almost every lookup: each image's
bytes are read from disk about once, and memory stays bounded by the cache size.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import StoreError
from curate.export.images import FrameImage
from curate.store.core import Store

CACHED_ROW_GROUPS = 8


class FrameReader:
    def __init__(self, store: Store) -> None:
        self._where: dict[str, tuple[Path, int]] = {}
        self._size: dict[str, tuple[int, int]] = {}
        self._format: dict[str, str] = {}
        for path in store.files("frames"):
            parquet = pq.ParquetFile(path)
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(
                    group, columns=["frame_id", "format", "width", "height"])
                for frame_id, image_format, width, height in zip(
                        table.column("frame_id").to_pylist(), table.column("format").to_pylist(),
                        table.column("width").to_pylist(), table.column("height").to_pylist(),
                        strict=True):
                    self._where.setdefault(frame_id, (path, group))
                    self._size[frame_id] = (width, height)
                    self._format[frame_id] = image_format
        # (file, row group) -> (frame id -> position, the group's bytes column)
        self._cache: OrderedDict[tuple[Path, int], tuple[dict[str, int], pa.BinaryArray]] = (
            OrderedDict())

    def __contains__(self, frame_id: object) -> bool:
        return frame_id in self._where

    def size(self, frame_id: str) -> tuple[int, int]:
        """(width, height) of a frame, without reading its bytes."""
        return self._size[frame_id]

    def file_name(self, frame_id: str) -> str:
        """A name for the image inside a dataset: its id and its real extension."""
        extension = {"jpeg": "jpg"}.get(self._format[frame_id], self._format[frame_id])
        return f"{frame_id}.{extension}"

    def image(self, frame_id: str) -> FrameImage:
        """The frame as an image of a row: its bytes stay in the row group read (Arrow)."""
        try:
            key = self._where[frame_id]
        except KeyError:
            raise StoreError(f"frame {frame_id} is referenced but not in the store") from None
        group = self._cache.get(key)
        if group is None:
            table = pq.ParquetFile(key[0]).read_row_group(key[1], columns=["frame_id", "bytes"])
            positions = {f: i for i, f in enumerate(table.column("frame_id").to_pylist())}
            group = (positions, table.column("bytes").combine_chunks())
            self._cache[key] = group
            if len(self._cache) > CACHED_ROW_GROUPS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        positions, data = group
        return FrameImage(frame_id, self.file_name(frame_id), data, positions[frame_id])

    def read(self, frame_id: str) -> bytes:
        """The frame's bytes as recorded."""
        return self.image(frame_id).read()
