"""Recipes: named, versioned parameter sets for a whole build (``pipelines/*.yaml``).

A recipe is a YAML file, or the name of one shipped in ``pipelines/``. Unknown keys are an
error that lists the valid ones, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from curate.errors import CurateError
from curate.export.params import ExportParams
from curate.pipeline.segment import SegmentParams, parse_horizon, sorted_horizons
from curate.resources import resource_dir

SECTIONS = ("name", "version", "ingest", "label", "segment", "export")


@dataclass(frozen=True)
class Recipe:
    name: str
    version: int
    text: str
    ingest_workers: int
    label_workers: int
    segment: SegmentParams
    export: ExportParams


def _check_keys(section: str, values: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        raise CurateError(f"{where}: unknown key(s) {unknown} in '{section}'; "
                          f"valid keys: {sorted(allowed)}")


def shipped_recipes() -> list[str]:
    return sorted(p.stem for p in resource_dir("pipelines").glob("*.yaml"))


def _locate(recipe: str | Path) -> Path:
    path = Path(recipe)
    if path.is_file():
        return path
    shipped = resource_dir("pipelines") / f"{recipe}.yaml"
    if shipped.is_file():
        return shipped
    raise CurateError(f"recipe {recipe!r} not found: give a YAML file or one of "
                      f"{', '.join(shipped_recipes())}")


def load_recipe(recipe: str | Path) -> Recipe:
    """Read and check a recipe file (or shipped recipe name)."""
    path = _locate(recipe)
    text = path.read_text(encoding="utf-8")
    try:
        body = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise CurateError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(body, dict):
        raise CurateError(f"{path}: a recipe is a mapping of sections {SECTIONS}")
    _check_keys("top level", body, set(SECTIONS), str(path))
    ingest = body.get("ingest") or {}
    label = body.get("label") or {}
    segment = body.get("segment") or {}
    export = body.get("export") or {}
    _check_keys("ingest", ingest, {"workers"}, str(path))
    _check_keys("label", label, {"workers"}, str(path))
    _check_keys("segment", segment, {f.name for f in fields(SegmentParams)}, str(path))
    _check_keys("export", export, {f.name for f in fields(ExportParams)}, str(path))
    if "horizons" in segment:
        segment["horizons"] = sorted_horizons(tuple(parse_horizon(h)
                                                    for h in segment["horizons"]))
    for key in ("configs", "flavours", "languages"):
        if key in export:
            export[key] = tuple(export[key])
    segment_params = SegmentParams(**segment)
    export_params = ExportParams(**export)
    segment_params.check()
    export_params.check()
    return Recipe(
        name=str(body.get("name", path.stem)), version=int(body.get("version", 1)),
        text=text, ingest_workers=int(ingest.get("workers", 1)),
        label_workers=int(label.get("workers", 1)), segment=segment_params,
        export=export_params,
    )
