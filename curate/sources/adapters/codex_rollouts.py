"""Codex CLI rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl``).

One JSON object per line. Since September 2025 every line is an envelope
``{"timestamp", "type", "payload"}`` whose ``type`` is ``session_meta``, ``response_item``,
``turn_context``, ``compacted`` or ``event_msg`` (the ``RolloutItem`` enum of the
openai/codex repository, codex-rs/protocol). Older files ("bare" rollouts) start with a bare
session header ``{"id", "timestamp", "instructions"}`` and hold bare response items and
``{"record_type": "state"}`` markers. ``response_item`` payloads are OpenAI Responses items
(``message``, ``reasoning``, ``function_call``, ``function_call_output``,
``custom_tool_call``, ...) read by the shared Responses parser; see
docs/sources/codex_rollouts.md.

Traps handled:

* the CLI injects context as user messages (``<environment_context>``, ``<user_instructions>``,
  ``# AGENTS.md instructions ...``): they are not the task. When the file has ``event_msg``
  ``user_message`` records (what the person typed), a user message is the person's only if
  one of them has its text; otherwise the known context wrappers are recognised by prefix.
  Context goes to ``metadata.system``, never to the instruction;
* ``local_shell_call`` (argv in ``action.exec``) and ``web_search_call`` are tool calls the
  Responses parser does not know: they become ``local_shell`` / ``web_search`` calls
  (a web search's results are not recorded, so its observation stays empty, with a warning);
* old shell outputs are JSON in a string (``{"output", "metadata": {"exit_code"}}``): the
  output text is the observation and a non-zero exit code is a warning;
* ``compacted`` records carry a summary and a ``replacement_history`` that repeats earlier
  items: counted, never read as new turns; ``ghost_snapshot`` / ``compaction`` items (the
  harness's git snapshots, encrypted summaries) are skipped and counted;
* ``event_msg`` records mirror the conversation for the UI (agent messages, token counts):
  counted by type in ``metadata.skipped_records``, never read as turns; ``turn_aborted``
  (the person interrupted) is kept in metadata;
* a fork's file holds a second ``session_meta`` (the parent's) and the parent's history:
  kept as one conversation, the parent ids listed in metadata;
* unknown record or item types are step rejects naming the line; a truncated last line (a
  live session) is a reject and every line before it is read.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters._conversation import (
    RESPONSES,
    Conversation,
    Located,
    StepPlanner,
    ToolResult,
)
from curate.sources.adapters.base import (
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    iter_jsonl,
    text_head,
)
from curate.sources.adapters.openai_responses import parse_responses
from curate.sources.values import iso_seconds

ROLLOUT_TYPES = frozenset({"session_meta", "response_item", "turn_context", "compacted",
                           "event_msg"})
# Items the harness writes that are not turns of the conversation.
SKIPPED_ITEMS = frozenset({"ghost_snapshot", "compaction", "compaction_summary", "other"})
# How the CLI wraps the context it sends as user messages (checked only when the file has no
# user_message events to tell the person's messages apart).
CONTEXT_PREFIXES = ("<environment_context>", "<user_instructions>", "<INSTRUCTIONS>",
                    "# AGENTS.md instructions", "<permissions instructions>",
                    "<user_shell_command>", "<turn_aborted>")
SESSION_KEYS = ("id", "cwd", "originator", "cli_version", "source", "model_provider",
                "forked_from_id", "agent_nickname", "agent_role", "git")
_ENVELOPE_HEAD = re.compile(r'^\{\s*"timestamp"\s*:\s*"[^"]*"\s*,\s*"type"\s*:\s*'
                            r'"session_meta"')


def _first_record(path: Path) -> dict[str, Any] | bool | None:
    """The first line as an object; True when it is too long to parse but reads like an
    envelope header; None otherwise."""
    head = text_head(path)
    if head is None:
        return None
    first = head.split("\n", 1)[0]
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return True if _ENVELOPE_HEAD.match(first) else None
    return record if isinstance(record, dict) else None


def _is_bare_header(record: dict[str, Any]) -> bool:
    return ("type" not in record and isinstance(record.get("id"), str)
            and isinstance(record.get("timestamp"), str) and "instructions" in record)


def _content_text(content: Any) -> str:
    """The text parts of a message's content, joined (a string is its own text)."""
    if isinstance(content, str):
        return content
    parts = [p.get("text") for p in content if isinstance(p, dict)] if isinstance(
        content, list) else []
    return "\n".join(p for p in parts if isinstance(p, str))


