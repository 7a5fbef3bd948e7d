"""AgentLab / BrowserGym experiment folders.

A unit is one experiment folder: ``step_N.pkl.gz`` (one pickled ``StepInfo`` per step),
``summary_info.json``, and optionally ``goal_object.pkl.gz``, ``exp_args.pkl`` and
``screenshot_step_N.png``. Pickles are read with :mod:`curate.sources.unpickle` (nothing they name
is imported or run); third-party classes arrive as inert stubs whose state we read by name.

Traps handled:

* **Off by one.** ``step_N`` holds observation N and the action chosen from it, but the reward,
  the ``terminated`` flag, the action's error text and the execution timestamps of the
  transition *into* observation N. Step N's reward, observation (``last_action_error``) and
  timing are therefore read from ``step_N+1``.
* **Final observation.** The last ``step_N`` has ``action=None``: it is no action step, only
  the next state of the step before it. ``action=None`` anywhere else is a step reject.
* **Unreadable pickles** become step rejects naming the file; the step before it keeps its
  action but loses its reward and next state (with a warning). A missing ``step_N`` inside the
  numbering is reported once, as a step reject.
* **No steps at all** (AgentLab's ``test_study`` folders hold only ``exp_args.pkl`` and
  ``summary_info.json``): an episode-level reject whose reason quotes the summary's error.
* **Several actions in one step** (multi-line BrowserGym code) become consecutive steps; the
  intermediate states were never recorded, so only the first has s_t and only the last has
  s_t+1, the reward and the error text.
* **Actions are Python code** (``click('30')``, ``fill('12', 'x')``...). They are parsed with
  :mod:`ast` and literal evaluation only, never executed.
* **Element ids** (bids) are resolved to a box through ``extra_element_properties`` (bbox
  ``[x, y, w, h]`` in viewport CSS pixels) and named through the accessibility tree; clicks
  land on the box centre (``coord_space="element"``). An unresolvable bid keeps the action
  with ``element_id`` only and a warning.
* **No screenshot to normalise by.** Boxes are normalised by the viewport from
  ``exp_args.pkl`` when set, else by the screenshot's size, else by the page size in the DOM
  snapshot (with a warning saying so, as the real viewport was not recorded).
* **Screenshots.** ``screenshot_step_N.png`` files are used as recorded (preferred). An
  ``obs["screenshot"]`` NumPy array has no recorded encoding, so it is encoded once as PNG,
  deterministically (Pillow, no metadata, compress level 6): the one place this adapter
  encodes pixels. The set-of-marks images (``screenshot_som_step_N.png``) are overlays, not
  states, and are ignored. Without any screenshot, frames are missing with ``no_screenshots``.
* **Outcome.** ``cum_reward > 0`` is success; a crash (``err_msg``) without reward is unknown
  and truncated; terminated with no reward is fail; anything else is unknown.

Action mapping: click/dblclick/hover → click family/move; fill, clear and select_option →
``type`` at the element (select_option has no own type; the option label is the text);
press/keyboard_press → ``key``; scroll → ``scroll`` (amount in pixels); goto → ``navigate``;
go_back → ``back``; noop → ``wait`` (seconds); send_msg_to_user → ``answer``;
report_infeasible → ``fail``; mouse_* → pointer actions in viewport pixels. Functions with no
canonical equivalent (focus, upload_file, tabs, key down/up, go_forward...) become
``tool_call`` with their arguments, so nothing is lost.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, Target, canonical_json, normalise
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    INTERMEDIATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    images_in,
    load_json,
    point_in_frame,
)
from curate.sources.elements import distinct, element
from curate.sources.unpickle import Stub, get_field, load_restricted_file
from curate.sources.values import number_or_none, text_or_none
from curate.store.frames import Frame

STEP_FILE = re.compile(r"step_(\d+)\.pkl\.gz")
SUMMARY_FILE = "summary_info.json"
GOAL_FILE = "goal_object.pkl.gz"
EXP_ARGS_FILE = "exp_args.pkl"
# What AgentLab writes at the top of a study folder, beside the experiment folders.
STUDY_FILE = re.compile(r"study\.pkl(\.gz)?|(result|summary)_df.*\.csv")
SCREENSHOT_FILE = "screenshot_step_{}.png"


# --------------------------------------------------------------------------- the unit

@dataclass(slots=True)
class _Snapshot:
    """One ``step_N.pkl.gz``; ``info`` is None when the pickle could not be read."""

    number: int
    path: Path
    info: Any
    frame: Frame | None = None
    frame_missing: str | None = None

    @property
    def obs(self) -> dict[str, Any]:
        obs = get_field(self.info, "obs")
        return obs if isinstance(obs, dict) else {}


@register
class AgentLabAdapter(Adapter):
    name: ClassVar[str] = "agentlab"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "web"
    description: ClassVar[str] = (
        "AgentLab/BrowserGym experiment folder: step_N.pkl.gz + summary_info.json"
    )

    def claims(self, path: Path) -> bool:
        if not path.is_dir():
            return False
        if (path / EXP_ARGS_FILE).is_file():
            return True
        return any(STEP_FILE.fullmatch(child.name) for child in path.iterdir())

    def auxiliary(self, path: Path) -> str | None:
        if not STUDY_FILE.fullmatch(path.name):
            return None
        try:
            beside = [child for child in path.parent.iterdir() if child.is_dir()]
        except OSError:
            return None
        if any(self.claims(child) for child in beside):
            return ("an AgentLab study summary (study.pkl.gz, result/summary tables): the "
                    "experiment folders beside it are read")
        return None

    def image_files(self, unit: SourceUnit) -> list[Path]:
        return images_in(unit.path)  # screenshot_step_N.png beside the step pickles

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        numbered = _step_files(unit.path)
        if not numbered:
            raise SourceError(_no_steps_reason(unit), file=unit.source_path,
                              hint="this run saved no steps (a test stub or a run that never "
                                   "started); re-run the experiment or leave it out")
        episode = out.episode()
        snapshots = [_load_snapshot(unit, episode, number, path) for number, path in numbered]
        exp_args = _optional_pickle(unit, episode, unit.path / EXP_ARGS_FILE)
        viewport = _viewport(exp_args)
        _attach_frames(unit, episode, snapshots)
        _build_steps(unit, episode, snapshots, viewport)
        episode.instruction = _instruction(unit, episode, snapshots)
        _apply_summary(unit, episode, snapshots)
        _apply_exp_args(episode, exp_args, viewport)
        if not episode.steps:
            out.drop_episode(
                episode, file=unit.source_path, position="",
                reason=f"no usable action step in {len(numbered)} step pickle(s) "
                       "(see this folder's step rejects, or the run ended before its first "
                       "action)",
                hint="an episode without actions cannot train a policy; re-run the experiment",
            )


def _step_files(folder: Path) -> list[tuple[int, Path]]:
    """``step_N.pkl.gz`` files in numeric order (``step_10`` after ``step_9``)."""
    found = []
    for child in folder.iterdir():
        match = STEP_FILE.fullmatch(child.name)
        if match and child.is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def _no_steps_reason(unit: SourceUnit) -> str:
    reason = "no step_N.pkl.gz files: the experiment recorded no steps"
    summary_path = unit.path / SUMMARY_FILE
    if summary_path.is_file():
        try:
            summary = load_json(summary_path, unit)
        except SourceError:
            return reason
        if isinstance(summary, dict):
            reason += (f" (summary_info.json: n_steps={summary.get('n_steps')!r}, "
                       f"err_msg={summary.get('err_msg')!r})")
    else:
        reason += " (and no summary_info.json)"
    return reason


def _load_snapshot(unit: SourceUnit, episode: EpisodeBuilder, number: int,
                   path: Path) -> _Snapshot:
    try:
        info = load_restricted_file(path)
    except SourceError as error:
        episode.reject(file=unit.relative(path), position=error.position,
                       reason=f"step {number} unreadable: {error.reason}",
                       hint=error.hint + "; the step's action is lost, the rest is kept")
        return _Snapshot(number, path, None)
    if get_field(info, "obs") is None:
        episode.reject(file=unit.relative(path), position="",
                       reason=f"step {number}: expected a StepInfo with an 'obs' field, got "
                              f"{_describe(info)}",
                       hint="this is not an AgentLab step pickle; remove it from the folder")
        return _Snapshot(number, path, None)
    return _Snapshot(number, path, info)


def _describe(value: Any) -> str:
    if isinstance(value, Stub):
        return f"{value.stub_module}.{value.stub_name}"
    return type(value).__name__


def _optional_pickle(unit: SourceUnit, episode: EpisodeBuilder, path: Path) -> Any:
    """An auxiliary pickle, or None; a broken one is noted in the episode's metadata."""
    if not path.is_file():
        return None
    try:
        return load_restricted_file(path)
    except SourceError as error:
        _note(episode, f"{unit.relative(path)} ignored: {error.reason}")
        return None


