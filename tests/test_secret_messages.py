"""No message, log line or debug output prints a credential: a real HTTP server on 127.0.0.1
answers every Label Studio call with a 500 whose body and headers echo the API key and other
planted tokens, and the real `curate` process runs against it with -vv."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import NativeFactory
from secret_corpus import CORPUS

from curate.pipeline.ingest import ingest

REPO = Path(__file__).resolve().parents[1]
API_KEY = "0f3c9a7be21d4c58a6e9b0d17f2c4e8a9b3d5e61"  # 40-hex, a Label Studio legacy token
PLANTED = [p for p in CORPUS if p.kind in ("jwt", "stripe_live_key", "hf_token_short",
                                           "aws_secret_key", "slack_webhook")]


class EchoingServer(BaseHTTPRequestHandler):
    """Answers everything with 500, echoing the request's credentials back, as misconfigured
    proxies and debug-mode servers do."""

    def _answer(self) -> None:
        echoed = self.headers.get("Authorization", "")
        body = json.dumps({"detail": "Internal Server Error", "request_auth": echoed,
                           "env": {"LABEL_STUDIO_API_KEY": API_KEY},
                           "debug": [p.text for p in PLANTED]}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Debug-Authorization", echoed)
        self.send_header("Set-Cookie", f"sessionid={PLANTED[0].secrets[0]}; Path=/")
        self.send_header("X-Upstream", PLANTED[1].text)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(native_episode: NativeFactory, tmp_path: Path) -> Path:
    native_episode("ep")
    ingest([tmp_path / "recordings"], tmp_path / "store")
    return tmp_path / "store"


def _curate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "curate.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                               "HF_HUB_OFFLINE": "1"})


def _leaks(output: str) -> list[str]:
    values = [API_KEY, *(s for p in PLANTED for s in p.secrets)]
    return [value for value in values if value in output]


def test_a_500_echoing_the_key_in_body_and_headers_prints_no_secret_even_with_vv(
        echo_server: str, store: Path) -> None:
    result = _curate("-vv", "review", "status", str(store), "--project", "p",
                     "--url", f"http://{echo_server}", "--api-key", API_KEY)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "answered 500" in output
    assert "DEBUG" in output  # debug output was on: the HTTP libraries logged the exchange
    assert _leaks(output) == [], output


def test_credentials_in_the_server_url_are_not_echoed_in_errors(store: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    password = "Pr1vate-Passw0rd"
    result = _curate("-vv", "review", "status", str(store), "--project", "p", "--url",
                     f"http://reviewer:{password}@127.0.0.1:{port}", "--api-key", API_KEY)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "cannot reach Label Studio" in output, output
    assert "127.0.0.1" in output  # the server is still named
    assert password not in output and API_KEY not in output, output
