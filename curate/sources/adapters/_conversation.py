"""Tool-use conversations, what the four formats share: OpenAI Chat, OpenAI Responses,
Anthropic Messages and HTTP cassettes of them (one module each beside this one).

Three provider schemas are normalised into one sequence of :class:`Turn` objects (user,
assistant, tool, system), and one :class:`StepPlanner` turns that sequence into steps:

* each tool call is a ``tool_call`` action (``tool_args`` as canonical JSON); its result is
  the next state: text into ``observation``, inline images into frames (``next_frame_id``);
* the assistant's text (and reasoning) next to tool calls is the ``thought`` of the first
  call; an assistant reply with text and no calls is an ``answer`` action;
* s_t of a step is the latest image seen before the assistant message (a user-provided
  image, an earlier tool result's image), else ``frame_missing = text_only``;
* the instruction is the first user message's text; ``clock`` is ``none`` (the message
  formats carry no per-message timestamps).

Adapters, one module each: ``openai_chat``, ``openai_responses`` and ``anthropic_messages``
read a JSON file holding one conversation (a list of messages/items or an object with ``messages``
/ ``input``) or JSONL with one conversation per line (episode ``line N``); ``http_cassette``
reads recorded HTTP traffic (VCR-style YAML or JSON with ``interactions:``).

Traps handled:

* results are matched to calls by id (``tool_call_id`` / ``tool_use_id`` / ``call_id``),
  never by position; legacy OpenAI ``function`` results (no id) match the oldest waiting
  call of the same name. A result with no call is a step-level reject; a call with no result
  keeps ``observation`` None and gets a warning.
* parallel calls in one assistant message become several steps, in order, sharing s_t.
* OpenAI Chat cannot put images in tool messages, so clients *hoist* them into a following
  user message as base64 data URLs. Rule used here (Chat only): a user message that comes
  right after tool messages (no assistant message between) and holds images is not a user
  turn; each of its images is the next state of one of those results. The image goes to the
  result whose text contains an identifier (a word with a digit, 4+ characters) from the
  caption just before the image (pydantic-ai writes ``See file 241a70`` in the tool message
  and ``This is file 241a70:`` before the image); failing a unique match, to the last of
  those results. The message's captions are framing, not tool output, and are not kept.
* a result with several images: all become frames, the last is s_t+1 (warning names the
  others). Images given by URL or file id are not downloaded (ingest is a pure function of
  its input): a frame-level reject says so and ``next_frame_missing`` is ``file_missing``.
* cassettes: each later request repeats the history, so only the last model request (plus
  its response) is read; earlier same-provider replies whose tool calls are missing from that
  history are reported, requests to other providers (Gemini) are listed in metadata; bodies
  are read from ``parsed_body`` (pydantic-ai) or VCR's ``body``/``body.string`` JSON text; a
  YAML cassette cut at a line boundary still parses, so a missing trailing ``version`` key is
  reported; a non-2xx or streamed (non-JSON) response ends the episode at the request.
* text-only assistant messages directly followed by another assistant message are thoughts,
  not answers; a user message after an answer is that answer's observation (multi-turn);
  a user message between a result and the next call is appended to the observation with a
  warning.
* sniffing (``claims``) reads at most 64 KB and leaves OSWorld, AgentNet, ToolBench and
  curate-native files alone.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from abc import abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, canonical_json
from curate.errors import SourceError
from curate.sources.adapters._outcome import outcome_from_ending
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    SNIFF_BYTES,
    TEXT_ONLY,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    StepRecord,
    UnitBuilder,
    episode_id_for,
    load_json,
    text_head,
)

CHAT = "openai_chat"
RESPONSES = "openai_responses"
ANTHROPIC = "anthropic_messages"
CASSETTE = "http_cassette"
PROVIDER_LABELS = {
    CHAT: "OpenAI Chat Completions",
    RESPONSES: "OpenAI Responses",
    ANTHROPIC: "Anthropic Messages",
}
SUFFIXES = frozenset({".json", ".jsonl", ".ndjson", ".yaml", ".yml"})
LINE_SUFFIXES = frozenset({".jsonl", ".ndjson"})
TERMINAL_TYPES = frozenset({"answer", "fail", "done"})

Located = tuple[str, Any]  # (position in the file, value found there)


RESPONSES_CALLS = frozenset({"function_call", "custom_tool_call"})
RESPONSES_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})
RESPONSES_ITEM_TYPES = RESPONSES_CALLS | RESPONSES_OUTPUTS | {"message", "reasoning"}


# --------------------------------------------------------------------------- normalised turns


@dataclass(slots=True)
class ImagePart:
    """One image in a message or tool result: inline bytes, or a reference we cannot fetch."""

    position: str
    data: bytes | None = None
    url: str | None = None
    error: str | None = None
    caption: str | None = None  # the text part right before it (used by the hoisting rule)


@dataclass(slots=True)
class ToolCall:
    position: str
    call_id: str | None
    name: str
    arguments: Any  # decoded JSON arguments, or the raw string when it is not JSON
    raw: str
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ToolResult:
    position: str
    call_id: str | None
    name: str | None
    text: str | None
    images: list[ImagePart] = field(default_factory=list)
    is_error: bool = False


@dataclass(slots=True)
class Turn:
    role: str  # user, assistant, tool, system
    position: str
    text: str | None = None
    thought: str | None = None
    images: list[ImagePart] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)
    model: str | None = None  # the model that wrote an assistant turn, when recorded


@dataclass(slots=True)
class Problem:
    """Something in the input that was skipped; becomes a step-level reject."""

    position: str
    reason: str
    hint: str


@dataclass(slots=True)
class Conversation:
    schema: str
    turns: list[Turn] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def problem(self, position: str, reason: str, hint: str) -> None:
        self.problems.append(Problem(position, reason, hint))

    def turn(self, role: str, position: str) -> Turn:
        turn = Turn(role=role, position=position)
        self.turns.append(turn)
        return turn


def at(prefix: str, key: str) -> str:
    """Join a position prefix and a key: ``messages[2]``, ``line 3: messages[2]``."""
    if not prefix:
        return key.lstrip(".")
    if prefix.endswith(":"):
        return f"{prefix} {key.lstrip('.')}"
    return prefix + (key if key.startswith(("[", ".")) else f".{key}")


def located(values: Any, position: str) -> list[Located]:
    """Pair each element of a list with its JSON-path position."""
    if not isinstance(values, list):
        return []
    return [(at(position, f"[{index}]"), value) for index, value in enumerate(values)]


def join_text(*parts: str | None) -> str | None:
    texts = [part for part in parts if part]
    return "\n\n".join(texts) if texts else None


def decode_arguments(raw: Any) -> tuple[Any, list[str]]:
    """Tool arguments as JSON values; a string that is not JSON is kept, with a warning."""
    if not isinstance(raw, str):
        return ({} if raw is None else raw), []
    if not raw.strip():
        return {}, []
    try:
        return json.loads(raw), []
    except json.JSONDecodeError as error:
        return raw, [f"tool arguments are not valid JSON ({error.msg}); kept as a JSON string"]


def image_from_url(url: Any, position: str, caption: str | None) -> ImagePart:
    """A data URL decoded to bytes; any other URL is kept as a reference."""
    if not isinstance(url, str):
        return ImagePart(position, error="image URL is not a string", caption=caption)
    if not url.startswith("data:"):
        return ImagePart(position, url=url, caption=caption)
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        return ImagePart(position, error="data URL is not base64-encoded", caption=caption)
    return _image_from_base64(payload, position, caption)


def _image_from_base64(payload: Any, position: str, caption: str | None) -> ImagePart:
    if not isinstance(payload, str):
        return ImagePart(position, error="base64 image data is not a string", caption=caption)
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        return ImagePart(position, error=f"invalid base64 image data: {error}", caption=caption)
    return ImagePart(position, data=data, caption=caption)


def _anthropic_image(block: dict[str, Any], position: str, caption: str | None) -> ImagePart:
    source = block.get("source")
    if not isinstance(source, dict):
        return ImagePart(position, error="image block has no 'source' object", caption=caption)
    kind = source.get("type")
    if kind == "base64":
        return _image_from_base64(source.get("data"), position, caption)
    if kind == "url":
        return ImagePart(position, url=str(source.get("url")), caption=caption)
    reference = source.get("file_id") or kind
    return ImagePart(position, url=f"{kind}:{reference}", caption=caption)


# ------------------------------------------------------------------- content parts and blocks


@dataclass(slots=True)
class Content:
    """Text and images of one message's content (a string or a list of parts/blocks)."""

    texts: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    images: list[ImagePart] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        return "\n".join(self.texts) if self.texts else None

    @property
    def thought(self) -> str | None:
        return join_text(*self.thoughts)


