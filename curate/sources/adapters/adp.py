"""Agent Data Protocol (ADP) standardized trajectories and ATIF trajectories (``adp``).

Two interchange forms of the same thing, both read as one episode per trajectory:

* **ADP standardized** (neulab/agent-data-protocol, ``schema/``): ``{id, content[], details}``
  where ``content`` interleaves actions (``api_action`` function + kwargs, ``code_action``
  language + content, ``message_action``) and observations (``text_observation``,
  ``image_observation`` path + element annotations, ``web_observation`` html / axtree / url).
  A file holds a list of trajectories (``sample_std.json``) or one per line (``.jsonl``).
* **ATIF** (Agent Trajectory Interchange Format, Harbor RFC 0001, ``schema_version``
  ``ATIF-v1.x``): ``{session_id, agent, steps[]}``; each step has ``source``
  (user / agent / system), ``message``, ``tool_calls[]`` (``function_name``, ``arguments``)
  and ``observation.results[].content`` (a string, or text / image parts).

Mapping (docs/sources/adp.md has the field table):

* each action is a step; the last image before it is its state, the next image its next
  state; text observations after it are its ``observation``; web observations are state text
  (episode metadata ``state_text``, the fields verbatim in ``web_states``);
* the task is the first user text (ADP's AITW and AndroidControl converters write it as a
  leading ``message_action`` instead: that is the task too, as their ATIF form says);
* ``api_action`` functions of the GUI datasets ADP converts become GUI actions, by the
  conventions of the converter that wrote them: ``touch_and_lift`` in [0, 1] (AITW, a tap
  when both points are within AITW's 0.04), ``click`` / ``long_press`` x, y in device pixels
  (AndroidControl), ``bid`` element ids (BrowserGym datasets). Any other function is a
  ``tool_call`` with its kwargs. pyautogui ``code_action`` is parsed (never run); other code
  is a ``code_action`` tool call. ``message_action`` after the task is an ``answer``;
* the ADP (or ATIF) encoding of every action is kept in ``action.raw``, so ``curate export
  --format adp|atif`` writes it back unchanged;
* referenced images that are not on disk leave the step's frame missing (``file_missing``)
  and one frame-level report per trajectory lists them; nothing is invented.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, Target, canonical_json, normalise
from curate.actions.pyautogui import parse_pyautogui
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters._mobile import swipe_direction
from curate.sources.adapters._outcome import outcome_from_ending
from curate.sources.adapters.aitw import is_tap
from curate.sources.adapters.base import (
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    INTERMEDIATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    TEXT_ONLY,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    StepRecord,
    UnitBuilder,
    iter_jsonl,
    load_json,
    text_head,
)
from curate.sources.values import text_or_none
from curate.store.frames import Frame

ADP_ACTIONS = frozenset({"api_action", "code_action", "message_action"})
ADP_OBSERVATIONS = frozenset({"text_observation", "image_observation", "web_observation"})
ATIF_PREFIX = "ATIF-v"
# ADP's dataset folders keep the converter's input beside its output: the same records.
RAW_COMPANION = "sample_raw.json"
_BACK = frozenset({"back", "go_back", "navigate_back", "press_back"})
_HOME = frozenset({"home", "navigate_home", "press_home"})
_NAVIGATE = frozenset({"goto", "go_to", "navigate", "open_url"})
_TYPE = frozenset({"type", "input_text", "type_text", "fill"})
_CLICKS = {"click": "click", "tap": "click", "long_press": "long_press",
           "double_click": "double_click", "right_click": "right_click"}


@dataclass(slots=True)
class _Image:
    """An image observation: where it is (a path in the file's folder, or inline bytes)."""

    path: str | None
    data: bytes | None = None


@dataclass(slots=True)
class _Event:
    """One item of a trajectory in the order recorded: an action, an observation or the task."""

    kind: str  # task, action, text, image, web
    position: str
    text: str | None = None
    image: _Image | None = None
    action: dict[str, Any] | None = None  # the ADP action object (class_, function, ...)
    thought: str | None = None
    web: dict[str, Any] | None = None
    model: str | None = None  # ATIF: the step's model_name, else the agent's


@dataclass(slots=True)
class _Trajectory:
    trajectory_id: str
    form: str  # adp or atif
    position: str
    events: list[_Event] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def _is_adp(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("content"), list)
            and "id" in value and not isinstance(value.get("steps"), list))