class CodexPlanner(StepPlanner):
    """Unwraps the JSON-in-a-string shell outputs of older Codex versions."""

    def observation_for(self, result: ToolResult, warnings: list[str]) -> str | None:
        text = super().observation_for(result, warnings)
        if not text or not text.startswith("{"):
            return text
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text
        if not (isinstance(value, dict) and isinstance(value.get("output"), str)
                and isinstance(value.get("metadata"), dict)):
            return text
        exit_code = value["metadata"].get("exit_code")
        if isinstance(exit_code, int) and exit_code != 0:
            warnings.append(f"the command exited with code {exit_code}")
        return str(value["output"])


class _Session:
    """What one rollout file holds, gathered before the items are turned into turns."""

    def __init__(self, file: str, out: UnitBuilder) -> None:
        self.file = file
        self.out = out
        self.items: list[tuple[int, dict[str, Any]]] = []
        # (line, model) of each turn_context: the model of the turns after it (steps.model)
        self.models: list[tuple[int, str]] = []
        self.typed: set[str] = set()  # texts of the person's user_message events
        self.saw_user_events = False
        self.meta: dict[str, Any] = {}
        self.skipped: Counter[str] = Counter()
        self.timestamps: dict[int, float] = {}
        self.era = "envelope"

    def add(self, number: int, record: dict[str, Any]) -> None:
        moment = iso_seconds(record.get("timestamp"))
        if moment is not None:
            self.timestamps[number] = moment
        kind = record.get("type")
        if "record_type" in record and kind is None:
            self.skipped[f"record_type:{record['record_type']}"] += 1
        elif _is_bare_header(record):
            self.era = "bare"
            self._session_meta(record)
        elif kind in ROLLOUT_TYPES and isinstance(record.get("payload"), dict):
            self._envelope(number, kind, record["payload"])
        elif isinstance(kind, str) and "payload" not in record and self.era == "bare":
            self.items.append((number, record))  # a bare response item
        else:
            self.skipped[str(kind)] += 1
            self.out.reject(file=self.file, position=f"line {number}",
                            reason=f"unknown rollout record type {kind!r}; skipped",
                            hint="Codex writes session_meta, response_item, turn_context, "
                                 "compacted and event_msg records; nothing is guessed about "
                                 "others")

    def _envelope(self, number: int, kind: str, payload: dict[str, Any]) -> None:
        if kind == "response_item":
            self.items.append((number, payload))
        elif kind == "session_meta":
            self._session_meta(payload)
        elif kind == "turn_context":
            model = payload.get("model")
            if isinstance(model, str) and model not in self.meta.setdefault("models", []):
                self.meta["models"].append(model)
            if isinstance(model, str) and model:
                self.models.append((number, model))
            self.skipped[kind] += 1
        elif kind == "compacted":
            self.meta["compactions"] = self.meta.get("compactions", 0) + 1
            self.skipped[kind] += 1
        else:
            event = str(payload.get("type"))
            self.skipped[f"event_msg:{event}"] += 1
            if event == "user_message":
                self.saw_user_events = True
                self.typed.add(str(payload.get("message", "")).strip())
            elif event == "turn_aborted":
                self.meta.setdefault("aborted_turns", []).append(
                    {"line": number, "reason": payload.get("reason")})

    def _session_meta(self, payload: dict[str, Any]) -> None:
        if "session_id" in self.meta:
            # A fork: the parent's header follows the child's, then the parent's history.
            parent = payload.get("id")
            self.meta.setdefault("parent_sessions", []).append(parent)
            return
        self.meta["session_id"] = payload.get("id")
        for key in SESSION_KEYS[1:]:
            if payload.get(key) not in (None, "", {}):
                self.meta[key] = payload[key]
        if payload.get("timestamp"):
            self.meta["started"] = payload["timestamp"]

    def is_context(self, item: dict[str, Any]) -> bool:
        """A user message the CLI wrote (environment, AGENTS.md), not the person."""
        text = _content_text(item.get("content")).strip()
        if self.saw_user_events:
            return text not in self.typed
        return text.startswith(CONTEXT_PREFIXES)

    def conversation(self) -> Conversation:
        conversation = Conversation(RESPONSES)
        for number, item in self.items:
            position = f"line {number}" if self.era == "bare" else f"line {number}: payload"
            kind = item.get("type")
            if kind in SKIPPED_ITEMS:
                self.skipped[f"response_item:{kind}"] += 1
                continue
            before = len(conversation.turns)
            parse_responses([self._as_responses_item(item, position)], conversation)
            model = next((m for line, m in reversed(self.models) if line < number), None)
            for turn in conversation.turns[before:]:
                if turn.role == "assistant":
                    turn.model = model
            if kind == "web_search_call":
                # The search ran on the server and its results are not in the rollout; an
                # empty tool turn ends the call's turn, so the reply after it is an answer
                # of its own, not text of the call's turn.
                conversation.turn("tool", position)
        return conversation

    def _as_responses_item(self, item: dict[str, Any], position: str) -> Located:
        kind = item.get("type")
        if kind == "message" and item.get("role") == "user" and self.is_context(item):
            return position, {**item, "role": "developer"}  # read as system context
        if kind == "local_shell_call":
            action = item.get("action")
            arguments = action.get("exec", action) if isinstance(action, dict) else action
            return position, {"type": "function_call", "name": "local_shell",
                              "call_id": item.get("call_id") or item.get("id"),
                              "arguments": json.dumps(arguments)}
        if kind == "web_search_call":
            return position, {"type": "function_call", "name": "web_search",
                              "call_id": item.get("id"),
                              "arguments": json.dumps(item.get("action"))}
        return position, item


