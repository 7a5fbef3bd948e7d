"""OpenAI Responses conversations (``openai_responses``): input and output items
(``function_call``, ``function_call_output``, ``custom_tool_call``, ``message``,
``reasoning``). What the tool-use formats share (turns, step planning, sniffing, the traps
handled) is in :mod:`curate.sources.adapters._conversation`."""


from __future__ import annotations

from typing import Any, ClassVar

from curate.actions import canonical_json
from curate.sources.adapters import register
from curate.sources.adapters._conversation import (
    RESPONSES,
    RESPONSES_CALLS,
    RESPONSES_OUTPUTS,
    Conversation,
    ConversationAdapter,
    Located,
    ToolCall,
    ToolResult,
    Turn,
    at,
    decode_arguments,
    join_text,
    located,
    read_content,
    request_metadata,
    str_or_none,
)

# ------------------------------------------------------------------------- OpenAI Responses



def parse_responses(items: list[Located], conversation: Conversation | None = None
                    ) -> Conversation:
    """OpenAI Responses input/output items; consecutive assistant items make one turn."""
    conversation = conversation or Conversation(RESPONSES)
    for position, item in items:
        if not isinstance(item, dict):
            conversation.problem(position, "item is not an object",
                                 "each item must be an object with a 'type'")
            continue
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            _responses_message(item, position, conversation)
        elif kind in RESPONSES_CALLS:
            _assistant_turn(conversation, position).calls.append(
                _responses_call(item, position))
        elif kind in RESPONSES_OUTPUTS:
            _responses_output(item, position, conversation)
        elif kind == "reasoning":
            _responses_reasoning(item, position, conversation)
        else:
            conversation.problem(position, f"item type {kind!r} is not supported and was "
                                 "skipped", "only message, reasoning, function_call and "
                                 "function_call_output items are read")
    return conversation


def _assistant_turn(conversation: Conversation, position: str) -> Turn:
    """The assistant turn being built: the last turn when it is an assistant's, else a new one."""
    if conversation.turns and conversation.turns[-1].role == "assistant":
        return conversation.turns[-1]
    return conversation.turn("assistant", position)


def _responses_message(item: dict[str, Any], position: str,
                       conversation: Conversation) -> None:
    role = item.get("role")
    content = read_content(item.get("content"), f"{position}.content", conversation)
    if role == "assistant":
        turn = _assistant_turn(conversation, position)
        turn.text = join_text(turn.text, content.text)
    elif role in ("user", "system", "developer"):
        turn = conversation.turn("user" if role == "user" else "system", position)
        turn.text, turn.images = content.text, content.images
    else:
        conversation.problem(position, f"unknown message role {role!r}",
                             "expected user, system, developer or assistant")


def _responses_call(item: dict[str, Any], position: str) -> ToolCall:
    raw = item.get("arguments") if item.get("type") == "function_call" else None
    if item.get("type") == "custom_tool_call":
        raw = {"input": item.get("input")}
    arguments, warnings = decode_arguments(raw)
    call_id = str_or_none(item.get("call_id")) or str_or_none(item.get("id"))
    return ToolCall(position, call_id, str(item.get("name")), arguments, canonical_json(item),
                    warnings)


def _responses_output(item: dict[str, Any], position: str,
                      conversation: Conversation) -> None:
    content = read_content(item.get("output"), f"{position}.output", conversation)
    result = ToolResult(position, str_or_none(item.get("call_id")), None, content.text,
                        content.images)
    conversation.turn("tool", position).results.append(result)


def _responses_reasoning(item: dict[str, Any], position: str,
                         conversation: Conversation) -> None:
    # Only the readable summary; encrypted_content is opaque.
    summary = read_content(item.get("summary"), f"{position}.summary", conversation)
    detail = read_content(item.get("content"), f"{position}.content", conversation)
    text = join_text(summary.text, detail.text)
    if text:
        turn = _assistant_turn(conversation, position)
        turn.thought = join_text(turn.thought, text)


def conversation_from(value: Any, position: str) -> Conversation:
    """One Responses conversation: a list of items, or a request with ``input`` (and the
    response's ``output``)."""
    conversation = Conversation(RESPONSES)
    if isinstance(value, list):
        return parse_responses(located(value, position), conversation)
    if not isinstance(value, dict):
        raise ValueError("expected a list of Responses items or an object with \"input\"")
    given = value.get("input")
    if isinstance(given, str):
        conversation.turn("user", at(position, "input")).text = given
    elif given is not None and not isinstance(given, list):
        raise ValueError("\"input\" must be a string or a list of items")
    items = (located(given, at(position, "input"))
             + located(value.get("output"), at(position, "output")))
    parse_responses(items, conversation)
    request_metadata(conversation, value, str_or_none(value.get("instructions")))
    return conversation


@register
class OpenAIResponsesAdapter(ConversationAdapter):
    name: ClassVar[str] = RESPONSES
    description: ClassVar[str] = ("OpenAI Responses input/output items (function_call, "
                                  "function_call_output, message), .json or .jsonl")

    def conversation(self, value: Any, position: str) -> Conversation:
        return conversation_from(value, position)
