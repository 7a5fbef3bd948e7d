"""Langfuse trace exports (the UI's "download trace" JSON: ``{trace, observations}``).

One file is one trace, one episode (platform ``tool``, clock ``unix``). ``observations`` is
a flat list of Langfuse observations (``SPAN``, ``GENERATION``, ``EVENT``, ``AGENT``,
``TOOL``, ``CHAIN``, ``RETRIEVER``, ``EVALUATOR``, ``EMBEDDING``, ``GUARDRAIL``) linked into
a tree by ``parentObservationId``. Format: Langfuse's data model and observation-type docs
and its public API types; see docs/sources/langfuse.md.

Steps: every tool run (a ``TOOL`` observation, a span carrying tool attributes, or a span
named like a tool a model just requested) is a ``tool_call`` step with its output as the
observation; a call a model requested (in a generation's output) that no observation ran is a
step at the generation's end, its result taken from a later generation's input when it is
there. The last model text with no tool call is the ``answer`` (else the trace's own text
output); earlier text-only outputs are the next step's ``thought``. The instruction is the
first user message of the first model call, else the trace's input.

Traps handled:

* JSON in JSON: ``input``/``output``/``metadata`` are JSON strings, sometimes twice encoded;
  values that only look like JSON (a Python repr) stay text; message shapes differ by
  framework (curate.sources.adapters._chatml reads them);
* the list is not in time order and several observations share a ``startTime``: sorted by
  start time, then file order; the tree decides nesting: model calls inside a model call or a
  tool run (SDK wrappers such as Vercel's ``ai.generateText`` / ``doGenerate``) and tool runs
  inside a tool run are not steps again; an observation whose parent is missing is kept
  (listed in ``metadata.orphans``); an id seen twice is read once;
* the worker-file copy ``trace.observations`` has null inputs and outputs: the top-level
  ``observations`` list is read;
* a truncated file: the members before the cut are read, and the observations array up to
  its last complete element; the cut is one reject naming the character offset;
* a malformed observation (not an object, no id) is a step reject; an unknown ``type`` is
  read as a span and reported; an ``ERROR`` level adds the status message to the step; a
  tool output that looks like JSON but does not parse is kept as text with a warning.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, canonical_json
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters._chatml import (
    ChatMessage,
    ChatResult,
    as_text,
    deep_json,
    messages_from,
    python_literal,
)
from curate.sources.adapters._outcome import outcome_from_ending
from curate.sources.adapters.base import (
    TEXT_ONLY,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    text_head,
)
from curate.sources.values import iso_seconds

OBSERVATION_TYPES = frozenset({"SPAN", "GENERATION", "EVENT", "AGENT", "TOOL", "CHAIN",
                               "RETRIEVER", "EVALUATOR", "EMBEDDING", "GUARDRAIL"})
# Attributes instrumentations put on a tool's span (OpenInference, GenAI, Vercel AI SDK).
TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name", "ai.toolCall.name")
TOOL_ID_KEYS = ("gen_ai.tool.call.id", "tool_call.id", "ai.toolCall.id")
TRACE_SUFFIX = ".trace.json"
CHATML_SUFFIX = ".chatml.json"
_MARKERS = ('"observations"', '"parentObservationId"')


@dataclass(slots=True, eq=False)
class Observation:
    id: str
    parent_id: str | None
    type: str
    name: str
    start: float | None
    end: float | None
    level: str | None
    status_message: str | None
    input: Any
    output: Any
    attrs: dict[str, Any]
    model: str | None
    position: str
    seq: int
    children: list[Observation] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """tool, generation or span."""
        if self.type == "TOOL" or any(key in self.attrs for key in TOOL_NAME_KEYS):
            return "tool"
        if self.attrs.get("gen_ai.operation.name") == "execute_tool" or str(
                self.attrs.get("openinference.span.kind", "")).upper() == "TOOL":
            return "tool"
        if self.type in ("GENERATION", "EMBEDDING"):
            return "generation"
        return "span"


def _metadata_attrs(metadata: Any) -> dict[str, Any]:
    decoded = deep_json(metadata)
    attrs = decoded.get("attributes") if isinstance(decoded, dict) else None
    return dict(attrs) if isinstance(attrs, dict) else {}


def parse_observation(raw: Any, position: str, seq: int) -> Observation:
    """One observation; raises ValueError naming what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an observation object, got {type(raw).__name__}")
    oid = raw.get("id")
    if not isinstance(oid, str) or not oid:
        raise ValueError("observation has no 'id'")
    parent = raw.get("parentObservationId")
    level = raw.get("level")
    status = raw.get("statusMessage")
    model = raw.get("model")
    return Observation(
        oid, parent if isinstance(parent, str) and parent else None,
        str(raw.get("type") or "SPAN").upper(), str(raw.get("name") or ""),
        iso_seconds(raw.get("startTime")), iso_seconds(raw.get("endTime")),
        level if isinstance(level, str) else None, status if isinstance(status, str) else None,
        raw.get("input"), raw.get("output"), _metadata_attrs(raw.get("metadata")),
        model if isinstance(model, str) else None, position, seq)