def _is_atif(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("steps"), list)
            and str(value.get("schema_version", "")).startswith(ATIF_PREFIX))


def _unquoted(value: Any) -> Any:
    """BrowserGym-derived ADP data writes string arguments JSON-quoted (``"\\"93\\""``)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            inner = json.loads(value)
        except json.JSONDecodeError:
            return value
        return inner if isinstance(inner, str) else value
    return value


# ---------------------------------------------------------------- reading the two forms

def _adp_events(record: dict[str, Any], position: str) -> list[_Event]:
    events: list[_Event] = []
    for index, item in enumerate(record["content"]):
        where = f"{position}.content[{index}]"
        kind = item.get("class_") if isinstance(item, dict) else None
        if kind in ADP_ACTIONS:
            assert isinstance(item, dict)
            thought = (text_or_none(item.get("reasoning_content"))
                       or text_or_none(item.get("description")))
            events.append(_Event("action", where, action=item, thought=thought))
        elif kind == "text_observation":
            assert isinstance(item, dict)
            events.append(_Event("task" if item.get("source") == "user" else "text", where,
                                 text=text_or_none(item.get("content"))))
        elif kind == "image_observation":
            assert isinstance(item, dict)
            events.append(_Event("image", where, image=_image_ref(item.get("content"))))
        elif kind == "web_observation":
            assert isinstance(item, dict)
            web = {k: item.get(k) for k in ("html", "axtree", "url", "viewport_size")}
            events.append(_Event("web", where, web=web))
            nested = item.get("image_observation")
            if isinstance(nested, dict):
                events.append(_Event("image", where, image=_image_ref(nested.get("content"))))
        else:
            events.append(_Event("unknown", where, text=str(kind)))
    return events


def _atif_events(record: dict[str, Any], position: str) -> list[_Event]:
    events: list[_Event] = []
    agent = record.get("agent")
    default_model = text_or_none(agent.get("model_name")) if isinstance(agent, dict) else None
    for index, step in enumerate(record["steps"]):
        where = f"{position}.steps[{index}]"
        if not isinstance(step, dict):
            events.append(_Event("unknown", where, text=type(step).__name__))
            continue
        source = step.get("source")
        message = _message_text(step.get("message"))
        if source == "user":
            events.append(_Event("task", where, text=message))
            continue
        if source != "agent":
            continue  # system prompts are not part of the trajectory's actions
        calls = step.get("tool_calls") or []
        thought = text_or_none(step.get("reasoning_content")) or (message if calls else None)
        model = text_or_none(step.get("model_name")) or default_model
        for number, call in enumerate(calls):
            if not isinstance(call, dict) or not isinstance(call.get("function_name"), str):
                events.append(_Event("unknown", f"{where}.tool_calls[{number}]",
                                     text="tool call without function_name"))
                continue
            arguments = call.get("arguments")
            events.append(_Event("action", f"{where}.tool_calls[{number}]", thought=thought,
                                 action={"class_": "api_action",
                                         "function": call["function_name"],
                                         "kwargs": arguments if isinstance(arguments, dict)
                                         else {}}, model=model))
        if not calls and message is not None:
            events.append(_Event("action", where, action={"class_": "message_action",
                                                          "content": message}, model=model))
        events.extend(_atif_observation(step.get("observation"), where))
    return events


def _message_text(message: Any) -> str | None:
    if isinstance(message, list):
        parts = [part.get("text") for part in message
                 if isinstance(part, dict) and part.get("type") == "text"]
        return text_or_none("\n".join(p for p in parts if isinstance(p, str)))
    return text_or_none(message)


def _atif_observation(observation: Any, where: str) -> Iterator[_Event]:
    results = observation.get("results") if isinstance(observation, dict) else None
    for number, result in enumerate(results or []):
        if not isinstance(result, dict):
            continue
        at = f"{where}.observation.results[{number}]"
        content = result.get("content")
        web = (result.get("extra") or {}).get("web") if isinstance(result.get("extra"),
                                                                    dict) else None
        if isinstance(web, dict):
            yield _Event("web", at, web=web)
        if isinstance(content, str):
            if content.strip():
                yield _Event("text", at, text=content)
            continue
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "image":
                source = part.get("source")
                yield _Event("image", at, image=_image_ref(source))
            elif part.get("type") == "text" and text_or_none(part.get("text")):
                yield _Event("text", at, text=part["text"])


def _image_ref(value: Any) -> _Image:
    """An image given as a path, a data URL, or ATIF's ``source`` {path | data}."""
    if isinstance(value, dict):
        if isinstance(value.get("data"), str):
            return _Image(None, _decode(value["data"]))
        value = value.get("path") or value.get("url")
    if isinstance(value, str) and value.startswith("data:") and "," in value:
        return _Image(None, _decode(value.split(",", 1)[1]))
    return _Image(value if isinstance(value, str) and value else None)


