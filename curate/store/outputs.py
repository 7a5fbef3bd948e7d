"""Output folders curate owns: a marker in each, refusals up front, staging, atomic swaps.

Every folder curate writes (a store, an export, a build's dataset) carries ``MARKER``, a
small JSON file naming what wrote it (kind, store id, command, curate version). Only a
folder with that marker, or one an earlier curate made before markers existed (recognised
by its own layout, see docs/decisions.md), is ever replaced or cleaned. Everything else is
refused before any work starts, with a message naming the folder.

A new folder is written as ``.NAME.partial`` beside its target (with the marker from its
first moment), removed when the command fails or is interrupted, and swapped into place in
one ``renameat2(RENAME_EXCHANGE)`` where the kernel has it, so a reader sees the old folder
or the new one, never neither. Leftovers of a killed run are removed on the next run when
they carry the marker.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from curate import __version__
from curate.errors import OutputError
from curate.store.faults import fault

MARKER = ".curate-output.json"
_CREATING = re.compile(r"^(\.manifest\.json|\.curate-output\.json)\.\d+\.tmp$")
# Files an export made by curate before markers existed can hold at its top level.
LEGACY_EXPORT_ENTRIES = frozenset({"README.md", "LICENSE.md", "data", "plots", "croissant.json",
                                   "redaction_report.json"})
# Errors that mean "this place cannot be written", reported in one line naming the path.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                          errno.EFBIG})
WRITE_ERROR_TEXTS = ("No space left", "Read-only file system", "Permission denied",
                     "File too large", "Disk quota")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Marker:
    """What a curate-made folder says about itself."""

    kind: str  # "store" or "export"
    store_id: str
    command: str
    curate_version: str = __version__
    build_key: str = ""  # exports made by build: what they were built from (see build.py)

    def to_json(self) -> str:
        return json.dumps({"tool": "curate", **asdict(self)}, indent=2, sort_keys=True) + "\n"


def read_marker(folder: Path) -> Marker | None:
    """The folder's marker, or None when it has none (or one that is not curate's)."""
    try:
        body = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return Marker(kind=str(body["kind"]), store_id=str(body["store_id"]),
                      command=str(body["command"]),
                      curate_version=str(body["curate_version"]),
                      build_key=str(body.get("build_key", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_marker(folder: Path, marker: Marker) -> None:
    temporary = folder / f"{MARKER}.{os.getpid()}.tmp"
    temporary.write_text(marker.to_json(), encoding="utf-8")
    os.replace(temporary, folder / MARKER)


def new_store_id() -> str:
    return uuid.uuid4().hex


def _is_legacy_export(folder: Path) -> bool:
    """An export written before markers: curate's layout and nothing else at the top."""
    names = {entry.name for entry in folder.iterdir()}
    return ({"README.md", "data"} <= names and bool(names & {"croissant.json",
                                                             "redaction_report.json"})
            and names <= LEGACY_EXPORT_ENTRIES)


def _is_legacy_store(folder: Path) -> bool:
    from curate.store.layout import STORE_FORMAT, manifest_path

    try:
        body = json.loads(manifest_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("format") == STORE_FORMAT


def owned(folder: Path, kind: str) -> bool:
    """True when curate made ``folder`` as a ``kind`` (marker, or an earlier curate's layout)."""
    marker = read_marker(folder)
    if marker is not None:
        return marker.kind == kind
    return _is_legacy_export(folder) if kind == "export" else _is_legacy_store(folder)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def check_output(out: Path, *, kind: str, option: str = "-o", store: Path | None = None,
                 sources: Iterable[Path] = ()) -> None:
    """Refuse, before any work, an output that would destroy or swallow something.

    ``out`` may not be a file, the store or a folder around or inside it, or inside one of
    the ``sources``; an existing non-empty folder must be one curate made as a ``kind``."""
    target = _absolute(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out} is an existing file, not a folder; "
                          "choose a new folder name")
    if store is not None:
        home = _absolute(store)
        if _inside(target, home) or _inside(home, target):
            raise OutputError(f"{option} {out} is the store {store} or overlaps it; "
                              "choose a folder outside the store")
    for source in sources:
        root = _absolute(source)
        if root.is_dir() and _inside(target, root):
            raise OutputError(f"{option} {out} is inside the source folder {source}; the next "
                              "run would read it back as input: choose a folder outside it")
    if out.is_dir() and _has_content(out) and not owned(out, kind):
        what = "curate store" if kind == "store" else "curate export"
        raise OutputError(f"{option} {out} exists, is not empty and is not a {what} (no "
                          f"{MARKER}); curate only replaces folders it made: choose a new "
                          "or empty folder")


