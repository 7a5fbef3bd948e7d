"""Publish a validated dataset folder to the Hugging Face Hub.

    publish(DIST, "org/name")
      1. validate DIST (curate.export.validate); a folder with problems is refused, nothing is sent
      2. pick the files to send: README.md, LICENSE.md, data/**/*.parquet, croissant.json,
         plots/* images
      3. create the dataset repo (private on request; an existing repo is reused)
      4. one commit on main, or one pull request with ``create_pr=True``; files that are on the
         Hub under data/, plots/ or croissant.json but no longer in DIST are deleted in the same
         commit, so a stale shard cannot leak into the ``data/<config>/<split>-*`` globs
      5. tag that commit ``v<schema_version>`` (or ``tag``); a PR is not tagged: run publish
         again after merging it and the merged revision gets the tag (see docs/publish.md)

    A folder of ``large_above`` bytes or more (default 5 GB) goes through the Hub client's
    large-folder path instead of the single commit of step 4 (``upload_folder`` with hf_xet:
    uploads in parallel while files are checked, several commits, a progress bar; a re-run
    resumes an interrupted upload, sending only what main does not hold yet); the tag goes
    on the last commit.

The token comes from ``token``, else ``HF_TOKEN``, else the login cache; it is never logged and
never appears in an error message (Hub error texts are scrubbed before they are re-raised).
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.hf_api import CommitInfo, RepoFile

from curate.errors import CurateError
from curate.secrets import register_secret

__all__ = ["PublishError", "PublishResult", "publish", "publishable_files"]

log = logging.getLogger(__name__)

REPO_TYPE = "dataset"
# Paths publish owns in the repo: replaced on every publish, stale ones deleted.
MANAGED_PREFIXES = ("data/", "plots/")
MANAGED_FILES = ("README.md", "LICENSE.md", "croissant.json")
# Written by export for the person running it (counts by kind; the card already summarises
# them): kept local without a warning. Anything else unexpected is reported as stray.
LOCAL_ONLY = {"redaction_report.json"}
# From this size on a single commit is the slow path (one payload, no resume): see send_in_parts.
LARGE_FOLDER_BYTES = 5 * 10**9
PLOT_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".webp", ".gif"}
# The Hub's rules for a namespace or a repo name, and ORG/NAME is required (no implicit user).
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
REPO_ID_RE = re.compile(rf"^{_NAME}/{_NAME}$")


class PublishError(CurateError):
    """A dataset that cannot be published; the message says what to fix. Never holds a token."""


class ValidationReport(Protocol):
    ok: bool
    problems: list[str]


@dataclass(frozen=True)
class PublishResult:
    repo_id: str
    repo_url: str
    commit_sha: str
    commit_url: str
    revision: str  # "main", or "refs/pr/N" for a pull request
    tag: str | None  # the tag pointing at commit_sha; None for a pull request
    pr_url: str | None
    uploaded: tuple[str, ...] = field(default=())  # added and changed: the files sent
    deleted: tuple[str, ...] = field(default=())
    added: tuple[str, ...] = field(default=())
    changed: tuple[str, ...] = field(default=())
    unchanged: tuple[str, ...] = field(default=())  # the same bytes already there: not sent
    reused_pr: bool = False  # create_pr found a pull request with this content: none opened


def publish(dist: str | Path, repo_id: str, *, token: str | None = None, private: bool = False,
            create_pr: bool = False, tag: str | None = None, commit_message: str | None = None,
            endpoint: str | None = None, allow_unredacted: bool = False,
            large_above: int = LARGE_FOLDER_BYTES) -> PublishResult:
    """Upload the validated folder ``dist`` to the dataset repo ``repo_id`` and tag it.
    A folder whose redaction report has unresolved findings is refused unless
    ``allow_unredacted``; one of ``large_above`` bytes or more is sent in parts."""
    folder = Path(dist)
    check_repo_id(repo_id)
    check_valid(folder)
    check_redacted(folder, allow_unredacted=allow_unredacted)
    card = read_card_metadata(folder / "README.md")
    version_tag = choose_tag(card, tag=tag, create_pr=create_pr)
    secret = resolve_token(token)
    api = HfApi(endpoint=endpoint, token=secret)
    size = sum(path.stat().st_size for path in folder.rglob("*")
               if path.is_file() and is_publishable(path.relative_to(folder).as_posix()))
    with hub_errors(repo_id, api.endpoint, secret):
        return upload(api, folder, repo_id, private=private, create_pr=create_pr,
                      tag=version_tag, message=commit_message or default_message(repo_id, card),
                      in_parts=size >= large_above)


# -- checks before anything is sent ----------------------------------------------------------

def check_repo_id(repo_id: str) -> None:
    if not REPO_ID_RE.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise PublishError(
            f"repo id {repo_id!r} is not ORG/NAME: use letters, digits, '-', '_' or '.', "
            "one '/' between the organisation (or user) and the dataset name, e.g. "
            "--repo-id my-org/gui-trajectories")


def check_valid(folder: Path) -> None:
    if not folder.is_dir():
        raise PublishError(f"{folder} is not a folder; pass the output of `curate export`")
    # Imported here so publish only needs the validator when it runs (and tests can swap it).
    from curate.export.validate import validate

    report: ValidationReport = validate(folder)
    if not report.ok:
        shown = "\n  - ".join(report.problems[:20])
        more = f"\n  ... and {len(report.problems) - 20} more" if len(report.problems) > 20 else ""
        raise PublishError(f"{folder} fails validation, nothing was uploaded:\n  - {shown}{more}\n"
                           f"Fix the export and check it with `curate validate {folder}`.")


def check_redacted(folder: Path, *, allow_unredacted: bool) -> None:
    """Refuse a folder exported with secrets left in it (or with no redaction report)."""
    if allow_unredacted:
        log.warning("publishing %s without checking its redaction report (--allow-unredacted)",
                    folder)
        return
    report_path = folder / "redaction_report.json"
    hint = ("re-export without --no-redact, or pass --allow-unredacted if the data may be "
            "published as it is")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise PublishError(f"{report_path} is missing or unreadable, so nothing says the data "
                           f"was redacted; nothing was uploaded: {hint}") from None
    unresolved = report.get("unresolved") if isinstance(report, dict) else None
    if not isinstance(unresolved, dict):
        raise PublishError(f"{report_path} has no 'unresolved' findings list (written by an "
                           f"older curate?); nothing was uploaded: {hint}")
    if unresolved:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(unresolved.items()))
        raise PublishError(f"{folder} still holds secrets or personal data its export did not "
                           f"redact ({kinds}; see {report_path}); nothing was uploaded: {hint}")


def read_card_metadata(readme: Path) -> dict[str, Any]:
    """The YAML header of the data card (between the leading ``---`` lines)."""
    text = readme.read_text(encoding="utf-8")
    match = re.match(r"^---\r?\n(.*?)\r?\n---\s*(?:\r?\n|$)", text, re.DOTALL)
    data = yaml.safe_load(match.group(1)) if match else None
    if not isinstance(data, dict):
        raise PublishError(f"{readme} has no YAML metadata header; re-export the dataset")
    return data


def choose_tag(card: dict[str, Any], *, tag: str | None, create_pr: bool) -> str | None:
    """``tag``, else ``v<curate.schema_version>`` from the card; no tag for a pull request."""
    if create_pr:
        if tag is not None:
            raise PublishError("--tag cannot be used with --create-pr: a pull request is tagged "
                               "after it is merged (run publish again without --create-pr)")
        return None
    if tag is not None:
        return tag
    curate_meta = card.get("curate")
    version = curate_meta.get("schema_version") if isinstance(curate_meta, dict) else None
    if version is None:
        raise PublishError("README.md has no `curate: {schema_version: ...}` in its YAML header, "
                           "so there is no version to tag; re-export or pass --tag")
    return f"v{version}"


def resolve_token(token: str | None) -> str:
    # get_token() reads HF_TOKEN first, then the cache written by `hf auth login`.
    found = token or get_token()
    register_secret(found)  # scrubbed from every message and log line from now on
    if not found:
        raise PublishError("no Hugging Face token: set HF_TOKEN, run `hf auth login`, or pass "
                           "--token (a token with write access to the organisation)")
    return found


def default_message(repo_id: str, card: dict[str, Any]) -> str:
    meta = card.get("curate")
    meta = meta if isinstance(meta, dict) else {}
    version = meta.get("schema_version", "?")
    toolkit = meta.get("toolkit_version", "?")
    return f"Publish {repo_id} (curate schema v{version}, toolkit {toolkit})"


# -- what is sent ----------------------------------------------------------------------------

def publishable_files(folder: Path) -> list[str]:
    """Repo paths of the files publish sends; anything else in the folder stays local."""
    chosen: list[str] = []
    stray: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if is_publishable(relative):
            chosen.append(relative)
        elif relative not in LOCAL_ONLY:
            stray.append(relative)
    if stray:
        log.warning("not uploaded (not part of a dataset folder): %s", ", ".join(stray))
    return chosen


def is_publishable(relative: str) -> bool:
    if any(part.startswith(".") for part in relative.split("/")):
        return False
    if relative in MANAGED_FILES:
        return True
    if relative.startswith("data/"):
        return relative.endswith(".parquet")
    return relative.startswith("plots/") and Path(relative).suffix.lower() in PLOT_SUFFIXES


def stale_files(remote: list[str], local: list[str]) -> list[str]:
    """Files on the Hub that publish owns but the new folder no longer has."""
    keep = set(local)
    return [p for p in remote if p not in keep
            and (p.startswith(MANAGED_PREFIXES) or p in MANAGED_FILES)]


# -- talking to the Hub ----------------------------------------------------------------------

def upload(api: HfApi, folder: Path, repo_id: str, *, private: bool, create_pr: bool,
           tag: str | None, message: str, in_parts: bool = False) -> PublishResult:
    repo_url = str(api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True))
    head = str(api.repo_info(repo_id, repo_type=REPO_TYPE, revision="main").sha)
    local = publishable_files(folder)
    plan = plan_upload(api, repo_id, "main", folder, local)
    if create_pr:
        if plan.nothing_to_do:
            raise PublishError(f"{folder} holds exactly what main of {repo_id} holds: no pull "
                               "request opened (there is nothing to review)")
        same = open_pr_with(api, repo_id, folder, local)
        if same is not None:
            return same
    tagged = existing_tag(api, repo_id, tag) if tag is not None else None
    if tag is not None and tagged is not None and not (tagged == head and plan.nothing_to_do):
        refuse_existing_tag(repo_id, tag, tagged)
    if plan.nothing_to_do and not create_pr:
        # Nothing differs from main: no empty commit; the tag (if new) goes on main's head.
        if tag is not None and tagged is None:
            api.create_tag(repo_id, tag=tag, revision=head, repo_type=REPO_TYPE,
                           tag_message=message)
        log.info("%s is unchanged on %s: nothing committed", folder, repo_id)
        return plan.result(repo_id, repo_url, head, commit_url(api, repo_id, head), "main", tag,
                           None)
    if in_parts:
        info = send_in_parts(api, folder, repo_id, plan, create_pr=create_pr, head=head,
                             message=message)
    else:
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationDelete(path_in_repo=p) for p in plan.deleted]
        operations += [CommitOperationAdd(path_in_repo=p, path_or_fileobj=folder / p)
                       for p in plan.uploaded]
        # One commit for the whole folder, so a tag or a PR is always a complete dataset;
        # the parent pins the listing above: if main moved meanwhile the Hub refuses it.
        info = api.create_commit(repo_id, operations, commit_message=message,
                                 repo_type=REPO_TYPE, create_pr=create_pr, parent_commit=head)
    if tag is not None:
        api.create_tag(repo_id, tag=tag, revision=info.oid, repo_type=REPO_TYPE,
                       tag_message=message)
    log.info("published %s at %s%s", repo_id, info.oid, f" ({tag})" if tag else "")
    return plan.result(repo_id, repo_url, info.oid, info.commit_url,
                       info.pr_revision or "main", tag, info.pr_url)


def send_in_parts(api: HfApi, folder: Path, repo_id: str, plan: UploadPlan, *,
                  create_pr: bool, head: str, message: str) -> CommitInfo:
    """The Hub client's large-folder upload of the plan's files: several commits (the next
    ones titled "(part N)"), a progress bar on stderr. Interrupted, it leaves main with the
    parts committed so far and no tag; publish run again plans against that main, so only
    the rest is sent. Deletions and the parent pin ride the first part; the caller tags the
    last, so the tag, not main during an upload, is the complete dataset."""
    if not streamed_upload_available():
        log.warning("this huggingface_hub uploads a folder in one commit, without resume "
                    "(the multi-part upload needs huggingface_hub 2 with hf_xet, and "
                    "HF_HUB_DISABLE_XET unset)")
    # Exact paths as patterns (escaped): only the planned files go, only stale ones go away.
    info: CommitInfo = api.upload_folder(
        repo_id=repo_id, repo_type=REPO_TYPE, folder_path=folder, commit_message=message,
        create_pr=create_pr, parent_commit=head,
        allow_patterns=[glob.escape(p) for p in plan.uploaded],
        delete_patterns=[glob.escape(p) for p in plan.deleted] or None)
    return info


def streamed_upload_available() -> bool:
    """Whether the installed Hub client's upload_folder commits in resumable parts."""
    import importlib.util

    if importlib.util.find_spec("huggingface_hub._upload_pipeline") is None:
        return False
    from huggingface_hub.utils._runtime import is_xet_available  # not re-exported in 2.x

    return bool(is_xet_available())


