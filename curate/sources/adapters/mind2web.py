"""Mind2Web: the processed task JSON, raw-dump task folders, Multimodal-Mind2Web Parquet.

Three layouts, one adapter (``mind2web``, platform ``web``), one episode per task (inner id
``annotation_id``):

* **processed JSON** (``train/*.json``, ``test_*/*.json``): a list of tasks (or one task
  object) with ``annotation_id``, ``website``, ``domain``, ``subdomain``, ``confirmed_task``,
  ``action_reprs`` and ``actions`` (``action_uid``, ``operation`` {``op``, ``original_op``,
  ``value``}, ``pos_candidates``/``neg_candidates``, ``raw_html``/``cleaned_html``). No
  screenshots: steps are kept with ``frame_missing = no_screenshots``.
* **raw-dump task folder** (``task/<annotation_id>/``): ``processed/screenshot.json`` is a list
  of ``{action_uid, action: {bounding_box: {x, y, width, height}}, before: {screenshot},
  after: {screenshot}}`` with base64 full-page screenshots. The dump keeps the operations in
  the processed data, so the folder must also hold the task's record as ``task.json``.
  ``trace.zip``, ``dom_content.json`` and the MHTML snapshots are not read.
* **Multimodal-Mind2Web Parquet** (``data/<split>-NNNNN-of-NNNNN.parquet``): one row per
  action with the same fields plus ``screenshot`` (a Hugging Face image struct), where
  ``operation`` is a JSON string and ``pos_candidates`` a list of JSON strings.

Traps handled:

* candidate ``attributes`` is a JSON string; in the Parquet rows the candidate itself is one
  too (JSON in JSON). ``bounding_box_rect`` inside it is the string ``"x,y,w,h"`` in page CSS
  pixels; ``"-1,-1,-1,-1"`` means the element was not rendered (no box, warning).
* ``pos_candidates`` may be empty (the target did not survive HTML cleaning): the step is
  kept with the element text/role from ``action_reprs`` and no coordinates (warning). With
  several positives, the ``is_original_target`` one wins.
* ``op`` is CLICK/TYPE/SELECT; ``original_op`` HOVER and ENTER were folded into CLICK by the
  authors and stay a click (warning names the original). TYPE → ``type`` at the element;
  SELECT → ``type`` of the option value at the ``<select>`` (the action space has no select;
  ``raw`` keeps ``op`` so it can be told apart). x/y of every step is the target box centre.
* screenshots are full pages, far taller than the viewport. Bytes are stored as recorded
  (never cropped or re-encoded), and x/y and target boxes are fractions of the whole page;
  the episode metadata says so (``frame_crop``). Points outside the page are kept and warned.
* the per-step description (``action_reprs[i]``, e.g. ``[combobox]  Time -> SELECT: 5:00
  PM``) goes to ``steps.step_instruction``; it also gives the target's role and text.
* processed JSON files are large (HTML per action): they are parsed once, dropping
  ``raw_html``/``cleaned_html``/``neg_candidates`` as each object is decoded (only the
  negative count is kept). Parquet is read in batches, without the HTML columns.
* screen elements (``steps.elements``, what the ``a11y`` executor grounds on) are the step's
  candidates, positive and negative, that have a visible ``bounding_box_rect``: role = the
  attributes' ``role`` or the ``tag`` (the positive takes the role and text of its
  ``action_reprs`` entry), text = the first of the accessible-name attributes
  (``aria_label``, ``text_value``, ``alt``, ``title``, ``placeholder``, ``label``,
  ``input_value``, ``value``); nothing else of a candidate is kept. Candidates carry no
  visible text of their own (that is in the HTML, not read), so a negative with none of
  those attributes is left out. Boxes need the page size, so only layouts with screenshots
  (raw dump, Parquet) get elements; in the processed JSON the negatives are still dropped.
* a task's Parquet rows can straddle two shard files: each shard gives a partial episode
  (steps ordered by ``target_action_index``), marked truncated with a warning naming the
  missing action indices. The state after the last row of a task is not recorded.
* outcome: Mind2Web tasks are verified human demonstrations: ``success``, terminated.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from curate.actions import Action, Target, canonical_json, normalise
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    NO_SCREENSHOTS,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    episode_id_for,
    open_unit,
    point_in_frame,
    text_head,
)
from curate.sources.elements import distinct, element
from curate.store.frames import Frame, binary_views

NAME = "mind2web"
SCREENSHOT_JSON = ("processed", "screenshot.json")
TASK_FILE = "task.json"
OPERATIONS = {"CLICK": "click", "TYPE": "type", "SELECT": "type"}
# Keys never needed and expensive to keep: whole-page HTML (and, without screenshots to
# place their boxes on, the hundreds of negative candidates).
DROPPED_KEYS = frozenset({"raw_html", "cleaned_html", "neg_candidates"})
# A candidate's accessible name, in order of preference (Mind2Web keeps these attributes).
NAME_ATTRIBUTES = ("aria_label", "aria-label", "text_value", "alt", "title", "placeholder",
                   "label", "input_value", "value")
PARQUET_REQUIRED = frozenset({"annotation_id", "action_uid", "operation", "screenshot"})
PARQUET_COLUMNS = ("annotation_id", "action_uid", "operation", "pos_candidates",
                   "neg_candidates", "website",
                   "domain", "subdomain", "confirmed_task", "screenshot", "action_reprs",
                   "target_action_index", "target_action_reprs")
PARQUET_BATCH_ROWS = 8
PARQUET_BUFFER = 8 << 20
TASK_FIELDS = ("website", "domain", "subdomain")
_REPR = re.compile(r"\s*\[(?P<role>[^\]]*)\]\s*(?P<text>.*?)\s*->\s*(?P<op>.*)$", re.DOTALL)
_SNIFF_KEY = re.compile(r'(?<!\\)"(?:annotation_id)"\s*:')
_SNIFF_TASK = re.compile(r'(?<!\\)"(?:confirmed_task|action_uid|action_reprs|pos_candidates)"\s*:')
FRAME_CROP = ("none: full-page screenshots are stored as recorded; x/y and target boxes are "
              "fractions of the whole page (page CSS px / screenshot size), not of a viewport")


@dataclass(slots=True)
class _Shot:
    """The state before (or after) one action: a frame, or why there is none."""

    frame: Frame | None = None
    missing: str | None = NO_SCREENSHOTS


@dataclass(slots=True)
class _ActionInput:
    """One Mind2Web action with whatever layout-specific extras came with it."""

    position: str
    record: dict[str, Any]
    description: str | None
    before: _Shot = field(default_factory=_Shot)
    after: _Shot = field(default_factory=_Shot)
    raw_box: tuple[float, float, float, float] | None = None  # raw dump's own target box
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Box:
    x: float
    y: float
    width: float
    height: float


@register
class Mind2WebAdapter(Adapter):
    name: ClassVar[str] = NAME
    version: ClassVar[str] = "2"  # 2: the candidates as steps.elements
    platform: ClassVar[str] = "web"
    description: ClassVar[str] = ("Mind2Web processed task JSON, raw-dump task folders "
                                  "(processed/screenshot.json + task.json) and "
                                  "Multimodal-Mind2Web Parquet")
    priority: ClassVar[int] = 30  # specific keys: before the generic JSON/JSONL adapters

    def claims(self, path: Path) -> bool:
        if path.is_dir():
            return path.joinpath(*SCREENSHOT_JSON).is_file()
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return _schema_is_mind2web(path)
        return suffix == ".json" and _json_is_mind2web(path)

    def streams_unit(self, unit: SourceUnit) -> bool:
        # A Parquet shard holds hundreds of tasks and their full-page screenshots: each task
        # is written out as soon as its last row is read, so memory does not grow with it.
        return unit.path.suffix.lower() == ".parquet"

    def reads_remote(self, path: str) -> bool:
        return path.lower().endswith(".parquet")

    def claims_remote(self, handle: IO[bytes]) -> bool:
        return _schema_is_mind2web(handle)

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        if unit.path.is_dir():
            _read_raw_dump(unit, out)
        elif unit.path.suffix.lower() == ".parquet":
            _read_parquet(unit, out)
        else:
            _read_processed(unit, out)


# -- sniffing -----------------------------------------------------------------------------------


def _json_is_mind2web(path: Path) -> bool:
    head = text_head(path)
    if head is None:
        return False
    return (head.lstrip().startswith(("[", "{")) and _SNIFF_KEY.search(head) is not None
            and _SNIFF_TASK.search(head) is not None)


def _schema_is_mind2web(source: Path | IO[bytes]) -> bool:
    """Whether a Parquet file (a path, or a handle on a Hub file) has the columns; only its
    footer is read."""
    # pyarrow is imported here, not at the top: `curate formats` loads every adapter.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(source).names)
    except (OSError, pa.ArrowException):
        return False
    return names >= PARQUET_REQUIRED


# -- decoding helpers ---------------------------------------------------------------------------


def _lean_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook: drop the HTML and the negatives as soon as they are decoded."""
    kept: dict[str, Any] = {}
    for key, value in pairs:
        if key == "neg_candidates" and isinstance(value, list):
            kept["neg_candidate_count"] = len(value)
        elif key not in DROPPED_KEYS:
            kept[key] = value
    return kept


