"""What an export reads from the store, one committed batch at a time: episodes, steps,
labels and segments, with review results applied and secrets redacted."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from curate.actions import Action, format_action_text
from curate.errors import CurateError
from curate.export.redact import Redactor
from curate.pipeline.label import sorted_step_rows
from curate.review.overrides import (
    apply_action_corrections,
    apply_reviews_to_episodes,
    apply_reviews_to_labels,
    apply_reviews_to_segments,
    read_reviews,
    review_exclusions,
    reviews_fingerprint,
)
from curate.store.core import Store, read_parquet
from curate.store.derived import read_stamp
from curate.store.layout import batch_file

StepKey = tuple[str, int]
PASSWORD_HINTS = ("password", "passwd", "securetext", "pin code", "passcode")


@dataclass
class Episode:
    row: dict[str, Any]
    steps: list[dict[str, Any]]
    labels: dict[int, dict[str, Any]]
    segments: list[dict[str, Any]]
    rejected_steps: set[int] = field(default_factory=set)  # reviewers rejected: not stage2


def _derived(store: Store, table: str, batch: str) -> pa.Table:
    path = batch_file(store.path, table, batch)
    if not path.exists():
        command = "label" if table == "labels" else "segment"
        raise CurateError(f"batch {batch} of {store.path} has no {table}; "
                          f"run `curate {command} {store.path}` first (or use `curate build`)")
    return read_parquet(path)


def read_batches(store: Store, *, need_segments: bool) -> Iterator[Episode]:
    """Every episode of the store, batch by batch, in a deterministic order, with human
    review applied: corrected actions, reviewed labels, outcomes and consistency, and the
    episodes, steps and windows reviewers rejected left out."""
    if need_segments:
        refuse_stale_segments(store)
    reviews = read_reviews(store)
    for batch in sorted(store.manifest.batches):
        yield from read_batch(store, batch, reviews, need_segments=need_segments)


def read_batch(store: Store, batch: str, reviews: pa.Table | None, *,
                need_segments: bool) -> Iterator[Episode]:
    """The episodes of one committed batch with ``reviews`` (:func:`read_reviews`) applied,
    as :func:`read_batches` gives them: an export task on a worker reads only its own batch
    (the driver checked that the segments are fresh)."""
    excluded = review_exclusions(reviews)
    episodes = apply_reviews_to_episodes(
        read_parquet(batch_file(store.path, "episodes", batch)), reviews)
    steps = apply_action_corrections(
        read_parquet(batch_file(store.path, "steps", batch)), reviews)
    labels = apply_reviews_to_labels(_derived(store, "labels", batch), reviews)
    segments = (apply_reviews_to_segments(_derived(store, "segments", batch), reviews)
                .to_pylist() if need_segments else [])
    for episode in _group(episodes, steps, labels, segments):
        if episode.row["episode_id"] in excluded.episodes:
            continue
        episode.rejected_steps = {i for e, i in excluded.steps
                                  if e == episode.row["episode_id"]}
        episode.segments = [s for s in episode.segments
                            if s["segment_id"] not in excluded.segments]
        yield episode


def refuse_stale_segments(store: Store) -> None:
    """Segments score windows with the reviewed actions and labels, so a pull since the last
    ``segment`` makes their consistency stale: refuse rather than export old scores."""
    current = reviews_fingerprint(store)
    for batch in sorted(store.manifest.batches):
        stamp = read_stamp(store.path, "segments", batch)
        if stamp and stamp.get("reviews") != current:
            raise CurateError(
                f"the segments of {store.path} (batch {batch}) were computed before the "
                f"reviews pulled since (reviews {stamp.get('reviews')}, now {current}), so "
                f"their consistency is stale; run `curate segment {store.path}` (or "
                "`curate build`) and export again")


def _group(episodes: pa.Table, steps: pa.Table, labels: pa.Table,
           segments: list[dict[str, Any]]) -> Iterator[Episode]:
    by_episode: dict[str, Episode] = {
        row["episode_id"]: Episode(row, [], {}, []) for row in episodes.to_pylist()}
    for step in sorted_step_rows(steps):
        by_episode[step["episode_id"]].steps.append(step)
    for label in labels.to_pylist():
        by_episode[label["episode_id"]].labels[label["step_index"]] = label
    for segment in segments:
        by_episode[segment["episode_id"]].segments.append(segment)
    # In the order the batch stores them, which is the order their frames were written in:
    # the frame reader then reads each row group of screenshots once (sorting by id made it
    # read each one about ten times).
    yield from by_episode.values()


def _mentions_password(action: Action | None) -> bool:
    if action is None or action.target is None:
        return False
    words = " ".join(filter(None, (action.target.role, action.target.text))).lower()
    return any(hint in words for hint in PASSWORD_HINTS)


def redact_action(action: Action, redactor: Redactor, *, password_field: bool) -> Action:
    """The action with secrets in its text, URL and tool arguments replaced."""
    text = (redactor.typed_password(action.text)
            if password_field and action.type == "type" else redactor.text(action.text))
    return replace(action, text=text, url=redactor.text(action.url),
                   tool_args=redactor.text(action.tool_args), raw=None)


def redacted_actions(steps: list[dict[str, Any]], redactor: Redactor) -> list[Action]:
    """The episode's actions, redacted; typing right after focusing a password field too."""
    actions: list[Action] = []
    previous: Action | None = None
    for step in steps:
        action = Action.from_row(step["action"])
        password = _mentions_password(action) or _mentions_password(previous)
        actions.append(redact_action(action, redactor, password_field=password))
        previous = action
    return actions


def action_texts(actions: list[Action]) -> list[str]:
    return [format_action_text(action) for action in actions]
