"""AgentTrek web trajectories (``agenttrek``, platform web): xlangai/AgentTrek's JSON list.

The Hugging Face release (``agenttrek_1207.json``, 1.8 GB, "52,594 dialogue turns") is one
JSON array of per-step chat samples ``{"messages": [{"role", "content"}, ...]}``: a system
prompt, a user turn holding AgentLab's GenericAgent prompt (``## Goal:``, ``# Observation of
current step:`` with ``## AXTree:``, ``# History of interaction with the task:`` with one
``## step N`` per earlier action, ``# Action space:``) and the assistant's answer
(``<think>...</think>`` and ``<action>click('a51')</action>``, BrowserGym's high-level
actions). The record format, what is known and what is inferred: docs/sources/agenttrek.md.

Traps handled:

* **one record is one step**, and no record names its trajectory: consecutive records are one
  trajectory while the goal is the same *and* the history grows by exactly one step per
  record (a record that could not be read in between is counted), so a repeated goal (the
  same tutorial replayed twice) never merges two runs; a record without a goal or a history
  section is a trajectory of its own (nothing to join it by);
* **the file is too big to load**: elements are decoded one at a time
  (:mod:`curate.sources.jsonarray`) and each trajectory is written as soon as it ends; a file
  cut inside an element keeps every whole element (the last trajectory is marked
  ``truncated``) and the cut element is one reject naming it;
* **actions are Python calls** (``fill('237', 'New York')``): parsed with :mod:`ast`, never
  run, and mapped by the AgentLab adapter's BrowserGym table; the target's role and name come
  from the bid's line in the step's AXTree text (no boxes are recorded: targets have an
  element id, no coordinates);
* **the state is text**: the AXTree (AgentLab's "Note:" paragraphs removed) goes to episode
  metadata ``state_text``; ``## Error from previous action`` is the *previous* step's result
  (its ``observation``); no screenshots are shipped (``frame_missing = no_screenshots``);
* bad records (not an object, no user or assistant turn, no ``<action>``, code that is not
  BrowserGym calls) are rejected one by one with their index; the trajectory goes on.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters.agentlab import convert_code
from curate.sources.adapters.base import (
    NO_SCREENSHOTS,
    SNIFF_BYTES,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    open_unit,
    text_head,
)
from curate.sources.jsonarray import BrokenArray, iter_json_array

_TAG = re.compile(r"<(think|memory|action)>(.*?)</\1>", re.DOTALL)
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
ANSWER_TYPES = frozenset({"answer", "fail"})


@dataclass(frozen=True, slots=True)
class _Prompt:
    """What the user turn says: the goal, the page, the action before's error, the history."""

    goal: str | None
    axtree: str | None
    error: str | None
    history: int | None  # earlier steps listed; None without a history section


@dataclass(frozen=True, slots=True)
class _Record:
    index: int
    prompt: _Prompt
    thought: str | None
    memory: str | None
    code: str | None
    other_fields: tuple[str, ...]


class _BadRecord(Exception):
    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


@register
class AgentTrekAdapter(Adapter):
    name: ClassVar[str] = "agenttrek"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "web"
    description: ClassVar[str] = (
        "AgentTrek JSON list of per-step chat samples (AgentLab prompt: goal, AXTree, "
        "history; <think>/<action> answer), joined into trajectories")
    priority: ClassVar[int] = 40  # before the generic chat-conversation formats
    streams: ClassVar[bool] = True

    def claims(self, path: Path) -> bool:
        if not (path.is_file() and path.suffix.lower() == ".json"):
            return False
        head = text_head(path)
        return head is not None and _looks_like(head)

    def reads_remote(self, path: str) -> bool:
        return path.lower().endswith(".json")

    def claims_remote(self, handle: IO[bytes]) -> bool:
        return _looks_like(handle.read(SNIFF_BYTES).decode("utf-8", errors="replace"))

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        joiner = _Trajectories(unit, out)
        try:
            with open_unit(unit, sequential=True) as handle:
                for index, value in iter_json_array(handle):
                    if joiner.full():
                        break
                    joiner.add(index, value)
        except ValueError as error:
            raise SourceError(str(error), file=unit.source_path,
                              hint="AgentTrek's release is one JSON list of records") from None
        except BrokenArray as broken:
            joiner.broken(broken)
        joiner.close()
        if joiner.records == 0 and not out.rejects:
            raise SourceError("the file holds no record", file=unit.source_path,
                              hint="expected a JSON list of {\"messages\": [...]} records")


def _looks_like(head: str) -> bool:
    return (head.lstrip().startswith("[") and '"messages"' in head and "## Goal:" in head
            and "AXTree:" in head)


