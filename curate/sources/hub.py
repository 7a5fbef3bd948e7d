"""Sources read straight from the Hugging Face Hub: ``hf://datasets/ORG/NAME[/PATH]``.

Files an adapter can read in place (Multimodal-Mind2Web Parquet shards) are *streamed*:
huggingface_hub's ``HfFileSystem`` fetches byte ranges, so the adapter reads the Parquet
footer, then only the columns it needs, row group by row group; memory does not grow with
the file and nothing is downloaded whole. Every other file under the URL (screenshot
folders, JSON, JSONL) is mirrored into the cache as for any URL (curate.engines.remote).

A streamed file's unit carries the ``source_path`` a local copy of the folder would give it,
and its fingerprint is made from the sha256 the Hub lists for an LFS file (the digest
curate computes for a local file), so streaming writes the same store as ingesting a
downloaded copy, and a re-run skips unchanged files without reading a byte of them. The
resume granularity is the file, as for a local shard.

Credentials are huggingface_hub's own (``HF_TOKEN`` or ``hf auth login``); ``HF_ENDPOINT``
points it at another Hub (a mirror, or the test server).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from curate.errors import CurateError
from curate.sources import adapters
from curate.sources.adapters.base import Adapter, RemoteFile, SourceUnit
from curate.sources.discover import PlannedUnit, walk_order

SCHEME = "hf://"
# Range requests of this size: a row group's column chunk is fetched in a few requests, and
# the footer read that recognises a file costs one.
BLOCK_SIZE = 8 << 20


def is_hub_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SCHEME)


@dataclass(frozen=True)
class HubSource:
    """What an ``hf://`` argument becomes: files streamed in place, and the URL's other files
    (mirrored by the caller) with the names of the streamed ones to leave out."""

    url: str
    streamed: list[PlannedUnit]
    mirrored: set[str]  # relative paths of the other files; empty: nothing to mirror


def filesystem() -> Any:
    """The Hub's fsspec filesystem (huggingface_hub ships it; imported only for hf://)."""
    try:
        from huggingface_hub import HfFileSystem
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        raise CurateError("hf:// sources need huggingface_hub: pip install huggingface_hub"
                          ) from None
    return HfFileSystem()


def open_remote(remote: RemoteFile, *, sequential: bool = False) -> IO[bytes]:
    """A seekable binary handle on a Hub file, reading by HTTP ranges.

    Random access (Parquet) has no read-ahead: pyarrow asks for whole column chunks and skips
    the columns it does not need, so each read is one range request for exactly those bytes,
    where a block cache would fetch the skipped columns too; a reader that knows what it
    needs next prefetches it (:class:`ReadAhead`). A ``sequential`` read (JSONL,
    line by line) is buffered a block at a time instead of one request per line."""
    if sequential:
        # io's buffer: one range request per block, and readline(limit) as io defines it
        # (fsspec's own readline takes no limit, and curate bounds the length of a line).
        return io.BufferedReader(_range_handle(remote), buffer_size=BLOCK_SIZE)
    return ReadAhead(remote)  # type: ignore[return-value]


