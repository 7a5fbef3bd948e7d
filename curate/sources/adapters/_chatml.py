"""Chat messages in the many shapes trace exports log them, as one small normal form.

Trace stores (Langfuse, Phoenix) keep a model call's input and output as whatever the
instrumentation sent: OpenAI Chat messages, an OpenAI choice or response, Anthropic content
blocks, Gemini ``contents`` / ``candidates``, OpenTelemetry GenAI ``parts``, LangChain's
serialised messages (``lc``/``kwargs``), the Vercel AI SDK's tool-call list, or plain text;
often as JSON inside a JSON string. :func:`messages_from` reads all of these into
:class:`ChatMessage` values (role, text, tool calls, tool results), or returns None when the
value is not a list of messages, so a caller can tell "no messages" from "not messages".
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from typing import Any

from curate.actions import canonical_json

MAX_JSON_DEPTH = 4
# Roles as curate names them; the source's own word is kept in ChatMessage.source_role.
ROLE_ALIASES = {"model": "assistant", "ai": "assistant", "human": "user",
                "developer": "system", "function": "tool"}
ROLES = frozenset({"system", "user", "assistant", "tool"})
# LangChain's serialised message classes (the last element of ``id``).
LANGCHAIN_ROLES = {"HumanMessage": "user", "HumanMessageChunk": "user",
                   "AIMessage": "assistant", "AIMessageChunk": "assistant",
                   "SystemMessage": "system", "ToolMessage": "tool",
                   "FunctionMessage": "tool", "ChatMessage": "user"}


@dataclass(slots=True)
class ChatCall:
    call_id: str | None
    name: str
    arguments: Any  # decoded JSON, or the raw text when it is not JSON


@dataclass(slots=True)
class ChatResult:
    call_id: str | None
    name: str | None
    text: str | None


@dataclass(slots=True)
class ChatMessage:
    role: str  # system, user, assistant or tool
    source_role: str | None = None  # the role as written, when it differs or is not standard
    texts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[ChatCall] = field(default_factory=list)
    results: list[ChatResult] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        return joined_text(self.texts)


def joined_text(texts: list[str]) -> str | None:
    """A message's text parts as one text, or None when there is none."""
    return "\n".join(t for t in texts if t) or None


def deep_json(value: Any) -> Any:
    """Decode JSON held in strings, repeatedly (a JSON string holding a JSON string)."""
    for _ in range(MAX_JSON_DEPTH):
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text == "null":
            return None
        if not text or text[0] not in '[{"':
            return value
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def python_literal(text: str) -> Any:
    """A dict or list written as a Python repr (single quotes), read with
    ast.literal_eval (which evaluates literals only, never code); else the text."""
    stripped = text.strip()
    if stripped[:1] not in ("{", "[") or len(stripped) > 1 << 20:
        return text
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, dict | list) else text


def as_text(value: Any) -> str | None:
    """A value as observation text: strings as they are, MCP-style ``{content: [text
    parts]}`` as their joined text, anything else as canonical JSON."""
    value = deep_json(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) <= {"content", "isError", "is_error"}:
        joined = _parts_text(value.get("content"))
        if joined is not None:
            return joined
    return canonical_json(value)


def _parts_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        return None
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            return None
    return "\n".join(texts)


def _role(raw: Any) -> tuple[str, str | None]:
    """(curate role, the source's role when it is not the same word)."""
    if not isinstance(raw, str) or not raw:
        return "user", None if raw is None else str(raw)
    lowered = raw.lower()
    if lowered in ROLES:
        return lowered, None
    if lowered in ROLE_ALIASES:
        return ROLE_ALIASES[lowered], raw
    # LangGraph.js writes a tool result with the tool's name as its role.
    return "tool", raw


def _call(call_id: Any, name: Any, arguments: Any) -> ChatCall | None:
    if not isinstance(name, str) or not name:
        return None
    return ChatCall(call_id if isinstance(call_id, str) and call_id else None, name,
                    deep_json(arguments) if arguments is not None else {})


def _openai_calls(calls: Any, message: ChatMessage) -> None:
    for raw in calls if isinstance(calls, list) else []:
        call = deep_json(raw)
        if not isinstance(call, dict):
            continue
        function: dict[str, Any] = (call["function"] if isinstance(call.get("function"), dict)
                                    else call)
        found = _call(call.get("id") or call.get("toolCallId"),
                      function.get("name") or call.get("toolName"),
                      function.get("arguments", function.get("args", call.get("input"))))
        if found is not None:
            message.calls.append(found)


def _add_part(part: Any, message: ChatMessage) -> None:
    if isinstance(part, str):
        message.texts.append(part)
        return
    if not isinstance(part, dict):
        return
    kind = part.get("type")
    if kind in ("tool_use", "tool_call", "tool-call", "function_call"):
        found = _call(part.get("id") or part.get("toolCallId") or part.get("call_id"),
                      part.get("name") or part.get("toolName"),
                      part.get("input", part.get("arguments", part.get("args"))))
        if found is not None:
            message.calls.append(found)
        return
    if kind in ("tool_result", "tool_call_response", "tool-result", "function_call_output"):
        call_id = (part.get("tool_use_id") or part.get("id") or part.get("toolCallId")
                   or part.get("call_id"))
        content = part.get("content", part.get("response", part.get("result",
                                                                    part.get("output"))))
        message.results.append(ChatResult(call_id if isinstance(call_id, str) else None,
                                          part.get("name") or part.get("toolName"),
                                          as_text(content)))
        return
    if kind in ("thinking", "reasoning"):
        thought = part.get("thinking") or part.get("content") or part.get("text")
        if isinstance(thought, str):
            message.thoughts.append(thought)
        return
    # Gemini parts: {text}, {function_call: {name, args, id}}, {function_response: {...}}.
    for key in ("function_call", "functionCall"):
        if isinstance(part.get(key), dict):
            spec = part[key]
            found = _call(spec.get("id"), spec.get("name"), spec.get("args"))
            if found is not None:
                message.calls.append(found)
            return
    for key in ("function_response", "functionResponse"):
        if isinstance(part.get(key), dict):
            spec = part[key]
            message.results.append(ChatResult(spec.get("id") if isinstance(
                spec.get("id"), str) else None, spec.get("name"), as_text(spec.get("response"))))
            return
    text = part.get("text", part.get("content"))
    if isinstance(text, str) and (kind is None or "text" in str(kind)):
        message.texts.append(text)


