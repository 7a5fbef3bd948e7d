"""A fault-injecting HTTP proxy in front of the Label Studio server.

Every request is forwarded as is; for the next ``lose`` POST requests whose path matches
``pattern`` the server's response is read and thrown away, and the client's connection is
closed without an answer: the server did the work, the client never hears of it (a lost
response, as behind a load balancer that times out). With ``repeat`` the next matching POSTs
are sent to the server twice (a retrying middlebox), and the client gets the second answer.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class LosingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, pattern: str, lose: int, repeat: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.pattern = re.compile(pattern)
        self.lose, self.repeat = lose, repeat
        self.lost = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def should_lose(self, method: str, path: str) -> bool:
        with self.lock:
            if self.lose > 0 and method == "POST" and self.pattern.search(path):
                self.lose -= 1
                self.lost += 1
                return True
            return False

    def sends(self, method: str, path: str) -> int:
        """How many times to send this request to the server."""
        with self.lock:
            if self.repeat > 0 and method == "POST" and self.pattern.search(path):
                self.repeat -= 1
                return 2
            return 1


class _Handler(BaseHTTPRequestHandler):
    server: LosingProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet in test output
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        for _ in range(self.server.sends(self.command, self.path)):
            upstream = http.client.HTTPConnection(*self.server.upstream, timeout=120)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
            finally:
                upstream.close()
        if self.server.should_lose(self.command, self.path):
            self.close_connection = True
            self.connection.close()  # the server did it; the client hears nothing
            return
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward


@contextmanager
def faulty_proxy(upstream: str, pattern: str, *, lose: int = 0,
                 repeat: int = 0) -> Iterator[LosingProxy]:
    proxy = LosingProxy(upstream, pattern, lose, repeat)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
