"""``curate export --format adp|atif``: the store's episodes as Agent Data Protocol
standardized trajectories or ATIF trajectories (docs/sources/adp.md).

One JSON file holds every episode as a list, like ADP's ``sample_std.json`` and the ATIF
samples (``trajectories_std.json`` or ``trajectories_atif.json``); the screenshots the store
has are written to ``images/<frame_id>.<ext>`` and referenced from the image observations.
An action read from ADP or ATIF carries its source object in ``action.raw`` and is written
back as it was; any other action becomes an ``api_action`` whose function is the curate
action type and whose kwargs are its semantic fields (a ``tool_call`` keeps its own name
and arguments, an ``answer`` is a ``message_action``). Episodes are written in
``source_path, source_id`` order and the JSON with sorted keys, so the same store gives the
same bytes. The folder is staged and swapped into place like a dataset export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.actions import SEMANTIC_FIELDS, Action
from curate.store import open_store
from curate.store.core import Store
from curate.store.outputs import (
    Marker,
    check_output,
    read_marker,
    staged,
    swap_into_place,
    writing_to,
)

FORMS = ("adp", "atif")
ATIF_VERSION = "ATIF-v1.7"  # the version of the ATIF files ADP writes
ADP_VERSION = "1.3.2"
FILE_NAMES = {"adp": "trajectories_std.json", "atif": "trajectories_atif.json"}
_ADP_CLASSES = frozenset({"api_action", "code_action", "message_action"})
_EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif"}


@dataclass(frozen=True)
class InterchangeSummary:
    out: Path
    form: str
    trajectories: int
    steps: int
    images: int


@dataclass
class _Step:
    action: Action
    thought: str | None
    observation: str | None
    state: str | None  # image path in the export, or the path the source referenced
    next_state: str | None
    web: dict[str, Any] | None
    model: str | None = None  # steps.model: written back as the ATIF step's model_name


def export_interchange(store_path: Path, out: Path, form: str, *,
                       command: str = "curate export") -> InterchangeSummary:
    """Write the store's episodes to ``out`` as ADP (``form="adp"``) or ATIF trajectories."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    store = open_store(store_path)
    check_output(out, kind="export", store=store.path)
    store_marker = read_marker(store.path)
    marker = Marker("export", store_marker.store_id if store_marker else "unknown", command)
    with writing_to(out), staged(out, marker) as staging:
        summary = _write(store, staging, form)
        swap_into_place(staging, out)
    return InterchangeSummary(out, form, *summary)


