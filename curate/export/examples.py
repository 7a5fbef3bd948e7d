"""One example row of each config for the card, shown as ``datasets`` loads it: the first row
of the config's first shard, its images decoded to PIL images as ``datasets.Image`` does
(nested structs stay dicts), each value shortened to fit a line."""

from __future__ import annotations

import json
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curate.export.columns import IMAGE_COLUMNS

MAX_VALUE_CHARS = 160
MAX_LIST_ITEMS = 3


def example_row(files: list[Path]) -> list[tuple[str, str]]:
    """``(column, shown value)`` pairs of the first row of the first of ``files``."""
    parquet = pq.ParquetFile(files[0])
    batch = next(parquet.iter_batches(batch_size=1), None)
    if batch is None or batch.num_rows == 0:
        return []
    return [(name, _shown(_decoded(name, value)))
            for name, value in batch.to_pylist()[0].items()]


def _decoded(column: str, value: Any) -> Any:
    """A value as `datasets` loads it: the image columns' {bytes, path} as PIL images, the
    rest as stored (decoded here, since importing `datasets` would cost a small export more
    than the rest of its card)."""
    if column not in IMAGE_COLUMNS or value is None:
        return value
    if isinstance(value, list):
        return [_decoded(column, item) for item in value]
    return _image(value["bytes"])


def _image(data: bytes) -> Any:
    """The PIL image `datasets.Image` decodes from these bytes: loaded, and turned upright
    when the file carries an EXIF orientation."""
    import PIL.Image
    import PIL.ImageOps
    from PIL.ExifTags import Base

    opened = PIL.Image.open(BytesIO(data))
    opened.load()
    image: PIL.Image.Image = opened
    if opened.getexif().get(Base.Orientation) is not None:
        image = PIL.ImageOps.exif_transpose(opened)
    return image


def example_rows(files: Mapping[tuple[str, str, str], list[Path]],
                 names: list[str]) -> list[dict[str, Any]]:
    """For each config name (in the card's order), its example row."""
    from curate.export.features import config_name

    first_files: dict[str, list[Path]] = {}
    for (config, flavour, split), paths in sorted(files.items()):
        if paths:
            name = config_name(config, flavour)
            # train first when there is one: the split a reader expects to see.
            if name not in first_files or split == "train":
                first_files[name] = paths
    return [{"name": name, "fields": example_row(first_files[name])}
            for name in names if name in first_files]


def _shown(value: Any) -> str:
    text = json.dumps(_plain(value), ensure_ascii=False, sort_keys=False, default=str)
    text = text.replace("```", "`\u200b``")  # never close the card's code block early
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _plain(value: Any) -> Any:
    """JSON-able form: images as a short description, long lists cut with a count."""
    if hasattr(value, "size") and hasattr(value, "mode") and hasattr(value, "format"):
        width, height = value.size
        return f"<image {value.format or 'decoded'} {width}x{height}>"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        shown = [_plain(v) for v in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            shown.append(f"... {len(value) - MAX_LIST_ITEMS} more")
        return shown
    return value