# -- reading the file, salvaging a truncated one -------------------------------------------------


@dataclass(slots=True)
class Export:
    trace: dict[str, Any]
    observations: list[tuple[str, Any]]  # (position, raw observation)
    cut: str | None = None  # where a truncated file stops, when it does


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


def _salvage_array(text: str, at: int, decoder: json.JSONDecoder) -> list[Any]:
    """The complete elements of a JSON array that starts at ``at`` and is cut short."""
    values: list[Any] = []
    at = _skip(text, at + 1)
    while at < len(text) and text[at] != "]":
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            break
        values.append(value)
        at = _skip(text, at)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
    return values


def salvage(text: str) -> tuple[dict[str, Any], int]:
    """The members of a top-level JSON object read before the text breaks, with a cut
    ``observations`` array kept up to its last complete element; and the offset of the cut."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] = {}
    at = _skip(text, 0)
    if not text.startswith("{", at):
        return found, at
    at = _skip(text, at + 1)
    while at < len(text):
        try:
            key, at = decoder.raw_decode(text, at)
            at = _skip(text, at)
            if not (isinstance(key, str) and text.startswith(":", at)):
                return found, at
            at = _skip(text, at + 1)
            start = at
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            if isinstance(key, str) and key == "observations" and text.startswith("[", start):
                found[key] = _salvage_array(text, start, decoder)
            return found, at
        found[key] = value
        at = _skip(text, at)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
        elif text.startswith("}", at):
            break
    return found, at


def load_export(unit: SourceUnit) -> Export:
    file = unit.relative(unit.path)
    try:
        text = unit.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"cannot read the trace export: {error}", file=file,
                          hint="check the file's permissions and encoding (UTF-8)") from None
    cut = None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        value, offset = salvage(text)
        cut = f"character {offset} (line {error.lineno} column {error.colno}): {error.msg}"
    if not isinstance(value, dict):
        raise SourceError("expected a Langfuse trace export object {trace, observations}",
                          file=file, hint="download the trace as JSON from the Langfuse UI")
    observations = value.get("observations")
    trace: dict[str, Any] = value["trace"] if isinstance(value.get("trace"), dict) else {}
    if not isinstance(observations, list):
        raise SourceError("the export has no 'observations' list" + (
            f" (the file is cut at {cut})" if cut else ""), file=file,
            hint="download the trace as JSON from the Langfuse UI; a truncated file keeps "
                 "only the observations before the cut")
    listed = [(f"observations[{index}]", raw) for index, raw in enumerate(observations)]
    return Export(trace, listed, cut)


# -- planning steps ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Planned:
    key: tuple[float, int]
    position: str
    name: str
    call_id: str | None
    arguments: Any
    timestamp: float | None
    thought: str | None = None
    observation: str | None = None
    warnings: list[str] = field(default_factory=list)
    ran: bool = False  # an observation carried the call out
    answer: str | None = None  # set for the answer step
    model: str | None = None  # the generation's model that asked for it (wrote the answer)


def _join(*parts: str | None) -> str | None:
    texts = [p for p in parts if p]
    return "\n\n".join(texts) if texts else None


def _key(time: float | None, seq: int) -> tuple[float, int]:
    return (time if time is not None else math.inf, seq)


def _plain_text(value: Any) -> str | None:
    """A model output that is text, not messages; Python's ``None`` repr counts as none."""
    value = deep_json(value)
    if isinstance(value, str) and value.strip() and value.strip() != "None":
        return value
    return None


