"""The a11y executor grounds step instructions on the screen elements the source recorded."""

from __future__ import annotations

from typing import Any

import pytest

from curate.executors.a11y import A11yExecutor
from curate.executors.base import ProposedStep, StepContext
from curate.executors.registry import get_executor


def _element(text: str | None, role: str, box: tuple[float, float, float, float],
             element_id: str | None = None) -> dict[str, Any]:
    x0, y0, x1, y1 = box
    return {"text": text, "role": role, "x0": x0, "y0": y0, "x1": x1, "y1": y1,
            "element_id": element_id}


SCREEN = [
    _element("Save", "ButtonControl", (0.1, 0.1, 0.2, 0.15), "save"),
    _element("Save", "TextControl", (0.11, 0.11, 0.19, 0.14)),  # the button's own label
    _element("Save as", "ButtonControl", (0.3, 0.1, 0.4, 0.15)),
    _element("OK", "ButtonControl", (0.1, 0.8, 0.2, 0.85)),
    _element("OK", "ButtonControl", (0.8, 0.8, 0.9, 0.85)),
    _element(None, "CheckBoxControl", (0.5, 0.5, 0.52, 0.52)),
]


def run(instruction: str | None, kind: str = "click", elements: list[dict[str, Any]] = SCREEN):
    context = StepContext(episode_id="e", step_index=0, platform="desktop", elements=elements)
    return A11yExecutor().execute(context, ProposedStep(action_type=kind,
                                                        step_instruction=instruction))


def test_a_quoted_name_is_clicked_at_the_innermost_box_centre() -> None:
    result = run('click the "Save" button at the top left')
    assert result.outcome == "executed" and result.success
    assert result.executed is not None
    assert (result.executed.type, result.executed.x, result.executed.y) == ("click", 0.15, 0.125)
    assert result.executed.target is not None and result.executed.target.text == "Save"
    assert result.executed.coord_space == "element"


def test_an_unquoted_instruction_finds_the_longest_element_text_in_it() -> None:
    result = run("Click on Save as to keep a copy", kind="double_click")
    assert result.outcome == "executed"
    assert result.executed is not None and result.executed.type == "double_click"
    assert result.executed.x == pytest.approx(0.35)


def test_two_separate_matches_are_ambiguous_until_a_position_word_decides() -> None:
    ambiguous = run('click "OK"')
    assert ambiguous.outcome == "ambiguous" and ambiguous.executed is None
    assert "2 separate elements" in ambiguous.reason
    placed = run('click the "OK" button at the bottom right')
    assert placed.outcome == "executed" and placed.executed is not None
    assert placed.executed.x == pytest.approx(0.85)


def test_a_role_and_position_find_an_element_without_text() -> None:
    result = run("click the checkbox in the middle")
    assert result.outcome == "executed" and result.executed is not None
    assert result.executed.x == pytest.approx(0.51)


def test_a_name_not_on_screen_is_not_found() -> None:
    result = run('click the "Delete" button')
    assert result.outcome == "not_found"
    assert "'Delete'" in result.reason


def test_steps_it_cannot_carry_out_are_outcomes_with_reasons() -> None:
    assert run("press ctrl+s", kind="key").outcome == "not_executable"
    assert "not key" in run("press ctrl+s", kind="key").reason
    assert run(None).reason == "the step has no step instruction"
    no_elements = run('click "Save"', elements=[])
    assert no_elements.outcome == "not_executable"
    assert "no screen elements" in no_elements.reason


def test_the_registry_builds_it_by_name() -> None:
    executor = get_executor("a11y", concurrency=4)
    assert executor.name == "a11y"
    context = StepContext(episode_id="e", step_index=0, platform="web", elements=SCREEN)
    [result] = executor.execute_many([(context, ProposedStep("click", '"Save as"'))])
    assert result.outcome == "executed"
