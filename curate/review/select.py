"""Choosing what to review: a SQL condition over one view per unit, then a sample.

The views (DuckDB, over the store's tables):

- ``step``: every steps column plus ``action_type``, the episode's ``instruction``,
  ``source_format``, ``platform``, ``outcome`` and the labels ``noop``, ``loop``, ``on_path``,
  ``recovery``, ``terminal``, ``label_source``.
- ``segment``: every segments column plus the episode's ``source_format``, ``platform``,
  ``outcome``.
- ``episode``: the episodes table.

``--filter`` is the part after WHERE, e.g. ``"platform = 'web' AND NOT on_path"``. Order: steps
and episodes by id; segments by ascending consistency (the windows most likely wrong first).
With a sample size, steps and episodes are drawn at random (seeded, reproducible); segments
keep the lowest-consistency ones.
"""

from __future__ import annotations

import random

from curate.errors import QueryError
from curate.review.client import ReviewError
from curate.store.core import Store
from curate.store.query import connect

_VIEWS = {
    "step": """
        SELECT s.*, s.action.type AS action_type, e.instruction, e.source_format, e.platform,
               e.outcome, l.noop, l.loop, l.on_path, l.recovery, l.terminal, l.label_source
        FROM steps s JOIN episodes e USING (episode_id)
        LEFT JOIN labels l USING (episode_id, step_index)""",
    "segment": """
        SELECT g.*, e.source_format, e.platform, e.outcome
        FROM segments g JOIN episodes e USING (episode_id)""",
    "episode": "SELECT * FROM episodes",
}
_KEYS = {
    "step": "'step:' || episode_id || ':' || CAST(step_index AS VARCHAR)",
    "segment": "'segment:' || segment_id",
    "episode": "'episode:' || episode_id",
}
_ORDER = {
    "step": "episode_id, step_index",
    "segment": "consistency ASC, segment_id",
    "episode": "episode_id",
}


def select_items(store: Store, unit: str, *, filter_sql: str | None = None,
                 sample: int | None = None, seed: int = 0) -> list[str]:
    """The item keys to review (``step:EP:I``, ``segment:ID``, ``episode:EP``), in order."""
    if sample is not None and sample < 1:
        raise ReviewError("--sample must be at least 1")
    where = f"WHERE {filter_sql}" if filter_sql else ""
    sql = (f"SELECT {_KEYS[unit]} AS item_key FROM ({_VIEWS[unit]}) AS {unit} {where} "
           f"ORDER BY {_ORDER[unit]}")
    import duckdb  # here: importing curate.review (segment and build do) must stay light

    connection = connect(store)
    try:
        keys: list[str] = [row[0] for row in connection.execute(sql).fetchall()]
    except duckdb.Error as error:
        raise QueryError(f"--filter {filter_sql!r} failed over the {unit} view: {error}") from None
    finally:
        connection.close()
    if sample is None or sample >= len(keys):
        return keys
    if unit == "segment":
        return keys[:sample]
    chosen = set(random.Random(seed).sample(keys, sample))
    return [key for key in keys if key in chosen]