class TracePlanner:
    def __init__(self, observations: list[Observation]) -> None:
        self.observations = observations
        self.steps: list[_Planned] = []
        self.held: tuple[str, Observation] | None = None  # latest text-only model output
        self.carried_thought: str | None = None
        self.instruction: str | None = None
        self.models: list[str] = []
        self.nested: Counter[str] = Counter()
        self.unparsed: list[str] = []
        # The tool step last run, while no model call came after it (repeated events).
        self.last_tool: _Planned | None = None

    def plan(self, roots: list[Observation]) -> list[_Planned]:
        for root in roots:
            self._walk(root, frozenset())
        if self.held is not None:
            text, obs = self.held
            self.steps.append(_Planned(_key(obs.end or obs.start, obs.seq), obs.position,
                                       "", None, None, obs.end or obs.start,
                                       thought=self.carried_thought, answer=text,
                                       model=obs.model))
            self.held = None
        self.steps.sort(key=lambda planned: planned.key)
        return self.steps

    def _walk(self, obs: Observation, above: frozenset[str]) -> None:
        kind = obs.kind
        if kind == "span" and "tool" not in above and self._waiting(None, obs.name):
            kind = "tool"  # LangGraph runs a requested tool in a span named after it
        if kind == "generation" and above & {"generation", "tool"}:
            self.nested["generation"] += 1
        elif kind == "tool" and "tool" in above:
            self.nested["tool"] += 1
        elif kind == "generation":
            self._generation(obs)
        elif kind == "tool":
            self._tool(obs)
        for child in obs.children:
            self._walk(child, above | {kind})

    # model calls ---------------------------------------------------------------------------

    def _generation(self, obs: Observation) -> None:
        self.last_tool = None
        if obs.model and obs.model not in self.models:
            self.models.append(obs.model)
        inputs = messages_from(obs.input) or []
        if self.instruction is None:
            self.instruction = next((m.text for m in inputs if m.role == "user" and m.text),
                                    None)
        for message in inputs:
            for result in message.results:
                self._result_seen_later(result)
        outputs = messages_from(obs.output)
        if outputs is None:
            text = _plain_text(obs.output)
            outputs = [ChatMessage("assistant", texts=[text])] if text else []
        when = obs.end if obs.end is not None else obs.start
        for message in outputs:
            if message.role == "tool":
                for result in message.results:
                    self._result_seen_later(result)
                continue
            if message.role != "assistant":
                continue
            self._assistant(message, obs, when)

    def _assistant(self, message: ChatMessage, obs: Observation, when: float | None) -> None:
        if not message.calls:
            if message.text:
                self._release_held()
                self.held = (message.text, obs)
                self.carried_thought = _join(self.carried_thought, *message.thoughts)
            else:
                self.carried_thought = _join(self.carried_thought, *message.thoughts)
            return
        self._release_held()
        thought = _join(self.carried_thought, *message.thoughts, message.text)
        self.carried_thought = None
        for index, call in enumerate(message.calls):
            self.steps.append(_Planned(_key(when, obs.seq), f"{obs.position}.output",
                                       call.name, call.call_id, call.arguments, when,
                                       thought=thought if index == 0 else None,
                                       model=obs.model))

    def _release_held(self) -> None:
        """A text-only output followed by more work was thinking aloud, not the answer."""
        if self.held is not None:
            self.carried_thought = _join(self.carried_thought, self.held[0])
            self.held = None

    def _result_seen_later(self, result: ChatResult) -> None:
        waiting = self._waiting(result.call_id, result.name)
        if waiting is not None and waiting.observation is None:
            waiting.observation = result.text
            waiting.warnings.append("result read from a later model call's input (no "
                                    "observation ran this call)")

    def _waiting(self, call_id: str | None, name: str | None) -> _Planned | None:
        """The requested call, not yet run, with this id, else the oldest with this name."""
        requests = [p for p in self.steps if p.answer is None and not p.ran]
        if call_id is not None:
            for planned in requests:
                if planned.call_id == call_id:
                    return planned
        for planned in requests:
            if name and planned.name == name and (call_id is None or planned.call_id is None):
                return planned
        return None

    # tool runs -----------------------------------------------------------------------------

    def _tool(self, obs: Observation) -> None:
        name = next((str(obs.attrs[k]) for k in TOOL_NAME_KEYS if obs.attrs.get(k)), obs.name)
        call_id = next((str(obs.attrs[k]) for k in TOOL_ID_KEYS if obs.attrs.get(k)), None)
        arguments = _tool_arguments(obs)
        if obs.type != "TOOL" and arguments is None and obs.output is None:
            # A framework event naming the tool before its arguments exist (BeeAI's
            # streamed agent updates): nothing of the call is in it yet.
            self.nested["empty_tool_event"] += 1
            return
        output, output_id, warnings = self._tool_output(obs)
        call_id = call_id or output_id
        arguments = {} if arguments is None else arguments
        repeated = self._repeated(name, call_id, arguments)
        if repeated is not None:
            # The same call reported again by the next event of the framework.
            self.nested["repeated_tool_event"] += 1
            if not repeated.observation and output is not None:
                repeated.observation = output
                repeated.warnings.extend(warnings)
            return
        planned = self._waiting(call_id, name)
        if planned is None:
            self._release_held()
            planned = _Planned(_key(obs.start, obs.seq), obs.position, name, call_id,
                               arguments, obs.start, thought=self.carried_thought)
            self.carried_thought = None
            self.steps.append(planned)
        else:
            planned.key = min(planned.key, _key(obs.start, obs.seq))
            # The step happened when the agent asked for it; a tool that starts later (it
            # waited for a sibling call) does not move the step after the next request.
            times = [t for t in (planned.timestamp, obs.start) if t is not None]
            planned.timestamp = min(times) if times else None
            planned.position = obs.position
            if planned.arguments in (None, {}) and arguments != {}:
                planned.arguments = arguments
        planned.ran = True
        # An empty output is still a result (None would mean "no result seen").
        planned.observation = output if output is not None else ""
        planned.warnings.extend(warnings)
        self.last_tool = planned
        if obs.level == "ERROR":
            message = obs.status_message or "level ERROR"
            planned.observation = _join(planned.observation, f"[error] {message}")
            planned.warnings.append(f"the tool observation ended with level ERROR: {message}")

    def _repeated(self, name: str, call_id: str | None, arguments: Any) -> _Planned | None:
        last = self.last_tool
        if last is None or last.name != name or (call_id and last.call_id
                                                 and call_id != last.call_id):
            return None
        return last if canonical_json(last.arguments) == canonical_json(arguments) else None

    def _tool_output(self, obs: Observation) -> tuple[str | None, str | None, list[str]]:
        """(result text, call id the result names, warnings)."""
        raw = obs.output
        decoded = deep_json(raw)
        warnings = []
        if isinstance(decoded, str) and decoded.strip()[:1] in ("{", "["):
            warnings.append("the tool output looks like JSON but does not parse; kept as text")
            self.unparsed.append(obs.position)
        message = messages_from(decoded) if isinstance(decoded, dict) else None
        if message and len(message) == 1 and message[0].role == "tool" and message[0].results:
            result = message[0].results[0]  # a LangChain ToolMessage
            return result.text, result.call_id, warnings
        if isinstance(decoded, dict) and isinstance(decoded.get("messages"), list):
            found = messages_from(decoded) or []
            results = [r for m in found for r in m.results]
            if len(results) == 1:
                return results[0].text, results[0].call_id, warnings
        return as_text(raw), None, warnings


