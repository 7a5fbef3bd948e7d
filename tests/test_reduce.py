"""Action reduction: one synthetic event stream per rule, and properties of random streams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from curate.sources.reduce import RawEvent, ReductionParams, reduce_events, typed_char
from curate.sources.video import FramePicker, FrameRequest


class Stream:
    """Builds a RawEvent list with increasing seq and a running clock."""

    def __init__(self) -> None:
        self.events: list[RawEvent] = []
        self.t = 0.0

    def add(self, kind: str, dt: float = 0.05, **values: object) -> Stream:
        self.t += dt
        self.events.append(RawEvent(len(self.events) + 1, self.t, kind, **values))  # type: ignore[arg-type]
        return self

    def click(self, x: float, y: float, button: str = "left", dt: float = 1.0) -> Stream:
        self.add("button_down", dt, x=x, y=y, button=button)
        return self.add("button_up", 0.08, x=x, y=y, button=button)

    def key(self, name: str, dt: float = 0.15) -> Stream:
        self.add("key_down", dt, key=name)
        return self.add("key_up", 0.05, key=name)


def kinds(stream: Stream, params: ReductionParams | None = None) -> list[str]:
    return [a.type for a in reduce_events(stream.events, params).actions]


def test_press_release_is_a_click_per_button() -> None:
    stream = Stream().click(10, 20).click(300, 20, "right").click(600, 20, "middle")
    result = reduce_events(stream.events)
    assert [a.type for a in result.actions] == ["click", "right_click", "middle_click"]
    assert (result.actions[0].x, result.actions[0].y) == (10, 20)
    assert result.actions[0].events == (1, 2)


def test_two_close_clicks_are_a_double_click() -> None:
    stream = Stream().click(100, 100).click(102, 101, dt=0.2)
    result = reduce_events(stream.events)
    assert [a.type for a in result.actions] == ["double_click"]
    assert result.actions[0].events == (1, 2, 3, 4)


def test_a_triple_click_is_one_click_action_of_three_presses() -> None:
    """The third press is timed from the second, as the OS does (here 0.9 s after the
    first, within 0.5 s of the second); a fourth starts a new click."""
    stream = Stream().click(100, 100).click(101, 100, dt=0.3).click(100, 101, dt=0.3)
    [triple] = reduce_events(stream.events).actions
    assert (triple.type, triple.clicks, triple.events) == ("click", 3, tuple(range(1, 7)))
    assert kinds(stream.click(100, 100, dt=0.2)) == ["click", "click"]


def test_a_drag_right_after_a_double_click_is_one_drag_from_the_first_press() -> None:
    stream = Stream().click(100, 100).click(100, 100, dt=0.2)
    stream.add("button_down", 0.2, x=100, y=100, button="left")
    stream.add("move", 0.1, x=180, y=104).add("button_up", 0.1, x=180, y=104, button="left")
    [drag] = reduce_events(stream.events).actions
    assert (drag.type, drag.clicks, drag.x, drag.y, drag.x2, drag.y2) == (
        "drag", 2, 100, 100, 180, 104)
    assert drag.events == tuple(range(1, 8)) and drag.start == stream.events[0].time


def test_clicks_too_slow_or_too_far_stay_single() -> None:
    slow = Stream().click(100, 100).click(100, 100, dt=0.9)
    far = Stream().click(100, 100).click(150, 100, dt=0.2)
    assert kinds(slow) == ["click", "click"]
    assert kinds(far) == ["click", "click"]
    assert kinds(slow, ReductionParams(double_click_interval=2.0)) == ["double_click"]


def test_press_move_release_beyond_the_distance_is_a_drag() -> None:
    stream = Stream().add("move", x=50, y=50).add("button_down", x=50, y=50, button="left")
    for step in range(1, 6):
        stream.add("move", x=50 + step * 10, y=52)
    stream.add("button_up", x=100, y=52, button="left")
    [drag] = reduce_events(stream.events).actions
    assert (drag.type, drag.x, drag.y, drag.x2, drag.y2) == ("drag", 50, 50, 100, 52)
    assert drag.events == tuple(range(1, 9))  # the leading move is folded in


def test_jitter_while_clicking_is_not_a_drag() -> None:
    stream = Stream().add("button_down", x=50, y=50, button="left")
    stream.add("move", x=53, y=51).add("button_up", x=53, y=51, button="left")
    assert kinds(stream) == ["click"]


def test_wheel_burst_is_one_scroll_with_direction_and_amount() -> None:
    stream = Stream()
    for _ in range(3):
        stream.add("scroll", 0.3, x=500, y=400, dy=-1)
    [scroll] = reduce_events(stream.events).actions
    assert (scroll.type, scroll.direction, scroll.amount) == ("scroll", "down", 3.0)


def test_scroll_sign_convention_flips_direction() -> None:
    stream = Stream().add("scroll", x=1, y=1, dy=-2).add("scroll", 2.0, x=1, y=1, dx=1)
    windows = reduce_events(stream.events).actions
    flipped = reduce_events(stream.events, ReductionParams(scroll_sign=1)).actions
    assert [(a.direction, a.amount) for a in windows] == [("down", 2.0), ("right", 1.0)]
    assert [a.direction for a in flipped] == ["up", "left"]


def test_scroll_splits_on_pause_direction_change_and_distance() -> None:
    stream = Stream().add("scroll", x=10, y=10, dy=-1).add("scroll", 1.5, x=10, y=10, dy=-1)
    stream.add("scroll", 0.2, x=10, y=10, dy=1).add("scroll", 0.2, x=400, y=10, dy=1)
    result = reduce_events(stream.events).actions
    assert [(a.direction, a.amount) for a in result] == [
        ("down", 1.0), ("down", 1.0), ("up", 1.0), ("up", 1.0)]


def test_key_run_is_typed_text_with_shift_and_caps() -> None:
    stream = Stream().add("key_down", key="shift_l").key("h").add("key_up", key="shift_l")
    stream.key("i").key("space").key("caps_lock").key("o").key("k").key("caps_lock").key("1")
    [typed] = reduce_events(stream.events).actions
    assert (typed.type, typed.text) == ("type", "Hi OK1")
    assert typed.events == tuple(range(1, len(stream.events) + 1))


def test_backspace_inside_a_run_edits_it() -> None:
    stream = Stream().key("c").key("a").key("t").key("backspace").key("r")
    [typed] = reduce_events(stream.events).actions
    assert typed.text == "car"


def test_typing_pause_splits_the_run() -> None:
    stream = Stream().key("a").key("b").key("c", dt=3.0)
    assert [a.text for a in reduce_events(stream.events).actions] == ["ab", "c"]


def test_modifier_chord_is_a_hotkey() -> None:
    stream = Stream().add("key_down", key="ctrl_l").key("c").add("key_up", key="ctrl_l")
    stream.add("key_down", key="shift").key("tab").add("key_up", key="shift")
    result = reduce_events(stream.events)
    assert [(a.type, a.keys) for a in result.actions] == [
        ("key", ("ctrl", "c")), ("key", ("shift", "tab"))]
    assert not result.ignored and not result.warnings


def test_special_key_and_lone_modifier_tap_are_keys() -> None:
    stream = Stream().key("a").key("enter").key("cmd")
    assert [(a.type, a.text, a.keys) for a in reduce_events(stream.events).actions] == [
        ("type", "a", ()), ("key", None, ("enter",)), ("key", None, ("cmd",))]


def test_modifiers_held_during_a_click_travel_with_it() -> None:
    stream = Stream().add("key_down", key="ctrl_l").click(5, 5).add("key_up", key="ctrl_l")
    [click] = reduce_events(stream.events).actions
    assert (click.type, click.keys) == ("click", ("ctrl",))


def test_stop_hotkey_at_the_end_is_trimmed() -> None:
    stream = Stream().click(1, 1).add("move", x=2, y=2)
    for name in ("ctrl_l", "alt_l", "T"):
        stream.add("key_down", key=name)
    stream.add("key_up", key="T")
    params = ReductionParams(stop_hotkey=("ctrl", "alt", "t"))
    result = reduce_events(stream.events, params)
    assert [a.type for a in result.actions] == ["click"]
    assert result.trimmed == (3, 4, 5, 6, 7)
    assert not result.warnings  # ctrl/alt never released: part of the trimmed chord
    assert [a.type for a in reduce_events(stream.events).actions] == ["click", "key"]


def test_moves_fold_into_the_next_action_and_trailing_moves_are_trimmed() -> None:
    stream = Stream().add("move", x=1, y=1).add("move", x=2, y=2).click(3, 3)
    stream.add("move", x=9, y=9)
    result = reduce_events(stream.events)
    assert result.actions[0].events == (1, 2, 3, 4)
    assert result.trimmed == (5,)


def test_unbalanced_keys_are_reported_not_fatal() -> None:
    stream = Stream().add("key_up", key="x").key("a").add("key_down", key="b")
    result = reduce_events(stream.events)
    assert [a.text for a in result.actions] == ["ab"]
    assert result.ignored[0][0] == 1 and "without a press" in result.ignored[0][1]
    assert any("never released" in w for w in result.warnings)


def test_unbalanced_buttons_are_reported() -> None:
    stream = Stream().add("button_up", x=1, y=1, button="left").click(5, 5)
    stream.add("button_down", 2.0, x=80, y=80, button="left")
    result = reduce_events(stream.events)
    assert [a.type for a in result.actions] == ["click", "click"]
    assert result.ignored[0][0] == 1
    assert any("never released" in w for w in result.warnings)


def test_out_of_order_events_are_sorted_with_a_warning() -> None:
    up = RawEvent(2, 1.1, "button_up", x=5, y=5, button="left")
    down = RawEvent(1, 1.0, "button_down", x=5, y=5, button="left")
    result = reduce_events([up, down])
    assert [a.type for a in result.actions] == ["click"]
    assert "out of time order" in result.warnings[0]


def test_typed_char_rules() -> None:
    assert typed_char("a", shift=True, caps=False) == "A"
    assert typed_char("A", shift=True, caps=True) == "a"
    assert typed_char("A", shift=False, caps=False) == "A"  # recorder logged the produced char
    assert typed_char("1", shift=True, caps=False) == "!"
    assert typed_char("enter", shift=False, caps=False) is None


# -- properties ---------------------------------------------------------------------------------

_EVENT = st.one_of(
    st.builds(lambda x, y: ("move", {"x": x, "y": y}), st.integers(0, 50), st.integers(0, 50)),
    st.builds(lambda b, x: ("button_down", {"x": x, "y": x, "button": b}),
              st.sampled_from(["left", "right"]), st.integers(0, 50)),
    st.builds(lambda b, x: ("button_up", {"x": x, "y": x, "button": b}),
              st.sampled_from(["left", "right"]), st.integers(0, 50)),
    st.builds(lambda d: ("scroll", {"x": 5, "y": 5, "dy": d}), st.sampled_from([-1, 1, 0])),
    st.builds(lambda k: ("key_down", {"key": k}), st.sampled_from(["a", "B", "shift", "ctrl_l",
                                                                   "enter", "caps_lock", "T"])),
    st.builds(lambda k: ("key_up", {"key": k}), st.sampled_from(["a", "B", "shift", "ctrl_l",
                                                                 "enter", "caps_lock", "T"])),
)


def _stream(draws: list[tuple[tuple[str, dict[str, object]], float]]) -> list[RawEvent]:
    return [RawEvent(i, t, kind, **values)  # type: ignore[arg-type]
            for i, ((kind, values), t) in enumerate(draws)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_EVENT, st.floats(0, 20, allow_nan=False)), max_size=60),
       st.booleans())
def test_random_streams_reduce_to_ordered_disjoint_accounted_actions(
        draws: list[tuple[tuple[str, dict[str, object]], float]], stop: bool) -> None:
    events = _stream(draws)
    params = ReductionParams(stop_hotkey=("ctrl", "alt", "t") if stop else ())
    result = reduce_events(events, params)
    for action in result.actions:
        assert action.start <= action.end
    for first, second in zip(result.actions, result.actions[1:], strict=False):
        assert first.end <= second.start  # ordered, never overlapping
    used = [seq for action in result.actions for seq in action.events]
    accounted = used + [seq for seq, _ in result.ignored] + list(result.trimmed)
    assert sorted(accounted) == sorted(e.seq for e in events)  # each exactly once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=40),
       st.lists(st.tuples(st.floats(0, 100, allow_nan=False), st.floats(0, 5)), max_size=20))
def test_state_frame_is_never_later_than_its_action(frame_times: list[float],
                                                    actions: list[tuple[float, float]]) -> None:
    times = sorted(set(frame_times))
    requests = []
    for start, duration in actions:
        requests.append(FrameRequest(not_after=start))
        requests.append(FrameRequest(not_after=start + duration + 0.3,
                                     not_before=start + duration))
    picker: FramePicker[float] = FramePicker(requests, end_tolerance=float("inf"))
    picks = [p for t in times for p in picker.offer(t, t)] + picker.close()
    assert sorted(p.request for p in picks) == list(range(len(requests)))
    for pick in picks:
        request = requests[pick.request]
        if pick.time is None:
            continue
        if request.not_before is None:
            assert pick.time <= request.not_after  # s_t: never after the action starts
            assert not [t for t in times if pick.time < t <= request.not_after]  # the last one
        else:
            assert pick.time >= request.not_before  # s_t+1: never before the action ends