def _lean_object_with_negatives(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook for a task with screenshots: the HTML dropped, each negative cut
    down to what an element needs as soon as its list is decoded."""
    kept = _lean_object(pairs)
    for key, value in pairs:
        if key == "neg_candidates" and isinstance(value, list):
            kept[key] = _lean_candidates(value)
    return kept


def _lean_candidates(values: Any) -> list[_Candidate]:
    """Negative candidates (objects or JSON strings) as role, text and box only."""
    return [_candidate(value) for value in values] if isinstance(values, list) else []


def _load_lean_json(path: Path, unit: SourceUnit, *, keep_negatives: bool = False) -> Any:
    name = unit.relative(path)
    hook = _lean_object_with_negatives if keep_negatives else _lean_object
    try:
        with path.open("rb") as handle:
            return json.load(handle, object_pairs_hook=hook)
    except OSError as error:
        raise SourceError(f"cannot read {path.name}: {error.strerror}", file=name,
                          hint="check the file's permissions") from None
    except UnicodeDecodeError as error:
        raise SourceError(f"{path.name} is not UTF-8: {error.reason}", file=name,
                          hint="re-download the Mind2Web file") from None
    except json.JSONDecodeError as error:
        raise SourceError(f"invalid JSON: {error.msg}", file=name,
                          position=f"line {error.lineno} column {error.colno}",
                          hint="the file is truncated or not JSON; re-download it") from None


def _maybe_json(value: Any) -> Any:
    """A JSON string decoded (Parquet rows and ``attributes`` hold JSON in strings)."""
    if isinstance(value, str) and value.lstrip().startswith(("{", "[")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _parse_rect(text: Any) -> _Box | None:
    """``"x,y,w,h"`` → box; None for ``-1,-1,-1,-1`` (not rendered) or anything unreadable."""
    if not isinstance(text, str):
        return None
    try:
        x, y, width, height = (float(part) for part in text.split(","))
    except ValueError:
        return None
    if width <= 0 or height <= 0 or (x, y, width, height) == (-1, -1, -1, -1):
        return None
    return _Box(x, y, width, height)


def _raw_box(value: Any) -> _Box | None:
    """The raw dump's ``{x, y, width, height}`` bounding box."""
    if not isinstance(value, dict):
        return None
    try:
        box = _Box(*(float(value[key]) for key in ("x", "y", "width", "height")))
    except (KeyError, TypeError, ValueError):
        return None
    return box if box.width > 0 and box.height > 0 else None


def _decode_image(text: Any) -> bytes | None:
    if not isinstance(text, str) or not text:
        return None
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


# -- reading one task ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Candidate:
    box: _Box | None
    tag: str | None
    node_id: str | None
    rect: str | None
    problem: str | None = None
    text: str | None = None  # the accessible name from its attributes (NAME_ATTRIBUTES)


def _candidate(value: Any) -> _Candidate:
    value = _maybe_json(value)
    if not isinstance(value, dict):
        return _Candidate(None, None, None, None, "positive candidate is not an object")
    attributes = _maybe_json(value.get("attributes"))
    tag = value.get("tag") if isinstance(value.get("tag"), str) else None
    node = value.get("backend_node_id")
    node_id = str(node) if node is not None else None
    if not isinstance(attributes, dict):
        return _Candidate(None, tag, node_id, None,
                          "candidate 'attributes' is not a JSON object string")
    rect = attributes.get("bounding_box_rect")
    box = _parse_rect(rect)
    problem = None if box else f"candidate bounding_box_rect {rect!r} gives no visible box"
    role = attributes.get("role")
    return _Candidate(box, role if isinstance(role, str) and role else tag, node_id,
                      rect if isinstance(rect, str) else None, problem, _name(attributes))


def _name(attributes: dict[str, Any]) -> str | None:
    for key in NAME_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _positive(candidates: Any, warnings: list[str]) -> _Candidate | None:
    """The positive candidate to use: the annotator's original target first."""
    if not isinstance(candidates, list) or not candidates:
        return None
    decoded = [_maybe_json(c) for c in candidates]
    originals = [c for c in decoded if isinstance(c, dict) and c.get("is_original_target") is True]
    chosen = (originals or decoded)[0]
    if len(decoded) > 1:
        used = "the original target" if originals else "the first one"
        warnings.append(f"{len(decoded)} positive candidates; used {used}")
    return _candidate(chosen)


def _operation(record: dict[str, Any]) -> tuple[str, str, str | None]:
    """(op, value, original_op); raises ValueError with the reason."""
    operation = _maybe_json(record.get("operation"))
    if not isinstance(operation, dict):
        raise ValueError(f"'operation' must be an object with 'op', got {operation!r:.60}")
    op = operation.get("op")
    if not isinstance(op, str) or op.upper() not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r}; expected CLICK, TYPE or SELECT")
    value = operation.get("value")
    original = operation.get("original_op")
    return (op.upper(), value if isinstance(value, str) else "",
            original if isinstance(original, str) else None)