def _tool_arguments(obs: Observation) -> Any:
    """The call's arguments: the observation's input, else the OpenInference attributes."""
    for value in (obs.input, obs.attrs.get("input.value"), obs.attrs.get("tool.parameters")):
        decoded = deep_json(value)
        if decoded is not None:
            return decoded
    return None


# -- the episode ---------------------------------------------------------------------------------


def build_tree(observations: list[Observation]) -> tuple[list[Observation], list[str]]:
    """Roots in time order (children sorted the same way), and the ids of orphans."""
    by_id = {obs.id: obs for obs in observations}
    roots: list[Observation] = []
    orphans: list[str] = []
    for obs in sorted(observations, key=lambda o: _key(o.start, o.seq)):
        parent = by_id.get(obs.parent_id) if obs.parent_id else None
        if parent is None or parent is obs:
            if obs.parent_id:
                orphans.append(obs.id)
            roots.append(obs)
        else:
            parent.children.append(obs)
    return roots, orphans


def _trace_answer(trace: dict[str, Any]) -> str | None:
    output = deep_json(trace.get("output"))
    if isinstance(output, str):
        output = python_literal(output)  # BeeAI logs the final message as a Python repr
    text = _plain_text(output)
    if text is not None:
        return text
    messages = messages_from(output) or []
    texts = [m.text for m in messages if m.role == "assistant" and m.text and not m.calls]
    return texts[-1] if texts else None