_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text", "summary_text",
                              "reasoning_text"})


def read_content(content: Any, position: str, conversation: Conversation) -> Content:
    """Text, thoughts and images from a content string or list, whatever the provider."""
    found = Content()
    if isinstance(content, str):
        found.texts.append(content)
        return found
    if content is None:
        return found
    if not isinstance(content, list):
        conversation.problem(position, f"content is a {type(content).__name__}, expected a "
                             "string or a list of parts", "fix the message's content")
        return found
    return read_parts(located(content, position), conversation)


def read_parts(parts: list[Located], conversation: Conversation) -> Content:
    """Text, thoughts and images from content parts that keep their source positions."""
    found = Content()
    for part_position, part in parts:
        _read_part(part, part_position, found, conversation)
    return found


def _read_part(part: Any, position: str, found: Content, conversation: Conversation) -> None:
    caption = found.texts[-1] if found.texts else None
    kind = part.get("type") if isinstance(part, dict) else None
    if isinstance(part, str):
        found.texts.append(part)
    elif not isinstance(part, dict):
        conversation.problem(position, "content part is not an object or string",
                             "each content part must be an object with a 'type'")
    elif kind in _TEXT_PART_TYPES:
        found.texts.append(str(part.get("text", "")))
    elif kind == "refusal":
        found.texts.append(str(part.get("refusal", "")))
    elif kind == "image_url":
        spec = part.get("image_url")
        url = spec.get("url") if isinstance(spec, dict) else spec
        found.images.append(image_from_url(url, position, caption))
    elif kind == "input_image":
        url = part.get("image_url") or (f"file_id:{part['file_id']}" if "file_id" in part
                                        else None)
        found.images.append(image_from_url(url, position, caption))
    elif kind == "image":
        found.images.append(_anthropic_image(part, position, caption))
    elif kind == "thinking":
        found.thoughts.append(str(part.get("thinking", "")))
    elif kind == "redacted_thinking":
        pass  # encrypted reasoning: nothing readable to keep
    else:
        conversation.problem(position, f"content part of type {kind!r} is not supported and "
                             "was skipped", "only text and image parts are read")


