"""OpenTelemetry GenAI spans and OpenInference traces, from OTLP JSON exports.

A unit is an OTLP/JSON trace export (``{"resourceSpans": [{"resource", "scopeSpans": [{
"spans": [...]}]}]}``) in a ``.json`` file, or JSON lines with one export per line (the
collector's file exporter). Spans are grouped by ``traceId``: one trace is one episode (inner
id = the trace id), platform ``tool``, clock ``unix`` (``startTimeUnixNano`` / 1e9).

Two attribute conventions are read, also side by side on one span:

* OpenTelemetry GenAI (``gen_ai.*``): ``gen_ai.operation.name`` ``chat`` /
  ``text_completion`` / ``generate_content`` (model calls), ``execute_tool`` (tool runs with
  ``gen_ai.tool.name``, ``gen_ai.tool.call.id``, ``gen_ai.tool.call.arguments``,
  ``gen_ai.tool.call.result``), ``invoke_agent``; messages in ``gen_ai.input.messages`` /
  ``gen_ai.output.messages`` (JSON with ``parts``: text, reasoning, tool_call,
  tool_call_response, blob), the older span events (``gen_ai.system.message``,
  ``gen_ai.user.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message``,
  ``gen_ai.choice``, ``gen_ai.content.prompt``/``completion``) and the flattened
  ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*`` of older instrumentations.
* OpenInference (``openinference.span.kind`` LLM / TOOL / AGENT / CHAIN): flattened
  ``llm.input_messages.N.message.*`` / ``llm.output_messages.N.message.tool_calls.M.tool_call.*``,
  ``tool.name``, ``input.value`` (a tool's arguments), ``output.value`` (its result).

Steps: every tool run (an ``execute_tool``/TOOL span) is a ``tool_call`` step at its start
time, with its result as ``observation``; a call a model requested (in its output messages)
that no tool span ran is a step at the model span's end, its result taken from a later model
call's input (``tool`` message with the same call id) when there is one. The last model
output with text and no tool calls is the ``answer`` (else the root span's output); the
instruction is the first user message. Text next to tool calls is the first call's
``thought``; text-only model outputs before the end are thoughts of the next step.

Traps handled:

* OTLP JSON writes 64-bit integers as strings (``"intValue": "3"``, the nanosecond times),
  attribute values are ``AnyValue`` objects (string/int/double/bool/bytes/array/kvlist), and
  some exporters use the protobuf field names (``resource_spans``, ``trace_id``).
* JSON in JSON: message attributes, tool arguments and results are JSON strings, sometimes
  encoded twice (a JSON string holding a JSON string); they are decoded until they are not.
* spans come in any order and a trace can be spread over several lines/resources: spans are
  rebuilt into a tree per trace (``parentSpanId``). A span whose parent is missing (an orphan)
  is kept, attached to the root, listed in metadata and warned on its steps; a trace with no
  root uses its earliest span; a span exported twice is read once (counted in metadata).
* a tool call appears twice (requested in the model's output, run in a tool span): matched
  by call id, else by name in order, so it becomes one step; tool spans nested in a tool span
  and model spans nested in a model or tool span (wrappers, sub-agents) are not steps again.
* malformed spans (no ``traceId``/``spanId``, unreadable times, attributes not a list) are
  step rejects naming their position, e.g. ``resourceSpans[0].scopeSpans[1].spans[4]``;
  an unreadable JSON line is a reject naming the line.
* a tool span with status ERROR: the status message (or ``exception`` event) is appended to
  the observation with a warning; a root span with status ERROR marks the episode truncated.
* images: inline images (base64 ``blob`` parts, ``data:`` URLs) in a tool result message are
  the step's next state; in the first user message, the initial state. URLs are not fetched.
  Steps without an image have ``frame_missing = text_only``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, canonical_json
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters._chatml import joined_text
from curate.sources.adapters._outcome import outcome_from_ending
from curate.sources.adapters.base import (
    TEXT_ONLY,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    episode_id_for,
    load_json,
    text_head,
)

NAME = "otel_genai"
SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
LINE_SUFFIXES = frozenset({".jsonl", ".ndjson"})
NANOS = 1_000_000_000
MAX_JSON_DEPTH = 4
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
_SNIFF = re.compile(r'(?<!\\)"(?:resourceSpans|resource_spans)"\s*:')
_ROLE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
_EVENT_BODY_KEYS = ("gen_ai.event.content", "event.body", "body")
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
_TOOL_PREFIX = "execute_tool "


# -- OTLP decoding ------------------------------------------------------------------------------


def _key(mapping: dict[str, Any], camel: str, snake: str) -> Any:
    """A field under its OTLP/JSON (camelCase) or protobuf (snake_case) name."""
    return mapping[camel] if camel in mapping else mapping.get(snake)


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` object as a Python value (int64 may be a JSON string)."""
    if not isinstance(value, dict):
        return value
    for name in ("stringValue", "string_value", "boolValue", "bool_value", "doubleValue",
                 "double_value"):
        if name in value:
            return value[name]
    for name in ("intValue", "int_value"):
        if name in value:
            try:
                return int(value[name])
            except (TypeError, ValueError):
                return value[name]
    array = _key(value, "arrayValue", "array_value")
    if isinstance(array, dict):
        return [any_value(item) for item in array.get("values") or []]
    kvlist = _key(value, "kvlistValue", "kvlist_value")
    if isinstance(kvlist, dict):
        return attributes(kvlist.get("values") or [])
    raw = _key(value, "bytesValue", "bytes_value")
    return raw  # base64 text, kept as is; None for an empty AnyValue