class _TaskBuilder:
    """Turns one task's actions into the steps of its episode."""

    def __init__(self, episode: EpisodeBuilder, file: str) -> None:
        self.episode = episode
        self.file = file
        self.tall_frames = 0

    def add(self, item: _ActionInput) -> None:
        try:
            op, value, original = _operation(item.record)
        except ValueError as error:
            self.episode.reject(file=self.file, position=item.position, reason=str(error),
                                hint="the action is left out; fix its 'operation' to keep it")
            return
        warnings = list(item.warnings)
        if original and original.upper() != op:
            warnings.append(f"original operation {original} is recorded as {op} "
                            "(Mind2Web folds HOVER and ENTER into CLICK)")
        if op in ("TYPE", "SELECT") and not value:
            warnings.append(f"{op} with an empty value")
        target, box, candidate = self._target(item, warnings)
        action = self._action(op, value, original, target, box, candidate, item, warnings)
        self.episode.add_step(
            action, source_position=item.position,
            frame_id=item.before.frame.frame_id if item.before.frame else None,
            frame_missing=item.before.missing,
            next_frame_id=item.after.frame.frame_id if item.after.frame else None,
            next_frame_missing=item.after.missing,
            step_instruction=item.description, warnings=warnings,
            elements=self._elements(item, target, box))

    def _elements(self, item: _ActionInput, target: Target, box: _Box | None
                  ) -> list[dict[str, Any]] | None:
        """The step's candidates as screen elements, the positive (the target) first."""
        frame = item.before.frame
        if frame is None:
            return None
        found = [element(target.text, target.role, _corners(box), frame.width, frame.height,
                         target.element_id)]
        negatives = item.record.get("neg_candidates")  # lean already (_lean_candidates)
        found.extend(element(c.text, c.tag, _corners(c.box), frame.width, frame.height,
                             c.node_id)
                     for c in (negatives if isinstance(negatives, list) else [])
                     if isinstance(c, _Candidate))
        return distinct(found)

    def _target(self, item: _ActionInput, warnings: list[str]
                ) -> tuple[Target, _Box | None, _Candidate | None]:
        candidate = _positive(item.record.get("pos_candidates"), warnings)
        box: _Box | None = None
        if item.raw_box is not None:
            box = _Box(*item.raw_box)
        elif candidate is not None:
            box = candidate.box
            if candidate.problem:
                warnings.append(candidate.problem)
        else:
            warnings.append("no positive candidate (the target did not survive Mind2Web's "
                            "HTML cleaning): no coordinates")
        role, text = _repr_parts(item.description)
        role = role or (candidate.tag if candidate else None)
        target = Target(text=text, role=role,
                        element_id=candidate.node_id if candidate else None)
        frame = item.before.frame
        if box is not None and frame is not None:
            target = Target(text=text, role=role, element_id=target.element_id,
                            x0=normalise(box.x, frame.width), y0=normalise(box.y, frame.height),
                            x1=normalise(box.x + box.width, frame.width),
                            y1=normalise(box.y + box.height, frame.height))
        return target, box, candidate

    def _action(self, op: str, value: str, original: str | None, target: Target,
                box: _Box | None, candidate: _Candidate | None, item: _ActionInput,
                warnings: list[str]) -> Action:
        raw = canonical_json({
            "action_uid": item.record.get("action_uid"), "op": op, "original_op": original,
            "value": value, "backend_node_id": candidate.node_id if candidate else None,
            "bounding_box_rect": candidate.rect if candidate else None,
        })
        kind = OPERATIONS[op]
        text = value if kind == "type" else None
        if box is None:
            return Action(type=kind, text=text, target=target, raw=raw)
        px, py = box.x + box.width / 2, box.y + box.height / 2
        frame = item.before.frame
        x = y = None
        width = height = None
        if frame is not None:
            x, y, outside = point_in_frame(px, py, width=frame.width, height=frame.height)
            warnings.extend(outside)
            width, height = frame.width, frame.height
            self.tall_frames += frame.height > frame.width
        return Action(type=kind, x=x, y=y, text=text, target=target, px=round(px, 2),
                      py=round(py, 2), coord_space="page_css_px", screen_width=width,
                      screen_height=height, scale=1.0, raw=raw)


