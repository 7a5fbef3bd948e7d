"""Inputs and outputs given as URLs (``s3://``, ``gs://``, ``memory://``, ``file://``, ...).

Every stage works on local folders; a URL is mirrored to or from a local cache around it:

- an input URL is copied into ``CACHE/inputs/<slug>/<name>`` before discovery. The copy keeps
  the last path component and everything below it, so ``source_path`` (and thus episode
  ids, fingerprints and the store's bytes) is the same as for a local copy of the folder.
  A file already cached is fetched again only when the remote's listing (size, mtime/etag)
  changed, so a re-run downloads only what changed.
- an output URL (dataset folder, store) is written locally and uploaded at the end, data
  files first and ``manifest.json`` last, so a reader never sees a manifest naming files that
  are not there yet; remote files the local folder no longer has are deleted.

Any filesystem fsspec knows works; the credentials are that filesystem's own (see
docs/engines.md): s3fs reads the AWS variables, profiles and instance roles, gcsfs
GOOGLE_APPLICATION_CREDENTIALS or the gcloud login, adlfs the AZURE_STORAGE_* variables.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from curate.errors import CurateError

INDEX_SUFFIX = ".curate-remote.json"
MANIFEST = "manifest.json"


def is_url(value: str | os.PathLike[str]) -> bool:
    """True for ``scheme://...`` strings (a Path is always local)."""
    if not isinstance(value, str):
        return False
    scheme, sep, _ = value.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").isalnum()