def _note(episode: EpisodeBuilder, message: str) -> None:
    episode.metadata.setdefault("notes", []).append(message)


# --------------------------------------------------------------------------- frames

def _attach_frames(unit: SourceUnit, episode: EpisodeBuilder,
                   snapshots: list[_Snapshot]) -> None:
    """Give each snapshot its screenshot (PNG file first, else the obs array) or a reason."""
    for snap in snapshots:
        png = unit.path / SCREENSHOT_FILE.format(snap.number)
        if png.is_file():
            snap.frame = episode.add_frame_file(png)
        elif _is_image_array(snap.obs.get("screenshot")):
            snap.frame = _frame_from_array(unit, episode, snap)
        else:
            snap.frame_missing = FILE_MISSING
            continue
        if snap.frame is None:
            snap.frame_missing = FILE_CORRUPT
    if all(snap.frame is None and snap.frame_missing == FILE_MISSING for snap in snapshots):
        for snap in snapshots:
            snap.frame_missing = NO_SCREENSHOTS


def _is_image_array(value: Any) -> bool:
    shape = getattr(value, "shape", None)
    return isinstance(shape, tuple) and len(shape) in (2, 3) and hasattr(value, "dtype")


def _frame_from_array(unit: SourceUnit, episode: EpisodeBuilder, snap: _Snapshot) -> Frame | None:
    return episode.add_frame_array(snap.obs["screenshot"], file=unit.relative(snap.path),
                                   position="obs['screenshot']")


