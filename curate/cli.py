"""The ``curate`` command line: each command parses options, calls one library function,
prints. Progress goes to stderr; results to stdout, so they can be piped."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from curate import __version__
from curate.errors import CurateError
from curate.progress import Progress
from curate.secrets import ScrubbingFilter, scrub
from curate.store.query import OUTPUT_FORMATS
from curate.store.schema import DOCUMENTED_TABLES, column_docs, table_doc

# Everything heavier (pyarrow, DuckDB, the pipeline stages) is imported inside the command
# that runs it, so `curate --help` and `curate formats` start in well under 0.3 s.
if TYPE_CHECKING:
    from curate.pipeline.ingest import IngestSummary


class LazyChoice(click.Choice):  # type: ignore[type-arg]
    """A Choice whose values are a constant of a library module, imported only when an option
    of this type is parsed or its help shown (not for `curate --help` or other commands)."""

    def __init__(self, module: str, name: str) -> None:
        self._source = (module, name)
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        module, name = self._source
        values: Sequence[str] = tuple(getattr(importlib.import_module(module), name))
        return values

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:  # set by click.Choice.__init__: unused
        pass


class BarProgress:
    """A tqdm bar on stderr; hidden when stderr is not a terminal unless forced."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None

    def start(self, total: int | None, description: str) -> None:
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=description, unit="unit", file=sys.stderr,
                             dynamic_ncols=True)

    def advance(self, count: int = 1, *, note: str = "") -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _engine_options(function: Any) -> Any:
    """--engine / --address / --cache, shared by ingest, label and build."""
    for option in reversed([
        click.option("--engine", "engine_name", default="local", show_default=True,
                     type=click.Choice(["local", "ray"]),
                     help="Where per-episode work runs: a local process pool, or a Ray "
                          "cluster (pip install 'curate[ray]'; see docs/engines.md)."),
        click.option("--address", default=None,
                     help="Ray cluster address: auto, host:port or ray://host:port "
                          "(with --engine ray)."),
        click.option("--cache", default=None, type=click.Path(path_type=Path),
                     help="Local folder mirroring URL inputs and outputs (default: "
                          "$CURATE_CACHE or ~/.cache/curate)."),
    ]):
        function = option(function)
    return function


UNRECOGNISED_SHOWN = 10  # files no adapter claimed, named in the summary (all are in rejects)


def _print_summary(summary: IngestSummary) -> None:
    click.echo(f"store      {summary.store}")
    click.echo(f"sources    {summary.units_seen} found, {summary.units_read} read, "
               f"{summary.units_unchanged} unchanged, {summary.units_replaced} replaced")
    formats = ", ".join(f"{k} {v}" for k, v in sorted(summary.episodes_by_format.items()))
    click.echo(f"episodes   {summary.episodes}" + (f" ({formats})" if formats else ""))
    click.echo(f"steps      {summary.steps}")
    click.echo(f"frames     {summary.frames_new} new, {_human_bytes(summary.frame_bytes_new)}")
    levels = ", ".join(f"{k} {v}" for k, v in sorted(summary.rejects_by_level.items()))
    click.echo(f"rejects    {summary.rejects}" + (f" ({levels})" if levels else ""))
    for file, hint in summary.unrecognised[:UNRECOGNISED_SHOWN]:
        click.echo(f"           not recognised: {file}: {hint}")
    if len(summary.unrecognised) > UNRECOGNISED_SHOWN:
        click.echo(f"           ... and {len(summary.unrecognised) - UNRECOGNISED_SHOWN} more "
                   "files not recognised")
    if summary.rejects:
        click.echo(f"           see them: curate query {summary.store} "
                   "\"SELECT file, position, reason FROM rejects\"")
    if summary.units_seen == 0:
        click.echo("nothing found: no file or folder under the sources is a recording curate "
                   "reads (see `curate formats`)")
    elif not summary.wrote_anything:
        click.echo("nothing new: every source was already in the store unchanged")


class CurateGroup(click.Group):
    """Turns curate's own errors (and missing files) into one clear line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        from curate.store.outputs import is_write_error, writing_to

        try:
            return super().invoke(ctx)
        except (CurateError, FileNotFoundError) as error:
            raise UsageFailure(str(error)) from None
        except KeyboardInterrupt:
            raise Interrupted("interrupted: committed data is intact and unfinished "
                              "outputs were removed; run the command again to go on") from None
        except OSError as error:
            if not is_write_error(error):
                raise
            try:  # the library names the path it was writing; this is the last resort
                with writing_to(Path(".")):
                    raise error
            except CurateError as named:
                raise UsageFailure(str(named)) from None


class UsageFailure(click.ClickException):
    exit_code = 2

    def __init__(self, message: str) -> None:
        # A server's answer or a URL may be quoted in the message: never print a key.
        super().__init__(scrub(message))

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.message}", err=True)


class Interrupted(UsageFailure):
    exit_code = 130  # the shell's code for a command ended by SIGINT


def _terminate_like_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM unwinds like Ctrl-C, so partial outputs are removed on the way out."""
    raise KeyboardInterrupt