def default_cache() -> Path:
    """``$CURATE_CACHE``, else ``$XDG_CACHE_HOME/curate``, else ``~/.cache/curate``."""
    if os.environ.get("CURATE_CACHE"):
        return Path(os.environ["CURATE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "curate"


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError:  # pragma: no cover - fsspec comes with datasets
        raise CurateError("URLs need fsspec: pip install fsspec") from None
    try:
        fs, path = url_to_fs(url)
    except (ImportError, ValueError) as error:
        scheme = url.partition("://")[0]
        raise CurateError(f"cannot open {url}: {error} (the {scheme}:// filesystem may need "
                          f"its package, e.g. s3fs for s3://, gcsfs for gs://)") from None
    return fs, str(path)


def _slug(url: str) -> str:
    """A cache folder name for the URL's parent: readable, and unique by a short hash."""
    parent = url.rstrip("/").rsplit("/", 1)[0]
    readable = "".join(c if c.isalnum() or c in "-_." else "_" for c in parent)[-60:]
    return f"{readable}-{hashlib.sha256(parent.encode()).hexdigest()[:12]}"


def _name(url: str) -> str:
    return PurePosixPath(url.rstrip("/").split("://", 1)[-1]).name or "root"


def _listing(fs: Any, root: str) -> dict[str, dict[str, Any]]:
    """relative path -> info of every file under ``root`` (a file: itself, as '')."""
    if fs.isfile(root):
        return {"": fs.info(root)}
    if not fs.exists(root):
        return {}
    found = fs.find(root, withdirs=False, detail=True)
    prefix = root.rstrip("/") + "/"
    return {str(path)[len(prefix):]: info for path, info in found.items()
            if str(path).startswith(prefix)}


def _token(info: dict[str, Any]) -> str:
    """What identifies a remote file's version: its listing minus volatile fields."""
    kept = {k: v for k, v in info.items() if k not in {"name", "atime"}}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _target(local: Path, relative: str) -> Path:
    return local / relative if relative else local


def input_root(url: str, cache: Path | None = None) -> Path:
    """Where ``fetch`` mirrors ``url``: the cache folder named by its last component."""
    return (cache or default_cache()) / "inputs" / _slug(url) / _name(url)


def fetch(url: str, cache: Path | None = None, *, only: set[str] | None = None) -> Path:
    """Mirror the file or folder at ``url`` into the cache; return its local path.

    ``only`` limits the mirror to these relative paths (files streamed from a Hub are not
    copied). ``file://`` URLs are local already and are returned as paths, uncopied."""
    if url.startswith("file://"):
        return Path(_filesystem(url)[1])
    fs, root = _filesystem(url)
    listing = _listing(fs, root)
    if only is not None:
        listing = {relative: info for relative, info in listing.items() if relative in only}
    if not listing:
        raise FileNotFoundError(f"{url} does not exist (or is an empty folder)")
    local = input_root(url, cache)
    _mirror_down(fs, listing, local)
    return local


def _mirror_down(fs: Any, listing: dict[str, dict[str, Any]], local: Path) -> None:
    """Make ``local`` hold exactly the listed remote files, fetching only changed ones (the
    index beside ``local`` remembers which version of each file was fetched)."""
    index_path = local.with_name(f".{local.name}{INDEX_SUFFIX}")
    index: dict[str, str] = (json.loads(index_path.read_text()) if index_path.exists() else {})
    _drop_stale(local, set(listing), index)
    for relative, info in sorted(listing.items()):
        target = _target(local, relative)
        if index.get(relative) == _token(info) and target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        fs.get_file(info["name"], str(partial))
        os.replace(partial, target)  # an interrupted download never looks complete
        index[relative] = _token(info)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    index_path.write_text(json.dumps(index, sort_keys=True, indent=1))


def _drop_stale(local: Path, remote: set[str], index: dict[str, str]) -> None:
    """Delete cached files the remote no longer has, so discovery sees what the remote has."""
    if local.is_file() and "" not in remote:
        local.unlink()
    if local.is_dir():
        for path in sorted(local.rglob("*"), reverse=True):
            relative = path.relative_to(local).as_posix()
            if path.is_file() and relative not in remote:
                path.unlink()
                index.pop(relative, None)
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def localise_sources(sources: list[str | Path], cache: Path | None = None) -> list[Path]:
    """Sources as local paths: URLs are fetched into the cache, paths pass through."""
    return [fetch(str(s), cache) if is_url(s) else Path(s) for s in sources]


def upload(local: Path, url: str) -> None:
    """Mirror a local folder to ``url``: files, then manifest.json, then deletions."""
    fs, root = _filesystem(url)
    root = root.rstrip("/")
    files = sorted(p for p in local.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    relatives = [p.relative_to(local).as_posix() for p in files]
    ordered = sorted(zip(relatives, files, strict=True), key=lambda pair: pair[0] == MANIFEST)
    for relative, path in ordered:
        destination = f"{root}/{relative}"
        fs.makedirs(destination.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(path), destination)
    for relative in sorted(set(_listing(fs, root)) - set(relatives) - {""}):
        fs.rm_file(f"{root}/{relative}")


def staging_dir(url: str, cache: Path | None, kind: str) -> Path:
    """Where a URL output (``kind``: outputs, stores) is kept locally between runs."""
    return (cache or default_cache()) / kind / _slug(url) / _name(url)


@contextmanager
def local_folder(target: str | Path, cache: Path | None = None, *, kind: str = "outputs",
                 pull: bool = False) -> Iterator[Path]:
    """A local folder standing for ``target``: the path itself, or for a URL a cached
    folder (first mirrored from the URL when ``pull``) uploaded when the block succeeds."""
    if not is_url(target):
        yield Path(target)
        return
    url = str(target)
    if url.startswith("file://"):
        yield Path(_filesystem(url)[1])
        return
    local = staging_dir(url, cache, kind)
    if pull:
        _pull(url, local)
    local.mkdir(parents=True, exist_ok=True)
    try:
        yield local
    except BaseException:
        # The local copy now differs from the URL in ways the index does not know: forget
        # the index, so the next run mirrors the URL afresh instead of mixing the two.
        local.with_name(f".{local.name}{INDEX_SUFFIX}").unlink(missing_ok=True)
        raise
    upload(local, url)
    _remember(url, local)


def _remember(url: str, local: Path) -> None:
    """After an upload the local folder is what the URL holds: record the remote versions,
    so the next pull fetches nothing."""
    fs, root = _filesystem(url)
    index = {relative: _token(info) for relative, info in _listing(fs, root).items()}
    local.with_name(f".{local.name}{INDEX_SUFFIX}").write_text(
        json.dumps(index, sort_keys=True, indent=1))


def _pull(url: str, local: Path) -> None:
    """Make ``local`` a copy of the folder at ``url`` (emptied when the URL has nothing)."""
    fs, root = _filesystem(url)
    _mirror_down(fs, _listing(fs, root), local)


__all__ = ["default_cache", "fetch", "input_root", "is_url", "local_folder", "localise_sources",
           "upload"]
