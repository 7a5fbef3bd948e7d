"""`curate ingest hf://datasets/...` against the test Hub on 127.0.0.1 (tests/hubserver).

curate runs in a fresh interpreter whose environment points huggingface_hub at the test Hub
(HF_ENDPOINT is read at import). The Hub serves real byte ranges and lists the LFS sha256 of
the Parquet shards as huggingface.co does; the test counts the bytes it sent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hubserver.fixture import client_env, hub_server
from hubserver.mind2web import publish_files, write_shard
from hubserver.server import HubServer

from curate.store import open_store

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests/fixtures/mind2web/multimodal/test_task-00000-of-00001.parquet"
REPO_ID = "osunlp-test/mm-mind2web"
TABLES = ("episodes", "steps", "frames", "rejects")
__all__ = ["hub_server"]  # the test Hub fixture, used by name


def curate(hub: HubServer, tmp: Path, *args: str, fault: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    env = client_env(hub.endpoint, tmp / "hf-home")
    env["PYTHONPATH"] = str(REPO)
    env["CURATE_CACHE"] = str(tmp / "cache")
    if fault:
        env["CURATE_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "curate.cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def tables(store: Path) -> dict[str, list[dict[str, object]]]:
    opened = open_store(store)
    return {name: opened.read(name).to_pylist() for name in TABLES}


def store_files(store: Path) -> dict[str, str]:
    """sha256 of every file curate writes into a store but its random marker and lock."""
    return {path.relative_to(store).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(store.rglob("*"))
            if path.is_file() and not path.name.startswith(".curate")}


def shard_bytes_sent(hub: HubServer) -> int:
    return sum(n for path, n in hub.bytes_sent.items() if path.endswith(".parquet"))


@pytest.fixture
def shards(tmp_path: Path) -> dict[str, Path]:
    """Two shards: the hand-made fixture (a task split across row groups, a row without a
    screenshot) and a generated one whose pages carry 20 kB of HTML per row."""
    folder = tmp_path / "shards"
    folder.mkdir()
    generated = folder / "train-00001-of-00002.parquet"
    write_shard(generated, tasks=6, actions=3, html_bytes=20_000, rows_per_group=4)
    shutil.copy(FIXTURE, folder / "train-00000-of-00002.parquet")
    return {f"data/{p.name}": p for p in sorted(folder.iterdir())}


def test_streaming_writes_the_store_a_downloaded_copy_gives(
        hub_server: HubServer, tmp_path: Path, shards: dict[str, Path]) -> None:
    publish_files(hub_server, REPO_ID, shards)
    ok(curate(hub_server, tmp_path, "ingest", f"hf://datasets/{REPO_ID}/data",
              "-o", str(tmp_path / "streamed")))
    local = tmp_path / "copy" / "data"
    local.mkdir(parents=True)
    for name, path in shards.items():
        shutil.copy(path, local / Path(name).name)
    ok(curate(hub_server, tmp_path, "ingest", str(local), "-o", str(tmp_path / "local")))

    streamed, copied = tables(tmp_path / "streamed"), tables(tmp_path / "local")
    assert streamed == copied
    # Byte for byte: the same batch files (screenshots written from the Arrow buffers the
    # rows were read into, whether the file came by ranges or from disk) and manifest.
    assert store_files(tmp_path / "streamed") == store_files(tmp_path / "local")
    assert len(streamed["episodes"]) == 2 + 6
    # Nothing was mirrored: the shards were read by ranges, never copied into the cache.
    assert not list((tmp_path / "cache").rglob("*.parquet"))


def test_only_the_columns_curate_reads_are_fetched(
        hub_server: HubServer, tmp_path: Path, shards: dict[str, Path]) -> None:
    big = tmp_path / "big.parquet"
    size = write_shard(big, tasks=8, actions=3, html_bytes=400_000, rows_per_group=6)
    publish_files(hub_server, REPO_ID, {"data/train-00000-of-00001.parquet": big})
    html = sum(pq.ParquetFile(big).metadata.row_group(g).column(c).total_compressed_size
               for g in range(pq.ParquetFile(big).metadata.num_row_groups) for c in (1, 2))
    ok(curate(hub_server, tmp_path, "ingest", f"hf://datasets/{REPO_ID}/data",
              "-o", str(tmp_path / "store")))
    assert len(tables(tmp_path / "store")["episodes"]) == 8
    assert html > size / 2  # the HTML columns are most of the file ...
    assert shard_bytes_sent(hub_server) < size - html / 2  # ... and most of them never sent


def test_a_rerun_fetches_nothing_and_a_changed_shard_is_read_again(
        hub_server: HubServer, tmp_path: Path, shards: dict[str, Path]) -> None:
    publish_files(hub_server, REPO_ID, shards)
    url, store = f"hf://datasets/{REPO_ID}/data", str(tmp_path / "store")
    ok(curate(hub_server, tmp_path, "ingest", url, "-o", store))
    before = tables(tmp_path / "store")
    hub_server.bytes_sent.clear()
    out = ok(curate(hub_server, tmp_path, "ingest", url, "-o", store))
    assert shard_bytes_sent(hub_server) == 0, out
    assert tables(tmp_path / "store") == before

    changed = tmp_path / "changed.parquet"
    write_shard(changed, tasks=2, first_task=50, actions=2)
    publish_files(hub_server, REPO_ID, {"data/train-00001-of-00002.parquet": changed})
    ok(curate(hub_server, tmp_path, "ingest", url, "-o", store))
    ids = {row["source_id"] for row in tables(tmp_path / "store")["episodes"]}
    assert {i.rsplit("#", 1)[1] for i in ids} == {"m2w-books", "m2w-music", "task-000050",
                                                 "task-000051"}


def test_limit_reads_the_first_tasks_of_each_file_and_lifting_it_reads_the_rest(
        hub_server: HubServer, tmp_path: Path, shards: dict[str, Path]) -> None:
    publish_files(hub_server, REPO_ID, shards)
    url, store = f"hf://datasets/{REPO_ID}/data", str(tmp_path / "store")
    ok(curate(hub_server, tmp_path, "ingest", url, "-o", store, "--limit", "1"))
    ids = sorted(row["source_id"].rsplit("#", 1)[1]
                 for row in tables(tmp_path / "store")["episodes"])
    assert ids == ["m2w-books", "task-000000"]
    steps = tables(tmp_path / "store")["steps"]
    assert len(steps) == 3 + 3  # each task whole, with all its rows
    ok(curate(hub_server, tmp_path, "ingest", url, "-o", store))
    assert len(tables(tmp_path / "store")["episodes"]) == 8


def test_an_interrupted_stream_resumes_after_the_last_committed_file(
        hub_server: HubServer, tmp_path: Path, shards: dict[str, Path]) -> None:
    publish_files(hub_server, REPO_ID, shards)
    url, store = f"hf://datasets/{REPO_ID}/data", str(tmp_path / "store")
    killed = curate(hub_server, tmp_path, "ingest", url, "-o", store, "--batch-units", "1",
                    fault="ingest.after-unit@2")  # batch 1 committed
    assert killed.returncode == -9, killed.stderr
    hub_server.bytes_sent.clear()
    ok(curate(hub_server, tmp_path, "ingest", url, "-o", store, "--batch-units", "1"))
    sent = {path.rsplit("/", 1)[1] for path, n in hub_server.bytes_sent.items()
            if path.endswith(".parquet") and n}
    assert sent == {"train-00001-of-00002.parquet"}  # the first file was not fetched again
    assert len(tables(tmp_path / "store")["episodes"]) == 8


def test_a_missing_repo_and_a_limit_without_a_hub_source_are_clear_errors(
        hub_server: HubServer, tmp_path: Path) -> None:
    missing = curate(hub_server, tmp_path, "ingest", "hf://datasets/nobody/nothing",
                     "-o", str(tmp_path / "store"))
    assert missing.returncode != 0
    assert "hf://datasets/nobody/nothing" in missing.stderr
    assert "Traceback" not in missing.stderr
    local = curate(hub_server, tmp_path, "ingest", str(FIXTURE.parent), "-o",
                   str(tmp_path / "store2"), "--limit", "1")
    assert local.returncode != 0 and "--limit" in local.stderr
    assert "Traceback" not in local.stderr
    assert not os.path.exists(tmp_path / "store2" / "manifest.json")


def test_a_jsonl_release_is_streamed_line_by_line_beside_its_mirrored_images(
        hub_server: HubServer, tmp_path: Path) -> None:
    release = REPO / "tests/fixtures/agentnet_hf"
    files = {f"release/{p.relative_to(release).as_posix()}": p
             for p in sorted(release.rglob("*")) if p.is_file()}
    publish_files(hub_server, "xlangai-test/agentnet", files)
    ok(curate(hub_server, tmp_path, "ingest", "hf://datasets/xlangai-test/agentnet/release",
              "-o", str(tmp_path / "streamed")))
    local = tmp_path / "copy" / "release"
    shutil.copytree(release, local)
    ok(curate(hub_server, tmp_path, "ingest", str(local), "-o", str(tmp_path / "local")))
    streamed = tables(tmp_path / "streamed")
    assert streamed == tables(tmp_path / "local")
    assert streamed["frames"]  # the screenshots came from the mirrored images/ folder
    cached = {p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert not any(name.endswith(".jsonl") for name in cached)  # streamed, not copied
    assert any(name.endswith(".png") for name in cached)
    ok(curate(hub_server, tmp_path, "ingest", "hf://datasets/xlangai-test/agentnet/release",
              "-o", str(tmp_path / "limited"), "--limit", "1"))
    assert len(tables(tmp_path / "limited")["episodes"]) == 1


def test_a_failed_read_ahead_is_raised_in_the_reading_thread(
        hub_server: HubServer, tmp_path: Path) -> None:
    # Spans come from a Parquet footer, which a damaged file may get wrong: the background
    # fetch of a span running past the end of the file fails, and the reader gets that
    # error when it reads inside the span (not short data, not a hang); close() still ends.
    data = tmp_path / "small.bin"
    data.write_bytes(bytes(range(256)) * 4)
    publish_files(hub_server, REPO_ID, {"data/small.bin": data})
    code = ("import threading\n"
            "from curate.sources.adapters.base import RemoteFile\n"
            "from curate.sources.hub import ReadAhead\n"
            f"handle = ReadAhead(RemoteFile('datasets/{REPO_ID}/data/small.bin', 1024, None,"
            " None))\n"
            "handle.prefetch([(1000, 1100)])\n"
            "handle.seek(1000)\n"
            "try:\n    handle.read(100)\nexcept OSError as error:\n    print('raised')\n"
            "handle.close()\n"
            "print(sorted(t.name.split('_')[0] for t in threading.enumerate()))\n")
    env = client_env(hub_server.endpoint, tmp_path / "hf-home")
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "raised"
    assert "MainThread" in lines[-1] and "curate-hub" not in lines[-1]  # worker joined