def attributes(items: Any) -> dict[str, Any]:
    """A ``[{key, value}]`` list as a dict; entries without a string key are skipped."""
    found: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            found[item["key"]] = any_value(item.get("value"))
    return found


def decode_json(value: Any) -> Any:
    """Decode JSON held in strings, repeatedly (double-encoded JSON), up to a small depth."""
    for _ in range(MAX_JSON_DEPTH):
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text.startswith(("{", "[", '"')):
            return value
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            return value
        if isinstance(decoded, str) and not decoded.strip().startswith(("{", "[", '"')):
            return decoded if text.startswith('"') and decoded.strip() else value
        value = decoded
    return value


def _nanos(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


@dataclass(slots=True)
class SpanEvent:
    name: str
    time_ns: int | None
    attrs: dict[str, Any]


@dataclass(slots=True, eq=False)  # identity: spans link to each other
class Span:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    attrs: dict[str, Any]
    events: list[SpanEvent]
    status_error: str | None  # the status message when the span ended in ERROR
    position: str
    seq: int
    resource: dict[str, Any]
    children: list[Span] = field(default_factory=list)
    orphan: bool = False

    @property
    def kind(self) -> str:
        """tool, llm, agent, chain or other, from either convention."""
        operation = self.attrs.get("gen_ai.operation.name")
        span_kind = str(self.attrs.get("openinference.span.kind", "")).upper()
        if operation == "execute_tool" or span_kind == "TOOL":
            return "tool"
        if operation in LLM_OPERATIONS or span_kind == "LLM":
            return "llm"
        if operation in AGENT_OPERATIONS or span_kind == "AGENT":
            return "agent"
        if span_kind == "CHAIN":
            return "chain"
        if operation is None and any(k.startswith(("gen_ai.prompt.", "gen_ai.completion."))
                                     for k in self.attrs):
            return "llm"  # older instrumentations: flattened prompt/completion, no operation
        return "other"


def _status_error(span: dict[str, Any], events: list[SpanEvent]) -> str | None:
    status = span.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    if code not in (2, "2", "STATUS_CODE_ERROR", "ERROR"):
        return None
    message = status.get("message") if isinstance(status, dict) else None
    for event in events:
        if event.name == "exception" and not message:
            message = event.attrs.get("exception.message") or event.attrs.get("exception.type")
    return str(message) if message else "status ERROR"


def parse_span(span: Any, position: str, seq: int, resource: dict[str, Any]) -> Span:
    """One OTLP span; raises ValueError naming what is wrong."""
    if not isinstance(span, dict):
        raise ValueError(f"expected a span object, got {type(span).__name__}")
    trace_id, span_id = _key(span, "traceId", "trace_id"), _key(span, "spanId", "span_id")
    if not isinstance(trace_id, str) or not trace_id:
        raise ValueError("span has no traceId")
    if not isinstance(span_id, str) or not span_id:
        raise ValueError("span has no spanId")
    start = _nanos(_key(span, "startTimeUnixNano", "start_time_unix_nano"))
    if start is None:
        raise ValueError("startTimeUnixNano is missing or not an integer")
    end = _nanos(_key(span, "endTimeUnixNano", "end_time_unix_nano"))
    raw_attributes = span.get("attributes", [])
    if not isinstance(raw_attributes, list):
        raise ValueError("'attributes' must be a list of {key, value}")
    events = [SpanEvent(str(e.get("name", "")),
                        _nanos(_key(e, "timeUnixNano", "time_unix_nano")),
                        attributes(e.get("attributes")))
              for e in span.get("events") or [] if isinstance(e, dict)]
    parent = _key(span, "parentSpanId", "parent_span_id")
    return Span(trace_id, span_id, parent if isinstance(parent, str) and parent else None,
                str(span.get("name", "")), start, max(end or start, start),
                attributes(raw_attributes), events, _status_error(span, events), position, seq,
                resource)


def iter_spans(export: Any, prefix: str, out: UnitBuilder, file: str,
               counter: Iterator[int]) -> Iterator[Span]:
    """The well-formed spans of one export; malformed ones become rejects."""
    resource_spans = _key(export, "resourceSpans", "resource_spans") if isinstance(
        export, dict) else None
    if not isinstance(resource_spans, list):
        out.reject(file=file, position=prefix.rstrip(": ") or "top level", level="episode",
                   reason="expected an OTLP trace export with a 'resourceSpans' list",
                   hint="export traces with the OTLP JSON (file) exporter")
        return
    for r_index, resource_span in enumerate(resource_spans):
        if not isinstance(resource_span, dict):
            continue
        resource = resource_span.get("resource")
        resource_attrs = attributes(resource.get("attributes")) if isinstance(
            resource, dict) else {}
        scopes = (_key(resource_span, "scopeSpans", "scope_spans")
                  or resource_span.get("instrumentationLibrarySpans") or [])
        for s_index, scope in enumerate(scopes if isinstance(scopes, list) else []):
            spans = scope.get("spans") if isinstance(scope, dict) else None
            for index, raw in enumerate(spans if isinstance(spans, list) else []):
                position = (f"{prefix}resourceSpans[{r_index}].scopeSpans[{s_index}]"
                            f".spans[{index}]")
                try:
                    yield parse_span(raw, position, next(counter), resource_attrs)
                except ValueError as error:
                    out.reject(file=file, position=position, level="step",
                               reason=f"malformed span: {error}",
                               hint="the span is left out; fix or re-export it",
                               episode_id=_trace_episode_id(out, raw))


def _trace_episode_id(out: UnitBuilder, raw: Any) -> str | None:
    """The episode a malformed span would have belonged to, when its traceId is readable."""
    trace_id = _key(raw, "traceId", "trace_id") if isinstance(raw, dict) else None
    if not isinstance(trace_id, str) or not trace_id:
        return None
    return episode_id_for(NAME, f"{out.unit.source_path}#{trace_id}")


# -- messages -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Call:
    call_id: str | None
    name: str
    arguments: Any
    position: str


@dataclass(slots=True)
class Result:
    call_id: str | None
    text: str | None
    images: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class Message:
    role: str
    texts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        return joined_text(self.texts)


def result_text(value: Any) -> str | None:
    """A tool result as observation text: strings as they are, JSON as canonical JSON."""
    value = decode_json(value)
    if value is None:
        return None
    return value if isinstance(value, str) else canonical_json(value)


def _image(value: Any) -> bytes | None:
    """Inline image bytes from a data URL or base64 text; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith("data:"):
        header, _, value = value.partition(",")
        if ";base64" not in header:
            return None
    elif value.startswith(("http://", "https://", "file:")):
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _add_part(part: Any, message: Message, position: str) -> None:
    if isinstance(part, str):
        message.texts.append(part)
        return
    if not isinstance(part, dict):
        return
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        message.texts.append(str(part.get("content", part.get("text", ""))))
    elif kind in ("reasoning", "thinking"):
        message.thoughts.append(str(part.get("content", part.get("thinking", ""))))
    elif kind == "tool_call":
        message.calls.append(Call(_str(part.get("id")), str(part.get("name", "")),
                                  part.get("arguments"), position))
    elif kind == "tool_call_response":
        message.results.append(Result(_str(part.get("id")),
                                      result_text(part.get("response", part.get("result")))))
    elif kind in ("blob", "image", "image_url"):
        url = part.get("image_url")
        data = _image(part.get("content") or (url.get("url") if isinstance(url, dict) else url))
        if data is not None:
            message.images.append(data)


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _add_contents(contents: Any, message: Message) -> None:
    """OpenInference ``message.contents.N.message_content.{type,text,image.image.url}``."""
    for item in contents if isinstance(contents, list) else []:
        content = item.get("message_content", item) if isinstance(item, dict) else None
        if not isinstance(content, dict):
            continue
        if content.get("type") == "image":
            image = content.get("image")
            inner = image.get("image", image) if isinstance(image, dict) else None
            data = _image(inner.get("url") if isinstance(inner, dict) else None)
            if data is not None:
                message.images.append(data)
        elif isinstance(content.get("text"), str):
            message.texts.append(content["text"])


def _add_tool_calls(calls: Any, message: Message, position: str) -> None:
    for index, item in enumerate(calls if isinstance(calls, list) else []):
        call = item.get("tool_call", item) if isinstance(item, dict) else None
        if not isinstance(call, dict):
            continue
        inner = call.get("function")
        function: dict[str, Any] = inner if isinstance(inner, dict) else call
        name = function.get("name")
        if isinstance(name, str) and name:
            message.calls.append(Call(_str(call.get("id")), name,
                                      function.get("arguments", function.get("input")),
                                      f"{position} tool call {index}"))


def message_from(value: Any, position: str, role: str | None = None) -> Message | None:
    """A message from any of the shapes: gen_ai parts, chat-style, OpenInference, events."""
    value = decode_json(value)
    if isinstance(value, dict) and isinstance(value.get("message"), dict):
        value = value["message"]  # OpenInference nesting, gen_ai.choice bodies
    if not isinstance(value, dict):
        return None
    message = Message(str(value.get("role") or role or "unknown"))
    for part in value.get("parts") or []:
        _add_part(part, message, position)
    content = decode_json(value.get("content"))
    if isinstance(content, list):
        for part in content:
            _add_part(part, message, position)
    elif content is not None:
        message.texts.append(content if isinstance(content, str) else canonical_json(content))
    _add_contents(value.get("contents"), message)
    _add_tool_calls(value.get("tool_calls"), message, position)
    call_id = _str(value.get("tool_call_id") or (value.get("id") if message.role == "tool"
                                                  else None))
    if message.role == "tool" and not message.results:
        message.results.append(Result(call_id, result_text(message.text), message.images))
    elif message.role == "tool" and message.images:
        message.results[-1].images.extend(message.images)
    return message


def unflatten(flat: dict[str, Any], prefix: str) -> list[Any]:
    """``prefix.0.a.b = v`` keys as a list of nested dicts (numeric keys become lists)."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        if not key.startswith(prefix):
            continue
        node = root
        *parents, leaf = key[len(prefix):].split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[leaf] = value
    listed = _listify(root)
    return listed if isinstance(listed, list) else []


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_listify(node[key]) for key in sorted(node, key=int)]
    return {key: _listify(value) for key, value in node.items()}