# --------------------------------------------------------------------------- page geometry

@dataclass(frozen=True, slots=True)
class _Page:
    """What an observation says about element boxes and the extent they are normalised by."""

    width: float | None
    height: float | None
    scale: float | None
    extent_warning: str | None
    boxes: dict[str, Any]
    names: dict[str, tuple[str | None, str | None]]  # bid -> (role, accessible name)
    # False for sources that never record boxes (AgentTrek's text prompts): a bid without one
    # is then the normal case, not worth a warning on every step.
    boxes_recorded: bool = True

    @classmethod
    def of(cls, snap: _Snapshot, viewport: tuple[int, int] | None) -> _Page:
        obs = snap.obs
        boxes = obs.get("extra_element_properties")
        width, height, scale, warning = _extent(obs, snap.frame, viewport)
        return cls(width, height, scale, warning, boxes if isinstance(boxes, dict) else {},
                   _ax_names(obs.get("axtree_object")))

    def elements(self) -> list[dict[str, Any]] | None:
        """Every named or roled element of the page with a visible box, in [0,1] of the page."""
        if self.width is None or self.height is None:
            return None
        found = []
        for bid, (role, text) in self.names.items():
            props = self.boxes.get(bid)
            bbox = get_field(props, "bbox")
            if not _is_box(bbox) or number_or_none(get_field(props, "visibility")) == 0.0:
                continue
            x, y, w, h = (float(v) for v in bbox)
            found.append(element(text, role, (x, y, x + w, y + h), self.width, self.height,
                                 bid))
        return distinct(found)

    def element(self, bid: str) -> tuple[Target, tuple[float, float] | None, list[str]]:
        """The target for a bid, the box centre in viewport pixels, and any warnings."""
        role, text = self.names.get(bid, (None, None))
        props = self.boxes.get(bid)
        bbox = get_field(props, "bbox")
        if not _is_box(bbox):
            where = "extra_element_properties" if props is None else "its bbox"
            return (Target(text=text, role=role, element_id=bid), None,
                    [f"element {bid!r} not resolved ({where} missing): kept with its id only"]
                    if self.boxes_recorded else [])
        x, y, w, h = (float(v) for v in bbox)
        warnings = []
        if number_or_none(get_field(props, "visibility")) == 0.0:
            warnings.append(f"element {bid!r} was not visible (visibility 0)")
        if self.width is None or self.height is None:
            warnings.append("no viewport, screenshot or page size to normalise the box by")
            return Target(text=text, role=role, element_id=bid), (x + w / 2, y + h / 2), warnings
        target = Target(text=text, role=role, element_id=bid,
                        x0=normalise(x, self.width), y0=normalise(y, self.height),
                        x1=normalise(x + w, self.width), y1=normalise(y + h, self.height))
        return target, (x + w / 2, y + h / 2), warnings


def _is_box(value: Any) -> bool:
    return (isinstance(value, list | tuple) and len(value) == 4
            and all(number_or_none(v) is not None for v in value))


