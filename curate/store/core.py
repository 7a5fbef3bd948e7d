"""The canonical trajectory store: Parquet tables committed in batches under a manifest.

Writing goes through :class:`BatchWriter` (one open batch at a time, atomic commit);
reading through :class:`Store` (``read_*`` Arrow tables; ``query`` runs DuckDB SQL over every
table, scanning the Parquet files lazily; ``scan_*`` lazy polars frames with the ``polars`` extra).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import __version__
from curate.errors import StoreError, StoreLocked
from curate.extras import require
from curate.store.faults import fault
from curate.store.layout import (
    LOCK,
    STORE_FORMAT,
    batch_file,
    manifest_path,
    table_dir,
    temp_batch_file,
)

if TYPE_CHECKING:
    import polars as pl

from curate.store.schema import DERIVED_TABLES, SCHEMA_VERSION, TABLES, table_schema

# Tables holding images get row groups of about 100 rows, which keep image pages seekable
# (REFERENCES.md); the others get large ones, which read faster. The byte cap keeps one row
# group of large screenshots from holding too much memory.
ROW_GROUP_ROWS = 100
TABLE_ROW_GROUP_ROWS = 10_000
ROW_GROUP_BYTES = 64 << 20

log = logging.getLogger(__name__)

LOCK_TIMEOUT_ENV = "CURATE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 600.0  # seconds a writer waits for another one before giving up
_held_locks: dict[Path, tuple[int, int]] = {}  # store -> (file descriptor, depth)


@dataclass
class Manifest:
    """What a store has committed. Deterministic: no clocks, no absolute paths."""

    batches: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    toolkit_version: str = __version__

    def to_json(self) -> str:
        body = {
            "format": STORE_FORMAT,
            "schema_version": self.schema_version,
            "toolkit_version": self.toolkit_version,
            "batches": sorted(self.batches),
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, store: Path) -> Manifest:
        path = manifest_path(store)
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(
                f"{store} is not a curate store (no {path.name}); "
                "create one with `curate ingest SRC -o STORE`"
            ) from None
        except json.JSONDecodeError as error:
            raise StoreError(f"{path} is corrupt: {error.msg}") from None
        if body.get("format") != STORE_FORMAT:
            raise StoreError(f"{path} is not a curate store manifest")
        version = int(body.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{store} has schema version {version}, newer than this curate "
                f"({SCHEMA_VERSION}); upgrade curate to read it"
            )
        if version < SCHEMA_VERSION:
            # Its tables lack columns this curate reads (schemas/*.yaml name each version's
            # additions); reading on would fail later, in the middle of a stage.
            raise StoreError(
                f"{store} has schema version {version}, older than this curate "
                f"({SCHEMA_VERSION}: steps gained the model column); re-ingest its sources "
                "into a new store with `curate ingest SRC -o NEW_STORE`"
            )
        return cls(list(body.get("batches", [])), version, str(body.get("toolkit_version")))


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read one Parquet file (ParquetFile rather than read_table: that one imports pandas)."""
    return pq.ParquetFile(path).read(columns=columns)