def _messages(values: list[Any], position: str, what: str, role: str | None = None
              ) -> list[Message]:
    found = []
    for index, value in enumerate(values):
        message = message_from(value, f"{position} {what}[{index}]", role)
        if message is not None:
            found.append(message)
    return found


def input_messages(span: Span) -> list[Message]:
    attrs = span.attrs
    system = attrs.get("gen_ai.system_instructions")
    found: list[Message] = []
    if system is not None:
        found.append(Message("system", texts=[result_text(system) or ""]))
    for key in ("gen_ai.input.messages", "gen_ai.prompt"):
        value = decode_json(attrs.get(key))
        if isinstance(value, list):
            return found + _messages(value, span.position, key)
    for prefix in ("llm.input_messages.", "gen_ai.prompt."):
        flat = unflatten(attrs, prefix)
        if flat:
            return found + _messages(flat, span.position, prefix.rstrip("."))
    return found + _event_messages(span, output=False)


def output_messages(span: Span) -> list[Message]:
    attrs = span.attrs
    for key in ("gen_ai.output.messages", "gen_ai.completion"):
        value = decode_json(attrs.get(key))
        if isinstance(value, list):
            return _messages(value, span.position, key, "assistant")
    for prefix in ("llm.output_messages.", "gen_ai.completion."):
        flat = unflatten(attrs, prefix)
        if flat:
            return _messages(flat, span.position, prefix.rstrip("."), "assistant")
    return _event_messages(span, output=True)


