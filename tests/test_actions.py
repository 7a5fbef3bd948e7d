from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from curate.actions import (
    ACTION_TYPES,
    Action,
    Target,
    canonical_json,
    format_action_text,
    parse_action_text,
)
from curate.errors import ActionParseError

coords = st.one_of(st.none(), st.floats(0, 1).map(lambda v: round(v, 4)))
texts = st.one_of(st.none(), st.text(max_size=20))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)

actions = st.builds(
    Action,
    type=st.sampled_from(sorted(ACTION_TYPES)),
    x=coords, y=coords, x2=coords, y2=coords,
    text=texts,
    keys=st.lists(st.sampled_from(["ctrl", "shift", "alt", "a", "enter", "\"", "é"]),
                  max_size=3).map(tuple),
    direction=st.one_of(st.none(), st.sampled_from(["up", "down", "left", "right"])),
    amount=st.one_of(st.none(), st.floats(-100, 100, allow_nan=False)),
    app=texts, url=texts, tool_name=texts,
    tool_args=st.one_of(st.none(), json_values.map(canonical_json)),
    px=st.one_of(st.none(), st.floats(0, 5000)),
    raw=texts,
)


@given(actions)
def test_action_text_round_trips_every_action(action: Action) -> None:
    assert parse_action_text(format_action_text(action)) == action.semantic()


def test_action_text_is_short_and_readable() -> None:
    action = Action("click", x=0.25, y=0.5, px=256, py=384, raw="pyautogui.click(256, 384)")
    assert format_action_text(action) == "click(x=0.25, y=0.5)"
    call = Action("tool_call", tool_name="search", tool_args=canonical_json({"q": "cats"}))
    assert format_action_text(call) == 'tool_call(name="search", args={"q": "cats"})'


@pytest.mark.parametrize("text, message", [
    ("teleport(x=1)", "unknown action type"),
    ("click(x=)", "bad value"),
    ("click(z=0.1)", "unknown argument"),
    ("click(x=\"a\")", "must be a number"),
    ("click(x=0.1", "expected ',' or ')'"),
    ("click() trailing", "unexpected text"),
    ("", "expected 'type(key=value"),
])
def test_bad_action_text_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ActionParseError, match=re.escape(message)):
        parse_action_text(text)


def test_unknown_action_type_is_refused_at_construction() -> None:
    with pytest.raises(ActionParseError, match="teleport"):
        Action("teleport")


def test_row_form_round_trips_with_target() -> None:
    action = Action("click", x=0.1, y=0.2, keys=("ctrl",),
                    target=Target(text="OK", role="button", x0=0, y0=0, x1=0.5, y1=0.5))
    assert Action.from_row(action.to_row()) == action
    assert action.target is not None and action.target.contains(0.1, 0.2)
    assert not action.target.contains(0.6, 0.2)


def test_action_agrees_with_its_declaration_in_schemas() -> None:
    from curate.actions import schema_differences

    assert schema_differences() == []


def test_a_declaration_that_drifted_from_action_is_reported() -> None:
    import copy

    from curate.actions import schema_differences
    from curate.store.schema import declaration

    drifted = copy.deepcopy(declaration("action"))
    fields_ = drifted["fields"]
    next(f for f in fields_ if f["name"] == "x")["type"] = "int32"
    next(f for f in fields_ if f["name"] == "type")["doc"] = "One of: click, teleport."
    next(f for f in fields_ if f["name"] == "target")["fields"][0]["nullable"] = False
    differences = schema_differences(drifted)
    assert "action.x: int32 in the schema, float | None here" in differences
    assert "action.target.text: nullable False in the schema, True here" in differences
    assert any(d.startswith("action.type: schema lists ['teleport'] more") for d in differences)
    fields_.pop()  # raw
    assert any("fields" in d for d in schema_differences(drifted))
