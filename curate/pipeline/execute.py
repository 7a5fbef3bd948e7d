"""``curate execute``: run a frozen executor over a store's steps and keep what it did.

Offline there is no policy, so the *proposed* step is the reference step itself: its action
type and its step instruction (``curate.pipeline.instructions``), or, for executors that run whole
actions (``replay``, ``python``), the reference action. A row of ``executions`` therefore says
whether the frozen executor can carry out this step as described, and ``reward`` whether what it
did matches the reference action (``curate.rewards.score_step``): the executability of the
dataset's Stage-2 targets. See docs/executors.md.

One ``executions`` file per committed batch holds every executor's rows; its Parquet metadata
records, per executor, the parameters and a digest of the proposed steps it ran with, and the
summary counts of its rows. A batch whose entry is current is skipped, so an interrupted run
resumes where it stopped and a re-run changes nothing; running another executor keeps the rows
of the others.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.actions import Action, canonical_json, format_action_text
from curate.errors import CurateError
from curate.executors.base import Execution, Executor, ProposedStep, StepContext
from curate.executors.registry import get_executor
from curate.pipeline.instructions import step_instructions
from curate.progress import Progress, SilentProgress
from curate.review.table import reviews_path
from curate.rewards import score_step
from curate.store.core import Store, open_store, read_parquet
from curate.store.derived import PARAMS_KEY, read_stamp, write_derived
from curate.store.layout import batch_file

log = logging.getLogger(__name__)

TABLE = "executions"
EXECUTE_VERSION = 1
STEP_MODES = ("all", "on_path")
# Executors that run the whole reference action rather than ground its instruction.
WHOLE_ACTION_EXECUTORS = frozenset({"replay", "python"})
_STEP_COLUMNS = ["episode_id", "step_index", "action", "action_text", "step_instruction",
                 "observation", "frame_id"]
# Stamp keys that describe what a batch's run produced, not the parameters it ran with.
_RESULT_KEYS = ("inputs", "proposed", "counts")


@dataclass
class ExecuteSummary:
    """What a run did: rows per outcome, and executability per source and per action type."""

    executor: str
    batches_run: int = 0
    batches_current: int = 0
    steps: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    by_source: dict[str, Counter[str]] = field(default_factory=dict)
    by_type: dict[str, Counter[str]] = field(default_factory=dict)
    reward_sum: float = 0.0

    def add(self, source: str, kind: str, outcome: str, reward: float, count: int = 1) -> None:
        """``count`` rows of one source, type and outcome whose rewards sum to ``reward``."""
        self.steps += count
        self.outcomes[outcome] += count
        if source not in self.by_source:
            self.by_source[source] = Counter()
        self.by_source[source][outcome] += count
        if kind not in self.by_type:
            self.by_type[kind] = Counter()
        self.by_type[kind][outcome] += count
        self.reward_sum += reward

    def add_counts(self, counts: Sequence[Sequence[Any]]) -> None:
        """Add a batch's ``[source, type, outcome, count, reward sum]`` groups."""
        for source, kind, outcome, count, reward in counts:
            self.add(source, kind, outcome, reward, count)

    @staticmethod
    def rate(counts: Mapping[str, int]) -> float:
        total = sum(counts.values())
        return counts.get("executed", 0) / total if total else 0.0


def execute(store_path: str | Path, *, executor: str, steps: str = "all",
            options: Mapping[str, Any] | None = None, preset: str = "default",
            progress: Progress | None = None) -> ExecuteSummary:
    """Run ``executor`` (built with ``options``) over the store's steps and write
    ``executions``; returns the summary of every row it holds for this executor."""
    if steps not in STEP_MODES:
        raise CurateError(f"--steps must be one of {', '.join(STEP_MODES)}, not {steps!r}")
    store = open_store(store_path)
    options = dict(options or {})
    if executor == "grounding":
        options.setdefault("store", str(store.path))  # its model answers are cached there
    runner = get_executor(executor, **options)
    # An executor's own ``version`` attribute, when it has one, re-runs it after a change.
    params = {"version": EXECUTE_VERSION, "executor_version": getattr(runner, "version", None),
              "steps": steps, "preset": preset,
              "options": {k: v for k, v in sorted(options.items()) if k != "api_key"}}
    episodes = _Episodes(store)
    summary = ExecuteSummary(executor)
    progress = progress or SilentProgress()
    batches = sorted(store.manifest.batches)
    progress.start(len(batches), f"execute {executor}")
    for batch in batches:
        _run_batch(store, batch, runner, executor, params, episodes, summary)
        progress.advance()
    progress.close()
    return summary


