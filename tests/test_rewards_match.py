"""Step matching: the published rules reproduced, and properties a reward must keep."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curate.actions import ACTION_TYPES, Action, Target, canonical_json
from curate.rewards import PRESETS, MatchPreset, get_preset, key_set, score_step, text_similarity
from curate.rewards.match import (
    _SCORERS,
    FAMILIES,
    TYPE_ONLY,
    direction_of,
    levenshtein,
    normalise_url,
)

unit = st.floats(0, 1, allow_nan=False)
words = st.text(alphabet="abcdefgh XYZ.,", max_size=20)


@st.composite
def targets(draw: st.DrawFn) -> Target | None:
    if not draw(st.booleans()):
        return None
    x0, x1 = sorted((draw(unit), draw(unit)))
    y0, y1 = sorted((draw(unit), draw(unit)))
    return Target(x0=x0, y0=y0, x1=x1, y1=y1)


@st.composite
def actions(draw: st.DrawFn) -> Action:
    """Valid actions of every type with the arguments that type is scored on."""
    kind = draw(st.sampled_from(sorted(ACTION_TYPES)))
    family = FAMILIES.get(kind)
    values: dict[str, object] = {}
    if family in ("point", "path"):
        values.update(x=draw(unit), y=draw(unit), target=draw(targets()))
    if family == "path":
        values.update(x2=draw(unit), y2=draw(unit))
    if kind in ("scroll", "swipe"):
        values["direction"] = draw(st.sampled_from(["up", "down", "left", "right"]))
    if family == "text":
        values["text"] = draw(words)
    if kind == "key":
        values["keys"] = tuple(draw(st.lists(st.sampled_from(
            ["ctrl", "control", "shift", "alt", "cmd", "a", "enter", "f5"]), min_size=1,
            max_size=3)))
    if kind == "open_app":
        values["app"] = draw(words)
    if kind == "navigate":
        values["url"] = draw(st.sampled_from(["https://a.com/x", "b.org", "http://www.c.net/"]))
    if kind == "tool_call":
        values["tool_name"] = draw(st.sampled_from(["search", "open"]))
        values["tool_args"] = canonical_json(draw(st.dictionaries(
            st.sampled_from(["q", "n", "flag"]),
            st.one_of(words, st.integers(-5, 5), st.booleans()), max_size=3)))
    return Action(kind, **values)  # type: ignore[arg-type]


def click(x: float, y: float, target: Target | None = None) -> Action:
    return Action("click", x=x, y=y, target=target)


# -- every action against itself, every score in range ------------------------------------------

@pytest.mark.parametrize("name", sorted(PRESETS))
@given(action=actions())
def test_reference_scores_one_against_itself(name: str, action: Action) -> None:
    result = score_step(action, action, preset=name, image_size=(1280, 720))
    assert result.score == 1.0, result.reason
    assert result.type_match


@given(actions(), actions(), st.sampled_from(sorted(PRESETS)))
def test_scores_stay_in_unit_interval(predicted: Action, reference: Action, name: str) -> None:
    result = score_step(predicted, reference, preset=name)
    assert 0.0 <= result.score <= 1.0
    assert isinstance(result.reason, str) and result.reason


@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True),
       st.sampled_from(sorted(PRESETS)))
def test_odd_coordinates_give_a_score_in_range(x: float, y: float, name: str) -> None:
    result = score_step(click(x, y), click(0.5, 0.5, Target(x0=0.4, y0=0.4, x1=0.6, y1=0.6)),
                        preset=name)
    assert 0.0 <= result.score <= 1.0


def test_every_action_type_has_a_scorer() -> None:
    assert set(_SCORERS) == ACTION_TYPES
    assert set(FAMILIES) | TYPE_ONLY == ACTION_TYPES


# -- perturbations score strictly lower ---------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PRESETS))
def test_wrong_type_scores_lower(name: str) -> None:
    reference = click(0.5, 0.5)
    assert score_step(Action("type", text="hi"), reference, preset=name).score == 0.0
    assert not score_step(Action("type", text="hi"), reference, preset=name).type_match


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_click_outside_box_and_beyond_threshold_scores_lower(name: str) -> None:
    box = Target(x0=0.45, y0=0.45, x1=0.55, y1=0.55)
    reference = click(0.5, 0.5, box)
    assert score_step(click(0.5, 0.5), reference, preset=name).score == 1.0
    far = score_step(click(0.95, 0.95), reference, preset=name)
    assert far.score < 1.0
    assert "from the reference point" in far.reason


@pytest.mark.parametrize("name", sorted(PRESETS))
@given(angle=st.floats(0, 2 * math.pi), near=st.floats(0, 0.7), extra=st.floats(0, 0.7))
def test_credit_never_grows_with_distance(name: str, angle: float, near: float,
                                          extra: float) -> None:
    reference = click(0.5, 0.5)
    far = near + extra

    def at(distance: float) -> float:
        point = click(0.5 + distance * math.cos(angle), 0.5 + distance * math.sin(angle))
        return score_step(point, reference, preset=name, image_size=(1920, 1080)).score

    assert at(near) >= at(far)


# -- AITW / AndroidControl / OS-Atlas --------------------------------------------------------------

def test_aitw_click_within_fourteen_percent_counts() -> None:
    reference = click(0.5, 0.5)
    assert score_step(click(0.63, 0.5), reference, preset="aitw").score == 1.0
    assert score_step(click(0.5, 0.5 + 0.14), reference, preset="aitw").score == 1.0
    assert score_step(click(0.65, 0.5), reference, preset="aitw").score == 0.0
    diagonal = 0.15 / math.sqrt(2)
    assert score_step(click(0.5 + diagonal, 0.5 + diagonal), reference, preset="aitw").score == 0


def test_aitw_accepts_the_enlarged_target_box() -> None:
    # A 0.1-wide box grown by 1.4 of its size spans 0.45-0.05*1.4 .. 0.55+0.07 = 0.38 .. 0.62.
    box = Target(x0=0.45, y0=0.1, x1=0.55, y1=0.2)
    reference = click(0.5, 0.15, box)
    assert score_step(click(0.61, 0.15), reference, preset="aitw").score == 1.0  # 0.11 away
    far_in_box = click(0.5, 0.15, Target(x0=0.1, y0=0.1, x1=0.9, y1=0.2))
    assert score_step(click(0.85, 0.15), far_in_box, preset="aitw").score == 1.0  # 0.35 away
    assert score_step(click(0.85, 0.15), reference, preset="aitw").score == 0.0


def test_aitw_short_swipe_is_a_tap() -> None:
    reference = click(0.5, 0.5)
    short = Action("swipe", x=0.5, y=0.5, x2=0.52, y2=0.53)  # 0.036 of the screen
    long = Action("swipe", x=0.5, y=0.5, x2=0.5, y2=0.9)
    assert score_step(short, reference, preset="aitw").score == 1.0
    assert score_step(long, reference, preset="aitw").score == 0.0
    assert score_step(short, reference, preset="default").score == 0.0  # no such rule


def test_aitw_swipe_by_primary_axis() -> None:
    reference = Action("swipe", x=0.5, y=0.8, x2=0.5, y2=0.2)  # finger moves up
    slanted = Action("swipe", x=0.3, y=0.9, x2=0.45, y2=0.3)
    assert direction_of(slanted) == "up"
    assert score_step(slanted, reference, preset="aitw").score == 1.0
    assert score_step(Action("swipe", direction="up"), reference, preset="aitw").score == 1.0
    assert score_step(Action("swipe", direction="left"), reference, preset="aitw").score == 0.0
    # AITW compares only the main axis of two swipes: the opposite direction still matches.
    assert score_step(Action("swipe", direction="down"), reference, preset="aitw").score == 1.0
    assert score_step(Action("swipe", direction="down"), reference, preset="default").score == 0


def test_aitw_text_needs_token_f1_above_one_half() -> None:
    reference = Action("type", text="a c")
    assert score_step(Action("type", text="a b"), reference, preset="aitw").score == 0.0  # 0.5
    assert score_step(Action("type", text="a b"), reference, preset="gui_r1").score == 1.0
    assert score_step(Action("type", text="A, c d"), reference, preset="aitw").score == 1.0


def test_gui_odyssey_uses_anls() -> None:
    reference = Action("type", text="hello")
    assert score_step(Action("type", text="hallo"), reference, preset="gui_odyssey").score == 1
    assert text_similarity("abcd", "abxy", "anls") == 0.0  # edit similarity 0.5 is cut to 0
    assert score_step(Action("type", text="help!!"), reference, preset="gui_odyssey").score == 0
    assert score_step(Action("type", text="Helo"), reference, preset="gui_odyssey").score == 1
    assert score_step(Action("type", text="world"), reference, preset="gui_odyssey").score == 0


# -- GUI-R1 ---------------------------------------------------------------------------------------

def test_gui_r1_click_within_140_of_1000() -> None:
    reference = click(0.5, 0.5)
    assert score_step(click(0.639, 0.5), reference, preset="gui_r1").score == 1.0
    assert score_step(click(0.641, 0.5), reference, preset="gui_r1").score == 0.0
    inside = click(0.5, 0.5, Target(x0=0.0, y0=0.4, x1=1.0, y1=0.6))
    assert score_step(click(0.95, 0.5), inside, preset="gui_r1").score == 1.0


def test_gui_r1_treats_scroll_and_swipe_alike_and_f1_substrings() -> None:
    assert score_step(Action("scroll", direction="down"), Action("swipe", direction="down"),
                      preset="gui_r1").score == 1.0
    assert score_step(Action("scroll", direction="down"), Action("swipe", direction="down"),
                      preset="default").score == 0.0
    assert score_step(Action("open_app", app="Settings"), Action("open_app", app="settings app"),
                      preset="gui_r1").score == 1.0
    assert score_step(Action("type", text="wifi"), Action("type", text="wifi5g"),
                      preset="gui_r1").score == 1.0


# -- AgentNetBench --------------------------------------------------------------------------------

def test_agentnet_distance_decay_values() -> None:
    threshold = 0.01 * math.sqrt(2)
    reference = click(0.5, 0.5)
    assert score_step(click(0.5 + threshold, 0.5), reference, preset="agentnet").score == 1.0
    decayed = score_step(click(0.5 + threshold + 0.01, 0.5), reference, preset="agentnet")
    assert decayed.score == pytest.approx(math.exp(-1.2), rel=1e-9)  # 0.3012
    assert decayed.detail["distance"] == pytest.approx(threshold + 0.01)
    boxed = click(0.5, 0.5, Target(x0=0.4, y0=0.4, x1=0.9, y1=0.6))
    assert score_step(click(0.85, 0.5), boxed, preset="agentnet").score == 1.0


def test_agentnet_text_edit_similarity_with_scaled_credit() -> None:
    reference = Action("type", text="abcdefghij")
    nine = Action("type", text="abcdefghiX")  # similarity 0.9: passes 0.8
    assert score_step(nine, reference, preset="agentnet").score == 1.0
    six = Action("type", text="abcdefXXXX")  # similarity 0.6: credit 0.6 / 0.8
    assert score_step(six, reference, preset="agentnet").score == pytest.approx(0.75)


def test_agentnet_keys_and_scroll() -> None:
    chord = Action("key", keys=("ctrl", "shift", "t"))
    assert score_step(Action("key", keys=("T", "Shift", "Control")), chord,
                      preset="agentnet").score == 1.0
    assert score_step(Action("key", keys=("ctrl", "t")), chord, preset="agentnet").score == 0.0
    # AgentNetBench scores a scroll by its type only; the other presets check the direction.
    down, up = Action("scroll", direction="down"), Action("scroll", direction="up")
    assert score_step(up, down, preset="agentnet").score == 1.0
    assert score_step(up, down, preset="default").score == 0.0


def test_agentnet_type_mismatch_factor() -> None:
    reference = click(0.5, 0.5)
    near_type = Action("double_click", x=0.5, y=0.5)
    assert score_step(near_type, reference, preset="agentnet").score == 0.0
    soft = score_step(near_type, reference, preset="agentnet_soft")
    assert soft.score == pytest.approx(0.2)
    assert not soft.type_match
    off = Action("double_click", x=0.5 + 0.01 * math.sqrt(2) + 0.01, y=0.5)
    assert score_step(off, reference, preset="agentnet_soft").score == pytest.approx(
        0.2 * math.exp(-1.2))
    assert score_step(Action("type", text="x"), reference, preset="agentnet_soft").score == 0.0
    assert score_step(Action("wait"), Action("done"), preset="agentnet_soft").score == 0.0


def test_alternative_ground_truths_take_the_best() -> None:
    options = [click(0.1, 0.1), Action("key", keys=("enter",))]
    result = score_step(Action("key", keys=("return",)), options, preset="agentnet")
    assert result.score == 1.0
    assert result.detail["alternative"] == 1
    assert score_step(click(0.5, 0.5), [], preset="agentnet").score == 0.0


# -- the default preset ---------------------------------------------------------------------------

def test_default_distance_is_isotropic_with_an_image_size() -> None:
    reference = click(0.5, 0.5)
    sideways, downwards = click(0.56, 0.5), click(0.5, 0.56)
    wide = (2000, 1000)
    assert score_step(sideways, reference).score == score_step(downwards, reference).score
    assert score_step(sideways, reference, image_size=wide).score < score_step(
        downwards, reference, image_size=wide).score
    # On a square screen the isotropic distance is the normalised one.
    square = score_step(sideways, reference, image_size=(800, 800))
    assert square.detail["distance"] == pytest.approx(0.06)


def test_default_gives_partial_credit_for_text_and_position() -> None:
    typed = score_step(Action("type", text="hello wrld"), Action("type", text="hello world"))
    assert typed.score == 1.0  # similarity 0.91 passes 0.8
    partial = score_step(Action("type", text="help"), Action("type", text="hello world"))
    assert 0.0 < partial.score < 1.0
    near = score_step(click(0.58, 0.5), click(0.5, 0.5)).score
    assert 0.0 < near < 1.0


def test_reference_without_position_is_type_only_and_missing_prediction_scores_zero() -> None:
    assert score_step(click(0.2, 0.2), Action("click")).score == 1.0
    assert score_step(Action("click"), click(0.2, 0.2)).score == 0.0
    box_only = Action("click", target=Target(x0=0.1, y0=0.1, x1=0.2, y1=0.2))
    assert score_step(click(0.15, 0.15), box_only).score == 1.0
    assert score_step(click(0.35, 0.15), box_only).score < 1.0  # scored from the box centre


def test_drag_needs_both_ends() -> None:
    reference = Action("drag", x=0.1, y=0.1, x2=0.8, y2=0.8)
    assert score_step(reference, reference).score == 1.0
    wrong_end = Action("drag", x=0.1, y=0.1, x2=0.1, y2=0.8)
    assert score_step(wrong_end, reference).score < 0.01
    assert score_step(wrong_end, reference, preset="agentnet").score == pytest.approx(0.5)


# -- keys, URLs, apps, tool calls ------------------------------------------------------------------

@pytest.mark.parametrize("left, right", [
    (("ctrl", "c"), ("Control", "C")),
    (("cmd", "v"), ("command", "v")),
    (("meta", "space"), ("win", " ")),
    (("ctrl+shift+t",), ("t", "shift", "ctrl")),
    (("return",), ("Enter",)),
    (("esc",), ("escape",)),
])
def test_key_aliases(left: tuple[str, ...], right: tuple[str, ...]) -> None:
    assert key_set(left) == key_set(right)
    assert score_step(Action("key", keys=left), Action("key", keys=right)).score == 1.0


@given(st.lists(st.sampled_from(["ctrl", "alt", "a", "b", "enter", "cmd"]), max_size=3),
       st.lists(st.sampled_from(["control", "alt", "A", "b", "return", "meta"]), max_size=3))
def test_key_match_is_symmetric(left: list[str], right: list[str]) -> None:
    one = score_step(Action("key", keys=tuple(left)), Action("key", keys=tuple(right))).score
    two = score_step(Action("key", keys=tuple(right)), Action("key", keys=tuple(left))).score
    assert one == two


@given(st.text(max_size=30), st.text(max_size=30),
       st.sampled_from(["token_f1", "anls", "edit", "exact"]), st.booleans())
def test_text_similarity_is_symmetric_and_bounded(a: str, b: str, metric: str,
                                                  substring: bool) -> None:
    one = text_similarity(a, b, metric, single_token_substring=substring)
    assert one == text_similarity(b, a, metric, single_token_substring=substring)
    assert 0.0 <= one <= 1.0
    assert text_similarity(a, a, metric) == 1.0


@given(st.text(max_size=15), st.text(max_size=15))
def test_levenshtein_is_a_metric_on_small_strings(a: str, b: str) -> None:
    assert levenshtein(a, b) == levenshtein(b, a)
    assert levenshtein(a, b) <= max(len(a), len(b))
    assert (levenshtein(a, b) == 0) == (a == b)


def test_urls_compare_without_case_scheme_www_or_trailing_slash() -> None:
    assert normalise_url("https://www.Example.com/Path/") == "example.com/path"
    reference = Action("navigate", url="example.com/path")
    assert score_step(Action("navigate", url="HTTP://example.com/path/"), reference).score == 1
    assert score_step(Action("navigate", url="example.com/other"), reference).score == 0


def test_apps_compare_by_name() -> None:
    assert score_step(Action("open_app", app="  Google  Chrome "),
                      Action("open_app", app="google chrome")).score == 1.0
    assert score_step(Action("open_app", app="Firefox"),
                      Action("open_app", app="google chrome")).score == 0.0


def test_tool_calls_by_name_and_arguments() -> None:
    def call(name: str, **arguments: object) -> Action:
        return Action("tool_call", tool_name=name, tool_args=canonical_json(arguments))

    reference = call("search", q="cheap flights", n=3)
    assert score_step(call("search", n=3, q="cheap flights"), reference).score == 1.0
    assert score_step(call("search", q="cheap flights", n=4), reference).score == 0.5
    assert score_step(call("lookup", q="cheap flights", n=3), reference).score == 0.0
    assert score_step(call("search"), reference).score == 0.0
    assert score_step(call("search", q="cheap flight", n=3), reference).score == 1.0


@pytest.mark.parametrize("kind", sorted(TYPE_ONLY))
def test_type_only_actions(kind: str) -> None:
    assert score_step(Action(kind), Action(kind)).score == 1.0
    other = "wait" if kind != "wait" else "done"
    assert score_step(Action(other), Action(kind)).score == 0.0


# -- presets --------------------------------------------------------------------------------------

def test_the_published_presets_are_registered() -> None:
    assert {"default", "aitw", "gui_odyssey", "gui_r1", "agentnet", "agentnet_soft"} <= set(
        PRESETS)
    assert get_preset("aitw").click_threshold == 0.14
    assert get_preset("gui_r1").format_weight == 0.2
    assert get_preset("agentnet").click_threshold == pytest.approx(0.0141421356)
    assert all(preset.source for preset in PRESETS.values())


def test_preset_lookup_and_validation() -> None:
    with pytest.raises(ValueError, match="unknown reward preset"):
        get_preset("nope")
    with pytest.raises(ValueError, match="text_metric"):
        MatchPreset(name="x", source="y", click_threshold=0.1, text_metric="bleu")
    with pytest.raises(ValueError, match="click_threshold"):
        MatchPreset(name="x", source="y", click_threshold=-1)
    custom = get_preset("aitw").with_changes(name="aitw_tight", click_threshold=0.05)
    assert score_step(click(0.6, 0.5), click(0.5, 0.5), preset=custom).score == 0.0


def test_image_size_garbage_is_ignored() -> None:
    reference = click(0.5, 0.5)
    assert score_step(click(0.52, 0.5), reference, image_size=(0, 0)).score == 1.0


def test_tool_argument_credit_is_the_same_in_every_process() -> None:
    # The mean over argument keys used to be summed in a set's order, which follows the
    # process's string hashing: the last bit moved between runs (three values over 12 seeds).
    import os
    import subprocess
    import sys

    program = (
        "import json\n"
        "from curate.actions import Action\n"
        "from curate.rewards import score_step\n"
        "p = {f'k{i}': 'abcdefghij'[: i % 9 + 1] + 'x' * i for i in range(12)}\n"
        "r = {f'k{i}': 'abcdefghij'[: 10 - i % 7] + 'y' * (i % 3) for i in range(12)}\n"
        "pred = Action(type='tool_call', tool_name='search', tool_args=json.dumps(p))\n"
        "ref = Action(type='tool_call', tool_name='search', tool_args=json.dumps(r))\n"
        "print(repr(score_step(pred, ref).score))\n"
    )
    scores = {
        subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                       check=True, env=dict(os.environ, PYTHONHASHSEED=str(seed))).stdout
        for seed in range(8)
    }
    assert len(scores) == 1, scores