def _trace_instruction(trace: dict[str, Any]) -> str | None:
    text = _plain_text(trace.get("input"))
    if text is not None:
        return text
    value = deep_json(trace.get("input"))
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return str(value["message"])  # agno: the run's user message
    messages = messages_from(value) or []
    return next((m.text for m in messages if m.role == "user" and m.text), None)


def _add_steps(episode: EpisodeBuilder, planned: list[_Planned]) -> None:
    for step in planned:
        if step.answer is not None:
            action = Action(type="answer", text=step.answer)
        else:
            action = Action(type="tool_call", tool_name=step.name,
                            tool_args=canonical_json(step.arguments),
                            raw=canonical_json({"name": step.name, "id": step.call_id,
                                                "arguments": step.arguments}))
            if not step.ran and step.observation is None:
                step.warnings.append("no observation ran this requested call and no later "
                                     "model input holds its result; observation left empty")
        episode.add_step(action, source_position=step.position, timestamp=step.timestamp,
                         thought=step.thought, observation=step.observation,
                         model=step.model, frame_missing=TEXT_ONLY,
                         next_frame_missing=TEXT_ONLY, warnings=step.warnings)


def read_trace(out: UnitBuilder, export: Export, file: str) -> None:
    episode = out.episode()
    episode.platform = "tool"
    episode.clock = "unix"
    if export.cut is not None:
        episode.reject(file=file, position=export.cut, level="step",
                       reason="the file is cut short (invalid JSON); the observations before "
                              "the cut were read",
                       hint="re-download the trace; observations after the cut are lost")
    observations: list[Observation] = []
    seen: set[str] = set()
    duplicates = 0
    types: Counter[str] = Counter()
    for seq, (position, raw) in enumerate(export.observations):
        try:
            obs = parse_observation(raw, position, seq)
        except ValueError as error:
            episode.reject(file=file, position=position, reason=f"malformed observation: "
                           f"{error}", hint="the observation is left out; fix or re-export it")
            continue
        if obs.id in seen:
            duplicates += 1
            continue
        seen.add(obs.id)
        if obs.type not in OBSERVATION_TYPES:
            episode.reject(file=file, position=position,
                           reason=f"unknown observation type {obs.type!r}; read as a span",
                           hint="a Langfuse type curate does not know: its content is kept "
                                "but nothing type-specific is read from it")
        types[obs.type] += 1
        observations.append(obs)
    roots, orphans = build_tree(observations)
    planner = TracePlanner(observations)
    planned = planner.plan(roots)
    trace = export.trace
    if not any(p.answer is not None for p in planned):
        answer = _trace_answer(trace)
        if answer is not None:
            end = max((o.end or o.start or 0.0 for o in observations), default=None)
            planned.append(_Planned((math.inf, len(observations)), "trace.output", "", None,
                                    None, end or None, thought=planner.carried_thought,
                                    answer=answer))
    _add_steps(episode, planned)
    episode.instruction = planner.instruction or _trace_instruction(trace)
    episode.metadata.update(_metadata(trace, planner, types, orphans, duplicates))
    episode.terminated = bool(episode.steps) and episode.steps[-1].action.type == "answer"
    episode.truncated = not episode.terminated or export.cut is not None
    outcome_from_ending(episode)  # scores stay in metadata: their meaning is the project's
    if not episode.steps:
        out.drop_episode(episode, file=file, position="observations",
                         reason="the trace has no tool run, requested tool call or model text",
                         hint="a trajectory needs at least one tool call or answer")


