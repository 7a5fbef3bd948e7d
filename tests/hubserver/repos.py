"""Git-like repository storage for the test Hub: immutable commits, branches, PR refs, tags.

    ROOT/<type>/<namespace>/<name>/
      repo.json                  visibility, refs (branches, tags, pull requests)
      commits/<oid>.json         one immutable snapshot: parent, message, date, {path: blob oid}
      blobs/<oid>                file contents, addressed by their git blob id

A commit stores the whole tree (path -> blob), not a diff, so any revision is one file read.
Blob ids are real git blob ids (sha1 of "blob <size>\\0<content>") because huggingface_hub
compares them with the ids it computes locally to skip files that did not change.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Beside an LFS blob: its pointer (sha256, size), as the Hub's tree listing reports it.
LFS_SUFFIX = ".lfs.json"
GITATTRIBUTES = (b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
                 b"*.png filter=lfs diff=lfs merge=lfs -text\n")


class HubError(Exception):
    """An error the HTTP layer turns into a Hub-shaped response (status, X-Error-Code)."""

    def __init__(self, status: int, message: str, code: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    description: str
    date: str
    files: dict[str, str]  # path -> blob oid

    def to_json(self) -> dict[str, Any]:
        return {"oid": self.oid, "parent": self.parent, "title": self.title,
                "description": self.description, "date": self.date, "files": self.files}


@dataclass
class Operation:
    """One line of a commit payload, already decoded."""

    kind: str  # "add", "delete_file", "delete_folder"
    path: str
    content: bytes = b""


@dataclass
class Refs:
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    pulls: dict[int, str] = field(default_factory=dict)


class Repo:
    """One repository on disk. Callers hold ``RepoStore.lock`` while mutating."""

    def __init__(self, folder: Path, repo_type: str, repo_id: str) -> None:
        self.folder = folder
        self.repo_type = repo_type
        self.repo_id = repo_id
        meta = json.loads((folder / "repo.json").read_text())
        self.private: bool = meta["private"]
        self.created: str = meta["created"]
        self.refs = Refs(meta["branches"], meta["tags"],
                         {int(k): v for k, v in meta["pulls"].items()})

    def save(self) -> None:
        meta = {"private": self.private, "created": self.created,
                "branches": self.refs.branches, "tags": self.refs.tags,
                "pulls": {str(k): v for k, v in self.refs.pulls.items()}}
        (self.folder / "repo.json").write_text(json.dumps(meta, indent=1))

    # -- reading -------------------------------------------------------------------------

    def commit(self, oid: str) -> Commit:
        data = json.loads((self.folder / "commits" / f"{oid}.json").read_text())
        return Commit(**data)

    def resolve(self, revision: str) -> Commit:
        """A branch, tag, ``refs/pr/N``, ``refs/heads/X``, ``refs/tags/X`` or a full commit id."""
        oid = self._ref_target(revision)
        if oid is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commit(oid)

    def _ref_target(self, revision: str) -> str | None:
        if revision.startswith("refs/pr/") and revision[8:].isdigit():
            return self.refs.pulls.get(int(revision[8:]))
        if revision.startswith("refs/heads/"):
            return self.refs.branches.get(revision[11:])
        if revision.startswith("refs/tags/"):
            return self.refs.tags.get(revision[10:])
        if revision in self.refs.branches:
            return self.refs.branches[revision]
        if revision in self.refs.tags:
            return self.refs.tags[revision]
        if len(revision) == 40 and (self.folder / "commits" / f"{revision}.json").exists():
            return revision
        return None

    def blob(self, oid: str) -> bytes:
        return (self.folder / "blobs" / oid).read_bytes()

    def blob_size(self, oid: str) -> int:
        return (self.folder / "blobs" / oid).stat().st_size

    def blob_range(self, oid: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (inclusive) of a blob, read from disk without the rest."""
        with (self.folder / "blobs" / oid).open("rb") as handle:
            handle.seek(start)
            return handle.read(end - start + 1)

    def lfs_info(self, oid: str) -> dict[str, Any] | None:
        """The LFS pointer of a blob stored as an LFS file (sha256 and size), else None."""
        path = self.folder / "blobs" / f"{oid}{LFS_SUFFIX}"
        return json.loads(path.read_text()) if path.exists() else None

    def history(self, oid: str) -> list[Commit]:
        commits = []
        current: str | None = oid
        while current is not None:
            commit = self.commit(current)
            commits.append(commit)
            current = commit.parent
        return commits

    # -- writing -------------------------------------------------------------------------

    def write_blob(self, content: bytes) -> str:
        oid = git_blob_oid(content)
        path = self.folder / "blobs" / oid
        if not path.exists():
            path.write_bytes(content)
        return oid

    def write_lfs_blob(self, source: Path) -> str:
        """Store a (possibly huge) file as an LFS blob, streaming it: the tree listing then
        shows its sha256 as the Hub shows an LFS file's, and it is never held in memory."""
        size = source.stat().st_size
        git, sha256 = hashlib.sha1(b"blob %d\0" % size), hashlib.sha256()
        partial = self.folder / "blobs" / "upload.part"
        with source.open("rb") as reader, partial.open("wb") as writer:
            while chunk := reader.read(8 << 20):
                git.update(chunk)
                sha256.update(chunk)
                writer.write(chunk)
        oid = git.hexdigest()
        partial.replace(self.folder / "blobs" / oid)
        pointer = {"oid": sha256.hexdigest(), "size": size, "pointerSize": 134}
        (self.folder / "blobs" / f"{oid}{LFS_SUFFIX}").write_text(json.dumps(pointer))
        return oid

    def commit_blobs(self, title: str, blobs: dict[str, str], branch: str = "main") -> Commit:
        """Commit files already stored as blobs (path -> oid) on top of ``branch``."""
        parent = self.resolve(branch)
        commit = self.new_commit(parent, title, "", [])
        commit.files.update(blobs)
        (self.folder / "commits" / f"{commit.oid}.json").write_text(json.dumps(commit.to_json()))
        self.refs.branches[branch] = commit.oid
        self.save()
        return commit

    def new_commit(self, parent: Commit | None, title: str, description: str,
                   operations: list[Operation]) -> Commit:
        files = dict(parent.files) if parent else {}
        for op in operations:
            apply_operation(files, op, self.write_blob)
        date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        seed = json.dumps([parent.oid if parent else None, title, description, date, files,
                           time.monotonic_ns()])
        commit = Commit(hashlib.sha1(seed.encode()).hexdigest(), parent.oid if parent else None,
                        title, description, date, files)
        (self.folder / "commits" / f"{commit.oid}.json").write_text(json.dumps(commit.to_json()))
        return commit