# --------------------------------------------------------------------------- trajectories

class _Trajectories:
    """Joins consecutive records into episodes and writes each one when it ends."""

    def __init__(self, unit: SourceUnit, out: UnitBuilder) -> None:
        self.unit = unit
        self.out = out
        self.limit = unit.remote.limit if unit.remote is not None else None  # ingest --limit
        self.started = 0
        self.records = 0
        self.episode: EpisodeBuilder | None = None
        self.goal: str | None = None
        self.history: int | None = None
        self.unreadable = 0  # records rejected whole since the last readable one

    def full(self) -> bool:
        """--limit trajectories are finished: the next record could only begin another."""
        return self.limit is not None and self.started >= self.limit and self.episode is None

    def add(self, index: int, value: Any) -> None:
        self.records += 1
        where = f"[{index}]"
        try:
            record = _record(index, value)
        except _BadRecord as bad:
            self.reject(where, bad.reason, bad.hint)
            self.unreadable += 1
            return
        prompt = record.prompt
        if not self.continues(prompt):
            self.end()
            if self.limit is not None and self.started >= self.limit:
                return
            self.begin(record)
        episode = self.episode
        assert episode is not None
        self.goal, self.history, self.unreadable = prompt.goal, prompt.history, 0
        episode.metadata["records"][1] = index
        if prompt.error and episode.steps and episode.steps[-1].observation is None:
            episode.steps[-1].observation = prompt.error
        _add_steps(self.unit, episode, record)

    def continues(self, prompt: _Prompt) -> bool:
        return (self.episode is not None and prompt.goal is not None
                and prompt.goal == self.goal and prompt.history is not None
                and self.history is not None
                and prompt.history == self.history + 1 + self.unreadable)

    def begin(self, record: _Record) -> None:
        self.started += 1
        episode = self.out.episode(f"record{record.index}")
        episode.instruction = record.prompt.goal
        episode.metadata["records"] = [record.index, record.index]
        if record.prompt.history:
            episode.metadata["history_before_first_record"] = record.prompt.history
        if record.prompt.error:
            episode.metadata["error_before_first_step"] = record.prompt.error
        self.episode = episode

    def end(self) -> None:
        episode, self.episode = self.episode, None
        self.goal = self.history = None
        if episode is None:
            return
        if not episode.steps:
            self.out.drop_episode(episode, file=self.unit.source_path,
                                  position=f"[{episode.metadata['records'][0]}]",
                                  reason="no usable step in the trajectory's records",
                                  hint="every record was rejected; see the step rejects")
            return
        if episode.steps[-1].action.type in ANSWER_TYPES:
            episode.terminated = True  # the agent ended the task (send_msg_to_user / infeasible)
        self.out.finish(episode)

    def reject(self, where: str, reason: str, hint: str) -> None:
        target = self.episode if self.episode is not None else self.out
        target.reject(file=self.unit.source_path, position=where, reason=reason, hint=hint)

    def broken(self, broken: BrokenArray) -> None:
        hint = ("the file is cut (an interrupted download?): fetch it again; every whole "
                "record before it is kept" if broken.cut else
                "the file is damaged here; the records after it are not read")
        self.reject(f"[{broken.index}]", broken.reason, hint)
        if self.episode is not None:
            self.episode.truncated = True
            self.episode.metadata["truncated_reason"] = broken.reason

    def close(self) -> None:
        self.end()


# --------------------------------------------------------------------------- one record

def _record(index: int, value: Any) -> _Record:
    if not isinstance(value, dict):
        raise _BadRecord(f"expected a record object, got {type(value).__name__}",
                         "each element is {\"messages\": [...]}")
    messages = value.get("messages")
    if not isinstance(messages, list):
        raise _BadRecord("no 'messages' list", "each element is {\"messages\": [...]}")
    user = _last_text(messages, "user")
    answer = _last_text(messages, "assistant")
    if user is None or answer is None:
        missing = "user" if user is None else "assistant"
        raise _BadRecord(f"no {missing} message with text content",
                         "a record holds the prompt (user) and the answer (assistant)")
    tags: dict[str, list[str]] = {}
    for match in _TAG.finditer(answer):
        tags.setdefault(match.group(1), []).append(match.group(2).strip())
    code = "\n".join(t for t in tags.get("action", []) if t) or None
    return _Record(index, _prompt(user), "\n".join(tags.get("think", [])).strip() or None,
                   "\n".join(tags.get("memory", [])).strip() or None, code,
                   tuple(sorted(k for k in value if k != "messages")))


