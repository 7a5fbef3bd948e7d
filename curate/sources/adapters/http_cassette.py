"""Recorded HTTP traffic of model calls with tools (``http_cassette``): VCR-style YAML or JSON
cassettes (pydantic-ai's among them) of OpenAI Chat, OpenAI Responses or Anthropic requests.
Each later request repeats the history, so the last model request and its response are read
with the provider's own module; what the tool-use formats share (and the cassette traps
handled) is in :mod:`curate.sources.adapters._conversation`."""


from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from curate.actions import canonical_json
from curate.errors import SourceError
from curate.sources.adapters import anthropic_messages, openai_chat, openai_responses, register
from curate.sources.adapters._conversation import (
    ANTHROPIC,
    CASSETTE,
    CHAT,
    PROVIDER_LABELS,
    RESPONSES,
    Conversation,
    Located,
    Turn,
    at,
    build_episode,
    classify,
    located,
    sniff,
)
from curate.sources.adapters.base import (
    Adapter,
    SourceUnit,
    UnitBuilder,
    load_json,
)

# ----------------------------------------------------------------------------- HTTP cassettes

_CONVERSATIONS: dict[str, Callable[[Any, str], Conversation]] = {
    CHAT: openai_chat.conversation_from, RESPONSES: openai_responses.conversation_from,
    ANTHROPIC: anthropic_messages.conversation_from}
_ENDPOINTS = (("/chat/completions", CHAT), ("/responses", RESPONSES), ("/messages", ANTHROPIC))
_UNSUPPORTED = {"generativelanguage.googleapis.com": "Google Gemini generateContent",
                "aiplatform.googleapis.com": "Google Vertex AI"}


@dataclass(slots=True)
class _Exchange:
    index: int
    provider: str | None  # one of the three schemas, or None
    label: str  # what the request was, for messages
    request: Any
    response: Any
    request_key: str
    response_key: str
    status: int | None


def http_body(part: Any) -> tuple[Any, str]:
    """A request or response body as a value, and the key it was under.

    pydantic-ai stores ``parsed_body``; plain VCR stores ``body`` as a string or as
    ``{string: ...}`` (bytes when the recorder kept binary).
    """
    if not isinstance(part, dict):
        return None, "body"
    if "parsed_body" in part:
        return part["parsed_body"], "parsed_body"
    body = part.get("body")
    key = "body"
    if isinstance(body, dict) and "string" in body:
        body, key = body["string"], "body.string"
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body), key
        except json.JSONDecodeError:
            return None, key
    return body, key


def _exchange(index: int, interaction: Any) -> _Exchange:
    request = interaction.get("request") if isinstance(interaction, dict) else None
    response = interaction.get("response") if isinstance(interaction, dict) else None
    request_body, request_key = http_body(request)
    response_body, response_key = http_body(response)
    uri = str(request.get("uri", "")) if isinstance(request, dict) else ""
    status = response.get("status") if isinstance(response, dict) else None
    code = status.get("code") if isinstance(status, dict) else None
    provider, label = _provider(uri, request_body)
    return _Exchange(index, provider, label, request_body, response_body, request_key,
                     response_key, code if isinstance(code, int) else None)


def _provider(uri: str, body: Any) -> tuple[str | None, str]:
    parts = urlsplit(uri)
    for host, label in _UNSUPPORTED.items():
        if parts.netloc.endswith(host):
            return None, label
    if not isinstance(body, dict):
        return None, f"non-JSON request to {uri or '?'}"
    path = parts.path.rstrip("/")
    for suffix, provider in _ENDPOINTS:
        if path.endswith(suffix):
            return provider, PROVIDER_LABELS[provider]
    shape = classify(body)  # a proxy with an unusual path: decide by the body
    if shape in PROVIDER_LABELS:
        return shape, PROVIDER_LABELS[shape]
    return None, f"request to {uri or '?'}"


def load_cassette(unit: SourceUnit) -> list[_Exchange]:
    file = unit.relative(unit.path)
    if unit.path.suffix.lower() == ".json":
        data = load_json(unit.path, unit)
    else:
        data = _load_yaml(unit.path, file)
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list):
        raise SourceError("expected a cassette: a mapping with an 'interactions' list",
                          file=file, hint="record the HTTP traffic with VCR/pytest-recording")
    return [_exchange(index, item) for index, item in enumerate(interactions)]


