"""OSWorld result folders: traj.jsonl, post-action step_*.png, result.txt, messages.json.

A unit is one run folder holding ``traj.jsonl`` (one JSON object per executed action:
``step_num``, ``action_timestamp``, ``action``, ``reward``, ``done``, ``info``,
``screenshot_file``). Traps handled:

* Several lines share one ``step_num`` (one per sub-action of one model response): every line
  is its own step, in file order; ``source_position`` reads ``traj.jsonl line 3 (step_num 2)``.
* Step numbers skip (a response that issued no action): kept as they are and listed in the
  episode metadata as ``skipped_step_nums``.
* Pseudo-actions: ``WAIT`` -> wait, ``FAIL`` -> fail, ``DONE`` -> done, ``BASH <cmd>`` ->
  tool_call ``bash`` with ``{"command": cmd}``; any other upper-case word is a step reject.
* pyautogui code is read by :mod:`curate.actions.pyautogui`, never executed. The cursor is
  carried from line to line, so ``click()`` takes the position of the preceding ``moveTo``;
  after a rejected line the cursor is unknown again. A line that only presses a button or key
  (``mouseDown``) joins the line that releases it into one step; a line that only releases
  what an earlier step used extends that step.
* Screenshots are saved *after* each action and the initial state is never saved: s_t of a
  step is the previous line's screenshot, s_t+1 its own; the first step's s_t is null with
  ``initial_state_not_recorded`` (never invented). A line that yields several actions has no
  screenshot between them (``intermediate_not_recorded``).
* Screenshot files absent (runs shared without PNGs): frames null with ``file_missing``,
  steps kept, one frame-level reject per episode counting them. A corrupt PNG: frame-level
  reject and ``file_corrupt``. An unreadable traj line: its screenshot is unknown as well.
* ``action_timestamp`` ``YYYYMMDD@HHMMSS`` is the harness's local time without a zone, second
  resolution; it is read as UTC (recorded in the metadata) on the ``unix`` clock.
* Coordinates are pixels of the screen the screenshot shows: normalised by the s_t frame's
  size, else the step's next frame, else any frame of the episode; with no frame at all, x/y
  stay null (px/py kept) with a warning. Points outside the screenshot are kept and warned.
* The outcome comes from ``result.txt`` only (the folder name may say "success" while the
  score is 0.0): score > 0 success, else fail; absent: unknown; unparseable: unknown and a
  file-level reject. OSWorld's loop stops only on DONE/FAIL (``done``), at its step limit or
  by crashing, so an episode is truncated exactly when it is not terminated (a crash leaves
  no result.txt; a DONE run without one only lacks its evaluation).
* Instruction: the "You are asked to complete the following task: ..." sentence of
  ``messages.json``, else the ``instruction`` of a task config named after the task or run
  folder: in ``ingest --tasks DIR`` first, then near the run (see ``_config_candidates``).
  Never silently empty: when neither has it, a file-level reject says where it looked and
  that ``--tasks`` points at the evaluation examples.
* Thoughts and tool output come from ``messages.json`` only where its k-th "Executed a
  translation of your issued tool call: [...]" lists exactly the actions of step_num k; else
  from the line's own ``response`` (the model output some OSWorld versions write). A thought
  goes on the first step of its step_num (the reasoning precedes the whole group), tool output
  on the group's tool call, else its last step.
"""

from __future__ import annotations

import ast
import functools
import itertools
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, canonical_json
from curate.actions.pyautogui import ParsedAction, PointerState, parse_pyautogui
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    INITIAL_STATE_NOT_RECORDED,
    INTERMEDIATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    RECORD_UNREADABLE,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    StepRecord,
    UnitBuilder,
    images_in,
    iter_jsonl,
    load_json,
    point_in_frame,
)
from curate.store.frames import Frame

