"""A real Label Studio server for the review tests, and a small labelled store.

The server comes from its own virtual environment (``.ls-venv``, installed by .ci/run; path
overridable with CURATE_LABEL_STUDIO_BIN), runs on a free 127.0.0.1 port with a temporary
data dir and a fresh token, and is stopped at the end of the session. When the binary is
missing the tests fail in CI (CI=true) and are skipped elsewhere.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser import unavailable

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / ".ls-venv" / "bin" / "label-studio"
START_TIMEOUT = 600.0  # cold start runs the migrations: ~20 s on 2 idle cores, minutes when shared


@dataclass(frozen=True)
class LabelStudioServer:
    url: str
    token: str
    username: str
    password: str
    local_root: Path


def open_task(page: Any, server: LabelStudioServer, project_id: int, task_id: int) -> None:
    """Log into the UI as the server's reviewer and open one task of a project."""
    page.goto(f"{server.url}/user/login/")
    page.fill("input[name=email]", server.username)
    page.fill("input[name=password]", server.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)
    page.goto(f"{server.url}/projects/{project_id}/data?tab=0&task={task_id}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _server_env(data_dir: Path, local_root: Path, token: str) -> dict[str, str]:
    # A bare USERNAME/PASSWORD in the environment is read by Label Studio too: drop them.
    env = {k: v for k, v in os.environ.items()
           if k not in ("USERNAME", "PASSWORD") and not k.startswith("LABEL_STUDIO_")}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": "reviewer@example.com",
        "LABEL_STUDIO_PASSWORD": "curate-review-pass",
        "LABEL_STUDIO_USER_TOKEN": token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(local_root),
    })
    return env


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"label-studio exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"label-studio did not answer {url}/health within {START_TIMEOUT:.0f} s:"
                       f"\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioServer]:
    binary = Path(os.environ.get("CURATE_LABEL_STUDIO_BIN", str(DEFAULT_BIN)))
    if not binary.exists():
        unavailable(f"no Label Studio server at {binary}: python3 -m venv .ls-venv && "
                    ".ls-venv/bin/pip install 'label-studio==1.23.*' "
                    "(or set CURATE_LABEL_STUDIO_BIN)")
    root = tmp_path_factory.mktemp("label_studio")
    data_dir, local_root = root / "data", root / "files"
    data_dir.mkdir()
    local_root.mkdir()
    token = secrets.token_hex(20)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(binary), "start", "--no-browser", "--internal-host", "127.0.0.1",
             "--port", str(port)],
            cwd=root, env=_server_env(data_dir, local_root, token), stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(url, process, log)
        yield LabelStudioServer(url, token, "reviewer@example.com", "curate-review-pass",
                                local_root)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server we started (its own process group: it may fork workers)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def sample_store(sample_store_template: Path, tmp_path: Path) -> Path:
    """A private copy of the labelled store (pull writes into it)."""
    import shutil

    target = tmp_path / "store"
    shutil.copytree(sample_store_template, target)
    return target