def str_or_none(value: Any) -> str | None:
    """A non-empty string as it is (ids, instructions); None for anything else."""
    return value if isinstance(value, str) and value else None


# ---------------------------------------------------------------------------- steps planner


@dataclass(slots=True)
class _Waiting:
    """A call whose result has not been seen yet."""

    call: ToolCall
    step: StepRecord


class StepPlanner:
    """Turns a normalised conversation into the steps of one episode.

    Subclasses change how a call becomes an action (:meth:`action_for`) and how a result
    becomes observation text (:meth:`observation_for`), e.g. ToolBench's ``Finish`` call.
    """

    def __init__(self, episode: EpisodeBuilder, file: str, *,
                 hoist_user_images: bool = False) -> None:
        self.episode = episode
        self.file = file
        self.hoist_user_images = hoist_user_images
        self.latest_frame: str | None = None
        self.waiting: list[_Waiting] = []
        self.answered: list[tuple[StepRecord, ToolResult]] = []  # results since last assistant
        self.held: Turn | None = None  # a text-only assistant turn: answer or thought?
        self.carried_thought: str | None = None
        self.previous_role: str | None = None
        self.seen_user = False

    # hooks ------------------------------------------------------------------------------

    def action_for(self, call: ToolCall) -> Action:
        """The call's action; may add to ``call.warnings`` (they go to the step)."""
        return Action(type="tool_call", tool_name=call.name,
                      tool_args=canonical_json(call.arguments), raw=call.raw)

    def observation_for(self, result: ToolResult, warnings: list[str]) -> str | None:
        """The step's observation text; may add to the step's ``warnings``."""
        del warnings  # the default has nothing to warn about
        if result.text is None and not result.images:
            return ""  # an empty result is still a result (None means "no result seen")
        return result.text

    # driver -----------------------------------------------------------------------------

    def run(self, conversation: Conversation) -> None:
        for problem in conversation.problems:
            self.episode.reject(file=self.file, position=problem.position,
                                reason=problem.reason, hint=problem.hint)
        for turn in conversation.turns:
            self._release_held(turn)
            handler = {"user": self._user, "assistant": self._assistant,
                       "tool": self._tool, "system": self._system}[turn.role]
            handler(turn)
            self.previous_role = turn.role
        self._release_held(None)
        self._finish()

    def _release_held(self, turn: Turn | None) -> None:
        held, self.held = self.held, None
        if held is None:
            return
        if turn is not None and turn.role == "assistant":
            # Two assistant messages in a row: the first one was thinking aloud.
            self.carried_thought = join_text(self.carried_thought, held.thought, held.text)
        else:
            self._answer(held)

    # turns ------------------------------------------------------------------------------

    def _system(self, turn: Turn) -> None:
        if turn.text:
            system = self.episode.metadata.get("system")
            self.episode.metadata["system"] = join_text(system, turn.text)

    def _user(self, turn: Turn) -> None:
        if self._is_hoisted(turn):
            self._hoist(turn)
            return
        for image in turn.images:
            frame_id, _ = self._frame(image)
            self.latest_frame = frame_id or self.latest_frame
        if not self.seen_user:
            self.seen_user = True
            self.episode.instruction = turn.text
        elif turn.text and self.episode.steps:
            self._user_text_after_step(turn)
        elif turn.text:
            self.episode.metadata.setdefault("context_messages", []).append(
                {"position": turn.position, "text": turn.text})

    def _user_text_after_step(self, turn: Turn) -> None:
        step = self.episode.steps[-1]
        if step.action.type == "answer" and step.observation is None:
            step.observation = turn.text  # multi-turn chat: the user's reply follows the answer
            return
        step.observation = join_text(step.observation, f"[user] {turn.text}")
        step.warnings.append(f"a user message ({turn.position}) came between this step and the "
                             "next action; its text was appended to the observation")

    def _assistant(self, turn: Turn) -> None:
        self.answered = []
        if not turn.calls:
            if turn.text:
                self.held = turn
            else:
                self.carried_thought = join_text(self.carried_thought, turn.thought)
            return
        thought = join_text(self.carried_thought, turn.thought, turn.text)
        self.carried_thought = None
        frame_id = self.latest_frame  # parallel calls all start from the same state
        for index, call in enumerate(turn.calls):
            action = self.action_for(call)
            step = self._step(action, call.position, frame_id,
                              thought if index == 0 else None, list(call.warnings),
                              model=turn.model)
            if action.type == "tool_call":
                self.waiting.append(_Waiting(call, step))

    def _answer(self, turn: Turn) -> None:
        thought = join_text(self.carried_thought, turn.thought)
        self.carried_thought = None
        self._step(Action(type="answer", text=turn.text), turn.position, self.latest_frame,
                   thought, [], model=turn.model)

    def _step(self, action: Action, position: str, frame_id: str | None,
              thought: str | None, warnings: list[str], *, model: str | None
              ) -> StepRecord:
        return self.episode.add_step(
            action, source_position=position, frame_id=frame_id,
            frame_missing=None if frame_id else TEXT_ONLY, next_frame_missing=TEXT_ONLY,
            thought=thought, warnings=warnings, model=model)

    def _tool(self, turn: Turn) -> None:
        for result in turn.results:
            waiting = self._match(result)
            if waiting is None:
                self._orphan(result)
                continue
            step = waiting.step
            step.observation = self.observation_for(result, step.warnings)
            if result.is_error:
                self.episode.metadata.setdefault("tool_errors", []).append(result.position)
            for image in result.images:
                self._attach(step, image)
            self.answered.append((step, result))

    # matching ---------------------------------------------------------------------------

    def _match(self, result: ToolResult) -> _Waiting | None:
        def take(index: int) -> _Waiting:
            return self.waiting.pop(index)

        if result.call_id is not None:
            for index, waiting in enumerate(self.waiting):
                if waiting.call.call_id == result.call_id:
                    return take(index)
            return None
        # Legacy results carry no id: the oldest waiting call of that name.
        for index, waiting in enumerate(self.waiting):
            if result.name is not None and waiting.call.name == result.name:
                return take(index)
        if result.name is None and len(self.waiting) == 1:
            return take(0)
        return None

    def _orphan(self, result: ToolResult) -> None:
        key = (f"id {result.call_id!r}" if result.call_id
               else f"name {result.name!r}" if result.name else "no id or name")
        self.episode.reject(
            file=self.file, position=result.position, level="step",
            reason=f"tool result ({key}) matches no earlier tool call that is still waiting "
                   "for a result; the result was not ingested",
            hint="check that the call with this id is in the conversation before the result "
                 "(a truncated or re-ordered log)")

    def _finish(self) -> None:
        for waiting in self.waiting:
            call = waiting.call
            key = f"id {call.call_id!r}" if call.call_id else f"name {call.name!r}"
            waiting.step.warnings.append(f"no result for the tool call ({key}) at "
                                         f"{call.position}; observation left empty")
        steps = self.episode.steps
        self.episode.terminated = bool(steps) and steps[-1].action.type in TERMINAL_TYPES
        self.episode.truncated = bool(steps) and not self.episode.terminated
        outcome_from_ending(self.episode)

    # images -----------------------------------------------------------------------------

    def _is_hoisted(self, turn: Turn) -> bool:
        return (self.hoist_user_images and self.previous_role == "tool" and bool(self.answered)
                and bool(turn.images))

    def _hoist(self, turn: Turn) -> None:
        for image in turn.images:
            step = self._hoist_target(image)
            self._attach(step, image)

    def _hoist_target(self, image: ImagePart) -> StepRecord:
        tokens = _identifiers(image.caption or "")
        matches = [step for step, result in self.answered
                   if tokens and tokens & _identifiers(result.text or "")]
        return matches[0] if len(matches) == 1 else self.answered[-1][0]

    def _attach(self, step: StepRecord, image: ImagePart) -> None:
        frame_id, missing = self._frame(image)
        if frame_id is None:
            if step.next_frame_id is None:
                step.next_frame_missing = missing
            return
        if step.next_frame_id is not None and step.next_frame_id != frame_id:
            step.warnings.append(f"the result holds several images; s_t+1 is the last one, "
                                 f"frame {step.next_frame_id} is stored but not linked")
        step.next_frame_id = frame_id
        self.latest_frame = frame_id

    def _frame(self, image: ImagePart) -> tuple[str | None, str]:
        """Add an inline image as a frame; (frame id, or None and the missing reason)."""
        if image.data is not None:
            frame = self.episode.add_frame(image.data, file=self.file, position=image.position)
            return (frame.frame_id, "") if frame else (None, FILE_CORRUPT)
        if image.error is not None:
            self.episode.reject(file=self.file, position=image.position, level="frame",
                                reason=image.error,
                                hint="re-record the image as a base64 data URL or block")
            return None, FILE_CORRUPT
        self.episode.reject(
            file=self.file, position=image.position, level="frame",
            reason=f"image given by reference ({_short(image.url)}), not embedded; ingest "
                   "does not download it",
            hint="embed the image as base64 in the log if it should become a frame")
        return None, FILE_MISSING


