"""TraceR1's answer format: curate's reference steps written as text, and model answers read back.

The format, as the first author's public EasyR1 fork defines it (``cheryyunl/EasyR1``:
``examples/format_prompt/gui_format.jinja`` asks for it, ``examples/reward_function/gui.py``
reads it, ``examples/config_gui.yaml`` trains on rows with ``problem`` / ``answer`` /
``images``). The model answers ``<think>...</think><answer>...</answer>``; the answer holds one
line per step, up to task completion (shown here wrapped; each step is one line)::

    Step 1: "screenshot_abstraction": "Search bar open", "action": {"action_type": "click",
            "step_instruction": "click on Search to open the search bar"}, "status": "not done"
    Step 2: "screenshot_abstraction": "Results listed", "action": {"action_type": "input_text",
            "step_instruction": "type 'cheap flights' in the search bar"}, "status": "done"

* ``Step k:`` starts a step (``k`` counts from the current step; readers ignore the number);
* ``"screenshot_abstraction"``: a JSON string describing the screen (curate writes the step's
  ``state`` text: what its forecast target says the screen shows after the step);
* ``"action"``: a flat JSON object with ``"action_type"`` and ``"step_instruction"`` (the
  author's reader cuts the object at its first ``}``, so neither text may hold a brace);
* ``"status"``: ``"done"`` on the final step only, ``"not done"`` on every other one.

The published action vocabulary (Android, from the prompt template) and curate's types:

============== ===================================================================
TraceR1        curate
============== ===================================================================
click          click
long_press     long_press
scroll         scroll, swipe (an Android "scroll" is a swipe gesture)
open_app       open_app
input_text     type
navigate_home  home
navigate_back  back
wait           wait
============== ===================================================================

curate's other types (double_click, right_click, middle_click, drag, move, key, navigate,
tool_call, answer, fail) have no published name and keep curate's own. ``done`` is not a step
in this format: it is the ``"status": "done"`` of the step before it (a window whose only step
is ``done`` keeps it as a step, so no answer is empty).

:func:`format_answer` writes the text, :func:`parse_answer` reads it back and never raises.
Standard library only: a trainer's reward worker imports this cheaply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

DONE = "done"
NOT_DONE = "not done"
STATUSES = frozenset({DONE, NOT_DONE})

# curate type -> the author's action_type; types not listed keep curate's name.
TO_TRACER1: dict[str, str] = {
    "click": "click", "long_press": "long_press", "scroll": "scroll", "swipe": "scroll",
    "open_app": "open_app", "type": "input_text", "home": "navigate_home",
    "back": "navigate_back", "wait": "wait",
}
# The author's action_type -> curate type (scroll reads back as scroll, its first meaning).
FROM_TRACER1: dict[str, str] = {
    "click": "click", "long_press": "long_press", "scroll": "scroll", "open_app": "open_app",
    "input_text": "type", "navigate_home": "home", "navigate_back": "back", "wait": "wait",
}
PUBLISHED_TYPES = frozenset(FROM_TRACER1)

# Answers longer than this are cut before reading (a reward must stay fast on any output).
MAX_ANSWER_CHARS = 200_000

_STEP_MARK = re.compile(r"Step\s+\d+\s*:")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_OPEN_ANSWER = re.compile(r"<answer>(.*)", re.DOTALL)
_STATE_FIELD = re.compile(r'"screenshot_abstraction"\s*:\s*"((?:[^"\\]|\\.)*)"', re.DOTALL)
_ACTION_FIELD = re.compile(r'"action"\s*:\s*(\{[^{}]*\})', re.DOTALL)
_STATUS_FIELD = re.compile(r'"status"\s*:\s*"([^"]*)"')
# The form format_answer writes (and the prompt asks for), read with one match.
_CANONICAL = re.compile(r'\s*"screenshot_abstraction"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*'
                        r'"action"\s*:\s*(\{[^{}]*\})\s*,\s*"status"\s*:\s*"([^"]*)"')


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a TraceR1 answer: the screen description, the action, the status."""

    action_type: str
    step_instruction: str = ""
    state: str | None = None
    done: bool = False


@dataclass(frozen=True, slots=True)
class ParsedStep:
    """A step as read from a model answer, with what was wrong with its form ('' if nothing)."""

    step: TraceStep
    problem: str = ""

    @property
    def well_formed(self) -> bool:
        return not self.problem


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """Every step found (readable or not, in order) and why reading failed, if it did."""

    steps: tuple[ParsedStep, ...]
    reason: str = ""
    tags: bool = False  # the text was <think>...</think><answer>...</answer>

    @property
    def ok(self) -> bool:
        return bool(self.steps) and not self.reason

    @property
    def readable(self) -> list[TraceStep]:
        """The steps whose action could be read (the ones a reward can score)."""
        return [parsed.step for parsed in self.steps if parsed.step.action_type]


# -- writing ---------------------------------------------------------------------------------

def tracer1_type(curate_type: str) -> str:
    """The author's action_type for a curate type (curate's own name where none is published)."""
    return TO_TRACER1.get(curate_type, curate_type)


def curate_type(action_type: str) -> str:
    """The curate type for an action_type read from an answer (lower-cased, as given if unknown)."""
    name = action_type.strip().lower()
    return FROM_TRACER1.get(name, name)


