"""T3-Agent / MM-Traj trajectories (MAT-Agent ``experiments/Qwen-VL/data/train_*.json``).

One JSON array of trajectories ``{id, image, correct, answer, conversations,
traj_verification}``; ``conversations`` is a Qwen-VL/LLaVA ``{from, value}`` list: a system
prompt, the ``Task:`` user turn, then assistant turns (``Thought:`` + ``Code:`` with a
```py fence calling tools in Python syntax) and user turns holding the tool output
(``[OUTPUT OF STEP k] Observation:`` or ``Error:``). Format described in the MAT-Agent
repository (github.com/mat-agent/MAT-Agent) and the T3-Agent paper; see
docs/sources/t3_agent.md.

Traps handled:

* the published file is cut inside its 95th element: elements are decoded one at a time
  (``json.JSONDecoder.raw_decode``), so the complete ones are kept. Of the cut element, the
  fields and the ``conversations`` turns that are whole are read (:func:`salvage`) and kept
  as an episode marked truncated when they hold an assistant action; otherwise (the
  sample's 95th is cut inside its system prompt) it is one reject naming the element, its
  id, where it was cut and the character offset;
* tool calls are read from the code with :mod:`ast` (never executed): every call of a name
  that is not a Python builtin nor defined or imported by the code, in source order, is one
  step; literal arguments are decoded
  (``ast.literal_eval``), anything else keeps its source text with a warning;
  ``final_answer(x)`` is the ``answer`` action; a block with no tool call is one
  ``python`` tool step holding the code; code that does not parse is kept the same way with
  a warning;
* the observation of a code block goes to its last step; ``Error:`` outputs are marked in
  the step's warnings and ``metadata.tool_errors``;
* assistant turns without code: the last one is the answer, others become the next step's
  thought (listed in ``metadata.skipped_turns`` with the reason);
* ``image`` is ``{}``, a path, or ``{"<image_NN>": path}`` (keys unordered; sorted by
  number); the paths are kept in ``metadata.images`` and, as the pictures are not shipped,
  every step of an image task has ``frame_missing = file_missing``;
* ``terminated`` when the last step is the ``final_answer`` (the agent ended the task),
  else ``truncated``, so segments end where the trajectory really ends;
* outcome from the judge: ``traj_verification`` is text wrapping a JSON object with
  ``correct``; ``yes``/true is success, ``no``/false fail, anything else unknown (the raw
  verdict and the record's own ``correct`` are kept in metadata).
"""

from __future__ import annotations

import ast
import builtins
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, canonical_json
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters._outcome import outcome_from_ending
from curate.sources.adapters.base import (
    FILE_MISSING,
    TEXT_ONLY,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    StepRecord,
    UnitBuilder,
    text_head,
)

_BUILTINS = frozenset(dir(builtins))
_FENCE = re.compile(r"```(?:py|python)?\s*\n(.*?)(?:```|\Z)", re.DOTALL)
_OUTPUT = re.compile(r"^\[OUTPUT OF STEP (\d+)\]\s*(Observation|Error)\s*:?\s*", re.DOTALL)
_IMG = re.compile(r"Picture \d+:\s*<img>.*?</img>\s*", re.DOTALL)
_ATTACHMENT = re.compile(r"\s*Attachment:.*\Z", re.DOTALL)
FINAL_ANSWER = "final_answer"


@dataclass(frozen=True, slots=True)
class CutElement:
    """An array element that does not decode: the error and where the element starts."""

    error: json.JSONDecodeError
    start: int


def iter_array(text: str) -> Any:
    """Yield (index, element) of a JSON array, one element at a time; on a broken element
    yield (index, CutElement) and stop."""
    decoder = json.JSONDecoder()
    position = _skip(text, 0)
    if not text.startswith("[", position):
        raise ValueError("expected a JSON array")
    position = _skip(text, position + 1)
    index = 0
    while position < len(text) and text[position] != "]":
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            yield index, CutElement(error, position)
            return
        yield index, value
        index += 1
        position = _skip(text, position)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
    if position >= len(text):
        # The text ran out between elements: the array was never closed, so elements may
        # be missing even though each one read was whole.
        yield index, CutElement(json.JSONDecodeError("the array is not closed", text, position),
                                position)