TRAJ_FILE = "traj.jsonl"
RESULT_FILE = "result.txt"
MESSAGES_FILE = "messages.json"
MAX_LISTED_GAPS = 1000  # beyond this, skipped step numbers are counted, not listed
TIMESTAMP_FORMAT = "%Y%m%d@%H%M%S"
_PSEUDO = re.compile(r"([A-Z][A-Z_]*)(?:\s+(.*))?", re.DOTALL)
_SIMPLE_PSEUDO = {"WAIT": "wait", "FAIL": "fail", "DONE": "done"}
# OSWorld task configs are a few KB; a larger JSON file is something else.
TASK_CONFIG_LIMIT = 1 << 20
_TASK_SENTENCE = re.compile(r"You are asked to complete the following task:\s*(.+)", re.DOTALL)
_EXECUTED = "Executed a translation of your issued tool call:"
_SCREENSHOT_NOTE = "Here is the next screenshot"
_LINE_HINT = ("the line is left out (the next step's s_t is still this line's screenshot); "
              "fix the line in traj.jsonl and re-ingest to keep it")


@register
class OSWorldAdapter(Adapter):
    name: ClassVar[str] = "osworld"
    version: ClassVar[str] = "2"  # 2: --tasks, all parents, a missing instruction reported
    platform: ClassVar[str] = "desktop"
    description: ClassVar[str] = (
        "OSWorld result folders: traj.jsonl + step_*.png (after each action) + result.txt"
    )
    # A named file plus a record shape: specific enough to run before generic formats.
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        traj = path / TRAJ_FILE
        if not (path.is_dir() and traj.is_file()):
            return False
        return (path / RESULT_FILE).is_file() or _first_record_is_osworld(traj)

    def auxiliary(self, path: Path) -> str | None:
        if path.suffix.lower() != ".json":
            return None
        try:
            if path.stat().st_size > TASK_CONFIG_LIMIT:
                return None
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if (isinstance(config, dict) and isinstance(config.get("instruction"), str)
                and "id" in config and ("evaluator" in config or "config" in config)):
            return ("an OSWorld task config: the instruction of the runs of that task "
                    "(read with them)")
        return None

    def input_files(self, unit: SourceUnit) -> list[Path]:
        """The run's files plus the task config its instruction may come from, so editing
        the config re-reads the run."""
        found = find_task_config(unit)
        return super().input_files(unit) + ([found[0].absolute()] if found else [])

    def image_files(self, unit: SourceUnit) -> list[Path]:
        return images_in(unit.path)  # step_N_<time>.png, one after each action

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        episode = out.episode()
        lines = _read_lines(unit, out, episode)
        _attach_screenshots(unit, episode, lines)
        builder = _StepBuilder(episode, lines, unit.relative(unit.path / TRAJ_FILE))
        builder.run()
        if not episode.steps:
            out.drop_episode(episode, file=unit.relative(unit.path / TRAJ_FILE), position="",
                             reason="no line of traj.jsonl gave a usable action",
                             hint="see the step rejects of this file for each line's reason")
            return
        messages = _read_messages(unit, episode)
        _apply_messages(unit, episode, messages, builder)
        _finish_episode(unit, episode, lines)


# -- reading traj.jsonl -------------------------------------------------------------------------


@dataclass(slots=True)
class _Line:
    """One traj.jsonl record (None: the line was unreadable) and the screenshot saved after it."""

    number: int
    record: dict[str, Any] | None
    frame: Frame | None = None
    missing: str | None = None  # why frame is None

    @property
    def action(self) -> Any:
        return None if self.record is None else self.record.get("action")

    @property
    def step_num(self) -> int | None:
        value = None if self.record is None else self.record.get("step_num")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def _first_record_is_osworld(traj: Path) -> bool:
    """Cheap sniff: the first line is an object with ``action`` and an OSWorld key."""
    try:
        with traj.open("rb") as handle:
            first = json.loads(handle.readline(1 << 16))
    except (OSError, ValueError):
        return False
    return isinstance(first, dict) and "action" in first and (
        "step_num" in first or "screenshot_file" in first)


def _read_lines(unit: SourceUnit, out: UnitBuilder, episode: EpisodeBuilder) -> list[_Line]:
    """Every line in file order; an unreadable line leaves a placeholder so the shift holds."""
    path = unit.path / TRAJ_FILE
    lines: list[_Line] = []
    rejected = len(out.rejects)
    try:
        for number, record in iter_jsonl(path, unit, episode):
            if len(out.rejects) > rejected:  # iter_jsonl rejected a line before this one
                lines.append(_Line(0, None, missing=RECORD_UNREADABLE))
                rejected = len(out.rejects)
            lines.append(_Line(number, record))
    except OSError as error:
        raise SourceError(f"cannot read {TRAJ_FILE}: {error.strerror}",
                          file=unit.relative(path),
                          hint="check the file's permissions") from None
    if not any(line.record is not None for line in lines):
        raise SourceError(f"{TRAJ_FILE} has no readable action line", file=unit.relative(path),
                          hint="the run stopped before its first action; re-run the task "
                               "or remove the folder")
    return lines


