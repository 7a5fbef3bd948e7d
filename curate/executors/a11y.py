"""``a11y``: deterministic grounding on the screen elements the source recorded.

The step instruction names an element; this executor finds it among ``StepContext.elements``
(accessibility-tree nodes, DOM elements, Android views: ``steps.elements``) and clicks the
centre of its box. How an element is named:

1. quoted text (``click the "Save" button``): elements whose text equals it (ignoring case and
   spacing), else elements whose text contains it;
2. otherwise the longest element text that appears in the instruction as whole words
   (``Click on Night light`` finds "Night light");
3. a role word in the instruction (button, link, checkbox, text field, ...) and position words
   (top, bottom, left, right) narrow the matches down.

Nested matches that share a point (a button and the text label inside it) are one element:
the innermost box is used, whose centre lies inside all of them. Several separate elements
left → ``ambiguous``; none → ``not_found``; a screen without recorded elements, a step with no
instruction or an action that is not a pointer action → ``not_executable``. Never raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from curate.actions import Action, Target
from curate.executors.base import Execution, ProposedStep, StepContext
from curate.executors.registry import register
from curate.pipeline.instructions import position_words, quoted_phrases, role_word

POINTER_ACTIONS = frozenset({"click", "double_click", "right_click", "middle_click",
                             "long_press", "move"})
_ROLE_IN_TEXT = re.compile(
    r"\b(button|link|checkbox|radio button|text field|drop-down|list item|menu item|tab|"
    r"tree item|slider|switch|image|icon|search box|heading|cell|option)\b")
_POSITION = re.compile(r"\b(top|bottom|left|right|middle)\b")
_SPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    return _SPACE.sub(" ", text).strip().casefold()


class A11yExecutor:
    """Grounds step instructions on recorded elements; see the module docstring."""

    name = "a11y"
    needs_screenshot = False  # curate execute skips loading frames for it
    version = 1  # bump when matching changes: curate execute re-runs stamped batches

    def execute(self, context: StepContext, proposed: ProposedStep) -> Execution:
        kind = proposed.action_type
        if kind not in POINTER_ACTIONS:
            return self._outcome("not_executable", f"a11y grounds pointer actions "
                                 f"({', '.join(sorted(POINTER_ACTIONS))}), not {kind}")
        if not proposed.step_instruction:
            return self._outcome("not_executable", "the step has no step instruction")
        if not context.elements:
            return self._outcome("not_executable",
                                 "the source recorded no screen elements for this step")
        instruction = _fold(proposed.step_instruction)
        matches, how = _named(instruction, proposed.step_instruction, context.elements)
        if not matches:
            return self._outcome("not_found", f"no element of {len(context.elements)} is {how}")
        matches = _narrow(matches, instruction)
        groups = _groups(matches)
        if len(groups) > 1:
            shown = "; ".join(_describe(group[0]) for group in groups[:3])
            return self._outcome("ambiguous", f"{len(groups)} separate elements are {how}: "
                                 f"{shown}{' ...' if len(groups) > 3 else ''}")
        chosen = groups[0][0]
        x, y = _centre(chosen)
        target = Target(text=chosen.get("text"), role=chosen.get("role"), x0=chosen["x0"],
                        y0=chosen["y0"], x1=chosen["x1"], y1=chosen["y1"],
                        element_id=chosen.get("element_id"))
        executed = Action(type=kind, x=round(x, 4), y=round(y, 4), target=target,
                          coord_space="element")
        return Execution(executor=self.name, outcome="executed", executed=executed,
                         reason=f"{how}: {_describe(chosen)}",
                         provenance={"matched": len(matches), "elements": len(context.elements)})

    def execute_many(self, items: Sequence[tuple[StepContext, ProposedStep]]
                     ) -> list[Execution]:
        return [self.execute(context, proposed) for context, proposed in items]

    def _outcome(self, outcome: str, reason: str) -> Execution:
        return Execution(executor=self.name, outcome=outcome, reason=reason)


def _named(instruction: str, original: str, elements: Sequence[Mapping[str, Any]]
           ) -> tuple[list[Mapping[str, Any]], str]:
    """The elements the instruction names, and how they were found (for the reason)."""
    texts = [(_fold(e["text"]) if e.get("text") else "", e) for e in elements]
    for phrase in quoted_phrases(original):
        wanted = _fold(phrase)
        exact = [e for text, e in texts if text == wanted]
        if exact:
            return exact, f'named "{phrase}"'
        inside = [e for text, e in texts if wanted and wanted in text]
        if inside:
            return inside, f'containing "{phrase}"'
    if quoted_phrases(original):
        return [], f"named {', '.join(repr(p) for p in quoted_phrases(original))}"
    best: list[Mapping[str, Any]] = []
    best_length = 1  # single letters are too easily found in any sentence
    for text, element in texts:
        if len(text) < best_length or not _has_words(instruction, text):
            continue
        if len(text) > best_length:
            best, best_length = [element], len(text)
        else:
            best.append(element)
    if best:
        return best, "named in the instruction"
    # No text names an element: "click the checkbox at the top left" still names a role.
    roles = set(_ROLE_IN_TEXT.findall(instruction))
    if roles:
        return ([e for e in elements if role_word(e.get("role")) in roles],
                f"a {' or '.join(sorted(roles))}")
    return [], "named in the instruction (it names no element text or role)"


def _has_words(instruction: str, text: str) -> bool:
    start = instruction.find(text)
    while start >= 0:
        end = start + len(text)
        before = instruction[start - 1] if start else " "
        after = instruction[end] if end < len(instruction) else " "
        if not (before.isalnum() or after.isalnum()):
            return True
        start = instruction.find(text, start + 1)
    return False


def _narrow(matches: list[Mapping[str, Any]], instruction: str) -> list[Mapping[str, Any]]:
    roles = set(_ROLE_IN_TEXT.findall(instruction))
    if roles:
        with_role = [m for m in matches if role_word(m.get("role")) in roles]
        matches = with_role or matches
    words = set(_POSITION.findall(instruction))
    if words and len(matches) > 1:
        placed = [m for m in matches if words <= set(position_words(*_centre(m)).split())]
        matches = placed or matches
    return matches


def _groups(matches: list[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Matches grouped by nesting: each group's first element is its innermost box, and every
    other member's box contains that element's centre."""
    ordered = sorted(matches, key=_area)
    groups: list[list[Mapping[str, Any]]] = []
    for element in ordered:
        for group in groups:
            if _contains(element, *_centre(group[0])):
                group.append(element)
                break
        else:
            groups.append([element])
    return groups


def _centre(element: Mapping[str, Any]) -> tuple[float, float]:
    return (element["x0"] + element["x1"]) / 2, (element["y0"] + element["y1"]) / 2


def _area(element: Mapping[str, Any]) -> float:
    return float((element["x1"] - element["x0"]) * (element["y1"] - element["y0"]))


def _contains(element: Mapping[str, Any], x: float, y: float) -> bool:
    return bool(element["x0"] <= x <= element["x1"] and element["y0"] <= y <= element["y1"])


def _describe(element: Mapping[str, Any]) -> str:
    x, y = _centre(element)
    return f"{element.get('role') or 'element'} {element.get('text')!r} at ({x:.3f}, {y:.3f})"


def _factory(*, concurrency: int | None = None) -> A11yExecutor:
    del concurrency  # microseconds per step: nothing to run concurrently
    return A11yExecutor()


register("a11y", _factory)