class _Episodes:
    """What execute needs of the episodes, read on first use: a re-run whose batches are all
    current needs only each episode's source format (two columns, no rows as dicts)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._rows: dict[str, dict[str, Any]] | None = None
        self._formats: dict[str, str] | None = None

    def rows(self) -> dict[str, dict[str, Any]]:
        if self._rows is None:
            table = self._store.read("episodes", columns=[
                "episode_id", "source_format", "platform", "instruction", "screen_width",
                "screen_height"])
            self._rows = {row["episode_id"]: row for row in table.to_pylist()}
        return self._rows

    def formats(self) -> dict[str, str]:
        if self._formats is None:
            table = self._store.read("episodes", columns=["episode_id", "source_format"])
            self._formats = dict(zip(table.column("episode_id").to_pylist(),
                                     table.column("source_format").to_pylist(), strict=True))
        return self._formats


def _run_batch(store: Store, batch: str, runner: Executor, executor: str,
               params: dict[str, Any], known: _Episodes, summary: ExecuteSummary) -> None:
    inputs = _inputs(store, batch, params["steps"])
    stamps = _stamps(store, batch)
    stamp = stamps.get(executor)
    if isinstance(stamp, dict) and stamp.get("inputs") == inputs and _params(stamp) == params:
        # Nothing the proposed steps are made from changed since they were executed: the
        # batch is current without reading its steps or building its instructions, and its
        # summary is the counts stamped when it was written (its rows and their episodes are
        # the same files since), so a current re-run reads no table at all.
        summary.batches_current += 1
        if isinstance(stamp.get("counts"), list):
            summary.add_counts(stamp["counts"])
        else:  # stamped before the counts were kept
            summary.add_counts(_counts(_read_mine(store, batch, executor), known.formats()))
        return
    steps = _batch_steps(store, batch, params["steps"])
    texts, sources = step_instructions(store.path, steps)
    # The screen elements (the bulk of a row) become Python only when the batch is run.
    with_elements = "elements" in steps.column_names
    rows = (steps.drop_columns(["elements"]) if with_elements else steps).to_pylist()
    items = [_item(row, text, executor) for row, text in zip(rows, texts, strict=True)]
    digest = hashlib.sha256(canonical_json(
        [[r["episode_id"], r["step_index"], p.action_type, p.step_instruction,
          r["action_text"]] for r, p in zip(rows, items, strict=True)]).encode()).hexdigest()
    if isinstance(stamp, dict) and stamp.get("proposed") == digest and _params(stamp) == params:
        # The steps' files changed but not the steps proposed from them: current, counted
        # from its rows (the source formats may be new).
        summary.batches_current += 1
        summary.add_counts(_counts(_read_mine(store, batch, executor), known.formats()))
        return
    episodes = known.rows()
    existing, stamps = _existing(store, batch)
    if with_elements:
        for row, elements in zip(rows, steps.column("elements").to_pylist(), strict=True):
            row["elements"] = elements
    contexts = _contexts(store, rows, episodes, runner)
    results = runner.execute_many(list(zip(contexts, items, strict=True)))
    new_rows = []
    for row, proposed, source, result in zip(rows, items, sources, results, strict=True):
        reward, reason = _reward(result, row, episodes.get(row["episode_id"], {}),
                                 params["preset"])
        new_rows.append(_execution_row(executor, row, proposed, source, result, reward,
                                       reason))
        fmt = episodes.get(row["episode_id"], {}).get("source_format", "?")
        summary.add(fmt, proposed.action_type, result.outcome, reward)
    others = existing.filter(pc.not_equal(existing.column("executor"), executor))
    table = pa.concat_tables([others, pa.Table.from_pylist(new_rows, schema=others.schema)])
    table = table.sort_by([("episode_id", "ascending"), ("step_index", "ascending"),
                           ("executor", "ascending")])
    formats = {episode: row.get("source_format", "?") for episode, row in episodes.items()}
    stamps[executor] = {**params, "proposed": digest, "inputs": inputs,
                        "counts": _counts(_mine(table, executor), formats)}
    write_derived(store.path, TABLE, batch, table, stamps)
    summary.batches_run += 1


def _batch_steps(store: Store, batch: str, mode: str) -> pa.Table:
    path = batch_file(store.path, "steps", batch)
    names = pq.read_schema(path).names
    # Stores ingested before steps.elements existed simply have no elements to ground on.
    columns = [*_STEP_COLUMNS, *(["elements"] if "elements" in names else [])]
    steps = read_parquet(path, columns)
    if mode == "on_path":
        labels_path = batch_file(store.path, "labels", batch)
        if not labels_path.exists():
            raise CurateError(f"--steps on_path needs labels: run `curate label {store.path}` "
                              "first")
        labels = read_parquet(labels_path, ["episode_id", "step_index", "on_path"])
        on_path = {(e, i) for e, i, keep in zip(
            labels.column("episode_id").to_pylist(), labels.column("step_index").to_pylist(),
            labels.column("on_path").to_pylist(), strict=True) if keep}
        mask = [(e, i) in on_path for e, i in zip(steps.column("episode_id").to_pylist(),
                                                  steps.column("step_index").to_pylist(),
                                                  strict=True)]
        steps = steps.filter(pa.array(mask, pa.bool_()))
    return steps


def _inputs(store: Store, batch: str, mode: str) -> list[list[Any]]:
    """What a batch's proposed steps are made from, each file as [path, size, mtime_ns,
    inode] (or [path] when absent): its steps, the annotations, the reviews, and for
    ``on_path`` its labels. The store writes files by atomic replacement, so a rewrite shows
    as a new inode and mtime; a mismatch only means the proposed steps are rebuilt and
    compared (the stamp's ``proposed`` digest), never that stale rows are kept."""
    paths = [batch_file(store.path, "steps", batch), reviews_path(store.path),
             *sorted((store.path / "annotations").glob("*.parquet"))]
    if mode == "on_path":
        paths.append(batch_file(store.path, "labels", batch))
    found: list[list[Any]] = []
    for path in paths:
        name = path.relative_to(store.path).as_posix()
        try:
            status = path.stat()
        except FileNotFoundError:
            found.append([name])
            continue
        found.append([name, status.st_size, status.st_mtime_ns, status.st_ino])
    return found


def _stamps(store: Store, batch: str) -> dict[str, Any]:
    """The per-executor stamps of a batch's executions file (its footer alone)."""
    stamps = read_stamp(store.path, TABLE, batch)
    return stamps if isinstance(stamps, dict) else {}


def _params(stamp: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a batch's stamp was run with (without what the run produced)."""
    return {k: v for k, v in stamp.items() if k not in _RESULT_KEYS}


def _mine(table: pa.Table, executor: str) -> pa.Table:
    return table.filter(pc.equal(table.column("executor"), executor))


def _read_mine(store: Store, batch: str, executor: str) -> pa.Table:
    """A batch's rows for ``executor``, the columns its summary counts need."""
    table = pq.read_table(batch_file(store.path, TABLE, batch),
                          columns=["executor", "episode_id", "proposed_type", "outcome",
                                   "reward"])
    return _mine(table, executor)


def _counts(rows: pa.Table, formats: Mapping[str, str]) -> list[list[Any]]:
    """One executor's rows of a batch as summary groups, ``[source, type, outcome, count,
    reward sum]`` in first-seen order (JSON, for the batch's stamp)."""
    # Counted by Arrow per (episode, type, outcome), in first-seen order, then per source:
    # a Python pass over every row was most of a current re-run.
    per_episode = rows.group_by(["episode_id", "proposed_type", "outcome"],
                                use_threads=False).aggregate(
        [("reward", "sum"), ("reward", "count", pc.CountOptions(mode="all"))])
    groups: Counter[tuple[str, str, str]] = Counter()
    rewards: dict[tuple[str, str, str], float] = {}
    for episode, kind, outcome, reward, count in zip(
            *(per_episode.column(name).to_pylist()
              for name in ("episode_id", "proposed_type", "outcome", "reward_sum",
                           "reward_count")), strict=True):
        key = (formats.get(episode, "?"), kind, outcome)
        groups[key] += count
        rewards[key] = rewards.get(key, 0.0) + (reward or 0.0)
    return [[*key, count, rewards[key]] for key, count in groups.items()]


def _existing(store: Store, batch: str) -> tuple[pa.Table, dict[str, Any]]:
    """This batch's executions rows and the per-executor stamps they were computed with."""
    from curate.store.schema import table_schema

    path = batch_file(store.path, TABLE, batch)
    if not path.exists():
        return table_schema(TABLE).empty_table(), {}
    file = pq.ParquetFile(path)
    stamp = (file.schema_arrow.metadata or {}).get(PARAMS_KEY)
    stamps = json.loads(stamp) if stamp else {}
    return file.read().cast(table_schema(TABLE)), stamps if isinstance(stamps, dict) else {}


def _item(row: dict[str, Any], text: str | None, executor: str) -> ProposedStep:
    action = Action.from_row(row["action"])
    if executor in WHOLE_ACTION_EXECUTORS:
        return ProposedStep(action_type=action.type, step_instruction=text, action=action)
    return ProposedStep(action_type=action.type, step_instruction=text)


def _contexts(store: Store, rows: list[dict[str, Any]], episodes: dict[str, dict[str, Any]],
              runner: Executor) -> list[StepContext]:
    screenshots = _screenshots(store, rows) if getattr(runner, "needs_screenshot", True) else {}
    calls = _recorded_calls(rows)
    contexts = []
    for row in rows:
        episode = episodes.get(row["episode_id"], {})
        shot = screenshots.get(row["frame_id"]) if row["frame_id"] else None
        contexts.append(StepContext(
            episode_id=row["episode_id"], step_index=row["step_index"],
            platform=episode.get("platform") or "desktop",
            instruction=episode.get("instruction"),
            screenshot=shot[0] if shot else None, frame_id=row["frame_id"],
            width=shot[1] if shot else episode.get("screen_width"),
            height=shot[2] if shot else episode.get("screen_height"),
            elements=row.get("elements") or (),
            recorded_calls=calls.get(row["episode_id"], ()),
        ))
    return contexts


def _screenshots(store: Store, rows: list[dict[str, Any]]) -> dict[str, tuple[bytes, int, int]]:
    wanted = {row["frame_id"] for row in rows if row["frame_id"]}
    frames = store.read_where_in("frames", "frame_id", wanted,
                                 columns=["frame_id", "bytes", "width", "height"])
    return {row["frame_id"]: (row["bytes"], row["width"], row["height"])
            for row in frames.to_pylist()}


def _recorded_calls(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each episode's recorded tool calls, in order: name, arguments and result."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        action = row["action"]
        if action["type"] != "tool_call" or not action.get("tool_name"):
            continue
        try:
            args = json.loads(action["tool_args"]) if action.get("tool_args") else {}
        except json.JSONDecodeError:
            args = action["tool_args"]
        calls.setdefault(row["episode_id"], []).append(
            {"name": action["tool_name"], "args": args, "result": row["observation"],
             "step_index": row["step_index"]})
    return calls


def _reward(result: Execution, row: dict[str, Any], episode: Mapping[str, Any],
            preset: str) -> tuple[float, str]:
    if result.executed is None or not result.success:
        return 0.0, f"nothing executed ({result.outcome})"
    size = (episode.get("screen_width"), episode.get("screen_height"))
    image_size = (int(size[0]), int(size[1])) if size[0] and size[1] else None
    score = score_step(result.executed, Action.from_row(row["action"]), preset=preset,
                       image_size=image_size)
    return score.score, score.reason


def _execution_row(executor: str, row: dict[str, Any], proposed: ProposedStep, source: str,
                   result: Execution, reward: float, reason: str) -> dict[str, Any]:
    whole = proposed.action is not None
    return {
        "episode_id": row["episode_id"], "step_index": row["step_index"],
        "executor": executor, "proposed_type": proposed.action_type,
        "proposed": row["action_text"] if whole else proposed.step_instruction,
        "step_instruction_source": source,
        "executed": result.executed.to_row() if result.executed else None,
        "executed_action": format_action_text(result.executed) if result.executed else None,
        "outcome": result.outcome, "success": result.success, "reward": reward,
        "reward_reason": reason, "feedback": result.reason or None, "raw": result.raw,
        "cache_key": result.cache_key,
        "provenance": canonical_json(dict(result.provenance)) if result.provenance else None,
    }


def read_executions(store_path: str | Path, executor: str | None = None) -> pa.Table:
    """The executions table (one executor's rows when ``executor`` is given)."""
    table = open_store(store_path).read(TABLE)
    if executor is not None:
        table = table.filter(pc.equal(table.column("executor"), executor))
    return table


def summarise(store_path: str | Path, executor: str) -> ExecuteSummary:
    """The summary of the executions a store holds for ``executor``, without running it."""
    store = open_store(store_path)
    formats = _Episodes(store).formats()
    summary = ExecuteSummary(executor)
    for row in read_executions(store_path, executor).to_pylist():
        source = formats.get(row["episode_id"], "?")
        summary.add(source, row["proposed_type"], row["outcome"], row["reward"])
    return summary


__all__: Sequence[str] = ["ExecuteSummary", "execute", "read_executions", "summarise"]
