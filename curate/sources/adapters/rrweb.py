"""rrweb session recordings (``rrweb``, platform web): the event stream rrweb's recorder
emits and session-replay tools store (a JSON list of events, ``{"events": [...]}``, or JSON
lines), one recording per episode.

Events are ``{type, data, timestamp}`` (rrweb's ``EventType``: 0 DomContentLoaded, 1 Load,
2 FullSnapshot, 3 IncrementalSnapshot, 4 Meta, 5 Custom, 6 Plugin). A full snapshot is the
serialised DOM (nodes with ``id``: Document 0, DocumentType 1, Element 2 with ``tagName`` /
``attributes`` / ``childNodes``, Text 3, CDATA 4, Comment 5); incremental snapshots carry a
``source`` (0 Mutation with ``adds`` / ``removes`` / ``attributes`` / ``texts``, 1 MouseMove,
2 MouseInteraction with ``type`` / ``id`` / ``x`` / ``y``, 3 Scroll ``{id, x, y}``,
4 ViewportResize, 5 Input ``{id, text, isChecked, userTriggered}``, ...). See
docs/sources/rrweb.md.

The DOM is mirrored event by event; a step is a user action: a click (double and right
clicks too), typing into a field, a scroll. States are DOM text, not screenshots: the
page's text and form controls as lines (``[button] Search``, ``[input name=q] "shoes"``);
the state after a step is its ``observation`` (taken right before the next action, so the
mutations the action caused are in it), the state before the first step is
``metadata.initial_dom_text``.

Traps handled:

* a browser reports a double click as click, click, dblclick: the two clicks on the same
  node become one ``double_click``;
* every keystroke is an Input event holding the field's whole value: consecutive inputs on
  one field are one ``type`` step with the last value; inputs with ``userTriggered: false``
  (set by the page's script) update the mirror but are not steps; a checkbox's input
  follows its click and is not a second step;
* scroll events are throttled positions, not deltas: consecutive scrolls of one target are
  one ``scroll`` step, direction and amount from the first and last position;
* a full snapshot in the middle (navigation, rrweb's checkout) replaces the mirror; node ids
  start again;
* click coordinates are viewport CSS pixels: normalised by the viewport of the latest Meta /
  ViewportResize event;
* bad events (not an object, unknown type, an incremental event before any snapshot,
  mutations naming nodes that do not exist) are rejected one by one with their position.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, Target, canonical_json
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    TEXT_ONLY,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    StepRecord,
    UnitBuilder,
    iter_jsonl,
    load_json,
    point_in_frame,
    scroll_between,
    text_head,
)

FULL_SNAPSHOT, INCREMENTAL, META = 2, 3, 4
KNOWN_EVENTS = frozenset(range(7))
MUTATION, MOUSE_MOVE, MOUSE_INTERACTION, SCROLL, VIEWPORT, INPUT = 0, 1, 2, 3, 4, 5
CLICK, CONTEXT_MENU, DOUBLE_CLICK = 2, 3, 4
DOCUMENT, TEXT = 0, 3
HIDDEN_TAGS = frozenset({"script", "style", "head", "noscript", "template", "meta", "link"})
CONTROL_TAGS = frozenset({"input", "textarea", "select", "button", "a", "option"})
_HEAD = re.compile(r'^\s*(?:\{\s*"events"\s*:\s*)?\[\s*\{')
_EVENT_KEYS = (re.compile(r'"type"\s*:\s*[0-6]\b'), re.compile(r'"timestamp"\s*:\s*\d'),
               re.compile(r'"data"\s*:\s*\{'))
_SPACE = re.compile(r"\s+")


@dataclass(slots=True)
class Node:
    kind: int
    tag: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    children: list[int] = field(default_factory=list)
    parent: int | None = None


class Mirror:
    """The page's DOM as rrweb serialised it, kept up to date by mutations."""

    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        self.root: int | None = None

    def load(self, node: Any) -> None:
        self.nodes, self.root = {}, None
        self.root = self.add(node, None)

    def add(self, node: Any, parent: int | None) -> int | None:
        if not isinstance(node, dict) or not isinstance(node.get("id"), int):
            return None
        attrs = node.get("attributes")
        entry = Node(int(node.get("type", -1)), node.get("tagName"),
                     dict(attrs) if isinstance(attrs, dict) else {}, node.get("textContent"),
                     parent=parent)
        self.nodes[node["id"]] = entry
        for child in node.get("childNodes") or []:
            child_id = self.add(child, node["id"])
            if child_id is not None:
                entry.children.append(child_id)
        return int(node["id"])

    def remove(self, node_id: int) -> None:
        node = self.nodes.pop(node_id, None)
        if node is None:
            return
        parent = self.nodes.get(node.parent) if node.parent is not None else None
        if parent is not None and node_id in parent.children:
            parent.children.remove(node_id)
        for child in list(node.children):
            self.remove(child)

    def mutate(self, data: dict[str, Any]) -> list[str]:
        """Apply one mutation event; the problems found (unknown node ids)."""
        problems: list[str] = []
        for removed in data.get("removes") or []:
            if isinstance(removed, dict) and isinstance(removed.get("id"), int):
                self.remove(removed["id"])
        for added in data.get("adds") or []:
            parent_id = added.get("parentId") if isinstance(added, dict) else None
            parent = self.nodes.get(parent_id) if isinstance(parent_id, int) else None
            if parent is None:
                problems.append(f"adds a node under unknown parent id {parent_id!r}")
                continue
            node_id = self.add(added.get("node"), parent_id)
            if node_id is None:
                continue
            after = added.get("nextId")
            where = parent.children.index(after) if after in parent.children else len(
                parent.children)
            parent.children.insert(where, node_id)
        for change in data.get("attributes") or []:
            node = self._node(change)
            if node is None:
                problems.append("changes attributes of an unknown node")
                continue
            for key, value in (change.get("attributes") or {}).items():
                if value is None:
                    node.attributes.pop(key, None)
                else:
                    node.attributes[key] = value
        for change in data.get("texts") or []:
            node = self._node(change)
            if node is None:
                problems.append("changes the text of an unknown node")
                continue
            node.text = change.get("value")
        return problems

    def _node(self, change: Any) -> Node | None:
        node_id = change.get("id") if isinstance(change, dict) else None
        return self.nodes.get(node_id) if isinstance(node_id, int) else None

    def text(self) -> str:
        """The page as text: visible text and form controls, one line each."""
        lines: list[str] = []
        if self.root is not None:
            self._render(self.root, lines)
        return "\n".join(lines)

    def _render(self, node_id: int, lines: list[str]) -> None:
        node = self.nodes.get(node_id)
        if node is None:
            return
        if node.kind == TEXT:
            text = _SPACE.sub(" ", node.text or "").strip()
            if text:
                lines.append(text)
            return
        tag = (node.tag or "").lower()
        if tag in HIDDEN_TAGS:
            return
        if tag in CONTROL_TAGS:
            lines.append(self.describe(node_id))
            if tag in ("input", "textarea", "select"):
                return
            inner: list[str] = []
            for child in node.children:
                self._render(child, inner)
            if tag in ("button", "a", "option"):
                return  # their text is in the description
            lines.extend(inner)
            return
        for child in node.children:
            self._render(child, lines)

    def inner_text(self, node_id: int, limit: int = 80) -> str:
        parts: list[str] = []
        self._render_plain(node_id, parts)
        return _SPACE.sub(" ", " ".join(parts)).strip()[:limit]

    def _render_plain(self, node_id: int, parts: list[str]) -> None:
        node = self.nodes.get(node_id)
        if node is None or (node.tag or "").lower() in HIDDEN_TAGS:
            return
        if node.kind == TEXT:
            parts.append(node.text or "")
        for child in node.children:
            self._render_plain(child, parts)

    def describe(self, node_id: int) -> str:
        """``[tag name=... type=...] text "value"`` for a node."""
        node = self.nodes.get(node_id)
        if node is None:
            return f"[unknown node {node_id}]"
        tag = (node.tag or "node").lower()
        keys = [f"{key}={node.attributes[key]}" for key in ("id", "name", "type", "role",
                                                            "aria-label", "placeholder", "href")
                if isinstance(node.attributes.get(key), str) and node.attributes[key]]
        label = f"[{' '.join([tag, *keys])}]"
        text = self.inner_text(node_id)
        value = node.attributes.get("value")
        parts = [label] + ([text] if text else [])
        if isinstance(value, str) and value and tag in ("input", "textarea", "select"):
            parts.append(json.dumps(value))
        return " ".join(parts)

    def target(self, node_id: Any) -> Target | None:
        node = self.nodes.get(node_id) if isinstance(node_id, int) else None
        if node is None:
            return None
        if node.kind == DOCUMENT:
            return Target(role="document", element_id=str(node_id))
        role = node.attributes.get("role") if isinstance(node.attributes.get("role"),
                                                         str) else (node.tag or "").lower()
        text = self.inner_text(node_id) or next(
            (node.attributes[k] for k in ("aria-label", "name", "placeholder", "value")
             if isinstance(node.attributes.get(k), str) and node.attributes[k]), None)
        return Target(text=text or None, role=role or None, element_id=str(node_id))