def temporary_name(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process uses (it carries our pid, so
    a later opener can tell a dead writer's leftover from a live one's file)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to a temporary file beside ``path``, flush to disk, rename over it."""
    temporary = temporary_name(path)
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _parquet_writer(path: Path, schema: pa.Schema, codec: str = "zstd") -> pq.ParquetWriter:
    # Encoded images do not compress further: storing them as-is saves the CPU of trying.
    compression: dict[str, str] = {
        name: ("none" if schema.field(name).type == pa.binary() else codec)
        for name in schema.names
    }
    # Statistics (and the page index built from them) serve filters on plain columns such as
    # frame_id; on image bytes and inside nested actions they are never used.
    filterable = [field.name for field in schema
                  if not pa.types.is_nested(field.type) and field.type != pa.binary()]
    return pq.ParquetWriter(
        path, schema, compression=compression, write_page_index=True,
        write_statistics=filterable,
    )


class WriteQueue:
    """Runs Parquet writes on one background thread, in the order they were queued.

    Encoding, compressing and writing a row group release the GIL, so the next unit's
    extraction overlaps the previous one's write on a second core. At most ``depth`` writes
    wait, and beyond the newest one at most ``max_bytes`` of rows (a row group of large
    screenshots is 64 MB: a second one waits for the first instead of doubling what is
    held), so memory stays bounded. A failed write fails the queue for good: its error is
    raised by that and every later ``submit``, ``drain`` and ``close``, so a batch that lost
    a row group can never be committed.
    """

    def __init__(self, depth: int = 2, max_bytes: int = ROW_GROUP_BYTES) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-write")
        self._waiting: deque[tuple[Future[None], int]] = deque()
        self._depth = depth
        self._max_bytes = max_bytes
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], None], size: int = 0) -> None:
        """Queue ``write`` (of ``size`` bytes of rows), waiting for older writes first when
        too many, or too many bytes, are queued."""
        self._raise_if_failed()
        self._waiting.append((self._executor.submit(write), size))
        while len(self._waiting) > self._depth or (
                len(self._waiting) > 1
                and sum(queued for _, queued in self._waiting) > self._max_bytes):
            self._wait_oldest()

    def drain(self) -> None:
        while self._waiting:
            self._wait_oldest()
        self._raise_if_failed()

    def _wait_oldest(self) -> None:
        try:
            self._waiting.popleft()[0].result()
        except Exception as error:
            if self._error is None:
                self._error = error
            else:  # usually the same cause again: the first error is the one to show
                log.debug("a later background write failed too", exc_info=True)
            raise self._error from None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise StoreError(f"an earlier background write failed: {self._error}") \
                from self._error

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)


class TableSink:
    """Streams one table of one batch into a temporary Parquet file in row groups: ~100
    rows for tables holding images, 10,000 for the others. With a ``queue`` the writes run
    in the background (see WriteQueue); ``close`` waits for them."""

    def __init__(self, path: Path, schema: pa.Schema, queue: WriteQueue | None = None,
                 codec: str = "zstd") -> None:
        self.path = path
        self.schema = schema
        self.codec = codec
        self.rows = 0
        # Image rows are big, so their groups stay small; text-only tables get large groups
        # (100-row groups made a 10,000-row segments file 6x larger and slower to write).
        self.row_group_rows = (ROW_GROUP_ROWS if pa.binary() in schema.types
                               else TABLE_ROW_GROUP_ROWS)
        self._queue = queue
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += table.nbytes
        self.rows += table.num_rows
        if self._pending_rows >= self.row_group_rows or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        parts, size = self._pending, self._pending_bytes
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0
        if self._queue is None:
            self._write(parts)
        else:
            self._queue.submit(lambda: self._write(parts), size)

    def _write(self, parts: list[pa.Table]) -> None:
        if self._writer is None:
            self._writer = _parquet_writer(self.path, self.schema, self.codec)
        self._writer.write_table(pa.concat_tables(parts), row_group_size=self.row_group_rows)

    def close(self) -> None:
        self._flush()
        if self._queue is not None:
            self._queue.drain()
        if self._writer is None:
            # An empty table still gets a file, so every batch has all five.
            self._writer = _parquet_writer(self.path, self.schema, self.codec)
        self._writer.close()
        with self.path.open("rb+") as handle:
            os.fsync(handle.fileno())

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.path.unlink(missing_ok=True)


def write_table_atomic(path: Path, schema: pa.Schema, rows: pa.Table,
                       codec: str = "zstd") -> None:
    """Write a whole table to a temporary file beside ``path`` (fsynced by the sink), then
    rename it over ``path``; on failure the temporary file is removed."""
    temporary = temporary_name(path)
    sink = TableSink(temporary, schema, codec=codec)
    try:
        sink.add(rows.cast(schema))
        sink.close()
    except BaseException:
        sink.abort()
        raise
    fault("store.table-before-rename")
    os.replace(temporary, path)


def batch_id(units: Iterable[tuple[str, str]]) -> str:
    """A batch's name: a hash of the (source_path, fingerprint) pairs it holds, sorted."""
    digest = hashlib.sha256()
    for source_path, fingerprint in sorted(units):
        digest.update(f"{source_path}\0{fingerprint}\n".encode())
    return digest.hexdigest()[:16]


class BatchWriter:
    """One batch being written: ``add`` rows per table and ``add_source`` per unit, then
    ``commit``. The batch's name is a hash of its units, so it is known only at commit."""

    def __init__(self, store: Path, token: str | None = None) -> None:
        self.store = store
        # Unique per process and writer; a worker writing for a driver is given a token
        # carrying the driver's pid (see curate.pipeline.batches), so its files count as
        # live while the driver that will commit them runs.
        self._token = token or f"open-{os.getpid()}-{id(self)}"
        self._queue = WriteQueue()
        self.sinks = {
            table: TableSink(temp_batch_file(store, table, self._token), table_schema(table),
                             self._queue)
            for table in TABLES
        }
        self.sources: list[dict[str, Any]] = []

    def add(self, table: str, rows: pa.Table) -> None:
        if table == "sources":
            self.sources.extend(rows.to_pylist())
        else:
            self.sinks[table].add(rows)

    @property
    def units(self) -> list[tuple[str, str]]:
        return [(row["source_path"], row["input_fingerprint"]) for row in self.sources]

    @property
    def empty(self) -> bool:
        return not self.sources and self.sinks["frames"].rows == 0

    def commit(self, manifest: Manifest, *, salt: str = "", write_manifest: bool = True) -> str:
        """Close the files, move them to their final names, list the batch in the manifest
        (and write it, unless the caller writes it once for several batches)."""
        name = self.finish(salt=salt)
        install_batch(self.store, self._token, name, manifest, write_manifest=write_manifest)
        return name

    def finish(self, *, salt: str = "") -> str:
        """Close the files under their temporary names and return the batch's name; the
        batch is committed by :func:`install_batch` (in the driver, for a worker's batch)."""
        name = batch_id([*self.units, (salt, "")] if salt else self.units)
        sources = [{**row, "batch": name} for row in self.sources]
        self.sinks["sources"].add(pa.Table.from_pylist(sources, schema=table_schema("sources")))
        try:
            for sink in self.sinks.values():
                sink.close()
        except BaseException:
            with contextlib.suppress(Exception):  # the error above is the one to show
                self._queue.close()
            raise
        self._queue.close()
        return name

    def abort(self) -> None:
        try:
            self._queue.close()
        except Exception:  # aborting: the files are removed anyway
            log.debug("a background write failed while aborting", exc_info=True)
        for sink in self.sinks.values():
            sink.abort()


def install_batch(store: Path, token: str, name: str, manifest: Manifest, *,
                  write_manifest: bool = True) -> None:
    """Commit a batch whose files were closed under ``token``'s temporary names: move them
    to their final names, then list the batch in the manifest (written unless the caller
    writes it once for several batches). Before the manifest names the batch no reader
    sees its files, and the next writer removes them (see remove_leftovers)."""
    fault("store.commit-before-rename")
    for table in TABLES:
        os.replace(temp_batch_file(store, table, token), batch_file(store, table, name))
        fault("store.commit-between-files")
    if name not in manifest.batches:
        manifest.batches.append(name)
    if not write_manifest:
        return
    fault("store.commit-before-manifest")
    write_atomic(manifest_path(store), manifest.to_json().encode())


def discard_batch(store: Path, token: str) -> None:
    """Remove the temporary files of a batch written under ``token`` and never committed."""
    for table in TABLES:
        temp_batch_file(store, table, token).unlink(missing_ok=True)


def init_store(store: Path, *, command: str = "curate ingest") -> Manifest:
    """Open a store for writing (call it holding :func:`store_lock`), creating it if needed,
    marking it as curate's, clearing leftovers of writers that died."""
    from curate.store.outputs import MARKER, Marker, new_store_id, read_marker, write_marker

    store.mkdir(parents=True, exist_ok=True)
    if manifest_path(store).exists():
        manifest = Manifest.load(store)
    else:
        if any(p for p in store.iterdir() if p.name not in (LOCK, MARKER)):
            raise StoreError(
                f"{store} exists, is not empty and is not a curate store; "
                "choose an empty or new folder for -o"
            )
        manifest = Manifest()
        write_atomic(manifest_path(store), manifest.to_json().encode())
    if read_marker(store) is None:  # new, or made before markers: its manifest proves it
        write_marker(store, Marker("store", new_store_id(), command))
    for table in (*TABLES, *DERIVED_TABLES):
        table_dir(store, table).mkdir(exist_ok=True)
    remove_leftovers(store, manifest)
    return manifest


def remove_leftovers(store: Path, manifest: Manifest | None = None) -> None:
    """Remove what writers that died left behind: temporary files whose process is gone
    (a live writer's are kept), batch files never listed in the manifest. Writers call it
    holding the lock (store_lock does)."""
    for directory in [store, *(table_dir(store, t) for t in (*TABLES, *DERIVED_TABLES))]:
        for leftover in directory.glob(".*.tmp") if directory.is_dir() else ():
            if not _writer_alive(leftover.name):
                leftover.unlink(missing_ok=True)
    if manifest is None and manifest_path(store).exists():
        manifest = Manifest.load(store)
    if manifest is not None:
        _remove_uncommitted(store, manifest)


def _remove_uncommitted(store: Path, manifest: Manifest) -> None:
    """Drop batch files a killed writer renamed into place but never listed in the manifest
    (no reader ever sees them; the same batch written again gets the same name)."""
    committed = {batch_file(store, TABLES[0], name).name for name in manifest.batches}
    for table in (*TABLES, *DERIVED_TABLES):
        for path in table_dir(store, table).glob("batch-*.parquet"):
            if path.name not in committed:
                log.info("removing %s: written by an interrupted run, never committed", path)
                path.unlink(missing_ok=True)


_TEMP_OWNER = re.compile(r"^\.batch-open-(\d+)-|\.(\d+)\.tmp$")


def _writer_alive(temporary: str) -> bool:
    """Whether the process that named this temporary file is still running (names without
    a pid come from an earlier curate and are leftovers)."""
    match = _TEMP_OWNER.search(temporary)
    if match is None:
        return False
    pid = int(match.group(1) or match.group(2))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def lock_timeout() -> float:
    return float(os.environ.get(LOCK_TIMEOUT_ENV, DEFAULT_LOCK_TIMEOUT))


@contextlib.contextmanager
def store_lock(store: Path, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the store's write lock (``flock`` on STORE/.curate-lock) for the block.

    A second writer waits up to ``timeout`` seconds (default $CURATE_LOCK_TIMEOUT or 600),
    then fails with StoreLocked naming the holder. Re-entrant within one process, so build
    can hold it around stages that take it too. The kernel drops the lock when its holder
    dies, even by SIGKILL, so a crash never leaves a store locked."""
    key = Path(os.path.abspath(store))
    if key in _held_locks:
        fd, depth = _held_locks[key]
        _held_locks[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _held_locks[key]
            _held_locks[key] = (fd, depth - 1)
        return
    store.mkdir(parents=True, exist_ok=True)
    fd = os.open(store / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, store, lock_timeout() if timeout is None else timeout)
        _held_locks[key] = (fd, 1)
        remove_leftovers(store)
        try:
            yield
        finally:
            del _held_locks[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, store: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            if time.monotonic() >= deadline:
                raise StoreLocked(
                    f"{store} is being written by another curate process (pid {holder}) and "
                    f"stayed locked for {timeout:g} s; wait for it to finish, or raise "
                    f"{LOCK_TIMEOUT_ENV}") from None
            if not announced:
                log.warning("waiting for another curate process (pid %s) writing %s",
                            holder, store)
                announced = True
            time.sleep(0.05)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


class Store:
    """A committed store, for reading. Open with :func:`open_store`."""

    def __init__(self, path: Path, manifest: Manifest) -> None:
        self.path = path
        self.manifest = manifest

    def files(self, table: str) -> list[Path]:
        """The table's files for the committed batches (derived tables: those computed)."""
        paths = [batch_file(self.path, table, name) for name in sorted(self.manifest.batches)]
        if table in DERIVED_TABLES:
            return [path for path in paths if path.exists()]
        return paths

    def read(self, table: str, columns: list[str] | None = None) -> pa.Table:
        """A whole table as Arrow (empty, with its schema, when nothing is committed)."""
        return _combined(table, [read_parquet(path, columns) for path in self.files(table)],
                         columns)

    def scan(self, table: str) -> pl.LazyFrame:
        """A lazy polars frame over a table (the optional `polars` extra)."""
        polars: Any = require("polars", needed_for="Store.scan (lazy polars frames)")
        files = self.files(table)
        frame: pl.LazyFrame
        if not files:
            frame = polars.from_arrow(table_schema(table).empty_table()).lazy()
        else:
            frame = polars.scan_parquet([str(path) for path in files])
        return frame

    def read_episodes(self) -> pa.Table:
        return self.read("episodes")

    def read_steps(self) -> pa.Table:
        return self.read("steps")

    def read_rejects(self) -> pa.Table:
        return self.read("rejects")

    def scan_steps(self) -> pl.LazyFrame:
        return self.scan("steps")

    def scan_episodes(self) -> pl.LazyFrame:
        return self.scan("episodes")

    def frame_ids(self) -> set[str]:
        return set(self.read("frames", columns=["frame_id"]).column("frame_id").to_pylist())

    def read_where_in(self, table: str, column: str, values: set[str],
                      columns: list[str] | None = None) -> pa.Table:
        """The rows of a table whose ``column`` is one of ``values``, reading only those (a
        filtered pass over each file)."""
        wanted = pa.array(sorted(values), pa.string())
        return _combined(table, [
            pq.read_table(path, filters=pc.is_in(pc.field(column), wanted), columns=columns)
            for path in self.files(table)] if values else [], columns)

    def frame_bytes(self, frame_id: str) -> bytes:
        """The bytes of one screenshot as recorded."""
        for path in self.files("frames"):
            table = pq.read_table(path, filters=pc.field("frame_id") == frame_id,
                                  columns=["bytes"])
            if table.num_rows:
                value: bytes = table.column("bytes")[0].as_py()
                return value
        raise StoreError(f"frame {frame_id} is not in {self.path}")

    def known_sources(self) -> dict[str, tuple[str, str]]:
        """source_path -> (input fingerprint, batch) for every committed source unit."""
        table = self.read("sources", columns=["source_path", "input_fingerprint", "batch"])
        return {
            row["source_path"]: (row["input_fingerprint"], row["batch"])
            for row in table.to_pylist()
        }


def _combined(table: str, parts: list[pa.Table], columns: list[str] | None) -> pa.Table:
    """The parts of a table as one (empty, with its schema, when there are none)."""
    if not parts:
        empty = table_schema(table).empty_table()
        return empty.select(columns) if columns else empty
    return pa.concat_tables(parts)


def open_store(path: str | os.PathLike[str]) -> Store:
    """Open an existing store for reading; StoreError names what is wrong."""
    store = Path(path)
    if not store.is_dir():
        raise StoreError(f"store folder {store} does not exist; create it with `curate ingest`")
    return Store(store, Manifest.load(store))


def rows_matching(table: pa.Table, column: str, values: set[str]) -> pa.Table:
    """Rows of ``table`` whose ``column`` is in ``values``."""
    mask = pc.is_in(table.column(column), value_set=pa.array(sorted(values), pa.string()))
    return table.filter(mask)


def rows_not_matching(table: pa.Table, column: str, values: set[str]) -> pa.Table:
    mask = pc.is_in(table.column(column), value_set=pa.array(sorted(values), pa.string()))
    return table.filter(pc.invert(mask))