def _decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _trajectories(unit: SourceUnit, out: UnitBuilder) -> Iterator[_Trajectory]:
    file = unit.relative(unit.path)
    records: Iterator[tuple[str, Any]]
    if unit.path.suffix.lower() == ".jsonl":
        records = ((f"line {n}", r) for n, r in iter_jsonl(unit.path, unit, out))
    else:
        value = load_json(unit.path, unit)
        items = value if isinstance(value, list) else [value]
        records = ((f"[{i}]", r) for i, r in enumerate(items))
    seen: dict[str, int] = {}
    for position, record in records:
        if _is_atif(record):
            trajectory_id = str(record.get("trajectory_id") or record.get("session_id") or
                                position)
            trajectory = _Trajectory(trajectory_id, "atif", position,
                                     _atif_events(record, position))
            trajectory.metadata = {"schema_version": record.get("schema_version"),
                                   "agent": record.get("agent"),
                                   "session_id": record.get("session_id"),
                                   "extra": record.get("extra")}
        elif _is_adp(record):
            trajectory = _Trajectory(str(record["id"]), "adp", position,
                                     _adp_events(record, position))
            trajectory.metadata = {"schema_version": record.get("schema_version"),
                                   "details": record.get("details") or {}}
        else:
            out.reject(file=file, position=position, level="episode",
                       reason="not an ADP trajectory ({id, content[]}) nor an ATIF one "
                              "({schema_version: ATIF-v1.x, steps[]})",
                       hint="each record of an ADP file is one trajectory object")
            continue
        count = seen.get(trajectory.trajectory_id, 0)
        seen[trajectory.trajectory_id] = count + 1
        if count:
            trajectory.trajectory_id = f"{trajectory.trajectory_id}#{count}"
        yield trajectory


# ---------------------------------------------------------------- actions

def convert_action(item: dict[str, Any], frame: Frame | None) -> tuple[Action, list[str]]:
    """The curate action of one ADP action object; ``raw`` keeps the object verbatim."""
    kind = item.get("class_")
    raw = canonical_json({k: v for k, v in item.items()
                          if k in ("class_", "function", "kwargs", "language", "content")})
    if kind == "message_action":
        return Action(type="answer", text=str(item.get("content") or ""), raw=raw), []
    if kind == "code_action":
        return _code_action(item, frame, raw)
    function = str(item.get("function") or "")
    kwargs = item.get("kwargs") if isinstance(item.get("kwargs"), dict) else {}
    assert isinstance(kwargs, dict)
    return _api_action(function, {k: _unquoted(v) for k, v in kwargs.items()}, frame, raw)


def _tool(function: str, kwargs: dict[str, Any], raw: str) -> Action:
    return Action(type="tool_call", tool_name=function, tool_args=canonical_json(kwargs),
                  raw=raw)


def _api_action(function: str, kwargs: dict[str, Any], frame: Frame | None,
                raw: str) -> tuple[Action, list[str]]:
    name = function.lower()
    element = kwargs.get("bid", kwargs.get("element_id"))
    target = Target(element_id=str(element)) if element not in (None, "") else None
    if name == "touch_and_lift" and _numbers(kwargs, "x0", "y0", "x1", "y1"):
        return _touch_and_lift(kwargs, frame, raw), []
    if name in _CLICKS and (_numbers(kwargs, "x", "y") or target is not None):
        if target is not None and not _numbers(kwargs, "x", "y"):
            return Action(type=_CLICKS[name], target=target, coord_space="element",
                          raw=raw), []
        return _pixel_point(_CLICKS[name], float(kwargs["x"]), float(kwargs["y"]), frame,
                            raw)
    if name in _TYPE and isinstance(kwargs.get("text"), str):
        return Action(type="type", text=kwargs["text"], target=target, raw=raw), []
    if name == "scroll":
        return _scroll(kwargs, raw), []
    if name == "open_app" and isinstance(kwargs.get("app_name"), str):
        return Action(type="open_app", app=kwargs["app_name"], raw=raw), []
    if name == "wait" and not kwargs:
        return Action(type="wait", raw=raw), []
    if name in _BACK and not kwargs:
        return Action(type="back", raw=raw), []
    if name in _HOME and not kwargs:
        return Action(type="home", raw=raw), []
    if name in _NAVIGATE and isinstance(kwargs.get("url"), str):
        return Action(type="navigate", url=kwargs["url"], raw=raw), []
    return _tool(function, kwargs, raw), []


