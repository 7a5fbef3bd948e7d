"""The export run: rows built from the store, written into a staging folder, validated and
swapped into place (the package docstring, curate/export/__init__.py, shows the layout)."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate.errors import CurateError
from curate.export.batches import STEPS_PER_TASK, write_data
from curate.export.card import write_card
from curate.export.features import arrow_schema, config_name
from curate.export.images import ImagePool
from curate.export.params import FLAVOUR_CONFIGS, ExportParams
from curate.export.plots import PlotWorker, plots_available
from curate.export.provenance import BuildInfo
from curate.export.redact import Redactor, redaction_report
from curate.export.rows import to_easyr1, to_trl, to_verl
from curate.export.stats import ExportStats
from curate.export.summary import ExportSummary
from curate.export.writer import ShardWriter
from curate.progress import Progress, SilentProgress
from curate.store.core import Store, WriteQueue, open_store
from curate.store.derived import read_stamp
from curate.store.outputs import (
    KeepForInspection,
    Marker,
    check_output,
    read_marker,
    staged,
    swap_into_place,
    writing_to,
)

if TYPE_CHECKING:
    from curate.engines import Engine

__all__ = ["ExportParams", "ExportSummary", "export"]

logger = logging.getLogger(__name__)


class _Writers:
    """One ShardWriter per (config name, split), created on first use."""

    def __init__(self, root: Path, max_shard_bytes: int, part: str = "") -> None:
        self.root = root
        self.part = part  # in the shards' temporary names (curate.export.batches)
        self.max_shard_bytes = max_shard_bytes
        self.writers: dict[tuple[str, str, str], ShardWriter] = {}
        self.index: dict[tuple[str, str], int] = {}
        self.queue = WriteQueue()  # one background thread writes every shard, in order
        self.images = ImagePool()  # the screenshots' Arrow copies, shared by the flavours

    def add(self, config: str, flavour: str, split: str, row: dict[str, Any]) -> None:
        key = (config, flavour, split)
        if key not in self.writers:
            name = config_name(config, flavour)
            self.writers[key] = ShardWriter(self.root / "data" / name, split,
                                            arrow_schema(config, flavour), self.max_shard_bytes,
                                            self.queue, self.images, self.part)
        self.writers[key].add(row)

    def next_index(self, config: str, split: str) -> int:
        value = self.index.get((config, split), 0)
        self.index[(config, split)] = value + 1
        return value

    def abort(self) -> None:
        """Stop the background writes (the staging folder is left for inspection)."""
        # The export is failing already: its error is the one to show.
        with contextlib.suppress(Exception):
            self.queue.close()

    def finish(self) -> dict[tuple[str, str, str], list[Path]]:
        """Every shard finished, under its temporary name (the caller names them)."""
        try:
            files = {key: writer.finish() for key, writer in sorted(self.writers.items())}
        except BaseException:
            self.abort()  # the error above is the one to show
            raise
        self.queue.close()
        return files


def _usable(row: dict[str, Any], platform: str, stats: ExportStats, config: str) -> bool:
    """Rows a trainer can use: a GUI row needs its screenshot and in-frame coordinates."""
    if platform != "tool" and row["image"] is None:
        stats.skip(config, "no_screenshot")
        return False
    actions = row["target_actions"] if config == "stage1" else [row["action"]]
    for action in actions:
        for name in ("x", "y", "x2", "y2"):
            value = action.get(name)
            if value is not None and not 0.0 <= value <= 1.0:
                stats.skip(config, "coordinates_outside_frame")
                return False
    return True


def _write_episode_rows(writers: _Writers, config: str, flavours: tuple[str, ...],
                        rows: list[dict[str, Any]], platform: str, stats: ExportStats,
                        redactor: Redactor) -> None:
    for row in rows:
        if not _usable(row, platform, stats, config):
            continue
        # Every text of the row, whatever column it is in; the flavours are built from it.
        row = redactor.row(row)
        stats.row(config, row)
        for flavour in flavours:
            if flavour == "plain":
                writers.add(config, flavour, row["split"], row)
            elif flavour == "trl":
                writers.add(config, flavour, row["split"], to_trl(row, config))
            elif flavour == "easyr1":
                if config in FLAVOUR_CONFIGS["easyr1"]:
                    writers.add(config, flavour, row["split"], to_easyr1(row))
            else:
                index = writers.next_index(config, row["split"])
                writers.add(config, flavour, row["split"], to_verl(row, config, index))


def executor_models(store: Store) -> dict[str, list[str]]:
    """Each executor's model ids as its executions stamps record them (``curate execute
    --model``), sorted; executors run without a model are left out."""
    models: dict[str, set[str]] = {}
    for batch in sorted(store.manifest.batches):
        for executor, stamp in read_stamp(store.path, "executions", batch).items():
            options = stamp.get("options") if isinstance(stamp, dict) else None
            model = options.get("model") if isinstance(options, dict) else None
            if isinstance(model, str) and model:
                models.setdefault(executor, set()).add(model)
    return {executor: sorted(ids) for executor, ids in sorted(models.items())}


def executions_by_step(store: Store) -> dict[tuple[str, int], dict[str, Any]]:
    """Each step's executions row for the stage2 executor columns. With several executors
    run, the alphabetically first one that executed the step wins, then the first at all."""
    rows = sorted(store.read("executions").to_pylist(),
                  key=lambda r: (not r["success"], r["executor"]))
    chosen: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        chosen.setdefault((row["episode_id"], row["step_index"]), row)
    return chosen


def empty_splits(files: dict[tuple[str, str, str], list[Path]], stats: ExportStats,
                 params: ExportParams) -> list[str]:
    """Each split that was asked for (fraction > 0) but holds no row of a config written."""
    configs = sorted({config for config, _, _ in files})
    return [f"{config} has no {split} rows ({params.splits[split]:g} of the "
            f"{params.split_by}s were asked for; {stats.episodes_total} episodes in all)"
            for config in configs for split in params.splits
            if params.splits[split] > 0 and stats.rows_by_split[config][split] == 0]


def export(store_path: str | Path, out: str | Path, *, params: ExportParams | None = None,
           build: BuildInfo | None = None, progress: Progress | None = None,
           command: str = "curate export", build_key: str = "",
           strict: bool = False, engine: Engine | None = None,
           steps_per_task: int = STEPS_PER_TASK) -> ExportSummary:
    """Export the store's labelled steps and segments as a Hub-style dataset folder.

    A split that comes out empty is a warning in the summary (and the card), or, with
    ``strict``, an error before anything replaces ``out``.

    ``out`` is refused before any work unless it is new, empty or an export curate made
    (curate.store.outputs); the folder is staged, validated and swapped into place atomically,
    carrying a marker with the store id, ``command`` and ``build_key`` (see build.py).

    The rows are built by groups of store batches of ``steps_per_task`` steps, each writing
    shards of its own (curate.export.batches). ``engine`` (e.g. a RayEngine, closed by the
    caller) runs the groups on its workers, which write into the staging folder: it must be
    on storage they share with this process. The bytes are the same with or without it."""
    params = params or ExportParams()
    params.check()
    store = open_store(store_path)
    out = Path(out)
    check_output(out, kind="export", store=store.path)
    store_marker = read_marker(store.path)
    marker = Marker("export", store_marker.store_id if store_marker else "unknown", command,
                    build_key=build_key)
    with writing_to(out), staged(out, marker) as staging:
        summary = _export_into(staging, store, params, build, progress, strict,
                               (engine, steps_per_task))
        swap_into_place(staging, out)
    return replace(summary, out=out)


def _export_into(staging: Path, store: Store, params: ExportParams, build: BuildInfo | None,
                 progress: Progress | None, strict: bool,
                 tasks: tuple[Engine | None, int]) -> ExportSummary:
    # Started first: the plots' process imports matplotlib while this one writes the rows.
    plots = PlotWorker() if plots_available() else None
    try:
        return _export_with(staging, store, params, build, progress, strict, plots, tasks)
    finally:
        if plots is not None:
            plots.close()


def _export_with(staging: Path, store: Store, params: ExportParams, build: BuildInfo | None,
                 progress: Progress | None, strict: bool,
                 plots: PlotWorker | None, tasks: tuple[Engine | None, int]) -> ExportSummary:
    from curate.export.validate import validate

    redactor = Redactor(enabled=params.redact)
    stats = ExportStats.for_store(store)
    files = write_data(store, staging, params, redactor, stats, progress or SilentProgress(),
                       *tasks)
    if not files:
        raise CurateError(f"nothing to export from {store.path}: no usable rows "
                          f"(skipped: {stats.skipped or 'none'})")
    empty = empty_splits(files, stats, params)
    if empty and strict:
        raise CurateError("empty split (--strict): " + "; ".join(empty) + ". Use more "
                          "episodes, other --splits fractions or another --seed.")
    for warning in empty:
        logger.warning("empty split: %s", warning)
    (staging / "redaction_report.json").write_text(
        json.dumps(redaction_report(redactor), indent=2, sort_keys=True) + "\n")
    write_card(staging, files, stats, params, build or BuildInfo.from_store(store),
               dict(redactor.distinct), plots=plots)
    report = validate(staging, images=False)
    if not report.ok:
        problems = "\n  ".join(report.problems[:20])
        raise KeepForInspection(f"the export failed validation and was left in {staging} "
                                f"(removed by the next run):\n  {problems}")
    summary = _summary(staging, files, stats, redactor)
    summary.warnings = [f"empty split: {warning}" for warning in empty]
    return summary


def _summary(out: Path, files: dict[tuple[str, str, str], list[Path]], stats: ExportStats,
             redactor: Redactor) -> ExportSummary:
    summary = ExportSummary(out, redactions=dict(redactor.distinct),
                            skipped=stats.skipped_flat())
    summary.configs = sorted({config_name(c, f) for c, f, _ in files},
                             key=lambda name: (name.split("_")[0], "_" in name, name))
    for (config, flavour, split), paths in files.items():
        if flavour == "plain":
            summary.rows.setdefault(config, {})[split] = stats.rows_by_split[config][split]
        summary.files += len(paths)
    summary.bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return summary