def _attach_screenshots(unit: SourceUnit, episode: EpisodeBuilder, lines: list[_Line]) -> None:
    """Load each line's post-action screenshot once; count the absent ones in one reject."""
    absent: list[tuple[int, str]] = []
    for line in lines:
        if line.record is None:
            continue
        name = line.record.get("screenshot_file")
        if not isinstance(name, str) or not name:
            line.missing = NO_SCREENSHOTS
        elif Path(name).name != name or not (unit.path / name).is_file():
            # Only bare file names inside the run folder are looked up, never other paths.
            line.missing = FILE_MISSING
            absent.append((line.number, name))
        else:
            line.frame = episode.add_frame_file(unit.path / name)
            line.missing = None if line.frame is not None else FILE_CORRUPT
    if absent:
        number, name = absent[0]
        episode.reject(
            file=unit.relative(unit.path / TRAJ_FILE), position=f"line {number}", level="frame",
            reason=f"{len(absent)} screenshot(s) named in {TRAJ_FILE} are not in the run "
                   f"folder (first: {name!r} on line {number}); expected each screenshot_file "
                   "beside traj.jsonl",
            hint="copy the step_*.png files next to traj.jsonl to get these frames; the steps "
                 "are kept without them",
        )


# -- lines to steps -----------------------------------------------------------------------------


def _line_actions(action: Any, state: PointerState
                 ) -> tuple[tuple[ParsedAction, ...], PointerState]:
    """The actions of one traj line's ``action`` value; raises ActionParseError."""
    if isinstance(action, dict):
        raise ActionParseError("'action' is an object (computer_13 or a CUA tool action); only "
                               "pyautogui code strings and WAIT/FAIL/DONE/BASH are read")
    if not isinstance(action, str) or not action.strip():
        raise ActionParseError(f"'action' must be a non-empty string, got {action!r:.60}")
    text = action.strip()
    pseudo = _PSEUDO.fullmatch(text)
    if pseudo is None:
        result = parse_pyautogui(text, state)
        return result.parsed, result.state
    return (ParsedAction(_pseudo_action(pseudo.group(1), pseudo.group(2), text)),), state


def _pseudo_action(word: str, argument: str | None, raw: str) -> Action:
    if word == "BASH":
        if not argument or not argument.strip():
            raise ActionParseError("BASH without a command; expected 'BASH <command>'")
        return Action(type="tool_call", tool_name="bash",
                      tool_args=canonical_json({"command": argument}), raw=raw)
    if word not in _SIMPLE_PSEUDO:
        raise ActionParseError(f"unknown pseudo-action {word!r}; expected WAIT, FAIL, DONE, "
                               "BASH <command> or pyautogui code")
    if argument:
        raise ActionParseError(f"{word} takes no argument, got {argument[:40]!r}")
    return Action(type=_SIMPLE_PSEUDO[word], raw=raw)