def _numbers(kwargs: dict[str, Any], *names: str) -> bool:
    return all(isinstance(kwargs.get(n), int | float) and not isinstance(kwargs.get(n), bool)
               for n in names)


def _touch_and_lift(kwargs: dict[str, Any], frame: Frame | None, raw: str) -> Action:
    touch = (float(kwargs["x0"]), float(kwargs["y0"]))
    lift = (float(kwargs["x1"]), float(kwargs["y1"]))
    width, height = (frame.width, frame.height) if frame else (None, None)
    if is_tap(touch, lift):
        return Action(type="click", x=round(touch[0], 4), y=round(touch[1], 4), px=touch[0],
                      py=touch[1], coord_space="norm_1", screen_width=width,
                      screen_height=height, raw=raw)
    return Action(type="swipe", x=round(touch[0], 4), y=round(touch[1], 4),
                  x2=round(lift[0], 4), y2=round(lift[1], 4),
                  direction=swipe_direction(lift[0] - touch[0], lift[1] - touch[1]),
                  px=touch[0], py=touch[1], px2=lift[0], py2=lift[1], coord_space="norm_1",
                  screen_width=width, screen_height=height, raw=raw)


def _pixel_point(kind: str, px: float, py: float, frame: Frame | None,
                 raw: str) -> tuple[Action, list[str]]:
    """A point in device pixels: normalised by the state's screenshot when it is there."""
    if frame is None:
        return Action(type=kind, px=px, py=py, coord_space="screen_px", raw=raw), [
            "pixel coordinates without the screenshot: x/y not normalised"]
    return Action(type=kind, x=normalise(px, frame.width), y=normalise(py, frame.height),
                  px=px, py=py, coord_space="screen_px", screen_width=frame.width,
                  screen_height=frame.height, scale=1.0, raw=raw), []


def _scroll(kwargs: dict[str, Any], raw: str) -> Action:
    direction = kwargs.get("direction")
    if isinstance(direction, str) and direction.lower() in ("up", "down", "left", "right"):
        return Action(type="scroll", direction=direction.lower(), raw=raw)
    dx, dy = kwargs.get("delta_x", 0), kwargs.get("delta_y", 0)
    if isinstance(dx, int | float) and isinstance(dy, int | float) and (dx or dy):
        vertical = abs(dy) >= abs(dx)
        amount = float(abs(dy) if vertical else abs(dx))
        word = ("down" if dy > 0 else "up") if vertical else ("right" if dx > 0 else "left")
        return Action(type="scroll", direction=word, amount=amount, coord_space="screen_px",
                      raw=raw)
    return _tool("scroll", kwargs, raw)


def _code_action(item: dict[str, Any], frame: Frame | None,
                 raw: str) -> tuple[Action, list[str]]:
    code = item.get("content") if isinstance(item.get("content"), str) else ""
    language = str(item.get("language") or "")
    fallback = _tool("code_action", {"language": language, "content": code}, raw)
    if language.lower() != "python" or "pyautogui" not in str(code):
        return fallback, []
    try:
        parsed = parse_pyautogui(str(code)).actions
    except ActionParseError as error:
        return fallback, [f"pyautogui code not parsed ({error}); kept as code"]
    if len(parsed) != 1:
        return fallback, [f"pyautogui code holds {len(parsed)} actions; kept as code"]
    action = parsed[0]
    if action.px is None or action.py is None:
        return replace(action, raw=raw), []
    point, warnings = _pixel_point(action.type, action.px, action.py, frame, raw)
    return replace(action, x=point.x, y=point.y, coord_space=point.coord_space,
                   screen_width=point.screen_width, screen_height=point.screen_height,
                   scale=point.scale, raw=raw), warnings