def _extent(obs: dict[str, Any], frame: Frame | None, viewport: tuple[int, int] | None
            ) -> tuple[float | None, float | None, float | None, str | None]:
    """(width, height, frame pixels per CSS pixel, warning) of the box coordinate space."""
    if viewport is not None:
        scale = frame.width / viewport[0] if frame is not None else None
        return viewport[0], viewport[1], scale, None
    if frame is not None:
        return frame.width, frame.height, 1.0, None
    documents = get_field(obs.get("dom_object"), "documents")
    top = documents[0] if isinstance(documents, list) and documents else None
    width = number_or_none(get_field(top, "contentWidth"))
    height = number_or_none(get_field(top, "contentHeight"))
    if width and height:
        return width, height, None, (
            f"viewport size not recorded and no screenshot: boxes normalised by the page size "
            f"{width:g}x{height:g} from the DOM snapshot"
        )
    return None, None, None, None


def _ax_names(axtree: Any) -> dict[str, tuple[str | None, str | None]]:
    """bid -> (role, accessible name) from the accessibility tree snapshot."""
    names: dict[str, tuple[str | None, str | None]] = {}
    nodes = get_field(axtree, "nodes")
    for node in nodes if isinstance(nodes, list) else []:
        bid = get_field(node, "browsergym_id")
        if isinstance(bid, str):
            role, name = (get_field(get_field(node, key), "value") for key in ("role", "name"))
            names[bid] = (text_or_none(role, strip=True), text_or_none(name, strip=True))
    return names


def _viewport(exp_args: Any) -> tuple[int, int] | None:
    viewport = get_field(get_field(exp_args, "env_args"), "viewport")
    width, height = (number_or_none(get_field(viewport, key)) for key in ("width", "height"))
    return (int(width), int(height)) if width and height else None


# --------------------------------------------------------------------------- action parsing

@dataclass(frozen=True, slots=True)
class _Call:
    """One BrowserGym function call, its arguments bound to parameter names."""

    name: str
    args: dict[str, Any]
    raw: str
    known: bool = True


# Parameter names of BrowserGym's high-level action functions, in positional order.
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "noop": ("wait_ms",),
    "send_msg_to_user": ("text",),
    "report_infeasible": ("reason",),
    "scroll": ("delta_x", "delta_y"),
    "fill": ("bid", "value", "enable_autocomplete_menu"),
    "select_option": ("bid", "options"),
    "click": ("bid", "button", "modifiers"),
    "dblclick": ("bid", "button", "modifiers"),
    "hover": ("bid",),
    "press": ("bid", "key_comb"),
    "focus": ("bid",),
    "clear": ("bid",),
    "drag_and_drop": ("from_bid", "to_bid"),
    "upload_file": ("bid", "file"),
    "mouse_move": ("x", "y"),
    "mouse_up": ("x", "y", "button"),
    "mouse_down": ("x", "y", "button"),
    "mouse_click": ("x", "y", "button"),
    "mouse_dblclick": ("x", "y", "button"),
    "mouse_drag_and_drop": ("from_x", "from_y", "to_x", "to_y"),
    "mouse_upload_file": ("x", "y", "file"),
    "keyboard_down": ("key",),
    "keyboard_up": ("key",),
    "keyboard_press": ("key",),
    "keyboard_type": ("text",),
    "keyboard_insert_text": ("text",),
    "goto": ("url",),
    "go_back": (),
    "go_forward": (),
    "new_tab": (),
    "tab_close": (),
    "tab_focus": ("index",),
}


def parse_browsergym(code: str) -> list[_Call]:
    """Parse BrowserGym action code (one call per line) without executing it."""
    try:
        module = ast.parse(code, mode="exec")
    except SyntaxError as error:
        raise ActionParseError(f"not Python call syntax ({error.msg} at line {error.lineno})"
                               ) from None
    if not module.body:
        raise ActionParseError("empty action: expected at least one call such as click('12')")
    return [_parse_call(statement, code) for statement in module.body]


def _parse_call(statement: ast.stmt, code: str) -> _Call:
    raw = ast.get_source_segment(code, statement) or ""
    call = statement.value if isinstance(statement, ast.Expr) else None
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise ActionParseError(f"expected a function call like click('12'), got {raw[:60]!r}")
    try:
        positional = [ast.literal_eval(arg) for arg in call.args]
        keywords = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except ValueError:
        raise ActionParseError(f"arguments must be literals (strings, numbers, lists) in "
                               f"{raw[:60]!r}") from None
    if len(keywords) != len(call.keywords):
        raise ActionParseError(f"**kwargs are not allowed in {raw[:60]!r}")
    return _bind(call.func.id, positional, keywords, raw)