def cassette_complete(unit: SourceUnit) -> bool:
    """VCR writes ``version`` after ``interactions``: without it the file was cut short.

    A YAML file cut at a line boundary still parses, with fewer interactions or messages;
    this is the one sign of it.
    """
    with unit.path.open("rb") as handle:
        handle.seek(max(0, unit.path.stat().st_size - 4096))
        tail = handle.read().decode("utf-8", errors="replace")
    return re.search(r'^version:|"version"\s*:', tail, re.MULTILINE) is not None


def _load_yaml(path: Path, file: str) -> Any:
    import yaml  # only cassettes are YAML; `curate formats` loads this module without it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        with path.open("rb") as handle:
            return yaml.load(handle, Loader=loader)  # CSafeLoader/SafeLoader: no tags
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise SourceError(f"invalid YAML: {getattr(error, 'problem', error)}", file=file,
                          position=where, hint="the cassette is truncated or not YAML; "
                                               "re-record it") from None
    except OSError as error:
        raise SourceError(f"cannot read the cassette: {error.strerror}", file=file,
                          hint="check the file's permissions") from None


def cassette_conversation(exchange: _Exchange) -> Conversation:
    """The last request's history plus its response, normalised."""
    base = f"interactions[{exchange.index}]"
    request_at = f"{base}.request.{exchange.request_key}"
    response_at = f"{base}.response.{exchange.response_key}"  # e.g. ...response.parsed_body
    schema = exchange.provider
    assert schema is not None
    conversation = _CONVERSATIONS[schema](exchange.request, request_at)
    reply = _reply(exchange, response_at)
    before = len(conversation.turns)
    if reply is None:
        conversation.problem(response_at, f"the response (status {exchange.status}) holds no "
                             "model reply; the episode ends at the last request",
                             "re-record the cassette with the full response")
    elif schema == CHAT:
        openai_chat.parse_chat([reply], conversation)
    elif schema == ANTHROPIC:
        anthropic_messages.parse_anthropic([reply], conversation)
    else:
        openai_responses.parse_responses(located(reply[1], reply[0]), conversation)
    for turn in conversation.turns[before:]:
        if turn.role == "assistant" and turn.model is None:
            turn.model = response_model(exchange)
    return conversation


def _reply(exchange: _Exchange, where: str) -> Located | None:
    body = exchange.response
    if not isinstance(body, dict) or (exchange.status is not None
                                      and not 200 <= exchange.status < 300):
        return None
    if exchange.provider == CHAT:
        choices = body.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            return at(where, "choices[0].message"), choices[0].get("message")
        return None
    if exchange.provider == ANTHROPIC:
        return (where, body) if body.get("type") == "message" or "content" in body else None
    return (at(where, "output"), body["output"]) if isinstance(body.get("output"), list) else None


def _reply_turns(exchange: _Exchange) -> list[Turn]:
    """The assistant turns of one exchange's response."""
    reply = _reply(exchange, "")
    if reply is None:
        return []
    if exchange.provider == RESPONSES:
        conversation = openai_responses.parse_responses(located(reply[1], ""))
    elif exchange.provider == CHAT:
        conversation = openai_chat.parse_chat([reply])
    else:
        conversation = anthropic_messages.parse_anthropic([reply])
    return [turn for turn in conversation.turns if turn.role == "assistant"]


def reply_call_ids(exchange: _Exchange) -> set[str]:
    """Ids of the tool calls in one exchange's response."""
    return {c.call_id for t in _reply_turns(exchange) for c in t.calls if c.call_id}


def response_model(exchange: _Exchange) -> str | None:
    """The model a response body names (all three providers put it at the top)."""
    body = exchange.response
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) and model else None


def _signature(name: str, arguments: Any) -> str:
    return f"{name}\0{canonical_json(arguments)}"