# ---------------------------------------------------------------- building episodes

class _Episode:
    """Turns the events of one trajectory into steps."""

    def __init__(self, unit: SourceUnit, episode: EpisodeBuilder, file: str) -> None:
        self.unit = unit
        self.episode = episode
        self.file = file
        self.frames: dict[str, Frame | None] = {}
        self.missing: list[str] = []
        self.state: tuple[_Image, Frame | None] | None = None  # the last image seen
        self.state_used = False
        self.state_images: list[str | None] = []
        self.next_images: dict[int, str | None] = {}
        self.task_after_state = False
        self.state_text: dict[str, str] = {}
        self.web_states: dict[str, dict[str, Any]] = {}
        self.pending_web: dict[str, Any] | None = None
        self.preamble: list[str] = []
        self.task_kind: str | None = None

    def feed(self, event: _Event) -> None:
        last = self.episode.steps[-1] if self.episode.steps else None
        if event.kind == "task":
            if event.text is None:
                return
            if self.episode.instruction is None and last is None:
                self.episode.instruction = event.text
                self.task_kind = "text_observation"
                # OmniAct's converter puts the screenshot before the task: keep the order.
                self.task_after_state = self.state is not None or self.pending_web is not None
            elif last is not None:
                last.observation = _joined(last.observation, event.text)
            else:
                self.preamble.append(event.text)
        elif event.kind == "text":
            if event.text is None:
                return
            if last is not None:
                last.observation = _joined(last.observation, event.text)
            else:
                self.preamble.append(event.text)
        elif event.kind == "image":
            assert event.image is not None
            self._image(event.image, last)
        elif event.kind == "web":
            self.pending_web = event.web
        elif event.kind == "action":
            assert event.action is not None
            self._action(event, last)
        else:
            self.episode.reject(file=self.file, position=event.position,
                                reason=f"unknown ADP item {event.text!r}; skipped",
                                hint=f"ADP content items are {sorted(ADP_ACTIONS)} or "
                                     f"{sorted(ADP_OBSERVATIONS)}")

    def _image(self, image: _Image, last: StepRecord | None) -> None:
        frame = self._frame(image)
        if last is not None and not self.state_used_by_next(last):
            last.next_frame_id = frame.frame_id if frame else None
            last.next_frame_missing = None if frame else FILE_MISSING
            self.next_images[len(self.episode.steps) - 1] = image.path
        self.state = (image, frame)
        self.state_used = False

    def state_used_by_next(self, last: StepRecord) -> bool:
        return last.next_frame_id is not None or last.next_frame_missing is not None

    def _frame(self, image: _Image) -> Frame | None:
        if image.data is not None:
            return self.episode.add_frame(image.data, file=self.file)
        if image.path is None:
            return None
        if image.path in self.frames:
            return self.frames[image.path]
        path = self.unit.path.parent / image.path
        frame = None
        if path.is_file():
            frame = self.episode.add_frame_file(path)
        else:
            self.missing.append(image.path)
        self.frames[image.path] = frame
        return frame

    def _action(self, event: _Event, last: StepRecord | None) -> None:
        assert event.action is not None
        if (event.action.get("class_") == "message_action" and last is None
                and self.episode.instruction is None and self.state is None):
            # ADP's AITW / AndroidControl converters open with the goal as a message.
            self.episode.instruction = text_or_none(event.action.get("content"))
            self.task_kind = "message_action"
            return
        fresh = self.state is not None and not self.state_used
        image, frame = self.state if fresh and self.state is not None else (None, None)
        action, warnings = convert_action(event.action, frame)
        index = len(self.episode.steps)
        step = self.episode.add_step(
            action, source_position=event.position, thought=event.thought, model=event.model,
            frame_id=frame.frame_id if frame else None,
            frame_missing=None if frame else self._why_no_frame(image),
            warnings=warnings)
        self.state_images.append(image.path if image is not None else None)
        self.state_used = True
        if self.pending_web is not None:
            self.web_states[str(index)] = self.pending_web
            text = (text_or_none(self.pending_web.get("axtree"))
                    or text_or_none(self.pending_web.get("html")))
            if text is not None:
                self.state_text[str(index)] = text
            self.pending_web = None
        if last is not None and last.next_frame_id is None and last.next_frame_missing is None:
            last.next_frame_id = step.frame_id
            last.next_frame_missing = step.frame_missing

    def _why_no_frame(self, image: _Image | None) -> str:
        if image is not None:
            return FILE_MISSING
        if self.state is not None:
            return INTERMEDIATE_NOT_RECORDED  # two actions after one screenshot
        return TEXT_ONLY if self.pending_web else NO_SCREENSHOTS

    def finish(self, trajectory: _Trajectory) -> None:
        episode = self.episode
        last = episode.steps[-1]
        if last.next_frame_id is None and last.next_frame_missing is None:
            last.next_frame_missing = (FINAL_STATE_NOT_RECORDED if self.state is not None
                                       else last.frame_missing)
        metadata = {k: v for k, v in trajectory.metadata.items() if v not in (None, {}, "")}
        metadata["form"] = trajectory.form
        metadata["task_kind"] = self.task_kind
        metadata["state_images"] = self.state_images
        metadata["final_image"] = self.next_images.get(len(episode.steps) - 1)
        if self.task_after_state:
            metadata["task_after_state"] = True
        for key, value in (("state_text", self.state_text), ("web_states", self.web_states),
                           ("preamble", self.preamble)):
            if value:
                metadata[key] = value
        if self.pending_web is not None:
            metadata["final_web_state"] = self.pending_web
        episode.metadata = metadata
        episode.terminated = last.action.type in ("answer", "done", "fail")
        outcome_from_ending(episode)  # ADP and ATIF record no verdict
        if self.missing:
            episode.reject(file=self.file, position=trajectory.position, level="frame",
                           reason=f"{len(self.missing)} image(s) the trajectory references "
                                  f"are not beside the file (first: {self.missing[0]})",
                           hint="the steps are kept with those frames missing "
                                "(file_missing); copy the images next to the file to "
                                "get them")


