"""Claude Code session transcripts (``~/.claude/projects/<project>/<session>.jsonl``).

One JSON object per line; each carries ``type``. ``user`` and ``assistant`` records hold an
Anthropic Messages API ``message``; everything else (``progress`` hook events,
``system`` local commands, ``file-history-snapshot``, ``queue-operation``, ``summary``, ...)
is bookkeeping of the CLI, not part of the conversation. The format is documented by the
Claude Code docs ("Claude Code settings" / session files) and by real transcripts; see
docs/sources/claude_code_sessions.md.

Traps handled:

* one API response is written as several ``assistant`` records (one content block each,
  same ``message.id``): consecutive records of one message id are merged back into one turn;
* tool results come back inside ``user`` records (``tool_result`` blocks) and are matched to
  their ``tool_use`` by id by the shared planner; ``is_error`` results (including the
  user rejecting the call: "The user doesn't want to proceed ...") stay observations, and a
  rejection is marked in the step's warnings;
* subagent transcripts (``subagents/agent-*.jsonl``, every record ``isSidechain: true``) are
  episodes of their own; sidechain records inside a main file form one episode per
  ``agentId`` (``#sidechain-<agentId>``) so the main conversation is not interleaved;
* non-message records are skipped but counted by type in ``metadata.skipped_records``;
  unknown ``type`` values are counted the same way under their own name, with a step-level
  reject so they are visible (nothing guessed about them); bad JSON lines are rejects.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters._conversation import StepPlanner, ToolResult
from curate.sources.adapters.anthropic_messages import message_model, parse_anthropic
from curate.sources.adapters.base import Adapter, SourceUnit, UnitBuilder, iter_jsonl, text_head

MESSAGE_TYPES = frozenset({"user", "assistant"})
# Record types Claude Code writes that are not conversation turns.
BOOKKEEPING_TYPES = frozenset({"progress", "system", "file-history-snapshot",
                               "queue-operation", "summary", "custom-title", "tag",
                               "pr-link", "agent-name", "last-prompt", "attachment"})
REJECTED_PREFIX = "The user doesn't want to proceed with this tool use"
_MARKERS = ('"sessionId"', '"file-history-snapshot"')


@dataclass(slots=True)
class _Thread:
    """The message records of one conversation (the main one or a subagent's)."""

    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    last_message_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, number: int, record: dict[str, Any]) -> None:
        message = record["message"]
        message_id = message.get("id") if record.get("type") == "assistant" else None
        if (message_id is not None and message_id == self.last_message_id
                and self.messages):
            # A continuation of the previous response: append its blocks to that turn.
            _, previous = self.messages[-1]
            previous["content"] = _blocks(previous.get("content")) + _blocks(
                message.get("content"))
            return
        self.last_message_id = message_id
        copy = dict(message)
        copy["content"] = message.get("content")
        self.messages.append((f"line {number}: message", copy))
        for key in ("sessionId", "agentId", "cwd", "gitBranch", "version"):
            if key in record and key not in self.meta:
                self.meta[key] = record[key]
        model = message_model(message)
        if model is not None:
            self.meta.setdefault("models", [])
            if model not in self.meta["models"]:
                self.meta["models"].append(model)


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content) if isinstance(content, list) else []


class ClaudeCodePlanner(StepPlanner):
    """Marks a tool call the user rejected (an error result with Claude Code's wording)."""

    def observation_for(self, result: ToolResult, warnings: list[str]) -> str | None:
        if result.is_error and (result.text or "").startswith(REJECTED_PREFIX):
            warnings.append("the user rejected this tool call; it did not run")
        return super().observation_for(result, warnings)


def _is_session_record(record: dict[str, Any]) -> bool:
    return "sessionId" in record or record.get("type") == "file-history-snapshot"


@register
class ClaudeCodeSessionsAdapter(Adapter):
    name: ClassVar[str] = "claude_code_sessions"
    version: ClassVar[str] = "2"  # 2: an ending that gives up is fail (_outcome)
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("Claude Code session transcripts (~/.claude/projects/*/"
                                  "*.jsonl, incl. subagents/agent-*.jsonl)")
    priority: ClassVar[int] = 40  # before the generic Anthropic-messages adapter

    def claims(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".jsonl":
            return False
        head = text_head(path)
        if head is None:
            return False
        first = head.split("\n", 1)[0]
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            # A first line longer than the sniffed head: fall back to the key markers.
            return first.startswith("{") and all(m in head for m in ('"sessionId"',
                                                                        '"parentUuid"'))
        return isinstance(record, dict) and _is_session_record(record)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        threads: dict[str, _Thread] = {}
        skipped: Counter[str] = Counter()
        for number, record in iter_jsonl(unit.path, unit, out):
            kind = record.get("type")
            if kind in MESSAGE_TYPES and isinstance(record.get("message"), dict):
                key = ""
                if record.get("isSidechain") is True:
                    key = f"sidechain-{record.get('agentId') or 'unknown'}"
                threads.setdefault(key, _Thread()).add(number, record)
                continue
            name = str(kind)
            skipped[name] += 1
            if kind in MESSAGE_TYPES:
                out.reject(file=file, position=f"line {number}",
                           reason=f"{kind} record without a 'message' object; skipped",
                           hint="user/assistant records carry an Anthropic message")
            elif kind not in BOOKKEEPING_TYPES:
                out.reject(file=file, position=f"line {number}",
                           reason=f"unknown record type {kind!r}; skipped",
                           hint="not a conversation record curate knows; kept out of "
                                "the steps, counted in metadata.skipped_records")
        if not threads:
            raise SourceError("no user or assistant record in the transcript", file=file,
                              hint="a Claude Code session file holds user/assistant "
                                   "records with a 'message'")
        # A subagent file is all sidechain: it is one episode, named by the file.
        only_sidechain = "" not in threads and len(threads) == 1
        for key, thread in sorted(threads.items()):
            inner = None if key == "" or only_sidechain else key
            self._episode(out, file, thread, inner, skipped, sidechain=key != "")

    def _episode(self, out: UnitBuilder, file: str, thread: _Thread, inner: str | None,
                 skipped: Counter[str], *, sidechain: bool) -> None:
        episode = out.episode(inner)
        episode.platform = "tool"
        episode.metadata.update(thread.meta)
        episode.metadata["sidechain"] = sidechain
        episode.metadata["skipped_records"] = dict(sorted(skipped.items()))
        conversation = parse_anthropic(thread.messages)
        ClaudeCodePlanner(episode, file).run(conversation)
        # A transcript records no verdict: unknown, fail when it ends giving up (_outcome).
        if not episode.steps:
            out.drop_episode(episode, file=file, position=inner or "",
                             reason="the conversation has no tool call or answer",
                             hint="a session needs at least one assistant message")
