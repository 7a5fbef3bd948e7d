"""Export by groups of store batches: where the rows are built and written.

The store's batches, in order, are cut into groups of consecutive batches of at least
``steps_per_task`` steps (counted from the steps files' footers). Each group is one task
(:func:`export_group`): it reads its batches, builds the rows and writes them into shards of
its own under the staging folder, and returns only metadata (its shards' temporary names,
row counts, statistics, redaction counts). The driver (:func:`write_data`) merges those in
group order and names the shards; it never sees a row. With an engine the tasks run on its
workers (a RayEngine's cluster, which must share the staging folder's storage with the
driver); without one they run in turn in this process. Either way a shard never spans two
groups and the groups are cut the same way, so the bytes do not depend on the engine. A store
below ``steps_per_task`` steps is one group: its export is what one pass over it wrote before
export tasks existed, byte for byte.

verl rows carry an index counted over the whole export per (config, split), which a group
cannot know before the groups ahead of it are done. In turn, each task is given the
counts so far; on an engine, the verl shards are written by a second round of tasks once the
first round has counted every group's rows (the rows are built twice for them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from curate.engines import fault_point
from curate.export.frame_reader import FrameReader
from curate.export.grouping import group_key
from curate.export.params import ExportParams
from curate.export.redact import Redactor
from curate.export.rows import RowContext, stage1_rows, stage2_rows
from curate.export.source import read_batch, refuse_stale_segments
from curate.export.splits import assign_split, parse_fractions
from curate.export.stats import ExportStats
from curate.export.writer import name_shards
from curate.pipeline.instructions import StoreInstructions
from curate.progress import Progress
from curate.review.overrides import read_reviews
from curate.store.core import Store, open_store
from curate.store.faults import fault
from curate.store.layout import batch_file

if TYPE_CHECKING:
    from curate.engines import Engine

ShardKey = tuple[str, str, str]  # (config, flavour, split)
# ~1 minute of export per task at 3.2 ms a row and ~1.8 rows a step (docs/engines.md); AITW's
# 5.7M steps make ~570 tasks, enough for a few hundred cores.
STEPS_PER_TASK = 10_000


@dataclass(frozen=True)
class ExportTask:
    """One group of batches to export: which, where to, and the verl indices it starts from."""

    store: str
    batches: tuple[str, ...]
    position: int  # of the group: names its shards apart from the other groups'
    root: str  # the staging folder
    params: ExportParams
    flavours: tuple[str, ...]
    verl_start: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class GroupResult:
    """What a task sends back: metadata only."""

    episodes: int
    shards: dict[ShardKey, list[str]]  # temporary names, in writing order
    rows: dict[tuple[str, str], int]  # usable rows per (config, split)
    stats: ExportStats
    replacements: Counter[str]
    secrets: set[tuple[str, str]]  # (kind, digest), as Redactor remembers them


def export_group(task: ExportTask) -> GroupResult:
    """Build and write one group's rows (a pure function of the store and the task: a
    retried task rewrites the same temporary files with the same bytes)."""
    from curate.export.run import _write_episode_rows, _Writers, executions_by_step

    store = open_store(task.store)
    params = task.params
    redactor = Redactor(enabled=params.redact)
    stats = ExportStats()
    fractions = parse_fractions(params.splits)
    # Only stage2 rows carry executor columns and step instructions: a stage1 export need
    # not read them.
    executions: dict[tuple[str, int], dict[str, Any]] = {}
    instructions = StoreInstructions()
    if "stage2" in params.configs:
        executions = executions_by_step(store)
        instructions = StoreInstructions.read(store.path)
    context = RowContext(FrameReader(store), redactor, params.preset, params.history_images,
                         params.future_images, executions,
                         context_chars=params.context_chars, result_chars=params.result_chars,
                         instructions=instructions)
    writers = _Writers(Path(task.root), params.max_shard_bytes, part=f"-g{task.position:06d}")
    writers.index.update(task.verl_start)
    reviews = read_reviews(store)
    episodes = 0
    try:
        for episode in (episode for batch in task.batches
                        for episode in read_batch(store, batch, reviews,
                                                  need_segments="stage1" in params.configs)):
            group = group_key(episode.row, episode.steps, params.split_by)
            split = (assign_split(group, fractions, params.seed), group)
            stats.episode(episode, split[0])
            if "stage1" in params.configs:
                rows = stage1_rows(episode, split, context)
                _write_episode_rows(writers, "stage1", task.flavours, rows,
                                    episode.row["platform"], stats, redactor)
            if "stage2" in params.configs:
                stats.executions(episode, context.executions)
                rows = stage2_rows(episode, split, context, params.stage2_steps, params.history)
                _write_episode_rows(writers, "stage2", task.flavours, rows,
                                    episode.row["platform"], stats, redactor)
            episodes += 1
            fault("export.after-episode")
    except BaseException:
        writers.abort()
        raise
    shards = {key: [str(path) for path in paths] for key, paths in writers.finish().items()}
    # Test hook (curate.engines.SLOW_ENV): the shards are written, nothing is sent back yet.
    fault_point(f"export/group-{task.position}")
    usable = {(config, split): count for config, counts in stats.rows_by_split.items()
              for split, count in counts.items()}
    return GroupResult(episodes, shards, usable, stats, Counter(redactor.counts),
                       redactor.secrets())


def write_data(store: Store, root: Path, params: ExportParams, redactor: Redactor,
               stats: ExportStats, progress: Progress, engine: Engine | None = None,
               steps_per_task: int = STEPS_PER_TASK) -> dict[ShardKey, list[Path]]:
    """Every group exported (on ``engine``'s workers, or here in turn), the statistics and
    redaction counts merged in group order, and the shards named."""
    from curate.export.run import executor_models

    if "stage1" in params.configs:
        refuse_stale_segments(store)
    if "stage2" in params.configs:
        stats.executor_models = executor_models(store)  # the store's, not a group's
    groups = batch_groups(store, steps_per_task)
    progress.start(stats.episodes_total, "export")
    try:
        if engine is None:
            results = _in_turn(store, root, params, groups, progress)
        else:
            results = _on_engine(store, root, params, groups, progress, engine)
    finally:
        progress.close()
    shards: dict[ShardKey, list[Path]] = {}
    for result in results:
        stats.add(result.stats)
        redactor.merge(result.replacements, result.secrets)
        for key, names in result.shards.items():
            shards.setdefault(key, []).extend(Path(name) for name in names)
    files = {}
    for key, temporaries in sorted(shards.items()):
        files[key] = name_shards(temporaries[0].parent, key[2], temporaries)
    return files


def batch_groups(store: Store, steps_per_task: int) -> list[tuple[str, ...]]:
    """The store's batches in order, cut into runs of at least ``steps_per_task`` steps (the
    last one may be shorter). Only the steps files' footers are read."""
    groups: list[tuple[str, ...]] = []
    group: list[str] = []
    steps = 0
    for batch in sorted(store.manifest.batches):
        group.append(batch)
        steps += pq.ParquetFile(batch_file(store.path, "steps", batch)).metadata.num_rows
        if steps >= steps_per_task:
            groups.append(tuple(group))
            group, steps = [], 0
    if group:
        groups.append(tuple(group))
    return groups