def _last_text(messages: list[Any], role: str) -> str | None:
    """The text of the last message with this role (string content or text parts)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == role:
            content = message.get("content")
            if isinstance(content, list):
                content = "\n".join(part["text"] for part in content if isinstance(part, dict)
                                    and isinstance(part.get("text"), str))
            return content if isinstance(content, str) and content.strip() else None
    return None


def _prompt(user: str) -> _Prompt:
    """The sections of AgentLab's GenericAgent prompt. Headers are found with ``str.find``
    (a multi-line regex over each ~34 KB prompt was a third of the adapter's time): a
    section runs to the next header line (``#`` ... and a space; AXTree lines never are)."""
    text = "\n" + user
    goal = _section(text, "\n## Goal:")
    axtree = _section(text, "\n## AXTree:")
    error = _section(text, "\n## Error from previous action:")
    history: int | None = None
    at = text.find(_HISTORY)
    if at >= 0:
        end = text.find("\n# ", at + len(_HISTORY))  # the next top-level section
        history = text.count("\n## step ", at, end if end >= 0 else len(text))
    return _Prompt(goal.strip() or None if goal is not None else None,
                   _without_notes(axtree) if axtree is not None else None,
                   error.strip() or None if error is not None else None, history)


_HISTORY = "\n# History of interaction with the task"
# A Markdown header line: hashes and a space ("#hashtag" or "#3" in a goal is not one).
_NEXT_HEADER = re.compile(r"\n#{1,6} ")


def _section(text: str, marker: str) -> str | None:
    at = text.find(marker)
    if at < 0:
        return None
    body = at + len(marker)
    end = _NEXT_HEADER.search(text, body)
    return text[body:end.start() if end is not None else len(text)]


def _without_notes(body: str) -> str | None:
    """The AXTree without AgentLab's leading "Note: ..." paragraphs (prompt boilerplate)."""
    body = body.strip("\n")
    while body.lstrip().startswith("Note:"):
        cut = body.find("\n\n")
        body = body[cut:].strip("\n") if cut >= 0 else ""
    return body or None


_LINE_REST = re.compile(r"(\S+)(?: ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"))?")


def _names(code: str, axtree: str | None) -> dict[str, tuple[str | None, str | None]]:
    """bid -> (role, name) for each quoted literal of the code that is a bid in the AXTree
    (its line: ``[bid] role 'name', properties``, after the indentation)."""
    names: dict[str, tuple[str | None, str | None]] = {}
    if not axtree:
        return names
    for match in _QUOTED.finditer(code):
        bid = match.group(1) if match.group(1) is not None else match.group(2)
        if not bid or bid in names or len(bid) > 40:
            continue
        needle = f"[{bid}] "
        at = axtree.find(needle)
        while at >= 0:
            line_start = axtree.rfind("\n", 0, at) + 1
            if not axtree[line_start:at].strip(" \t"):
                rest = _LINE_REST.match(axtree, at + len(needle))
                if rest is not None:
                    names[bid] = (rest.group(1), _literal(rest.group(2)))
                break
            at = axtree.find(needle, at + 1)
    return names


def _literal(quoted: str | None) -> str | None:
    if quoted is None:
        return None
    try:
        text = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        return quoted[1:-1] or None
    return text.strip() or None if isinstance(text, str) else None


def _add_steps(unit: SourceUnit, episode: EpisodeBuilder, record: _Record) -> None:
    where = f"[{record.index}]"
    state = record.prompt.axtree
    if record.code is None:
        episode.reject(file=unit.source_path, position=where,
                       reason="no <action>...</action> in the assistant message",
                       hint="the step is skipped; the rest of the trajectory is kept")
        return
    try:
        converted = convert_code(record.code, names=_names(record.code, state))
    except ActionParseError as error:
        episode.reject(file=unit.source_path, position=where,
                       reason=f"bad action {record.code[:80]!r}: {error}",
                       hint="expected BrowserGym action code such as click('12'); the step "
                            "is skipped, the rest of the trajectory kept")
        return
    first = len(episode.steps)
    for number, (action, warnings) in enumerate(converted):
        notes = [] if len(converted) == 1 else [
            f"one of {len(converted)} actions in one answer: intermediate states not recorded"]
        episode.add_step(action, source_position=where if len(converted) == 1 else
                         f"{where} call {number + 1} of {len(converted)}",
                         frame_missing=NO_SCREENSHOTS, next_frame_missing=NO_SCREENSHOTS,
                         thought=record.thought if number == 0 else None,
                         warnings=[*warnings, *notes])
    for key, value in (("state_text", state), ("memory", record.memory)):
        if value:
            episode.metadata.setdefault(key, {})[str(first)] = value
    if record.other_fields:
        fields = episode.metadata.setdefault("other_fields", [])
        fields.extend(f for f in record.other_fields if f not in fields)
