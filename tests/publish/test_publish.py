"""`curate.export.publish` end to end against the test Hub: publish, reload by tag, PRs, tokens.

The dataset is a real export of examples/recordings (ingest → label → segment → export), so
what is published is exactly what `curate export` writes and `curate validate` accepts.
Client code runs in a subprocess pointed at the test Hub (see tests/hubserver/fixture.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hubserver import HubServer
from hubserver.fixture import last_json_line, run_client

from curate.store.outputs import MARKER
from curate.store.schema import SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "recordings"
REPO_ID = "curate-org/gui-trajectories"
# The tag publish gives by default: v<the store schema version>.
TAG = f"v{SCHEMA_VERSION}"

PUBLISH = """
import dataclasses, json, sys
from curate.export.publish import PublishError, publish
args = json.load(sys.stdin)
try:
    result = publish(**args)
except PublishError as error:
    print(json.dumps({"error": str(error)}))
else:
    print(json.dumps({"result": dataclasses.asdict(result)}))
"""

LOAD = """
import base64, json, sys
import datasets
args = json.load(sys.stdin)
out = {}
for config in args["configs"]:
    loaded = datasets.load_dataset(args["repo_id"], config, revision=args["revision"])
    out[config] = {}
    for split, table in loaded.items():
        kinds = {name: type(feature).__name__ for name, feature in table.features.items()}
        if "image" in table.features:
            table = table.cast_column("image", datasets.Image(decode=False))
        rows = [{k: ({"bytes": base64.b64encode(v["bytes"]).decode(), "path": v["path"]}
                     if k == "image" and v is not None else v) for k, v in row.items()}
                for row in table]
        out[config][split] = {"features": kinds, "rows": rows}