def _bind(name: str, positional: list[Any], keywords: dict[str, Any], raw: str) -> _Call:
    params = _SIGNATURES.get(name)
    if params is None:
        args = {"args": positional, **keywords} if positional else dict(keywords)
        return _Call(name, args, raw, known=False)
    if len(positional) > len(params):
        raise ActionParseError(f"{name}() takes at most {len(params)} arguments: {raw[:60]!r}")
    args = dict(zip(params, positional, strict=False))
    for key, value in keywords.items():
        if key not in params or key in args:
            raise ActionParseError(f"unexpected or repeated argument {key!r} in {raw[:60]!r}")
        args[key] = value
    return _Call(name, args, raw)


# --------------------------------------------------------------------------- action mapping

Converted = tuple[Action, list[str]]

_BUTTONS = {"left": "click", "right": "right_click", "middle": "middle_click"}
_MODIFIERS = ("ctrl", "alt", "shift", "meta")
_KEY_NAMES = {
    "control": "ctrl", "controlormeta": "ctrl", "arrowup": "up", "arrowdown": "down",
    "arrowleft": "left", "arrowright": "right", " ": "space", "esc": "escape",
}


def _keys(combo: Any) -> tuple[str, ...]:
    """Playwright key combo ('Control+Shift+a', 'Control++') -> lower-case keys, modifiers first."""
    if not isinstance(combo, str) or not combo:
        raise ActionParseError(f"expected a key name like 'Enter', got {combo!r}")
    if combo.endswith("+") and combo.rstrip("+"):  # the '+' key itself, after modifiers
        parts = [*combo[:-1].rstrip("+").split("+"), "+"]
    else:
        parts = combo.split("+") if combo != "+" else ["+"]
    keys = [_KEY_NAMES.get(part.lower(), part.lower()) for part in parts if part]
    return tuple(sorted(keys, key=lambda key: key not in _MODIFIERS))


def _element_action(kind: str, call: _Call, page: _Page, bid_arg: str = "bid",
                    pointer: bool = False, **values: Any) -> Converted:
    """An action aimed at a bid: target box and name, plus the box centre for pointer types."""
    bid = str(call.args.get(bid_arg, ""))
    target, centre, warnings = page.element(bid)
    if page.extent_warning and target.x0 is not None:
        warnings.append(page.extent_warning)
    extent = _provenance(page) if target.x0 is not None else {}
    if pointer and centre is not None and page.width and page.height:
        x, y, outside = point_in_frame(centre[0], centre[1], width=page.width,
                                       height=page.height)
        values.update(x=x, y=y, px=centre[0], py=centre[1])
        warnings.extend(outside)
    coord_space = "element" if target.x0 is not None or "px" in values else None
    action = Action(kind, target=target, raw=call.raw, coord_space=coord_space,
                    **extent, **values)
    return action, warnings


def _provenance(page: _Page) -> dict[str, Any]:
    assert page.width is not None and page.height is not None
    return {"screen_width": int(page.width), "screen_height": int(page.height),
            "scale": page.scale}


def _screen_point(kind: str, call: _Call, page: _Page, names: tuple[str, ...] = ("x", "y"),
                  **values: Any) -> Converted:
    """A mouse_* action at viewport pixels (optionally with an end point for drags)."""
    numbers = [number_or_none(call.args.get(name)) for name in names]
    if any(number is None for number in numbers):
        raise ActionParseError(f"{call.name}() needs numeric {', '.join(names)}: {call.raw!r}")
    points = [float(number) for number in numbers if number is not None]
    if not page.width or not page.height:
        return (Action(kind, px=points[0], py=points[1], coord_space="screen_px", raw=call.raw,
                       **values),
                ["no viewport, screenshot or page size to normalise the point by"])
    x, y, warnings = point_in_frame(points[0], points[1], width=page.width, height=page.height)
    values.update(x=x, y=y, px=points[0], py=points[1])
    if len(points) == 4:
        x2, y2, more = point_in_frame(points[2], points[3], width=page.width,
                                      height=page.height)
        values.update(x2=x2, y2=y2, px2=points[2], py2=points[3])
        warnings.extend(more)
    if page.extent_warning:
        warnings.append(page.extent_warning)
    return Action(kind, coord_space="screen_px", raw=call.raw, **_provenance(page),
                  **values), warnings


def _click(call: _Call, page: _Page) -> Converted:
    button = str(call.args.get("button", "left"))
    kind = "double_click" if call.name == "dblclick" else _BUTTONS.get(button, "click")
    action, warnings = _element_action(kind, call, page, pointer=True)
    if call.name == "dblclick" and button != "left":
        warnings.append(f"double click with the {button} button stored as double_click")
    if call.args.get("modifiers"):
        warnings.append(f"modifiers {call.args['modifiers']!r} have no field; see raw")
    return action, warnings


