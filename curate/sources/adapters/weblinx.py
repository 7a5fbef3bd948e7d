"""WebLINX demonstrations (``weblinx``, platform web): one demonstration folder per episode.

WebLINX (McGill-NLP/weblinx; ``weblinx/__init__.py`` ``Demonstration`` / ``Replay`` /
``Turn``, ``weblinx/processing/intent.py``) publishes each conversation as a folder
``demonstrations/<name>/`` holding ``replay.json`` (``{"data": [turn, ...], "version",
"created"}``), ``metadata.json``, ``form.json``, ``screenshots/``, ``pages/`` (HTML) and
``bboxes/``. A turn is ``{"type": "chat", "speaker", "utterance", "timestamp"}`` or
``{"type": "browser", "timestamp", "action": {"intent", "arguments": {"element",
"properties", "metadata": {"url", "tabId", "viewportWidth", "viewportHeight", "zoomLevel"},
...}}, "state": {"screenshot", "screenshot_status", "page"}}``; ``timestamp`` is seconds
since the recording started. See docs/sources/weblinx.md.

Traps handled:

* it is a dialogue: the instructor's utterances are not steps; the first is the episode's
  instruction and the latest one before a step is that step's ``step_instruction``; the
  navigator's utterances are ``answer`` steps;
* ``scroll`` carries the page's scroll position (``scrollX`` / ``scrollY``) after the
  gesture, not a delta: the amount is the change from the previous position in that tab;
* ``load`` is a navigation the user typed only when its ``transitionType`` is typed /
  generated / keyword (or a qualifier says ``from_address_bar``); a link load follows the
  click that caused it and ``submit`` follows its click or Enter: those are counted, not
  steps; tab create / remove / switch have no action in curate's space and are counted;
* a turn's own screenshot is its state; a turn without one (chat turns mostly) takes the
  latest earlier screenshot, as WebLINX's own ``assign_screenshot_to_turn`` does, with a
  warning naming it; ``screenshot_status: broken`` is not used as a state;
* points are viewport CSS px (``properties.clientX/Y``, else the element's ``bbox``
  centre), normalised by the turn's ``viewportWidth`` / ``viewportHeight``;
* a demonstration marked ``invalid.json`` by the authors is rejected whole; bad turns (not
  an object, unknown type or intent, no arguments) are rejected one by one with their
  position; a missing screenshot file is a frame reject and the step is kept without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, Target, canonical_json, normalise
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    INITIAL_STATE_NOT_RECORDED,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    images_in,
    load_json,
    point_in_frame,
    scroll_between,
    text_head,
)
from curate.store.frames import Frame

REPLAY = "replay.json"
SCREENSHOTS = "screenshots"
INVALID = "invalid.json"
_HEAD = re.compile(r'^\s*\{[^\[]*"data"\s*:\s*\[')
_TURN = re.compile(r'"type"\s*:\s*"(?:chat|browser)"')
# load transitions the user caused by typing or choosing in the address bar (Chrome's
# webNavigation transitionType values); others follow a click, a redirect or a script.
TYPED_LOADS = frozenset({"typed", "generated", "keyword", "keyword_generated", "auto_bookmark"})
COUNTED = {"submit": "submit (follows the click or Enter that sent the form)",
           "tabcreate": "tab created (no tab action in curate's space)",
           "tabremove": "tab closed (no tab action in curate's space)",
           "tabswitch": "tab switched (no tab action in curate's space)"}
KNOWN_INTENTS = frozenset({"click", "hover", "textinput", "change", "load", "scroll", "copy",
                           "paste", *COUNTED})


@dataclass(slots=True)
class _State:
    frame: Frame | None
    missing: str | None
    note: str | None = None


class _Demo:
    """One replay read turn by turn into the steps of its episode."""

    def __init__(self, unit: SourceUnit, episode: EpisodeBuilder) -> None:
        self.unit = unit
        self.episode = episode
        self.file = unit.relative(unit.path / REPLAY)
        self.instructor: str | None = None
        self.state = _State(None, INITIAL_STATE_NOT_RECORDED)
        self.scroll: dict[Any, tuple[float, float]] = {}
        self.counts: dict[str, int] = {}

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def reject(self, position: str, reason: str, hint: str) -> None:
        self.episode.reject(file=self.file, position=position, reason=reason, hint=hint)

    def turn(self, index: int, turn: Any) -> None:
        position = f"data[{index}]"
        if not isinstance(turn, dict) or turn.get("type") not in ("chat", "browser"):
            kind = turn.get("type") if isinstance(turn, dict) else type(turn).__name__
            self.reject(position, f"unknown turn (type {kind!r}); skipped",
                        "WebLINX turns are of type 'chat' or 'browser'")
            return
        state = self._state(position, turn)
        if turn["type"] == "chat":
            self._chat(position, turn, state)
            return
        action = turn.get("action")
        intent = action.get("intent") if isinstance(action, dict) else None
        arguments = action.get("arguments") if isinstance(action, dict) else None
        # Folded as WebLINX's Intent.from_string folds it: "textInput" and "text_input" alike.
        name = intent.lower().strip().replace("_", "") if isinstance(intent, str) else None
        if name is None or name not in KNOWN_INTENTS:
            self.reject(position, f"unknown browser intent {intent!r}; skipped",
                        f"WebLINX intents are {', '.join(sorted(KNOWN_INTENTS))}")
            return
        if not isinstance(arguments, dict):
            self.reject(position, f"{intent} turn without 'action.arguments'; skipped",
                        "a browser turn's action holds its arguments")
            return
        built = self._browser(name, arguments)
        if isinstance(built, str):
            self.count(built)
            return
        self._step(position, turn, built, state)

    def _chat(self, position: str, turn: dict[str, Any], state: _State) -> None:
        speaker, utterance = turn.get("speaker"), turn.get("utterance")
        if not isinstance(utterance, str) or speaker not in ("instructor", "navigator"):
            self.reject(position, "chat turn without a 'speaker' (instructor / navigator) "
                        "and an 'utterance' string; skipped",
                        "chat turns hold speaker and utterance")
            return
        if speaker == "instructor":
            self.instructor = utterance
            if self.episode.instruction is None:
                self.episode.instruction = utterance
            return
        self._step(position, turn, Action(type="answer", text=utterance,
                                          raw=canonical_json({"intent": "say",
                                                              "speaker": speaker})), state)

    def _state(self, position: str, turn: dict[str, Any]) -> _State:
        """The turn's own screenshot, else the latest earlier one (WebLINX's rule)."""
        state = turn.get("state")
        name = state.get("screenshot") if isinstance(state, dict) else None
        if not isinstance(name, str) or not name:
            previous = self.state
            note = (f"no screenshot of its own; the state is the latest earlier one "
                    f"({previous.note})" if previous.frame is not None else None)
            return _State(previous.frame, previous.missing, note)
        if isinstance(state, dict) and state.get("screenshot_status") == "broken":
            self.episode.names_image(self.unit.path / SCREENSHOTS / name)
            self.episode.reject(file=self.file, position=position, level="frame",
                                reason=f"screenshot {name} is marked broken by WebLINX; not "
                                       "used as a state", hint="the step is kept without it")
            self.state = _State(None, FILE_CORRUPT)
            return self.state
        path = self.unit.path / SCREENSHOTS / name
        if not path.is_file():
            self.episode.reject(file=self.unit.relative(path), position=position,
                                level="frame", reason=f"screenshot {name} is missing",
                                hint="the step is kept without its state")
            self.state = _State(None, FILE_MISSING)
            return self.state
        frame = self.episode.add_frame_file(path)
        self.state = _State(frame, None if frame else FILE_CORRUPT, f"{SCREENSHOTS}/{name}")
        return _State(frame, self.state.missing)

    def _browser(self, intent: str, arguments: dict[str, Any]) -> Action | str:
        """The action of a browser turn, or what to count it as when it is not a step."""
        if intent in COUNTED:
            return COUNTED[intent]
        raw = canonical_json({"intent": intent, **{k: v for k, v in arguments.items()
                                                   if k in ("text", "value", "url", "scrollX",
                                                            "scrollY", "pasted", "selected")}})
        meta = _object(arguments.get("metadata"))
        target, point = _target_and_point(arguments, meta)
        if intent == "load":
            props = _object(arguments.get("properties"))
            url = props.get("url") or arguments.get("url")
            qualifiers = props.get("transitionQualifiers") or []
            if props.get("transitionType") not in TYPED_LOADS and (
                    "from_address_bar" not in qualifiers):
                return "load not typed by the user (follows a click, redirect or script)"
            return Action(type="navigate", url=url if isinstance(url, str) else None, raw=raw)
        if intent == "scroll":
            return self._scroll(arguments, meta, target, raw)
        if intent == "textinput":
            return Action(type="type", text=_typed(arguments.get("text")), target=target,
                          raw=raw, **point)
        if intent == "change":
            return Action(type="type", text=_typed(arguments.get("value")), target=target,
                          raw=raw, **point)
        if intent == "paste":
            return Action(type="type", text=_typed(arguments.get("pasted")), target=target,
                          raw=raw, **point)
        if intent == "copy":
            return Action(type="key", keys=("ctrl", "c"), target=target, raw=raw)
        return Action(type="click" if intent == "click" else "move", target=target, raw=raw,
                      **point)

    def _scroll(self, arguments: dict[str, Any], meta: dict[str, Any], target: Target | None,
                raw: str) -> Action | str:
        x, y = arguments.get("scrollX"), arguments.get("scrollY")
        if not (isinstance(x, int | float) and isinstance(y, int | float)):
            return "scroll without scrollX / scrollY"
        tab = meta.get("tabId")
        start = self.scroll.get(tab, (0.0, 0.0))
        self.scroll[tab] = (float(x), float(y))
        direction, amount = scroll_between(start, self.scroll[tab])
        return Action(type="scroll", direction=direction, amount=amount, target=target, raw=raw)

    def _step(self, position: str, turn: dict[str, Any], action: Action, state: _State) -> None:
        warnings = [state.note] if state.note else []
        if action.x is not None and not (0 <= action.x <= 1 and 0 <= (action.y or 0) <= 1):
            warnings.append(f"point ({action.px:g}, {action.py:g}) lies outside the viewport")
        seconds = turn.get("timestamp")
        steps = self.episode.steps
        if steps:  # the state before this step is the one after the previous step
            steps[-1].next_frame_id = state.frame.frame_id if state.frame else None
            steps[-1].next_frame_missing = state.missing
        self.episode.add_step(
            action, source_position=position,
            timestamp=float(seconds) if isinstance(seconds, int | float) else None,
            frame_id=state.frame.frame_id if state.frame else None,
            frame_missing=state.missing, next_frame_missing=FINAL_STATE_NOT_RECORDED,
            step_instruction=self.instructor, warnings=warnings)


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _typed(value: Any) -> str:
    """Typed text exactly as recorded (blanks are keystrokes too), "" when absent."""
    return value if isinstance(value, str) else ""


def _target_and_point(arguments: dict[str, Any], meta: dict[str, Any]
                      ) -> tuple[Target | None, dict[str, Any]]:
    """The element acted on (its box as fractions of the viewport) and the pointer point."""
    viewport = [meta.get("viewportWidth"), meta.get("viewportHeight")]
    sizes = [float(v) for v in viewport if isinstance(v, int | float) and v > 0]
    sized = len(sizes) == 2
    width, height = sizes if sized else (0.0, 0.0)
    element = arguments.get("element") if isinstance(arguments.get("element"), dict) else None
    box = element.get("bbox") if element and isinstance(element.get("bbox"), dict) else None
    values = [box.get(k) for k in ("left", "top", "right", "bottom")] if box else []
    boxed = len(values) == 4 and all(isinstance(v, int | float) for v in values)
    edges = [float(v) for v in values] if boxed else []
    target = None
    if element is not None:
        tag, text = element.get("tagName"), element.get("textContent")
        attributes = _object(element.get("attributes"))
        uid = attributes.get("data-webtasks-id")
        fractions: dict[str, float] = {}
        if boxed and sized:
            fractions = {"x0": normalise(edges[0], width), "y0": normalise(edges[1], height),
                         "x1": normalise(edges[2], width), "y1": normalise(edges[3], height)}
        target = Target(text=" ".join(text.split())[:200] if isinstance(text, str) and
                        text.strip() else None,
                        role=tag.lower() if isinstance(tag, str) else None,
                        element_id=uid if isinstance(uid, str) else None, **fractions)
    props = _object(arguments.get("properties"))
    px, py = props.get("clientX"), props.get("clientY")
    if not (isinstance(px, int | float) and isinstance(py, int | float)) and boxed:
        px, py = (edges[0] + edges[2]) / 2, (edges[1] + edges[3]) / 2
    if not (isinstance(px, int | float) and isinstance(py, int | float)):
        return target, {}
    point: dict[str, Any] = {"px": float(px), "py": float(py), "coord_space": "viewport_css_px"}
    if sized:
        x, y, _ = point_in_frame(float(px), float(py), width=width, height=height)
        point.update(x=x, y=y, screen_width=int(width), screen_height=int(height))
    return target, point


def _replay_turns(unit: SourceUnit) -> list[Any]:
    value = load_json(unit.path / REPLAY, unit)
    turns = value.get("data") if isinstance(value, dict) else None
    if not isinstance(turns, list):
        raise SourceError("replay.json has no 'data' list of turns",
                          file=unit.relative(unit.path / REPLAY),
                          hint="WebLINX replays are {\"data\": [turn, ...], \"version\": ...}")
    return turns


@register
class WeblinxAdapter(Adapter):
    name: ClassVar[str] = "weblinx"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "web"
    description: ClassVar[str] = ("WebLINX demonstrations (a folder with replay.json chat / "
                                  "browser turns, screenshots/, form.json)")
    priority: ClassVar[int] = 30

    def claims(self, path: Path) -> bool:
        replay = path / REPLAY
        if not path.is_dir() or not replay.is_file():
            return False
        head = text_head(replay)
        return head is not None and _HEAD.match(head) is not None and (
            _TURN.search(head) is not None)

    def image_files(self, unit: SourceUnit) -> list[Path]:
        return images_in(unit.path / SCREENSHOTS)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        if (unit.path / INVALID).exists():
            out.reject(file=unit.relative(unit.path / INVALID), position="", level="episode",
                       reason="the WebLINX authors marked this demonstration invalid",
                       hint="WebLINX's Demonstration.is_valid() leaves it out too")
            return
        turns = _replay_turns(unit)
        episode = out.episode()
        episode.clock = "relative"
        demo = _Demo(unit, episode)
        for index, turn in enumerate(turns):
            demo.turn(index, turn)
        form = unit.path / "form.json"
        if form.is_file():
            value = load_json(form, unit)
            if isinstance(value, dict):
                episode.metadata["form"] = {k: value[k] for k in (
                    "description", "tasks", "shortcode") if k in value}
        if demo.counts:
            episode.metadata["not_steps"] = dict(sorted(demo.counts.items()))
        episode.metadata["states"] = ("each turn's own screenshot, else the latest earlier "
                                      "one (WebLINX's assign_screenshot_to_turn rule)")
        # A demonstration is a completed human conversation; it records no success check.
        episode.terminated = bool(episode.steps)
        if not episode.steps:
            out.drop_episode(episode, file=demo.file, position="",
                             reason="the replay has no navigator action or utterance",
                             hint="an episode needs at least one step")