def _has_content(folder: Path) -> bool:
    """Anything in the folder but a store's lock file (build takes it before ingest) and
    the temporary files of a writer creating the store this very moment (it holds the lock;
    the check made again under the lock sees what it made)."""
    from curate.store.layout import LOCK

    return any(entry.name != LOCK and not _CREATING.match(entry.name)
               for entry in folder.iterdir())


def staging_path(out: Path, suffix: str = "partial") -> Path:
    return out.with_name(f".{out.name}.{suffix}")


def clean_stale(out: Path, kind: str) -> None:
    """Remove the ``.partial``/``.old`` leftovers of a killed run, when curate made them."""
    for suffix in ("partial", "old"):
        leftover = staging_path(out, suffix)
        if not leftover.exists():
            continue
        if leftover.is_dir() and read_marker(leftover) is not None:
            log.info("removing %s, left by an interrupted run", leftover)
            shutil.rmtree(leftover)
        else:
            raise OutputError(f"{leftover} exists and was not made by curate; move it away "
                              f"(curate writes {out} through it)")


@contextlib.contextmanager
def staged(out: Path, marker: Marker) -> Iterator[Path]:
    """A fresh ``.OUT.partial`` folder carrying ``marker``, removed if the block fails or is
    interrupted (SIGINT, or SIGTERM once the CLI turned it into SystemExit). The caller
    swaps it into place with :func:`swap_into_place` inside the block."""
    clean_stale(out, marker.kind)
    staging = staging_path(out)
    staging.mkdir(parents=True)
    write_marker(staging, marker)
    try:
        yield staging
    except KeepForInspection:
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class KeepForInspection(OutputError):
    """Raised inside :func:`staged` to keep the staging folder (e.g. it failed validation)."""


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False when unsupported."""
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    libc = ctypes.CDLL(library, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = libc.renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second),
                            rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def swap_into_place(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out``; an existing ``out`` (already checked as curate's) is
    exchanged atomically where possible, then removed."""
    fault("outputs.before-swap")
    if not out.exists():
        staging.rename(out)
        return
    if _exchange(staging, out):
        shutil.rmtree(staging)  # now holds the previous folder
        return
    old = staging_path(out, "old")
    out.rename(old)
    fault("outputs.mid-swap")
    staging.rename(out)
    shutil.rmtree(old)


def is_write_error(error: BaseException) -> bool:
    """An error that means the place cannot be written (full, read-only, not allowed)."""
    if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
        return True
    # pyarrow's OSError carries the reason in its text, not in errno
    return isinstance(error, OSError) and any(t in str(error) for t in WRITE_ERROR_TEXTS)


def _reason(error: OSError) -> str:
    if error.strerror:
        return error.strerror
    text = str(error)
    for known in WRITE_ERROR_TEXTS:
        if known in text:
            return {"No space left": "No space left on device",
                    "Disk quota": "Disk quota exceeded"}.get(known, known)
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """Turn a full disk or a read-only/forbidden place under ``path`` into one OutputError
    naming it (the data already committed is intact: every write is staged)."""
    try:
        yield
    except OSError as error:
        if not is_write_error(error):
            raise
        where = error.filename if isinstance(error.filename, str) else str(path)
        raise OutputError(f"cannot write {where}: {_reason(error)} (nothing committed was "
                          "changed; free space or choose a writable place, then run again)"
                          ) from None