@dataclass(frozen=True)
class UploadPlan:
    """How the folder differs from a revision on the Hub."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    deleted: tuple[str, ...]

    @property
    def uploaded(self) -> tuple[str, ...]:
        return tuple(sorted(self.added + self.changed))

    @property
    def nothing_to_do(self) -> bool:
        return not (self.added or self.changed or self.deleted)

    def result(self, repo_id: str, repo_url: str, sha: str, url: str, revision: str,
               tag: str | None, pr_url: str | None, *, reused_pr: bool = False
               ) -> PublishResult:
        return PublishResult(repo_id=repo_id, repo_url=repo_url, commit_sha=sha, commit_url=url,
                             revision=revision, tag=tag, pr_url=pr_url, uploaded=self.uploaded,
                             deleted=self.deleted, added=self.added, changed=self.changed,
                             unchanged=self.unchanged, reused_pr=reused_pr)


def plan_upload(api: HfApi, repo_id: str, revision: str, folder: Path,
                local: list[str]) -> UploadPlan:
    """Which local files are new, changed or the same as on ``revision`` (compared by content
    hash: the git blob id, or the LFS sha256), and which managed files it has that we lack."""
    remote = {entry.path: entry for entry in api.list_repo_tree(
        repo_id, repo_type=REPO_TYPE, revision=revision, recursive=True)
        if isinstance(entry, RepoFile)}
    added: list[str] = []
    changed: list[str] = []
    unchanged: list[str] = []
    for path in local:
        entry = remote.get(path)
        if entry is None:
            added.append(path)
        elif same_content(folder / path, entry):
            unchanged.append(path)
        else:
            changed.append(path)
    return UploadPlan(tuple(added), tuple(changed), tuple(unchanged),
                      tuple(stale_files(sorted(remote), local)))


def same_content(path: Path, entry: RepoFile) -> bool:
    data = path.read_bytes()
    if entry.lfs is not None:
        return hashlib.sha256(data).hexdigest() == entry.lfs.sha256
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == entry.blob_id


def open_pr_with(api: HfApi, repo_id: str, folder: Path,
                 local: list[str]) -> PublishResult | None:
    """An existing pull request that already holds exactly this folder: reused (with a
    warning) rather than a second, identical one opened."""
    refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE, include_pull_requests=True)
    for ref in refs.pull_requests or []:
        plan = plan_upload(api, repo_id, ref.ref, folder, local)
        if plan.nothing_to_do:
            number = ref.ref.rsplit("/", 1)[-1]
            url = f"{api.endpoint}/datasets/{repo_id}/discussions/{number}"
            log.warning("pull request #%s on %s already holds exactly this content: not "
                        "opening another (%s)", number, repo_id, url)
            return plan.result(repo_id, f"{api.endpoint}/datasets/{repo_id}", ref.target_commit,
                               commit_url(api, repo_id, ref.target_commit), ref.ref, None, url,
                               reused_pr=True)
    return None


def commit_url(api: HfApi, repo_id: str, sha: str) -> str:
    return f"{api.endpoint}/datasets/{repo_id}/commit/{sha}"


def existing_tag(api: HfApi, repo_id: str, tag: str) -> str | None:
    """The commit an existing tag points at, None when there is no such tag."""
    for ref in api.list_repo_refs(repo_id, repo_type=REPO_TYPE).tags:
        if ref.name == tag:
            return str(ref.target_commit)
    return None


def refuse_existing_tag(repo_id: str, tag: str, target: str) -> None:
    # A published version never moves: whoever loads revision="v1" must keep getting the same
    # rows, so an existing tag is an error before anything is uploaded.
    raise PublishError(
        f"tag {tag} already exists on {repo_id} (commit {target[:12]}); "
        "published versions are never moved: pass --tag with a new name "
        "(e.g. v1.1) or bump the schema version")


def transport_errors() -> tuple[type[Exception], ...]:
    """Connection errors of the HTTP client huggingface_hub uses (httpx2, or httpx before)."""
    found: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(found)


@contextmanager
def hub_errors(repo_id: str, endpoint: str, token: str) -> Iterator[None]:
    """Turn Hub failures into PublishError with a hint, with the token scrubbed from the text."""
    try:
        yield
    except HfHubHTTPError as error:
        raise PublishError(scrub(explain_http_error(error, repo_id, endpoint), token)) from None
    except transport_errors() as error:
        raise PublishError(scrub(f"cannot reach the Hub at {endpoint}: {error}; check the "
                                 "network or HF_ENDPOINT", token)) from None
    except ValueError as error:  # huggingface_hub's README metadata check (POST validate-yaml)
        raise PublishError(scrub(f"the Hub refused README.md: {error}", token)) from None


def explain_http_error(error: HfHubHTTPError, repo_id: str, endpoint: str) -> str:
    status = error.response.status_code if error.response is not None else None
    server = error.server_message or str(error).strip().splitlines()[0]
    if status == 401:
        return (f"the Hub at {endpoint} rejected the token (401 Unauthorized: {server}); set a "
                "valid token in HF_TOKEN or run `hf auth login`")
    if status == 403:
        return (f"the token may not write to {repo_id} (403 Forbidden: {server}); use a token "
                "with write access to that organisation")
    if status == 412:
        return f"{repo_id} changed while publishing (412: {server}); run publish again"
    return f"the Hub at {endpoint} refused publishing {repo_id} (HTTP {status}): {server}"


def scrub(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text