def _corners(box: _Box | None) -> tuple[float, float, float, float] | None:
    return None if box is None else (box.x, box.y, box.x + box.width, box.y + box.height)


def _repr_parts(description: str | None) -> tuple[str | None, str | None]:
    """Role and element text from ``[role]  text -> OP: value``."""
    if description is None:
        return None, None
    match = _REPR.match(description)
    if match is None:
        return None, None
    return match.group("role").strip() or None, match.group("text").strip() or None


def _start_episode(out: UnitBuilder, task: dict[str, Any], seen: set[str], file: str,
                   position: str, *, inner: bool = True) -> EpisodeBuilder | None:
    """An episode for a task with a usable annotation_id; otherwise an episode reject."""
    annotation_id = task.get("annotation_id")
    if not isinstance(annotation_id, str) or not annotation_id:
        out.reject(file=file, position=position, level="episode",
                   reason="task has no 'annotation_id' string",
                   hint="each Mind2Web task needs its annotation_id; re-export the file")
        return None
    if annotation_id in seen:
        out.reject(file=file, position=position, level="episode",
                   reason=f"annotation_id {annotation_id!r} appears twice in this unit; "
                          "only the first task was kept",
                   hint="remove the duplicate task",
                   episode_id=episode_id_for(NAME, f"{out.unit.source_path}#{annotation_id}"))
        return None
    seen.add(annotation_id)
    # A task folder is one episode (its own id); a file of many tasks names each one.
    episode = out.episode(annotation_id if inner else None)
    episode.platform = "web"
    confirmed = task.get("confirmed_task")
    episode.instruction = confirmed.strip() if isinstance(confirmed, str) else None
    episode.outcome, episode.terminated = "success", True
    episode.metadata.update({"annotation_id": annotation_id,
                             "demonstration": "human, verified by the Mind2Web authors"})
    for key in TASK_FIELDS:
        if isinstance(task.get(key), str):
            episode.metadata[key] = task[key]
    return episode