def salvage(text: str, start: int) -> tuple[dict[str, Any], str]:
    """The whole fields of a JSON object cut short at ``start``, and where it was cut.

    ``conversations`` keeps its whole turns (the list is left open); a field whose value is
    cut is left out. Never guesses a value: only what ``raw_decode`` reads completely."""
    decoder = json.JSONDecoder()
    fields: dict[str, Any] = {}
    position = _skip(text, start)
    if not text.startswith("{", position):
        return fields, "before the element's first field"
    position = _skip(text, position + 1)
    while True:
        try:
            key, position = decoder.raw_decode(text, position)
            position = _skip(text, position)
            if not isinstance(key, str) or not text.startswith(":", position):
                return fields, "inside a field name"
            position = _skip(text, position + 1)
        except json.JSONDecodeError:
            return fields, "inside a field name"
        if key == "conversations" and text.startswith("[", position):
            turns: list[Any] = []
            fields[key] = turns
            position = _skip(text, position + 1)
            while not text.startswith("]", position):
                try:
                    turn, position = decoder.raw_decode(text, position)
                except json.JSONDecodeError:
                    return fields, f"inside conversations[{len(turns)}]"
                turns.append(turn)
                position = _skip(text, position)
                if text.startswith(",", position):
                    position = _skip(text, position + 1)
            position += 1
        else:
            try:
                fields[key], position = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                return fields, f"inside the '{key}' field"
        position = _skip(text, position)
        if text.startswith(",", position):
            position = _skip(text, position + 1)
        elif text.startswith("}", position) or position >= len(text):
            return fields, "after its last field"


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _value(node: ast.expr, warnings: list[str]) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        source = ast.unparse(node)
        warnings.append(f"argument {source!r} is a Python expression, not a literal; "
                        "kept as its source text")
        return source


def tool_calls(code: str) -> list[tuple[str, dict[str, Any], list[str]]] | None:
    """(name, arguments, warnings) of each tool call in ``code``, in source order;
    None when the code does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    # Functions the code defines or imports itself (helpers, datetime.timedelta) are not tools.
    local = {node.name for node in ast.walk(tree)
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    local |= {(alias.asname or alias.name).split(".")[0] for node in ast.walk(tree)
              if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id not in _BUILTINS
             and node.func.id not in local]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    found = []
    for call in calls:
        warnings: list[str] = []
        arguments: dict[str, Any] = {}
        if call.args:
            arguments["args"] = [_value(arg, warnings) for arg in call.args]
        for keyword in call.keywords:
            name = keyword.arg if keyword.arg is not None else "**"
            arguments[name] = _value(keyword.value, warnings)
        assert isinstance(call.func, ast.Name)
        found.append((call.func.id, arguments, warnings))
    return found


def images(value: Any) -> list[str]:
    """The trajectory's image paths, ``<image_00>`` first."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, dict):
        def number(key: str) -> tuple[int, str]:
            digits = re.sub(r"\D", "", key)
            return (int(digits) if digits else 1 << 30, key)
        return [str(value[key]) for key in sorted(value, key=number)]
    return []


def verdict(text: Any) -> tuple[str, Any]:
    """(outcome, decoded judge JSON or None) from ``traj_verification``."""
    if not isinstance(text, str) or "{" not in text:
        return "unknown", None
    try:
        judged = json.loads(text[text.index("{"): text.rindex("}") + 1])
    except json.JSONDecodeError:
        return "unknown", None
    correct = judged.get("correct") if isinstance(judged, dict) else None
    if correct is True or (isinstance(correct, str) and correct.strip().lower() == "yes"):
        return "success", judged
    if correct is False or (isinstance(correct, str) and correct.strip().lower() == "no"):
        return "fail", judged
    return "unknown", judged


