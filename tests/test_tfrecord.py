"""The TFRecord reader and the tf.train.Example decoder (curate.sources.tfrecord)."""

from __future__ import annotations

import gzip
import os
import struct
import tracemalloc
from pathlib import Path

import pytest
from tfrecord_writer import (
    bytes_feature,
    encode_example,
    field,
    float_feature,
    frame,
    int64_feature,
    varint,
    write_tfrecord,
)

from curate.sources.tfrecord import (
    Example,
    ExampleError,
    Record,
    RecordError,
    crc32c,
    decode_example,
    feature_keys,
    first_record,
    iter_records,
    masked_crc32c,
)


def items(path: Path, **options: int) -> list[Record | RecordError]:
    return list(iter_records(path, **options))  # type: ignore[arg-type]


# -- CRC32C ------------------------------------------------------------------------------------


@pytest.mark.parametrize("library", [True, False], ids=["google-crc32c", "fallback"])
def test_crc32c_known_answers(library: bool) -> None:
    # The CRC-32C check value (RFC 3720 / iSCSI) and the all-zero 32-byte vector.
    assert crc32c(b"123456789", library=library) == 0xE3069283
    assert crc32c(bytes(32), library=library) == 0x8A9136AA
    assert crc32c(b"", library=library) == 0


def test_crc32c_uses_google_crc32c_when_installed() -> None:
    # A declared dependency: the fallback is for platforms without its wheel only.
    import google_crc32c

    data = os.urandom(1000)
    assert crc32c(data) == google_crc32c.value(data)
    assert crc32c(memoryview(data)[10:]) == google_crc32c.value(data[10:])


@pytest.mark.parametrize("size", [64 * 1024, 100_003, (1 << 20) + 7])
def test_crc32c_numpy_lanes_match_the_plain_loop_and_the_library(size: int) -> None:
    data = os.urandom(size)
    fallback = crc32c(data, library=False)
    assert fallback == crc32c(data, library=False, fast=False)
    assert fallback == crc32c(data)


def test_masked_crc_rotates_and_adds_the_tensorflow_constant() -> None:
    crc = crc32c(b"abc")
    assert masked_crc32c(b"abc") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# -- framing -----------------------------------------------------------------------------------


def test_records_come_back_in_order_with_offsets(tmp_path: Path) -> None:
    path = tmp_path / "plain.tfrecord"
    write_tfrecord(path, [b"first", b"", b"third record"])
    got = items(path)
    assert got == [Record(0, 0, b"first"), Record(1, 21, b""), Record(2, 37, b"third record")]


def test_gzip_files_are_read_and_detected_by_magic(tmp_path: Path) -> None:
    path = tmp_path / "android_control-00000-of-00020"  # no suffix, as the real shards
    write_tfrecord(path, [b"a" * 100, b"b"], compress=True)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert [r.data for r in items(path) if isinstance(r, Record)] == [b"a" * 100, b"b"]


def test_data_crc_mismatch_is_an_error_with_offset_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfrecord"
    blob = bytearray(frame(b"one") + frame(b"two") + frame(b"three"))
    blob[len(frame(b"one")) + 12] ^= 0xFF  # flip a data byte of record 1
    path.write_bytes(bytes(blob))
    _, error, third = items(path)
    assert isinstance(error, RecordError)
    assert (error.index, error.offset) == (1, 19)
    assert "data CRC" in error.reason and error.resumed_at == 38
    assert isinstance(third, Record) and third.data == b"three" and third.index == 2


def test_length_crc_mismatch_resyncs_on_the_next_valid_header(tmp_path: Path) -> None:
    path = tmp_path / "bad_length.tfrecord"
    good = frame(b"payload" * 10)
    blob = bytearray(good + good + good)
    blob[len(good)] ^= 0x01  # the second record's length byte
    path.write_bytes(bytes(blob))
    got = items(path)
    assert [type(item).__name__ for item in got] == ["Record", "RecordError", "Record"]
    error = got[1]
    assert isinstance(error, RecordError)
    assert error.offset == len(good) and "length" in error.reason
    assert error.resumed_at == 2 * len(good)
    assert got[2].offset == 2 * len(good)  # type: ignore[union-attr]


def test_length_crc_mismatch_without_a_later_header_stops(tmp_path: Path) -> None:
    path = tmp_path / "bad_tail.tfrecord"
    blob = bytearray(frame(b"ok") + frame(b"lost" * 50))
    blob[len(frame(b"ok")) + 9] ^= 0xFF  # the length CRC itself
    path.write_bytes(bytes(blob))
    _, error = items(path)
    assert isinstance(error, RecordError) and error.stopped
    assert error.offset == len(frame(b"ok")) and "no valid record header" in error.reason


@pytest.mark.parametrize("cut", [5, 12 + 3, 12 + 10 + 2])
def test_truncated_file_stops_with_the_offset_of_the_cut_record(tmp_path: Path,
                                                                 cut: int) -> None:
    path = tmp_path / "cut.tfrecord"
    path.write_bytes(frame(b"whole") + frame(b"0123456789")[:cut])
    whole, error = items(path)
    assert isinstance(whole, Record)
    assert isinstance(error, RecordError) and error.stopped
    assert error.offset == len(frame(b"whole")) and "file ends inside" in error.reason