@register
class CodexRolloutsAdapter(Adapter):
    name: ClassVar[str] = "codex_rollouts"
    version: ClassVar[str] = "2"  # 2: an ending that gives up is fail (_outcome)
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("Codex CLI session rollouts (~/.codex/sessions/**/"
                                  "rollout-*.jsonl: session_meta, response_item, event_msg)")
    priority: ClassVar[int] = 40  # before the generic OpenAI Responses adapter

    def claims(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".jsonl":
            return False
        record = _first_record(path)
        if record is True:
            return True
        if not isinstance(record, dict):
            return False
        if record.get("type") == "session_meta":
            return isinstance(record.get("payload"), dict)
        return _is_bare_header(record) and path.name.startswith("rollout-")

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        session = _Session(file, out)
        for number, record in iter_jsonl(unit.path, unit, out):
            session.add(number, record)
        if "session_id" not in session.meta:
            raise SourceError("no session_meta record: not a Codex rollout", file=file,
                              hint="a rollout starts with a session_meta line (or a bare "
                                   "{id, timestamp, instructions} header in older files)")
        conversation = session.conversation()
        episode = out.episode()
        episode.platform = "tool"
        episode.metadata.update(session.meta)
        episode.metadata["era"] = session.era
        episode.metadata["skipped_records"] = dict(sorted(session.skipped.items()))
        CodexPlanner(episode, file).run(conversation)
        _stamp(episode, session.timestamps)
        # A rollout records no verdict: unknown, fail when it ends giving up (_outcome).
        if session.meta.get("aborted_turns"):
            episode.terminated, episode.truncated = False, bool(episode.steps)
        if not episode.steps:
            out.drop_episode(episode, file=file, position="",
                             reason="the session has no tool call or answer",
                             hint="a rollout needs at least one assistant response item")


_LINE = re.compile(r"line (\d+)")


def _stamp(episode: EpisodeBuilder, timestamps: dict[int, float]) -> None:
    """Each step's time is its record's envelope timestamp (bare rollouts have none)."""
    for step in episode.steps:
        found = _LINE.match(step.source_position)
        if found is not None:
            step.timestamp = timestamps.get(int(found.group(1)))
    if any(step.timestamp is not None for step in episode.steps):
        episode.clock = "unix"
