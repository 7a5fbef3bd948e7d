"""Helpers the mobile dataset adapters share (AndroidControl, AITW, GUI-Odyssey).

Not an adapter (the leading underscore keeps it out of registration): reading TFRecord
files into decoded Examples with every bad record turned into a reject, swipe directions from
a gesture's primary axis, and the annotated box a tap falls in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from curate.actions import Target
from curate.errors import SourceError
from curate.sources.adapters.base import SourceUnit, UnitBuilder
from curate.sources.tfrecord import (
    Example,
    ExampleError,
    RecordError,
    decode_example,
    feature_keys,
    first_record,
    is_gzip,
    iter_records,
)


@dataclass(frozen=True, slots=True)
class ExampleItem:
    """One TFRecord record decoded as an Example (None when it could not be read)."""

    index: int
    offset: int
    example: Example | None


def has_features(path: Path, required: frozenset[str]) -> bool:
    """Cheap detection: ``path`` is a TFRecord file whose first Example has these features."""
    if not path.is_file():
        return False
    data = first_record(path)
    if data is None:
        return False
    try:
        return required <= feature_keys(data)
    except ExampleError:
        return False


def record_position(index: int, offset: int, gzip: bool) -> str:
    where = "uncompressed byte" if gzip else "byte"
    return f"record {index} ({where} {offset})"


def iter_examples(unit: SourceUnit, out: UnitBuilder, *, what: str
                  ) -> Iterator[ExampleItem]:
    """Decode every record of the unit's TFRecord file; bad ones become rejects.

    ``what`` names what one record holds ("episode", "step") for the reject level and text.
    An unreadable record still yields an item (example None) so a caller can mark the hole.
    """
    gzip = _gzip(unit)
    level = "episode" if what == "episode" else "step"
    seen = 0
    try:
        for item in iter_records(unit.path):
            seen += 1
            position = record_position(item.index, item.offset, gzip)
            if isinstance(item, RecordError) and seen == 1 and item.stopped:
                raise SourceError(f"not a readable TFRecord file: {item.reason}",
                                  file=unit.source_path, position=position,
                                  hint="check that the file is one of the dataset's TFRecord "
                                       "shards (GZIP or plain) and that it is complete")
            if isinstance(item, RecordError):
                _reject_record_error(unit, out, item, position, level=level, what=what)
                yield ExampleItem(item.index, item.offset, None)
                continue
            try:
                example = decode_example(item.data)
            except ExampleError as error:
                out.reject(file=unit.source_path, position=position, level=level,
                           reason=f"record is not a tf.train.Example: {error}; this {what} "
                                  "is left out",
                           hint="the file is corrupt or not this dataset's TFRecord; "
                                "re-download the shard")
                yield ExampleItem(item.index, item.offset, None)
                continue
            yield ExampleItem(item.index, item.offset, example)
    except OSError as error:
        raise SourceError(f"cannot read the TFRecord file: {error.strerror or error}",
                          file=unit.source_path, hint="check the file's permissions") from None
    if not seen:
        raise SourceError("the TFRecord file holds no record (it is empty)",
                          file=unit.source_path,
                          hint="the download or copy was cut short; fetch the shard again")


def _gzip(unit: SourceUnit) -> bool:
    try:
        return is_gzip(unit.path)
    except OSError as error:
        raise SourceError(f"cannot open the TFRecord file: {error.strerror or error}",
                          file=unit.source_path, hint="check the file's permissions") from None


def _reject_record_error(unit: SourceUnit, out: UnitBuilder, error: RecordError,
                         position: str, *, level: str, what: str) -> None:
    if error.stopped:
        reason = (f"{error.reason}; reading stopped here: every {what} from this record to "
                  "the end of the file is left out")
        hint = ("the file is truncated or damaged; re-download the shard (records before "
                "this point are kept)")
    else:
        reason = (f"{error.reason}; this record is left out and reading resumed at byte "
                  f"{error.resumed_at}")
        hint = "the record is damaged; re-download the shard to recover it"
    out.reject(file=unit.source_path, position=position, level=level, reason=reason, hint=hint)


def swipe_direction(dx: float, dy: float) -> str:
    """Direction of a finger movement along its primary axis (ties count as vertical)."""
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


@dataclass(frozen=True, slots=True)
class Box:
    """An annotated element, edges normalised to [0, 1] of the frame."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str | None = None
    role: str | None = None

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def target(self) -> Target:
        return Target(text=self.text or None, role=self.role or None, x0=round(self.x0, 4),
                      y0=round(self.y0, 4), x1=round(self.x1, 4), y1=round(self.y1, 4))


def box_at(x: float, y: float, boxes: Iterable[Box]) -> Box | None:
    """The smallest box containing the point (edges included), or None."""
    inside = [box for box in boxes if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1]
    return min(inside, key=lambda box: box.area) if inside else None
