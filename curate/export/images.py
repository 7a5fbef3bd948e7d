"""Screenshots as Arrow: a row names its images by reference (:class:`FrameImage`, a slot in
the row group of frames the frame reader read), and each written row group's image columns
are taken from those row groups in one Arrow call, never passing through Python bytes.

The rows of one config reach each of its flavours' writers in the same order and flush at the
same row counts, so the image columns of a flush are taken once (:class:`ImagePool`) and the
same Arrow buffers are shared by every flavour's table (the plain ``image`` column and the
flavours' ``images`` lists hold the same child array).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from curate.export.features import IMAGE

POOLED_FLUSHES = 2  # the flavours of a config flush one after another, at the same row


@dataclass(frozen=True, eq=False)
class FrameImage:
    """One screenshot of a row: its frame id, its file name inside the dataset, and where
    its bytes are (``frames[index]`` of a row group the frame reader holds)."""

    frame_id: str
    path: str
    frames: pa.BinaryArray
    index: int

    def read(self) -> bytes:
        value: bytes = self.frames[self.index].as_py()
        return value


def _without_validity(data: pa.Array) -> pa.Array:
    """The array without the validity bitmap take leaves (its null slots, if any, become
    empty values): laid out as ``from_pylist`` lays out the same images, so a table's
    ``nbytes``, which closes shards, is the same as before."""
    if data.offset or data.buffers()[0] is None:
        return data
    return pa.Array.from_buffers(data.type, len(data), [None, *data.buffers()[1:]])


def _take(images: list[FrameImage]) -> pa.StructArray:
    """The images as one {"bytes", "path"} struct array: one take per row group of frames."""
    if not images:
        return pa.array([], IMAGE)
    pieces: list[pa.Array] = []
    start = 0
    for end in range(1, len(images) + 1):  # runs of images from the same row group
        if end == len(images) or images[end].frames is not images[start].frames:
            indices = pa.array([image.index for image in images[start:end]], pa.int64())
            pieces.append(images[start].frames.take(indices))
            start = end
    data = _without_validity(pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces))
    paths = pa.array([image.path for image in images], pa.string())
    return pa.StructArray.from_arrays([data, paths], fields=list(IMAGE))


class ImagePool:
    """The struct arrays of the last few flushes, by the frames they hold, so the flavours of
    a config (and a config whose rows show the same frames) share one copy of the bytes."""

    def __init__(self) -> None:
        self._arrays: OrderedDict[tuple[str, ...], pa.StructArray] = OrderedDict()

    def array(self, images: list[FrameImage]) -> pa.StructArray:
        key = tuple(image.frame_id for image in images)
        array = self._arrays.get(key)
        if array is None:
            array = _take(images)
            self._arrays[key] = array
            if len(self._arrays) > POOLED_FLUSHES:
                self._arrays.popitem(last=False)
        else:
            self._arrays.move_to_end(key)
        return array

    def column(self, values: list[Any], *, is_list: bool) -> pa.Array:
        """An image column of rows: one FrameImage (or None) per row, or a list of them."""
        if is_list:
            flat = [image for images in values for image in images]
            offsets = [0]
            for images in values:
                offsets.append(offsets[-1] + len(images))
            return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), self.array(flat),
                                            type=pa.list_(IMAGE))
        present = [image for image in values if image is not None]
        array = self.array(present)
        if len(present) == len(values):
            return array
        positions: list[int | None] = []
        taken = 0
        for image in values:
            positions.append(None if image is None else taken)
            taken += image is not None
        indices = pa.array(positions, pa.int64())
        # Null rows as from_pylist makes them: the struct is null, its fields empty, not null.
        fields = [_without_validity(array.field(i).take(indices)) for i in range(len(IMAGE))]
        return pa.StructArray.from_arrays(fields, fields=list(IMAGE), mask=indices.is_null())