def _tasks(store: Store, root: Path, params: ExportParams, groups: list[tuple[str, ...]],
           flavours: tuple[str, ...]) -> list[ExportTask]:
    return [ExportTask(str(store.path), group, position, str(root), params, flavours)
            for position, group in enumerate(groups)]


def _in_turn(store: Store, root: Path, params: ExportParams, groups: list[tuple[str, ...]],
             progress: Progress) -> list[GroupResult]:
    """One group after the other, each starting its verl indices where the last stopped."""
    results = []
    counted: Counter[tuple[str, str]] = Counter()
    for task in _tasks(store, root, params, groups, params.flavours):
        result = export_group(replace(task, verl_start=dict(counted)))
        counted.update(result.rows)
        results.append(result)
        progress.advance(result.episodes)
    return results


def _on_engine(store: Store, root: Path, params: ExportParams, groups: list[tuple[str, ...]],
               progress: Progress, engine: Engine) -> list[GroupResult]:
    """Every group at once; the verl shards in a second round, from the counts of the
    first."""
    first = tuple(flavour for flavour in params.flavours if flavour != "verl")
    results = []
    for result in engine.map_ordered(export_group, _tasks(store, root, params, groups, first)):
        results.append(result)
        progress.advance(result.episodes)
    if "verl" not in params.flavours:
        return results
    counted: Counter[tuple[str, str]] = Counter()
    verl_tasks = []
    for task, result in zip(_tasks(store, root, params, groups, ("verl",)), results,
                            strict=True):
        verl_tasks.append(replace(task, verl_start=dict(counted)))
        counted.update(result.rows)
    for result, verl in zip(results, engine.map_ordered(export_group, verl_tasks),
                            strict=True):
        result.shards.update(verl.shards)
    return results
