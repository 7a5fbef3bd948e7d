"""Action reduction: a recorder's raw pointer and keyboard events -> the actions a person took.

The input is a list of :class:`RawEvent` (recorder-independent; each adapter translates its
own JSON into them). The rules, with every threshold a field of :class:`ReductionParams`:

* button down + up -> ``click`` / ``right_click`` / ``middle_click`` at the press point;
  two left clicks close in time and space -> ``double_click``, a third -> one ``click`` with
  ``clicks`` 3 (a triple click: the action space has none, the adapter says so); a left press
  whose pointer travels at least ``drag_distance`` before the release -> ``drag`` (x, y ->
  x2, y2), and right after a double click (its second press close in time and space) one
  ``drag`` with ``clicks`` 2 (double-click-then-drag: selecting word by word).
* wheel events of one direction, each within ``scroll_gap`` of the last and within
  ``scroll_distance`` of the burst's first position -> one ``scroll`` (direction + notches).
  The wheel sign is an OS convention: ``scroll_sign`` is the recorder's value (-1 where a
  negative dy means "down", as pynput reports it on Windows and Linux).
* printable keys pressed without ctrl/alt/cmd, each within ``typing_gap`` of the last ->
  one ``type`` with the text (shift and caps lock applied; backspace inside a run edits it).
* any other key, or a key pressed with ctrl/alt/cmd held (shift too for non-printables) ->
  ``key`` with the chord in curate's key vocabulary; a lone ctrl/alt/cmd tap -> ``key``.
* pointer moves, modifier presses and caps lock are folded into the action they lead to.
* the recorder's ``stop_hotkey`` at the very end is trimmed, with whatever trails it.

Every input event ends in exactly one place: an action's ``events``, ``ignored`` (with the
reason: a release without its press, a key pressed while a button is held, ...) or ``trimmed``
(the stop hotkey, trailing moves). Anomalies become warnings, never exceptions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from curate.actions import MODIFIERS, normalise_key, normalise_keys

POINTER_KINDS = frozenset({"move", "button_down", "button_up", "scroll"})
EVENT_KINDS = POINTER_KINDS | {"key_down", "key_up"}
CLICK_TYPES = {"left": "click", "right": "right_click", "middle": "middle_click"}
_CHORD_MODIFIERS = frozenset(MODIFIERS) - {"shift"}
# US layout: what shift makes of a key, for recorders that log the unshifted character.
_SHIFTED = dict(zip("`1234567890-=[]\\;',./", '~!@#$%^&*()_+{}|:"<>?', strict=True))
_UNSHIFTED = {shifted: plain for plain, shifted in _SHIFTED.items()}


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One low-level input event on the recorder's clock.

    ``seq`` is the caller's id for the event (e.g. its line number); ``kind`` is one of
    move, button_down, button_up, scroll, key_down, key_up. ``key`` is the key as recorded
    (a character such as ``"a"`` or ``"A"``, or a name such as ``"shift_l"``, ``"enter"``).
    """

    seq: int
    time: float
    kind: str
    x: float | None = None
    y: float | None = None
    button: str | None = None
    key: str | None = None
    dx: float = 0.0
    dy: float = 0.0


