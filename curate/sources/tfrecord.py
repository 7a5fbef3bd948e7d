"""TFRecord files and ``tf.train.Example`` records, read without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little endian) | uint32 masked CRC32C of those 8 bytes
    length bytes of data          | uint32 masked CRC32C of the data

optionally inside one GZIP stream (how AndroidControl and Android in the Wild ship). Records
are read one at a time from a buffered stream, so a multi-gigabyte file never sits in memory:
only the record being read does.

Traps handled:

* Both CRCs are verified (CRC32C, Castagnoli, masked as TensorFlow masks it). A record whose
  *data* CRC fails has a trustworthy length: it is reported and reading goes on with the next
  record. A record whose *length* CRC fails has no trustworthy length: the reader scans ahead
  (up to ``resync_limit`` bytes) for the next header whose length CRC and data CRC both hold,
  and reports where it resumed; with none found it stops and says so.
* A file cut short (in the header, the data or the CRC) is reported with the offset where the
  last record starts, and reading stops.
* GZIP is detected from the magic number; offsets then count bytes of the *uncompressed*
  stream (the only ones that frame records). A corrupt or truncated GZIP stream stops reading
  with an error item, after every record before the damage.
* ``tf.train.Example`` is decoded from the protobuf wire format by hand: varints,
  length-delimited fields, fixed32 floats; Int64List and FloatList values packed (what
  TensorFlow writes) or unpacked (what other writers may emit); negative int64 values;
  unknown fields skipped. A malformed message raises :class:`ExampleError` with the byte
  position inside the record.

CRC speed: google-crc32c (a declared dependency, the C library Google's storage clients use)
checks at memory speed. Only when it is missing (an unusual platform without its wheel) a
fallback runs: a pure-Python table loop (~14 MB/s) and, for records of 64 KiB and more, many
interleaved CRC lanes in numpy combined with GF(2) shift matrices (~100 MB/s); the same CRC32C
value every way (the tests compare the paths).
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

# -- CRC32C -------------------------------------------------------------------------------------

_POLY: Final = 0x82F63B78  # Castagnoli, reflected
_MASK_DELTA: Final = 0xA282EAD8
_M32: Final = 0xFFFFFFFF


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_NUMPY_MIN_BYTES: Final = 64 * 1024


@functools.cache
def _table() -> list[int]:
    """The fallback's byte table, built on first use (importing this module stays cheap)."""
    return _make_table()


def _crc_update(crc: int, data: bytes | memoryview) -> int:
    """Advance a raw (unconditioned) CRC32C register over ``data``."""
    table = _table()
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# A linear map on 32-bit CRC registers over GF(2), as the images of the 32 unit vectors.
_Matrix = list[int]


def _apply(matrix: _Matrix, value: int) -> int:
    result, bit = 0, 0
    while value:
        if value & 1:
            result ^= matrix[bit]
        value >>= 1
        bit += 1
    return result


def _compose(outer: _Matrix, inner: _Matrix) -> _Matrix:
    return [_apply(outer, column) for column in inner]


@functools.cache
def _zero_powers() -> list[_Matrix]:
    """Element k: the register after 2**k zero bytes, as a matrix (built on first use)."""
    table = _table()
    powers = [[table[(1 << i) & 0xFF] ^ ((1 << i) >> 8) for i in range(32)]]
    for _ in range(63):
        powers.append(_compose(powers[-1], powers[-1]))
    return powers


def _zeros_matrix(count: int) -> _Matrix:
    """The map "feed ``count`` zero bytes" on a raw CRC register."""
    matrix, power = [1 << i for i in range(32)], 0
    while count:
        if count & 1:
            matrix = _compose(_zero_powers()[power], matrix)
        count >>= 1
        power += 1
    return matrix


def _feed_zeros(value: int, count: int) -> int:
    """A register value after ``count`` zero bytes (vector products, no matrix built)."""
    power = 0
    while count:
        if count & 1:
            value = _apply(_zero_powers()[power], value)
        count >>= 1
        power += 1
    return value


@functools.lru_cache(maxsize=256)
def _level_shifts(width: int, levels: int) -> tuple[tuple[int, ...], ...]:
    """Shift matrices for combining lanes of ``width`` bytes, doubling at each level."""
    shifts, matrix = [], _zeros_matrix(width)
    for _ in range(levels):
        shifts.append(tuple(matrix))
        matrix = _compose(matrix, matrix)
    return tuple(shifts)


