"""The data contracts, declared once in ``schemas/*.yaml`` and derived here into Arrow schemas.

Each YAML file names a table (or the ``action`` struct), its version, and its columns with a
type, nullability and a one-line doc. Type grammar: ``string``, ``int32``, ``int64``,
``float64``, ``bool``, ``binary``, ``list<T>``, ``struct`` (with ``fields``) and ``ref:NAME``
(another declared struct). Everything else (Parquet files, docs, data cards) derives from it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from curate.resources import resource_path

if TYPE_CHECKING:  # pyarrow and yaml load on first use: `curate --help` needs neither
    import pyarrow as pa

SCHEMA_VERSION = 2  # 2: steps.model (the model that decided each step)
TABLES = ("episodes", "steps", "frames", "rejects", "sources")
# Tables computed from committed batches by later stages, one file per batch when present.
DERIVED_TABLES = ("frame_states", "labels", "segments", "annotations", "executions")
# Every table a store can hold (reviews: store-level, written by `curate review pull`).
DOCUMENTED_TABLES = (*TABLES, *DERIVED_TABLES, "reviews")

# Declared scalar type -> the pyarrow factory of its Arrow type.
_SCALARS = {"string": "string", "int32": "int32", "int64": "int64", "float64": "float64",
            "bool": "bool_", "binary": "binary"}


@dataclass(frozen=True)
class ColumnDoc:
    """A declared column, flattened for documentation (``action.target.x0``)."""

    name: str
    type: str
    nullable: bool
    doc: str


def declaration(name: str) -> dict[str, Any]:
    """The parsed ``schemas/NAME.yaml`` (a table's columns or a struct's fields)."""
    return _declaration(name)


@functools.cache
def _declaration(name: str) -> dict[str, Any]:
    import yaml

    with resource_path("schemas", f"{name}.yaml").open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def _arrow_type(spec: dict[str, Any]) -> pa.DataType:
    import pyarrow as pa

    type_name: str = spec["type"]
    if type_name in _SCALARS:
        scalar: pa.DataType = getattr(pa, _SCALARS[type_name])()
        return scalar
    if type_name.startswith("list<") and type_name.endswith(">"):
        return pa.list_(_arrow_type({"type": type_name[5:-1]}))
    if type_name == "struct":
        return pa.struct([_arrow_field(field) for field in spec["fields"]])
    if type_name.startswith("ref:"):
        return struct_type(type_name[4:])
    raise ValueError(f"unknown type {type_name!r} in a schema declaration")


def _arrow_field(spec: dict[str, Any]) -> pa.Field:
    import pyarrow as pa

    return pa.field(spec["name"], _arrow_type(spec), nullable=spec.get("nullable", True))


@functools.cache
def struct_type(name: str) -> pa.StructType:
    """The Arrow struct declared in ``schemas/NAME.yaml`` (e.g. ``action``)."""
    import pyarrow as pa

    declaration = _declaration(name)
    return pa.struct([_arrow_field(field) for field in declaration["fields"]])


@functools.cache
def table_schema(table: str) -> pa.Schema:
    """The Arrow schema of a store table, with the schema version in its metadata."""
    import pyarrow as pa

    declaration = _declaration(table)
    fields = [_arrow_field(column) for column in declaration["columns"]]
    metadata = {
        b"curate.table": table.encode(),
        b"curate.schema_version": str(declaration["version"]).encode(),
    }
    return pa.schema(fields, metadata=metadata)


def column_docs(table: str) -> list[ColumnDoc]:
    """Every column of a table, nested struct fields included, with its doc line."""
    declaration = _declaration(table)
    return list(_flatten_docs(declaration.get("columns") or declaration["fields"], prefix=""))


def _flatten_docs(specs: list[dict[str, Any]], prefix: str) -> list[ColumnDoc]:
    docs: list[ColumnDoc] = []
    for spec in specs:
        name = prefix + spec["name"]
        docs.append(ColumnDoc(name, spec["type"], spec.get("nullable", True), spec.get("doc", "")))
        if spec["type"] == "struct":
            docs.extend(_flatten_docs(spec["fields"], prefix=name + "."))
        elif spec["type"].startswith("ref:"):
            nested = _declaration(spec["type"][4:])["fields"]
            docs.extend(_flatten_docs(nested, prefix=name + "."))
        elif spec["type"].startswith("list<ref:"):
            nested = _declaration(spec["type"][9:-1])["fields"]
            docs.extend(_flatten_docs(nested, prefix=name + "[]."))
    return docs


def table_doc(table: str) -> str:
    """The table's one-paragraph description."""
    return str(_declaration(table).get("doc", ""))


def features(table: str) -> Any:
    """The ``datasets.Features`` of a table, derived from the same declaration."""
    from datasets import Features  # imported here: `datasets` is slow to import

    return Features.from_arrow_schema(table_schema(table))