_WORD = re.compile(r"[A-Za-z0-9_]{4,}")


def _identifiers(text: str) -> set[str]:
    """Words with a digit in them: file ids, hashes, call ids."""
    return {word for word in _WORD.findall(text) if any(ch.isdigit() for ch in word)}


def _short(text: str | None, limit: int = 80) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tool_names(tools: Any) -> list[str]:
    """Declared tool names, from any provider's ``tools`` list."""
    names: list[str] = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        spec: dict[str, Any] = function if isinstance(function, dict) else tool
        if isinstance(spec.get("name"), str):
            names.append(spec["name"])
    return names


# ------------------------------------------------------------------------------- sniffing

_KNOWN_ROLES = frozenset({"user", "assistant", "system", "developer", "tool", "function"})
_ANTHROPIC_BLOCKS = frozenset({"tool_use", "tool_result", "thinking", "redacted_thinking",
                               "server_tool_use"})
# Keys of formats other adapters own: ToolBench answers, OSWorld traj.jsonl, AgentNet events,
# curate native episodes.
_FOREIGN_KEYS = frozenset({"answer_generation", "compare_candidates", "forward_args",
                           "step_num", "event_idx", "curate_native"})
_FOREIGN_SIBLINGS = ("episode.json", "traj.jsonl")