def _mouse_click(call: _Call, page: _Page) -> Converted:
    button = str(call.args.get("button", "left"))
    kind = "double_click" if call.name == "mouse_dblclick" else _BUTTONS.get(button, "click")
    return _screen_point(kind, call, page)


def _scroll(call: _Call, page: _Page) -> Converted:
    dx, dy = (number_or_none(call.args.get(key)) or 0.0 for key in ("delta_x", "delta_y"))
    warnings = []
    if dx and dy:
        warnings.append(f"diagonal scroll ({dx:g}, {dy:g}): direction from the larger delta")
    if abs(dy) >= abs(dx):
        direction = "down" if dy > 0 else "up" if dy < 0 else None
    else:
        direction = "right" if dx > 0 else "left"
    if direction is None:
        warnings.append("scroll by (0, 0)")
    return Action("scroll", direction=direction, amount=max(abs(dx), abs(dy)),
                  raw=call.raw), warnings


def _select(call: _Call, page: _Page) -> Converted:
    options = call.args.get("options")
    text = "\n".join(map(str, options)) if isinstance(options, list) else str(options)
    action, warnings = _element_action("type", call, page, text=text)
    return action, [*warnings, "select_option stored as type (the option label is the text)"]


def _tool_call(call: _Call, page: _Page) -> Converted:
    """A BrowserGym function with no canonical equivalent: kept whole as a tool call."""
    target = page.element(str(call.args["bid"]))[0] if "bid" in call.args else None
    warnings = [] if call.known else [f"unknown BrowserGym function {call.name}()"]
    return Action("tool_call", tool_name=call.name, tool_args=canonical_json(call.args),
                  target=target, raw=call.raw), warnings


def _simple(kind: str, text_arg: str | None = None) -> Callable[[_Call, _Page], Converted]:
    def convert(call: _Call, page: _Page) -> Converted:
        text = call.args.get(text_arg) if text_arg else None
        return Action(kind, text=None if text is None else str(text), raw=call.raw), []
    return convert


def _converters() -> dict[str, Callable[[_Call, _Page], Converted]]:
    return {
        "click": _click,
        "dblclick": _click,
        "hover": lambda call, page: _element_action("move", call, page, pointer=True),
        "fill": lambda call, page: _element_action(
            "type", call, page, text=str(call.args.get("value", ""))),
        "clear": lambda call, page: _element_action("type", call, page, text=""),
        "select_option": _select,
        "press": lambda call, page: _element_action(
            "key", call, page, keys=_keys(call.args.get("key_comb"))),
        "drag_and_drop": _drag,
        "mouse_move": lambda call, page: _screen_point("move", call, page),
        "mouse_click": _mouse_click,
        "mouse_dblclick": _mouse_click,
        "mouse_drag_and_drop": lambda call, page: _screen_point(
            "drag", call, page, ("from_x", "from_y", "to_x", "to_y")),
        "keyboard_press": lambda call, page: (
            Action("key", keys=_keys(call.args.get("key")), raw=call.raw), []),
        "keyboard_type": _simple("type", "text"),
        "keyboard_insert_text": _simple("type", "text"),
        "scroll": _scroll,
        "goto": lambda call, page: (
            Action("navigate", url=str(call.args.get("url", "")), raw=call.raw), []),
        "go_back": _simple("back"),
        "noop": lambda call, page: (Action(
            "wait", amount=(number_or_none(call.args.get("wait_ms", 1000)) or 0.0) / 1000,
            raw=call.raw), []),
        "send_msg_to_user": _simple("answer", "text"),
        "report_infeasible": _simple("fail", "reason"),
    }


def _drag(call: _Call, page: _Page) -> Converted:
    start, warnings = _element_action("drag", call, page, bid_arg="from_bid", pointer=True)
    _, end, more = page.element(str(call.args.get("to_bid", "")))
    warnings.extend(more)
    if end is None or not page.width or not page.height or start.x is None:
        return start, warnings
    x2, y2, outside = point_in_frame(end[0], end[1], width=page.width, height=page.height)
    warnings.extend(outside)
    return replace(start, x2=x2, y2=y2, px2=end[0], py2=end[1]), warnings


_CONVERTERS = _converters()


def convert_call(call: _Call, page: _Page) -> Converted:
    """One parsed BrowserGym call as a curate Action, with warnings."""
    return _CONVERTERS.get(call.name, _tool_call)(call, page)


