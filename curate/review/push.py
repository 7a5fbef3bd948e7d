"""``review push``: put steps, segments or episodes in front of reviewers in Label Studio.

Creates the project (config from annotations/) when it does not exist, checks its config
when it does, and imports one task per selected item that the project does not already
have (matched by ``curate_key``), so pushing twice never duplicates a task.

Imports are not idempotent on the server, so the SDK's blind retry is off for them: after a
failed or lost import response push lists the project and counts what landed by
``curate_key``, and after every push it checks the project's task count. An item that
changed since its task was pushed (another ``curate_fingerprint``) gets a new task; the old
one is marked superseded and keeps its annotations as history (pull does not apply them).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.review.client import Connection, ReviewError, connect, find_project, iter_tasks
from curate.review.configs import check_unit, is_earlier_config, label_config, unit_of_config
from curate.review.images import LOCAL_ROOT_ENV, ImageSource, read_frames
from curate.review.items import StoreItems
from curate.review.select import select_items
from curate.review.table import record_push
from curate.review.tasks import BUILDERS, frame_lookup, frames_needed
from curate.store.core import Store, open_store

log = logging.getLogger(__name__)
# Tasks per import request: data-URI screenshots make requests large.
IMPORT_CHUNK = 50
# Data key marking a task replaced by a newer one of the same item.
SUPERSEDED = "curate_superseded"


@dataclass
class PushSummary:
    project: str
    project_id: int
    unit: str
    url: str
    image_mode: str
    selected: int = 0
    created: int = 0
    already_present: int = 0
    superseded: int = 0
    project_created: bool = False
    task_ids: list[int] = field(default_factory=list)


def push(store_path: str | Path, *, project: str, url: str | None = None,
         api_key: str | None = None, unit: str = "step", filter_sql: str | None = None,
         sample: int | None = None, seed: int = 0, image_mode: str = "data-uri",
         local_files_root: str | Path | None = None) -> PushSummary:
    """Import the selected items of a store as review tasks with predictions."""
    check_unit(unit)
    store = open_store(store_path)
    root = local_files_root or os.environ.get(LOCAL_ROOT_ENV)
    images = ImageSource(image_mode, Path(root) if root else None)
    keys = select_items(store, unit, filter_sql=filter_sql, sample=sample, seed=seed)
    connection = connect(url, api_key)
    project_id, created = _ensure_project(connection, project, unit)
    summary = PushSummary(project, project_id, unit, connection.url, image_mode,
                          selected=len(keys), project_created=created)
    if images.folder is not None:
        _ensure_local_storage(connection, project_id, images.folder)
    tasks = list(iter_tasks(connection, project_id))
    items = StoreItems.load(store, with_segments=unit == "segment")
    if unit == "step":
        # what the pipeline makes of each step now (deferred: segment imports review)
        from curate.pipeline.segment import current_step_texts

        items.step_texts = current_step_texts(store)
    live = {t["data"].get("curate_key"): t for t in tasks if not superseded(t)}
    current = {key for key in keys if key in live
               and live[key]["data"].get("curate_fingerprint") == items.fingerprint(key)}
    todo = [key for key in keys if key not in current]
    summary.already_present = len(current)
    summary.task_ids = _import(connection, project_id, store, items, unit, todo, images)
    summary.created = len(summary.task_ids)
    stale = [live[key] for key in todo if key in live]
    for task in stale:
        _mark_superseded(connection, task)
    summary.superseded = len(stale)
    _check_count(connection, project_id, expected=len(tasks) + summary.created)
    record_push(store.path, project, {"unit": unit, "url": connection.url,
                                      "project_id": project_id, "keys": keys})
    log.info("pushed %d new %s tasks to %s", summary.created, unit, project)
    return summary


def _ensure_project(connection: Connection, title: str, unit: str) -> tuple[int, bool]:
    existing = find_project(connection, title)
    if existing is None:
        created = connection.call(
            f"create project {title!r}",
            lambda: connection.client.projects.create(
                title=title, label_config=label_config(unit),
                description=f"curate review of {unit}s (config annotations/{unit}_review.xml)"))
        return int(created.id or 0), True
    found = unit_of_config(str(existing.label_config), title)
    if found != unit:
        raise ReviewError(f"Label Studio project {title!r} reviews {found}s, not {unit}s; "
                          f"push with --unit {found} or choose another --project")
    if is_earlier_config(str(existing.label_config), unit):
        log.info("adding the controls of annotations/%s_review.xml to project %s", unit, title)
        connection.call(
            f"update the labeling config of {title!r}",
            lambda: connection.client.projects.update(id=int(existing.id),
                                                      label_config=label_config(unit)))
    return int(existing.id), False


def _ensure_local_storage(connection: Connection, project_id: int, folder: Path) -> None:
    """A local-files storage on the frames folder: the server serves only files under one."""
    folder.mkdir(parents=True, exist_ok=True)
    storages = connection.call("list local storages",
                               lambda: connection.client.import_storage.local.list(
                                   project=project_id))
    if any(Path(str(s.path)) == folder for s in storages):
        return
    connection.call(
        f"add a local-files storage for {folder} (is LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"
        f"=true and {folder} under the server's document root?)",
        lambda: connection.client.import_storage.local.create(
            project=project_id, path=str(folder), title="curate frames", use_blob_urls=False))


def superseded(task: dict[str, Any]) -> bool:
    """A task replaced by a newer one of the same item: history, not to be applied."""
    return bool((task.get("data") or {}).get(SUPERSEDED))


def _mark_superseded(connection: Connection, task: dict[str, Any]) -> None:
    data = {**task["data"], SUPERSEDED: True,
            "action_text": "SUPERSEDED: the item changed, review its new task. "
                           + str(task["data"].get("action_text", ""))}
    connection.call(f"mark task {task['id']} superseded",
                    lambda: connection.client.tasks.update(id=str(task["id"]), data=data))


def _import(connection: Connection, project_id: int, store: Store, items: StoreItems,
            unit: str, keys: list[str], images: ImageSource) -> list[int]:
    build = BUILDERS[unit]
    task_ids: list[int] = []
    for start in range(0, len(keys), IMPORT_CHUNK):
        chunk = keys[start:start + IMPORT_CHUNK]
        frame_of = frame_lookup(read_frames(store, frames_needed(items, chunk)))
        tasks: list[Any] = [build(items, key, frame_of, images) for key in chunk]
        task_ids.extend(_import_chunk(connection, project_id, tasks))
    return task_ids


def _import_chunk(connection: Connection, project_id: int, tasks: list[Any]) -> list[int]:
    """Import once (no retry: a retried import whose first response was lost doubles every
    task); after an error, the ids of the tasks that landed anyway, found by key."""
    try:
        response = connection.call(
            f"import {len(tasks)} tasks",
            lambda: connection.client.projects.import_tasks(
                project_id, request=tasks, return_task_ids=True,
                request_options={"max_retries": 0}))
    except ReviewError as error:
        wanted = {(t["data"]["curate_key"], t["data"]["curate_fingerprint"]) for t in tasks}
        landed = [int(t["id"]) for t in iter_tasks(connection, project_id)
                  if (t["data"].get("curate_key"), t["data"].get("curate_fingerprint"))
                  in wanted and not superseded(t)]
        if len(landed) != len(wanted):
            raise ReviewError(f"{error}\n{len(landed)} of the {len(wanted)} tasks of this "
                              "import reached the project; push again to add the rest "
                              "(tasks already there are not imported twice)") from None
        log.warning("the import answered with an error but all %d tasks reached the project "
                    "(%s)", len(landed), error)
        return sorted(landed)
    # task_ids is in the body but not the SDK's response model: read it as extra data
    return [int(i) for i in (getattr(response, "task_ids", None) or [])]


def _check_count(connection: Connection, project_id: int, expected: int) -> None:
    project = connection.call("read the project's task count",
                              lambda: connection.client.projects.get(id=project_id))
    found = int(getattr(project, "task_number", None) or 0)
    if found != expected:
        raise ReviewError(f"Label Studio project {project_id} holds {found} tasks after the "
                          f"push, {expected} expected: something else imported into it, or an "
                          "import was doubled; check the project (Data Manager) before "
                          "reviewing")
