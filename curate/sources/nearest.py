"""Which supported format a file no adapter claimed is closest to, and what it lacks.

Runs only on rejected files, and reads little: the first 64 KB of a JSON / JSON lines file
(every ``"key":`` in it, at any depth, so a file cut mid-way is scored too), a Parquet file's
column names, and the names in its folder and the folder above (for formats that are
folders of known files). Each item of a format's declared shapes
(:mod:`curate.sources.catalogue_shapes`, or a plugin's ``expects``) weighs by how rare it is
among the formats, so keys every format has (``id``, ``type``) count little. A format is
close when at least MIN_SHARE of its weight is present; the closest is the one with the best
weighted Jaccard score, where keys of other formats that the file has count against it (a
Claude Code session holds Anthropic message keys, and more of its own). Deterministic:
ties go to the format detection asks first.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from curate.sources.adapters.base import SNIFF_BYTES
from curate.sources.catalogue import BUILTIN, BUILTIN_FORMATS
from curate.sources.catalogue_shapes import SHAPES, Shape

JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
# A key as JSON writes it: a quoted name (not an escaped quote inside a string) then a colon.
_KEY = re.compile(r'(?<!\\)"([^"\\\n]{1,80})"\s*:')
# Below this share of a shape's weight present, or with fewer keys and names in common, a
# format is not called close: one shared key is chance.
MIN_SHARE = 0.4
MIN_MATCHED = 2
_FOLDER_ENTRIES = 500  # names read per folder: enough for a layout, bounded for huge ones
_SHOWN = 6


@dataclass(frozen=True)
class Nearest:
    """The closest format, the names of its shape the file has, and those it lacks."""

    format: str
    score: float
    has: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True)
class Observed:
    keys: frozenset[str]
    files: frozenset[str]  # names in the file's folder and the one above; folders end in /


def _shapes() -> list[tuple[str, int, Shape]]:
    """(format, detection priority, shape) for every format that declares shapes."""
    from curate.sources.catalogue import plugins_installed

    found = [(f.name, f.priority, shape) for f in BUILTIN_FORMATS
             for shape in SHAPES.get(f.name, ())]
    if plugins_installed():
        from curate.sources.adapters import all_adapters, origin

        found += [(a.name, a.priority, shape) for a in all_adapters()
                  if origin(a.name) != BUILTIN for shape in a.expects]
    return found


def _folder_names(folder: Path) -> set[str]:
    try:
        with os.scandir(folder) as entries:
            names = sorted((e.name + "/" if e.is_dir() else e.name) for e in entries)
    except OSError:
        return set()
    return set(names[:_FOLDER_ENTRIES])


def observe(path: Path) -> Observed:
    """The keys and the neighbouring names of a file, cheaply."""
    keys: set[str] = set()
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        try:
            with path.open("rb") as handle:
                head = handle.read(SNIFF_BYTES).decode("utf-8", errors="replace")
        except OSError:
            head = ""
        keys = set(_KEY.findall(head))
    elif suffix == ".parquet":
        keys = _parquet_columns(path)
    files = _folder_names(path.parent) | _folder_names(path.parent.parent)
    return Observed(frozenset(keys), frozenset(files))


def _parquet_columns(path: Path) -> set[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException):
        return set()
    names = set(schema.names)
    for field in schema:  # a struct column's fields, as a reader sees them
        if pa.types.is_struct(field.type):
            names.update(child.name for child in field.type)
    return names


def _present(item: str, observed: Observed, *, is_file: bool) -> bool:
    if not is_file:
        return item in observed.keys
    return any(fnmatch.fnmatchcase(name, item) for name in observed.files)


def nearest(path: Path) -> Nearest | None:
    """The declared format closest to ``path``, or None when none is close."""
    shapes = _shapes()
    observed = observe(path)
    if not observed.keys:
        return None  # names beside a file say nothing about the file itself
    # How many shapes list each item: an item many formats share weighs little.
    spread = Counter(item for _, _, shape in shapes
                     for item in {*shape.keys, *shape.files})
    known = {key for key in observed.keys if key in spread}
    best: tuple[tuple[float, int, int, str], Nearest] | None = None
    for name, priority, shape in shapes:
        items = [(key, False) for key in shape.keys] + [(file, True) for file in shape.files]
        has = tuple(item for item, is_file in items
                    if _present(item, observed, is_file=is_file))
        missing = tuple(item for item, _ in items if item not in has)
        # Weighted Jaccard: keys the file has that other formats expect and this one does
        # not count against it, so a format whose few keys are all common is not nearest
        # to a file full of another format's keys.
        # fsum: correctly rounded whatever the order, and a set's order follows the
        # process's string hashing, so a plain sum could move the score between runs.
        expected = math.fsum(1 / spread[item] for item, _ in items)
        matched = math.fsum(1 / spread[item] for item in has)
        foreign = math.fsum(1 / spread[key] for key in known - set(shape.keys))
        if not expected or matched / expected < MIN_SHARE or len(has) < MIN_MATCHED:
            continue
        score = matched / (expected + foreign)
        rank = (-round(score, 9), -len(has), priority, name)
        if best is None or rank < best[0]:
            best = (rank, Nearest(name, round(score, 3), has, missing))
    return best[1] if best else None


def _listed(items: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def unrecognised_hint(path: Path) -> str:
    """The reject hint of a file no adapter claimed: the nearest format and what it lacks."""
    found = nearest(path)
    if found is None:
        seen = sorted(observe(path).keys)
        keys = f" (keys seen: {_listed(seen)})" if seen else ""
        return (f"no format close{keys}; pass --format NAME to force one, or see "
                "`curate formats`")
    missing = f"; expected also: {_listed(found.missing)}" if found.missing else ""
    return (f"nearest format: {found.format} (has {_listed(found.has)}{missing}); "
            f"pass --format {found.format} to read it as that, or see `curate formats`")