def convert_code(code: str, obs: dict[str, Any] | None = None, *,
                 viewport: tuple[int, int] | None = None,
                 names: dict[str, tuple[str | None, str | None]] | None = None
                 ) -> list[Converted]:
    """BrowserGym action code as curate Actions (with warnings), resolved against ``obs``.

    ``names`` (bid -> (role, accessible name)) is for sources that have the accessibility tree
    only as text and no element boxes: targets get their role and name, and a missing box is
    not a warning. Raises ActionParseError for code that is not a sequence of literal-argument
    calls.
    """
    snap = _Snapshot(0, Path(), {"obs": obs or {}})
    page = _Page.of(snap, viewport)
    if names is not None:
        page = replace(page, names={**page.names, **names}, boxes_recorded=False)
    return [convert_call(call, page) for call in parse_browsergym(code)]


# --------------------------------------------------------------------------- steps

@dataclass(slots=True)
class _Transition:
    """What the step after an action says about it: next state, reward, error, timing."""

    frame_id: str | None = None
    frame_missing: str | None = None
    reward: float | None = None
    error: str | None = None
    start: float | None = None
    end: float | None = None
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def after(cls, snap: _Snapshot, following: _Snapshot | None, unit: SourceUnit) -> _Transition:
        if following is None:
            missing = snap.frame_missing or FILE_MISSING
            reason = NO_SCREENSHOTS if missing == NO_SCREENSHOTS else FILE_MISSING
            return cls(frame_missing=reason, warnings=[
                f"no step_{snap.number + 1}.pkl.gz: the result of this action was not recorded"])
        frame_id = following.frame.frame_id if following.frame else None
        if following.info is None:
            # The screenshot file of the next state may still exist beside the bad pickle.
            return cls(frame_id=frame_id, frame_missing=following.frame_missing, warnings=[
                f"{unit.relative(following.path)} unreadable: the reward and error text of "
                "this action are unknown"])
        profiling = get_field(following.info, "profiling")
        return cls(
            frame_id=frame_id,
            frame_missing=following.frame_missing,
            reward=number_or_none(get_field(following.info, "reward")),
            error=text_or_none(get_field(following.obs, "last_action_error"), strip=True),
            start=number_or_none(get_field(profiling, "action_exec_start")) or None,
            end=number_or_none(get_field(profiling, "action_exec_stop")) or None,
        )


def _build_steps(unit: SourceUnit, episode: EpisodeBuilder, snapshots: list[_Snapshot],
                 viewport: tuple[int, int] | None) -> None:
    by_number = {snap.number: snap for snap in snapshots}
    last = snapshots[-1].number
    # AgentLab numbers steps from 0: a run whose numbering starts later lost its first files.
    if snapshots[0].number > 0:
        _reject_gap(unit, episode, 0)
    for snap in snapshots:
        following = by_number.get(snap.number + 1)
        if following is None and snap.number != last:
            _reject_gap(unit, episode, snap.number + 1)
        if snap.info is None:
            continue
        action = get_field(snap.info, "action")
        if action is None:
            if snap.number != last:
                episode.reject(file=unit.relative(snap.path), position="action",
                               reason=f"step {snap.number} has action=None but is not the "
                                      f"last step (step_{last} follows)",
                               hint="only the final observation may lack an action; the "
                                    "run was probably interrupted and resumed")
            continue
        _add_steps(unit, episode, snap, following, viewport)
    if any(step.timestamp is not None for step in episode.steps):
        episode.clock = "unix"


def _reject_gap(unit: SourceUnit, episode: EpisodeBuilder, number: int) -> None:
    episode.reject(file=f"{unit.source_path}/step_{number}.pkl.gz", position="",
                   reason=f"step_{number}.pkl.gz is missing from the numbering",
                   hint="restore the file; the steps around it are kept without it")


def _add_steps(unit: SourceUnit, episode: EpisodeBuilder, snap: _Snapshot,
               following: _Snapshot | None, viewport: tuple[int, int] | None) -> None:
    name = unit.relative(snap.path)
    code = get_field(snap.info, "action")
    try:
        if not isinstance(code, str):
            raise ActionParseError(f"expected action code as a string, got {_describe(code)}")
        page = _Page.of(snap, viewport)
        elements = page.elements()
        converted = [convert_call(call, page) for call in parse_browsergym(code)]
    except ActionParseError as error:
        episode.reject(file=name, position="action", reason=f"bad action {code!r}: {error}",
                       hint="expected BrowserGym action code such as click('12'); the step "
                            "is dropped, the rest of the episode kept")
        return
    after = _Transition.after(snap, following, unit)
    thought = text_or_none(get_field(get_field(snap.info, "agent_info"), "think"), strip=True)
    for index, (action, warnings) in enumerate(converted):
        first, final = index == 0, index == len(converted) - 1
        position = name if len(converted) == 1 else (
            f"{name} call {index + 1} of {len(converted)}")
        notes = [] if len(converted) == 1 else [
            f"one of {len(converted)} actions in one step: intermediate states not recorded"]
        episode.add_step(
            action, source_position=position,
            frame_id=snap.frame.frame_id if first and snap.frame else None,
            frame_missing=(snap.frame_missing if first else INTERMEDIATE_NOT_RECORDED),
            next_frame_id=after.frame_id if final else None,
            next_frame_missing=after.frame_missing if final else INTERMEDIATE_NOT_RECORDED,
            timestamp=after.start if first else None,
            timestamp_end=after.end if final else None,
            thought=thought if first else None,
            observation=after.error if final else None,
            reward=after.reward if final else None,
            warnings=[*warnings, *notes, *(after.warnings if final else [])],
            elements=elements if first else None,
        )


