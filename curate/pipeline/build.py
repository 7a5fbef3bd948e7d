"""``build``: ingest → label → segment → export in one call, with a recipe's parameters,
the recipe written into the card.

Incremental: ingest skips sources whose content fingerprint is committed, label and segment
skip batches whose files carry the current parameters, and export keeps the folder it made
when its marker's build key (:func:`build_key`) is unchanged."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow.parquet as pq

from curate import __version__
from curate.engines import Engine, remote
from curate.errors import CurateError
from curate.export.params import CONFIGS
from curate.export.provenance import BuildInfo
from curate.export.summary import ExportSummary
from curate.pipeline.ingest import IngestSummary, ingest
from curate.pipeline.label import LabelSummary, label
from curate.pipeline.recipe import Recipe, load_recipe
from curate.pipeline.segment import SegmentSummary, segment
from curate.progress import Progress
from curate.review.overrides import reviews_fingerprint
from curate.sources.hub import is_hub_url
from curate.store.core import Store, open_store, store_lock
from curate.store.derived import PARAMS_KEY
from curate.store.layout import batch_file
from curate.store.outputs import check_output, read_marker
from curate.store.schema import DERIVED_TABLES

DEFAULT_RECIPE = "tracer1"


@dataclass
class BuildSummary:
    store: Path
    recipe: Recipe
    ingest: IngestSummary
    label: LabelSummary
    segment: SegmentSummary
    export: ExportSummary
    skipped: list[str] = field(default_factory=list)  # stages that found nothing to do


def default_store_for(out: Path) -> Path:
    """Where build keeps its store when not told: beside the export, ``<out>.store``."""
    return out.with_name(f"{out.name}.store")


def build(sources: list[str | Path], out: str | Path, *, recipe: str | Path = DEFAULT_RECIPE,
          store: str | Path | None = None, workers: int | None = None,
          command: str = "curate build", progress: Progress | None = None,
          engine: Engine | None = None, cache: Path | None = None,
          strict: bool = False) -> BuildSummary:
    """Run the whole chain; ``workers`` overrides the recipe's ingest and label workers;
    ``engine`` (e.g. a RayEngine, closed by the caller) runs ingest, label, segment and export
    instead.

    ``sources``, ``out`` and ``store`` may be URLs (curate.engines.remote): inputs are mirrored into
    ``cache``, outputs written there and uploaded at the end. With a URL ``out`` and no
    ``store``, the store stays in the cache (it is what makes re-runs incremental)."""
    if store is None and remote.is_url(out):
        store = remote.staging_dir(str(out), cache, "stores")
    with remote.local_folder(out, cache) as out_path, \
            remote.local_folder(store if store is not None else default_store_for(out_path),
                                cache, kind="stores", pull=True) as store_path:
        # hf:// sources are handed to ingest as they are: it streams them (curate.sources.hub).
        hub_sources = [str(s) for s in sources if is_hub_url(s)]
        local_sources = remote.localise_sources([s for s in sources if not is_hub_url(s)],
                                                cache)
        return _build(local_sources, hub_sources, out_path, store_path, recipe, workers,
                      command, progress, engine, strict, cache)


def _build(sources: list[Path], hub_sources: list[str], out_path: Path, store_path: Path,
           recipe: str | Path, workers: int | None, command: str, progress: Progress | None,
           engine: Engine | None, strict: bool, cache: Path | None) -> BuildSummary:
    loaded = load_recipe(recipe)
    # Every refusal comes before any work: a folder that is not curate's, a file, the store
    # inside the dataset (or the other way round), either inside a source folder.
    check_output(out_path, kind="export", store=store_path, sources=sources)
    check_output(store_path, kind="store", option="--store", sources=sources)
    with store_lock(store_path):  # no other writer between the stages
        ingested = ingest([*sources, *hub_sources], store_path,
                          workers=workers or loaded.ingest_workers, progress=progress,
                          engine=engine, cache=cache)
        if strict and ingested.units_seen == 0:
            raise CurateError(f"nothing to build (--strict): no recording found under "
                              f"{', '.join(str(s) for s in [*sources, *hub_sources])}; "
                              "see `curate formats`")
        labelled = label(store_path, workers=workers or loaded.label_workers,
                         progress=progress, engine=engine)
        segmented = segment(store_path, params=loaded.segment, engine=engine)
        store = open_store(store_path)
        key = build_key(store, loaded, command)
        marker = read_marker(out_path) if out_path.is_dir() else None
        if marker is not None and marker.kind == "export" and marker.build_key == key:
            exported, export_skipped = existing_export(out_path), True
        else:
            # Imported here: an unchanged build never needs the export run (a third of its
            # start-up), which is what keeps it a small fraction of the first build.
            from curate.export import export

            info = replace(BuildInfo.from_store(store, command=command,
                                                recipe_name=f"{loaded.name} "
                                                            f"(version {loaded.version})",
                                                recipe_text=loaded.text))
            exported = export(store_path, out_path, params=loaded.export, build=info,
                              progress=progress, command=command, build_key=key,
                              strict=strict, engine=engine)
            export_skipped = False
    skipped = [name for name, unchanged in (
        ("ingest", not ingested.wrote_anything),
        ("label", labelled.batches_labelled == 0 and labelled.frames_decoded == 0),
        ("segment", segmented.batches_segmented == 0),
        ("export", export_skipped)) if unchanged]
    return BuildSummary(store_path, loaded, ingested, labelled, segmented, exported, skipped)


def build_key(store: Store, recipe: Recipe, command: str) -> str:
    """What an export made by build depends on, as one hash: the committed batches (their
    names hash every source's content fingerprint), the parameter stamps of every derived
    file, the reviews, the recipe text, the command and curate's version. The same key means
    the same export bytes, so an unchanged build can keep the folder it made last time."""
    digest = hashlib.sha256()
    digest.update(f"curate {__version__}\0{command}\0{recipe.text}\0".encode())
    digest.update(store.manifest.to_json().encode())
    digest.update(reviews_fingerprint(store).encode())
    for table in DERIVED_TABLES:
        for batch in sorted(store.manifest.batches):
            path = batch_file(store.path, table, batch)
            stamp = ((pq.read_schema(path).metadata or {}).get(PARAMS_KEY, b"")
                     if path.exists() else b"missing")
            digest.update(f"{table}/{batch}\0".encode() + stamp + b"\n")
    return digest.hexdigest()


def existing_export(out: Path) -> ExportSummary:
    """The summary of an export left in place by an unchanged build, read from its files."""
    summary = ExportSummary(out)
    for path in sorted((out / "data").glob("*/*.parquet")):
        config = path.parent.name
        summary.files += 1
        if config in CONFIGS:  # the plain configs carry the row counts shown
            split = path.name.split("-")[0]
            rows = summary.rows.setdefault(config, {})
            rows[split] = rows.get(split, 0) + pq.ParquetFile(path).metadata.num_rows
    summary.bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    report = json.loads((out / "redaction_report.json").read_text(encoding="utf-8"))
    summary.redactions = dict(report.get("distinct_secrets", {}))
    return summary
