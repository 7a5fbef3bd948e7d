"""``review status``: how far reviewing a project has got, and how much reviewers agree.

Read-only on both sides: it asks the server for the project's tasks and compares them with
what the store pushed (the ledger) and pulled (the reviews table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate.review.agreement import krippendorff_alpha
from curate.review.client import connect, iter_tasks
from curate.review.configs import existing_project
from curate.review.overrides import CrossProjectConflict, cross_project_conflicts
from curate.review.table import read_ledger, read_reviews
from curate.store.core import open_store


@dataclass
class StatusSummary:
    project: str
    project_id: int
    unit: str
    tasks: int = 0
    annotated: int = 0
    annotations: int = 0
    cancelled: int = 0
    multi_annotated: int = 0
    mean_agreement: float = 1.0
    alpha: float | None = None  # Krippendorff's alpha over the tasks' decisions (agreement.py)
    verdicts: dict[str, int] = field(default_factory=dict)
    pulled_reviews: int = 0
    deleted_tasks: int = 0
    # pulled items that this and another project of the store decide differently
    cross_project_conflicts: list[CrossProjectConflict] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.tasks - self.annotated


def status(store_path: str | Path, *, project: str, url: str | None = None,
           api_key: str | None = None) -> StatusSummary:
    """Progress (tasks annotated), agreement on tasks with several annotations, and how the
    server's project compares with the store's ledger and reviews table."""
    store = open_store(store_path)
    connection = connect(url, api_key)
    found, unit = existing_project(connection, project)
    summary = StatusSummary(project, int(found.id), unit)
    tasks = list(iter_tasks(connection, summary.project_id))
    _count_tasks(tasks, summary)
    pushed = set(read_ledger(store.path).get(project, {}).get("keys", []))
    present = {str((t.get("data") or {}).get("curate_key")) for t in tasks}
    summary.deleted_tasks = len(pushed - present)
    reviews = read_reviews(store)
    if reviews is not None:
        summary.pulled_reviews = sum(1 for p in reviews.column("project").to_pylist()
                                     if p == project)
    summary.cross_project_conflicts = [
        c for c in cross_project_conflicts(reviews) if project in dict(c.decisions)]
    return summary


def _decision(annotation: dict[str, Any], unit: str) -> str | None:
    control = {"step": "verdict", "segment": "consistent", "episode": "outcome"}[unit]
    for result in annotation.get("result") or []:
        if result.get("from_name") == control:
            choices = result.get("value", {}).get("choices") or []
            return str(choices[0]) if choices else None
    return None


def _count_tasks(tasks: list[dict[str, Any]], summary: StatusSummary) -> None:
    summary.tasks = len(tasks)
    agreements: list[float] = []
    decided: list[list[str | None]] = []
    for task in tasks:
        annotations = task.get("annotations") or []
        submitted = [a for a in annotations if not a.get("was_cancelled")]
        summary.cancelled += len(annotations) - len(submitted)
        summary.annotations += len(submitted)
        if not submitted:
            continue
        summary.annotated += 1
        decisions = [_decision(a, summary.unit) for a in submitted]
        for decision in decisions:
            name = decision or "(none)"
            summary.verdicts[name] = summary.verdicts.get(name, 0) + 1
        if len(submitted) > 1:
            summary.multi_annotated += 1
            top = max(decisions.count(d) for d in set(decisions))
            agreements.append(top / len(decisions))
            decided.append(decisions)
    summary.alpha = krippendorff_alpha(decided)
    if agreements:
        summary.mean_agreement = sum(agreements) / len(agreements)
