"""Screenshot bytes are identified, sized and validated without decoding pixels."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from curate.errors import SourceError
from curate.store.frames import content_id, encode_array_png, probe_frame


def encoded(size: tuple[int, int], image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 2000), height=st.integers(1, 2000),
       image_format=st.sampled_from(["PNG", "JPEG", "WEBP", "GIF", "JPEG-progressive"]))
def test_header_sizes_agree_with_pil(width: int, height: int, image_format: str) -> None:
    options = {"progressive": True} if image_format == "JPEG-progressive" else {}
    data = encoded((width, height), image_format.split("-")[0], **options)
    frame = probe_frame(data)
    assert (frame.width, frame.height) == (width, height)
    assert frame.frame_id == content_id(data)
    assert frame.data is data


def test_format_comes_from_the_bytes_not_the_name() -> None:
    assert probe_frame(encoded((8, 8), "JPEG")).format == "jpeg"
    assert probe_frame(encoded((8, 8), "PNG")).format == "png"


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"version https://git-lfs.github.com/spec/v1\n", "not a PNG"),
    (encoded((50, 50), "PNG")[:-20], "truncated"),
    (encoded((50, 50), "JPEG")[:-10], "truncated"),
])
def test_unusable_bytes_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        probe_frame(data)


def test_pixel_arrays_encode_to_the_same_bytes_every_time() -> None:
    import numpy as np

    pixels = np.arange(48 * 32 * 3, dtype=np.uint8).reshape(32, 48, 3)
    assert encode_array_png(pixels) == encode_array_png(pixels.copy())
    assert probe_frame(encode_array_png(pixels)).width == 48
    with pytest.raises(SourceError, match="array"):
        encode_array_png("not an image")


def test_binary_views_are_the_values_without_a_copy() -> None:
    import pyarrow as pa

    from curate.store.frames import binary_views

    for kind in (pa.binary(), pa.large_binary()):
        values = pa.array([b"\xff\xd8one", None, b"", b"three"], kind)
        for array in (values, values.slice(1)):  # a slice has an offset into the buffers
            views = binary_views(array)
            assert [None if v is None else bytes(v) for v in views] == array.to_pylist()
            data = array.buffers()[2]
            for view in views:
                if view:  # points into the array's own buffer
                    address = pa.py_buffer(view).address
                    assert data.address <= address < data.address + data.size
        assert binary_views(pa.array([None, b""], kind)) == [None, memoryview(b"")]
