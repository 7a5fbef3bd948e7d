"""OpenAI Chat Completions conversations with tool calls (``openai_chat``): ``tool_calls``
(and the legacy ``function_call``) in assistant messages, their results in ``tool`` /
``function`` messages, images hoisted into user messages. What the tool-use formats share
(turns, step planning, sniffing, the traps handled) is in
:mod:`curate.sources.adapters._conversation`."""


from __future__ import annotations

from typing import Any, ClassVar

from curate.actions import canonical_json
from curate.sources.adapters import register
from curate.sources.adapters._conversation import (
    CHAT,
    Content,
    Conversation,
    ConversationAdapter,
    Located,
    ToolCall,
    ToolResult,
    decode_arguments,
    join_text,
    located,
    messages_conversation,
    read_content,
    str_or_none,
)

# ---------------------------------------------------------------------------- OpenAI Chat


def parse_chat(messages: list[Located], conversation: Conversation | None = None
               ) -> Conversation:
    """OpenAI Chat Completions messages (incl. legacy ``function_call`` / role ``function``)."""
    conversation = conversation or Conversation(CHAT)
    for position, message in messages:
        if not isinstance(message, dict):
            conversation.problem(position, "message is not an object",
                                 "each message must be an object with a 'role'")
            continue
        _chat_message(message, position, conversation)
    return conversation


def _chat_message(message: dict[str, Any], position: str, conversation: Conversation) -> None:
    role = message.get("role")
    content = read_content(message.get("content"), f"{position}.content", conversation)
    if role in ("system", "developer"):
        turn = conversation.turn("system", position)
        turn.text = content.text
    elif role == "user":
        turn = conversation.turn("user", position)
        turn.text, turn.images = content.text, content.images
    elif role == "assistant":
        _chat_assistant(message, position, content, conversation)
    elif role in ("tool", "function"):
        call_id = message.get("tool_call_id") if role == "tool" else None
        result = ToolResult(position, str_or_none(call_id), str_or_none(message.get("name")),
                            content.text, content.images)
        conversation.turn("tool", position).results.append(result)
    else:
        conversation.problem(position, f"unknown role {role!r}; expected system, developer, "
                             "user, assistant, tool or function", "fix or remove the message")


def _chat_assistant(message: dict[str, Any], position: str, content: Content,
                    conversation: Conversation) -> None:
    turn = conversation.turn("assistant", position)
    turn.text = join_text(content.text, str_or_none(message.get("refusal")))
    # DeepSeek-style reasoning travels beside the content.
    turn.thought = join_text(content.thought, str_or_none(message.get("reasoning_content")))
    for call_position, call in located(message.get("tool_calls"), f"{position}.tool_calls"):
        parsed = _chat_tool_call(call, call_position, conversation)
        if parsed is not None:
            turn.calls.append(parsed)
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        turn.calls.append(_function_call(legacy, None, f"{position}.function_call", legacy))


def _chat_tool_call(call: Any, position: str, conversation: Conversation) -> ToolCall | None:
    if not isinstance(call, dict):
        conversation.problem(position, "tool call is not an object",
                             "each tool_calls entry must be an object with 'id' and 'function'")
        return None
    spec = call.get("function") or call.get("custom")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        conversation.problem(position, "tool call has no function name",
                             "expected {'id', 'type': 'function', 'function': {'name', "
                             "'arguments'}}")
        return None
    if "custom" in call and "function" not in call:
        # Custom tools take free text; keep it under "input" so tool_args stays JSON.
        spec = {"name": spec["name"], "arguments": {"input": spec.get("input")}}
    return _function_call(spec, str_or_none(call.get("id")), position, call)


def _function_call(spec: dict[str, Any], call_id: str | None, position: str,
                   raw: dict[str, Any]) -> ToolCall:
    arguments, warnings = decode_arguments(spec.get("arguments"))
    return ToolCall(position, call_id, str(spec.get("name")), arguments, canonical_json(raw),
                    warnings)


def conversation_from(value: Any, position: str) -> Conversation:
    """One Chat conversation: a list of messages or an object with ``messages``."""
    return messages_conversation(value, position, CHAT, parse_chat,
                                 lambda body: str_or_none(body.get("instructions")))


@register
class OpenAIChatAdapter(ConversationAdapter):
    name: ClassVar[str] = CHAT
    description: ClassVar[str] = ("OpenAI Chat Completions conversations with tool_calls "
                                  "(and legacy function_call), .json or .jsonl")

    def conversation(self, value: Any, position: str) -> Conversation:
        return conversation_from(value, position)
