"""Screenshot bytes: identify, validate and hash them without decoding pixels.

Ingest never decodes or re-encodes an image. It sniffs the format from the magic number,
reads the size from the header (PIL opens lazily), checks that the file is complete (PNG ends
with an IEND chunk, JPEG with an EOI marker) and hashes the bytes. Pixel decoding happens once
per unique frame, later, where pixels are needed (labels).
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from curate.errors import SourceError

FRAME_ID_HEX = 32
# The largest screenshot ingest accepts, checked on the header before anything is decoded:
# an 8K screen (7680x4320) is 33 MP; a decompression bomb claims billions. Below Pillow's own
# MAX_IMAGE_PIXELS (89 MP), so an accepted frame never trips Pillow's guard in `label` later.
MAX_FRAME_PIXELS = 64_000_000

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


# Encoded image bytes: Python bytes, or a view into an Arrow buffer (a Parquet column read
# by a streaming adapter), which is hashed and written without ever being copied out.
ImageBytes = bytes | memoryview


@dataclass(frozen=True, slots=True)
class Frame:
    """A validated screenshot: content hash, encoding, size and the bytes as recorded."""

    frame_id: str
    format: str
    width: int
    height: int
    data: ImageBytes

    def to_row(self) -> dict[str, object]:
        return {
            "frame_id": self.frame_id,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "byte_size": len(self.data),
            "bytes": self.data,
        }


def binary_views(values: Any) -> list[memoryview | None]:
    """The values of an Arrow binary (or large_binary) array as memoryviews of its data
    buffer, None for nulls: zero-copy (a scalar's ``as_buffer`` copies the value). Each view
    keeps the array's buffer alive."""
    import numpy as np
    import pyarrow as pa

    count = len(values)
    validity, offsets_buffer, data = values.buffers()[:3]
    if data is None or count == 0:
        return [None if not valid else memoryview(b"") for valid in
                values.is_valid().to_pylist()]
    dtype = np.int64 if pa.types.is_large_binary(values.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=dtype, count=count + 1,
                            offset=values.offset * np.dtype(dtype).itemsize).tolist()
    whole = memoryview(data).cast("B")
    valid = values.is_valid().to_pylist() if validity is not None else [True] * count
    return [whole[offsets[i]:offsets[i + 1]] if valid[i] else None for i in range(count)]


def content_id(data: ImageBytes) -> str:
    """The frame id: a prefix of the sha256 of the encoded bytes."""
    return hashlib.sha256(data).hexdigest()[:FRAME_ID_HEX]


def sniff_format(data: ImageBytes) -> str | None:
    """Image encoding from the magic number, or None when it is not an image we accept."""
    head = bytes(data[:12])
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _is_complete(data: ImageBytes, image_format: str) -> bool:
    if image_format == "png":
        # The IEND chunk: length 0, type IEND, CRC; only trailing garbage may follow it.
        return b"IEND\xaeB`\x82" in bytes(data[-64:])
    if image_format == "jpeg":
        return b"\xff\xd9" in bytes(data[-32:])
    return True


PNG_COMPRESS_LEVEL = 6


def encode_array_png(value: object) -> bytes:
    """Encode a pixel array (HxW or HxWx3/4 uint8) that has no recorded encoding as PNG.

    No metadata and a fixed compression level: the same pixels always give the same bytes,
    hence the same frame id. Raises SourceError when the value is not an image array.
    """
    try:
        image = Image.fromarray(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError) as error:
        raise SourceError(f"screenshot array unusable: {error}; expected an HxWx3 uint8 array",
                          hint="the step is kept without this screenshot") from None
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def _png_size(data: ImageBytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk (always the first chunk)."""
    if len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None


def _jpeg_size(data: ImageBytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's first start-of-frame marker."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2
            continue
        length = int.from_bytes(data[position + 2:position + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[position + 5:position + 7], "big")
            width = int.from_bytes(data[position + 7:position + 9], "big")
            return width, height
        position += 2 + length
    return None


def _header_size(data: ImageBytes, image_format: str) -> tuple[int, int]:
    """The image's size read from its header: by hand for PNG and JPEG (the common, hot
    case), through PIL for anything else or anything odd."""
    size = _png_size(data) if image_format == "png" else (
        _jpeg_size(data) if image_format == "jpeg" else None)
    if size is not None:
        return size
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            return int(width), int(height)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise SourceError(f"image header unreadable: {error}", hint="restore the file") from None


def probe_frame(data: ImageBytes, *, digest: str | None = None) -> Frame:
    """Validate screenshot bytes and describe them; raises SourceError when unusable.

    ``digest`` is the sha256 hex digest of ``data`` when the caller has it already."""
    if not data:
        raise SourceError("image file is empty", hint="re-export the screenshot")
    image_format = sniff_format(data)
    if image_format is None:
        raise SourceError(
            f"not a PNG, JPEG, WebP or GIF image (starts with {bytes(data[:8])!r})",
            hint="check that the file is a screenshot and not a placeholder or LFS pointer",
        )
    if not _is_complete(data, image_format):
        raise SourceError(
            f"{image_format.upper()} image is truncated (no end marker)",
            hint="the file was cut short while copying or recording; restore it from the source",
        )
    width, height = _header_size(data, image_format)
    if width <= 0 or height <= 0:
        raise SourceError(f"image has no pixels ({width}x{height})", hint="restore the file")
    if width * height > MAX_FRAME_PIXELS:
        raise SourceError(
            f"image header claims {width}x{height} pixels ({width * height / 1e6:.0f} MP), more "
            f"than the {MAX_FRAME_PIXELS / 1e6:.0f} MP a screenshot can have "
            "(a decompression bomb or a corrupt header); it was not decoded",
            hint="the step is kept without this screenshot; check the file in an image viewer")
    frame_id = digest[:FRAME_ID_HEX] if digest else content_id(data)
    return Frame(frame_id, image_format, width, height, data)