def _task(text: str) -> str:
    text = _ATTACHMENT.sub("", _IMG.sub("", text)).strip()
    return text[len("Task:"):].strip() if text.startswith("Task:") else text


@register
class T3AgentAdapter(Adapter):
    name: ClassVar[str] = "t3_agent"
    version: ClassVar[str] = "4"  # 2: whole turns of a cut record kept; 3: terminated;
    # 4: without a judge's verdict, an ending that gives up is fail (_outcome)
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("T3-Agent / MM-Traj trajectories (MAT-Agent train_*.json: "
                                  "Thought/Code/Observation turns)")
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".json":
            return False
        head = text_head(path)
        if head is None or not head.lstrip().startswith("["):
            return False
        return '"conversations"' in head and (
            '"traj_verification"' in head or "[OUTPUT OF STEP" in head)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        try:
            text = unit.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise SourceError(f"not UTF-8 text: {error}", file=file,
                              hint="an MM-Traj file is UTF-8 JSON") from None
        try:
            for index, value in iter_array(text):
                if isinstance(value, CutElement):
                    self._cut(out, file, index, text, value)
                    return
                self._trajectory(out, file, index, value)
        except ValueError as error:
            raise SourceError(str(error), file=file,
                              hint="an MM-Traj file is one JSON array") from None

    def _cut(self, out: UnitBuilder, file: str, index: int, text: str, cut: CutElement) -> None:
        """The element the file is cut inside: its whole turns kept as a truncated episode
        when they hold an assistant action, else one reject saying what was there."""
        fields, where = salvage(text, cut.start)
        record_id = fields.get("id")
        named = f" (id {record_id})" if isinstance(record_id, str) else ""
        why = (f"trajectory cut short or invalid JSON{named}, {where}: {cut.error.msg}; the "
               f"{index} complete ones before it are kept")
        turns = fields.get("conversations")
        if isinstance(turns, list) and any(isinstance(t, dict) and t.get("from") == "assistant"
                                           for t in turns):
            self._trajectory(out, file, index, fields, cut=why)
            # The turns after the cut are lost: say so, so a cut file never reads as whole.
            out.reject(file=file, position=f"[{index}] (char {cut.error.pos})",
                       reason=f"{why}; its whole turns are kept as a truncated episode, the "
                              "rest of the record is lost",
                       hint="the file is truncated; re-download it to read the whole record")
            return
        whole = len(turns) if isinstance(turns, list) else 0
        out.reject(file=file, position=f"[{index}] (char {cut.error.pos})",
                   reason=f"{why}; {whole} whole turn(s) of it, no assistant action: nothing "
                          "to keep",
                   hint="the file is truncated (the published MM-Traj subset is); nothing "
                        "after this point can be read", level="episode")

    def _trajectory(self, out: UnitBuilder, file: str, index: int, record: Any, *,
                    cut: str | None = None) -> None:
        position = f"[{index}]"
        if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
            out.reject(file=file, position=position, level="episode",
                       reason="trajectory is not an object with a 'conversations' list",
                       hint="each element needs {id, conversations, ...}")
            return
        episode = out.episode(str(record.get("id") or index))
        episode.platform = "tool"
        paths = images(record.get("image"))
        missing = FILE_MISSING if paths else TEXT_ONLY
        outcome, judged = verdict(record.get("traj_verification"))
        episode.outcome = outcome
        episode.metadata.update({"images": paths, "correct": record.get("correct"),
                                 "answer": record.get("answer"), "judge": judged})
        turns = record["conversations"]
        last_assistant = max((i for i, t in enumerate(turns) if isinstance(t, dict)
                              and t.get("from") == "assistant"), default=-1)
        block: list[StepRecord] = []
        thought_carried: str | None = None
        for number, turn in enumerate(turns):
            where = f"{position}.conversations[{number}]"
            if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
                out.reject(file=file, position=where, reason="turn is not {from, value}",
                           hint="each turn needs 'from' and a string 'value'",
                           episode_id=episode.episode_id)
                continue
            role, value = turn.get("from"), turn["value"]
            if role == "system":
                continue
            if role in ("user", "human") and episode.instruction is None and not block:
                episode.instruction = _task(value)
                continue
            if role in ("user", "human"):
                self._observation(episode, block, value, where)
                block = []
                continue
            thought, code = _split(value)
            thought = _join(thought_carried, thought)
            thought_carried = None
            if code is None:
                if number == last_assistant:
                    episode.add_step(Action(type="answer", text=value.strip() or None),
                                     source_position=where, frame_missing=missing,
                                     next_frame_missing=missing, thought=None)
                else:
                    thought_carried = value.strip() or None
                    episode.metadata.setdefault("skipped_turns", []).append(
                        {"position": where, "reason": "assistant turn without code; its "
                                                      "text is the next step's thought"})
                continue
            block = self._code_steps(episode, code, where, thought, missing)
        if not episode.steps:
            out.drop_episode(episode, file=file, position=position,
                             reason="the trajectory has no assistant action",
                             hint="a trajectory needs at least one Code: block")
            return
        # It ended where the agent gave its final answer; a trajectory that stops before one
        # (or is cut) was cut off: segments and exports end it as truncated, not done.
        episode.terminated = cut is None and episode.steps[-1].action.type == "answer"
        episode.truncated = not episode.terminated
        outcome_from_ending(episode)  # only when the judge gave no verdict
        if cut is not None:
            # Kept where it can be: the turns before the cut, the rest of the record lost.
            episode.metadata["truncated_reason"] = cut
        out.finish(episode)

    def _code_steps(self, episode: EpisodeBuilder, code: str, where: str,
                    thought: str | None, missing: str) -> list[StepRecord]:
        calls = tool_calls(code)
        steps: list[StepRecord] = []
        if not calls:
            warnings = [] if calls is not None else [
                "the code is not valid Python; kept as one python step"]
            calls = [("python", {"code": code}, warnings)]
        for name, arguments, warnings in calls:
            if name == FINAL_ANSWER:
                first = (arguments.get("args") or [arguments.get("answer")])[0]
                action = Action(type="answer", text=None if first is None else (
                    first if isinstance(first, str) else json.dumps(first)))
            else:
                action = Action(type="tool_call", tool_name=name,
                                tool_args=canonical_json(arguments))
            steps.append(episode.add_step(
                action, source_position=f"{where}.code", frame_missing=missing,
                next_frame_missing=missing, thought=thought if not steps else None,
                warnings=list(warnings)))
        return steps

    def _observation(self, episode: EpisodeBuilder, block: list[StepRecord], value: str,
                     where: str) -> None:
        match = _OUTPUT.match(value)
        text = value[match.end():] if match else value
        if not block:
            episode.metadata.setdefault("skipped_turns", []).append(
                {"position": where, "reason": "tool output with no code block before it"})
            return
        step = block[-1]
        step.observation = text
        if match and match.group(2) == "Error":
            step.warnings.append("the code raised an error (Error: output)")
            episode.metadata.setdefault("tool_errors", []).append(where)
        if len(block) > 1:
            step.warnings.append(f"one output for {len(block)} calls of one code block; "
                                 "attached to the last")


def _split(value: str) -> tuple[str | None, str | None]:
    """(thought, code) of an assistant turn; code None when it has no fence."""
    match = _FENCE.search(value)
    if match is None:
        return None, None
    thought = value[: match.start()]
    thought = re.sub(r"\s*Code:\s*\Z", "", thought).strip()
    if thought.startswith("Thought:"):
        thought = thought[len("Thought:"):].strip()
    return thought or None, match.group(1).strip()


def _join(*parts: str | None) -> str | None:
    texts = [part for part in parts if part]
    return "\n\n".join(texts) if texts else None
