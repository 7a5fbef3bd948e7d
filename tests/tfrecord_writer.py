"""A small TFRecord and ``tf.train.Example`` writer for tests, fixtures and benchmarks.

Written from the protobuf wire format and the TFRecord framing, independently of
``curate.sources.tfrecord``'s reader except for the CRC (whose known-answer test lives in
tests/test_tfrecord.py). Features are ``(kind, values)`` pairs built with :func:`bytes_feature`,
:func:`float_feature` and :func:`int64_feature`; ``packed=False`` writes numeric lists the
unpacked way some writers do.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from curate.sources.tfrecord import masked_crc32c

Feature = tuple[str, Sequence[bytes] | Sequence[float] | Sequence[int]]


def bytes_feature(*values: bytes | str) -> Feature:
    return ("bytes", [v.encode() if isinstance(v, str) else v for v in values])


def float_feature(*values: float) -> Feature:
    return ("float", list(values))


def int64_feature(*values: int) -> Feature:
    return ("int64", list(values))


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 two's complement: ten bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _list_message(kind: str, values: Sequence[bytes] | Sequence[float] | Sequence[int],
                  packed: bool) -> bytes:
    if kind == "bytes":
        return b"".join(field(1, bytes(v)) for v in values)  # type: ignore[arg-type]
    if kind == "float":
        if packed:
            return field(1, struct.pack(f"<{len(values)}f", *values)) if values else b""
        return b"".join(varint(1 << 3 | 5) + struct.pack("<f", v) for v in values)
    if packed:
        return field(1, b"".join(varint(int(v)) for v in values)) if values else b""
    return b"".join(varint(1 << 3 | 0) + varint(int(v)) for v in values)


_KIND_FIELD = {"bytes": 1, "float": 2, "int64": 3}


def encode_example(features: dict[str, Feature], *, packed: bool = True) -> bytes:
    """Serialize a ``tf.train.Example`` (entries in the order given)."""
    entries = b""
    for key, (kind, values) in features.items():
        feature = field(_KIND_FIELD[kind], _list_message(kind, values, packed))
        entries += field(1, field(1, key.encode()) + field(2, feature))
    return field(1, entries)


def frame(data: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc32c(length)) + data
            + struct.pack("<I", masked_crc32c(data)))


def write_tfrecord(path: Path, records: Iterable[bytes], *, compress: bool = False) -> None:
    """Write records to ``path``; ``compress`` writes one GZIP stream (mtime 0: reproducible)."""
    with path.open("wb") as raw:
        handle: BinaryIO = (gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="")  # type: ignore[assignment]
                            if compress else raw)
        for data in records:
            handle.write(frame(data))
        if compress:
            handle.close()