@dataclass(frozen=True, slots=True)
class ReductionParams:
    """Thresholds of the reduction; distances in the events' pixels, times in seconds."""

    # Windows' default double-click time is 500 ms; macOS and GNOME use 400-500 ms.
    double_click_interval: float = 0.5
    # Windows' double-click rectangle is 4 px; a little slack for high-DPI mice.
    double_click_distance: float = 6.0
    # Pointer travel while the left button is held that makes a drag (Windows starts a
    # drag at 4 px; 10 px keeps hand jitter during an ordinary click a click).
    drag_distance: float = 10.0
    # A pause longer than this between wheel notches starts a new scroll: the person
    # looked at the result before scrolling on.
    scroll_gap: float = 1.0
    # Pointer travel between notches that makes a new scroll (a different scroll area).
    scroll_distance: float = 100.0
    # A pause longer than this between typed characters starts a new ``type`` action.
    typing_gap: float = 1.5
    # Sign convention of wheel deltas: with -1, dy < 0 is "down" and dx > 0 is "right".
    scroll_sign: int = -1
    # The recorder's own stop chord (e.g. ("ctrl", "alt", "t")), trimmed at the end.
    stop_hotkey: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReducedAction:
    """One action: type and arguments in the events' pixels, times on the events' clock."""

    type: str
    start: float
    end: float
    events: tuple[int, ...]
    x: float | None = None
    y: float | None = None
    x2: float | None = None
    y2: float | None = None
    text: str | None = None
    keys: tuple[str, ...] = ()
    direction: str | None = None
    amount: float | None = None
    button: str | None = None
    clicks: int = 1  # presses of a multi-click: 2 (a double click, or one before a drag), 3


@dataclass(frozen=True, slots=True)
class Reduction:
    actions: tuple[ReducedAction, ...]
    ignored: tuple[tuple[int, str], ...]  # (seq, why) for events no action could use
    trimmed: tuple[int, ...]  # the stop hotkey and events trailing the last action
    warnings: tuple[str, ...]


@dataclass(slots=True, eq=False)  # identity: two drafts are never 'equal'
class _Draft:
    type: str
    start: float
    end: float
    events: list[int]
    x: float | None = None
    y: float | None = None
    x2: float | None = None
    y2: float | None = None
    chars: list[str] = field(default_factory=list)
    keys: tuple[str, ...] = ()
    direction: str | None = None
    amount: float | None = None
    button: str | None = None
    last_input: float = 0.0  # last key or wheel event, for the gap rules
    clicks: int = 1
    last_press: float = 0.0  # the latest press merged in, for the multi-click interval

    def freeze(self, end: float) -> ReducedAction:
        return ReducedAction(
            type=self.type, start=self.start, end=end, events=tuple(sorted(self.events)),
            x=self.x, y=self.y, x2=self.x2, y2=self.y2,
            text="".join(self.chars) if self.type == "type" else None,
            keys=self.keys, direction=self.direction, amount=self.amount, button=self.button,
            clicks=self.clicks)


@dataclass(slots=True)
class _Gesture:
    """A mouse button held down: the press, the moves while held, the farthest travel."""

    press: RawEvent
    events: list[int]
    keys: tuple[str, ...]
    x: float
    y: float
    travel: float = 0.0

    def move_to(self, x: float, y: float) -> None:
        self.x, self.y = x, y
        self.travel = max(self.travel, math.hypot(x - _num(self.press.x), y - _num(self.press.y)))


def _num(value: float | None) -> float:
    return 0.0 if value is None else value


def key_id(name: str) -> str:
    """The identity of a physical key: press 'a' and release 'A' are the same key."""
    if len(name) == 1:
        return _UNSHIFTED.get(name, name).lower()
    return normalise_key(name)


def typed_char(name: str, *, shift: bool, caps: bool) -> str | None:
    """The character a key press types, or None for a non-printing key.

    Letters follow shift XOR caps lock when either is known to be on, else the recorded case
    (recorders that log the produced character already applied it); other characters are
    shifted with the US layout when shift is held and the recorder logged them unshifted.
    """
    if normalise_key(name) == "space":
        return " "
    if len(name) != 1 or not name.isprintable():
        return None
    if name.isalpha():
        if shift or caps:
            return name.upper() if shift != caps else name.lower()
        return name
    return _SHIFTED.get(name, name) if shift else name


def sort_events(events: list[RawEvent]) -> tuple[list[RawEvent], list[str]]:
    """Events in time order (stable), with a warning when the input was not."""
    late = [(prev, event) for prev, event in itertools.pairwise(events)
            if event.time < prev.time]
    if not late:
        return list(events), []
    prev, event = late[0]
    return sorted(events, key=lambda e: e.time), [
        f"{len(late)} event(s) out of time order (first: event {event.seq} at {event.time:.3f}"
        f" after event {prev.seq} at {prev.time:.3f}); sorted by time"]