print(json.dumps(out, default=str))
"""


# -- the dataset -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def segmented_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from curate.pipeline.ingest import ingest
    from curate.pipeline.label import label
    from curate.pipeline.segment import segment

    store = tmp_path_factory.mktemp("publish") / "store"
    ingest([EXAMPLES], store)
    label(store)
    segment(store)
    return store


ExportFactory = Callable[..., Path]


@pytest.fixture
def export_dist(segmented_store: Path, tmp_path: Path) -> ExportFactory:
    """Export the example store to a fresh folder; keyword arguments go to ExportParams."""
    from curate.export import ExportParams, export

    def make(name: str = "dist", **params: Any) -> Path:
        out = tmp_path / name
        export(segmented_store, out, params=ExportParams(flavours=("plain",), **params))
        return out

    return make


def expected_rows(dist: Path, config: str, split: str) -> list[dict[str, Any]]:
    """Rows as the parquet files hold them, images as base64, for comparing with a reload."""
    rows = []
    for path in sorted((dist / "data" / config).glob(f"{split}-*.parquet")):
        for row in pq.read_table(path).to_pylist():
            image = row.get("image")
            if image is not None:
                row["image"] = {"bytes": base64.b64encode(image["bytes"]).decode(),
                                "path": image["path"]}
            rows.append(row)
    return json.loads(json.dumps(rows, default=str))


def splits_of(dist: Path, config: str) -> list[str]:
    return sorted({p.name.split("-")[0] for p in (dist / "data" / config).glob("*.parquet")})


# -- running clients -------------------------------------------------------------------------

def publish_via_client(hub: HubServer, tmp_path: Path, *, token: str | None = None,
                       env_token: str | None = None, **args: Any) -> dict[str, Any]:
    """Run curate.export.publish in a fresh interpreter; returns {"result": ...} or {"error":
    ...}."""
    args.setdefault("repo_id", REPO_ID)
    args["dist"] = str(args["dist"])
    if token is not None:
        args["token"] = token
    result = run_client(PUBLISH, endpoint=hub.endpoint, hf_home=tmp_path / "hf_home_publish",
                        token=env_token, stdin=args)
    for secret in (hub.token, hub.read_token, token, env_token):
        if secret:
            assert secret not in result.stdout + result.stderr, "a token was printed"
    answer: dict[str, Any] = last_json_line(result)
    return answer


def load_via_client(hub: HubServer, tmp_path: Path, revision: str,
                    configs: tuple[str, ...] = ("stage1", "stage2"),
                    token: str | None = None) -> dict[str, Any]:
    result = run_client(LOAD, endpoint=hub.endpoint, hf_home=tmp_path / f"hf_home_{revision}",
                        token=token, stdin={"repo_id": REPO_ID, "revision": revision,
                                            "configs": list(configs)})
    assert result.returncode == 0, result.stderr[-4000:]
    loaded: dict[str, Any] = last_json_line(result)
    return loaded


def writes(hub: HubServer) -> list[tuple[str, str, int]]:
    return [entry for entry in hub.log if entry[0] != "GET" and entry[0] != "HEAD"]


# -- publishing and reloading ----------------------------------------------------------------

def test_publish_then_load_dataset_by_tag_returns_the_same_rows(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    dist = export_dist()
    answer = publish_via_client(hub_server, tmp_path, dist=dist, env_token=hub_server.token)
    assert answer["result"]["tag"] == TAG

    loaded = load_via_client(hub_server, tmp_path, revision=TAG)

    for config in ("stage1", "stage2"):
        assert sorted(loaded[config]) == splits_of(dist, config)
        for split, table in loaded[config].items():
            assert table["features"]["image"] == "Image", "image feature metadata was lost"
            assert table["rows"] == expected_rows(dist, config, split)


def test_publish_commits_only_dataset_files_and_tags_the_schema_version(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    dist = export_dist()
    (dist / "notes.txt").write_text("local scratch, not part of the dataset")
    (dist / "data" / ".DS_Store").write_bytes(b"\0")

    result = publish_via_client(hub_server, tmp_path, dist=dist,
                                env_token=hub_server.token)["result"]

    repo = hub_server.repo(REPO_ID)
    main = repo.resolve("main")
    expected = sorted(p.relative_to(dist).as_posix() for p in dist.rglob("*")
                      if p.is_file() and p.name not in {"notes.txt", ".DS_Store",
                                                        "redaction_report.json", MARKER})
    assert sorted(main.files) == sorted([".gitattributes", *expected])
    assert sorted(result["uploaded"]) == expected
    assert repo.refs.tags == {TAG: main.oid} and result["commit_sha"] == main.oid
    assert result["revision"] == "main" and result["pr_url"] is None
    assert result["commit_url"] == f"{hub_server.endpoint}/datasets/{REPO_ID}/commit/{main.oid}"
    assert repo.blob(main.files["README.md"]) == (dist / "README.md").read_bytes()
    assert not repo.private


def test_private_option_creates_a_repo_anonymous_readers_cannot_see(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    dist = export_dist()
    publish_via_client(hub_server, tmp_path, dist=dist, token=hub_server.token, private=True)

    assert hub_server.repo(REPO_ID).private
    anonymous = run_client(LOAD, endpoint=hub_server.endpoint, hf_home=tmp_path / "anon",
                           stdin={"repo_id": REPO_ID, "revision": TAG, "configs": ["stage2"]})
    assert anonymous.returncode != 0 and "DatasetNotFoundError" in anonymous.stderr
    loaded = load_via_client(hub_server, tmp_path, TAG, ("stage2",), token=hub_server.token)
    assert loaded["stage2"]["train"]["rows"] == expected_rows(dist, "stage2", "train")


def test_create_pr_opens_refs_pr_1_and_leaves_main_and_tags_unchanged(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    first = export_dist("first")
    publish_via_client(hub_server, tmp_path, dist=first, env_token=hub_server.token)
    main_before = hub_server.repo(REPO_ID).resolve("main").oid
    second = export_dist("second", splits={"train": 0.5, "test": 0.5}, seed=7)

    result = publish_via_client(hub_server, tmp_path, dist=second, create_pr=True,
                                env_token=hub_server.token)["result"]

    repo = hub_server.repo(REPO_ID)
    assert repo.resolve("main").oid == main_before
    assert repo.refs.tags == {TAG: main_before}
    assert repo.refs.pulls == {1: result["commit_sha"]}
    assert result["revision"] == "refs/pr/1" and result["tag"] is None
    assert result["pr_url"] == f"{hub_server.endpoint}/datasets/{REPO_ID}/discussions/1"
    pr_rows = load_via_client(hub_server, tmp_path, "refs/pr/1", ("stage2",))
    assert pr_rows["stage2"]["test"]["rows"] == expected_rows(second, "stage2", "test")


def test_republish_deletes_shards_the_new_export_no_longer_has(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    publish_via_client(hub_server, tmp_path, dist=export_dist("v1"), env_token=hub_server.token)
    train_only = export_dist("v2", splits={"train": 1.0})

    result = publish_via_client(hub_server, tmp_path, dist=train_only, tag="train-only",
                                env_token=hub_server.token)["result"]

    main = hub_server.repo(REPO_ID).resolve("main")
    assert sorted(result["deleted"]) == ["data/stage1/test-00000-of-00001.parquet",
                                         "data/stage2/test-00000-of-00001.parquet"]
    assert not [p for p in main.files if "/test-" in p]
    loaded = load_via_client(hub_server, tmp_path, "train-only", ("stage1",))
    assert sorted(loaded["stage1"]) == ["train"]
    assert loaded["stage1"]["train"]["rows"] == expected_rows(train_only, "stage1", "train")


def test_an_existing_tag_is_never_moved_and_nothing_is_uploaded(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    publish_via_client(hub_server, tmp_path, dist=export_dist("a"), env_token=hub_server.token)
    head = hub_server.repo(REPO_ID).resolve("main").oid
    commits_before = [e for e in writes(hub_server) if "/commit/" in e[1]]

    answer = publish_via_client(hub_server, tmp_path, dist=export_dist("b", seed=3),
                                env_token=hub_server.token)

    assert f"tag {TAG} already exists" in answer["error"] and "--tag" in answer["error"]
    assert hub_server.repo(REPO_ID).resolve("main").oid == head
    assert [e for e in writes(hub_server) if "/commit/" in e[1]] == commits_before


def test_only_dataset_files_are_chosen_and_strays_are_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from curate.export.publish import publishable_files

    for name in ["README.md", "croissant.json", "data/stage1/train-00000-of-00001.parquet",
                 "data/stage1/notes.md", "plots/sources.png", "plots/raw.csv", ".env",
                 "data/.cache/x.parquet", "redaction_report.json", "notes.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")

    chosen = publishable_files(tmp_path)

    assert chosen == ["README.md", "croissant.json", "data/stage1/train-00000-of-00001.parquet",
                      "plots/sources.png"]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    for stray in [".env", "data/stage1/notes.md", "notes.txt", "plots/raw.csv"]:
        assert stray in warning
    assert "redaction_report.json" not in warning


# -- refusals --------------------------------------------------------------------------------

def test_folder_that_fails_validation_uploads_nothing(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    dist = export_dist()
    card = (dist / "README.md").read_text()
    (dist / "README.md").write_text(card.replace("license: other\n", "", 1))

    answer = publish_via_client(hub_server, tmp_path, dist=dist, env_token=hub_server.token)

    assert "fails validation, nothing was uploaded" in answer["error"]
    assert "'license' is missing" in answer["error"]
    assert hub_server.log == [] and not hub_server.has_repo(REPO_ID)


def test_wrong_token_fails_with_a_clear_error_that_does_not_contain_the_token(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    wrong = "hf_WrongTokenThatMustNeverBePrinted1234"

    answer = publish_via_client(hub_server, tmp_path, dist=export_dist(), token=wrong)

    assert "rejected the token (401" in answer["error"]
    assert "HF_TOKEN" in answer["error"] and wrong not in answer["error"]
    assert not hub_server.has_repo(REPO_ID)


def test_read_only_token_is_told_it_cannot_write(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    answer = publish_via_client(hub_server, tmp_path, dist=export_dist(),
                                env_token=hub_server.read_token)

    assert "403" in answer["error"] and "write access" in answer["error"]
    assert not hub_server.has_repo(REPO_ID)


def test_missing_token_names_the_ways_to_provide_one(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    answer = publish_via_client(hub_server, tmp_path, dist=export_dist())

    assert answer["error"].startswith("no Hugging Face token: set HF_TOKEN, run `hf auth login`")
    assert hub_server.log == []


def test_token_is_read_from_the_login_cache(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    home = tmp_path / "hf_home_publish"  # the HF_HOME publish_via_client gives the client
    home.mkdir()
    (home / "token").write_text(hub_server.token)

    answer = publish_via_client(hub_server, tmp_path, dist=export_dist())

    assert answer["result"]["tag"] == TAG


@pytest.mark.parametrize("repo_id", ["no-namespace", "org/name/extra", "org/-dash", "org/a--b",
                                     "org/with space", "../etc"])
def test_malformed_repo_id_is_refused_before_any_request(
        local_hub: tuple[str, str], hub_server: HubServer, tmp_path: Path, repo_id: str) -> None:
    from curate.export.publish import PublishError, publish

    endpoint, token = local_hub
    with pytest.raises(PublishError, match="is not ORG/NAME"):
        publish(tmp_path, repo_id, token=token, endpoint=endpoint)
    assert hub_server.log == []


def test_tag_with_create_pr_is_refused(hub_server: HubServer, export_dist: ExportFactory,
                                       tmp_path: Path) -> None:
    answer = publish_via_client(hub_server, tmp_path, dist=export_dist(), create_pr=True,
                                tag=TAG, env_token=hub_server.token)

    assert "--tag cannot be used with --create-pr" in answer["error"]
    assert hub_server.log == []


# -- redaction gate --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def store_with_an_email(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    from curate.pipeline.ingest import ingest
    from curate.pipeline.label import label
    from curate.pipeline.segment import segment

    root = tmp_path_factory.mktemp("publish_secret")
    shutil.copytree(EXAMPLES, root / "recordings")
    copy = root / "recordings" / "native_notes"
    shutil.copytree(EXAMPLES / "native" / "settings_rename", copy)
    meta = copy / "episode.json"
    body = json.loads(meta.read_text())
    body["instruction"] = "Send the report to jane.doe@example.org"
    meta.write_text(json.dumps(body))
    ingest([root / "recordings"], root / "store")
    label(root / "store")
    segment(root / "store")
    return root / "store"


def test_an_export_with_unredacted_secrets_is_refused_unless_allowed(
        hub_server: HubServer, store_with_an_email: Path, tmp_path: Path) -> None:
    from curate.export import ExportParams, export

    dist = tmp_path / "raw"
    export(store_with_an_email, dist, params=ExportParams(flavours=("plain",), redact=False))

    answer = publish_via_client(hub_server, tmp_path, dist=dist, env_token=hub_server.token)
    assert "did not redact (email 1" in answer["error"]
    assert "--allow-unredacted" in answer["error"]
    assert hub_server.log == [] and not hub_server.has_repo(REPO_ID)

    allowed = publish_via_client(hub_server, tmp_path, dist=dist, env_token=hub_server.token,
                                 allow_unredacted=True)
    assert allowed["result"]["tag"] == TAG


def test_a_redacted_export_of_the_same_store_publishes(
        hub_server: HubServer, store_with_an_email: Path, tmp_path: Path) -> None:
    from curate.export import ExportParams, export

    dist = tmp_path / "clean"
    export(store_with_an_email, dist, params=ExportParams(flavours=("plain",)))
    assert json.loads((dist / "redaction_report.json").read_text())["distinct_secrets"]
    answer = publish_via_client(hub_server, tmp_path, dist=dist, env_token=hub_server.token)
    assert answer["result"]["tag"] == TAG


def test_a_folder_without_a_redaction_report_is_refused(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    dist = export_dist()
    (dist / "redaction_report.json").unlink()
    answer = publish_via_client(hub_server, tmp_path, dist=dist, env_token=hub_server.token)
    assert "redaction_report.json is missing" in answer["error"]
    assert hub_server.log == []


# -- telling the truth about what was sent ---------------------------------------------------

def test_republishing_reports_added_changed_and_unchanged_files(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    dist = export_dist()
    first = publish_via_client(hub_server, tmp_path, dist=dist,
                               env_token=hub_server.token)["result"]
    assert first["unchanged"] == [] and first["changed"] == []
    assert sorted(first["added"]) == sorted(first["uploaded"])
    head = hub_server.repo(REPO_ID).resolve("main").oid
    commits_before = [e for e in writes(hub_server) if "/commit/" in e[1]]

    same = publish_via_client(hub_server, tmp_path, dist=dist,
                              env_token=hub_server.token)["result"]
    assert (same["added"], same["changed"], same["uploaded"], same["deleted"]) == ([], [], [],
                                                                                   [])
    assert sorted(same["unchanged"]) == sorted(first["added"])
    assert same["commit_sha"] == head and same["tag"] == TAG
    assert [e for e in writes(hub_server) if "/commit/" in e[1]] == commits_before

    (dist / "LICENSE.md").write_text("changed licence text\n")
    edited = publish_via_client(hub_server, tmp_path, dist=dist, tag="v1.1",
                                env_token=hub_server.token)["result"]
    assert edited["changed"] == ["LICENSE.md"] and edited["added"] == []
    assert len(edited["unchanged"]) == len(first["added"]) - 1


def test_a_second_identical_pull_request_is_reused_not_opened(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    publish_via_client(hub_server, tmp_path, dist=export_dist("first"),
                       env_token=hub_server.token)
    second = export_dist("second", splits={"train": 0.5, "test": 0.5}, seed=7)
    opened = publish_via_client(hub_server, tmp_path, dist=second, create_pr=True,
                                env_token=hub_server.token)["result"]
    again = publish_via_client(hub_server, tmp_path, dist=second, create_pr=True,
                               env_token=hub_server.token)["result"]
    assert again["reused_pr"] and not opened["reused_pr"]
    assert again["pr_url"] == opened["pr_url"] and again["revision"] == "refs/pr/1"
    assert hub_server.repo(REPO_ID).refs.pulls == {1: opened["commit_sha"]}
    unchanged = publish_via_client(hub_server, tmp_path, dist=export_dist("first"),
                                   create_pr=True, env_token=hub_server.token)
    assert "no pull request opened" in unchanged["error"]


def test_publish_help_shows_the_token_option() -> None:
    from click.testing import CliRunner

    from curate.cli import cli

    shown = CliRunner().invoke(cli, ["publish", "--help"]).output
    assert "--token" in shown and "shell history" in " ".join(shown.split())
# -- large folders: the Hub client's multi-commit upload, and its resume -------------------

# The example export has ~15 files and the client commits up to 250 at a time, so the client's
# own commit size is set to 2 files here to see the parts; its upload path is otherwise as
# shipped (hf_xet on, which the other tests switch off).
PUBLISH_LARGE = """
import os
os.environ["HF_HUB_DISABLE_XET"] = "0"
import huggingface_hub._upload_pipeline as pipeline
pipeline.COMMIT_SIZE_SCALE = [2]
pipeline.INITIAL_COMMIT_SIZE_INDEX = 0
""" + PUBLISH


def publishable(dist: Path) -> list[str]:
    from curate.export.publish import publishable_files

    return publishable_files(dist)


def publish_large(hub: HubServer, tmp_path: Path, dist: Path) -> dict[str, Any]:
    result = run_client(PUBLISH_LARGE, endpoint=hub.endpoint, hf_home=tmp_path / "hf_large",
                        token=hub.token, stdin={"dist": str(dist), "repo_id": REPO_ID,
                                                "large_above": 0})
    answer: dict[str, Any] = last_json_line(result)
    return answer


def added_per_commit(hub: HubServer) -> list[list[str]]:
    """For each commit on main, oldest first, the paths it added or changed."""
    repo = hub.repo(REPO_ID)
    commits = []
    commit = repo.resolve("main")
    while commit.parent is not None:
        parent = repo.commit(commit.parent)
        commits.append(sorted(p for p, oid in commit.files.items()
                              if parent.files.get(p) != oid))
        commit = parent
    return commits[::-1]


def test_a_large_folder_is_published_in_parts_and_tagged_complete(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    dist = export_dist()
    result = publish_large(hub_server, tmp_path, dist)["result"]
    repo = hub_server.repo(REPO_ID)
    main = repo.resolve("main")
    parts = added_per_commit(hub_server)
    assert len(parts) > 2 and all(len(part) <= 2 for part in parts)
    assert sorted(p for part in parts for p in part) == sorted(result["uploaded"])
    assert repo.refs.tags == {TAG: main.oid} and result["commit_sha"] == main.oid
    for path in result["uploaded"]:
        assert repo.blob(main.files[path]) == (dist / path).read_bytes(), path
    loaded = load_via_client(hub_server, tmp_path, revision=TAG, configs=("stage1",))
    for split, table in loaded["stage1"].items():
        assert table["rows"] == expected_rows(dist, "stage1", split)


def test_an_interrupted_large_publish_resumes_where_it_stopped(
        hub_server: HubServer, export_dist: ExportFactory, tmp_path: Path) -> None:
    dist = export_dist()
    hub_server.api.commits_left = 2
    failed = publish_large(hub_server, tmp_path, dist)
    assert "507" in failed["error"] and "out of space" in failed["error"]
    repo = hub_server.repo(REPO_ID)
    assert repo.refs.tags == {}  # no tag on an incomplete upload
    before = added_per_commit(hub_server)
    sent_before = {p for part in before for p in part}
    assert len(before) == 2 and sent_before

    hub_server.api.commits_left = None
    result = publish_large(hub_server, tmp_path, dist)["result"]
    after = added_per_commit(hub_server)[len(before):]
    resent = {p for part in after for p in part}
    assert resent == set(result["uploaded"]) and not resent & sent_before
    assert set(result["unchanged"]) == sent_before  # committed before: not sent again
    assert sorted(resent | sent_before) == publishable(dist)
    main = hub_server.repo(REPO_ID).resolve("main")
    assert hub_server.repo(REPO_ID).refs.tags == {TAG: main.oid}
    for path in result["uploaded"]:
        assert hub_server.repo(REPO_ID).blob(main.files[path]) == (dist / path).read_bytes()