class _StepBuilder:
    """Turns lines into steps, shifting the post-action screenshots by one."""

    def __init__(self, episode: EpisodeBuilder, lines: list[_Line], file: str) -> None:
        self.episode = episode
        self.lines = lines
        self.state = PointerState()
        self.pending: list[int] = []  # lines whose press is released on a later line
        self.step_lines: list[list[int]] = []  # line indices behind each step, for messages
        self.fallback = next(((line.frame.width, line.frame.height) for line in lines
                              if line.frame is not None), None)
        self.file = file

    def run(self) -> None:
        for index, line in enumerate(self.lines):
            self._line(index, line)
        self._abandon_pending("the button or key is still held at the end of traj.jsonl")

    def _line(self, index: int, line: _Line) -> None:
        if line.record is None:
            self._abandon_pending("an unreadable traj.jsonl line came before the release")
            self.state = PointerState()
            return
        try:
            parsed, state = _line_actions(line.action, self.state)
        except ActionParseError as error:
            self._reject(line, f"cannot read the action: {error}")
            self._abandon_pending(f"line {line.number}, before the release, was rejected")
            self.state = PointerState()  # whatever that line did, the cursor is unknown now
            return
        held_before, self.state = self.state.pending, state
        if parsed:
            group, self.pending = [*self.pending, index], []
            self._add_steps(group, parsed)
        elif state.pending:
            self.pending.append(index)
        elif held_before and not self.pending and self._extend_last_step(index):
            return
        else:
            self._reject(line, "the line performs no action (only imports, settings or a "
                               "release of nothing held)")

    def _reject(self, line: _Line, reason: str) -> None:
        self.episode.reject(file=self.file, position=f"line {line.number}", reason=reason,
                            hint=_LINE_HINT)

    def _abandon_pending(self, why: str) -> None:
        for index in self.pending:
            self._reject(self.lines[index], f"mouseDown/keyDown never completed: {why}")
        self.pending = []

    def _extend_last_step(self, index: int) -> bool:
        """A line that only releases what the last step used becomes part of that step."""
        if not self.step_lines or self.step_lines[-1][-1] != index - 1:
            return False
        step, line, group = self.episode.steps[-1], self.lines[index], self.step_lines[-1]
        group.append(index)  # the list is shared by every step of that group
        step.next_frame_id = line.frame.frame_id if line.frame else None
        step.next_frame_missing = line.missing
        count = sum(1 for other in self.step_lines if other is group)
        step.source_position = self._position(group, count - 1, count)
        return True

    def _add_steps(self, group: list[int], parsed: tuple[ParsedAction, ...]) -> None:
        before, before_missing, warnings = self._state_before(group[0])
        last = self.lines[group[-1]]
        size = _frame_size(before) or _frame_size(last.frame) or self.fallback
        first_line = self.lines[group[0]]
        timestamp, time_warnings = _timestamp(first_line.record)
        for k, item in enumerate(parsed):
            action = item.action
            if len(parsed) == 1:  # the whole code is this action's own encoding
                action = replace(action, raw="\n".join(str(self.lines[i].action) for i in group))
            action, coord_warnings = _place(action, size)
            step = self.episode.add_step(
                action, source_position=self._position(group, k, len(parsed)),
                timestamp=timestamp, warnings=[*(warnings if k == 0 else []), *time_warnings,
                                               *item.notes, *coord_warnings])
            self._set_frames(step, (before, before_missing) if k == 0 else None,
                             (last.frame, last.missing) if k == len(parsed) - 1 else None)
            self.step_lines.append(group)
        self.episode.steps[-1].reward = _reward(self.lines[i].record for i in group)

    def _state_before(self, index: int) -> tuple[Frame | None, str | None, list[str]]:
        """s_t of a step starting at line ``index``: the screenshot saved after the line before."""
        if index == 0:
            return None, INITIAL_STATE_NOT_RECORDED, []
        previous = self.lines[index - 1]
        if previous.record is None:
            return None, RECORD_UNREADABLE, ["the traj.jsonl line before this step is unreadable, "
                                        "so the screen before it is unknown"]
        return previous.frame, previous.missing, []

    @staticmethod
    def _set_frames(step: StepRecord, before: tuple[Frame | None, str | None] | None,
                    after: tuple[Frame | None, str | None] | None) -> None:
        """None for a side means: another action of the same line is on that side."""
        between = "no screenshot is saved between the calls of one traj.jsonl line"
        if before is None or after is None:
            step.warnings.append(between)
        frame, missing = before or (None, INTERMEDIATE_NOT_RECORDED)
        step.frame_id, step.frame_missing = (frame.frame_id if frame else None), missing
        frame, missing = after or (None, INTERMEDIATE_NOT_RECORDED)
        step.next_frame_id, step.next_frame_missing = (frame.frame_id if frame else None), missing

    def _position(self, group: list[int], k: int, count: int) -> str:
        first, last = self.lines[group[0]], self.lines[group[-1]]
        where = (f"line {first.number}" if first is last
                 else f"lines {first.number}-{last.number}")
        nums = sorted({n for n in (self.lines[i].step_num for i in group) if n is not None})
        if not nums:
            step = "no step_num"
        else:
            step = f"step_num {nums[0]}" + (f"-{nums[-1]}" if len(nums) > 1 else "")
        call = f", call {k + 1} of {count}" if count > 1 else ""
        return f"{TRAJ_FILE} {where} ({step}){call}"