def _descriptions(task: dict[str, Any], count: int, episode: EpisodeBuilder
                  ) -> list[str | None]:
    reprs = task.get("action_reprs")
    if isinstance(reprs, list) and len(reprs) == count:
        return [r if isinstance(r, str) else None for r in reprs]
    if reprs is not None:
        episode.metadata["action_reprs_problem"] = (
            f"action_reprs has {len(reprs) if isinstance(reprs, list) else 'no list of'} "
            f"entries for {count} actions; step descriptions left empty")
    return [None] * count


def _finish(episode: EpisodeBuilder, builder: _TaskBuilder, with_frames: bool) -> None:
    if with_frames:
        episode.metadata["frame_crop"] = FRAME_CROP
        if builder.tall_frames:
            episode.metadata["full_page_steps"] = builder.tall_frames
    else:
        episode.metadata["coordinates"] = ("no screenshot in the processed data: x/y are null, "
                                           "px/py are page CSS pixels of the target box centre")


# -- layout 1: processed JSON -------------------------------------------------------------------


def _read_processed(unit: SourceUnit, out: UnitBuilder) -> None:
    file = unit.relative(unit.path)
    data = _load_lean_json(unit.path, unit)
    if isinstance(data, dict):
        tasks: list[Any] = [data]
        prefix = ""
    elif isinstance(data, list):
        tasks, prefix = data, "[{}]"
    else:
        raise SourceError(f"expected a list of Mind2Web tasks, got {type(data).__name__}",
                          file=file, hint="pass a train/test JSON file of Mind2Web")
    seen: set[str] = set()
    for index, task in enumerate(tasks):
        position = prefix.format(index)
        tasks[index] = None  # free each task once read
        if not isinstance(task, dict):
            out.reject(file=file, position=position or "top level", level="episode",
                       reason=f"expected a task object, got {type(task).__name__}",
                       hint="each entry must be a Mind2Web task")
            continue
        _processed_task(out, task, seen, file, position)


def _processed_task(out: UnitBuilder, task: dict[str, Any], seen: set[str], file: str,
                    position: str) -> None:
    episode = _start_episode(out, task, seen, file, position or "top level")
    if episode is None:
        return
    actions = task.get("actions")
    if not isinstance(actions, list):
        out.drop_episode(episode, file=file, position=position or "top level",
                         reason="task has no 'actions' list",
                         hint="re-export the task with its actions")
        return
    builder = _TaskBuilder(episode, file)
    base = f"{position}.actions" if position else "actions"
    for item in _action_inputs(task, actions, episode, file, base):
        builder.add(item)
    _finish(episode, builder, with_frames=False)


