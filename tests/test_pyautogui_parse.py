"""pyautogui code is read as actions in screen pixels, never executed."""

from __future__ import annotations

import re

import pytest

from curate.actions import Action
from curate.actions.pyautogui import PointerState, order_keys, parse_pyautogui
from curate.errors import ActionParseError


def one(code: str, state: PointerState | None = None) -> Action:
    actions = parse_pyautogui(code, state).actions
    assert len(actions) == 1, actions
    return actions[0]


def test_click_with_coordinates_gives_screen_pixels_and_leaves_normalising_to_the_adapter():
    action = one("import pyautogui; pyautogui.click(100, 200)")
    assert (action.type, action.px, action.py) == ("click", 100.0, 200.0)
    assert action.x is None and action.y is None


def test_keyword_coordinates_with_two_clicks_make_a_double_click():
    action = one("pyautogui.click(x=10, y=20, clicks=2)")
    assert (action.type, action.px, action.py) == ("double_click", 10.0, 20.0)


@pytest.mark.parametrize(("code", "expected"), [
    ("pyautogui.click(1, 2, button='right')", "right_click"),
    ("pyautogui.click(1, 2, button='middle')", "middle_click"),
    ("pyautogui.rightClick(1, 2)", "right_click"),
    ("pyautogui.middleClick(1, 2)", "middle_click"),
    ("pyautogui.doubleClick(1, 2)", "double_click"),
    ("pyautogui.leftClick(1, 2)", "click"),
    ("pyautogui.click((1, 2))", "click"),
])
def test_button_and_click_count_choose_the_action_type(code: str, expected: str):
    action = one(code)
    assert (action.type, action.px, action.py) == (expected, 1.0, 2.0)


def test_triple_click_is_recorded_as_click_with_a_note():
    result = parse_pyautogui("pyautogui.tripleClick(5, 6)")
    (parsed,) = result.parsed
    assert parsed.action.type == "click"
    assert parsed.notes and "3 clicks" in parsed.notes[0]
    assert parsed.action.raw == "pyautogui.tripleClick(5, 6)"


def test_click_without_coordinates_uses_the_cursor_left_by_earlier_code():
    moved = parse_pyautogui("import pyautogui; pyautogui.moveTo(25, 25)")
    assert moved.actions[0].type == "move"
    assert (moved.state.x, moved.state.y) == (25.0, 25.0)
    click = one("import pyautogui; pyautogui.click()", moved.state)
    assert (click.type, click.px, click.py) == ("click", 25.0, 25.0)


def test_click_without_coordinates_and_no_known_cursor_is_refused():
    with pytest.raises(ActionParseError, match="no coordinates and no earlier moveTo"):
        parse_pyautogui("pyautogui.click()")


def test_several_calls_on_one_line_and_on_several_lines_come_in_order():
    code = "import pyautogui\npyautogui.moveTo(3, 4); pyautogui.click()\npyautogui.write('hi')"
    actions = parse_pyautogui(code).actions
    assert [a.type for a in actions] == ["move", "click", "type"]
    assert (actions[1].px, actions[1].py) == (3.0, 4.0)
    assert actions[2].text == "hi"


def test_module_alias_and_missing_import_are_both_read():
    assert one("import pyautogui as pg; pg.click(1, 1)").type == "click"
    # OSWorld's controller imports pyautogui itself, so agent code often omits it.
    assert one("pyautogui.click(1, 1)").type == "click"


def test_move_rel_and_drag_rel_are_relative_to_the_cursor():
    start = PointerState(x=10, y=10)
    assert (one("pyautogui.move(5, -5)", start).px, one("pyautogui.move(5, -5)", start).py) == (
        15.0, 5.0)
    drag = one("pyautogui.drag(30, 0, duration=0.5)", start)
    assert (drag.type, drag.px, drag.py, drag.px2, drag.py2) == ("drag", 10, 10, 40, 10)


def test_drag_to_starts_at_the_cursor_and_moves_it():
    result = parse_pyautogui("pyautogui.moveTo(1, 2); pyautogui.dragTo(50, 60, button='left')")
    drag = result.actions[1]
    assert (drag.type, drag.px, drag.py, drag.px2, drag.py2) == ("drag", 1, 2, 50, 60)
    assert (result.state.x, result.state.y) == (50.0, 60.0)


def test_mouse_down_move_up_is_one_drag_and_down_up_in_place_is_a_click():
    drag = parse_pyautogui(
        "pyautogui.mouseDown(10, 10); pyautogui.moveTo(20, 30); pyautogui.mouseUp()").actions
    assert [(a.type, a.px, a.py, a.px2, a.py2) for a in drag] == [("drag", 10, 10, 20, 30)]
    click = parse_pyautogui("pyautogui.mouseDown(5, 5, button='right'); pyautogui.mouseUp()")
    assert [(a.type, a.px) for a in click.actions] == [("right_click", 5.0)]


def test_mouse_down_without_release_yields_nothing_and_leaves_the_state_pending():
    down = parse_pyautogui("pyautogui.mouseDown(10, 10)")
    assert down.actions == [] and down.state.pending
    up = parse_pyautogui("pyautogui.mouseUp(40, 10)", down.state)
    assert [(a.type, a.px2) for a in up.actions] == [("drag", 40.0)]
    assert not up.state.pending


@pytest.mark.parametrize(("code", "direction", "amount"), [
    ("pyautogui.scroll(-3)", "down", 3.0),
    ("pyautogui.scroll(5)", "up", 5.0),
    ("pyautogui.vscroll(-1)", "down", 1.0),
    ("pyautogui.hscroll(2)", "right", 2.0),
    ("pyautogui.hscroll(-2)", "left", 2.0),
])
def test_scroll_sign_gives_the_direction(code: str, direction: str, amount: float):
    action = one(code)
    assert (action.type, action.direction, action.amount) == ("scroll", direction, amount)