def test_truncated_gzip_stream_yields_the_records_before_then_stops(tmp_path: Path) -> None:
    path = tmp_path / "cut.gz"
    write_tfrecord(path, [os.urandom(2000) for _ in range(20)], compress=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    got = items(path)
    assert all(isinstance(item, Record) for item in got[:-1]) and len(got) > 2
    last = got[-1]
    assert isinstance(last, RecordError) and last.stopped


def test_corrupt_gzip_stream_is_an_error_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.gz"
    write_tfrecord(path, [b"x" * 5000 for _ in range(10)], compress=True)
    data = bytearray(path.read_bytes())
    for position in range(20, 40):
        data[position] ^= 0x5A
    path.write_bytes(bytes(data))
    got = items(path)
    assert isinstance(got[-1], RecordError) and got[-1].stopped
    assert "GZIP" in got[-1].reason or "CRC" in got[-1].reason


def test_verify_false_skips_the_data_crc(tmp_path: Path) -> None:
    path = tmp_path / "unverified.tfrecord"
    blob = bytearray(frame(b"data"))
    blob[12] ^= 0xFF
    path.write_bytes(bytes(blob))
    (record,) = items(path, verify=False)
    assert isinstance(record, Record)


def test_first_record_sniffs_without_reading_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "sniff"
    write_tfrecord(path, [b"head", b"tail"], compress=True)
    assert first_record(path) == b"head"
    other = tmp_path / "text.json"
    other.write_text('{"not": "a tfrecord"}')
    assert first_record(other) is None
    gz = tmp_path / "other.json.gz"
    gz.write_bytes(gzip.compress(b'{"a": 1}'))
    assert first_record(gz) is None


def test_streaming_keeps_memory_flat(tmp_path: Path) -> None:
    """Peak traced memory while reading 4000 records is that of reading 400.

    The data CRC is off here only because tracemalloc makes the pure-Python CRC loop very
    slow; it allocates nothing that outlives a record either way."""

    def peak(count: int) -> int:
        path = tmp_path / f"stream{count}.tfrecord"
        payload = os.urandom(4096)
        write_tfrecord(path, (payload for _ in range(count)))
        tracemalloc.start()
        read = sum(1 for item in iter_records(path, verify=False)
                   if isinstance(item, Record))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert read == count
        return top

    small, large = peak(400), peak(4000)
    assert large < small * 1.5 + 256 * 1024, (small, large)
    assert large < 4 * 1024 * 1024  # a 1 MiB read buffer and one record, not the 16 MB file


# -- tf.train.Example --------------------------------------------------------------------------


def test_example_decodes_all_three_list_kinds() -> None:
    data = encode_example({
        "goal": bytes_feature("Open the settings"),
        "shots": bytes_feature(b"\x89PNG-a", b"\x89PNG-b"),
        "yx": float_feature(0.25, 0.5),
        "ids": int64_feature(7, -3, 1 << 40),
    })
    example = decode_example(data)
    assert example.bytes_list("shots") == [b"\x89PNG-a", b"\x89PNG-b"]
    assert example.text("goal") == "Open the settings"
    assert example.float_list("yx") == [0.25, 0.5]
    assert example.int64_list("ids") == [7, -3, 1 << 40]
    assert example.keys() == {"goal", "shots", "yx", "ids"}
    assert feature_keys(data) == {"goal", "shots", "yx", "ids"}


def test_example_reads_unpacked_numeric_lists() -> None:
    data = encode_example({"yx": float_feature(0.125, 1.0), "ids": int64_feature(-1, 2)},
                          packed=False)
    example = decode_example(data)
    assert example.float_list("yx") == [0.125, 1.0]
    assert example.int64_list("ids") == [-1, 2]


def test_example_missing_and_empty_features_read_as_empty() -> None:
    example = decode_example(encode_example({"none": int64_feature()}))
    assert example.int64_list("none") == [] and example.bytes_list("absent") == []
    assert example.text("absent") is None and example.int64("none") is None


def test_example_wrong_kind_is_a_clear_error() -> None:
    example = decode_example(encode_example({"ids": int64_feature(1)}))
    with pytest.raises(ExampleError, match="'ids' is a int64_list, expected a bytes_list"):
        example.bytes_list("ids")


def test_example_skips_unknown_fields() -> None:
    # An extra varint field 5 and a fixed64 field 6 inside the Example: ignored.
    data = encode_example({"a": int64_feature(1)}) + varint(5 << 3) + varint(9)
    data += varint(6 << 3 | 1) + struct.pack("<d", 1.5)
    assert decode_example(data).int64_list("a") == [1]


@pytest.mark.parametrize("data, message", [
    (field(1, b"\x0a\x7f"), "claims 127 bytes"),
    (b"\x0a", "varint runs past"),
    (varint(1 << 3 | 3), "unsupported wire type 3"),
    (field(1, field(1, field(2, field(2, field(1, b"\x00\x00\x00"))))),
     "not a multiple of 4"),
])
def test_malformed_example_raises_with_position(data: bytes, message: str) -> None:
    with pytest.raises(ExampleError, match=message):
        decode_example(data)


def test_example_dataclass_is_plain() -> None:
    assert Example().keys() == frozenset()