def _action_inputs(task: dict[str, Any], actions: list[Any], episode: EpisodeBuilder,
                   file: str, base: str) -> Iterator[_ActionInput]:
    """The task's actions with their descriptions; an action that is not an object is
    rejected (at ``base[index]``) and left out."""
    for (index, record), description in zip(
            enumerate(actions), _descriptions(task, len(actions), episode), strict=True):
        where = f"{base}[{index}]"
        if not isinstance(record, dict):
            episode.reject(file=file, position=where, reason="action is not an object",
                           hint="the action is left out")
            continue
        yield _ActionInput(where, record, description)


# -- layout 2: raw-dump task folder -------------------------------------------------------------


def _read_raw_dump(unit: SourceUnit, out: UnitBuilder) -> None:
    task_path = unit.path / TASK_FILE
    shots_path = unit.path.joinpath(*SCREENSHOT_JSON)
    task_file = unit.relative(task_path)
    if not task_path.is_file():
        raise SourceError(
            f"no {TASK_FILE} beside processed/: the raw dump keeps the screenshots, the "
            "operations and targets are in the processed train/test JSON", file=task_file,
            hint=f"save this task's object from the processed JSON as {TASK_FILE} in the "
                 "task folder, or ingest the processed JSON alone (without screenshots)")
    task = _load_lean_json(task_path, unit, keep_negatives=True)
    if isinstance(task, list) and len(task) == 1:
        task = task[0]
    if not isinstance(task, dict) or not isinstance(task.get("actions"), list):
        raise SourceError("expected one Mind2Web task object with 'actions'", file=task_file,
                          hint="copy the task's object from the processed train/test JSON")
    episode = _start_episode(out, task, set(), task_file, "top level", inner=False)
    if episode is None:
        return
    shots = _screenshot_entries(unit, shots_path, episode)
    builder = _TaskBuilder(episode, task_file)
    used: set[str] = set()
    for item in _action_inputs(task, task["actions"], episode, task_file, "actions"):
        _attach_shots(unit, episode, item, shots, used)
        builder.add(item)
    extra = sorted(set(shots) - used)
    if extra:
        episode.metadata["unused_screenshot_entries"] = extra
    episode.metadata["screenshots"] = "processed/screenshot.json (raw dump)"
    _finish(episode, builder, with_frames=True)


def _screenshot_entries(unit: SourceUnit, path: Path, episode: EpisodeBuilder
                        ) -> dict[str, tuple[int, dict[str, Any]]]:
    """action_uid → (index, entry) of processed/screenshot.json."""
    file = unit.relative(path)
    data = _load_lean_json(path, unit)
    if not isinstance(data, list):
        raise SourceError("processed/screenshot.json should be a list of per-action entries",
                          file=file, hint="re-download the task's raw dump")
    entries: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, entry in enumerate(data):
        uid = entry.get("action_uid") if isinstance(entry, dict) else None
        if not isinstance(uid, str):
            episode.reject(file=file, position=f"[{index}]", level="frame",
                           reason="screenshot entry has no 'action_uid' string",
                           hint="the entry cannot be matched to an action and is skipped")
            continue
        entries.setdefault(uid, (index, entry))
    return entries


def _attach_shots(unit: SourceUnit, episode: EpisodeBuilder, item: _ActionInput,
                  shots: dict[str, tuple[int, dict[str, Any]]], used: set[str]) -> None:
    file = unit.relative(unit.path.joinpath(*SCREENSHOT_JSON))
    uid = item.record.get("action_uid")
    found = shots.get(uid) if isinstance(uid, str) else None
    if found is None:
        item.before = item.after = _Shot(None, FILE_MISSING)
        episode.reject(file=file, position="", level="frame",
                       reason=f"no screenshot entry for action_uid {uid!r} ({item.position})",
                       hint="the step is kept without its screenshots; restore "
                            "processed/screenshot.json from the raw dump")
        return
    assert isinstance(uid, str)
    used.add(uid)
    index, entry = found
    action = entry.get("action")
    box = _raw_box(action.get("bounding_box") if isinstance(action, dict) else None)
    if box is not None:
        item.raw_box = (box.x, box.y, box.width, box.height)
    item.before = _shot(episode, entry, "before", file, f"[{index}].before.screenshot")
    item.after = _shot(episode, entry, "after", file, f"[{index}].after.screenshot")