def test_scroll_happens_at_given_position_or_at_the_cursor():
    at = one("pyautogui.scroll(-1, x=100, y=50)")
    assert (at.px, at.py) == (100.0, 50.0)
    assert one("pyautogui.scroll(-1)", PointerState(x=7, y=8)).px == 7.0
    assert one("pyautogui.scroll(-1)").px is None


def test_write_types_text_and_a_key_list_splits_into_text_and_named_keys():
    assert one("pyautogui.typewrite('Hello World', interval=0.05)").text == "Hello World"
    actions = parse_pyautogui("pyautogui.write(['a', 'b', 'Enter', 'c'])").actions
    assert [(a.type, a.text, a.keys) for a in actions] == [
        ("type", "ab", ()), ("key", None, ("enter",)), ("type", "c", ())]


def test_press_takes_one_key_a_list_and_a_repeat_count():
    assert one("pyautogui.press('Enter')").keys == ("enter",)
    keys = [a.keys for a in parse_pyautogui("pyautogui.press(['tab', 'tab'], presses=2)").actions]
    assert keys == [("tab",)] * 4


def test_hotkey_lowercases_keys_and_puts_modifiers_first():
    assert one("pyautogui.hotkey('C', 'Ctrl')").keys == ("ctrl", "c")
    assert one("pyautogui.hotkey('shift', 'ctrl', 't')").keys == ("shift", "ctrl", "t")
    assert order_keys(["a", "ALT", "a"]) == ("alt", "a")


def test_key_down_and_up_make_one_chord_and_held_keys_join_presses():
    chord = parse_pyautogui("pyautogui.keyDown('ctrl'); pyautogui.keyDown('c'); "
                            "pyautogui.keyUp('c'); pyautogui.keyUp('ctrl')").actions
    assert [a.keys for a in chord] == [("ctrl", "c")]
    held = parse_pyautogui("pyautogui.keyDown('shift'); pyautogui.press('tab'); "
                           "pyautogui.keyUp('shift')").actions
    assert [a.keys for a in held] == [("shift", "tab")]


def test_click_while_a_key_is_held_notes_the_modifier():
    result = parse_pyautogui("pyautogui.keyDown('shift'); pyautogui.click(1, 1); "
                             "pyautogui.keyUp('shift')")
    assert [p.action.type for p in result.parsed] == ["click"]
    assert "holding shift" in result.parsed[0].notes[0]


def test_sleep_is_a_wait_with_its_duration():
    actions = parse_pyautogui("import time; time.sleep(1.5); pyautogui.sleep(2)").actions
    assert [(a.type, a.amount) for a in actions] == [("wait", 1.5), ("wait", 2.0)]


def test_pacing_arguments_and_pyautogui_settings_are_not_evaluated():
    code = ("import pyautogui; pyautogui.FAILSAFE = False\n"
            "pyautogui.moveTo(1, 2, duration=0.5, tween=pyautogui.easeInOutQuad)")
    assert one(code).type == "move"


def test_raw_keeps_the_call_text():
    assert one("import pyautogui; pyautogui.click(1,  2)").raw == "pyautogui.click(1,  2)"


@pytest.mark.parametrize(("code", "reason"), [
    ("import os; os.system('rm -rf /')", "import of 'os' is not allowed"),
    ("os.system('ls')", "os.system() is not a supported call"),
    ("x = 5; pyautogui.click(x, 1)", "unsupported statement Assign"),
    ("pyautogui.click(x, 1)", "not a literal"),
    ("pyautogui.click(1 + 1, 1)", "not a literal"),
    ("for i in range(3): pyautogui.click(1, 1)", "unsupported statement For"),
    ("from pyautogui import click", "unsupported statement ImportFrom"),
    ("__import__('os').system('ls')", "only calls of the form"),
    ("pyautogui.screenshot()", "pyautogui.screenshot() is not a supported call"),
    ("pyautogui.click('button.png')", "locating the image"),
    ("pyautogui.click(1, 2, button='side')", "unknown mouse button"),
    ("pyautogui.click(1, 2, bogus=1)", "has no argument 'bogus'"),
    ("pyautogui.click(1, 2, **opts)", "(**...) is not read"),
    ("pyautogui.press('a', presses=10000)", "presses must be"),
    ("pyautogui.scroll(0)", "scroll by 0"),
    ("pyautogui.mouseUp()", "without a preceding mouseDown"),
    ("pyautogui.keyUp('shift')", "without a preceding keyDown"),
    ("pyautogui.click(1, 2", "not valid Python"),
])
def test_unknown_or_unsafe_code_is_refused_with_a_reason(code: str, reason: str):
    with pytest.raises(ActionParseError, match=re.escape(reason)):
        parse_pyautogui(code)


def test_errors_name_the_position_in_the_code():
    with pytest.raises(ActionParseError, match=r"code line 2, column 1"):
        parse_pyautogui("pyautogui.click(1, 1)\nwhile True: pass")


@pytest.mark.parametrize("code", [
    "pyautogui.click(1e999, 1)",
    "pyautogui.click(" + "9" * 400 + ", 1)",
    "pyautogui.click({[1]: 2}, 1)",
    "pyautogui.click(" + "[" * 200 + "]" * 200 + ", 1)",
    "pyautogui.click(1, 1)\x00",
])
def test_hostile_code_is_refused_with_a_short_reason(code: str):
    with pytest.raises(ActionParseError) as caught:
        parse_pyautogui(code)
    assert len(str(caught.value)) < 300
