"""A chat-completions server on 127.0.0.1 that answers like the grounding families do.

It speaks the OpenAI protocol (``POST /v1/chat/completions``), decodes the images it is sent
(data URLs) to learn their size, and answers deterministically through a *responder*: for
grounding, the target whose name occurs in the instruction is looked up in a table the test
gives, and its box is written in the family's documented output format and coordinate
convention (0-1000 grid, or absolute pixels on the image as the model's processor resizes it).
Tests inject faults (429 with Retry-After, 500, a body cut short, a truncated answer, a
garbage answer), add latency, and count requests. The resize rule is written here from the
models' documentation, independently of curate's parser, so the two check each other.
"""

from __future__ import annotations

import base64
import io
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image


@dataclass
class Request:
    """What the server was asked: the body, the images' sizes, the user text."""

    body: dict[str, Any]
    image_sizes: list[tuple[int, int]]
    text: str
    authorization: str | None
    image_urls: list[str] = field(default_factory=list)  # the data URLs, as sent

    def image_bytes(self, index: int = 0) -> bytes:
        """The bytes of an image sent, decoded from its data URL (on demand: a benchmark
        should not measure the server decoding every screenshot)."""
        return base64.b64decode(self.image_urls[index].split(",", 1)[1])


Responder = Callable[[Request], str]


def processor_resize(width: int, height: int, min_pixels: int, max_pixels: int,
                     factor: int = 28) -> tuple[int, int]:
    """The size the Qwen2-VL family's processor gives an image: both sides multiples of 28,
    the area kept within [min_pixels, max_pixels], the aspect ratio nearly kept."""
    new_h = max(factor, round(height / factor) * factor)
    new_w = max(factor, round(width / factor) * factor)
    if new_h * new_w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        new_h = math.floor(height / scale / factor) * factor
        new_w = math.floor(width / scale / factor) * factor
    elif new_h * new_w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        new_h = math.ceil(height * scale / factor) * factor
        new_w = math.ceil(width * scale / factor) * factor
    return new_w, new_h


QWEN25_PIXELS = (4 * 28 * 28, 16384 * 28 * 28)
UITARS15_PIXELS = (100 * 28 * 28, 16384 * 28 * 28)


def render_grounding(family: str, box: Box, label: str, size: tuple[int, int]) -> str:
    """A box written as the family writes it (centre point for point families)."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if family == "ui-tars-1.0":
        return f"({round(cx * 1000)},{round(cy * 1000)})"
    if family == "ui-tars-1.5":
        width, height = processor_resize(*size, *UITARS15_PIXELS)
        return f"Action: click(start_box='({round(cx * width)},{round(cy * height)})')"
    if family == "qwen2.5-vl":
        width, height = processor_resize(*size, *QWEN25_PIXELS)
        bbox = [round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height)]
        return "```json\n" + json.dumps([{"bbox_2d": bbox, "label": label}]) + "\n```"
    if family == "qwen3-vl":
        point = [round(cx * 1000), round(cy * 1000)]
        return "```json\n" + json.dumps([{"point_2d": point, "label": label}]) + "\n```"
    if family == "os-atlas":
        corners = f"({round(x0 * 1000)},{round(y0 * 1000)}),({round(x1 * 1000)},{round(y1 * 1000)})"
        return f"<|object_ref_start|>{label}<|object_ref_end|><|box_start|>{corners}<|box_end|>"
    raise ValueError(f"the test server knows no family {family!r}")


def grounding_responder(family: str, targets: Mapping[str, Box]) -> Responder:
    """Finds the target named in the request (the longest name it contains) and answers in
    the family's format; names nothing it cannot find (a model saying it cannot see it)."""
    names = sorted(targets, key=len, reverse=True)

    def respond(request: Request) -> str:
        text = request.text.lower()
        for name in names:
            if name.lower() in text:
                return render_grounding(family, targets[name], name, request.image_sizes[0])
        return "I cannot find that element on the screen."

    return respond


class ModelServer:
    """The server, in a thread of the test process. Use as a context manager."""

    def __init__(self, responder: Responder | None = None, *, latency: float = 0.0) -> None:
        self.responder: Responder = responder or (lambda request: "ok")
        self.latency = latency
        self.requests: list[Request] = []
        self.faults: deque[str] = deque()
        # Requests being answered now, and the most there ever were at once: what a
        # concurrency test checks, instead of a wall-clock time on a shared machine.
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def inject(self, *faults: str) -> None:
        """Faults for the next requests, in order: ``429`` (Retry-After: 0), ``429:S``
        (Retry-After S seconds), ``500``, ``401``, ``cut`` (body shorter than announced),
        ``truncated`` (answer cut, finish_reason length), ``garbage``."""
        with self._lock:
            self.faults.extend(faults)

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self) -> str | None:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes: without this, Nagle's algorithm
                # and the client's delayed ACK add ~40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/stats"):
                    self._send(200, {"requests": server.count})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                request = _parse(raw, self.headers.get("Authorization"))
                server._record(request)
                if server.latency:
                    server._enter()
                    try:
                        time.sleep(server.latency)
                    finally:
                        server._leave()
                fault = server._next_fault()
                if fault is not None and self._fault(fault, request):
                    return
                answer = server.responder(request)
                finish = "stop"
                if fault == "truncated":
                    answer, finish = answer[: max(1, len(answer) // 2)], "length"
                elif fault == "garbage":
                    answer = "As an AI model I would rather not say."
                self._send(200, _completion(request.body.get("model", ""), answer, finish))

            def _fault(self, fault: str, request: Request) -> bool:
                if fault.startswith("429"):
                    wait = fault.partition(":")[2] or "0"
                    self._send(429, {"error": {"message": "rate limited"}},
                               {"Retry-After": wait})
                    return True
                if fault in ("500", "401"):
                    self._send(int(fault), {"error": {"message": f"injected {fault}"}})
                    return True
                if fault == "cut":
                    payload = json.dumps(_completion("", "cut", "stop")).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return True
                return False

            def _send(self, status: int, body: dict[str, Any],
                      headers: Mapping[str, str] | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _parse(raw: bytes, authorization: str | None) -> Request:
    body = json.loads(raw)
    sizes: list[tuple[int, int]] = []
    urls: list[str] = []
    texts: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for part in parts:
            if part.get("type") == "image_url":
                urls.append(part["image_url"]["url"])
                sizes.append(_image_size(urls[-1]))
            elif part.get("type") == "text" and message.get("role") != "system":
                texts.append(part.get("text") or "")
    return Request(body, sizes, "\n".join(texts), authorization, urls)


def _image_size(url: str) -> tuple[int, int]:
    """The size of a data-URL image, from its header when that is enough (a PNG's is in its
    first bytes): decoding a whole screenshot per request would make the test server, not
    the client, what a benchmark measures."""
    encoded = url.split(",", 1)[1]
    for chunk in (encoded[:4096], encoded):
        try:
            with Image.open(io.BytesIO(base64.b64decode(chunk))) as picture:
                return picture.size
        except (OSError, ValueError):
            continue
    raise ValueError("the request's image cannot be read")


def _completion(model: str, text: str, finish: str) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}