def _shot(episode: EpisodeBuilder, entry: dict[str, Any], key: str, file: str,
          position: str) -> _Shot:
    part = entry.get(key)
    encoded = part.get("screenshot") if isinstance(part, dict) else None
    if encoded is None:
        episode.reject(file=file, position=position, level="frame",
                       reason=f"the {key} screenshot is absent",
                       hint="the step is kept without this state")
        return _Shot(None, FILE_MISSING)
    data = _decode_image(encoded)
    if data is None:
        episode.reject(file=file, position=position, level="frame",
                       reason=f"the {key} screenshot is not valid base64",
                       hint="restore processed/screenshot.json from the raw dump")
        return _Shot(None, FILE_CORRUPT)
    frame = episode.add_frame(data, file=file, position=position)
    return _Shot(frame, None) if frame is not None else _Shot(None, FILE_CORRUPT)


# -- layout 3: Multimodal-Mind2Web Parquet ------------------------------------------------------


@dataclass(slots=True)
class _Row:
    number: int
    values: dict[str, Any]

    @property
    def index(self) -> int | None:
        value = self.values.get("target_action_index")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None


@dataclass(slots=True)
class _TaskRows:
    """The rows of one task as pass 2 collects them; ``last`` is its last row's number."""

    last: int
    rows: list[_Row] = field(default_factory=list)


def _open_parquet(handle: IO[bytes], file: str) -> Any:
    import pyarrow.parquet as pq

    # Column chunks are read PARQUET_BUFFER bytes at a time, not whole: a row group of
    # full-page screenshots is ~100 MB per column, and reading it whole (plus its decoded
    # copy) was most of the memory of a streamed ingest.
    parquet = pq.ParquetFile(handle, buffer_size=PARQUET_BUFFER, pre_buffer=False)
    missing = PARQUET_REQUIRED - set(parquet.schema_arrow.names)
    if missing:
        raise SourceError(f"Parquet file lacks Multimodal-Mind2Web columns: "
                          f"{', '.join(sorted(missing))}", file=file,
                          hint="pass a Multimodal-Mind2Web data/*.parquet shard")
    return parquet


def _plan_tasks(parquet: Any, out: UnitBuilder, file: str) -> dict[str, _TaskRows]:
    """Pass 1, over the annotation_id column alone: each task's last row, tasks in the order
    of their first row (at most ``--limit`` of them); rows without an id are rejected."""
    limit = out.unit.remote.limit if out.unit.remote is not None else None
    ids = parquet.read(columns=["annotation_id"]).column(0).to_pylist()
    plan: dict[str, _TaskRows] = {}
    for number, annotation_id in enumerate(ids):
        if not isinstance(annotation_id, str) or not annotation_id:
            out.reject(file=file, position=f"row {number}", level="step",
                       reason="row has no annotation_id", hint="the row is left out")
        elif annotation_id in plan:
            plan[annotation_id].last = number
        elif limit is None or len(plan) < limit:
            plan[annotation_id] = _TaskRows(number)
    return plan


def _iter_rows(parquet: Any, plan: dict[str, _TaskRows], handle: IO[bytes]) -> Iterator[_Row]:
    """Pass 2: the planned rows with every column the adapter reads, one row group at a
    time; row groups after the last planned row are not fetched. A Hub handle is told the
    next group's column chunks as each group starts, so they arrive while this one is read."""
    names = set(parquet.schema_arrow.names)
    columns = [c for c in PARQUET_COLUMNS if c in names]
    end = max((task.last for task in plan.values()), default=-1)
    prefetch = getattr(handle, "prefetch", None)
    metadata = parquet.metadata
    first = 0
    for group in range(metadata.num_row_groups):
        if first > end:
            return
        number = first
        first += metadata.row_group(group).num_rows
        ahead = first <= end and group + 1 < metadata.num_row_groups
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns,
                                          row_groups=[group], use_threads=False):
            if ahead and prefetch is not None:
                # After the group's first read: its chunks and the next group's never wait in
                # memory together (a group of full-page screenshots is one page, read at once).
                prefetch(column_chunk_spans(metadata.row_group(group + 1), set(columns)))
                ahead = False
            shots = _screenshot_views(batch.column("screenshot"))
            for values, shot in zip(batch.drop_columns(["screenshot"]).to_pylist(), shots,
                                    strict=True):
                values["screenshot"] = shot
                if "neg_candidates" in values:  # hundreds of JSON strings: cut down at once
                    values["neg_candidates"] = _lean_candidates(values["neg_candidates"])
                yield _Row(number, values)
                number += 1