@dataclass(slots=True)
class _Pending:
    """The step being built, kept open while the same gesture continues."""

    kind: str  # click, type, scroll
    node: Any
    step: StepRecord
    start: tuple[float, float] | None = None


class _Recording:
    def __init__(self, episode: EpisodeBuilder, file: str) -> None:
        self.episode = episode
        self.file = file
        self.mirror = Mirror()
        self.snapshot_seen = False
        self.viewport: tuple[float, float] | None = None
        self.pending: _Pending | None = None
        self.scroll_positions: dict[Any, tuple[float, float]] = {}
        self.counts: dict[str, int] = {}

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def reject(self, position: str, reason: str, hint: str) -> None:
        self.episode.reject(file=self.file, position=position, reason=reason, hint=hint)

    def event(self, position: str, event: Any) -> None:
        if not isinstance(event, dict) or event.get("type") not in KNOWN_EVENTS:
            kind = event.get("type") if isinstance(event, dict) else type(event).__name__
            self.reject(position, f"unknown rrweb event (type {kind!r}); skipped",
                        "rrweb events have a type 0-6, data and timestamp")
            return
        kind, data = event["type"], event.get("data")
        seconds = event.get("timestamp")
        moment = seconds / 1000 if isinstance(seconds, int | float) else None
        if not isinstance(data, dict):
            data = {}
        if kind == META:
            self._meta(data)
        elif kind == FULL_SNAPSHOT:
            self.mirror.load(data.get("node"))
            self.snapshot_seen = self.mirror.root is not None
            self.episode.metadata["full_snapshots"] = self.episode.metadata.get(
                "full_snapshots", 0) + 1
        elif kind == INCREMENTAL:
            self._incremental(position, data, moment)
        else:
            self.count(f"event type {kind}")

    def _meta(self, data: dict[str, Any]) -> None:
        href = data.get("href")
        if isinstance(href, str):
            pages = self.episode.metadata.setdefault("pages", [])
            if not pages or pages[-1] != href:
                pages.append(href)
        width, height = data.get("width"), data.get("height")
        if isinstance(width, int | float) and isinstance(height, int | float):
            self.viewport = (float(width), float(height))

    def _incremental(self, position: str, data: dict[str, Any], moment: float | None) -> None:
        source = data.get("source")
        if not self.snapshot_seen and source in (MUTATION, MOUSE_INTERACTION, INPUT):
            self.reject(position, "incremental event before the first full snapshot; the "
                        "page it acts on is unknown", "the recording lost its first "
                        "snapshot; events before one are skipped")
            return
        if source == MUTATION:
            for problem in self.mirror.mutate(data):
                self.reject(position, f"mutation {problem}; that change was skipped",
                            "the recording is missing the event that created the node")
        elif source == MOUSE_INTERACTION:
            self._mouse(position, data, moment)
        elif source == INPUT:
            self._input(position, data, moment)
        elif source == SCROLL:
            self._scroll(position, data, moment)
        elif source == VIEWPORT:
            width, height = data.get("width"), data.get("height")
            if isinstance(width, int | float) and isinstance(height, int | float):
                self.viewport = (float(width), float(height))
        else:
            self.count(f"incremental source {source}")

    # steps ------------------------------------------------------------------------------

    def _new_step(self, action: Action, position: str, moment: float | None,
                  warnings: list[str] | None = None) -> StepRecord:
        self.close()
        if not self.episode.steps:
            self.episode.metadata["initial_dom_text"] = self.mirror.text()
        return self.episode.add_step(action, source_position=position, timestamp=moment,
                                     frame_missing=TEXT_ONLY, next_frame_missing=TEXT_ONLY,
                                     warnings=warnings or [])

    def close(self) -> None:
        """The open step's after-state is the page now, before the next action."""
        if self.pending is not None:
            self.pending.step.observation = self.mirror.text()
            self.pending = None

    def _point(self, data: dict[str, Any]) -> dict[str, Any]:
        x, y = data.get("x"), data.get("y")
        if not (isinstance(x, int | float) and isinstance(y, int | float)):
            return {}
        values: dict[str, Any] = {"px": float(x), "py": float(y),
                                  "coord_space": "viewport_css_px"}
        if self.viewport is not None:
            width, height = self.viewport
            nx, ny, _ = point_in_frame(float(x), float(y), width=width, height=height)
            values.update(x=nx, y=ny, screen_width=int(width), screen_height=int(height))
        return values

    def _mouse(self, position: str, data: dict[str, Any], moment: float | None) -> None:
        kind = data.get("type")
        names = {CLICK: "click", CONTEXT_MENU: "right_click", DOUBLE_CLICK: "double_click"}
        if kind not in names:
            self.count(f"mouse interaction {kind}")
            return
        node = data.get("id")
        steps = self.episode.steps
        if kind == DOUBLE_CLICK and len(steps) >= 2 and all(
                s.action.type == "click" and s.action.target is not None
                and s.action.target.element_id == str(node) for s in steps[-2:]):
            # The browser's two clicks of a double click: one action.
            del steps[-2:]
            self.pending = None
        raw = canonical_json({"source": "MouseInteraction", "type": kind, "id": node,
                              "x": data.get("x"), "y": data.get("y")})
        action = Action(type=names[kind], target=self.mirror.target(node), raw=raw,
                        **self._point(data))
        step = self._new_step(action, position, moment)
        self.pending = _Pending("click", node, step)

    def _input(self, position: str, data: dict[str, Any], moment: float | None) -> None:
        node_id = data.get("id")
        node = self.mirror.nodes.get(node_id) if isinstance(node_id, int) else None
        text = data.get("text")
        pending = self.pending
        continues = pending is not None and pending.kind == "type" and pending.node == node_id
        reason = None
        if data.get("userTriggered") is False:
            reason = "input set by the page"
        elif isinstance(data.get("isChecked"), bool) and node is not None and str(
                node.attributes.get("type", "")).lower() in ("checkbox", "radio"):
            reason = "checkbox input (the click is the step)"
        if reason is None and not continues:
            self.close()  # the state after the previous step is the page before this typing
        if node is not None and isinstance(text, str):
            node.attributes["value"] = text
        if reason is not None:
            self.count(reason)
            return
        if continues and pending is not None:
            pending.step.action = Action(type="type", text=text if isinstance(text, str) else "",
                                         target=self.mirror.target(node_id),
                                         raw=pending.step.action.raw)
            return
        action = Action(type="type", text=text if isinstance(text, str) else "",
                        target=self.mirror.target(node_id),
                        raw=canonical_json({"source": "Input", "id": node_id}))
        step = self._new_step(action, position, moment)
        self.pending = _Pending("type", node_id, step)

    def _scroll(self, position: str, data: dict[str, Any], moment: float | None) -> None:
        node_id, x, y = data.get("id"), data.get("x"), data.get("y")
        if not (isinstance(x, int | float) and isinstance(y, int | float)):
            self.count("scroll without a position")
            return
        previous = self.scroll_positions.get(node_id, (0.0, 0.0))
        self.scroll_positions[node_id] = (float(x), float(y))
        pending = self.pending
        same = pending is not None and pending.kind == "scroll" and pending.node == node_id
        start = pending.start if same and pending is not None and pending.start else previous
        direction, amount = scroll_between(start, (float(x), float(y)))
        action = Action(type="scroll", direction=direction, amount=amount,
                        target=self.mirror.target(node_id),
                        raw=canonical_json({"source": "Scroll", "id": node_id}))
        if same and pending is not None:
            pending.step.action = action  # the same gesture goes on: one step
            return
        step = self._new_step(action, position, moment)
        self.pending = _Pending("scroll", node_id, step, start)