def _frame_size(frame: Frame | None) -> tuple[int, int] | None:
    return None if frame is None else (frame.width, frame.height)


def _place(action: Action, size: tuple[int, int] | None) -> tuple[Action, list[str]]:
    """Normalise pixel coordinates by the screenshot size; the screenshot is the screen."""
    if action.px is None or action.py is None:
        return action, []
    if size is None:
        return replace(action, coord_space="screen_px", scale=1.0), [
            "no screenshot of this episode gives the screen size; x/y left empty, px/py kept"]
    width, height = size
    x, y, warnings = point_in_frame(action.px, action.py, width=width, height=height)
    x2 = y2 = None
    if action.px2 is not None and action.py2 is not None:
        x2, y2, end_warnings = point_in_frame(action.px2, action.py2, width=width,
                                              height=height)
        warnings.extend(end_warnings)
    return replace(action, x=x, y=y, x2=x2, y2=y2, coord_space="screen_px", screen_width=width,
                   screen_height=height, scale=1.0), warnings


def _timestamp(record: dict[str, Any] | None) -> tuple[float | None, list[str]]:
    """``YYYYMMDD@HHMMSS`` as unix seconds, assuming UTC (OSWorld writes zone-less local time)."""
    value = None if record is None else record.get("action_timestamp")
    if value is None:
        return None, []
    try:
        moment = datetime.strptime(str(value), TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None, [f"action_timestamp {value!r} is not YYYYMMDD@HHMMSS; timestamp left empty"]
    return moment.timestamp(), []


def _reward(records: Iterable[dict[str, Any] | None]) -> float | None:
    """The summed numeric ``reward`` of the lines behind one step, None when none has one."""
    values = [r.get("reward") for r in records if r is not None]
    numbers = [float(v) for v in values
               if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    return sum(numbers) if numbers else None


# -- messages.json: instruction, thoughts, tool output --------------------------------------------


@dataclass(slots=True)
class _Turn:
    """One model response as messages.json tells it: its thought, actions and tool output."""

    actions: list[str] | None
    thought: str | None
    observations: list[str] = field(default_factory=list)


def _read_messages(unit: SourceUnit, episode: EpisodeBuilder) -> list[dict[str, Any]]:
    """The messages list, or [] (with a file-level reject when it exists but is unusable)."""
    path = unit.path / MESSAGES_FILE
    if not path.is_file():
        return []
    try:
        messages = load_json(path, unit)
    except SourceError as error:
        episode.reject(file=error.file, position=error.position, level="file",
                       reason=f"{error.reason}; instruction and thoughts are left empty",
                       hint=error.hint)
        return []
    if not isinstance(messages, list):
        episode.reject(file=unit.relative(path), position="", level="file",
                       reason=f"expected a JSON list of messages, got "
                              f"{type(messages).__name__}; instruction and thoughts left empty",
                       hint="messages.json should be the agent's message history")
        return []
    return [m for m in messages if isinstance(m, dict)]


def _texts(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [part["text"] for part in content
            if isinstance(part, dict) and part.get("type") == "text"
            and isinstance(part.get("text"), str)]


def _instruction_from_messages(messages: list[dict[str, Any]]) -> str | None:
    """The task sentence OSWorld agents put in their system (or first user) prompt."""
    for message in messages:
        if message.get("role") not in ("system", "user"):
            continue
        for text in _texts(message):
            match = _TASK_SENTENCE.search(text)
            if match and match.group(1).strip():
                return match.group(1).strip()
    return None


def _turns(messages: list[dict[str, Any]]) -> list[_Turn]:
    """Split the history at each "Executed a translation ..." message (one per step_num)."""
    turns: list[_Turn] = []
    thought: list[str] = []
    current: _Turn | None = None
    for message in messages:
        if message.get("role") == "assistant":
            thought.extend(_texts(message))
            current = None
            continue
        for text in _texts(message) if message.get("role") == "user" else []:
            if text.startswith(_EXECUTED):
                current = _Turn(_action_list(text[len(_EXECUTED):]),
                                "\n\n".join(t.strip() for t in thought if t.strip()) or None)
                turns.append(current)
                thought = []
            elif text.startswith(_SCREENSHOT_NOTE):
                current = None
            elif current is not None:
                current.observations.append(text)
    return turns


def _action_list(text: str) -> list[str] | None:
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _apply_messages(unit: SourceUnit, episode: EpisodeBuilder,
                    messages: list[dict[str, Any]], builder: _StepBuilder) -> None:
    episode.instruction = _instruction_from_messages(messages)
    if episode.instruction is not None:
        episode.metadata["instruction_source"] = MESSAGES_FILE
    else:
        _instruction_from_config(unit, episode)
    _thoughts_from_turns(episode, builder, _aligned_turns(_turns(messages), builder.lines))
    _thoughts_from_responses(episode, builder)


def _steps_by_num(episode: EpisodeBuilder, builder: _StepBuilder) -> dict[int, list[StepRecord]]:
    """The steps behind each step_num, in order."""
    by_num: dict[int, list[StepRecord]] = {}
    for step, group in zip(episode.steps, builder.step_lines, strict=True):
        for num in dict.fromkeys(builder.lines[i].step_num for i in group):
            if num is not None:
                by_num.setdefault(num, []).append(step)
    return by_num


def _thoughts_from_turns(episode: EpisodeBuilder, builder: _StepBuilder,
                         aligned: dict[int, _Turn]) -> None:
    by_num = _steps_by_num(episode, builder)
    for num, turn in aligned.items():
        steps = by_num.get(num)
        if not steps:
            continue
        steps[0].thought = steps[0].thought or turn.thought
        # Tool output answers the tool call (BASH), else whatever the turn did last.
        tools = [step for step in steps if step.action.type == "tool_call"]
        target = (tools or steps)[-1]
        target.observation = target.observation or "\n".join(turn.observations).strip() or None


def _thoughts_from_responses(episode: EpisodeBuilder, builder: _StepBuilder) -> None:
    """Some OSWorld versions write the model's ``response`` on each line of its step_num."""
    responses: dict[int, str] = {}
    for line in builder.lines:
        response = line.record.get("response") if line.record is not None else None
        if line.step_num is not None and isinstance(response, str) and response.strip():
            responses.setdefault(line.step_num, response.strip())
    for num, steps in _steps_by_num(episode, builder).items():
        if steps[0].thought is None and num in responses:
            steps[0].thought = responses[num]


def _aligned_turns(turns: list[_Turn], lines: list[_Line]) -> dict[int, _Turn]:
    """step_num -> its turn, only where the turn lists exactly that step_num's actions."""
    actions: dict[int, list[Any]] = {}
    for line in lines:
        if line.step_num is not None:
            actions.setdefault(line.step_num, []).append(line.action)
    return {num: turns[num - 1] for num, listed in actions.items()
            if 1 <= num <= len(turns) and turns[num - 1].actions == listed}


def _config_candidates(unit: SourceUnit) -> list[Path]:
    """Where a task config may sit, cheapest first, without walking whole trees.

    OSWorld's own layout is ``results/<space>/<obs>/<model>/<domain>/<id>/`` beside
    ``evaluation_examples/examples/<domain>/<id>.json``; forks keep ``<task>.json`` in a
    sibling folder of the results folder (``sec_eval/<task>.json``).
    """
    run, task = unit.path.absolute(), unit.path.absolute().parent
    names = [f"{run.name}.json", f"{task.name}.json"]
    candidates: list[Path] = []
    if unit.tasks is not None:  # --tasks: evaluation_examples, its examples/, or a flat folder
        for base in (unit.tasks, unit.tasks / "examples",
                     unit.tasks / "evaluation_examples" / "examples"):
            candidates += [base / task.name / names[0], *(base / name for name in names)]
    # Every parent, to the file system's root: a results tree may sit deep below the
    # checkout holding evaluation_examples (a stat per parent, no listing).
    parents = list(run.parents)
    candidates += [parent / name for parent in parents[:3] for name in names]
    candidates += [p / "evaluation_examples" / "examples" / task.name / names[0] for p in parents]
    if len(parents) > 2:
        index = _sibling_json_index(parents[2])
        candidates += [path for name in names for path in index.get(name, ())]
    return candidates


@functools.lru_cache(maxsize=64)
def _sibling_json_index(folder: Path) -> dict[str, tuple[Path, ...]]:
    """JSON file names in the sub-folders of ``folder`` -> their paths, listed once per
    folder: a results tree of thousands of runs shares one listing instead of each run
    probing every sibling."""
    index: dict[str, list[Path]] = {}
    try:
        subfolders = sorted(f for f in folder.iterdir() if f.is_dir())
    except OSError:
        return {}
    for subfolder in subfolders:
        try:
            names = sorted(p.name for p in subfolder.iterdir() if p.suffix == ".json")
        except OSError:
            continue
        for name in names:
            index.setdefault(name, []).append(subfolder / name)
    return {name: tuple(paths) for name, paths in index.items()}


def _config_instruction(path: Path) -> str | None:
    """The ``instruction`` of a task config, or None when the file is absent or not one."""
    try:
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # a neighbour's file, not part of this unit: not ours to reject
    instruction = config.get("instruction") if isinstance(config, dict) else None
    return instruction.strip() if isinstance(instruction, str) and instruction.strip() else None


def find_task_config(unit: SourceUnit) -> tuple[Path, str] | None:
    """The first task config near the run that has an instruction, with that instruction."""
    for path in _config_candidates(unit):
        instruction = _config_instruction(path)
        if instruction is not None:
            return path, instruction
    return None


def _instruction_from_config(unit: SourceUnit, episode: EpisodeBuilder) -> None:
    found = find_task_config(unit)
    if found is not None:
        path, episode.instruction = found
        where = Path(os.path.relpath(path, unit.path.absolute())).as_posix()
        episode.metadata["instruction_source"] = f"task config {where}"
        return
    task_id = unit.path.absolute().name
    searched = "the --tasks folder, " if unit.tasks is not None else ""
    episode.reject(
        file=unit.relative(unit.path), position="instruction", level="file",
        reason=f"no instruction for task {task_id}: {MESSAGES_FILE} has no task sentence and "
               f"no task config {task_id}.json with an 'instruction' was found ({searched}the "
               "run's three parent folders, evaluation_examples/examples/<domain>/ under "
               "every parent, the results folder's sibling folders); the episode is kept "
               "without one",
        hint="pass --tasks DIR with OSWorld's evaluation_examples folder (or the folder "
             "holding <domain>/<task id>.json)")


# -- episode outcome ----------------------------------------------------------------------------


def _finish_episode(unit: SourceUnit, episode: EpisodeBuilder, lines: list[_Line]) -> None:
    episode.terminated = episode.steps[-1].action.type in ("done", "fail") or any(
        line.record is not None and line.record.get("done") is True for line in lines)
    episode.truncated = not episode.terminated
    _read_outcome(unit, episode)
    if any(step.timestamp is not None for step in episode.steps):
        episode.clock = "unix"
        episode.metadata["timestamp_timezone"] = (
            "UTC assumed: OSWorld writes the harness's local time without a zone")
    _record_skipped_step_nums(episode, lines)


def _record_skipped_step_nums(episode: EpisodeBuilder, lines: list[_Line]) -> None:
    """step_nums (counted from 1) that no readable line has: responses with no action."""
    nums = sorted({line.step_num for line in lines if line.step_num is not None})
    gaps = [(a + 1, b) for a, b in itertools.pairwise([0, *nums]) if b > a + 1]
    count = sum(b - a for a, b in gaps)
    if count > MAX_LISTED_GAPS:
        episode.metadata["skipped_step_num_count"] = count
    elif count:
        episode.metadata["skipped_step_nums"] = [n for a, b in gaps for n in range(a, b)]


def _read_outcome(unit: SourceUnit, episode: EpisodeBuilder) -> None:
    """Score from result.txt; never from the folder name, which can contradict it."""
    path = unit.path / RESULT_FILE
    if not path.is_file():
        return
    text = _read_text(path)
    score = _float(text)
    if score is None:
        episode.reject(file=unit.relative(path), position="", level="file",
                       reason=f"{RESULT_FILE} should hold one number (the evaluator's score), "
                              f"found {text[:40]!r}; the outcome is left unknown",
                       hint="re-run the OSWorld evaluator for this run or fix the file")
        return
    episode.score = score
    episode.outcome = "success" if score > 0 else "fail"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        return f"<unreadable: {error}>"


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