class ReadAhead(io.RawIOBase):
    """A seekable Hub file whose reader can say which byte ranges it needs next.

    Reads go to the Hub as one range request each, as with a plain handle, unless they fall
    inside a span given to :meth:`prefetch`: those spans are fetched on a background thread
    (through a handle of its own) while the reader works on what it has, and served from
    memory. The Parquet reader asks for the next row group's column chunks as it starts a
    group, so the network and the processing overlap, at the cost of one row group's chunks
    in memory. A span is dropped as soon as its last byte has been read."""

    def __init__(self, remote: RemoteFile) -> None:
        super().__init__()
        self._remote = remote
        self._direct = _range_handle(remote)
        self._size = int(self._direct.size)
        self._position = 0
        self._worker: ThreadPoolExecutor | None = None
        self._worker_handle: Any = None
        # start -> (end, its bytes)
        self._spans: dict[int, tuple[int, Future[bytes | bytearray]]] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def prefetch(self, spans: list[tuple[int, int]]) -> None:
        """Fetch these ``(start, end)`` byte ranges in the background, in order."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-hub")
        for start, end in spans:
            if start not in self._spans and end > start:
                self._spans[start] = (end, self._worker.submit(self._fetch, start, end))

    def _fetch(self, start: int, end: int) -> bytes | bytearray:
        try:
            return _stream_range(self._remote, start, end)
        except ImportError:  # a huggingface_hub before 1.0: its own range read
            pass
        if self._worker_handle is None:  # the worker thread's own handle: no shared position
            self._worker_handle = _range_handle(self._remote)
        self._worker_handle.seek(start)
        data: bytes = self._worker_handle.read(end - start)
        return data

    def read(self, size: int = -1) -> bytes | memoryview:
        if size is None or size < 0:
            size = max(0, self._size - self._position)
        start, end = self._position, self._position + size
        for span_start, (span_end, future) in self._spans.items():
            if span_start <= start and end <= span_end:
                # A view, not a copy: pyarrow copies what it reads into its own buffers.
                piece = memoryview(future.result())[start - span_start:end - span_start]
                if end >= span_end:
                    del self._spans[span_start]  # read to its end: the reader has it all
                self._position = end
                return piece
        self._direct.seek(start)
        direct: bytes = self._direct.read(size)
        self._position = start + len(direct)
        return direct

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
        self._spans.clear()
        for handle in (self._direct, self._worker_handle):
            if handle is not None:
                handle.close()
        super().close()


def _stream_range(remote: RemoteFile, start: int, end: int) -> bytearray:
    """Bytes ``start:end`` of a Hub file, received straight into one buffer. The file
    handle's range read holds the whole response and then joins it into bytes, two copies
    of a 60 MB column chunk at once; this holds one."""
    from huggingface_hub import constants
    from huggingface_hub.utils import (  # type: ignore[attr-defined]  # not in its __all__
        build_hf_headers,
        hf_raise_for_status,
        http_stream_backoff,
    )

    url = filesystem().url(remote.path)
    headers = {"range": f"bytes={start}-{end - 1}", **build_hf_headers()}
    data, filled = bytearray(end - start), 0
    with http_stream_backoff("GET", url, headers=headers,
                             timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT) as response:
        hf_raise_for_status(response)
        for chunk in response.iter_bytes():
            if filled + len(chunk) > len(data):
                raise OSError(f"{SCHEME}{remote.path}: the Hub sent more than the range "
                              f"{start}-{end - 1}")
            data[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
    if filled != len(data):
        raise OSError(f"{SCHEME}{remote.path}: the Hub sent {filled} of the {len(data)} bytes "
                      f"of the range {start}-{end - 1}")
    return data


def _range_handle(remote: RemoteFile) -> Any:
    return filesystem().open(remote.path, "rb", block_size=BLOCK_SIZE, cache_type="none")


def remote_fingerprint(remote: RemoteFile, name: str) -> str:
    """The unit fingerprint of a streamed file: as ``fingerprint_files`` computes it for a
    local copy when the Hub lists the file's sha256 (LFS files), else from its git blob id;
    a ``--limit`` is part of it, so lifting the limit reads the file again."""
    content = remote.sha256 if remote.sha256 else f"hub-blob:{remote.blob_id}"
    digest = hashlib.sha256(f"{name}\0{content}\n".encode())
    if remote.limit is not None:
        digest.update(f"limit\0{remote.limit}\n".encode())
    return digest.hexdigest()


def _listing(fs: Any, root: str) -> dict[str, dict[str, Any]]:
    """relative path -> info of every file under ``root`` ('' for ``root`` itself)."""
    try:
        if fs.isfile(root):
            return {"": fs.info(root)}
        found = fs.find(root, withdirs=False, detail=True)
    except (FileNotFoundError, OSError) as error:
        raise FileNotFoundError(f"{SCHEME}{root}: {error}") from None
    prefix = root.rstrip("/") + "/"
    return {str(path)[len(prefix):]: info for path, info in found.items()
            if str(path).startswith(prefix)}


def _remote_file(path: str, info: dict[str, Any], limit: int | None) -> RemoteFile:
    lfs = info.get("lfs")
    sha256 = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
    return RemoteFile(path=path, size=int(info.get("size") or 0), sha256=sha256,
                      blob_id=info.get("blob_id"), limit=limit)


def _claimer(remote: RemoteFile, candidates: list[Adapter]) -> str | None:
    readers = [a for a in candidates if a.reads_remote(remote.path)]
    if not readers:
        return None
    with open_remote(remote) as handle:
        for adapter in readers:
            handle.seek(0)
            if adapter.claims_remote(handle):
                return adapter.name
    return None


def plan_hub_source(url: str, local_root: Path, *, forced: str | None = None,
                    limit: int | None = None, known: Mapping[str, str] | None = None
                    ) -> HubSource:
    """List ``url`` and find the files to stream. ``local_root`` is where the URL's mirror
    lives (its last path component), so streamed units get the names a local copy has.
    A file whose fingerprint ``known`` (source_path -> fingerprint, the store's) already
    records is not even opened: ingest counts it unchanged."""
    known = known or {}
    root = url[len(SCHEME):].rstrip("/")
    listing = _listing(filesystem(), root)
    if not listing:
        raise FileNotFoundError(f"{url} does not exist (or is an empty folder)")
    candidates = [adapters.get(forced)] if forced else adapters.all_adapters()
    streamed: list[PlannedUnit] = []
    mirrored: set[str] = set()
    for relative in sorted(listing, key=lambda name: walk_order(name, is_folder=False)):
        if PurePosixPath(relative).name.startswith("."):
            continue  # .gitattributes and other hidden files: discovery skips them too
        remote = _remote_file(f"{root}/{relative}" if relative else root, listing[relative],
                              limit)
        path = local_root / relative if relative else local_root
        source_path = PurePosixPath(local_root.name, relative).as_posix() if relative \
            else local_root.name
        unit = SourceUnit(path, source_path, remote)
        if known.get(source_path) == remote_fingerprint(remote, path.name):
            streamed.append(PlannedUnit(unit, None))  # unchanged: never read, so no adapter
            continue
        adapter = _claimer(remote, candidates)
        if adapter is None:
            mirrored.add(relative)
            continue
        streamed.append(PlannedUnit(unit, adapter))
    return HubSource(url, streamed, mirrored)


__all__ = ["HubSource", "ReadAhead", "is_hub_url", "open_remote", "plan_hub_source",
           "remote_fingerprint"]
