"""Rewards that cannot be gamed: no answer that is not the reference scores like it, or above it."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from curate.actions import Action, Target, format_action_text
from curate.actions.pyautogui import parse_pyautogui
from curate.rewards import PRESETS, make_ground_truth, score_response, score_step
from curate.rewards.parse import parse_prediction


def text_of(actions: list[Action]) -> str:
    return "<think>t</think><answer>" + "\n".join(map(format_action_text, actions)) + "</answer>"


def box(x0: float, y0: float, side: float, text: str) -> Target:
    return Target(x0=x0, y0=y0, x1=x0 + side, y1=y0 + side, text=text)


# Two small buttons side by side: each centre is 0.04 from the other's, inside every preset's
# distance tolerance (0.05 by default, 0.14 for AITW), but inside the other button.
SAVE = Action("click", x=0.415, y=0.415, target=box(0.40, 0.40, 0.03, "Save"))
DELETE = Action("click", x=0.455, y=0.415, target=box(0.44, 0.40, 0.03, "Delete"))


def test_reversed_clicks_on_two_nearby_elements_never_score_full_credit() -> None:
    for preset in sorted(PRESETS):
        truth = make_ground_truth([SAVE, DELETE], preset=preset, coords="norm")
        right = score_response(text_of([SAVE, DELETE]), truth)
        reversed_ = score_response(text_of([DELETE, SAVE]), truth)
        assert right.accuracy == 1.0, (preset, right.reason)
        assert reversed_.accuracy < 0.5, (preset, reversed_.reason)


def test_a_near_miss_in_empty_space_keeps_its_distance_credit() -> None:
    near = Action("click", x=0.415, y=0.44)  # below Save, inside no recorded element
    assert score_step(near, SAVE, elements=[SAVE.target, DELETE.target]).score == 1.0  # type: ignore[list-item]
    assert score_step(Action("click", x=0.455, y=0.415), SAVE,
                      elements=[DELETE.target]).score == 0.0  # type: ignore[list-item]


def test_a_container_of_the_target_is_not_another_element() -> None:
    dialog = Target(x0=0.3, y0=0.3, x1=0.7, y1=0.7, text="dialog")
    near = Action("click", x=0.415, y=0.44)
    assert score_step(near, SAVE, elements=[dialog]).score == 1.0


def test_elements_recorded_in_the_ground_truth_count_for_single_steps() -> None:
    truth = make_ground_truth([SAVE], elements=[DELETE.target])  # type: ignore[list-item]
    assert score_response("click(x=0.455, y=0.415)", truth).score == 0.0
    assert score_response("click(x=0.415, y=0.415)", truth).score == 1.0


def test_actions_after_a_final_answer_are_penalised_like_actions_after_done() -> None:
    more = Action("click", x=0.5, y=0.5)
    after_done = score_response(text_of([Action("done"), more]),
                                make_ground_truth([Action("done")], horizon=2))
    after_answer = score_response(text_of([Action("answer", text="42"), more]),
                                  make_ground_truth([Action("answer", text="42")], horizon=2))
    assert after_done.score < 1.0
    assert after_answer.score == after_done.score
    assert after_answer.trajectory is not None
    assert after_answer.trajectory.contradictions == ("step 1: click after answer at step 0",)
    closing = score_response(text_of([Action("answer", text="42"), Action("done")]),
                             make_ground_truth([Action("answer", text="42")], horizon=2))
    assert closing.score == 1.0  # answering, then saying done, is no contradiction


SOURCE_CODE = ("import pyautogui\npyautogui.moveTo(640, 360)\npyautogui.click()\n"
               "pyautogui.moveTo(100, 50, duration=0.5)")


def _normalised(actions: list[Action]) -> list[Action]:
    return [replace(a, x=a.px / 1280 if a.px is not None else None,
                    y=a.py / 720 if a.py is not None else None) for a in actions]


def test_the_sources_own_pyautogui_scores_like_curates_text_of_the_same_actions() -> None:
    reference = _normalised(parse_pyautogui(SOURCE_CODE).actions)  # as the OSWorld adapter reads it
    assert [a.type for a in reference] == ["move", "click", "move"]
    truth = make_ground_truth(reference, image_size=(1280, 720))
    as_text = score_response("\n".join(map(format_action_text, reference)), truth)
    as_code = score_response(SOURCE_CODE, truth)
    assert as_text.score == 1.0
    assert as_code.score == as_text.score, as_code.reason


def test_an_aiming_move_is_still_one_click_when_the_reference_has_no_moves() -> None:
    truth = make_ground_truth([Action("click", x=0.5, y=0.5)], image_size=(1280, 720))
    assert score_response("pyautogui.moveTo(640, 360)\npyautogui.click()", truth).score == 1.0


def test_osworld_wait_done_and_fail_parse() -> None:
    for word, kind in (("WAIT", "wait"), ("DONE", "done"), ("FAIL", "fail")):
        parsed = parse_prediction(word)
        assert parsed.ok and [a.type for a in parsed.actions] == [kind], parsed.reason
    mixed = parse_prediction("pyautogui.click(640, 360)\nWAIT\npyautogui.click()\nDONE",
                             image_size=(1280, 720))
    assert [(a.type, a.x) for a in mixed.actions] == [("click", 0.5), ("wait", None),
                                                      ("click", 0.5), ("done", None)]


# -- no perturbation of a reference ever scores above it ------------------------------------------

# Positions 0.04 apart and buttons 0.03 wide: neighbours are within every distance tolerance
# of each other, yet each click lands in one button only.
spot_x = st.sampled_from([0.415, 0.455, 0.7])
spot_y = st.sampled_from([0.415, 0.7])
SIDE = 0.03


@st.composite
def steps(draw: st.DrawFn) -> Action:
    kind = draw(st.sampled_from(["click", "click", "click", "type", "key", "scroll", "wait",
                                 "answer"]))
    if kind == "click":
        x, y = draw(spot_x), draw(spot_y)
        return Action("click", x=x, y=y, target=Target(x0=x - SIDE / 2, y0=y - SIDE / 2,
                                                       x1=x + SIDE / 2, y1=y + SIDE / 2))
    if kind in ("type", "answer"):
        return Action(kind, text=draw(st.sampled_from(["cheap flights", "Ada", "42", "hello"])))
    if kind == "key":
        return Action("key", keys=(draw(st.sampled_from(["enter", "ctrl+c", "tab"])),))
    if kind == "scroll":
        return Action("scroll", direction=draw(st.sampled_from(["up", "down"])))
    return Action(kind)


def same_step(predicted: Action, reference: Action, preset: str) -> bool:
    """The same step: a click in the same element, or full credit for anything else."""
    if reference.type == "click" and reference.target is not None:
        return (predicted.type == "click" and predicted.x is not None and predicted.y is not None
                and reference.target.contains(predicted.x, predicted.y))
    return score_step(predicted, reference, preset=preset).score == 1.0


def perturb(reference: list[Action], how: str, rng: random.Random) -> list[Action]:
    if how == "shuffled":
        out = reference[:]
        rng.shuffle(out)
        return out
    if how == "reversed":
        return reference[::-1]
    if how == "truncated":
        return reference[:rng.randrange(len(reference))]
    if how == "padded":
        extra = rng.choice([Action("wait"), reference[-1], Action("click", x=0.5, y=0.5)])
        return reference + [extra] * rng.randint(1, 3)
    if how == "retyped":
        index = rng.randrange(len(reference))
        kinds = {"click": "double_click", "type": "answer", "answer": "type", "key": "type",
                 "scroll": "swipe", "wait": "done"}
        changed = replace(reference[index], type=kinds.get(reference[index].type, "wait"))
        return [*reference[:index], changed, *reference[index + 1:]]
    # moved clicks: every click shifted by up to 0.2 in each direction
    return [replace(a, x=min(1.0, max(0.0, a.x + rng.uniform(-0.2, 0.2))),
                    y=min(1.0, max(0.0, a.y + rng.uniform(-0.2, 0.2))))
            if a.type == "click" and a.x is not None and a.y is not None else a
            for a in reference]


HOW = ["shuffled", "reversed", "truncated", "padded", "retyped", "moved clicks"]


@settings(max_examples=200, deadline=None)
@example([SAVE, DELETE], "default", "reversed", 0)
@given(st.lists(steps(), min_size=1, max_size=5), st.sampled_from(sorted(PRESETS)),
       st.sampled_from(HOW), st.integers(0, 2**16))
def test_no_perturbation_of_a_reference_scores_above_it(reference: list[Action], preset: str,
                                                       how: str, seed: int) -> None:
    truth = make_ground_truth(reference, preset=preset, coords="norm")
    best = score_response(text_of(reference), truth)
    perturbed = perturb(reference, how, random.Random(seed))
    got = score_response(text_of(perturbed) if perturbed else "<think>t</think><answer></answer>",
                         truth)
    assert best.score == 1.0, best.reason
    assert got.score <= best.score, (how, got.reason)
    same = len(perturbed) == len(reference) and all(
        same_step(p, r, preset) for p, r in zip(perturbed, reference, strict=True))
    if how != "moved clicks" and not same:  # a moved click may stay within the tolerance
        assert got.score < best.score, (how, got.reason)