def _metadata(trace: dict[str, Any], planner: TracePlanner, types: Counter[str],
              orphans: list[str], duplicates: int) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, name in (("id", "trace_id"), ("name", "trace_name"), ("sessionId", "session_id"),
                      ("userId", "user_id"), ("environment", "environment"),
                      ("release", "release"), ("version", "version")):
        if trace.get(key) not in (None, "", []):
            meta[name] = trace[key]
    if trace.get("tags"):
        meta["tags"] = trace["tags"]
    meta["observation_types"] = dict(sorted(types.items()))
    if planner.models:
        meta["models"] = planner.models
    if orphans:
        meta["orphans"] = orphans
    if duplicates:
        meta["duplicate_observations"] = duplicates
    if planner.nested:
        meta["nested_not_steps"] = dict(sorted(planner.nested.items()))
    if planner.unparsed:
        meta["unparsed_tool_outputs"] = planner.unparsed
    scores = trace.get("scores")
    if isinstance(scores, list) and scores:
        meta["scores"] = scores
    return meta


@register
class LangfuseAdapter(Adapter):
    name: ClassVar[str] = "langfuse_traces"
    version: ClassVar[str] = "3"  # 2: an ending that gives up is fail (_outcome); 3: a
    # cut file is not terminated (EpisodeBuilder.ending)
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("Langfuse trace exports ({trace, observations} JSON, "
                                  "observation trees)")
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".json":
            return False
        head = text_head(path)
        return (head is not None and head.lstrip().startswith("{")
                and all(marker in head for marker in _MARKERS))

    def input_files(self, unit: SourceUnit) -> list[Path]:
        """The export, and Langfuse's expected ChatML file beside it when there is one
        (``<name>.chatml.json`` next to ``<name>.trace.json``, as Langfuse's tests keep
        them): part of the unit, so discovery does not report it as unknown data."""
        files = [unit.path]
        if unit.path.name.endswith(TRACE_SUFFIX):
            companion = unit.path.with_name(unit.path.name[: -len(TRACE_SUFFIX)]
                                            + CHATML_SUFFIX)
            if companion.is_file():
                files.append(companion)
        return files

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        read_trace(out, load_export(unit), unit.relative(unit.path))