def _screenshot_views(column: Any) -> list[memoryview | None]:
    """Each row's screenshot bytes (the Hugging Face image struct's ``bytes``, or a plain
    binary column) as a view into the batch's Arrow buffer: never copied into Python bytes,
    hashed and written to the store from that buffer. None where a row has none."""
    import pyarrow as pa

    if pa.types.is_struct(column.type):
        index = column.type.get_field_index("bytes")
        if index < 0:
            return [None] * len(column)
        column = column.flatten()[index]  # the struct's own nulls applied
    if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        return [None] * len(column)
    return binary_views(column)


def column_chunk_spans(group: Any, columns: set[str]) -> list[tuple[int, int]]:
    """The ``(start, end)`` byte ranges of a row group's column chunks (Parquet metadata)
    under the named top-level columns: what reading those columns of the group fetches."""
    spans = []
    for index in range(group.num_columns):
        chunk = group.column(index)
        if chunk.path_in_schema.split(".", 1)[0] not in columns:
            continue
        start = chunk.data_page_offset
        if chunk.has_dictionary_page and chunk.dictionary_page_offset is not None:
            start = min(start, chunk.dictionary_page_offset)
        spans.append((start, start + chunk.total_compressed_size))
    return spans


def _read_parquet(unit: SourceUnit, out: UnitBuilder) -> None:
    """Tasks are written (``out.finish``) as soon as their last row is read, in the order of
    their first rows, so only the tasks in flight are held (shards keep a task's rows
    together, so that is one task)."""
    import pyarrow as pa

    file = unit.relative(unit.path)
    try:
        with open_unit(unit) as handle:
            parquet = _open_parquet(handle, file)
            plan = _plan_tasks(parquet, out, file)
            pending = deque(plan)  # tasks not yet written, by first row
            for row in _iter_rows(parquet, plan, handle):
                key = row.values.get("annotation_id")
                task = plan.get(key) if isinstance(key, str) else None
                if task is None:
                    continue
                task.rows.append(row)
                while pending and plan[pending[0]].rows and (
                        plan[pending[0]].rows[-1].number == plan[pending[0]].last):
                    _parquet_task(out, plan.pop(pending.popleft()).rows, file)
    except (OSError, pa.ArrowException) as error:
        raise SourceError(f"unreadable Parquet: {error}", file=file,
                          hint="the shard is truncated or corrupt; re-download it") from None


def _parquet_task(out: UnitBuilder, rows: list[_Row], file: str) -> None:
    first = rows[0].values
    episode = _start_episode(out, first, set(), file, f"row {rows[0].number}")
    if episode is None:
        return
    rows.sort(key=lambda r: (r.index if r.index is not None else r.number, r.number))
    shots = [_row_shot(episode, row, file) for row in rows]
    reprs = first.get("action_reprs")
    total = len(reprs) if isinstance(reprs, list) else None
    _note_missing_rows(episode, rows, total)
    builder = _TaskBuilder(episode, file)
    for position, row in enumerate(rows):
        after = _Shot()
        warnings: list[str] = []
        if position + 1 < len(rows):
            follower = rows[position + 1]
            if row.index is None or follower.index == row.index + 1:
                after = shots[position + 1]
            else:
                warnings.append(f"the next action's row (target_action_index "
                                f"{row.index + 1}) is not in this file: no next state")
        description = row.values.get("target_action_reprs")
        builder.add(_ActionInput(f"row {row.number}", row.values,
                                 description if isinstance(description, str) else None,
                                 before=shots[position], after=after, warnings=warnings))
    episode.metadata["screenshots"] = "Multimodal-Mind2Web screenshot column"
    _finish(episode, builder, with_frames=True)
    out.finish(episode)


def _row_shot(episode: EpisodeBuilder, row: _Row, file: str) -> _Shot:
    data = row.values.get("screenshot")  # a view (_screenshot_views) or None
    position = f"row {row.number}.screenshot"
    if not isinstance(data, memoryview) or not data:
        episode.reject(file=file, position=position, level="frame",
                       reason="the row has no screenshot bytes",
                       hint="the step is kept without its screenshot")
        return _Shot(None, FILE_MISSING)
    frame = episode.add_frame(data, file=file, position=position)
    return _Shot(frame, None) if frame is not None else _Shot(None, FILE_CORRUPT)


def _note_missing_rows(episode: EpisodeBuilder, rows: list[_Row], total: int | None) -> None:
    """A task whose rows are not all in this shard is partial: say which are missing."""
    indices = {row.index for row in rows if row.index is not None}
    if total is None or not indices:
        return
    missing = sorted(set(range(total)) - indices)
    if missing:
        episode.truncated = True
        episode.terminated = False
        episode.metadata["missing_action_indices"] = missing
        episode.metadata["partial"] = ("rows of this task are not all in this file (Parquet "
                                       "shards can split a task); the episode is partial")