@click.group(cls=CurateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="curate")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug) to stderr.")
def cli(verbose: int) -> None:
    """curate: GUI recordings and tool-use logs in, aligned trajectory datasets out.

    Typical use: `curate ingest recordings/ -o store/`, then `curate info store/` and
    `curate query store/ "SQL"`.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        # HTTP libraries log headers and bodies at debug level: scrub every line written.
        handler.addFilter(ScrubbingFilter())


@cli.command("ingest")
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--output", "store", required=True,
              help="Store folder (or URL, e.g. s3://bucket/store) to create or update.")
@click.option("--format", "source_format", default=None, metavar="NAME",
              help="Force one adapter instead of detecting each episode's format "
                   "(see `curate formats`).")
@click.option("--workers", default=None, type=click.IntRange(1, 4096),
              help="Processes reading sources in parallel (local default 1; with Ray, tasks "
                   "in flight, default: the cluster's CPUs).")
@_engine_options
@click.option("--batch-units", default=256, show_default=True, type=click.IntRange(1),
              help="Sources committed together; an interrupted run resumes after the last "
                   "committed batch.")
@click.option("--strict", is_flag=True,
              help="Exit with status 1 when anything was rejected (still writes the rest) "
                   "or when nothing was found to ingest.")
@click.option("--limit", default=None, type=click.IntRange(1), metavar="N",
              help="Read at most N episodes from each file streamed from the Hub (hf:// "
                   "sources), e.g. to try a corpus before ingesting all of it.")
@click.option("--progress/--no-progress", default=None,
              help="Draw a progress bar on stderr (default: when stderr is a terminal).")
@click.option("--tasks", default=None, metavar="DIR",
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of the benchmark's task configs, searched first for a run's "
                   "instruction (OSWorld: evaluation_examples or its examples/ folder).")
def ingest_command(sources: tuple[str, ...], store: str, source_format: str | None,
                   workers: int | None, engine_name: str, address: str | None,
                   cache: Path | None, batch_units: int, strict: bool, limit: int | None,
                   progress: bool | None, tasks: Path | None) -> None:
    """Read recordings under SOURCES into the store at -o STORE.

    Each episode folder or log file is detected and read by its adapter; screenshots are
    stored once by content; whatever cannot be read is recorded in the `rejects` table with
    file, position and reason, and the run goes on. Re-running skips unchanged sources and
    replaces changed ones. SOURCES and the store may be URLs (s3://, gs://, file://, ...);
    hf://datasets/ORG/NAME[/PATH] streams Multimodal-Mind2Web Parquet shards from the Hub
    by byte ranges, only the columns curate reads, and mirrors the URL's other files.
    """
    from curate.engines import get_engine
    from curate.pipeline.ingest import ingest

    show = sys.stderr.isatty() if progress is None else progress
    reporter: Progress = BarProgress(show)
    with get_engine(engine_name, workers=workers, address=address) as engine:
        summary = ingest(list(sources), store, source_format=source_format,
                         workers=workers or 1, batch_units=batch_units, progress=reporter,
                         engine=engine, cache=cache, limit=limit,
                         task_configs=tasks)
    _print_summary(summary)
    if strict and (summary.rejects or summary.units_seen == 0):
        raise SystemExit(1)


@cli.command("label")
@click.argument("store")
@click.option("--workers", default=None, type=click.IntRange(1, 4096),
              help="Processes decoding frames in parallel (local default: the cores this "
                   "process may use; with Ray, tasks in flight, default: the cluster's CPUs).")
@_engine_options
@click.option("--force", is_flag=True, help="Relabel batches whose labels are current.")
@click.option("--progress/--no-progress", default=None,
              help="Draw a progress bar on stderr (default: when stderr is a terminal).")
def label_command(store: str, workers: int | None, engine_name: str, address: str | None,
                  cache: Path | None, force: bool, progress: bool | None) -> None:
    """Label every step: noop, loop, on_path, recovery, terminal (see docs/labels.md).

    Each unique frame is decoded once into a small state grid (stored in `frame_states`);
    labels are written to the `labels` table with their evidence. Re-running only labels
    batches that are new or were labelled with other parameters.
    """
    from contextlib import nullcontext

    from curate.engines import get_engine
    from curate.pipeline.label import label
    from curate.without_pandas import pandas_refused

    show = sys.stderr.isatty() if progress is None else progress
    if workers is None and engine_name == "local":
        import os

        workers = len(os.sched_getaffinity(0))  # decoding is most of label: every core
    # label hands pyarrow no pandas object, and the import is ~0.25 s of CPU (a few % of
    # labelling 1,000 frames); Ray's client may want pandas, so only the local engine.
    refused = pandas_refused() if engine_name == "local" else nullcontext()
    with refused, get_engine(engine_name, workers=workers, address=address) as engine:
        summary = label(store, workers=workers or 1, force=force, progress=BarProgress(show),
                        engine=engine, cache=cache)
    click.echo(f"frames decoded  {summary.frames_decoded}")
    click.echo(f"batches         {summary.batches_labelled} labelled, "
               f"{summary.batches_current} already current")
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    click.echo(f"steps           {summary.steps} ({counts})")


@cli.command("execute")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--executor", "executor_name", required=True,
              help="The frozen executor: a11y, replay, python, grounding (see docs/executors.md).")
@click.option("--url", help="Model server base URL (OpenAI-compatible), for model executors.")
@click.option("--model", help="Model id to ask, for model executors.")
@click.option("--family", help="Model family (prompt, parser, coordinate convention), for "
                               "grounding.")
@click.option("--steps", type=click.Choice(["all", "on_path"]), default="all", show_default=True,
              help="Execute every step, or only on-path steps (needs `curate label`).")
@click.option("--concurrency", type=click.IntRange(1), default=None,
              help="How many steps the executor may run at once (model calls, sandboxes).")
@click.option("--preset", default="default", show_default=True,
              help="curate.rewards preset the executed action is scored with.")
@click.option("--progress/--no-progress", default=None,
              help="Draw a progress bar on stderr (default: when stderr is a terminal).")
def execute_command(store: Path, executor_name: str, url: str | None, model: str | None,
                    family: str | None, steps: str, concurrency: int | None, preset: str,
                    progress: bool | None) -> None:
    """Run a frozen executor over the store's steps and write the `executions` table.

    Offline, the proposed step is the reference step itself (its action type and step
    instruction): each row says whether the executor could carry it out and whether what it
    did matches the reference. Resumable: batches already executed with the same parameters
    are skipped. Ends with executability rates per source and per action type.
    """
    from curate.pipeline.execute import execute

    options = {k: v for k, v in (("url", url), ("model", model), ("family", family),
                                 ("concurrency", concurrency)) if v is not None}
    show = sys.stderr.isatty() if progress is None else progress
    summary = execute(store, executor=executor_name, steps=steps, options=options,
                      preset=preset, progress=BarProgress(show))
    click.echo(f"batches    {summary.batches_run} executed, {summary.batches_current} "
               "already current")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items()))
    click.echo(f"steps      {summary.steps} ({outcomes or 'none'})")
    mean = summary.reward_sum / summary.steps if summary.steps else 0.0
    click.echo(f"executable {summary.rate(summary.outcomes):.1%}, mean reward {mean:.3f}")
    for title, groups in (("source", summary.by_source), ("type", summary.by_type)):
        for name, counts in sorted(groups.items()):
            click.echo(f"  {title} {name:<16} {summary.rate(counts):6.1%} of "
                       f"{sum(counts.values())}")


@cli.command("segment")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--horizon", "horizons", multiple=True, default=("3",), show_default=True,
              help="K, steps to forecast, or 'end' (every remaining step, capped by "
                   "--max-horizon); repeat for several horizons.")
@click.option("--max-horizon", default=50, show_default=True, type=click.IntRange(1),
              help="The most steps an 'end' window forecasts.")
@click.option("--stride", default=1, show_default=True, type=click.IntRange(1),
              help="Start a window every S steps.")
@click.option("--history", default=4, show_default=True, type=click.IntRange(0),
              help="H, past actions kept as context.")
@click.option("--force", is_flag=True, help="Recompute batches whose segments are current.")
def segment_command(store: Path, horizons: tuple[str, ...], max_horizon: int, stride: int,
                    history: int, force: bool) -> None:
    """Cut labelled episodes into K-step forecast windows with a consistency score.

    Each window holds the context (instruction, last H actions, s_t) and the target
    (a_t ... a_t+K-1 and their next-state frame ids), padded with `done` and a mask past the
    episode's end. Run `curate label` first.
    """
    from curate.pipeline.segment import SegmentParams, parse_horizon, segment, sorted_horizons
    from curate.without_pandas import pandas_refused

    params = SegmentParams(sorted_horizons(tuple(parse_horizon(h) for h in horizons)), stride,
                           history, max_horizon)
    # segment hands pyarrow no pandas object: its import would be a third of the command.
    with pandas_refused():
        summary = segment(store, params=params, force=force)
    click.echo(f"batches         {summary.batches_segmented} segmented, "
               f"{summary.batches_current} already current")
    click.echo(f"segments        {summary.segments} "
               f"(mean consistency {summary.mean_consistency:.3f})")


def _export_options(function: Any) -> Any:
    """Options shared by `export` (build takes them from the recipe)."""
    options = [
        click.option("--config", "configs", multiple=True,
                     type=LazyChoice("curate.export.params", "CONFIGS"),
                     help="Configs to write (repeat; default: stage1 and stage2)."),
        click.option("--flavour", "flavours", multiple=True,
                     type=LazyChoice("curate.export.params", "FLAVOURS"),
                     help="Trainer flavours (repeat; default: plain, trl, verl; easyr1 is "
                          "TraceR1's Stage-1 step format, stage1 only)."),
        click.option("--splits", default="train=0.9,test=0.1", show_default=True,
                     help="Split fractions, name=fraction,..."),
        click.option("--split-by", default="episode", show_default=True,
                     type=LazyChoice("curate.export.splits", "SPLIT_KEYS"),
                     help="Group rows by this before splitting (app/site/task: "
                          "out-of-distribution splits)."),
        click.option("--seed", default=0, show_default=True, type=int,
                     help="Seed of the split assignment."),
        click.option("--history", default=4, show_default=True, type=click.IntRange(0),
                     help="Past actions in stage2 prompts."),
        click.option("--history-images", default=0, show_default=True,
                     type=click.IntRange(0),
                     help="Stage1: also embed the last N past screenshots."),
        click.option("--future-images", is_flag=True,
                     help="Stage1: embed the next-state screenshots of the target window."),
        click.option("--context-chars", default=8_000, show_default=True,
                     type=click.IntRange(0),
                     help="Tool episodes: characters of tool results one prompt's history "
                          "shows, newest first (what is left out is marked)."),
        click.option("--result-chars", default=2_000, show_default=True,
                     type=click.IntRange(0),
                     help="Tool episodes: characters of one tool result (longer ones are "
                          "cut with a mark)."),
        click.option("--stage2-steps", default="all", show_default=True,
                     type=LazyChoice("curate.export.params", "STAGE2_STEPS"),
                     help="Stage2 rows: all steps, on_path only, useful (no noop/loop), or "
                          "executable (the executor of `curate execute` carried them out)."),
        click.option("--preset", default="default", show_default=True,
                     help="curate.rewards matching preset written into the ground truth."),
        click.option("--no-redact", is_flag=True,
                     help="Do NOT redact e-mails, card numbers, keys, tokens, passwords."),
        click.option("--license", "license_name", default="other", show_default=True,
                     help="License written into the card (a Hub license id, or other)."),
        click.option("--license-name", "license_title", default=None,
                     help="With --license other: the license's name (default: "
                          "per-source-licenses, the LICENSE.md export writes)."),
        click.option("--license-link", default="LICENSE.md", show_default=True,
                     help="With --license other: a URL or a file in the dataset; the "
                          "LICENSE.md export writes lists each source's terms."),
        click.option("--language", "languages", multiple=True, default=("en",),
                     show_default=True, help="Language of the text (ISO 639 code); repeat."),
        click.option("--pretty-name", default="curate trajectories", show_default=True,
                     help="Dataset name shown on the card."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@cli.command("export")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              help="Folder to write (laid out like a Hugging Face dataset repo).")
@_export_options
@click.option("--strict", is_flag=True,
              help="Fail (exit 2, nothing replaced) when a split asked for comes out empty.")
@click.option("--format", "form", type=click.Choice(["dataset", "adp", "atif"]),
              default="dataset", show_default=True,
              help="dataset: the Hub dataset folder; adp / atif: every episode as Agent Data "
                   "Protocol standardized or ATIF trajectories (one JSON file + images/; the "
                   "dataset options do not apply).")
def export_command(store: Path, out: Path, configs: tuple[str, ...],
                   flavours: tuple[str, ...], splits: str, split_by: str, seed: int,
                   history: int, history_images: int, future_images: bool,
                   context_chars: int, result_chars: int, stage2_steps: str,
                   preset: str, no_redact: bool, license_name: str, license_title: str | None,
                   license_link: str, languages: tuple[str, ...], pretty_name: str,
                   strict: bool, form: str) -> None:
    """Write the store's segments (stage1) and steps (stage2) as a dataset folder.

    The folder has README.md (the data card), data/<config>/<split>-NNNNN-of-NNNNN.parquet,
    plots/, croissant.json and redaction_report.json; `datasets.load_dataset(OUT, "stage1")`
    opens it. It is validated before it replaces OUT. Run `curate label` and
    `curate segment` first (or use `curate build`). With `--format adp|atif` the ingested
    episodes are written as interchange trajectories instead (no labels or segments needed).
    """
    if form != "dataset":
        from curate.export.interchange import FILE_NAMES, export_interchange

        written = export_interchange(store, out, form)
        click.echo(f"{form:<15} {written.out / FILE_NAMES[form]} ({written.trajectories} "
                   f"trajectories, {written.steps} steps, {written.images} images)")
        return
    from curate.export import ExportParams, export
    from curate.export.params import CONFIGS, DEFAULT_FLAVOURS, DEFAULT_LICENSE_NAME
    from curate.export.splits import parse_fractions

    params = ExportParams(
        configs=configs or CONFIGS, flavours=flavours or DEFAULT_FLAVOURS,
        splits=parse_fractions(splits), split_by=split_by, seed=seed, history=history,
        history_images=history_images, future_images=future_images,
        context_chars=context_chars, result_chars=result_chars, stage2_steps=stage2_steps,
        preset=preset, redact=not no_redact,
        license=license_name, license_name=license_title or DEFAULT_LICENSE_NAME,
        license_link=license_link,
        languages=languages, pretty_name=pretty_name)
    from curate.without_pandas import pandas_refused

    # The export hands pyarrow no pandas object: the import (~0.3 s of CPU on the first
    # conversion of Python values) would be about half of a one-config export's Parquet write.
    with pandas_refused():
        summary = export(store, out, params=params, progress=BarProgress(sys.stderr.isatty()),
                         strict=strict)
    _print_export(summary)


def _print_export(summary: Any) -> None:
    click.echo(f"dataset         {summary.out} ({summary.files} files, "
               f"{_human_bytes(summary.bytes)})")
    for config, splits in sorted(summary.rows.items()):
        click.echo(f"{config:<15} " + ", ".join(f"{s} {n}" for s, n in sorted(splits.items())))
    redactions = ", ".join(f"{k} {v}" for k, v in sorted(summary.redactions.items()))
    click.echo(f"redacted        {redactions or 'nothing found'}")
    if summary.skipped:
        click.echo("skipped rows    " + ", ".join(f"{k} {v}" for k, v in summary.skipped.items()))
    for warning in summary.warnings:
        click.echo(f"warning         {warning}")
    for name in summary.configs:
        click.echo(f"load it         datasets.load_dataset({str(summary.out)!r}, {name!r})")


@cli.command("validate")
@click.argument("dist", type=click.Path(path_type=Path))
@click.option("--skip-images", is_flag=True, help="Do not re-read and check image bytes.")
def validate_command(dist: Path, skip_images: bool) -> None:
    """Check an exported dataset folder: card metadata, schemas, images, coordinates in
    [0,1], screenshots of GUI rows, timestamp order, ground truth, image tags, split leakage.

    Exits 1 and lists every problem when it fails.
    """
    from curate.export.validate import validate

    report = validate(dist, images=not skip_images)
    click.echo(f"checked         {report.files} files, {report.rows} rows, "
               f"{report.images} images")
    if report.ok:
        click.echo("valid")
        return
    for problem in report.problems:
        click.echo(f"problem         {problem}")
    raise SystemExit(1)


@cli.command("build")
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--output", "out", required=True,
              help="Dataset folder (or URL) to write.")
@click.option("--recipe", default="tracer1", show_default=True,
              help="A recipe YAML file, or the name of one in pipelines/.")
@click.option("--store", "store", default=None,
              help="Store folder or URL to use (default: OUTPUT.store beside the dataset).")
@click.option("--workers", default=None, type=click.IntRange(1, 4096),
              help="Processes for ingest and label (default: the recipe's; with Ray, tasks "
                   "in flight).")
@_engine_options
@click.option("--strict", is_flag=True,
              help="Fail when nothing was found to ingest or a split comes out empty.")
def build_command(sources: tuple[str, ...], out: str, recipe: str, store: str | None,
                  workers: int | None, engine_name: str, address: str | None,
                  cache: Path | None, strict: bool) -> None:
    """Run the whole chain with a recipe: ingest → label → segment → export.

    The recipe (pipelines/tracer1.yaml by default) sets every parameter and is written into
    the dataset card. Re-running reuses what the store already has.
    """
    from curate.engines import get_engine
    from curate.pipeline.build import build

    command = "curate build " + " ".join(str(s) for s in sources) + f" -o {out}" + (
        f" --recipe {recipe}" if recipe != "tracer1" else "")
    # The local pool is left to build (it takes the recipe's worker counts); Ray is opened
    # here and closed when the build ends.
    if engine_name == "ray":
        with get_engine("ray", workers=workers, address=address) as engine:
            summary = build(list(sources), out, recipe=recipe, store=store, workers=workers,
                            command=command, progress=BarProgress(sys.stderr.isatty()),
                            engine=engine, cache=cache, strict=strict)
    else:
        if address is not None:
            raise UsageFailure("--address is for the ray engine; add --engine ray")
        summary = build(list(sources), out, recipe=recipe, store=store, workers=workers,
                        command=command, progress=BarProgress(sys.stderr.isatty()),
                        cache=cache, strict=strict)
    click.echo(f"recipe          {summary.recipe.name} (version {summary.recipe.version})")
    if len(summary.skipped) == 4:
        click.echo("unchanged       ingest, label, segment and export skipped: same inputs, "
                   "recipe and curate version as the last build")
    elif summary.skipped:
        click.echo(f"unchanged       {', '.join(summary.skipped)} skipped (nothing to redo)")
    _print_summary(summary.ingest)
    counts = ", ".join(f"{k} {v}" for k, v in summary.label.counts.items())
    click.echo(f"labels     {summary.label.steps} steps ({counts})")
    click.echo(f"segments   {summary.segment.segments} "
               f"(mean consistency {summary.segment.mean_consistency:.3f})")
    _print_export(summary.export)


@cli.command("publish")
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--repo-id", required=True, metavar="ORG/NAME",
              help="The dataset repository on the Hub (created if missing).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--create-pr", is_flag=True,
              help="Open a pull request instead of committing to main (no tag).")
@click.option("--tag", default=None,
              help="Tag for the commit (default: v<schema version> from the card).")
@click.option("-m", "--message", default=None, help="Commit message.")
@click.option("--token", default=None,
              help="Hub token with write access (prefer HF_TOKEN or `hf auth login`: a token "
                   "on the command line ends up in the shell history).")
@click.option("--allow-unredacted", is_flag=True,
              help="Publish even if redaction_report.json lists unresolved findings "
                   "(an export made with --no-redact that found secrets).")
@click.option("--large-above", default=None, type=click.IntRange(0), metavar="BYTES",
              help="Folders this large or larger are uploaded in parts, resumably (the Hub "
                   "client's large-folder path; run publish again to resume). Default 5 GB.")
def publish_command(dist: Path, repo_id: str, private: bool, create_pr: bool,
                    tag: str | None, message: str | None, token: str | None,
                    allow_unredacted: bool, large_above: int | None) -> None:
    """Upload a validated dataset folder to the Hugging Face Hub and tag the revision.

    Refuses a folder that fails `curate validate`, and one whose redaction report lists
    unresolved findings (unless --allow-unredacted). The token comes from HF_TOKEN or the
    login cache and is never printed. HF_ENDPOINT points it at another Hub-compatible server.
    """
    from curate.export.publish import LARGE_FOLDER_BYTES, publish

    result = publish(dist, repo_id, private=private, create_pr=create_pr, tag=tag,
                     commit_message=message, token=token, allow_unredacted=allow_unredacted,
                     large_above=LARGE_FOLDER_BYTES if large_above is None else large_above)
    click.echo(f"commit          {result.commit_url}"
               + (" (nothing changed: no new commit)" if result.commit_sha and not (
                   result.uploaded or result.deleted) else ""))
    click.echo(f"files           {len(result.added)} added, {len(result.changed)} changed, "
               f"{len(result.unchanged)} unchanged, {len(result.deleted)} deleted")
    if result.reused_pr:
        click.echo(f"pull request    {result.pr_url} already holds this content: reused, "
                   "none opened")
        return
    if result.tag:
        click.echo(f"tag             {result.tag}")
    if result.pr_url:
        click.echo(f"pull request    {result.pr_url}")


def _server_options(function: Any) -> Any:
    for option in reversed([
        click.option("--project", required=True, help="Label Studio project title."),
        click.option("--url", default=None, envvar="LABEL_STUDIO_URL",
                     help="Label Studio URL (or LABEL_STUDIO_URL)."),
        click.option("--api-key", default=None, envvar="LABEL_STUDIO_API_KEY",
                     help="Label Studio access token (or LABEL_STUDIO_API_KEY)."),
    ]):
        function = option(function)
    return function


@cli.group("review")
def review_group() -> None:
    """Review steps, segments or episodes in Label Studio; verdicts flow back into the store.

    `push` creates tasks with the current actions and labels as predictions, reviewers
    correct them in Label Studio, `pull` reads the annotations into the `reviews` table, and
    `segment` / `export` then prefer them over the heuristics. See docs/review.md.
    """


@review_group.command("push")
@click.argument("store", type=click.Path(path_type=Path))
@_server_options
@click.option("--unit", default="step", show_default=True,
              type=click.Choice(["step", "segment", "episode"]), help="What one task reviews.")
@click.option("--filter", "filter_sql", default=None,
              help="SQL condition (what follows WHERE) on the unit's columns, e.g. "
                   "\"action_type = 'click' AND NOT on_path\" (docs/review.md lists them); "
                   "default: everything, low-consistency segments first.")
@click.option("--sample", default=None, type=click.IntRange(1), help="Review at most N items.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sample.")
@click.option("--images", "image_mode", default="data-uri", show_default=True,
              type=click.Choice(["data-uri", "local-files"]),
              help="How screenshots reach the server (data URIs also work for remote servers).")
@click.option("--local-files-root", default=None, type=click.Path(path_type=Path),
              help="With --images local-files: the server's LABEL_STUDIO_LOCAL_FILES_"
                   "DOCUMENT_ROOT.")
def review_push_command(store: Path, project: str, url: str | None, api_key: str | None,
                        unit: str, filter_sql: str | None, sample: int | None, seed: int,
                        image_mode: str, local_files_root: Path | None) -> None:
    """Create or update a Label Studio project and import review tasks with predictions.

    Pushing the same items again adds nothing.
    """
    from curate.review import push

    summary = push(store, project=project, url=url, api_key=api_key, unit=unit,
                   filter_sql=filter_sql, sample=sample, seed=seed, image_mode=image_mode,
                   local_files_root=local_files_root)
    click.echo(f"project         {summary.project} (id {summary.project_id}"
               f"{', created' if summary.project_created else ''})")
    click.echo(f"tasks           {summary.selected} selected, {summary.created} created, "
               f"{summary.already_present} already present ({summary.unit}s, "
               f"images as {summary.image_mode})")
    if summary.superseded:
        click.echo(f"superseded      {summary.superseded} tasks of items that changed (kept "
                   "with their annotations as history; the new tasks replace them)")


@review_group.command("pull")
@click.argument("store", type=click.Path(path_type=Path))
@_server_options
def review_pull_command(store: Path, project: str, url: str | None,
                        api_key: str | None) -> None:
    """Read the project's annotations into the store's `reviews` table.

    Several annotations of one task: the majority decision wins, ties go to the latest;
    agreement is reported. Pulling twice changes nothing.
    """
    from curate.review import pull
    from curate.review.agreement import describe_alpha

    summary = pull(store, project=project, url=url, api_key=api_key)
    click.echo(f"tasks           {summary.tasks} ({summary.annotated_tasks} annotated)")
    click.echo(f"reviews         {summary.reviews} ({summary.corrections} corrections, "
               f"{summary.text_corrections} step texts corrected, "
               f"{summary.conflicts} conflicts, {summary.cancelled} skipped by reviewers)")
    click.echo(f"agreement       {summary.mean_agreement:.2f} (percent agreement with the "
               f"majority); Krippendorff's alpha {describe_alpha(summary.alpha)}")
    for skip in summary.skipped:
        click.echo(f"skipped         task {skip.task_id} ({skip.item_key}): {skip.reason}")
    if summary.history:
        click.echo(f"history         {summary.history} annotations of superseded tasks "
                   "(not applied)")
    if summary.deleted_tasks:
        click.echo(f"deleted in UI   {len(summary.deleted_tasks)} tasks")
    _print_cross_project(summary.cross_project_conflicts)
    click.echo("reviews table   " + ("updated" if summary.changed else "unchanged"))


def _print_cross_project(conflicts: list[Any]) -> None:
    click.echo(f"across projects {len(conflicts)} items decided differently")
    for conflict in conflicts:
        decided = ", ".join(f"{project}: {decision}" for project, decision in conflict.decisions)
        click.echo(f"  {conflict.item_key}  {decided}  (applied: {conflict.applied}, the "
                   "most recent)")


@review_group.command("status")
@click.argument("store", type=click.Path(path_type=Path))
@_server_options
def review_status_command(store: Path, project: str, url: str | None,
                          api_key: str | None) -> None:
    """Show review progress, verdicts and agreement for a project."""
    from curate.review import status
    from curate.review.agreement import describe_alpha

    summary = status(store, project=project, url=url, api_key=api_key)
    click.echo(f"tasks           {summary.tasks} ({summary.annotated} annotated, "
               f"{summary.remaining} remaining)")
    verdicts = ", ".join(f"{k} {v}" for k, v in sorted(summary.verdicts.items()))
    click.echo(f"verdicts        {verdicts or 'none yet'}")
    click.echo(f"agreement       {summary.mean_agreement:.2f} (mean share of a task's "
               f"annotations with its majority decision, over {summary.multi_annotated} tasks "
               "with several annotations)")
    click.echo(f"alpha           {describe_alpha(summary.alpha)} (Krippendorff's, nominal: "
               "agreement corrected for chance, 1 perfect, 0 chance)")
    click.echo(f"pulled          {summary.pulled_reviews} reviews in the store")
    if summary.deleted_tasks:
        click.echo(f"deleted in UI   {summary.deleted_tasks} tasks")
    _print_cross_project(summary.cross_project_conflicts)


@cli.command("view")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--episode", "episodes", multiple=True, help="Episode id to show (repeat); "
              "default: all.")
@click.option("-o", "--output", "out", default="view.html", show_default=True,
              type=click.Path(path_type=Path), help="HTML file to write.")
def view_command(store: Path, episodes: tuple[str, ...], out: Path) -> None:
    """Write one self-contained HTML page to browse episodes: screenshots with the actions
    drawn on them, labels, forecast windows next to their reference, reviews and rejects."""
    from curate.views.viewer import render_view

    path = render_view(store, episode_ids=list(episodes) or None, out_path=out)
    click.echo(f"wrote           {path} ({_human_bytes(path.stat().st_size)})")


@cli.command("sheet")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("episode")
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              help="PNG file to write.")
@click.option("--columns", default=4, show_default=True, type=click.IntRange(1),
              help="Tiles per row.")
@click.option("--tile-width", default=480, show_default=True, type=click.IntRange(64),
              help="Width of each tile in pixels.")
def sheet_command(store: Path, episode: str, out: Path, columns: int, tile_width: int) -> None:
    """Draw a contact sheet of one episode: every step's before-screenshot with its action
    drawn on it (click ring, drag path, scroll arrow, typed text), to check alignment by eye."""
    from curate.views.sheets import contact_sheet

    data = contact_sheet(store, episode, columns=columns, tile_width=tile_width)
    out.write_bytes(data)
    click.echo(f"wrote           {out} ({_human_bytes(len(data))})")


@cli.command("query", epilog="Tables: " + ", ".join(DOCUMENTED_TABLES) + ".")
@click.argument("store", type=click.Path(path_type=Path))
@click.argument("sql")
@click.option("-f", "--format", "output", type=click.Choice(OUTPUT_FORMATS), default="table",
              show_default=True, help="Output format.")
def query_command(store: Path, sql: str, output: str) -> None:
    """Run SQL (DuckDB) over the store's tables and print the result.

    The tables are listed below; `curate schema TABLE` lists a table's columns.
    Struct fields use dots: `SELECT action.type, count(*) FROM steps GROUP BY 1`.
    Queries are read-only: SQL cannot read or write files (DuckDB's external access is off).
    """
    from curate.store.core import open_store
    from curate.store.query import query, render

    click.echo(render(query(open_store(store), sql), output), nl=False)


@cli.command("annotate")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--model", required=True, help="Model id the server serves (its `model` field).")
@click.option("--url", required=True,
              help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (vLLM, SGLang, "
                   "TGI or a hosted API).")
@click.option("--fields", default="step_instruction,state", show_default=True,
              help="What to write, comma-separated: step_instruction, state.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 1024),
              help="Requests in flight at once.")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for one answer.")
@click.option("--max-retries", default=4, show_default=True, type=click.IntRange(0),
              help="Retries on 429, 5xx and connection errors (with backoff).")
@click.option("--max-tokens", default=256, show_default=True, type=click.IntRange(1),
              help="Longest answer asked for.")
@click.option("--api-key-env", default="CURATE_MODEL_API_KEY", show_default=True,
              help="Environment variable holding the server's API key (never printed).")
@click.option("--force", is_flag=True, help="Annotate batches that are already current.")
@click.option("--progress/--no-progress", default=None,
              help="Draw a progress bar on stderr (default: when stderr is a terminal).")
def annotate_command(store: Path, model: str, url: str, fields: str, concurrency: int,
                     timeout: float, max_retries: int, max_tokens: int, api_key_env: str,
                     force: bool, progress: bool | None) -> None:
    """Have a model write each step's instruction and the state after it.

    Writes the `annotations` table (docs/schema.md); every answer is cached in
    STORE/cache/models, so a re-run makes no requests. Prompts: annotations/prompts/annotate/.
    """
    from curate.pipeline.annotate import annotate, parse_fields

    try:
        chosen = parse_fields(fields)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--fields") from None
    show = sys.stderr.isatty() if progress is None else progress
    summary = annotate(store, model=model, url=url, fields=chosen, concurrency=concurrency,
                       timeout=timeout, max_retries=max_retries, max_tokens=max_tokens,
                       api_key_env=api_key_env, force=force, progress=BarProgress(show))
    click.echo(f"model      {summary.model} (prompt {summary.prompt_version})")
    click.echo(f"batches    {summary.batches_annotated} annotated, "
               f"{summary.batches_current} already current")
    filled = ", ".join(f"{name} {summary.filled[name]}" for name in chosen)
    click.echo(f"steps      {summary.steps} ({filled})")
    click.echo(f"requests   {summary.requests} sent, {summary.cache_hits} answered from the cache")
    failed = ", ".join(f"{k} {v}" for k, v in sorted(summary.failed.items())) or "none"
    click.echo(f"failed     {failed}")
    if summary.failed:
        click.echo("           see: curate query STORE \"SELECT * FROM annotations WHERE reason "
                   "IS NOT NULL\"")


@cli.command("info")
@click.argument("store", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def info_command(store: Path, as_json: bool) -> None:
    """Show what the store holds: rows per table, formats, outcomes, action types, rejects."""
    from curate.store.core import open_store
    from curate.store.info import store_info

    info = store_info(open_store(store))
    if as_json:
        click.echo(json.dumps(info.as_dict(), indent=2, sort_keys=True))
        return
    click.echo(f"store           {info.path} (schema v{info.schema_version}, "
               f"written by curate {info.toolkit_version}, {info.batches} batches)")
    for table in DOCUMENTED_TABLES:
        click.echo(f"{table:<15} {info.rows[table]} rows")
    click.echo(f"frame bytes     {_human_bytes(info.frame_bytes)} "
               f"(store on disk {_human_bytes(info.disk_bytes)})")
    for title, counts in (("formats", info.episodes_by_format),
                          ("outcomes", info.episodes_by_outcome),
                          ("actions", info.steps_by_action),
                          ("rejects", info.rejects_by_level)):
        if counts:
            click.echo(f"{title:<15} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    click.echo(f"no s_t frame    {info.steps_without_state} steps")


@cli.command("merge")
@click.argument("stores", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              help="Store folder to create or add to (may be one of STORES).")
def merge_command(stores: tuple[Path, ...], out: Path) -> None:
    """Combine STORES (built on other machines or at other times) into the store -o OUT.

    Batches OUT already has are skipped (a store merged with itself changes nothing); a
    screenshot OUT already has is not stored twice. Stores of different schema versions, or
    holding one source path with different content, are refused before anything is
    written. The inputs are only read.
    """
    from curate.store.merge import merge_stores

    summary = merge_stores(list(stores), out)
    click.echo(f"merged     {summary.inputs} store(s) into {summary.output}")
    click.echo(f"batches    {summary.batches_copied} copied, {summary.batches_rewritten} "
               f"written without repeats, {summary.batches_present} already there")
    click.echo(f"repeats    {summary.units_skipped} source(s), {summary.frames_skipped} "
               "frame(s) already in the output, not copied")
    for path in summary.not_carried:
        click.echo(f"not merged {path} (store-level reviews: pull them again into the output)")


@cli.command("formats")
def formats_command() -> None:
    """List the source formats curate can read, in detection order, with their origin:
    built-in, or the installed package whose `curate.adapters` entry point added it."""
    from curate.sources.catalogue import listing

    for entry in listing():
        click.echo(f"{entry.name:<20} {entry.platform:<8} {entry.origin:<9} "
                   f"{entry.description}")


@cli.command("schema")
@click.argument("table", required=False, type=click.Choice([*DOCUMENTED_TABLES, "action"]))
def schema_command(table: str | None) -> None:
    """Print the columns of the store's tables (or of one TABLE) with their meaning."""
    for name in [table] if table else [*DOCUMENTED_TABLES]:
        if name != "action":
            click.echo(f"{name}: {table_doc(name)}")
        for column in column_docs(name):
            null = "" if column.nullable else " not null"
            click.echo(f"  {column.name:<28} {column.type}{null}\n      {column.doc}")
        click.echo()


def main() -> None:
    """Console-script entry point."""
    import signal

    from curate.without_pandas import refuse_in_this_process

    signal.signal(signal.SIGTERM, _terminate_like_interrupt)
    refuse_in_this_process()  # this process ends with the command (curate.without_pandas)
    cli()


if __name__ == "__main__":
    main()
