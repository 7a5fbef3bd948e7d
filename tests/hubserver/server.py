"""A small Hugging Face Hub-compatible HTTP server for offline tests (stdlib only).

It implements the part of the Hub HTTP API that ``huggingface_hub`` (create_repo, create_commit,
upload_folder, create_tag, list_repo_refs, list_repo_files, repo_info, hf_hub_download,
HfFileSystem) and ``datasets.load_dataset`` call, as read from those libraries' sources:

    GET  /api/whoami-v2
    POST /api/repos/create                            {name, organization, type, visibility}
    POST /api/validate-yaml                           {content, repoType}
    GET  /api/{type}s/{ns}/{name}[/revision/{rev}]    repo info: sha, siblings, cardData
    GET  /api/{type}s/{ns}/{name}/refs[?include_prs=1]
    GET  /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]?recursive=&expand=
    POST /api/{type}s/{ns}/{name}/paths-info/{rev}    form: paths=..., expand=
    POST /api/{type}s/{ns}/{name}/preupload/{rev}     answers uploadMode "regular" for every file
    POST /api/{type}s/{ns}/{name}/commit/{rev}[?create_pr=1]   NDJSON: header/file/deleted*
    POST /api/{type}s/{ns}/{name}/tag/{rev}           {tag, message}
    GET|HEAD /[{type}s/]{ns}/{name}/resolve/{rev}/{path}   X-Repo-Commit, ETag, Range (206)

Auth follows the Hub: a wrong bearer token is a 401 "Invalid credentials in Authorization
header" on every route; reads of public repos need no token; writes need the write token.
Requests the server does not know are answered 404 and recorded in ``unhandled`` so a test
can fail loudly when a client starts calling something new.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from .repos import Commit, HubError, Operation, Repo, RepoStore, git_blob_oid

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
USER = "curate-tester"


@dataclass
class Request:
    method: str
    segments: list[str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    user: str | None = None
    role: str = ""

    def param(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    def flag(self, name: str) -> bool:
        return self.param(name).lower() in {"1", "true"}

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of_json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


# -- card metadata, checked like the Hub does on upload ----------------------------------------

def card_metadata(readme: bytes) -> dict[str, Any]:
    """The YAML header of a README as a dict; raises ValueError when it is not a mapping."""
    text = readme.decode("utf-8")
    match = re.match(r"^---\r?\n(.*?)\r?\n---\s*(\r?\n|$)", text, re.DOTALL)
    if match is None:
        return {}
    data = yaml.safe_load(match.group(1)) or {}
    if not isinstance(data, dict):
        raise ValueError("the YAML header must be a mapping")
    return data


LICENSE_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def license_and_language_errors(data: dict[str, Any]) -> list[str]:
    """The Hub's metadata rules for these keys (its documented dataset-card metadata): a
    license of "other" needs license_name (lower-case, digits, '-', '.') and license_link;
    language is a code or a list of ISO 639 codes."""
    errors = []
    if data.get("license") == "other":
        name = data.get("license_name")
        if not isinstance(name, str) or not LICENSE_NAME.match(name):
            errors.append('"license_name" is required (lower-case) when license is "other"')
        if not isinstance(data.get("license_link"), str) or not data["license_link"]:
            errors.append('"license_link" is required when license is "other"')
    if "language" in data:
        languages = data["language"]
        languages = [languages] if isinstance(languages, str) else languages
        if not isinstance(languages, list) or not all(
                isinstance(code, str) and LANGUAGE.match(code) for code in languages):
            errors.append('"language" must be an ISO 639 code or a list of them')
    return errors


def card_errors(readme: bytes) -> list[str]:
    try:
        data = card_metadata(readme)
    except (ValueError, yaml.YAMLError) as error:
        return [f"Invalid YAML in README.md: {error}"]
    configs = data.get("configs", [])
    if not isinstance(configs, list):
        return ['"configs" must be a list']
    errors = license_and_language_errors(data)
    for config in configs:
        if not isinstance(config, dict) or not isinstance(config.get("config_name"), str):
            errors.append('each entry of "configs" needs a string "config_name"')
        elif not isinstance(config.get("data_files", []), str | list):
            errors.append(f'"data_files" of {config["config_name"]} must be a string or a list')
    return errors


# -- the API ---------------------------------------------------------------------------------

class HubApi:
    """Route handlers over a RepoStore; pure functions of (Request) -> Response."""

    def __init__(self, store: RepoStore, tokens: dict[str, str], endpoint: Callable[[], str]):
        self.store = store
        self.tokens = tokens  # token -> role ("write" or "read")
        self.endpoint = endpoint
        self.commits_left: int | None = None  # commits accepted before a simulated outage

    def repo_url(self, repo: Repo) -> str:
        return f"{self.endpoint()}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    # -- auth and lookup

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header:
            return
        token = header.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        request.user, request.role = USER, self.tokens[token]

    def require_write(self, request: Request) -> None:
        if request.user is None:
            raise HubError(401, "You must be authenticated to write to a repository")
        if request.role != "write":
            raise HubError(403, "You don't have the rights to write to this repository "
                                "(your token is read-only)")

    def readable_repo(self, request: Request, repo_type: str, repo_id: str) -> Repo:
        repo = self.store.get(repo_type, repo_id)
        if repo.private and request.user is None:
            # The Hub hides private repos from anonymous callers instead of saying "forbidden".
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    # -- account and repo creation

    def whoami(self, request: Request) -> Response:
        if request.user is None:
            raise HubError(401, "You must be authenticated to call whoami")
        return Response.of_json({
            "type": "user", "id": "0" * 24, "name": request.user, "fullname": "Curate Tester",
            "orgs": [], "auth": {"type": "access_token",
                                 "accessToken": {"displayName": "tests", "role": request.role}}})

    def create_repo(self, request: Request) -> Response:
        self.require_write(request)
        payload = request.json()
        repo_type = payload.get("type") or "model"
        name, namespace = payload.get("name", ""), payload.get("organization") or request.user
        if repo_type not in URL_PREFIX or not NAME_RE.match(name) or not NAME_RE.match(namespace):
            raise HubError(400, f"Invalid repo name or type: {namespace}/{name} ({repo_type})")
        repo_id = f"{namespace}/{name}"
        private = payload.get("visibility") == "private" or payload.get("private") is True
        with self.store.lock:
            if self.store.exists(repo_type, repo_id):
                url = self.repo_url(self.store.get(repo_type, repo_id))
                return Response.of_json(
                    {"error": f"You already created this {repo_type} repo", "url": url}, 409)
            repo = self.store.create(repo_type, repo_id, private=private)
        return Response.of_json({"url": self.repo_url(repo), "name": repo_id, "id": repo_id})

    def validate_yaml(self, request: Request) -> Response:
        content = str(request.json().get("content", ""))
        errors = card_errors(content.encode())
        if errors:
            return Response.of_json({"errors": [{"message": e} for e in errors]}, 400)
        return Response.of_json({"errors": [], "warnings": []})

    # -- reading a repo

    def repo_info(self, request: Request, repo: Repo, revision: str) -> Response:
        commit = repo.resolve(revision)
        blobs = request.flag("blobs")
        siblings = [self.sibling(repo, path, oid, blobs)
                    for path, oid in sorted(commit.files.items())]
        readme = commit.files.get("README.md")
        card: dict[str, Any] = {}
        if readme is not None:
            try:
                card = card_metadata(repo.blob(readme))
            except (ValueError, yaml.YAMLError):
                card = {}
        author = repo.repo_id.split("/")[0]
        return Response.of_json({
            "_id": commit.oid[:24], "id": repo.repo_id, "author": author, "sha": commit.oid,
            "lastModified": commit.date, "createdAt": repo.created, "private": repo.private,
            "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
            "cardData": card, "siblings": siblings})

    def sibling(self, repo: Repo, path: str, oid: str, blobs: bool) -> dict[str, Any]:
        if not blobs:
            return {"rfilename": path}
        return {"rfilename": path, "blobId": oid, "size": repo.blob_size(oid)}

    def refs(self, request: Request, repo: Repo) -> Response:
        def ref(name: str, full: str, oid: str) -> dict[str, str]:
            return {"name": name, "ref": full, "targetCommit": oid}

        data: dict[str, Any] = {
            "branches": [ref(n, f"refs/heads/{n}", o) for n, o in repo.refs.branches.items()],
            "tags": [ref(n, f"refs/tags/{n}", o) for n, o in repo.refs.tags.items()],
            "converts": []}
        if request.flag("include_prs"):
            data["pullRequests"] = [ref(f"refs/pr/{n}", f"refs/pr/{n}", o)
                                    for n, o in sorted(repo.refs.pulls.items())]
        return Response.of_json(data)

    def tree(self, request: Request, repo: Repo, revision: str, path: str) -> Response:
        commit = repo.resolve(revision)
        prefix = path.strip("/")
        if prefix and prefix in commit.files:
            raise HubError(400, f"{prefix} is a file, not a folder")
        if prefix and not any(p.startswith(prefix + "/") for p in commit.files):
            raise HubError(404, f"Folder not found: {prefix}", "EntryNotFound")
        recursive, expand = request.flag("recursive"), request.flag("expand")
        entries = tree_entries(commit, prefix, recursive=recursive)
        return Response.of_json([self.entry(repo, commit, p, expand) for p in entries])

    def paths_info(self, request: Request, repo: Repo, revision: str) -> Response:
        commit = repo.resolve(revision)
        form = parse_qs(request.body.decode(), keep_blank_values=True)
        expand = form.get("expand", ["false"])[0].lower() in {"1", "true"}
        found = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files or any(p.startswith(path + "/") for p in commit.files):
                found.append(self.entry(repo, commit, path, expand))
        return Response.of_json(found)

    def entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        if path in commit.files:
            oid = commit.files[path]
            data: dict[str, Any] = {"type": "file", "oid": oid, "size": repo.blob_size(oid),
                                    "path": path}
            lfs = repo.lfs_info(oid)
            if lfs is not None:
                data["lfs"] = lfs
        else:
            inside = sorted((p, o) for p, o in commit.files.items() if p.startswith(path + "/"))
            data = {"type": "directory", "oid": git_blob_oid(json.dumps(inside).encode()),
                    "size": 0, "path": path}
        if expand:
            last = last_commit_touching(repo, commit, path)
            data["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return data

    def resolve_file(self, request: Request, repo: Repo, revision: str, path: str) -> Response:
        commit = repo.resolve(revision)
        oid = commit.files.get(path)
        if oid is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound",
                           {"X-Repo-Commit": commit.oid})
        size = repo.blob_size(oid)
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{oid}"', "Accept-Ranges": "bytes",
                   "Content-Type": "application/octet-stream"}
        byte_range = request.headers.get("range")
        if not byte_range:
            return Response(200, repo.blob(oid), headers)
        # Only the asked range is read: clients stream multi-GB Parquet files by ranges.
        start, end = parse_range(byte_range, size)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Response(206, repo.blob_range(oid, start, end), headers)

    # -- writing a repo

    def preupload(self, request: Request, repo: Repo, revision: str) -> Response:
        self.require_write(request)
        base = repo.resolve("main" if request.flag("create_pr") else revision)
        files = request.json().get("files", [])
        # Every file goes in the commit payload ("regular"), so no LFS or Xet storage is needed;
        # the oid of the file already there lets the client skip unchanged files, as on the Hub.
        return Response.of_json({"files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": base.files.get(f["path"])} for f in files]})

    def commit(self, request: Request, repo: Repo, revision: str) -> Response:
        self.require_write(request)
        if self.commits_left is not None:
            # An outage a test switches on: 507 is not retried by the client, so the upload
            # stops here as an interrupted one would.
            if self.commits_left <= 0:
                raise HubError(507, "the test Hub is out of space (simulated outage)")
            self.commits_left -= 1
        header, operations = parse_commit_payload(request.body)
        for op in operations:
            if op.kind == "add" and op.path == "README.md" and card_errors(op.content):
                raise HubError(400, "Invalid metadata in README.md: "
                               + "; ".join(card_errors(op.content)))
        with self.store.lock:
            repo = self.store.get(repo.repo_type, repo.repo_id)  # re-read under the lock
            if request.flag("create_pr"):
                return self.commit_to_new_pr(repo, revision, header, operations)
            return self.commit_to_ref(repo, revision, header, operations)

    def commit_to_ref(self, repo: Repo, revision: str, header: dict[str, Any],
                      operations: list[Operation]) -> Response:
        ref = writable_ref(repo, revision)
        head = repo.resolve(revision)
        expected = header.get("parentCommit")
        if expected and not head.oid.startswith(expected):
            raise HubError(412, f"Parent commit {expected} is not the head of {revision} "
                                f"({head.oid}): the branch moved, pull and retry")
        commit = repo.new_commit(head, header.get("summary", ""), header.get("description", ""),
                                 operations)
        ref(commit.oid)
        repo.save()
        return Response.of_json({"success": True, "commitOid": commit.oid,
                                 "commitUrl": f"{self.repo_url(repo)}/commit/{commit.oid}",
                                 "hookOutput": "", "pullRequestUrl": None})

    def commit_to_new_pr(self, repo: Repo, revision: str, header: dict[str, Any],
                         operations: list[Operation]) -> Response:
        if revision not in repo.refs.branches:
            raise HubError(400, f"Pull requests can only target a branch, not {revision}")
        parent = repo.resolve(header.get("parentCommit") or revision)
        commit = repo.new_commit(parent, header.get("summary", ""), header.get("description", ""),
                                 operations)
        number = max(repo.refs.pulls, default=0) + 1
        repo.refs.pulls[number] = commit.oid
        repo.save()
        url = self.repo_url(repo)
        return Response.of_json({"success": True, "commitOid": commit.oid,
                                 "commitUrl": f"{url}/commit/{commit.oid}", "hookOutput": "",
                                 "pullRequestUrl": f"{url}/discussions/{number}"})

    def tag(self, request: Request, repo: Repo, revision: str) -> Response:
        self.require_write(request)
        name = str(request.json().get("tag", ""))
        if not name or "/" in name or name.startswith("refs"):
            raise HubError(400, f"Invalid tag name: {name!r}")
        with self.store.lock:
            repo = self.store.get(repo.repo_type, repo.repo_id)
            commit = repo.resolve(revision)
            if name in repo.refs.tags or name in repo.refs.branches:
                raise HubError(409, f"Tag {name} already exists")
            repo.refs.tags[name] = commit.oid
            repo.save()
        return Response.of_json({"name": name, "ref": f"refs/tags/{name}",
                                 "targetCommit": commit.oid})


def writable_ref(repo: Repo, revision: str) -> Callable[[str], None]:
    """A setter for the ref a commit may advance: a branch or an open PR, never a tag or sha."""
    name = revision.removeprefix("refs/heads/")
    if name in repo.refs.branches:
        return lambda oid: repo.refs.branches.__setitem__(name, oid)
    if revision.startswith("refs/pr/") and int(revision[8:] or 0) in repo.refs.pulls:
        number = int(revision[8:])
        return lambda oid: repo.refs.pulls.__setitem__(number, oid)
    if revision in repo.refs.tags or len(revision) == 40:
        raise HubError(400, f"Invalid rev id: {revision} is not a branch")
    raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


def parse_commit_payload(body: bytes) -> tuple[dict[str, Any], list[Operation]]:
    header: dict[str, Any] | None = None
    operations = []
    for line in body.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key, value = item.get("key"), item.get("value", {})
        if key == "header":
            header = value
        elif key == "file":
            if value.get("encoding") != "base64":
                raise HubError(400, f"unsupported encoding for {value.get('path')}")
            operations.append(Operation("add", value["path"], base64.b64decode(value["content"])))
        elif key == "deletedFile":
            operations.append(Operation("delete_file", value["path"]))
        elif key == "deletedFolder":
            operations.append(Operation("delete_folder", value["path"]))
        else:
            # lfsFile and copies need an LFS store; preupload never asks for LFS, so a client
            # sending one has ignored the upload mode the server chose.
            raise HubError(400, f"commit line {key!r} is not supported by the test Hub")
    if header is None:
        raise HubError(400, "commit payload has no header line")
    return header, operations


def tree_entries(commit: Commit, prefix: str, *, recursive: bool) -> list[str]:
    """Paths of files and folders under ``prefix``: direct children, or all descendants."""
    base = prefix + "/" if prefix else ""
    found: set[str] = set()
    for path in commit.files:
        if not path.startswith(base):
            continue
        parts = path[len(base):].split("/")
        depth = len(parts) if recursive else 1
        for index in range(1, min(depth, len(parts)) + 1):
            found.add(base + "/".join(parts[:index]))
    return sorted(found)


def last_commit_touching(repo: Repo, commit: Commit, path: str) -> Commit:
    def snapshot(c: Commit) -> list[tuple[str, str]]:
        return sorted((p, o) for p, o in c.files.items() if p == path or p.startswith(path + "/"))

    current = commit
    while current.parent is not None:
        parent = repo.commit(current.parent)
        if snapshot(parent) != snapshot(current):
            return current
        current = parent
    return current


def parse_range(header: str, size: int) -> tuple[int, int]:
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or match.groups() == ("", ""):
        raise HubError(416, f"Unsupported range {header}")
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    if start >= size or start > end:
        raise HubError(416, f"Range {header} is outside the file ({size} bytes)")
    return start, end


# -- routing ---------------------------------------------------------------------------------

def split_revision(segments: list[str]) -> tuple[str, list[str]]:
    """The revision at the head of ``segments`` (``refs/pr/N`` may arrive unquoted) and the rest."""
    if len(segments) >= 3 and segments[0] == "refs" and segments[1] in {"pr", "heads", "tags",
                                                                         "convert"}:
        return "/".join(segments[:3]), segments[3:]
    if not segments:
        raise HubError(404, "missing revision")
    return segments[0], segments[1:]


def route(api: HubApi, request: Request) -> Response:
    api.authenticate(request)
    seg, method = request.segments, request.method
    if seg[:1] == ["api"]:
        return route_api(api, request, seg[1:], method)
    if len(seg) >= 5 and seg[0] in {"datasets", "spaces"} and seg[3] == "resolve":
        repo = api.readable_repo(request, REPO_TYPES[seg[0]], f"{seg[1]}/{seg[2]}")
        revision, rest = split_revision(seg[4:])
        return api.resolve_file(request, repo, revision, "/".join(rest))
    if len(seg) >= 4 and seg[2] == "resolve":
        repo = api.readable_repo(request, "model", f"{seg[0]}/{seg[1]}")
        revision, rest = split_revision(seg[3:])
        return api.resolve_file(request, repo, revision, "/".join(rest))
    raise LookupError


def route_api(api: HubApi, request: Request, seg: list[str], method: str) -> Response:
    if seg == ["whoami-v2"] and method == "GET":
        return api.whoami(request)
    if seg == ["repos", "create"] and method == "POST":
        return api.create_repo(request)
    if seg == ["validate-yaml"] and method == "POST":
        return api.validate_yaml(request)
    if len(seg) < 3 or seg[0] not in REPO_TYPES:
        raise LookupError
    repo = api.readable_repo(request, REPO_TYPES[seg[0]], f"{seg[1]}/{seg[2]}")
    action, rest = (seg[3], seg[4:]) if len(seg) > 3 else ("", [])
    if action == "" and method == "GET":
        return api.repo_info(request, repo, "main")
    if action == "refs" and method == "GET":
        return api.refs(request, repo)
    handlers: dict[tuple[str, str], Callable[[Request, Repo, str], Response]] = {
        ("revision", "GET"): api.repo_info, ("paths-info", "POST"): api.paths_info,
        ("preupload", "POST"): api.preupload, ("commit", "POST"): api.commit,
        ("tag", "POST"): api.tag}
    if action == "tree" and method == "GET":
        revision, path = split_revision(rest)
        return api.tree(request, repo, revision, "/".join(path))
    if (action, method) in handlers:
        revision, _ = split_revision(rest)
        return handlers[(action, method)](request, repo, revision)
    raise LookupError


# -- HTTP plumbing ---------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the Hub clients expect
    server: _HTTPServer

    def do_GET(self) -> None:
        self.dispatch()

    def do_HEAD(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def dispatch(self) -> None:
        split = urlsplit(self.path)
        segments = [unquote(s) for s in split.path.strip("/").split("/")]
        request = Request(self.command, segments, parse_qs(split.query, keep_blank_values=True),
                          {k.lower(): v for k, v in self.headers.items()}, self.read_body())
        hub = self.server.hub
        try:
            response = route(hub.api, request)
        except HubError as error:
            response = error_response(error)
        except LookupError:
            hub.unhandled.append(f"{self.command} {self.path}")
            response = Response.of_json({"error": f"not implemented: {self.command} {split.path}"},
                                        404)
        hub.log.append((self.command, self.path, response.status))
        self.send(response)

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
            sent = self.server.hub.bytes_sent
            path = self.path.split("?", 1)[0]
            sent[path] = sent.get(path, 0) + len(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are recorded in ``HubServer.log``; stderr stays quiet."""


