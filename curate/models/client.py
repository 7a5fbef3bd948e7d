"""One client for OpenAI-compatible chat-completions servers (vLLM, SGLang, TGI, hosted APIs).

Requests carry images as ``data:`` URLs, go out at most ``concurrency`` at a time, retry with
exponential backoff on 429 and 5xx (honouring ``Retry-After``) and on connection errors, and
every answer is kept in a content-addressed cache (:mod:`curate.models.cache`), so a re-run
makes zero calls. The API key is read from an environment variable, sent only in the
``Authorization`` header and scrubbed from every message.

Why synchronous httpx with a thread pool rather than asyncio: every caller is synchronous
(the CLI, and the trainers' reward managers, which call a plain function and sometimes already
run inside an event loop of their own, where ``asyncio.run`` would fail); a request spends its
time waiting on the socket, which releases the GIL, so a few dozen threads sharing one
``httpx.Client`` connection pool reach the server's concurrency at no measurable cost, and the
code stays a plain loop that is easy to follow and to test.

Errors never escape :meth:`ChatClient.chat_many`: a request that cannot be answered comes
back as a :class:`ChatResult` with ``error`` set (``unreachable`` or ``http_error``), so a run
over a whole store goes on. :meth:`ChatClient.chat` raises :class:`ModelError` instead.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.errors import CurateError
from curate.models.cache import CachedAnswer, ModelCache

log = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "CURATE_MODEL_API_KEY"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Image hashes are the store's frame ids (curate.store.frames.content_id) so known ids can be
# reused.
FRAME_ID_HEX = 32


class ModelError(CurateError):
    """A model server that could not answer: names the URL and the status or failure."""


@dataclass(frozen=True, slots=True)
class Image:
    """An image part: the bytes as recorded and their MIME type.

    Its hash in the cache key is the store's frame id of the bytes (the first 32 hex digits
    of their sha256, ``curate.store.frames.content_id``); a caller that has the frame id passes it
    as ``known_digest`` and the bytes are not hashed again (a warm re-run is then bound by
    reading the cache, not by hashing screenshots)."""

    data: bytes
    mime: str = "image/png"
    known_digest: str | None = None

    @property
    def digest(self) -> str:
        if self.known_digest is not None:
            return self.known_digest
        return hashlib.sha256(self.data).hexdigest()[:FRAME_ID_HEX]

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def image(data: bytes, frame_id: str | None = None) -> Image:
    """An image part whose MIME type is read from the bytes' signature; ``frame_id`` is the
    store's id of these bytes, when known."""
    mime = "image/png"
    if data[:3] == b"\xff\xd8\xff":
        mime = "image/jpeg"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        mime = "image/gif"
    return Image(data, mime, frame_id)


