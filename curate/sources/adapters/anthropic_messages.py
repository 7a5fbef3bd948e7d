"""Anthropic Messages conversations (``anthropic_messages``): ``tool_use`` blocks in
assistant messages, ``tool_result`` blocks in user messages, ``thinking`` as thoughts. What
the tool-use formats share (turns, step planning, sniffing, the traps handled) is in
:mod:`curate.sources.adapters._conversation`."""


from __future__ import annotations

from typing import Any, ClassVar

from curate.actions import canonical_json
from curate.sources.adapters import register
from curate.sources.adapters._conversation import (
    ANTHROPIC,
    Conversation,
    ConversationAdapter,
    Located,
    ToolCall,
    ToolResult,
    at,
    decode_arguments,
    located,
    messages_conversation,
    read_content,
    read_parts,
    str_or_none,
)

# ------------------------------------------------------------------------ Anthropic Messages


def parse_anthropic(messages: list[Located], conversation: Conversation | None = None
                    ) -> Conversation:
    """Anthropic messages: tool_use blocks in assistant turns, tool_result blocks in user ones."""
    conversation = conversation or Conversation(ANTHROPIC)
    for position, message in messages:
        if not isinstance(message, dict):
            conversation.problem(position, "message is not an object",
                                 "each message must be an object with 'role' and 'content'")
            continue
        role = message.get("role")
        if role == "assistant":
            _anthropic_assistant(message, position, conversation)
        elif role in ("user", "system"):
            _anthropic_user(message, position, conversation, role)
        else:
            conversation.problem(position, f"unknown role {role!r}; expected user or "
                                 "assistant", "fix or remove the message")
    return conversation


def _blocks(message: dict[str, Any], position: str) -> list[Located]:
    content = message.get("content")
    if isinstance(content, str):
        return [(at(position, "content"), {"type": "text", "text": content})]
    return located(content, at(position, "content"))


def _is_tool_use(block: Any) -> bool:
    # tool_use, server_tool_use, mcp_tool_use all carry id / name / input.
    return isinstance(block, dict) and str(block.get("type", "")).endswith("tool_use")


def _is_tool_result(block: Any) -> bool:
    return isinstance(block, dict) and "tool_use_id" in block


def _anthropic_assistant(message: dict[str, Any], position: str,
                         conversation: Conversation) -> None:
    turn = conversation.turn("assistant", position)
    other: list[Located] = []
    for block_position, block in _blocks(message, position):
        if _is_tool_use(block):
            arguments, warnings = decode_arguments(block.get("input"))
            turn.calls.append(ToolCall(block_position, str_or_none(block.get("id")),
                                       str(block.get("name")), arguments,
                                       canonical_json(block), warnings))
        else:
            other.append((block_position, block))
    content = read_parts(other, conversation)
    turn.text, turn.thought = content.text, content.thought
    turn.model = message_model(message)


def message_model(message: dict[str, Any]) -> str | None:
    """The model a Messages API response names (Claude Code keeps it on every assistant
    message); Claude Code's ``<synthetic>`` marks a message the CLI wrote itself."""
    model = message.get("model")
    return model if isinstance(model, str) and model and model != "<synthetic>" else None


def _anthropic_user(message: dict[str, Any], position: str, conversation: Conversation,
                    role: str) -> None:
    blocks = _blocks(message, position)
    results = [(p, b) for p, b in blocks if _is_tool_result(b)]
    if results:
        turn = conversation.turn("tool", position)
        for block_position, block in results:
            content = read_content(block.get("content"), f"{block_position}.content",
                                   conversation)
            turn.results.append(ToolResult(
                block_position, str_or_none(block.get("tool_use_id")), None, content.text,
                content.images, bool(block.get("is_error"))))
    rest = [(p, block) for p, block in blocks if not _is_tool_result(block)]
    if rest:
        content = read_parts(rest, conversation)
        turn = conversation.turn(role, position)
        turn.text, turn.images = content.text, content.images


def anthropic_system(system: Any) -> str | None:
    """The top-level ``system`` prompt, a string or a list of text blocks."""
    if isinstance(system, str):
        return system or None
    if isinstance(system, list):
        texts = [str(b.get("text", "")) for b in system if isinstance(b, dict)]
        return "\n".join(texts) or None
    return None


def conversation_from(value: Any, position: str) -> Conversation:
    """One Messages conversation: a list of messages or a request with ``messages``."""
    return messages_conversation(value, position, ANTHROPIC, parse_anthropic,
                                 lambda body: anthropic_system(body.get("system")))


@register
class AnthropicMessagesAdapter(ConversationAdapter):
    name: ClassVar[str] = ANTHROPIC
    description: ClassVar[str] = ("Anthropic Messages conversations with tool_use / "
                                  "tool_result blocks, .json or .jsonl")

    def conversation(self, value: Any, position: str) -> Conversation:
        return conversation_from(value, position)
