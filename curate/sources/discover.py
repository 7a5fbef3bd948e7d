"""Find the source units below the SRC arguments and the adapter for each.

Folders are asked first (an OSWorld run, an AgentLab experiment, a native episode are
folders); a claimed folder is one unit and is not descended into. Otherwise each file is
asked, then the sub-folders, in name order. Hidden files and folders are skipped. Files that
look like data but that no adapter claims become units with no adapter (reported as rejects);
documents and loose images are not, nor files an adapter knows as part of its format that hold
no episode (``Adapter.auxiliary``: OSWorld task configs, ToolBench query lists, ...).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from curate.sources import adapters
from curate.sources.adapters.base import Adapter, SourceUnit

DATA_SUFFIXES = frozenset({
    ".json", ".jsonl", ".ndjson", ".yaml", ".yml", ".pkl", ".pickle", ".gz", ".zip", ".mp4",
    ".mkv", ".webm", ".tfrecord", ".sql", ".db", ".sqlite", ".parquet", ".csv",
})


SHARD_NAME = re.compile(r"-\d{5}-of-\d{5}$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedUnit:
    unit: SourceUnit
    adapter: str | None
    # Why the unit cannot be read at all (an unreadable folder, a symlink loop, a file name
    # that is not UTF-8): it becomes one reject with this reason and nothing is opened.
    problem: str | None = None


def walk_order(relative: str, *, is_folder: bool) -> tuple[tuple[int, str], ...]:
    """Sort key giving the order discovery walks a tree in: in each folder its files by
    name, then its sub-folders by name (for names listed rather than walked, as on a Hub)."""
    parts = relative.split("/") if relative else []
    return tuple((1, part) for part in parts[:-1]) + tuple(
        (1 if is_folder else 0, part) for part in parts[-1:])


def _source_path(path: Path, root_parent: Path) -> str:
    return path.relative_to(root_parent).as_posix()


def _printable(name: str) -> str:
    """A name as the store can hold it: bytes that are not UTF-8 shown as \\xNN escapes."""
    return os.fsencode(name).decode("utf-8", errors="backslashreplace")


def _problem(path: Path, root_parent: Path, reason: str) -> PlannedUnit:
    return PlannedUnit(SourceUnit(path, _printable(_source_path(path, root_parent))), None,
                       reason)


def discover(sources: list[Path], *, forced: str | None = None) -> Iterator[PlannedUnit]:
    """Yield every unit under ``sources`` in a deterministic order."""
    candidates = [adapters.get(forced)] if forced else adapters.all_adapters()
    seen: set[Path] = set()
    for source in sources:
        root = source.resolve()
        if not root.exists():
            raise FileNotFoundError(f"{source} does not exist")
        found = False
        for planned in _walk(root, root.parent, candidates):
            if planned.unit.path in seen:
                continue
            seen.add(planned.unit.path)
            found = found or planned.adapter is not None
            yield planned
        if forced and not found and root not in seen:
            # --format forces the adapter onto the argument itself, which then explains
            # in its own words why it cannot read it.
            yield PlannedUnit(SourceUnit(root, _source_path(root, root.parent)), forced)


def _kind(entry: os.DirEntry[str]) -> str:
    """file, folder, unreachable (a symlink that leads nowhere or to itself) or other."""
    try:
        if entry.is_file():
            return "file"
        if entry.is_dir():
            return "folder"
        return "unreachable" if entry.is_symlink() else "other"
    except OSError:
        return "unreachable"


def _claimer(path: Path, candidates: list[Adapter]) -> str | None:
    for adapter in candidates:
        if adapter.claims(path):
            return adapter.name
    return None


def _auxiliary(path: Path, candidates: list[Adapter]) -> str | None:
    """What an adapter says an unclaimed file is (a task config, a query list), or None."""
    for adapter in candidates:
        what = adapter.auxiliary(path)
        if what is not None:
            log.info("%s: %s (%s); not an episode, not read", path, what, adapter.name)
            return what
    return None


def _without_companions(units: list[PlannedUnit]) -> list[PlannedUnit]:
    """Drop unclaimed files that a claimed unit beside them lists among its input files
    (a Langfuse trace's expected-ChatML companion): they are part of that unit, not data
    no adapter knows. Asked only when some file is unclaimed, so a folder of recognised
    files costs nothing more."""
    if all(u.adapter is not None or u.problem is not None for u in units):
        return units
    companions = {path for u in units if u.adapter is not None
                  for path in adapters.get(u.adapter).input_files(u.unit) if path != u.unit.path}
    return [u for u in units
            if not (u.adapter is None and u.problem is None and u.unit.path in companions)]


def _walk(path: Path, root_parent: Path, candidates: list[Adapter],
          above: frozenset[tuple[int, int]] = frozenset()) -> Iterator[PlannedUnit]:
    source_path = _source_path(path, root_parent)
    if _printable(source_path) != source_path:
        yield _problem(path, root_parent, "the file name is not valid UTF-8, so the store "
                                          "cannot name it; rename it (e.g. convmv -t utf-8)")
        return
    unit = SourceUnit(path, source_path)
    try:
        claimed = _claimer(path, candidates)
        if claimed is None and path.is_dir():
            identity = (path.stat().st_dev, path.stat().st_ino)
            if identity in above:
                yield _problem(path, root_parent, "symlink loop: this folder is one of its "
                                                  "own parents; it is not read again")
                return
            entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as error:
        yield _problem(path, root_parent, f"cannot read: {error.strerror or error}")
        return
    if claimed is not None:
        yield PlannedUnit(unit, claimed)
        return
    if path.is_file():
        # TFRecord shards have no suffix (name-00000-of-00010): report those too.
        if (path.suffix.lower() in DATA_SUFFIXES or SHARD_NAME.search(path.name)) and (
                _auxiliary(path, candidates) is None):
            yield PlannedUnit(unit, None)
        return
    kinds = [(Path(e.path), _kind(e)) for e in entries if not e.name.startswith(".")]
    files = [entry for entry, kind in kinds if kind == "file"]
    folders = [entry for entry, kind in kinds if kind == "folder"]
    for entry, kind in kinds:
        if kind == "unreachable":
            yield _problem(entry, root_parent,
                           "broken or looping symlink: its target cannot be reached")
    yield from _without_companions([u for file in files
                                    for u in _walk(file, root_parent, candidates, above)])
    for folder in folders:
        yield from _walk(folder, root_parent, candidates, above | {identity})