_Q = r'(?<!\\)"'  # an unescaped quote: a key of the document, not text inside a string
_FOREIGN_MARK = re.compile(_Q + r"(?:" + "|".join(sorted(_FOREIGN_KEYS)) + r')"\s*:')
_RESPONSES_MARK = re.compile(
    _Q + r'type"\s*:\s*"(?:function_call|function_call_output|custom_tool_call|reasoning)"')
_ANTHROPIC_MARK = re.compile(_Q + r'type"\s*:\s*"(?:tool_use|tool_result|thinking)"')
_CHAT_MARK = re.compile(_Q + r'(?:tool_calls|tool_call_id)"\s*:|' + _Q
                        + r'role"\s*:\s*"(?:tool|function)"|' + _Q + r'function_call"\s*:\s*\{|'
                        + _Q + r'type"\s*:\s*"image_url"')
_ROLE_MARK = re.compile(_Q + r'role"\s*:\s*"(?:user|assistant|system|developer)"')
_CASSETTE_JSON = re.compile(_Q + r'interactions"\s*:\s*\[')
_CASSETTE_YAML = re.compile(r"^interactions:", re.MULTILINE)
_LLM_TRAFFIC = re.compile(r"api\.openai\.com|api\.anthropic\.com|/chat/completions|"
                          r"/v1/responses|/v1/messages|\bmessages:|\"messages\"|^\s*input:",
                          re.MULTILINE)


