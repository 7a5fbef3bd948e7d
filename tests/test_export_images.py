"""Image columns taken from the frames in Arrow (curate.export.images) are the columns
``from_pylist`` made from Python bytes: same values, same layout (``nbytes`` closes shards),
same Parquet bytes; and the flavours of a flush share one copy of the bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.export.features import arrow_schema
from curate.export.images import FrameImage, ImagePool
from curate.export.writer import ShardWriter


def _frames() -> list[FrameImage]:
    # Two row groups of frames, as the frame reader holds them.
    groups = [pa.array([bytes([i]) * (50 + i) for i in range(g, g + 4)], pa.binary())
              for g in (0, 4)]
    return [FrameImage(f"f{g * 4 + i}", f"f{g * 4 + i}.png", groups[g], i)
            for g in range(2) for i in range(4)]


def _as_bytes(value: Any) -> Any:
    if isinstance(value, FrameImage):
        return {"bytes": value.read(), "path": value.path}
    if isinstance(value, list):
        return [_as_bytes(item) for item in value]
    return value


def _rows(frames: list[FrameImage]) -> list[dict[str, Any]]:
    # Images from both row groups, out of order, one row without a current image, one with
    # no history; the value columns as a plain stage1 row has them (unset ones null).
    layout = [(5, [0, 1]), (None, [2]), (2, []), (7, [6, 3, 4]), (0, [7])]
    return [{"id": str(index), "mask": [True], "image": None if now is None else frames[now],
             "history_images": [frames[i] for i in history], "future_images": []}
            for index, (now, history) in enumerate(layout)]


def test_image_columns_equal_from_pylist_in_values_layout_and_parquet_bytes(
        tmp_path: Path) -> None:
    rows = _rows(_frames())
    schema = arrow_schema("stage1", "plain")
    writer = ShardWriter(tmp_path / "new", "train", schema, 1 << 30)
    expected = pa.Table.from_pylist([{k: _as_bytes(v) for k, v in row.items()} for row in rows],
                                    schema=schema)
    table = writer._table(rows)
    assert table.equals(expected)
    assert table.nbytes == expected.nbytes
    assert [table[c].nbytes for c in schema.names] == [expected[c].nbytes for c in schema.names]
    for row in rows:
        writer.add(row)
    (written,) = writer.close()
    pq.write_table(expected, tmp_path / "old.parquet", compression="zstd",
                   write_page_index=True, write_statistics=False, row_group_size=100)
    assert written.read_bytes() == (tmp_path / "old.parquet").read_bytes()


def test_rows_without_any_image_give_the_same_null_column() -> None:
    rows = [{"id": "a", "image": None, "history_images": [], "future_images": []}] * 3
    schema = arrow_schema("stage1", "plain")
    expected = pa.Table.from_pylist(rows, schema=schema)
    table = ShardWriter(Path("unused"), "train", schema, 1 << 30)._table(rows)
    assert table.equals(expected) and table.nbytes == expected.nbytes


def test_the_flavours_of_a_flush_share_one_copy_of_the_bytes() -> None:
    frames = _frames()
    current = [frames[5], frames[2], frames[0]]
    pool = ImagePool()
    plain = pool.column(current, is_list=False)
    flavour = pool.column([[image] for image in current], is_list=True)
    assert plain.field("bytes").to_pylist() == [image.read() for image in current]
    shared = flavour.values.field("bytes").buffers()[2]
    assert shared.address == plain.field("bytes").buffers()[2].address
    other = pool.column([[frames[1]]], is_list=True)  # other frames: taken anew
    assert other.values.field("bytes").buffers()[2].address != shared.address
