"""``review pull``: read a project's annotations back into the store's ``reviews`` table.

One row per submitted annotation (skipped ones are counted, not stored). When a task has
several, the **conflict rule** picks the one that counts (``chosen``): the majority decision
wins (the verdict for steps, consistent/inconsistent for segments, the outcome for episodes);
a tie goes to the decision of the most recently updated annotation; among the annotations
with the winning decision the most recently updated one is chosen. ``agreement`` is the share
of the task's annotations with the chosen decision.

Nothing from Label Studio can corrupt the store: annotations whose item is gone or changed
since the push, and results that do not make a valid action, are reported and skipped; the
table is written whole to a temporary file and renamed. The same annotations give the same
bytes, so pulling twice changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curate.actions import Action, format_action_text
from curate.errors import ActionParseError
from curate.review.agreement import krippendorff_alpha
from curate.review.client import (
    Connection,
    ReviewError,
    connect,
    iter_tasks,
    user_names,
)
from curate.review.configs import existing_project
from curate.review.items import StoreItems
from curate.review.overrides import CrossProjectConflict, cross_project_conflicts
from curate.review.push import superseded
from curate.review.results import (
    by_control,
    check_results,
    chosen,
    corrected_action,
    first_wrong_step,
    number_of,
    step_flags,
)
from curate.review.results import text_of as result_text
from curate.review.table import read_ledger, read_reviews, write_reviews
from curate.review.tasks import STEP_TEXTS
from curate.store.core import open_store
from curate.store.schema import table_schema

log = logging.getLogger(__name__)
DECISION_COLUMN = {"step": "verdict", "segment": "consistency", "episode": "outcome"}


@dataclass
class Skip:
    item_key: str
    task_id: int
    reason: str


@dataclass
class PullSummary:
    project: str
    project_id: int
    unit: str
    tasks: int = 0
    annotated_tasks: int = 0
    reviews: int = 0
    cancelled: int = 0
    corrections: int = 0
    text_corrections: int = 0  # chosen reviews that corrected a step instruction or state
    conflicts: int = 0
    mean_agreement: float = 1.0
    alpha: float | None = None  # Krippendorff's alpha over the tasks' decisions (agreement.py)
    skipped: list[Skip] = field(default_factory=list)
    deleted_tasks: list[str] = field(default_factory=list)
    history: int = 0  # annotations of superseded tasks: kept on the server, not applied
    # items this and other projects of the store decide differently
    cross_project_conflicts: list[CrossProjectConflict] = field(default_factory=list)
    changed: bool = False


def pull(store_path: str | Path, *, project: str, url: str | None = None,
         api_key: str | None = None) -> PullSummary:
    """Read every annotation of ``project`` into STORE/reviews/reviews.parquet."""
    store = open_store(store_path)
    connection = connect(url, api_key)
    found, unit = existing_project(
        connection, project,
        missing_hint=f"; push to it first with `curate review push {store.path} "
                     f"--project {project!r}`")
    summary = PullSummary(project, int(found.id), unit)
    items = StoreItems.load(store, with_segments=unit == "segment")
    tasks = list(iter_tasks(connection, summary.project_id))
    rows = review_rows(tasks, items, unit, summary, _names(connection))
    _report_deleted(store.path, project, tasks, summary)
    summary.changed = _replace_project_rows(store.path, project, rows)
    summary.cross_project_conflicts = cross_project_conflicts(read_reviews(store))
    log.info("pulled %d reviews from %s", summary.reviews, project)
    return summary


def _names(connection: Connection) -> dict[int, str]:
    try:
        return user_names(connection)
    except ReviewError:  # non-admin keys may not list users: fall back to ids
        return {}


def review_rows(tasks: list[dict[str, Any]], items: StoreItems, unit: str,
                summary: PullSummary, names: dict[int, str]) -> list[dict[str, Any]]:
    """The reviews table's rows for a project's tasks as Label Studio returns them (no server
    involved: what pull does between fetching the tasks and writing the table). Counts,
    conflicts and skipped annotations go into ``summary``."""
    rows: list[dict[str, Any]] = []
    summary.tasks = len(tasks)
    agreements: list[float] = []
    decisions: list[list[Any]] = []
    for task in tasks:
        annotations = task.get("annotations") or []
        submitted = [a for a in annotations if not a.get("was_cancelled")]
        summary.cancelled += len(annotations) - len(submitted)
        if not submitted:
            continue
        if superseded(task):  # a newer task reviews the item as it is now
            summary.history += len(submitted)
            continue
        summary.annotated_tasks += 1
        key = str((task.get("data") or {}).get("curate_key") or "")
        problem = _item_problem(task, key, items)
        if problem is not None:
            summary.skipped.append(Skip(key, int(task["id"]), problem))
            continue
        task_rows = [r for a in submitted
                     if (r := _annotation_row(task, a, key, unit, items, summary, names))]
        if not task_rows:
            continue
        agreements.append(_resolve(task_rows, unit))
        decisions.append([_decision(r, unit) for r in task_rows])
        rows.extend(task_rows)
    summary.reviews = len(rows)
    summary.corrections = sum(1 for r in rows if r["chosen"] and r["corrected_action"])
    summary.text_corrections = sum(1 for r in rows if r["chosen"] and (
        r["step_instruction"] is not None or r["state"] is not None))
    summary.conflicts = sum(1 for a in agreements if a < 1.0)
    summary.mean_agreement = sum(agreements) / len(agreements) if agreements else 1.0
    summary.alpha = krippendorff_alpha(decisions)
    return rows


def _item_problem(task: dict[str, Any], key: str, items: StoreItems) -> str | None:
    if not key:
        return "task has no curate_key (not pushed by curate); ignored"
    current = items.fingerprint(key)
    if current is None:
        return "item no longer in the store (re-ingested or removed); review not applied"
    pushed = (task.get("data") or {}).get("curate_fingerprint")
    if pushed != current:
        return ("item changed in the store since it was pushed (different action or "
                "screenshot); review not applied: push it again to review the new version")
    return None


def _annotation_row(task: dict[str, Any], annotation: dict[str, Any], key: str, unit: str,
                    items: StoreItems, summary: PullSummary,
                    names: dict[int, str]) -> dict[str, Any] | None:
    results = annotation.get("result") or []
    grouped = by_control(results)
    row = _base_row(task, annotation, key, unit, summary.project, names)
    row["comment"] = result_text(grouped, "comment")
    try:
        check_results(results, unit)
        if unit == "step":
            _fill_step(row, grouped, items)
            _fill_step_texts(row, grouped, task.get("data") or {})
        elif unit == "segment":
            _fill_segment(row, grouped, items)
        else:
            _fill_episode(row, grouped)
    except (ValueError, KeyError, ActionParseError) as error:
        summary.skipped.append(Skip(key, int(task["id"]),
                                    f"annotation {annotation.get('id')}: {error}"))
        return None
    return row


def _base_row(task: dict[str, Any], annotation: dict[str, Any], key: str, unit: str,
              project: str, names: dict[int, str]) -> dict[str, Any]:
    author = annotation.get("completed_by")
    author_id = author.get("id") if isinstance(author, dict) else author
    identity = f"{project}\0{task['id']}\0{annotation['id']}"
    return {
        "review_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
        "project": project, "unit": unit, "item_key": key,
        "episode_id": None, "step_index": None, "segment_id": None,
        "reviewer": names.get(int(author_id or 0), str(author_id)),
        "reviewed_at": str(annotation.get("updated_at") or annotation.get("created_at")),
        "verdict": None, "corrected_action": None, "corrected_action_text": None,
        "step_instruction": None, "state": None,
        "noop": None, "loop": None, "on_path": None, "recovery": None,
        "consistency": None, "first_wrong_step": None, "outcome": None, "usable": None,
        "comment": None,
        "chosen": False, "annotations": 0, "agreement": 1.0,
        "item_fingerprint": str(task["data"].get("curate_fingerprint")),
        "ls_project_id": int(task.get("project") or 0), "ls_task_id": int(task["id"]),
        "ls_annotation_id": int(annotation["id"]),
    }


def _first(values: list[str]) -> str | None:
    return values[0] if values else None


def _fill_step(row: dict[str, Any], grouped: dict[str, list[dict[str, Any]]],
               items: StoreItems) -> None:
    step = items.lookup(row["item_key"])
    assert step is not None  # checked by _item_problem
    row["episode_id"], row["step_index"] = step["episode_id"], step["step_index"]
    row["verdict"] = _first(chosen(grouped, "verdict"))
    row.update(step_flags(grouped, row["verdict"]))
    if row["verdict"] == "fix":
        action = corrected_action(grouped, Action.from_row(step["action"]))
        row["corrected_action"] = action.to_row()
        row["corrected_action_text"] = format_action_text(action)


def _fill_step_texts(row: dict[str, Any], grouped: dict[str, list[dict[str, Any]]],
                     pushed: dict[str, Any]) -> None:
    """A step instruction or state the reviewer changed; the prefilled text submitted as it
    was (or emptied) corrects nothing."""
    for name in STEP_TEXTS:
        text = result_text(grouped, name)
        before = str(pushed.get(name) or "").strip()
        row[name] = text if text is not None and text != before else None


def _fill_segment(row: dict[str, Any], grouped: dict[str, list[dict[str, Any]]],
                  items: StoreItems) -> None:
    segment = items.lookup(row["item_key"])
    assert segment is not None
    row["episode_id"], row["segment_id"] = segment["episode_id"], segment["segment_id"]
    row["step_index"] = segment["step_index"]
    row["verdict"] = _first(chosen(grouped, "verdict"))
    row["first_wrong_step"] = first_wrong_step(grouped, segment["mask"])
    number = number_of(grouped, "consistency")
    consistent = _first(chosen(grouped, "consistent"))
    if number is not None:
        if not 0.0 <= number <= 1.0:
            raise ValueError(f"consistency {number} is outside [0, 1]")
        row["consistency"] = number
    elif consistent is not None:
        row["consistency"] = 1.0 if consistent == "consistent" else 0.0


def _fill_episode(row: dict[str, Any], grouped: dict[str, list[dict[str, Any]]]) -> None:
    row["episode_id"] = row["item_key"].partition(":")[2]
    row["outcome"] = _first(chosen(grouped, "outcome"))
    usable = _first(chosen(grouped, "usable"))
    row["usable"] = None if usable is None else usable == "usable"


def _decision(row: dict[str, Any], unit: str) -> Any:
    value = row[DECISION_COLUMN[unit]]
    if unit == "segment" and value is not None:
        return value >= 0.5  # segments vote consistent / inconsistent
    return value


def _resolve(rows: list[dict[str, Any]], unit: str) -> float:
    """Mark the chosen annotation of one task; return the task's agreement."""
    decisions = [_decision(r, unit) for r in rows]
    votes = Counter(d for d in decisions if d is not None)
    latest_first = sorted(range(len(rows)), reverse=True,
                          key=lambda i: (rows[i]["reviewed_at"], rows[i]["ls_annotation_id"]))
    if votes:
        top = max(votes.values())
        winners = {d for d, count in votes.items() if count == top}
        pick = next(i for i in latest_first if decisions[i] in winners)
    else:
        pick = latest_first[0]
    agreement = sum(1 for d in decisions if d == decisions[pick]) / len(rows)
    for index, row in enumerate(rows):
        row["chosen"] = index == pick
        row["annotations"] = len(rows)
        row["agreement"] = agreement
    return agreement


def _report_deleted(store: Path, project: str, tasks: list[dict[str, Any]],
                    summary: PullSummary) -> None:
    pushed = set(read_ledger(store).get(project, {}).get("keys", []))
    present = {str((t.get("data") or {}).get("curate_key")) for t in tasks}
    summary.deleted_tasks = sorted(pushed - present)


def _replace_project_rows(store: Path, project: str, rows: list[dict[str, Any]]) -> bool:
    """Swap this project's rows in the reviews table; True when the file changed."""
    schema = table_schema("reviews")
    previous = read_reviews(open_store(store))
    kept = (previous.filter(pc.not_equal(previous.column("project"), project))
            if previous is not None else schema.empty_table())
    fresh = pa.Table.from_pylist(rows, schema=schema)
    combined = pa.concat_tables([kept, fresh]).sort_by(
        [("project", "ascending"), ("item_key", "ascending"), ("ls_annotation_id", "ascending")])
    if previous is not None and combined.equals(previous):
        return False
    write_reviews(store, combined)
    return True