# --------------------------------------------------------------------------- episode fields

def _instruction(unit: SourceUnit, episode: EpisodeBuilder,
                 snapshots: list[_Snapshot]) -> str | None:
    """The goal: text parts of goal_object.pkl.gz, else the first observation's goal."""
    goal = _optional_pickle(unit, episode, unit.path / GOAL_FILE)
    parts = goal if isinstance(goal, list) else []
    texts = [get_field(part, "text") for part in parts if get_field(part, "type") == "text"]
    if any(get_field(part, "type") not in (None, "text") for part in parts):
        _note(episode, "goal_object has non-text parts (images) that the instruction omits")
    joined = "\n".join(text for text in texts if isinstance(text, str)).strip()
    if joined:
        return joined
    for snap in snapshots:
        text = text_or_none(get_field(snap.obs, "goal"), strip=True)
        if text:
            return text
    return None


def _apply_summary(unit: SourceUnit, episode: EpisodeBuilder,
                   snapshots: list[_Snapshot]) -> None:
    summary = _read_summary(unit, episode)
    if summary is None:
        _summary_from_steps(episode, snapshots)
        return
    score = number_or_none(summary.get("cum_reward"))
    error = text_or_none(summary.get("err_msg"), strip=True)
    episode.score = score
    episode.terminated = bool(summary.get("terminated"))
    # A crash cuts the run off even when AgentLab did not flag it as truncated.
    episode.truncated = bool(summary.get("truncated")) or (error is not None
                                                          and not episode.terminated)
    episode.outcome = _outcome(score, episode.terminated, error)
    for key in ("n_steps", "err_msg", "stack_trace"):
        if summary.get(key) is not None:
            episode.metadata[key] = summary[key]


def _read_summary(unit: SourceUnit, episode: EpisodeBuilder) -> dict[str, Any] | None:
    path = unit.path / SUMMARY_FILE
    if not path.is_file():
        _note(episode, f"{SUMMARY_FILE} missing: outcome taken from the step pickles")
        return None
    try:
        summary = load_json(path, unit)
    except SourceError as error:
        _note(episode, f"{SUMMARY_FILE} unreadable ({error.reason} at {error.position}): "
                       "outcome taken from the step pickles")
        return None
    if not isinstance(summary, dict):
        _note(episode, f"{SUMMARY_FILE} is not a JSON object: outcome taken from the steps")
        return None
    return summary


def _summary_from_steps(episode: EpisodeBuilder, snapshots: list[_Snapshot]) -> None:
    readable = [snap for snap in snapshots if snap.info is not None]
    if not readable:
        return
    final = readable[-1].info
    episode.terminated = bool(get_field(final, "terminated"))
    episode.truncated = bool(get_field(final, "truncated"))
    if len(readable) == len(snapshots):
        episode.score = sum(number_or_none(get_field(snap.info, "reward")) or 0.0
                            for snap in readable)
    episode.outcome = _outcome(episode.score, episode.terminated, None)


def _outcome(score: float | None, terminated: bool, error: str | None) -> str:
    if score is not None and score > 0:
        return "success"
    if error is None and terminated and score is not None:
        return "fail"
    return "unknown"


def _apply_exp_args(episode: EpisodeBuilder, exp_args: Any,
                    viewport: tuple[int, int] | None) -> None:
    env_args, agent_args = get_field(exp_args, "env_args"), get_field(exp_args, "agent_args")
    values = {
        "task_name": get_field(env_args, "task_name"),
        "task_seed": get_field(env_args, "task_seed"),
        "max_steps": get_field(env_args, "max_steps"),
        "agent_name": get_field(agent_args, "agent_name"),
        "exp_name": get_field(exp_args, "exp_name"),
        "viewport": list(viewport) if viewport else None,
    }
    for key, value in values.items():
        if isinstance(value, str | int | float | list) and not isinstance(value, bool):
            episode.metadata[key] = value