def _write(store: Store, folder: Path, form: str) -> tuple[int, int, int]:
    images: dict[str, str] = {}
    trajectories = []
    steps_written = 0
    for episode, steps in _episodes(store):
        rows = [_step(store, folder, images, episode, row) for row in steps]
        steps_written += len(rows)
        trajectories.append(_adp(episode, rows) if form == "adp" else _atif(episode, rows))
    text = json.dumps(trajectories, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (folder / FILE_NAMES[form]).write_text(text, encoding="utf-8")
    return len(trajectories), steps_written, len(images)


def _episodes(store: Store) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    episodes = sorted(store.read_episodes().to_pylist(),
                      key=lambda e: (e["source_path"], e["source_id"]))
    by_episode: dict[str, list[dict[str, Any]]] = {}
    for row in store.read_steps().to_pylist():
        by_episode.setdefault(row["episode_id"], []).append(row)
    for episode in episodes:
        episode["metadata"] = json.loads(episode["metadata"]) if episode["metadata"] else {}
        rows = sorted(by_episode.get(episode["episode_id"], []), key=lambda r: r["step_index"])
        if rows:
            yield episode, rows


def _image(store: Store, folder: Path, images: dict[str, str], frame_id: str | None,
           referenced: str | None) -> str | None:
    """The export's path of a stored frame (written once), else the source's own path."""
    if frame_id is None:
        return referenced
    if frame_id not in images:
        data = store.frame_bytes(frame_id)
        extension = "png" if data[:4] == b"\x89PNG" else "jpg" if data[:2] == b"\xff\xd8" \
            else "bin"
        name = f"images/{frame_id}.{_EXTENSIONS.get(extension, extension)}"
        (folder / "images").mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
        images[frame_id] = name
    return images[frame_id]


def _step(store: Store, folder: Path, images: dict[str, str], episode: dict[str, Any],
          row: dict[str, Any]) -> _Step:
    metadata = episode["metadata"]
    index = row["step_index"]
    referenced = metadata.get("state_images") or []
    count = episode["step_count"]
    state_ref = referenced[index] if index < len(referenced) else None
    if index + 1 < count:
        next_ref = referenced[index + 1] if index + 1 < len(referenced) else None
    else:
        next_ref = metadata.get("final_image")
    return _Step(
        action=Action.from_row(row["action"]),
        thought=row["thought"],
        observation=row["observation"],
        state=_image(store, folder, images, row["frame_id"], state_ref),
        next_state=_image(store, folder, images, row["next_frame_id"], next_ref),
        web=(metadata.get("web_states") or {}).get(str(index)),
        model=row.get("model"),
    )


def adp_action(action: Action, thought: str | None) -> dict[str, Any]:
    """The ADP action object of a curate action (its own, when it was read from ADP)."""
    source = _source_object(action)
    if source is None:
        if action.type == "answer":
            source = {"class_": "message_action", "content": action.text or ""}
        elif action.type == "tool_call":
            source = {"class_": "api_action", "function": action.tool_name or "",
                      "kwargs": json.loads(action.tool_args or "{}")}
        else:
            kwargs = {name: getattr(action, name) for name in SEMANTIC_FIELDS[1:]
                      if getattr(action, name) not in (None, ())}
            if "keys" in kwargs:
                kwargs["keys"] = list(kwargs["keys"])
            source = {"class_": "api_action", "function": action.type, "kwargs": kwargs}
    source["description"] = thought
    return source


def _source_object(action: Action) -> dict[str, Any] | None:
    if not action.raw:
        return None
    try:
        value = json.loads(action.raw)
    except json.JSONDecodeError:
        return None
    if isinstance(value, dict) and value.get("class_") in _ADP_CLASSES:
        return value
    return None


def _adp(episode: dict[str, Any], steps: list[_Step]) -> dict[str, Any]:
    metadata = episode["metadata"]
    content: list[dict[str, Any]] = []
    task: list[dict[str, Any]] = []
    if episode["instruction"]:
        if metadata.get("task_kind") == "message_action":
            task.append({"class_": "message_action", "content": episode["instruction"],
                         "description": None})
        else:
            task.append({"class_": "text_observation", "content": episode["instruction"],
                         "source": "user", "name": None})
    if not metadata.get("task_after_state"):
        content, task = task, []
    shown: str | None = None
    for step in steps:
        if step.web is not None:
            content.append({"class_": "web_observation", **step.web})
        if step.state is not None and step.state != shown:
            content.append({"class_": "image_observation", "content": step.state,
                            "source": "environment"})
        content += task
        task = []
        content.append(adp_action(step.action, step.thought))
        if step.observation:
            content.append({"class_": "text_observation", "content": step.observation,
                            "source": "environment", "name": None})
        shown = step.next_state
        if step.next_state is not None:
            content.append({"class_": "image_observation", "content": step.next_state,
                            "source": "environment"})
    details = metadata.get("details") if metadata.get("form") == "adp" else None
    return {"schema_version": ADP_VERSION, "id": _trajectory_id(episode),
            "content": content, "details": details or {"source_format":
                                                       episode["source_format"]}}


def _trajectory_id(episode: dict[str, Any]) -> str:
    source_id = str(episode["source_id"])
    return source_id.rsplit("#", 1)[1] if "#" in source_id else source_id


def _atif(episode: dict[str, Any], steps: list[_Step]) -> dict[str, Any]:
    metadata = episode["metadata"]
    out: list[dict[str, Any]] = []

    def add(**fields: Any) -> None:
        out.append({"step_id": len(out) + 1, **fields})

    if episode["instruction"]:
        add(source="user", message=episode["instruction"])
    shown: str | None = None
    for step in steps:
        states = []
        if step.web is not None:
            states.append({"content": "", "extra": {"web": step.web}})
        if step.state is not None and step.state != shown:
            states.append(_image_result(step.state, None))
        if states:
            add(source="agent", message="", observation={"results": states})
        source = adp_action(step.action, step.thought)
        named = {"model_name": step.model} if step.model else {}
        if source["class_"] == "message_action":
            add(source="agent", message=source.get("content") or "", **named)
        else:
            call_id = f"call_{len(out) + 1}"
            function = source.get("function") if source["class_"] == "api_action" else \
                "code_action"
            arguments = source.get("kwargs") if source["class_"] == "api_action" else {
                "language": source.get("language"), "content": source.get("content")}
            results = []
            if step.observation:
                results.append({"source_call_id": call_id, "content": step.observation})
            if step.next_state is not None:
                results.append(_image_result(step.next_state, call_id))
            fields: dict[str, Any] = {"source": "agent", **named, "message": step.thought or "",
                                      "tool_calls": [{"tool_call_id": call_id,
                                                      "function_name": function,
                                                      "arguments": arguments or {}}]}
            if results:
                fields["observation"] = {"results": results}
            add(**fields)
            shown = step.next_state
            continue
        shown = None
    agent = metadata.get("agent") if metadata.get("form") == "atif" else None
    return {"schema_version": ATIF_VERSION, "session_id": _trajectory_id(episode),
            "agent": agent or {"name": "curate", "version": episode["adapter_version"],
                               "extra": {"source_format": episode["source_format"]}},
            "steps": out}


def _image_result(path: str, call_id: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "image", "source": {"path": path}}]}
    if call_id is not None:
        result["source_call_id"] = call_id
    return result