def classify(value: Any) -> str | None:
    """Which schema a parsed JSON value is: a conversation (three providers), a cassette."""
    if isinstance(value, dict):
        if _FOREIGN_KEYS & value.keys():
            return None
        if isinstance(value.get("interactions"), list):
            return CASSETTE
        if isinstance(value.get("messages"), list):
            return classify_messages(value["messages"])
        items = value.get("input"), value.get("output")
        if any(_looks_like_responses(v) for v in items) or (
                isinstance(value.get("input"), str) and isinstance(value.get("output"), list)):
            return RESPONSES
        return None
    if isinstance(value, list):
        return RESPONSES if _looks_like_responses(value) else classify_messages(value)
    return None


def _looks_like_responses(items: Any) -> bool:
    return isinstance(items, list) and any(
        isinstance(item, dict) and item.get("type") in RESPONSES_ITEM_TYPES for item in items)


def classify_messages(messages: list[Any]) -> str | None:
    """A Chat or Anthropic message list, or None when these are not chat messages."""
    if not messages or not all(
            isinstance(m, dict) and m.get("role") in _KNOWN_ROLES for m in messages):
        return None
    if not any(m["role"] in ("assistant", "tool", "function") for m in messages):
        return None
    for message in messages:
        if "tool_calls" in message or "function_call" in message or message["role"] in (
                "tool", "function"):
            return CHAT
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind in _ANTHROPIC_BLOCKS or (kind == "image" and "source" in block):
                return ANTHROPIC
            if kind == "image_url":
                return CHAT
    return CHAT  # plain text conversations read the same either way


def classify_text(text: str) -> str | None:
    """Schema from a (possibly truncated) JSON prefix, by its keys."""
    if _FOREIGN_MARK.search(text):
        return None
    if _CASSETTE_JSON.search(text):
        return CASSETTE
    if _RESPONSES_MARK.search(text):
        return RESPONSES
    if not _ROLE_MARK.search(text):
        return None
    if _ANTHROPIC_MARK.search(text):
        return ANTHROPIC
    return CHAT if _CHAT_MARK.search(text) else None


def sniff(path: Path) -> str | None:
    """The schema of a file, reading at most the first 64 KB (cached per file version)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    if not path.is_file() or path.suffix.lower() not in SUFFIXES:
        return None
    if any((path.parent / name).is_file() for name in _FOREIGN_SIBLINGS):
        return None  # inside an OSWorld result or a native episode folder
    return _sniff_cached(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _sniff_cached(path: str, mtime_ns: int, size: int) -> str | None:
    del mtime_ns  # part of the cache key only
    head = text_head(Path(path))
    if head is None:
        return None
    suffix = Path(path).suffix.lower()
    complete = size <= SNIFF_BYTES
    if suffix in (".yaml", ".yml"):
        found = _CASSETTE_YAML.search(head) and "request:" in head
        return CASSETTE if found and _LLM_TRAFFIC.search(head) else None
    if suffix in LINE_SUFFIXES:
        first = next((line for line in head.splitlines() if line.strip()), "")
        line_complete = complete or "\n" in head[head.find(first):]
        return _classify_json_text(first, line_complete)
    return _classify_json_text(head, complete)


def _classify_json_text(text: str, complete: bool) -> str | None:
    if not text.lstrip().startswith(("{", "[")):
        return None
    if complete:
        try:
            return classify(json.loads(text))
        except json.JSONDecodeError:
            pass  # corrupt: claim it by its keys so the adapter can say where it breaks
    return classify_text(text)


# ------------------------------------------------------------------------ conversation files


def messages_conversation(value: Any, position: str, schema: str,
                          parse: Callable[[list[Located]], Conversation],
                          system: Callable[[dict[str, Any]], str | None]) -> Conversation:
    """One conversation of a messages schema (Chat, Anthropic): a list of messages, or an
    object with ``messages`` whose model, tools and system prompt (``system(body)``) are
    kept as metadata."""
    messages = value.get("messages") if isinstance(value, dict) else value
    if not isinstance(messages, list):
        raise ValueError(f"expected a list of messages or an object with \"messages\" "
                         f"(one {PROVIDER_LABELS[schema]} conversation)")
    base = at(position, "messages") if isinstance(value, dict) else position
    conversation = parse(located(messages, base))
    if isinstance(value, dict):
        request_metadata(conversation, value, system(value))
    return conversation


def request_metadata(conversation: Conversation, body: dict[str, Any],
                     system: str | None) -> None:
    """The request's model, tool names and system prompt, as episode metadata."""
    meta = conversation.metadata
    if isinstance(body.get("model"), str):
        meta["model"] = body["model"]
    names = tool_names(body.get("tools"))
    if names:
        meta["tools"] = names
    if system:
        meta["system"] = system