def reduce_events(events: list[RawEvent], params: ReductionParams | None = None) -> Reduction:
    """Reduce raw events to actions; never raises on odd input (see the module doc)."""
    ordered, warnings = sort_events(events)
    reducer = _Reducer(params or ReductionParams())
    reducer.warnings.extend(warnings)
    for event in ordered:
        reducer.feed(event)
    return reducer.finish(ordered[-1].time if ordered else 0.0)


class _Reducer:
    def __init__(self, params: ReductionParams) -> None:
        self.p = params
        self.drafts: list[_Draft] = []
        self.pending: list[int] = []  # folded into the next action
        self.ignored: list[tuple[int, str]] = []
        self.trimmed: list[int] = []
        self.warnings: list[str] = []
        self.gesture: _Gesture | None = None
        self.held: dict[str, RawEvent] = {}  # key id -> its press
        self.used: set[str] = set()  # held modifiers that took part in an action
        self.owner: dict[str, _Draft] = {}  # key id -> the action its release belongs to
        self.caps = False
        self.typing: _Draft | None = None
        self.scrolling: _Draft | None = None

    # -- dispatch ------------------------------------------------------------------------------

    def feed(self, event: RawEvent) -> None:
        if event.kind not in EVENT_KINDS:
            self.ignore(event, f"unknown event kind {event.kind!r}")
        elif event.kind in POINTER_KINDS and (event.x is None or event.y is None):
            self.ignore(event, f"{event.kind} event without coordinates")
        elif event.kind in ("key_down", "key_up") and not event.key:
            self.ignore(event, f"{event.kind} event without a key name")
        else:
            getattr(self, f"on_{event.kind}")(event)

    def ignore(self, event: RawEvent, why: str) -> None:
        self.ignored.append((event.seq, why))
        self.warnings.append(f"event {event.seq} at {event.time:.3f} ignored: {why}")

    def start_action(self, draft: _Draft, event: RawEvent) -> _Draft:
        """Append an action that begins with ``event``; pending events fold into it."""
        draft.events[:0] = self.pending
        self.pending = []
        self.used.update(self.held)  # held modifiers are part of it, not lone taps
        self.drafts.append(draft)
        self.typing = draft if draft.type == "type" else None
        self.scrolling = draft if draft.type == "scroll" else None
        draft.last_input = event.time
        return draft

    def modifiers(self) -> tuple[str, ...]:
        return tuple(k for k in self.held if k in MODIFIERS)

    # -- pointer -------------------------------------------------------------------------------

    def on_move(self, event: RawEvent) -> None:
        if self.gesture is not None:
            self.gesture.events.append(event.seq)
            self.gesture.move_to(_num(event.x), _num(event.y))
        else:
            self.pending.append(event.seq)

    def on_button_down(self, event: RawEvent) -> None:
        if self.gesture is not None:
            self.ignore(event, f"{event.button} button pressed while the "
                               f"{self.gesture.press.button} button is held")
            return
        self.typing = self.scrolling = None
        self.gesture = _Gesture(event, [*self.pending, event.seq], self.modifiers(),
                                _num(event.x), _num(event.y))
        self.pending = []
        self.used.update(self.held)

    def on_button_up(self, event: RawEvent) -> None:
        gesture = self.gesture
        if gesture is None or gesture.press.button != event.button:
            self.ignore(event, f"{event.button} button released without a press")
            return
        gesture.events.append(event.seq)
        gesture.move_to(_num(event.x), _num(event.y))
        self.end_gesture(gesture, event.time)

    def end_gesture(self, gesture: _Gesture, end: float) -> None:
        self.gesture = None
        press = gesture.press
        button = press.button or "left"
        kind = CLICK_TYPES.get(button, "click")
        draft = _Draft(kind, press.time, end, gesture.events, x=press.x, y=press.y,
                       keys=gesture.keys, button=button, last_press=press.time)
        if button == "left" and gesture.travel >= self.p.drag_distance:
            draft.type, draft.x2, draft.y2 = "drag", gesture.x, gesture.y
        elif gesture.travel >= self.p.drag_distance:
            self.warnings.append(f"{button} button moved {gesture.travel:.0f} px while held at "
                                 f"{press.time:.3f}: kept as a {kind} at the press point")
        draft = self.merge_double_click(draft)
        for key in gesture.keys:
            self.owner[key] = draft
        self.typing = self.scrolling = None

    def merge_double_click(self, draft: _Draft) -> _Draft:
        """Append a finished click or drag, or merge it into the multi-click before it (a
        second or third click, a drag right after a double click); returns the action."""
        last = self.drafts[-1] if self.drafts else None
        if last is not None and self.continues_clicking(last, draft):
            if draft.type == "drag":  # double-click-then-drag: one drag from the first press
                last.type, last.x2, last.y2 = "drag", draft.x2, draft.y2
            else:
                last.clicks += 1
                last.type = "double_click" if last.clicks == 2 else "click"
            last.end, last.last_press = draft.end, draft.start
            last.events.extend(draft.events)
            return last
        self.drafts.append(draft)
        return draft

    def continues_clicking(self, last: _Draft, draft: _Draft) -> bool:
        """Whether a press is the next press of the left clicks before it: close in time to
        the latest of them, close to where they were, with the same modifiers."""
        if last.button != "left" or last.keys != draft.keys or draft.button != "left":
            return False
        if draft.type == "click":
            joins = last.type in ("click", "double_click") and last.clicks < 3
        else:
            joins = draft.type == "drag" and last.type == "double_click"
        return (joins and draft.start - last.last_press <= self.p.double_click_interval
                and math.hypot(_num(draft.x) - _num(last.x), _num(draft.y) - _num(last.y))
                <= self.p.double_click_distance)

    def on_scroll(self, event: RawEvent) -> None:
        if self.gesture is not None:
            self.ignore(event, "wheel turned while a mouse button is held")
            return
        if event.dy == 0 and event.dx == 0:
            self.ignore(event, "wheel event with no delta")
            return
        direction, amount = self.wheel(event)
        if not self.extends_scroll(event, direction):
            draft = _Draft("scroll", event.time, event.time, [], x=event.x, y=event.y,
                           direction=direction, amount=0.0, keys=self.modifiers())
            self.start_action(draft, event)
        scroll = self.scrolling
        assert scroll is not None
        scroll.events.extend([*self.pending, event.seq])
        self.pending = []
        scroll.amount = _num(scroll.amount) + amount
        scroll.end = scroll.last_input = event.time

    def wheel(self, event: RawEvent) -> tuple[str, float]:
        sign = self.p.scroll_sign
        if event.dy != 0:
            return ("down" if event.dy * sign > 0 else "up"), abs(event.dy)
        return ("right" if event.dx * -sign > 0 else "left"), abs(event.dx)

    def extends_scroll(self, event: RawEvent, direction: str) -> bool:
        scroll = self.scrolling
        if scroll is None or scroll is not (self.drafts[-1] if self.drafts else None):
            return False
        moved = math.hypot(_num(event.x) - _num(scroll.x), _num(event.y) - _num(scroll.y))
        return (scroll.direction == direction and scroll.keys == self.modifiers()
                and event.time - scroll.last_input <= self.p.scroll_gap
                and moved <= self.p.scroll_distance)

    # -- keyboard ------------------------------------------------------------------------------

    def on_key_down(self, event: RawEvent) -> None:
        name = event.key or ""
        kid = key_id(name)
        if kid in MODIFIERS or kid == "caps_lock":
            if kid == "caps_lock" and kid not in self.held:
                self.caps = not self.caps
            if kid not in self.held:
                self.held[kid] = event
                self.used.discard(kid)
            self.pending.append(event.seq)
            return
        if self.gesture is not None:
            self.ignore(event, f"key {name!r} pressed while a mouse button is held")
            return
        self.held[kid] = event
        chord = [m for m in self.held if m in _CHORD_MODIFIERS]
        char = None if chord else typed_char(name, shift="shift" in self.held, caps=self.caps)
        if char is not None:
            self.type_char(event, kid, char)
        elif kid == "backspace" and not chord and self.typing_continues(event):
            self.type_char(event, kid, None)
        else:
            keys = normalise_keys([*self.modifiers(), kid])
            draft = self.start_action(_Draft("key", event.time, event.time, [event.seq],
                                             keys=keys), event)
            for key in (*self.modifiers(), kid):
                self.owner[key] = draft

    def typing_continues(self, event: RawEvent) -> bool:
        run = self.typing
        return (run is not None and bool(self.drafts) and run is self.drafts[-1]
                and event.time - run.last_input <= self.p.typing_gap)

    def type_char(self, event: RawEvent, kid: str, char: str | None) -> None:
        """Add a character to the open typing run (None: a backspace that erases one)."""
        if self.typing_continues(event):
            run = self.typing
            assert run is not None
            run.events.extend([*self.pending, event.seq])
            self.pending = []
            self.used.update(self.held)
            run.end = run.last_input = event.time
        else:
            run = self.start_action(_Draft("type", event.time, event.time, [event.seq]), event)
        if char is None:
            if run.chars:
                run.chars.pop()
        else:
            run.chars.append(char)
        self.owner[kid] = run
        if "shift" in self.held:
            self.owner["shift"] = run

    def on_key_up(self, event: RawEvent) -> None:
        name = event.key or ""
        kid = key_id(name)
        press = self.held.pop(kid, None)
        if press is None:
            self.ignore(event, f"key {name!r} released without a press "
                               "(pressed before the recording started?)")
            return
        lone = kid in _CHORD_MODIFIERS and kid not in self.used and self.gesture is None
        self.used.discard(kid)
        if lone:
            draft = _Draft("key", press.time, event.time, [], keys=(kid,))
            self.start_action(draft, event)
            draft.events.append(event.seq)
            return
        owner = self.owner.pop(kid, None)
        if owner is not None:
            owner.events.append(event.seq)
            owner.end = max(owner.end, event.time)
        else:
            self.pending.append(event.seq)

    # -- the end -------------------------------------------------------------------------------

    def finish(self, last_time: float) -> Reduction:
        if self.gesture is not None:
            self.warnings.append(f"{self.gesture.press.button} button pressed at "
                                 f"{self.gesture.press.time:.3f} never released; kept as an "
                                 "action ending with the recording")
            self.end_gesture(self.gesture, last_time)
        self.trimmed.extend(self.pending)
        self.pending = []
        self.trim_stop_hotkey()
        trimmed = set(self.trimmed)
        for press in self.held.values():
            if press.seq not in trimmed:
                self.warnings.append(f"key {press.key!r} pressed at {press.time:.3f} (event "
                                     f"{press.seq}) never released")
        return Reduction(self.freeze(), tuple(self.ignored), tuple(sorted(self.trimmed)),
                         tuple(self.warnings))

    def trim_stop_hotkey(self) -> None:
        stop = set(normalise_keys(self.p.stop_hotkey))
        if not stop or not self.drafts:
            return
        last = self.drafts[-1]
        if last.type == "key" and set(last.keys) == stop:
            self.drafts.pop()
            self.trimmed.extend(last.events)

    def freeze(self) -> tuple[ReducedAction, ...]:
        """Actions in start order, each ending no later than the next one starts."""
        drafts = sorted(self.drafts, key=lambda d: d.start)
        actions = []
        for index, draft in enumerate(drafts):
            end = draft.end
            if index + 1 < len(drafts):
                end = min(end, drafts[index + 1].start)
            actions.append(draft.freeze(max(draft.start, end)))
        return tuple(actions)