Part = str | Image


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    parts: tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion: the model, the prompt template's version, the messages."""

    model: str
    prompt_version: str
    messages: tuple[Message, ...]
    max_tokens: int = 256
    temperature: float = 0.0

    def request_text(self) -> str:
        """The request with each image replaced by its hash: what the cache key is made of."""
        messages = [{"role": m.role, "content": [
            {"image": p.digest} if isinstance(p, Image) else {"text": p} for p in m.parts]}
            for m in self.messages]
        return json.dumps({"messages": messages, "max_tokens": self.max_tokens,
                           "temperature": self.temperature}, sort_keys=True, ensure_ascii=False)

    def cache_key(self) -> str:
        """sha256 over model id, prompt version, request text and image hashes."""
        digest = hashlib.sha256()
        for piece in (self.model, self.prompt_version, self.request_text()):
            digest.update(piece.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()

    def body(self) -> dict[str, Any]:
        """The JSON body of the HTTP request (images as data URLs)."""
        return json.loads(self.encoded_body())  # type: ignore[no-any-return]

    def encoded_body(self) -> bytes:
        """The body as sent. Each data URL is spliced into the JSON bytes in place of a
        placeholder: base64 needs no escaping, and running a screenshot's ~1 MB of base64
        through the JSON encoder cost more than the rest of the request together."""
        images: list[Image] = []
        messages = []
        for message in self.messages:
            content: list[dict[str, Any]] = []
            for part in message.parts:
                if isinstance(part, Image):
                    content.append({"type": "image_url",
                                    "image_url": {"url": f"{_PLACEHOLDER}{len(images)}"}})
                    images.append(part)
                else:
                    content.append({"type": "text", "text": part})
            messages.append({"role": message.role, "content": content})
        text = json.dumps({"model": self.model, "messages": messages,
                           "max_tokens": self.max_tokens, "temperature": self.temperature},
                          ensure_ascii=False).encode("utf-8")
        if not images:
            return text
        pieces = text.split(f'"{_PLACEHOLDER}'.encode())
        out = [pieces[0]]
        for piece in pieces[1:]:
            index, rest = piece.split(b'"', 1)
            picture = images[int(index)]
            out += [b'"data:', picture.mime.encode(), b";base64,",
                    base64.b64encode(picture.data), b'"', rest]
        return b"".join(out)


# Stands in for a data URL while the body is JSON-encoded. It is matched with its opening
# quote, so only a JSON string that *starts* with it could be taken for one: the random part
# (new in every process) keeps a text part from doing that.
_PLACEHOLDER = f"@@curate-image-{secrets.token_hex(8)}-"


def user_request(model: str, prompt_version: str, parts: Sequence[Part], *,
                 system: str | None = None, max_tokens: int = 256) -> ChatRequest:
    """The usual shape: an optional system message and one user message."""
    messages = [Message("system", (system,))] if system else []
    messages.append(Message("user", tuple(parts)))
    return ChatRequest(model, prompt_version, tuple(messages), max_tokens=max_tokens)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """An answer, or why there is none (``error``: ``unreachable`` or ``http_error``)."""

    cache_key: str
    text: str | None = None
    finish_reason: str | None = None
    cached: bool = False
    error: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ClientStats:
    """What a client did: requests sent (retries included), retries, answers from the cache."""

    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    answered: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


def endpoint_url(url: str) -> str:
    """``http://host:8000/v1`` → ``.../v1/chat/completions`` (a full endpoint is kept)."""
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


class ChatClient:
    """A chat-completions client with concurrency, retries and the store's answer cache."""

    def __init__(self, url: str, *, cache: ModelCache | Path | str | None = None,
                 concurrency: int = 8, timeout: float = 60.0, max_retries: int = 4,
                 backoff: float = 0.5, max_backoff: float = 30.0,
                 api_key_env: str = DEFAULT_API_KEY_ENV) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.url = endpoint_url(url)
        self.cache = cache if isinstance(cache, ModelCache) or cache is None \
            else ModelCache.in_store(cache)
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stats = ClientStats()
        self._api_key = os.environ.get(api_key_env) or None
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            from curate.secrets import register_secret

            register_secret(self._api_key)  # scrubbed from every log record and CLI error
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._headers, self._timeout = headers, timeout
        self._connection: Any = None
        self._connection_lock = threading.Lock()

    @property
    def _http(self) -> Any:
        """The HTTP client, made on the first request: building it (its TLS context alone is
        ~35 ms) is skipped by runs that the cache or the executions table answer."""
        with self._connection_lock:
            if self._connection is None:
                import httpx  # imported here: reward workers that never call a model skip it

                # TCP_NODELAY: a request's headers and body are separate writes; with
                # Nagle's algorithm the body's last segment waits for the server's delayed
                # ACK (~40 ms).
                transport = httpx.HTTPTransport(
                    socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                    limits=httpx.Limits(max_connections=self.concurrency,
                                        max_keepalive_connections=self.concurrency))
                self._connection = httpx.Client(headers=self._headers,
                                                timeout=httpx.Timeout(self._timeout),
                                                transport=transport)
            return self._connection

    def __repr__(self) -> str:  # never the key
        return f"ChatClient({self.url!r}, concurrency={self.concurrency})"

    def close(self) -> None:
        with self._connection_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- public ------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> ChatResult:
        """One answer; raises :class:`ModelError` when the server could not give one."""
        result = self.chat_many([request])[0]
        if not result.ok:
            raise ModelError(result.reason)
        return result

    def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Answers in the order of ``requests``: cached ones at once, the others sent at most
        ``concurrency`` at a time; identical requests are sent once."""
        keys = [request.cache_key() for request in requests]
        results: dict[str, ChatResult] = {}
        pending: dict[str, ChatRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key in results or key in pending:
                continue
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                results[key] = ChatResult(key, hit.text, hit.finish_reason, cached=True)
            else:
                pending[key] = request
        self.stats.add(cache_hits=len(results))
        if pending:
            workers = min(self.concurrency, len(pending))
            if workers == 1:
                answered = [self._answer(key, req) for key, req in pending.items()]
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="curate-model") as pool:
                    answered = list(pool.map(lambda item: self._answer(*item), pending.items()))
            results.update((result.cache_key, result) for result in answered)
        return [results[key] for key in keys]

    # -- one request -------------------------------------------------------------------------

    def _answer(self, key: str, request: ChatRequest) -> ChatResult:
        result = self._send(key, request)
        if result.ok and self.cache is not None:
            assert result.text is not None
            self.cache.put(CachedAnswer(key, request.model, request.prompt_version,
                                        result.text, result.finish_reason))
        self.stats.add(answered=int(result.ok), failed=int(not result.ok))
        return result

    def _send(self, key: str, request: ChatRequest) -> ChatResult:
        import httpx

        body = request.encoded_body()
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.add(retries=1)
            self.stats.add(requests=1)
            try:
                response = self._http.post(self.url, content=body)
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}: {self._scrub(str(error)) or 'no detail'}"
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES:
                last = f"HTTP {response.status_code} {self._snippet(response.text)}"
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            if response.status_code >= 400:
                return ChatResult(key, error="http_error", reason=self._scrub(
                    f"POST {self.url} answered HTTP {response.status_code}: "
                    f"{self._snippet(response.text)}"))
            parsed = _read_completion(response.content)
            if isinstance(parsed, str):  # a cut or foreign body: the connection may have dropped
                last = f"unreadable answer ({parsed})"
                self._sleep(attempt, None)
                continue
            return ChatResult(key, parsed[0], parsed[1])
        return ChatResult(key, error="unreachable", reason=self._scrub(
            f"POST {self.url} failed {self.max_retries + 1} times; last: {last}"))

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        if attempt >= self.max_retries:
            return
        delay = min(self.max_backoff, self.backoff * 2 ** attempt)
        wait = _retry_after_seconds(retry_after)
        if wait is not None:
            delay = min(self.max_backoff, max(delay, wait))
        time.sleep(delay)

    def _snippet(self, text: str) -> str:
        text = " ".join(text.split())
        return self._scrub(text[:200] + ("..." if len(text) > 200 else ""))

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text


def _read_completion(content: bytes) -> tuple[str, str | None] | str:
    """(answer text, finish reason) from a chat-completions body, or what is wrong with it."""
    try:
        body = json.loads(content)
        choice = body["choices"][0]
        message = choice.get("message") or {}
        text = message.get("content")
        if isinstance(text, list):  # some servers return content parts
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        if not isinstance(text, str):
            text = ""
        finish = choice.get("finish_reason")
        return text, finish if isinstance(finish, str) else None
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        return f"{type(error).__name__} reading {len(content)} bytes"


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