def build_episode(out: UnitBuilder, conversation: Conversation, file: str,
                  inner_id: str | None, position: str) -> None:
    """One conversation → one episode; dropped with a reason when it has no step."""
    episode = out.episode(inner_id)
    episode.platform = "tool"
    episode.metadata.update(conversation.metadata)
    planner = StepPlanner(episode, file, hoist_user_images=conversation.schema == CHAT)
    planner.run(conversation)
    if not episode.steps:
        out.drop_episode(episode, file=file, position=position,
                         reason="the conversation has no assistant tool call or reply",
                         hint="a trajectory needs at least one assistant message")


class ConversationAdapter(Adapter):
    """A JSON file with one conversation, or JSONL with one conversation per line."""

    platform: ClassVar[str] = "tool"
    version: ClassVar[str] = "2"  # 2: an ending that gives up is fail (_outcome)
    priority: ClassVar[int] = 80  # generic shapes: after every format-specific adapter

    @abstractmethod
    def conversation(self, value: Any, position: str) -> Conversation:
        """One conversation of this adapter's schema, normalised (ValueError if it is none)."""

    def claims(self, path: Path) -> bool:
        return sniff(path) == self.name

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        if unit.path.suffix.lower() in LINE_SUFFIXES:
            for number, value in self._lines(unit, out, file):
                self._one(out, value, file, number)
            if not out.episodes and not out.rejects:
                raise SourceError("the file holds no conversation", file=file,
                                  hint="write one conversation (JSON) per line")
            return
        value = load_json(unit.path, unit)
        try:
            conversation = self.conversation(value, "")
        except ValueError as error:
            raise SourceError(str(error), file=file, position="",
                              hint=f"check the file is a {PROVIDER_LABELS[self.name]} "
                                   "conversation, or pass --format for another one") from None
        build_episode(out, conversation, file, None, "")

    def _lines(self, unit: SourceUnit, out: UnitBuilder, file: str
               ) -> Iterator[tuple[int, Any]]:
        with unit.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    yield number, json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    out.reject(file=file, position=f"line {number}", level="episode",
                               reason=f"invalid JSON line: {error}; expected one "
                                      f"{PROVIDER_LABELS[self.name]} conversation",
                               hint="the line is truncated or corrupt; fix or remove it",
                               episode_id=_line_episode_id(out, number))

    def _one(self, out: UnitBuilder, value: Any, file: str, number: int) -> None:
        position = f"line {number}"
        try:
            # Positions inside the line read "line 3: messages[1].tool_calls[0]".
            conversation = self.conversation(value, f"{position}:")
        except ValueError as error:
            out.reject(file=file, position=position, level="episode", reason=str(error),
                       hint="each line must be one conversation: a list of messages or an "
                            "object with \"messages\" (\"input\" for Responses)",
                       episode_id=_line_episode_id(out, number))
            return
        build_episode(out, conversation, file, position, position)


def _line_episode_id(out: UnitBuilder, number: int) -> str:
    """The id the line's episode would have had, so a reject can be traced to it."""
    return episode_id_for(out.source_format, f"{out.unit.source_path}#line {number}")