def steps_from_actions(types: Sequence[str], instructions: Sequence[str | None],
                       states: Sequence[str | None], *, complete: bool) -> list[TraceStep]:
    """Reference steps from curate's target columns (action types, instructions, states).

    A ``done`` action ends the answer and becomes the status of the step before it;
    ``complete`` says the last step given ends the episode (its status is then ``done``).
    """
    if not len(types) == len(instructions) == len(states):
        raise ValueError(f"{len(types)} types, {len(instructions)} instructions and "
                         f"{len(states)} states: one of each per step")
    steps: list[TraceStep] = []
    for kind, instruction, state in zip(types, instructions, states, strict=True):
        if kind == "done" and steps:
            steps[-1] = TraceStep(steps[-1].action_type, steps[-1].step_instruction,
                                  steps[-1].state, done=True)
            break
        steps.append(TraceStep(tracer1_type(kind), instruction or "", state, done=kind == "done"))
        if kind == "done":
            break
    if complete and steps:
        last = steps[-1]
        steps[-1] = TraceStep(last.action_type, last.step_instruction, last.state, done=True)
    return steps


def format_answer(steps: Sequence[TraceStep], *, start: int = 1) -> str:
    """The answer text, one ``Step k:`` line per step, numbered from ``start``.

    Texts are kept readable by the author's parser: newlines become spaces, braces become
    parentheses, ``<answer>``/``<think>`` tags become ``(answer)``/``(think)``, and a
    ``Step N:`` inside a text is lower-cased so it does not start a step.
    A missing state is written as an empty description.
    """
    lines = []
    for offset, step in enumerate(steps):
        action = json.dumps({"action_type": step.action_type,
                             "step_instruction": _safe(step.step_instruction)},
                            ensure_ascii=False)
        state = json.dumps(_safe(step.state or ""), ensure_ascii=False)
        status = DONE if step.done else NOT_DONE
        lines.append(f'Step {start + offset}: "screenshot_abstraction": {state}, '
                     f'"action": {action}, "status": "{status}"')
    return "\n".join(lines)


_BRACES = str.maketrans({"{": "(", "}": ")"})
_TAG = re.compile(r"<(/?)(answer|think)>", re.IGNORECASE)


def _safe(text: str) -> str:
    flat = _TAG.sub(r"(\1\2)", " ".join(text.split()).translate(_BRACES))
    return _STEP_MARK.sub(lambda match: match.group(0).lower(), flat)


# -- reading ---------------------------------------------------------------------------------

def answer_content(text: str) -> tuple[str, bool]:
    """The answer part of a response (the last <answer> block, else all of it) and whether the
    response was exactly ``<think>...</think>`` then ``<answer>...</answer>``."""
    blocks = _ANSWER.findall(text)
    if blocks:
        tags = re.fullmatch(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", text,
                            re.DOTALL) is not None
        return blocks[-1], tags
    opened = _OPEN_ANSWER.search(text)  # cut off before </answer>: read what is there
    return (opened.group(1) if opened else text), False


def parse_answer(text: object, *, max_steps: int = 100) -> ParsedAnswer:
    """Read a TraceR1 answer; never raises. At most ``max_steps`` steps are read: a longer
    answer is refused with a reason (a reward scores it 0)."""
    if not isinstance(text, str):
        return ParsedAnswer((), f"expected text, got {type(text).__name__}")
    content, tags = answer_content(text[:MAX_ANSWER_CHARS])
    marks = list(_STEP_MARK.finditer(content))
    if not marks:
        return ParsedAnswer((), "no 'Step k:' in the answer", tags)
    if len(marks) > max_steps:
        return ParsedAnswer((), f"{len(marks)} steps: more than the {max_steps} read", tags)
    ends = [mark.start() for mark in marks[1:]] + [len(content)]
    steps = tuple(_parse_step(content[mark.end():end]) for mark, end in zip(marks, ends,
                                                                              strict=True))
    return ParsedAnswer(steps, "", tags)


def _parse_step(chunk: str) -> ParsedStep:
    canonical = _CANONICAL.match(chunk)
    if canonical:
        raw_state, raw_action, raw_status = canonical.groups()
    else:  # fields in another order, or some missing
        found = [pattern.search(chunk) for pattern in (_STATE_FIELD, _ACTION_FIELD,
                                                       _STATUS_FIELD)]
        raw_state, raw_action, raw_status = (m.group(1) if m else None for m in found)
    state = None if raw_state is None else (
        _json_string(raw_state) if "\\" in raw_state else raw_state)
    action = None if raw_action is None else _json_object(raw_action)
    status = None if raw_status is None else raw_status.strip().lower()
    problems = []
    if state is None:
        problems.append("no screenshot_abstraction string")
    action_type, instruction = "", ""
    if action is None:
        problems.append("no readable action object")
    else:
        raw_type, raw_instruction = action.get("action_type"), action.get("step_instruction")
        if isinstance(raw_type, str) and raw_type.strip():
            action_type = raw_type.strip().lower()
        else:
            problems.append("the action has no action_type")
        if isinstance(raw_instruction, str):
            instruction = raw_instruction
        else:
            problems.append("the action has no step_instruction")
    if status not in STATUSES:
        problems.append("status is not 'done' or 'not done'")
    step = TraceStep(action_type, instruction, state, done=status == DONE)
    return ParsedStep(step, "; ".join(problems))


def _json_string(body: str) -> str | None:
    try:
        value = json.loads(f'"{body}"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _json_object(text: str) -> dict[str, object] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


__all__ = ["DONE", "FROM_TRACER1", "MAX_ANSWER_CHARS", "NOT_DONE", "PUBLISHED_TYPES",
           "TO_TRACER1", "ParsedAnswer", "ParsedStep", "TraceStep", "answer_content",
           "curate_type", "format_answer", "parse_answer", "steps_from_actions",
           "tracer1_type"]