def _gemini_reply(exchange: _Exchange) -> tuple[str | None, list[str], list[str]]:
    """A Gemini ``generateContent`` response (read for its model only: curate does not read
    Gemini conversations): its ``modelVersion``, texts and call signatures."""
    body = exchange.response
    model = body.get("modelVersion") if isinstance(body, dict) else None
    candidates = body.get("candidates") if isinstance(body, dict) else None
    if not isinstance(model, str) or not isinstance(candidates, list) or not candidates:
        return None, [], []
    content = candidates[0].get("content") if isinstance(candidates[0], dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    texts, calls = [], []
    for part in parts if isinstance(parts, list) else []:
        call = part.get("functionCall") if isinstance(part, dict) else None
        if isinstance(call, dict) and isinstance(call.get("name"), str):
            calls.append(_signature(call["name"], call.get("args") or {}))
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
    return model, texts, calls


def attribute_models(exchanges: list[_Exchange], last: _Exchange,
                     conversation: Conversation) -> None:
    """Each assistant turn's model: that of the response that wrote it. The last request
    repeats the earlier replies without their models, so a history turn is matched to the
    earlier reply holding its tool call ids, else the same calls (name and arguments), else
    its text; the last reply's turns are the last response's. A conversation begun with
    another model (pydantic-ai passes one agent's history to another) shows the switch."""
    by_call: dict[str, str] = {}
    by_key: dict[str, str] = {}  # call signatures and reply texts
    for exchange in exchanges[: last.index + 1]:
        if exchange.provider is None:
            model, texts, calls = _gemini_reply(exchange)
        elif exchange.provider == last.provider:
            model, turns = response_model(exchange), _reply_turns(exchange)
            texts = [t.text for t in turns if t.text and not t.calls]
            calls = [_signature(c.name, c.arguments) for t in turns for c in t.calls]
            by_call.update((c.call_id, model) for t in turns for c in t.calls
                           if c.call_id and model)
        else:
            continue
        if model is not None:
            for key in [*texts, *calls]:
                by_key.setdefault(key, model)
    for turn in conversation.turns:
        if turn.role != "assistant" or turn.model is not None:
            continue
        ids = [c.call_id for c in turn.calls if c.call_id in by_call]
        keys = [_signature(c.name, c.arguments) for c in turn.calls] or [turn.text or ""]
        turn.model = by_call[ids[0]] if ids else next(
            (by_key[k] for k in keys if k in by_key), None)


@register
class HttpCassetteAdapter(Adapter):
    name: ClassVar[str] = CASSETTE
    version: ClassVar[str] = "2"  # 2: an ending that gives up is fail (_outcome)
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("recorded HTTP traffic (VCR cassettes, e.g. pydantic-ai's) of "
                                  "OpenAI Chat, OpenAI Responses or Anthropic calls with tools")
    priority: ClassVar[int] = 70

    def claims(self, path: Path) -> bool:
        return sniff(path) == CASSETTE

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        exchanges = load_cassette(unit)
        model_calls = [e for e in exchanges if e.provider is not None]
        if not model_calls:
            seen = sorted({e.label for e in exchanges}) or ["no interactions"]
            raise SourceError(
                f"no OpenAI Chat, OpenAI Responses or Anthropic request in the cassette "
                f"(found: {', '.join(seen)})", file=file,
                hint="only those three providers are supported; pass --format to force "
                     "another adapter")
        last = model_calls[-1]
        conversation = cassette_conversation(last)
        _check_history(exchanges, last, conversation)
        attribute_models(exchanges, last, conversation)
        if not cassette_complete(unit):
            conversation.problem("end of file", "the cassette has no 'version' key after "
                                 "its interactions: the file looks cut short, later "
                                 "interactions or messages may be missing",
                                 "restore the complete cassette from its source")
        conversation.metadata.update({
            "provider": last.provider, "interaction": last.index,
            "interactions": len(exchanges),
        })
        others = [{"index": e.index, "request": e.label} for e in exchanges
                  if e.provider != last.provider]
        if others:
            conversation.metadata["other_requests"] = others
        build_episode(out, conversation, file, None, f"interactions[{last.index}]")


def _check_history(exchanges: list[_Exchange], last: _Exchange,
                   conversation: Conversation) -> None:
    """Report earlier replies whose tool calls the last request's history does not repeat."""
    known = {c.call_id for t in conversation.turns for c in t.calls if c.call_id}
    for exchange in exchanges[: last.index]:
        if exchange.provider != last.provider:
            continue
        missing = sorted(reply_call_ids(exchange) - known)
        if missing:
            conversation.problem(
                f"interactions[{exchange.index}].response",
                f"this reply's tool calls ({', '.join(missing)}) are not in the history of "
                f"the last request (interactions[{last.index}]); they were not ingested",
                "the cassette may hold several separate runs: split it into one file per run")