def _event_body(event: SpanEvent) -> Any:
    """An event's body: a JSON attribute holding it, else its attributes as nested keys."""
    for key in _EVENT_BODY_KEYS:
        if key in event.attrs:
            return decode_json(event.attrs[key])
    return _listify_dotted({k: v for k, v in event.attrs.items()
                            if not k.startswith("gen_ai.system")})


def _listify_dotted(flat: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node = root
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            node = child if isinstance(child, dict) else {}
        node[leaf] = value
    listed = _listify(root)
    return listed if isinstance(listed, dict) else {}


def _event_messages(span: Span, *, output: bool) -> list[Message]:
    found: list[Message] = []
    for index, event in enumerate(span.events):
        position = f"{span.position}.events[{index}]"
        if event.name in ("gen_ai.content.prompt", "gen_ai.content.completion"):
            key = "gen_ai.completion" if output else "gen_ai.prompt"
            value = decode_json(event.attrs.get(key))
            if (event.name == "gen_ai.content.completion") == output and isinstance(value, list):
                found += _messages(value, position, key)
            continue
        if output and event.name == "gen_ai.choice":
            message = message_from(_event_body(event), position, "assistant")
        elif not output and event.name in _ROLE_EVENTS:
            message = message_from(_event_body(event), position, _ROLE_EVENTS[event.name])
        else:
            continue
        if message is not None:
            found.append(message)
    return found


# -- traces -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Trace:
    trace_id: str
    spans: dict[str, Span] = field(default_factory=dict)
    duplicates: int = 0
    root: Span | None = None
    orphans: list[Span] = field(default_factory=list)
    extra_roots: list[Span] = field(default_factory=list)

    def add(self, span: Span) -> None:
        if span.span_id in self.spans:
            self.duplicates += 1
            return
        self.spans[span.span_id] = span

    def build(self) -> None:
        """Link children to parents; orphans (and extra roots) hang from the root."""
        ordered = sorted(self.spans.values(), key=lambda s: (s.start_ns, s.seq))
        roots = [s for s in ordered if s.parent_id is None]
        orphans = [s for s in ordered if s.parent_id is not None
                   and s.parent_id not in self.spans]
        if not orphans and not roots:
            orphans = [ordered[0]]  # parents form a cycle: cut it at the earliest span
        root = roots[0] if roots else _stand_in_root(ordered)
        self.root, self.extra_roots, self.orphans = root, roots[1:], orphans
        cut = {id(span) for span in orphans}
        for span in ordered:
            if span is root:
                continue
            parent = None if id(span) in cut else self.spans.get(span.parent_id or "")
            if parent is None:
                span.orphan = span.parent_id is not None
                root.children.append(span)
            else:
                parent.children.append(span)


STAND_IN_ROOT = "(missing root span)"


def _stand_in_root(ordered: list[Span]) -> Span:
    """A root for a trace whose root span was not exported: it spans all the others."""
    first = ordered[0]
    return Span(first.trace_id, STAND_IN_ROOT, None, STAND_IN_ROOT, first.start_ns,
                max(s.end_ns for s in ordered), {}, [], None, first.position, -1,
                first.resource)


def walk(root: Span) -> Iterator[tuple[Span, frozenset[str]]]:
    """Every span with the kinds of its ancestors (iterative: traces can be deep)."""
    stack: list[tuple[Span, frozenset[str]]] = [(root, frozenset())]
    seen: set[str] = set()
    while stack:
        span, above = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        yield span, above
        below = above | {span.kind}
        stack.extend((child, below) for child in reversed(span.children))


# -- planning steps -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Planned:
    time_ns: int
    seq: tuple[int, int]  # tie-break: (0, request order) for requested calls, else (1, n)
    action: Action
    position: str
    end_ns: int | None = None
    call_id: str | None = None
    observation: str | None = None
    thought: str | None = None
    images: list[bytes] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    model: str | None = None  # the model span's model that asked for it (wrote the answer)


# Where a model span names its model: the one that answered, else the one asked for
# (GenAI semantic conventions), else OpenInference's.
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")


def span_model(span: Span) -> str | None:
    """The model a model span names, or None."""
    return next((str(span.attrs[k]) for k in MODEL_KEYS if span.attrs.get(k)), None)


@dataclass(slots=True)
class _Request:
    call: Call
    span: Span
    matched: bool = False


def _join(*parts: str | None) -> str | None:
    texts = [part for part in parts if part]
    return "\n\n".join(texts) if texts else None


def _tool_action(name: str, arguments: Any, raw: Any, warnings: list[str]) -> Action:
    decoded = decode_json(arguments)
    if decoded is None:
        decoded = {}
    elif isinstance(decoded, str):
        warnings.append("tool arguments are not JSON; kept as a JSON string")
    raw_text = raw if isinstance(raw, str) else canonical_json(raw) if raw is not None else None
    return Action(type="tool_call", tool_name=name, tool_args=canonical_json(decoded),
                  raw=raw_text)


def _orphan_warning(span: Span) -> list[str]:
    if not span.orphan:
        return []
    return [f"span {span.span_id}'s parent {span.parent_id} is not in the export; it was "
            "attached to the trace's root"]


class TracePlanner:
    """One trace → the planned steps, instruction and metadata of its episode."""

    def __init__(self, trace: Trace) -> None:
        assert trace.root is not None
        self.trace = trace
        self.root = trace.root
        self.tools: list[Span] = []
        self.models: list[Span] = []
        self.nested = {"tool": 0, "llm": 0}
        self.requests: list[_Request] = []
        self.results: dict[str, Result] = {}
        self.steps: list[_Planned] = []
        self.seq = 0
        self.instruction: str | None = None
        self.initial_images: list[bytes] = []
        self.final_text: tuple[Span, Message] | None = None
        self.pending_thoughts: list[tuple[int, str]] = []
        for span, above in walk(self.root):
            self._classify(span, above)

    def _classify(self, span: Span, above: frozenset[str]) -> None:
        kind = span.kind
        if kind == "tool":
            if "tool" in above:
                self.nested["tool"] += 1
            else:
                self.tools.append(span)
        elif kind == "llm":
            if above & {"tool", "llm"}:
                self.nested["llm"] += 1
            else:
                self.models.append(span)

    def plan(self) -> list[_Planned]:
        self.models.sort(key=lambda s: (s.start_ns, s.seq))
        self.tools.sort(key=lambda s: (s.start_ns, s.seq))
        for span in self.models:
            self._read_model(span)
        for span in self.tools:
            self._tool_step(span)
        for request in self.requests:
            if not request.matched:
                self._request_step(request)
        self._answer()
        self.steps.sort(key=lambda p: (p.time_ns, p.seq))
        self._place_thoughts()
        self._fill_observations()
        return self.steps

    def _next_seq(self, request: _Request | None = None) -> tuple[int, int]:
        """Order among steps starting at the same time: calls as the model listed them."""
        self.seq += 1
        if request is None:
            return (1, self.seq)
        return (0, next(i for i, known in enumerate(self.requests) if known is request))

    # model spans --------------------------------------------------------------------------

    def _read_model(self, span: Span) -> None:
        for message in input_messages(span):
            if message.role == "user" and self.instruction is None and message.text:
                self.instruction = message.text
                self.initial_images = list(message.images)
            for result in message.results:
                if result.call_id is not None:
                    self.results.setdefault(result.call_id, result)
        outputs = [m for m in output_messages(span) if m.role in ("assistant", "unknown")]
        calls = [call for message in outputs for call in message.calls]
        text = _join(*(m.text for m in outputs))
        thought = _join(*(t for m in outputs for t in m.thoughts))
        if (calls or text) and self.final_text is not None:
            # A later model output follows: the text-only one before it was thinking aloud.
            earlier, message = self.final_text
            self.pending_thoughts.append((earlier.end_ns, _join(*message.thoughts,
                                                                message.text) or ""))
            self.final_text = None
        if calls:
            self.requests.extend(_Request(call, span) for call in calls)
            self.pending_thoughts.append((span.end_ns, _join(thought, text) or ""))
        elif text:
            self.final_text = (span, Message("assistant", texts=[text],
                                             thoughts=[thought] if thought else []))
        elif thought:
            self.pending_thoughts.append((span.end_ns, thought))

    def _request_step(self, request: _Request) -> None:
        warnings = _orphan_warning(request.span)
        action = _tool_action(request.call.name, request.call.arguments,
                              request.call.arguments, warnings)
        self.steps.append(_Planned(request.span.end_ns, self._next_seq(request), action,
                                   request.call.position, call_id=request.call.call_id,
                                   warnings=warnings, model=span_model(request.span)))

    # tool spans ---------------------------------------------------------------------------

    def _match(self, span: Span, call_id: str | None, name: str) -> _Request | None:
        waiting = [r for r in self.requests if not r.matched]
        if call_id is not None:
            by_id = [r for r in waiting if r.call.call_id == call_id]
            if by_id:
                return by_id[0]
        same = [r for r in waiting if r.call.name == name and r.span.end_ns <= span.start_ns
                and (call_id is None or r.call.call_id is None)]
        return same[0] if same else None

    def _tool_step(self, span: Span) -> None:
        attrs = span.attrs
        name = str(attrs.get("gen_ai.tool.name") or attrs.get("tool.name")
                   or attrs.get("tool_call.function.name")
                   or span.name.removeprefix(_TOOL_PREFIX))
        call_id = _str(attrs.get("gen_ai.tool.call.id") or attrs.get("tool_call.id"))
        request = self._match(span, call_id, name)
        arguments = next((attrs[k] for k in ("gen_ai.tool.call.arguments",
                                             "tool_call.function.arguments", "input.value")
                          if k in attrs), None)
        warnings = _orphan_warning(span)
        if request is not None:
            request.matched = True
            call_id = call_id or request.call.call_id
            if arguments is None:
                arguments = request.call.arguments
        action = _tool_action(name, arguments, arguments, warnings)
        result = next((attrs[k] for k in ("gen_ai.tool.call.result", "output.value")
                       if k in attrs), None)
        observation = result_text(result)
        if span.status_error is not None:
            observation = _join(observation, f"error: {span.status_error}")
            warnings.append(f"the tool span ended with status ERROR: {span.status_error}")
        step = _Planned(span.start_ns, self._next_seq(request), action, span.position,
                        end_ns=span.end_ns, call_id=call_id, observation=observation,
                        warnings=warnings,
                        model=span_model(request.span) if request is not None else None)
        self.steps.append(step)

    # answer, thoughts, observations ---------------------------------------------------------

    def _answer(self) -> None:
        if self.final_text is not None:
            span, message = self.final_text
            self.steps.append(_Planned(span.end_ns, self._next_seq(),
                                       Action(type="answer", text=message.text),
                                       f"{span.position} output", thought=_join(
                                           *message.thoughts), warnings=_orphan_warning(span),
                                       model=span_model(span)))
            return
        text = self._root_output()
        if text:
            self.steps.append(_Planned(self.root.end_ns, self._next_seq(),
                                       Action(type="answer", text=text),
                                       f"{self.root.position} output"))

    def _root_output(self) -> str | None:
        if self.root.kind not in ("agent", "chain", "other"):
            return None
        messages = output_messages(self.root)
        text = _join(*(m.text for m in messages if m.role in ("assistant", "unknown")))
        if text:
            return text
        value = decode_json(self.root.attrs.get("output.value"))
        if isinstance(value, dict):
            picked = next((value[k] for k in ("output", "answer", "content", "result")
                           if isinstance(value.get(k), str)), None)
            return picked or canonical_json(value)
        return value if isinstance(value, str) and value else None

    def _place_thoughts(self) -> None:
        """Each model output's text goes to the first step at or after the output's end."""
        for end_ns, text in sorted(self.pending_thoughts, key=lambda item: item[0]):
            if not text:
                continue
            target = next((s for s in self.steps if s.time_ns >= end_ns), None)
            if target is None:
                target = next((s for s in self.steps if s.end_ns and s.end_ns >= end_ns), None)
            if target is not None:
                target.thought = _join(text, target.thought)

    def _fill_observations(self) -> None:
        for step in self.steps:
            if step.action.type != "tool_call":
                continue
            result = self.results.get(step.call_id) if step.call_id else None
            if result is not None:
                step.images = list(result.images)
                if step.observation is None:
                    step.observation = result.text if result.text is not None else ""
            if step.observation is None:
                step.warnings.append("no result recorded for this call (no tool span result "
                                     "and no later message with its id)")


# -- episodes -----------------------------------------------------------------------------------


def _metadata(trace: Trace, planner: TracePlanner) -> dict[str, Any]:
    root = planner.root
    spans = list(trace.spans.values())
    meta: dict[str, Any] = {"trace_id": trace.trace_id, "span_count": len(spans),
                            "root_span": root.name}
    service = root.resource.get("service.name")
    if isinstance(service, str):
        meta["service_name"] = service
    meta["conventions"] = [name for name, present in (
        ("gen_ai", any(k.startswith("gen_ai.") for s in spans for k in s.attrs)),
        ("openinference", any("openinference.span.kind" in s.attrs for s in spans)),
    ) if present]
    models = sorted({str(s.attrs[k]) for s in spans for k in MODEL_KEYS if k in s.attrs})
    if models:
        meta["models"] = models
    agents = sorted({str(s.attrs["gen_ai.agent.name"]) for s in spans
                     if "gen_ai.agent.name" in s.attrs})
    if agents:
        meta["agents"] = agents
    if trace.orphans:
        meta["orphan_spans"] = [{"span_id": s.span_id, "parent_span_id": s.parent_id,
                                 "name": s.name, "position": s.position}
                                for s in trace.orphans]
    if trace.extra_roots:
        meta["extra_root_spans"] = [s.span_id for s in trace.extra_roots]
    if root.span_id == STAND_IN_ROOT:
        meta["root_missing"] = ("no span of this trace lacks a parent (the root span was not "
                                "exported): its orphans hang from a stand-in root")
    if trace.duplicates:
        meta["duplicate_spans"] = trace.duplicates
    nested = {k: v for k, v in planner.nested.items() if v}
    if nested:
        meta["nested_spans_not_steps"] = nested
    return meta


def build_episode(out: UnitBuilder, trace: Trace, file: str) -> None:
    trace.build()
    planner = TracePlanner(trace)
    planned = planner.plan()
    episode = out.episode(trace.trace_id)
    episode.platform = "tool"
    episode.clock = "unix"
    episode.instruction = planner.instruction or _root_instruction(planner.root)
    episode.metadata.update(_metadata(trace, planner))
    _add_steps(episode, planned, planner.initial_images, file)
    if not episode.steps:
        out.drop_episode(episode, file=file, position=planner.root.position,
                         reason="the trace has no tool call and no model reply (no gen_ai.* "
                                "or OpenInference LLM/TOOL span)",
                         hint="instrument the agent with GenAI or OpenInference conventions")
        return
    episode.terminated = episode.steps[-1].action.type == "answer"
    outcome_from_ending(episode)  # a trace records no verdict
    if planner.root.status_error is not None:
        episode.truncated = True
        episode.metadata["error"] = planner.root.status_error


def _root_instruction(root: Span) -> str | None:
    for message in input_messages(root):
        if message.role == "user" and message.text:
            return message.text
    value = decode_json(root.attrs.get("input.value"))
    if isinstance(value, dict):
        value = next((value[k] for k in ("input", "query", "question", "task", "prompt")
                      if isinstance(value.get(k), str)), None)
    return value if isinstance(value, str) and value else None


def _add_steps(episode: EpisodeBuilder, planned: list[_Planned], initial: list[bytes],
               file: str) -> None:
    """Steps with their states: s_t is the latest image available when the step started
    (a result image counts from its call's end, so parallel calls share their s_t)."""
    available: list[tuple[int, str]] = []  # (from when, frame id)
    for index, data in enumerate(initial):
        frame = episode.add_frame(data, file=file, position=f"first user message image {index}")
        if frame is not None:
            available.append((-1, frame.frame_id))
    for step in planned:
        latest = next((fid for when, fid in reversed(available) if when <= step.time_ns), None)
        next_id: str | None = None
        for index, data in enumerate(step.images):
            frame = episode.add_frame(data, file=file, position=f"{step.position} image {index}")
            next_id = frame.frame_id if frame is not None else next_id
        if len(step.images) > 1:
            step.warnings.append(f"the result holds {len(step.images)} images; the last one "
                                 "is the next state")
        episode.add_step(
            step.action, source_position=step.position, timestamp=step.time_ns / NANOS,
            timestamp_end=step.end_ns / NANOS if step.end_ns is not None else None,
            thought=step.thought, observation=step.observation, model=step.model,
            frame_id=latest,
            frame_missing=None if latest else TEXT_ONLY, next_frame_id=next_id,
            next_frame_missing=None if next_id else TEXT_ONLY, warnings=step.warnings)
        if next_id is not None:
            available.append((step.end_ns or step.time_ns, next_id))
            available.sort(key=lambda item: item[0])


# -- the adapter --------------------------------------------------------------------------------


def _sniff(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() not in SUFFIXES:
        return False
    head = text_head(path)
    if head is None:
        return False
    return head.lstrip().startswith("{") and _SNIFF.search(head) is not None


@register
class OtelGenAIAdapter(Adapter):
    name: ClassVar[str] = NAME
    version: ClassVar[str] = "3"  # 2: an ending that gives up is fail (_outcome); 3: a
    # root in ERROR is not terminated, one thing or the other (EpisodeBuilder.ending)
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("OpenTelemetry traces (OTLP JSON / JSON lines) with GenAI "
                                  "gen_ai.* or OpenInference attributes: one trace per episode")
    priority: ClassVar[int] = 30  # a specific key: before the generic JSON/JSONL adapters

    def claims(self, path: Path) -> bool:
        return _sniff(path)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        traces: dict[str, Trace] = {}
        counter = itertools.count()
        for prefix, export in self._exports(unit, out, file):
            for span in iter_spans(export, prefix, out, file, counter):
                traces.setdefault(span.trace_id, Trace(span.trace_id)).add(span)
        if not traces and not out.rejects:
            raise SourceError("the export holds no span", file=file,
                              hint="check that the exporter wrote traces (resourceSpans)")
        for trace in traces.values():
            build_episode(out, trace, file)

    def _exports(self, unit: SourceUnit, out: UnitBuilder, file: str
                 ) -> Iterator[tuple[str, Any]]:
        if unit.path.suffix.lower() not in LINE_SUFFIXES:
            yield "", load_json(unit.path, unit)
            return
        try:
            handle = unit.path.open("rb")
        except OSError as error:
            raise SourceError(f"cannot read the file: {error.strerror}", file=file,
                              hint="check the file's permissions") from None
        with handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    yield f"line {number}: ", json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    out.reject(file=file, position=f"line {number}", level="episode",
                               reason=f"invalid JSON line: {error}; expected one OTLP export",
                               hint="the line is truncated or corrupt; its spans are lost")