def _raw_crc_numpy(data: bytes | memoryview) -> int:
    """Raw CRC (register 0 in, no final xor) with lanes of bytes run side by side in numpy.

    Leading zero bytes leave a zero register unchanged, so the data is padded in front to
    ``lanes * width`` bytes, cut into ``lanes`` consecutive slices whose CRCs run in lockstep,
    then combined pairwise: crc(A + B) = shift(crc(A), len(B)) ^ crc(B).
    """
    import numpy as np

    size = len(data)
    lanes = 4096 if size >= 1 << 18 else 1024
    width = -(-size // lanes)
    padded = np.zeros(lanes * width, dtype=np.uint8)
    padded[lanes * width - size:] = np.frombuffer(data, dtype=np.uint8)
    columns = np.ascontiguousarray(padded.reshape(lanes, width).T)
    table = np.array(_table(), dtype=np.uint32)
    registers: Any = np.zeros(lanes, dtype=np.uint32)
    eight, low, one = np.uint32(8), np.uint32(0xFF), np.uint32(1)
    for column in columns:
        registers = table[(registers ^ column) & low] ^ (registers >> eight)
    for shift in _level_shifts(width, lanes.bit_length() - 1):
        left, right = registers[0::2], registers[1::2]
        shifted = np.zeros_like(left)
        for bit in range(32):
            shifted ^= ((left >> np.uint32(bit)) & one) * np.uint32(shift[bit])
        registers = shifted ^ right
    return int(registers[0])


@functools.cache
def _library() -> Any:
    """google_crc32c when installed (its C implementation), else None: the fallback runs."""
    try:
        import google_crc32c
    except ImportError:
        return None
    return google_crc32c


def crc32c(data: bytes | memoryview, *, fast: bool = True, library: bool = True) -> int:
    """The CRC32C (Castagnoli) of ``data``: google-crc32c when installed; ``library=False``
    runs the fallback (numpy lanes for large data), ``fast=False`` its pure-Python loop."""
    crc_library = _library() if library else None
    if crc_library is not None:
        value: int = crc_library.value(bytes(data) if isinstance(data, memoryview) else data)
        return value
    if fast and len(data) >= _NUMPY_MIN_BYTES:
        try:
            raw = _raw_crc_numpy(data)
        except ImportError:  # pragma: no cover - numpy comes with pyarrow and datasets
            pass
        else:
            # The conditioned CRC starts from all ones: by linearity that is the raw CRC
            # plus all-ones fed through len(data) zero bytes.
            return (raw ^ _feed_zeros(_M32, len(data))) ^ _M32
    return _crc_update(_M32, data) ^ _M32


def masked_crc32c(data: bytes | memoryview) -> int:
    """TensorFlow's masked CRC: rotate right by 15 bits and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _M32


# -- record framing -----------------------------------------------------------------------------

HEADER_SIZE: Final = 12
FOOTER_SIZE: Final = 4
DEFAULT_RESYNC_LIMIT: Final = 64 << 20
MAX_RECORD_SIZE: Final = 1 << 32  # 4 GiB: beyond any real record; larger means corruption
_CHUNK: Final = 1 << 20
_GZIP_MAGIC: Final = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Record:
    """One record's data; ``offset`` is where its header starts (uncompressed bytes)."""

    index: int
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RecordError:
    """A record that could not be read.

    ``index`` is the number the record would have had; ``offset`` where its header starts
    (uncompressed bytes); ``resumed_at`` the offset reading went on from, None when reading
    stopped here (nothing after ``offset`` is read)."""

    index: int
    offset: int
    reason: str
    resumed_at: int | None

    @property
    def stopped(self) -> bool:
        return self.resumed_at is None


class _Stream:
    """A forward-only byte stream with a look-ahead buffer and an absolute offset.

    A GZIP error met while filling the buffer is held back until the bytes decoded before it
    are used up, so every record before the damage is still read."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._buffer = bytearray()
        self._broken: Exception | None = None
        self.offset = 0  # absolute offset of the next unread byte

    def _fill(self, size: int) -> None:
        reader = getattr(self._handle, "read1", self._handle.read)
        while len(self._buffer) < size and self._broken is None:
            try:
                chunk = reader(max(_CHUNK, size - len(self._buffer)))
            except (gzip.BadGzipFile, EOFError, zlib.error) as error:
                self._broken = error
                return
            if not chunk:
                return
            self._buffer += chunk

    def _take(self, size: int) -> bytes:
        self._fill(size)
        if len(self._buffer) < size and self._broken is not None:
            raise self._broken
        return bytes(self._buffer[:size])

    def peek(self, size: int) -> bytes:
        return self._take(size)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the stream)."""
        data = self._take(size)
        del self._buffer[:size]
        self.offset += len(data)
        return data

    def skip(self, size: int) -> None:
        self.read(size)


def _open(path: Path) -> IO[bytes]:
    handle = path.open("rb")
    if handle.read(2) == _GZIP_MAGIC:
        handle.seek(0)
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    handle.seek(0)
    return handle


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


@functools.lru_cache(maxsize=4096)
def _length_crc(length_bytes: bytes) -> int:
    # Cached: a resync scan through zero-filled pixels meets the same 8 bytes again and again.
    return masked_crc32c(length_bytes)


def _header_ok(header: bytes) -> bool:
    if len(header) < HEADER_SIZE:
        return False
    crc: int = struct.unpack("<I", header[8:12])[0]
    return _length_crc(bytes(header[:8])) == crc


@dataclass(slots=True)
class _Reader:
    stream: _Stream
    verify: bool
    resync_limit: int
    index: int = 0
    done: bool = False

    def next_item(self) -> Record | RecordError | None:
        start = self.stream.offset
        header = self.stream.peek(HEADER_SIZE)
        if not header:
            self.done = True
            return None
        if len(header) < HEADER_SIZE:
            return self.stop(start, f"file ends inside a record header ({len(header)} of "
                                     f"{HEADER_SIZE} bytes)")
        (length,) = struct.unpack("<Q", header[:8])
        if not _header_ok(header):
            return self._resync(start, "the record length's CRC does not match (the length "
                                       "bytes are corrupt)")
        self.stream.skip(HEADER_SIZE)
        data = self.stream.read(length)
        footer = self.stream.read(FOOTER_SIZE)
        if len(data) < length or len(footer) < FOOTER_SIZE:
            return self.stop(start, f"file ends inside a record: expected {length} data "
                                     f"bytes and a 4-byte CRC, found "
                                     f"{len(data) + len(footer)} bytes")
        index = self.index
        self.index += 1
        if self.verify and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            return RecordError(index, start, f"the data CRC of this {length}-byte record does "
                                             "not match (its bytes are corrupt)",
                               resumed_at=self.stream.offset)
        return Record(index, start, data)

    def stop(self, offset: int, reason: str) -> RecordError:
        self.done = True
        return RecordError(self.index, offset, reason, resumed_at=None)

    def _resync(self, offset: int, reason: str) -> RecordError:
        """Scan for the next header whose length and data CRCs both hold."""
        index = self.index
        self.index += 1
        found = self._scan()
        if found is None:
            self.done = True
            return RecordError(index, offset, f"{reason}; no valid record header follows "
                                              f"within {self.resync_limit} bytes",
                               resumed_at=None)
        return RecordError(index, offset, reason, resumed_at=found)

    def _scan(self) -> int | None:
        self.stream.skip(1)
        scanned = 0
        while scanned < self.resync_limit:
            window = self.stream.peek(_CHUNK + HEADER_SIZE)
            if len(window) < HEADER_SIZE:
                return None
            # Records are under 4 GiB, so the length's high 4 bytes are zero: a cheap filter.
            position = window.find(b"\0\0\0\0", 4)
            while position != -1 and position + 8 <= len(window):
                candidate = position - 4
                if self._candidate_ok(window, candidate):
                    self.stream.skip(candidate)
                    return self.stream.offset
                position = window.find(b"\0\0\0\0", position + 1)
            step = max(1, len(window) - HEADER_SIZE)
            self.stream.skip(step)
            scanned += step
        return None

    def _candidate_ok(self, window: bytes, candidate: int) -> bool:
        header = window[candidate:candidate + HEADER_SIZE]
        if not _header_ok(header):
            return False
        (length,) = struct.unpack("<Q", header[:8])
        if length > MAX_RECORD_SIZE:
            return False
        end = candidate + HEADER_SIZE + length + FOOTER_SIZE
        record = self.stream.peek(end) if end > len(window) else window
        if len(record) < end:
            return False
        data = record[candidate + HEADER_SIZE:end - FOOTER_SIZE]
        crc: int = struct.unpack("<I", record[end - FOOTER_SIZE:end])[0]
        return masked_crc32c(data) == crc


def iter_records(path: Path, *, verify: bool = True,
                 resync_limit: int = DEFAULT_RESYNC_LIMIT) -> Iterator[Record | RecordError]:
    """Yield each record of a TFRecord file (GZIP or not), or an error item in its place.

    Errors never raise: a :class:`RecordError` with ``resumed_at`` None is the last item.
    ``verify=False`` skips the data CRC (the length CRC is always checked: framing needs it).
    An unreadable file (permissions) raises OSError.
    """
    with _open(path) as handle:
        reader = _Reader(_Stream(handle), verify, resync_limit)
        while not reader.done:
            try:
                item = reader.next_item()
            except (gzip.BadGzipFile, EOFError, zlib.error) as error:
                item = reader.stop(reader.stream.offset,
                                   f"the GZIP stream is corrupt or cut short ({error}); "
                                   "records after this point cannot be read")
            if item is None:
                return
            yield item


def first_record(path: Path, *, max_size: int = 256 << 20) -> bytes | None:
    """The first record's data if the file starts with a valid TFRecord header, else None.

    Cheap on non-TFRecord files (reads 12 bytes, or a few KiB through GZIP); the data CRC is
    not checked (detection only). Records over ``max_size`` bytes are not read."""
    try:
        with _open(path) as handle:
            header = handle.read(HEADER_SIZE)
            if not _header_ok(header):
                return None
            (length,) = struct.unpack("<Q", header[:8])
            if length > max_size:
                return None
            data = handle.read(length)
            return data if len(data) == length else None
    except (OSError, EOFError, zlib.error):
        return None


# -- tf.train.Example ---------------------------------------------------------------------------

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


class ExampleError(ValueError):
    """A record that is not a well-formed ``tf.train.Example``; names the byte position."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ExampleError(f"varint runs past the end of the message at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ExampleError(f"varint longer than 10 bytes ending at byte {pos}")


def _fields(buf: bytes, start: int = 0, end: int | None = None
            ) -> Iterator[tuple[int, int, int | bytes, int]]:
    """(field number, wire type, value, position) for each field of one message.

    Length-delimited values come back as bytes; varints and fixed values as ints."""
    pos, stop = start, len(buf) if end is None else end
    while pos < stop:
        at = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _LENGTH:
            size, pos = _varint(buf, pos)
            if pos + size > stop:
                raise ExampleError(f"field {number} at byte {at} claims {size} bytes, only "
                                   f"{stop - pos} remain")
            value, pos = buf[pos:pos + size], pos + size
        elif wire in (_FIXED32, _FIXED64):
            size = 4 if wire == _FIXED32 else 8
            if pos + size > stop:
                raise ExampleError(f"fixed-size field {number} at byte {at} is cut short")
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        else:
            raise ExampleError(f"unsupported wire type {wire} for field {number} at byte {at} "
                               "(groups are not used by tf.train.Example)")
        if number == 0:
            raise ExampleError(f"field number 0 at byte {at}: not a protobuf message")
        yield number, wire, value, at


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _int64_list(buf: bytes) -> list[int]:
    values: list[int] = []
    for number, wire, value, _ in _fields(buf):
        if number != 1:
            continue
        if wire == _VARINT:
            assert isinstance(value, int)
            values.append(_signed64(value))
        elif wire == _LENGTH:
            assert isinstance(value, bytes)
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                values.append(_signed64(item))
    return values


def _float_list(buf: bytes) -> list[float]:
    values: list[float] = []
    for number, wire, value, at in _fields(buf):
        if number != 1:
            continue
        if wire == _FIXED32:
            assert isinstance(value, int)
            values.append(struct.unpack("<f", value.to_bytes(4, "little"))[0])
        elif wire == _LENGTH:
            assert isinstance(value, bytes)
            if len(value) % 4:
                raise ExampleError(f"packed float list at byte {at} has {len(value)} bytes, "
                                   "not a multiple of 4")
            values.extend(struct.unpack(f"<{len(value) // 4}f", value))
    return values


def _bytes_list(buf: bytes) -> list[bytes]:
    return [value for number, wire, value, _ in _fields(buf)
            if number == 1 and wire == _LENGTH and isinstance(value, bytes)]


_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3  # Feature's oneof field numbers
_KIND_NAMES: Final = {_BYTES_LIST: "bytes_list", _FLOAT_LIST: "float_list",
                      _INT64_LIST: "int64_list"}


def _map_entries(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(key, Feature bytes) of each entry of Example.features.feature."""
    for number, wire, features, _ in _fields(data):
        if number != 1 or wire != _LENGTH or not isinstance(features, bytes):
            continue
        for entry_number, entry_wire, entry, at in _fields(features):
            if entry_number != 1 or entry_wire != _LENGTH or not isinstance(entry, bytes):
                continue
            key, value = "", b""
            for part, part_wire, content, _ in _fields(entry):
                if part == 1 and part_wire == _LENGTH and isinstance(content, bytes):
                    try:
                        key = content.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ExampleError(f"feature name at byte {at} is not UTF-8") from None
                elif part == 2 and part_wire == _LENGTH and isinstance(content, bytes):
                    value = content
            yield key, value


def _feature_kind(buf: bytes) -> tuple[int, bytes]:
    """The oneof field set in a Feature message and its list message (0: none set)."""
    kind, value = 0, b""
    for number, wire, content, _ in _fields(buf):
        if number in _KIND_NAMES and wire == _LENGTH and isinstance(content, bytes):
            kind, value = number, content
    return kind, value


@dataclass(frozen=True, slots=True)
class Example:
    """A decoded ``tf.train.Example``: one dict per list kind, feature name -> values.

    An absent feature and a feature with no kind set both read as an empty list; asking for
    the wrong kind raises ExampleError naming the kind it has."""

    bytes_features: dict[str, list[bytes]] = field(default_factory=dict)
    float_features: dict[str, list[float]] = field(default_factory=dict)
    int64_features: dict[str, list[int]] = field(default_factory=dict)

    def kind(self, key: str) -> str | None:
        for name, table in (("bytes_list", self.bytes_features),
                            ("float_list", self.float_features),
                            ("int64_list", self.int64_features)):
            if key in table:
                return name
        return None

    def _check(self, key: str, expected: str) -> None:
        actual = self.kind(key)
        if actual is not None and actual != expected:
            raise ExampleError(f"feature {key!r} is a {actual}, expected a {expected}")

    def bytes_list(self, key: str) -> list[bytes]:
        self._check(key, "bytes_list")
        return self.bytes_features.get(key, [])

    def float_list(self, key: str) -> list[float]:
        self._check(key, "float_list")
        return self.float_features.get(key, [])

    def int64_list(self, key: str) -> list[int]:
        self._check(key, "int64_list")
        return self.int64_features.get(key, [])

    def text(self, key: str) -> str | None:
        """The first bytes value as UTF-8 text (invalid bytes replaced), or None."""
        values = self.bytes_list(key)
        return values[0].decode("utf-8", errors="replace") if values else None

    def int64(self, key: str) -> int | None:
        values = self.int64_list(key)
        return values[0] if values else None

    def keys(self) -> frozenset[str]:
        return frozenset((*self.bytes_features, *self.float_features, *self.int64_features))


def decode_example(data: bytes) -> Example:
    """Decode a serialized ``tf.train.Example``; raises ExampleError when malformed."""
    example = Example()
    for key, value in _map_entries(data):
        kind, content = _feature_kind(value)
        if kind == _BYTES_LIST:
            example.bytes_features[key] = _bytes_list(content)
        elif kind == _FLOAT_LIST:
            example.float_features[key] = _float_list(content)
        elif kind == _INT64_LIST:
            example.int64_features[key] = _int64_list(content)
        else:
            example.bytes_features[key] = []  # a Feature with no list set: empty
    return example


def feature_keys(data: bytes) -> frozenset[str]:
    """The feature names of a serialized Example without decoding the values."""
    return frozenset(key for key, _ in _map_entries(data))