def apply_operation(files: dict[str, str], op: Operation, write_blob: Any) -> None:
    if op.kind == "add":
        files[op.path] = write_blob(op.content)
    elif op.kind == "delete_file":
        if op.path not in files:
            raise HubError(404, f"File not found: {op.path}", "EntryNotFound")
        del files[op.path]
    elif op.kind == "delete_folder":
        prefix = op.path.rstrip("/") + "/"
        doomed = [path for path in files if path.startswith(prefix)]
        if not doomed:
            raise HubError(404, f"Folder not found: {op.path}", "EntryNotFound")
        for path in doomed:
            del files[path]


class RepoStore:
    """All repositories of one server, under one lock (the server is small, correctness first)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.RLock()

    def _folder(self, repo_type: str, repo_id: str) -> Path:
        return self.root / repo_type / repo_id

    def get(self, repo_type: str, repo_id: str) -> Repo:
        folder = self._folder(repo_type, repo_id)
        if not (folder / "repo.json").exists():
            raise HubError(404, "Repository not found", "RepoNotFound")
        return Repo(folder, repo_type, repo_id)

    def exists(self, repo_type: str, repo_id: str) -> bool:
        return (self._folder(repo_type, repo_id) / "repo.json").exists()

    def create(self, repo_type: str, repo_id: str, *, private: bool) -> Repo:
        """A new repo whose ``main`` holds one commit with ``.gitattributes``, as on the Hub."""
        folder = self._folder(repo_type, repo_id)
        (folder / "commits").mkdir(parents=True)
        (folder / "blobs").mkdir()
        created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        meta = {"private": private, "created": created, "branches": {}, "tags": {}, "pulls": {}}
        (folder / "repo.json").write_text(json.dumps(meta))
        repo = Repo(folder, repo_type, repo_id)
        initial = repo.new_commit(None, "initial commit", "",
                                  [Operation("add", ".gitattributes", GITATTRIBUTES)])
        repo.refs.branches["main"] = initial.oid
        repo.save()
        return repo
