"""TraceR1's answer text: curate's reference steps written out and model answers read back."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from curate.rewards.tracer1 import (
    TraceStep,
    curate_type,
    format_answer,
    parse_answer,
    steps_from_actions,
    tracer1_type,
)


def test_a_reference_is_written_in_the_authors_step_format() -> None:
    steps = steps_from_actions(["click", "type", "done"],
                               ["click on Search", "type 'cheap flights' in the box", None],
                               ["search bar open", "query typed", None], complete=False)
    text = format_answer(steps)
    assert text.splitlines() == [
        'Step 1: "screenshot_abstraction": "search bar open", "action": {"action_type": '
        '"click", "step_instruction": "click on Search"}, "status": "not done"',
        'Step 2: "screenshot_abstraction": "query typed", "action": {"action_type": '
        '"input_text", "step_instruction": "type \'cheap flights\' in the box"}, '
        '"status": "done"',
    ]


def test_curate_types_map_to_the_published_vocabulary_and_back() -> None:
    assert [tracer1_type(t) for t in ("type", "home", "back", "swipe", "key")] == [
        "input_text", "navigate_home", "navigate_back", "scroll", "key"]
    assert [curate_type(t) for t in ("input_text", "NAVIGATE_BACK", "double_click")] == [
        "type", "back", "double_click"]


def test_a_window_cut_by_the_horizon_has_no_done_step_unless_the_episode_ends() -> None:
    cut = steps_from_actions(["click", "scroll"], ["a", "b"], ["s1", "s2"], complete=False)
    assert [s.done for s in cut] == [False, False]
    ended = steps_from_actions(["click", "scroll"], ["a", "b"], ["s1", "s2"], complete=True)
    assert [s.done for s in ended] == [False, True]
    only_done = steps_from_actions(["done"], [None], [None], complete=True)
    assert only_done == [TraceStep("done", "", None, done=True)]


def test_texts_that_would_break_the_authors_reader_are_made_safe() -> None:
    text = format_answer([TraceStep("click", "press {OK}\nthen Step 2: go </answer>",
                                    "a {dialog}")])
    action = json.loads(text[text.index('"action": ') + 10:text.index(', "status"')])
    assert action["step_instruction"] == "press (OK) then step 2: go (/answer)"
    assert text.count("Step ") == 1
    assert parse_answer(text).steps[0].step.state == "a (dialog)"


def test_a_model_answer_is_read_inside_its_tags_and_each_step_reports_its_problems() -> None:
    answer = ('<think>plan</think><answer>Step 3: "screenshot_abstraction": "home", '
              '"action": {"action_type": "Click", "step_instruction": "tap Mail"}, '
              '"status": "not done"\nStep 4: "action": {"step_instruction": "x"}, '
              '"status": "maybe"</answer>')
    parsed = parse_answer(answer)
    assert parsed.ok and parsed.tags
    first, second = parsed.steps
    assert first.well_formed and first.step == TraceStep("click", "tap Mail", "home")
    assert second.problem == ("no screenshot_abstraction string; the action has no "
                              "action_type; status is not 'done' or 'not done'")
    assert parsed.readable == [first.step]


def test_garbage_never_raises_and_says_why() -> None:
    assert parse_answer(None).reason == "expected text, got NoneType"
    assert parse_answer("I would click").reason == "no 'Step k:' in the answer"
    broken = parse_answer('Step 1: "action": {"action_type": "click", "step_inst')
    assert broken.steps[0].problem.startswith("no screenshot_abstraction string; no readable")
    long = "\n".join(f'Step {i}: "action": {{"action_type": "wait"}}' for i in range(1000))
    assert parse_answer(long).reason == "1000 steps: more than the 100 read"
    unclosed = parse_answer('<think>x</think><answer>Step 1: "screenshot_abstraction": "s", '
                            '"action": {"action_type": "wait", "step_instruction": "w"}, '
                            '"status": "done"')
    assert unclosed.ok and not unclosed.tags and unclosed.steps[0].step.done


_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(
    ["<answer>", "x</answer>", "Step 2: y", "{a}", '"q"', "back\\slash"])
_steps = st.lists(st.builds(TraceStep, st.sampled_from(["click", "input_text", "scroll", "key"]),
                            _texts, _texts, st.booleans()), min_size=1, max_size=8)


@given(_steps)
def test_every_formatted_answer_reads_back_as_its_safe_form(steps: list[TraceStep]) -> None:
    parsed = parse_answer(format_answer(steps))
    assert parsed.ok and all(step.well_formed for step in parsed.steps)
    got = [step.step for step in parsed.steps]
    assert [s.action_type for s in got] == [s.action_type for s in steps]
    assert [s.done for s in got] == [s.done for s in steps]
    assert got == parse_answer(format_answer(got)).readable  # safe form is a fixed point