def _joined(first: str | None, second: str) -> str:
    return second if first is None else f"{first}\n{second}"


@register
class AdpAdapter(Adapter):
    name: ClassVar[str] = "adp"
    version: ClassVar[str] = "3"  # 2: an ending that gives up is fail (_outcome); 3: not
    # terminated is truncated (EpisodeBuilder.ending)
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("Agent Data Protocol standardized trajectories ({id, content"
                                  "[], details}) and ATIF trajectories (ATIF-v1.x steps[])")
    priority: ClassVar[int] = 40  # before the generic tool-call conversation formats

    def claims(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() not in (".json", ".jsonl"):
            return False
        head = text_head(path)
        if head is None:
            return False
        return f'"{ATIF_PREFIX}' in head or ('"class_"' in head and '"content"' in head)

    def input_files(self, unit: SourceUnit) -> list[Path]:
        """The file, and the ``sample_raw.json`` an ADP dataset folder keeps beside its
        ``sample_std.json`` (the records ADP converted it from: read here, not again)."""
        raw = unit.path.with_name(RAW_COMPANION)
        if unit.path.name.startswith("sample_std") and raw.is_file():
            return [unit.path, raw]
        return [unit.path]

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        found = False
        for trajectory in _trajectories(unit, out):
            found = True
            episode = out.episode(trajectory.trajectory_id)
            episode.platform = _platform(trajectory)
            builder = _Episode(unit, episode, file)
            for event in trajectory.events:
                builder.feed(event)
            if not episode.steps:
                out.drop_episode(episode, file=file, position=trajectory.position,
                                 reason="trajectory without any action",
                                 hint="an ADP trajectory needs at least one action item")
                continue
            builder.finish(trajectory)
        if not found:
            raise SourceError("no ADP or ATIF trajectory in the file", file=file,
                              hint="expected a list of {id, content[]} or ATIF objects")


def _platform(trajectory: _Trajectory) -> str:
    functions = {str((e.action or {}).get("function", "")).lower()
                 for e in trajectory.events if e.kind == "action"}
    if functions & {"touch_and_lift", "open_app", "long_press", "navigate_home", "back", "swipe"}:
        return "mobile"
    if any(e.kind == "web" for e in trajectory.events):
        return "web"
    if any(e.kind == "image" for e in trajectory.events):
        return "desktop"
    return "tool"