def _langchain(value: dict[str, Any]) -> ChatMessage | None:
    ids = value.get("id")
    kwargs = value.get("kwargs")
    if not (isinstance(ids, list) and ids and isinstance(kwargs, dict)):
        return None
    role = LANGCHAIN_ROLES.get(str(ids[-1]))
    if role is None:
        return None
    message = ChatMessage(role)
    _content(kwargs.get("content"), message)
    _openai_calls(kwargs.get("tool_calls"), message)
    if role == "tool":
        call_id = kwargs.get("tool_call_id")
        message.results.append(ChatResult(call_id if isinstance(call_id, str) else None,
                                          kwargs.get("name"), message.text))
        message.texts = []
    return message


def _content(content: Any, message: ChatMessage) -> None:
    decoded = deep_json(content)
    if isinstance(decoded, str):
        message.texts.append(decoded)
        return
    before = (len(message.texts), len(message.calls), len(message.results))
    for part in decoded if isinstance(decoded, list) else []:
        _add_part(part, message)
    if isinstance(content, str) and before == (len(message.texts), len(message.calls),
                                               len(message.results)):
        # JSON text that holds no known part (Koog logs tool calls as content text):
        # the text as written is the content.
        message.texts.append(content)


def message_from(value: Any) -> ChatMessage | None:
    """One message object in any of the shapes above, or None."""
    value = deep_json(value)
    if not isinstance(value, dict):
        return None
    if value.get("lc") is not None:
        return _langchain(value)
    if "toolCallId" in value and "toolName" in value and "role" not in value:
        message = ChatMessage("assistant")
        _openai_calls([value], message)
        return message
    if "role" not in value:
        return None
    role, source_role = _role(value.get("role"))
    message = ChatMessage(role, source_role)
    _content(value.get("content"), message)
    if isinstance(value.get("text"), str):
        message.texts.append(value["text"])
    for part in value.get("parts") or [] if isinstance(value.get("parts"), list) else []:
        _add_part(part, message)
    _openai_calls(value.get("tool_calls"), message)
    reasoning = value.get("reasoning_content") or value.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        message.thoughts.append(reasoning)
    if role == "tool" and not message.results:
        call_id = value.get("tool_call_id")
        message.results.append(ChatResult(call_id if isinstance(call_id, str) else None,
                                          value.get("name") or source_role, message.text))
        message.texts = []
    return message


def messages_from(value: Any) -> list[ChatMessage] | None:
    """The messages a logged model input or output holds; None when it holds none."""
    value = deep_json(value)
    if isinstance(value, list):
        found = [m for m in (message_from(item) for item in value) if m is not None]
        return found or None
    if not isinstance(value, dict):
        return None
    for key in ("messages", "contents"):
        if isinstance(value.get(key), list):
            listed = _listed(value[key], value.get("system"), bare_text=key == "contents")
            if listed is not None:
                return listed
    if isinstance(value.get("contents"), str):  # Gemini: contents may be one string
        return [ChatMessage("user", texts=[value["contents"]])]
    if isinstance(value.get("choices"), list):  # an OpenAI Chat response
        found = [m for m in (message_from(c.get("message")) for c in value["choices"]
                             if isinstance(c, dict)) if m is not None]
        return found or None
    if isinstance(value.get("candidates"), list):  # a Gemini response
        found = [m for m in (message_from({"role": "model", **c["content"]})
                             for c in value["candidates"]
                             if isinstance(c, dict) and isinstance(c.get("content"), dict))
                 if m is not None]
        return found or None
    if isinstance(value.get("message"), dict):  # one OpenAI choice
        single = message_from(value["message"])
        return [single] if single else None
    if isinstance(value.get("prompt"), str):  # Vercel AI SDK / Claude Agent SDK requests
        found = []
        if isinstance(value.get("system"), str):
            found.append(ChatMessage("system", texts=[value["system"]]))
        found.append(ChatMessage("user", texts=[value["prompt"]]))
        return found
    single = message_from(value)
    return [single] if single else None


def _listed(items: list[Any], system: Any, *, bare_text: bool) -> list[ChatMessage] | None:
    found: list[ChatMessage] = []
    if isinstance(system, str) and system:
        found.append(ChatMessage("system", texts=[system]))
    for item in items:
        if isinstance(item, str):
            # Gemini contents may be bare strings (user text); a string in a messages list
            # is some object's repr (agno logs pydantic reprs), not a message.
            if bare_text:
                found.append(ChatMessage("user", texts=[item]))
            continue
        message = message_from(item)
        if message is None and isinstance(item, dict) and isinstance(item.get("parts"), list):
            message = message_from({"role": "user", **item})
        if message is not None:
            found.append(message)
    return found or None
