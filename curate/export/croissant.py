"""Croissant (MLCommons) metadata for an export: its Parquet file sets and, per plain config,
a record set of the scalar columns (images and nested columns are described in the card)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from curate.export.features import arrow_schema, config_name
from curate.export.params import ExportParams

if TYPE_CHECKING:
    from curate.export.provenance import BuildInfo

CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract",
    "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex",
    "repeated": "cr:repeated", "replace": "cr:replace", "separator": "cr:separator",
    "source": "cr:source", "subField": "cr:subField", "transform": "cr:transform",
}
_TYPES = {"string": "sc:Text", "int32": "sc:Integer", "int64": "sc:Integer",
          "double": "sc:Float", "bool": "sc:Boolean"}


def _fields(config: str, record_set: str, file_set: str) -> list[dict[str, Any]]:
    fields = []
    for column in arrow_schema(config, "plain"):
        if not (pa.types.is_string(column.type) or pa.types.is_integer(column.type)
                or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type)):
            continue
        fields.append({
            "@type": "cr:Field", "@id": f"{record_set}/{column.name}", "name": column.name,
            "dataType": _TYPES[str(column.type)],
            "source": {"fileSet": {"@id": file_set}, "extract": {"column": column.name}},
        })
    return fields


def croissant(files: Mapping[tuple[str, str, str], list[Path]], params: ExportParams,
              build: BuildInfo) -> dict[str, Any]:
    distribution, record_sets = [], []
    for name in sorted({config_name(c, f) for c, f, _ in files}):
        distribution.append({
            "@type": "cr:FileSet", "@id": f"parquet-{name}", "name": f"parquet-{name}",
            "encodingFormat": "application/x-parquet", "includes": f"data/{name}/*.parquet",
        })
    for config in sorted({c for c, f, _ in files if f == "plain"}):
        record_sets.append({"@type": "cr:RecordSet", "@id": config, "name": config,
                            "field": _fields(config, config, f"parquet-{config}")})
    return {
        "@context": CONTEXT, "@type": "sc:Dataset", "name": params.pretty_name,
        "description": "GUI and tool-use trajectories prepared by curate for forecast-then-"
                       "execute agents (stage1: K-step forecasting; stage2: grounded steps).",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "license": params.license, "url": "https://huggingface.co/datasets",
        "version": f"{build.schema_version}.0.0",
        "distribution": distribution, "recordSet": record_sets,
    }


def write_croissant(root: Path, files: Mapping[tuple[str, str, str], list[Path]],
                    params: ExportParams, build: BuildInfo) -> None:
    document = croissant(files, params, build)
    (root / "croissant.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
