"""score_windows: score_trajectory's numbers for many windows at once, bit for bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.actions import Action, Target
from curate.rewards import PRESETS, score_trajectory
from curate.rewards.match import (
    POINT_TYPES,
    credit_scorer,
    score_step,
    step_scorer,
    zero_by_type,
)
from curate.rewards.pair_arrays import ActionArrays
from curate.rewards.presets import get_preset
from curate.rewards.trajectory import _is_repeat
from curate.rewards.windows import PairCache, score_windows

TYPES = ["click", "double_click", "type", "answer", "key", "scroll", "swipe", "drag", "wait",
         "back", "done", "fail", "tool_call", "navigate", "open_app"]
spot = st.sampled_from([0.1, 0.105, 0.5, 0.9])  # few values: repeats and near misses happen


@st.composite
def actions(draw: st.DrawFn) -> Action:
    kind = draw(st.sampled_from(TYPES))
    if kind in ("click", "double_click"):
        return Action(kind, x=draw(spot), y=draw(spot))
    if kind in ("swipe", "drag"):
        return Action(kind, x=draw(spot), y=draw(spot), x2=draw(spot), y2=draw(spot))
    if kind in ("type", "answer"):
        return Action(kind, text=draw(st.sampled_from(["hello", "help", "", "x y"])))
    if kind == "key":
        return Action(kind, keys=(draw(st.sampled_from(["enter", "ctrl", "a"])),))
    if kind == "scroll":
        return Action(kind, direction=draw(st.sampled_from(["up", "down"])))
    if kind == "tool_call":
        return Action(kind, tool_name="search",
                      tool_args=draw(st.sampled_from(['{"q": "1"}', '{"q": "12"}', "{}"])))
    if kind == "navigate":
        return Action(kind, url=draw(st.sampled_from(["a.com", "https://a.com/", "b.org"])))
    if kind == "open_app":
        return Action(kind, app=draw(st.sampled_from(["Mail", "Maps"])))
    return Action(kind)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Action], np.ndarray, np.ndarray, np.ndarray]:
    pool = draw(st.lists(actions(), min_size=1, max_size=8))
    horizon = draw(st.integers(1, 5))
    count = draw(st.integers(1, 10))
    index = st.integers(0, len(pool) - 1)
    shape = (count, horizon)
    predicted = np.array(draw(st.lists(index, min_size=count * horizon,
                                       max_size=count * horizon))).reshape(shape)
    reference = np.array(draw(st.lists(index, min_size=count * horizon,
                                       max_size=count * horizon))).reshape(shape)
    mask = np.array(draw(st.lists(st.booleans(), min_size=count * horizon,
                                  max_size=count * horizon))).reshape(shape)
    return pool, predicted, reference, mask


@settings(max_examples=300, deadline=None)
@given(batches(), st.sampled_from(sorted(PRESETS)), st.sampled_from([0.5, 0.9, 1.0]),
       st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 0.25]))
def test_every_window_scores_exactly_as_score_trajectory(
        batch: tuple[list[Action], np.ndarray, np.ndarray, np.ndarray], preset: str,
        discount: float, shift_decay: float, penalty: float) -> None:
    pool, predicted, reference, mask = batch
    options = {"preset": preset, "discount": discount, "shift_decay": shift_decay,
               "contradiction_penalty": penalty}
    got = score_windows(pool, predicted, reference, mask, **options)  # type: ignore[arg-type]
    expected = [score_trajectory([pool[i] for i in p], [pool[i] for i in r], mask=list(m),
                                 **options).score  # type: ignore[arg-type]
                for p, r, m in zip(predicted, reference, mask, strict=True)]
    assert got.tolist() == expected


@pytest.mark.parametrize("preset", sorted(PRESETS))
@given(first=actions(), second=actions())
def test_a_pair_skipped_for_its_types_would_have_scored_zero(preset: str, first: Action,
                                                             second: Action) -> None:
    if zero_by_type(first.type, second.type, get_preset(preset)):
        assert score_step(first, second, preset=preset).score == 0.0


def test_types_that_share_arguments_are_not_skipped() -> None:
    rules = get_preset("agentnet_soft")
    assert rules.type_mismatch_factor > 0
    assert not zero_by_type("double_click", "click", rules)
    assert zero_by_type("type", "click", rules)
    assert not zero_by_type("click", "click", rules)
    # A swipe whose ends nearly coincide is a tap in AITW's rules: never skipped there.
    assert not zero_by_type("swipe", "click", get_preset("aitw"))


def test_no_windows_and_bad_shapes() -> None:
    pool = [Action("wait")]
    empty = np.zeros((0, 3), dtype=np.int64)
    assert score_windows(pool, empty, empty, empty.astype(bool)).tolist() == []
    with pytest.raises(ValueError, match="one shape"):
        score_windows(pool, [[0, 0]], [[0]], [[True]])
    with pytest.raises(ValueError, match="outside the 1 actions"):
        score_windows(pool, [[1]], [[0]], [[True]])
    with pytest.raises(ValueError, match="discount"):
        score_windows(pool, [[0]], [[0]], [[True]], discount=0)


def test_actions_from_columns_equal_actions_from_rows() -> None:
    rows = [Action("click", x=0.1, y=0.2).to_row(),
            Action("key", keys=("ctrl", "a")).to_row(),
            {**Action("click", x=0.5, y=0.5).to_row(),
             "target": {"text": "OK", "role": "button", "x0": 0.4, "y0": 0.4, "x1": 0.6,
                        "y1": 0.6, "element_id": None}}]
    columns = {name: [row[name] for row in rows] for name in rows[0]}
    assert Action.from_columns(columns) == [Action.from_row(row) for row in rows]
    # Fields a table does not carry take their defaults.
    assert Action.from_columns({"type": ["wait"]}) == [Action("wait")]


def test_horizons_too_long_for_a_mask_key_score_the_same() -> None:
    pool = [Action("click", x=0.1, y=0.1), Action("wait"), Action("done")]
    horizon = 70
    predicted = np.array([[i % 3 for i in range(horizon)], [1] * horizon])
    reference = np.array([[(i + 1) % 3 for i in range(horizon)], [1] * horizon])
    mask = np.array([[i < 40 for i in range(horizon)], [True] * horizon])
    got = score_windows(pool, predicted, reference, mask)
    for w in range(2):
        assert got[w] == score_trajectory([pool[i] for i in predicted[w]],
                                          [pool[i] for i in reference[w]],
                                          mask=list(mask[w])).score


coordinate = st.one_of(st.none(), st.floats(0.0, 1.0), st.just(float("nan")))


@st.composite
def pointers(draw: st.DrawFn) -> Action:
    """Pointer actions with or without a position and a target box, as recorded."""
    target = None
    if draw(st.booleans()):
        x0, y0 = draw(st.floats(0.0, 0.9)), draw(st.floats(0.0, 0.9))
        target = Target(text=draw(st.sampled_from([None, "OK"])), x0=x0, y0=y0,
                        x1=x0 + draw(st.floats(0.0, 0.1)), y1=y0 + draw(st.floats(0.0, 0.1)))
    return Action(draw(st.sampled_from(sorted(POINT_TYPES))), x=draw(coordinate),
                  y=draw(coordinate), target=target)


@settings(max_examples=400, deadline=None)
@given(pointers(), st.one_of(pointers(), actions()), st.sampled_from(sorted(PRESETS)))
def test_the_credit_scorer_gives_the_step_scorers_number(predicted: Action, reference: Action,
                                                         preset: str) -> None:
    assert credit_scorer(preset)(predicted, reference) == step_scorer(preset)(
        predicted, reference).score
    assert credit_scorer(preset)(reference, predicted) == step_scorer(preset)(
        reference, predicted).score


@settings(max_examples=100, deadline=None)
@given(batches(), batches())
def test_a_cache_shared_between_calls_changes_no_score(
        one: tuple[list[Action], np.ndarray, np.ndarray, np.ndarray],
        two: tuple[list[Action], np.ndarray, np.ndarray, np.ndarray]) -> None:
    # Two calls over one pool of actions (the second batch's indices folded into the first
    # pool), as segment scores the horizons of a batch: the shared cache gives each call's
    # own numbers.
    pool = one[0]
    pairs = PairCache()
    for _, predicted, reference, mask in (one, two):
        predicted, reference = predicted % len(pool), reference % len(pool)
        alone = score_windows(pool, predicted, reference, mask)
        shared = score_windows(pool, predicted, reference, mask, pairs=pairs)
        assert shared.tolist() == alone.tolist()


# -- the array scorer (curate.rewards.pair_arrays) against the Python rules, pair by pair --

# 0.0 and 0.01 are SAME_POINT apart exactly, 0.01 and 0.06 the default click threshold.
edge = st.one_of(st.none(), st.floats(-0.5, 1.5), st.sampled_from(
    [0.0, -0.0, 0.01, 0.05, 0.06, 1.0, float("nan"), float("inf"), -float("inf")]))
words = st.one_of(st.none(), st.sampled_from(
    ["", " ", "OK", "ok ", "Ok\tgo", "İstanbul", "istanbul", "straße", "STRASSE", "e\u0301",
     "\u00e9", "日本語", "x\x00y", "  up ", "Down", "top", "LEFT", "ctrl+c", "Return"]),
    st.text(max_size=6))
tool_args = st.one_of(st.none(), st.sampled_from(
    ['{"q": "1"}', '{"q": "12"}', '{"q": "İ"}', "{}", '{"a": 1, "b": "x"}', '{"b": "x", "a": 1}',
     '{"a": NaN}', '{"a": [1, 2], "q": {"r": "s"}}', "not json", "", '"text"', "[1, 2]"]))
keys = st.lists(st.sampled_from(["ctrl", "Control", "c", "ctrl+c", "+", " ", "", "enter",
                                 "Return", "a\x00b", "SHIFT"]), max_size=3)


@st.composite
def boxes(draw: st.DrawFn) -> Target | None:
    if draw(st.booleans()):
        return None
    # Any edge may be missing (a box without all four edges is no box).
    return Target(text=draw(words), x0=draw(edge), y0=draw(edge), x1=draw(edge),
                  y1=draw(edge))


@st.composite
def any_actions(draw: st.DrawFn) -> Action:
    """Every field the rules read, with the values real recordings carry and the odd ones:
    NaN, infinite and missing coordinates, boxes missing an edge, empty and Unicode texts."""
    return Action(draw(st.sampled_from([*TYPES, "right_click", "move", "long_press", "home"])),
                  x=draw(edge), y=draw(edge), x2=draw(edge), y2=draw(edge), text=draw(words),
                  keys=tuple(draw(keys)), direction=draw(words), app=draw(words),
                  url=draw(st.one_of(words, st.sampled_from(["https://www.A.com/", "a.com"]))),
                  tool_name=draw(st.one_of(st.none(), st.sampled_from(
                      ["search", " Search ", "SEARCH", "get", ""]))),
                  tool_args=draw(tool_args), target=draw(boxes()))


@st.composite
def related_pools(draw: st.DrawFn) -> list[Action]:
    """Actions that differ from one another in a field or two: repeats and near misses."""
    base = draw(any_actions())
    changes = {"type": st.sampled_from(TYPES), "x": edge, "y": edge, "x2": edge, "y2": edge,
               "text": words, "keys": keys.map(tuple), "direction": words, "app": words,
               "url": words, "tool_name": st.sampled_from([None, "search", " Search "]),
               "tool_args": tool_args, "target": boxes()}
    pool = [base]
    for _ in range(draw(st.integers(1, 7))):
        fields = draw(st.lists(st.sampled_from(sorted(changes)), max_size=2))
        pool.append(replace(draw(st.sampled_from(pool)),
                            **{name: draw(changes[name]) for name in fields}))
    return pool


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(any_actions(), min_size=1, max_size=10), related_pools()),
       st.sampled_from(sorted(PRESETS)))
def test_array_credits_and_repeats_equal_the_python_rules(pool: list[Action],
                                                          preset: str) -> None:
    arrays = ActionArrays.of(pool)
    pairs = np.array([(p, r) for p in range(len(pool)) for r in range(len(pool))])
    credit = credit_scorer(preset)
    expected = [credit(pool[p], pool[r]) for p, r in pairs.tolist()]
    got = arrays.credits(pairs[:, 0], pairs[:, 1], get_preset(preset))
    # Bit for bit: the floats' bytes, so 0.0 and -0.0 or two NaNs would not pass as equal.
    assert got.tobytes() == np.array(expected, dtype=np.float64).tobytes()
    repeats = [_is_repeat(pool[a], pool[b]) for a, b in pairs.tolist()]
    assert arrays.repeats(pairs[:, 0], pairs[:, 1]).tolist() == repeats


@st.composite
def rich_batches(draw: st.DrawFn) -> tuple[list[Action], np.ndarray, np.ndarray, np.ndarray]:
    pool = draw(st.lists(any_actions(), min_size=1, max_size=8))
    horizon, count = draw(st.integers(1, 6)), draw(st.integers(1, 8))
    cells = count * horizon
    index = st.integers(0, len(pool) - 1)

    def grid(values: st.SearchStrategy[int] | st.SearchStrategy[bool]) -> np.ndarray:
        return np.array(draw(st.lists(values, min_size=cells, max_size=cells))).reshape(
            count, horizon)

    return pool, grid(index), grid(index), grid(st.booleans())


@settings(max_examples=200, deadline=None)
@given(rich_batches(), st.sampled_from(sorted(PRESETS)))
def test_windows_of_odd_actions_score_exactly_as_score_trajectory(
        batch: tuple[list[Action], np.ndarray, np.ndarray, np.ndarray], preset: str) -> None:
    pool, predicted, reference, mask = batch
    got = score_windows(pool, predicted, reference, mask, preset=preset)
    expected = [score_trajectory([pool[i] for i in p], [pool[i] for i in r], mask=list(m),
                                 preset=preset).score
                for p, r, m in zip(predicted, reference, mask, strict=True)]
    assert got.tobytes() == np.array(expected, dtype=np.float64).tobytes()


def test_arrays_from_an_arrow_column_equal_arrays_from_objects() -> None:
    # segment reads the actions as the steps table's struct column, with fields the rules
    # do not read and without some they do (an older store): the same codes either way.
    import pyarrow as pa

    pool = [Action("click", x=0.1, y=0.2, target=Target(x0=0.0, y0=0.1, x1=0.2, y1=0.3)),
            Action("tool_call", tool_name="Search", tool_args='{"q": "1"}'),
            Action("scroll", direction="Top"), Action("key", keys=("ctrl", "c"))]
    column = pa.array([action.to_row() for action in pool])
    from_column = ActionArrays.from_arrow(column, pool)
    from_objects = ActionArrays.of(pool)
    pairs = np.array([(p, r) for p in range(len(pool)) for r in range(len(pool))])
    for arrays in (from_column, from_objects):
        assert arrays.credits(pairs[:, 0], pairs[:, 1], get_preset("default")).tolist() == [
            credit_scorer("default")(pool[p], pool[r]) for p, r in pairs.tolist()]
    without_direction = pa.StructArray.from_arrays(
        [column.field(name) for name in ("type", "x", "y")], names=["type", "x", "y"])
    arrays = ActionArrays.from_arrow(without_direction, pool)
    assert arrays.codes["direction"].tolist()[2] == arrays.codes["direction"].tolist()[0]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_boundaries_fall_on_the_same_side_as_in_python(preset: str) -> None:
    # Exactly SAME_POINT apart is a repeat; exactly the click threshold away is within it
    # for inclusive presets only; a box edge is inside.
    rules = get_preset(preset)
    box = Target(x0=0.2, y0=0.2, x1=0.3, y1=0.3)
    pool = [Action("click", x=0.0, y=0.0), Action("click", x=0.01, y=0.01),
            Action("click", x=0.0, y=0.0101), Action("click", x=rules.click_threshold, y=0.0),
            Action("click", x=0.3, y=0.2), Action("click", x=0.25, y=0.25, target=box),
            Action("click", target=box)]
    arrays = ActionArrays.of(pool)
    pairs = np.array([(p, r) for p in range(len(pool)) for r in range(len(pool))])
    expected = [credit_scorer(preset)(pool[p], pool[r]) for p, r in pairs.tolist()]
    assert arrays.credits(pairs[:, 0], pairs[:, 1], rules).tolist() == expected
    repeats = [_is_repeat(pool[a], pool[b]) for a, b in pairs.tolist()]
    assert arrays.repeats(pairs[:, 0], pairs[:, 1]).tolist() == repeats
    assert repeats[1] and not repeats[2]  # (0, 0) -> (0.01, 0.01) repeats, -> 0.0101 not


@settings(max_examples=200, deadline=None)
@given(rich_batches(), st.data(), st.sampled_from(sorted(PRESETS)))
def test_windows_of_several_horizons_in_one_call_score_as_each_alone(
        batch: tuple[list[Action], np.ndarray, np.ndarray, np.ndarray], data: st.DataObject,
        preset: str) -> None:
    # segment scores `end` windows (one horizon per remaining length) in a few calls: each
    # window's steps past its own horizon, whatever they hold, change nothing.
    pool, predicted, reference, mask = batch
    horizon = predicted.shape[1]
    lengths = np.array(data.draw(st.lists(st.integers(1, horizon), min_size=len(predicted),
                                          max_size=len(predicted))))
    got = score_windows(pool, predicted, reference, mask, preset=preset, lengths=lengths)
    expected = [score_trajectory([pool[i] for i in p[:n]], [pool[i] for i in r[:n]],
                                 mask=list(m[:n]), preset=preset).score
                for p, r, m, n in zip(predicted, reference, mask, lengths, strict=True)]
    assert got.tobytes() == np.array(expected, dtype=np.float64).tobytes()
    with pytest.raises(ValueError, match="lengths"):
        score_windows(pool, predicted, reference, mask, lengths=lengths * 0)
