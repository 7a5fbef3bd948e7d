"""Human reviews over heuristic results: what segment and export apply before using a table.

Only ``chosen`` reviews count (one per item, see the conflict rule in curate.review.pull).
Each function takes the table as the store has it and returns it with the reviews applied;
rows without a review pass through unchanged, and with no reviews the input comes back as is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curate.actions import Action, format_action_text
from curate.review.table import read_reviews, reviews_path
from curate.store.core import Store

LABEL_COLUMNS = ("noop", "loop", "on_path", "recovery")
StepKey = tuple[str, int]

__all__ = [
    "CrossProjectConflict",
    "ReviewExclusions",
    "apply_action_corrections",
    "apply_reviews_to_episodes",
    "apply_reviews_to_labels",
    "apply_reviews_to_segments",
    "cross_project_conflicts",
    "read_reviews",
    "review_exclusions",
    "reviews_fingerprint",
    "step_text_corrections",
]


def chosen_reviews(reviews: pa.Table | None, unit: str) -> list[dict[str, Any]]:
    """The chosen review of each task of one unit, oldest first: an item reviewed in several
    projects is decided by the most recent one (the last, where rows are indexed by item)."""
    if reviews is None or reviews.num_rows == 0:
        return []
    mask = pc.and_(pc.equal(reviews.column("unit"), unit), reviews.column("chosen"))
    rows: list[dict[str, Any]] = reviews.filter(mask).to_pylist()
    rows.sort(key=lambda r: (r["reviewed_at"], r["project"], r["ls_annotation_id"]))
    return rows


@dataclass(frozen=True)
class CrossProjectConflict:
    """One item whose chosen reviews in different projects decide differently."""

    item_key: str
    decisions: tuple[tuple[str, str], ...]  # (project, decision), by project
    applied: str  # the project whose review is applied: the most recent


def cross_project_conflicts(reviews: pa.Table | None) -> list[CrossProjectConflict]:
    """Items reviewed in several projects with different decisions (verdict for steps,
    consistent or not for segments, outcome and usability for episodes)."""
    by_item: dict[str, list[dict[str, Any]]] = {}
    for unit in ("step", "segment", "episode"):
        for row in chosen_reviews(reviews, unit):
            by_item.setdefault(row["item_key"], []).append(row)
    conflicts = []
    for key, rows in sorted(by_item.items()):
        decisions = {row["project"]: _decision_text(row) for row in rows}
        if len(set(decisions.values())) > 1:
            conflicts.append(CrossProjectConflict(key, tuple(sorted(decisions.items())),
                                                  rows[-1]["project"]))
    return conflicts


def _decision_text(row: dict[str, Any]) -> str:
    if row["unit"] == "segment":
        consistency = row["consistency"]
        verdict = row["verdict"] or "accept"
        return (f"{verdict}, " + ("unscored" if consistency is None else
                                  "consistent" if consistency >= 0.5 else "inconsistent"))
    if row["unit"] == "episode":
        return f"{row['outcome']}, {'usable' if row['usable'] is not False else 'unusable'}"
    return str(row["verdict"])


def _step_index(rows: Iterable[dict[str, Any]]) -> dict[StepKey, dict[str, Any]]:
    return {(r["episode_id"], int(r["step_index"])): r for r in rows}


def _override(table: pa.Table, reviewed: Mapping[Any, dict[str, Any]],
              key: Callable[[dict[str, Any]], Any],
              update: Callable[[dict[str, Any], dict[str, Any]], None]) -> pa.Table:
    """The table with ``update(row, review)`` applied to every row that has a review (looked
    up by ``key(row)``); the table itself when nothing was reviewed."""
    if not reviewed:
        return table
    rows = table.to_pylist()
    for row in rows:
        review = reviewed.get(key(row))
        if review is not None:
            update(row, review)
    return pa.Table.from_pylist(rows, schema=table.schema)


def _step_key(row: dict[str, Any]) -> StepKey:
    return row["episode_id"], int(row["step_index"])


def apply_reviews_to_labels(labels: pa.Table, reviews: pa.Table | None) -> pa.Table:
    """Reviewed steps get the reviewer's labels (where the review says) and
    ``label_source = human``; their evidence names the reviewer and verdict."""

    def update(row: dict[str, Any], review: dict[str, Any]) -> None:
        for name in LABEL_COLUMNS:
            if review[name] is not None and name in row:
                row[name] = review[name]
        row["label_source"] = "human"
        if "evidence" in row:
            row["evidence"] = (f"reviewed by {review['reviewer']} ({review['verdict']}); "
                               f"heuristic: {row['evidence']}")

    reviewed = _step_index(chosen_reviews(reviews, "step"))
    return _override(labels, reviewed, _step_key, update)


def apply_action_corrections(steps: pa.Table, reviews: pa.Table | None) -> pa.Table:
    """Steps whose review is ``fix`` get the corrected action and its action_text."""

    def update(row: dict[str, Any], review: dict[str, Any]) -> None:
        action = Action.from_row(review["corrected_action"])
        row["action"] = action.to_row()
        if "action_text" in row:
            row["action_text"] = format_action_text(action)

    fixes = {key: r for key, r in _step_index(chosen_reviews(reviews, "step")).items()
             if r["verdict"] == "fix" and r["corrected_action"] is not None}
    return _override(steps, fixes, _step_key, update)


def apply_reviews_to_segments(segments: pa.Table, reviews: pa.Table | None) -> pa.Table:
    """Reviewed windows get the reviewer's consistency and ``label_source = human``; a window
    whose first wrong step was marked keeps only the steps before it in its mask (the marked
    step and those after it are not targets to learn from)."""

    def update(row: dict[str, Any], review: dict[str, Any]) -> None:
        if review["consistency"] is not None:
            row["consistency"] = float(review["consistency"])
        wrong = review["first_wrong_step"]
        if wrong is not None:
            row["mask"] = [real and offset < wrong for offset, real in enumerate(row["mask"])]
        row["label_source"] = "human"

    reviewed = {r["segment_id"]: r for r in chosen_reviews(reviews, "segment")
                if r["consistency"] is not None or r["first_wrong_step"] is not None}
    return _override(segments, reviewed, lambda row: row["segment_id"], update)


def apply_reviews_to_episodes(episodes: pa.Table, reviews: pa.Table | None) -> pa.Table:
    """Reviewed episodes get the reviewer's outcome (success / fail)."""

    def update(row: dict[str, Any], review: dict[str, Any]) -> None:
        row["outcome"] = review["outcome"]

    reviewed = {r["episode_id"]: r for r in chosen_reviews(reviews, "episode")
                if r["outcome"] is not None}
    return _override(episodes, reviewed, lambda row: row["episode_id"], update)