def _events(unit: SourceUnit, out: UnitBuilder, file: str) -> list[tuple[str, Any]]:
    if unit.path.suffix.lower() in (".jsonl", ".ndjson"):
        return [(f"line {number}", event) for number, event in iter_jsonl(unit.path, unit, out)]
    value = load_json(unit.path, unit)
    events = value.get("events") if isinstance(value, dict) else value
    if not isinstance(events, list):
        raise SourceError("expected a list of rrweb events (or an object with 'events')",
                          file=file, hint="save the events the recorder emitted as a list")
    base = "events" if isinstance(value, dict) else ""
    return [(f"{base}[{index}]", event) for index, event in enumerate(events)]


@register
class RrwebAdapter(Adapter):
    name: ClassVar[str] = "rrweb"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "web"
    description: ClassVar[str] = ("rrweb session recordings (event lists / JSON lines: full "
                                  "snapshot + incremental mutations, clicks, input, scroll); "
                                  "DOM-text states")
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        suffix = path.suffix.lower()
        if not path.is_file() or suffix not in (".json", ".jsonl", ".ndjson"):
            return False
        head = text_head(path)
        if head is None:
            return False
        if suffix == ".json" and not _HEAD.match(head):
            return False
        first = head.split("\n", 1)[0] if suffix != ".json" else head[:4096]
        return all(pattern.search(first) for pattern in _EVENT_KEYS)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        events = _events(unit, out, file)
        episode = out.episode()
        episode.platform = "web"
        episode.clock = "unix"
        recording = _Recording(episode, file)
        for position, event in events:
            recording.event(position, event)
        recording.close()
        if recording.counts:
            episode.metadata["not_steps"] = dict(sorted(recording.counts.items()))
        episode.metadata["states"] = "DOM text (no screenshots are rendered)"
        episode.truncated = bool(episode.steps)  # a replay records no end of task
        if not episode.steps:
            out.drop_episode(episode, file=file, position="",
                             reason="the recording has no click, input or scroll",
                             hint="an episode needs at least one user action")