def error_response(error: HubError) -> Response:
    response = Response.of_json({"error": error.message}, error.status)
    response.headers["X-Error-Message"] = error.message
    if error.code:
        response.headers["X-Error-Code"] = error.code
    response.headers.update(error.headers)
    return response


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: HubServer


class HubServer:
    """The test Hub on 127.0.0.1: ``start()`` it, point ``HF_ENDPOINT`` at ``endpoint``.

    ``token`` may write; ``read_token`` may only read (to test permission errors).
    """

    def __init__(self, root: Path, *, token: str, read_token: str = "hf_read_only_token",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = RepoStore(root)
        self.token = token
        self.read_token = read_token
        self.log: list[tuple[str, str, int]] = []
        self.bytes_sent: dict[str, int] = {}  # request path -> body bytes sent
        self.unhandled: list[str] = []
        self._http = _HTTPServer((host, port), _Handler)
        self._http.hub = self
        self.api = HubApi(self.store, {token: "write", read_token: "read"}, lambda: self.endpoint)
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self._http.serve_forever, name="test-hub",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def repo(self, repo_id: str, repo_type: str = "dataset") -> Repo:
        """Direct access to a stored repo, for assertions."""
        return self.store.get(repo_type, repo_id)

    def has_repo(self, repo_id: str, repo_type: str = "dataset") -> bool:
        return self.store.exists(repo_type, repo_id)


def main() -> None:
    """``python -m hubserver.server ROOT TOKEN [PORT]``: serve until interrupted (manual use)."""
    import sys

    root, token = Path(sys.argv[1]), sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    server = HubServer(root, token=token, port=port)
    print(f"HF_ENDPOINT={server.endpoint}", flush=True)
    try:
        server._http.serve_forever()
    except KeyboardInterrupt:
        server._http.server_close()


if __name__ == "__main__":
    main()