TEXT_COLUMNS = ("step_instruction", "state")


def step_text_corrections(reviews: pa.Table | None) -> pa.Table | None:
    """(episode_id, step_index, step_instruction, state) for every step whose chosen review
    corrected its step instruction or its state (null where that text was left as pushed);
    None when no review corrected any."""
    reviewed = {key: r for key, r in _step_index(chosen_reviews(reviews, "step")).items()
                if any(r.get(name) is not None for name in TEXT_COLUMNS)}
    if not reviewed:
        return None
    rows = [{"episode_id": episode, "step_index": index,
             **{name: review.get(name) for name in TEXT_COLUMNS}}
            for (episode, index), review in sorted(reviewed.items())]
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("episode_id", pa.string()), ("step_index", pa.int32()),
        ("step_instruction", pa.string()), ("state", pa.string())]))


@dataclass
class ReviewExclusions:
    """What reviewers said must stay out of training data."""

    episodes: set[str] = field(default_factory=set)
    steps: set[StepKey] = field(default_factory=set)
    segments: set[str] = field(default_factory=set)


def review_exclusions(reviews: pa.Table | None) -> ReviewExclusions:
    """Unusable episodes, rejected steps, rejected segments (chosen reviews only)."""
    return ReviewExclusions(
        episodes={r["episode_id"] for r in chosen_reviews(reviews, "episode")
                  if r["usable"] is False},
        steps={(r["episode_id"], int(r["step_index"])) for r in chosen_reviews(reviews, "step")
               if r["verdict"] == "reject"},
        segments={r["segment_id"] for r in chosen_reviews(reviews, "segment")
                  if r["verdict"] == "reject"},
    )


def reviews_fingerprint(store: Store) -> str:
    """A short hash of the reviews file ('none' without one): put it in a derived table's
    parameters so a new pull makes segment recompute."""
    path = reviews_path(store.path)
    if not path.exists():
        return "none"
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
