"""Arize Phoenix span exports (``phoenix_spans``): the spans dataframe Phoenix's client
returns (``px.Client().get_spans_dataframe()``, ``query_spans``), saved as Parquet
(``df.to_parquet``, also what ``TraceDataset.save`` writes) or as JSON lines
(``df.to_json(orient="records", lines=True)``).

One row per span: ``name``, ``span_kind``, ``parent_id``, ``start_time``, ``end_time``,
``status_code`` (OK / ERROR / UNSET), ``status_message``, ``events``, ``context.span_id``
(the dataframe's index, a column once saved), ``context.trace_id``, and the OpenInference
attributes as ``attributes.<name>`` columns, one level deep: ``attributes.llm.input_messages``
holds the list of messages, each a nested object (or dotted keys ``message.role``). See
docs/sources/phoenix_spans.md.

The spans are rebuilt as OTLP spans (attributes flattened back to OpenInference's dotted,
indexed keys, ``llm.input_messages.0.message.role``) and read by the OpenTelemetry adapter's
trace planner (:mod:`curate.sources.adapters.otel`): one trace per episode, tool spans are
steps, the last model reply the answer, with every trap that module handles.

Traps handled here:

* the span id is the dataframe's index: a Parquet file keeps it as the ``context.span_id``
  column, JSON lines lose it unless the index was reset; both names (and ``span_id`` /
  ``trace_id``) are read, a row without ids is a step reject naming the row;
* times are timestamps in Parquet, epoch milliseconds (pandas' default) or ISO strings in
  JSON lines; all become nanoseconds, a row without a start time is rejected;
* attribute values that are lists or objects (messages, tool calls, documents) are
  flattened again; NaN / None cells (columns other span kinds do not have) are dropped;
* a single ``attributes`` column (a dict or its JSON string) is read the same way.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import Adapter, SourceUnit, UnitBuilder, iter_jsonl, text_head
from curate.sources.adapters.otel import Span as OtelSpan
from curate.sources.adapters.otel import SpanEvent, Trace, build_episode, decode_json

NAME = "phoenix_spans"
ATTRIBUTE_PREFIX = "attributes."
SPAN_ID_COLUMNS = ("context.span_id", "span_id")
TRACE_ID_COLUMNS = ("context.trace_id", "trace_id")
KIND_COLUMNS = ("span_kind", "attributes.openinference.span.kind")
PARQUET_BATCH_ROWS = 256


def _first(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = _cell(row.get(name))
        if value is not None:
            return value
    return None


def _cell(value: Any) -> Any:
    """A cell's value; None for the empty cells of columns a span does not have."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _nanos(value: Any) -> int | None:
    """A Parquet timestamp, epoch milliseconds (pandas' JSON) or an ISO string."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1_000_000) * 1000
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return int(value * 1_000_000)  # epoch milliseconds
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return _nanos(moment)
    return None


def flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    """Nested lists and objects as OpenInference's dotted keys (``a.0.b.c``)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}", inner, into)
    elif isinstance(value, list | tuple) and value and all(
            isinstance(item, dict | list | tuple) for item in value):
        for index, inner in enumerate(value):
            flatten(f"{prefix}.{index}", inner, into)
    elif _cell(value) is not None:
        into[prefix] = list(value) if isinstance(value, tuple) else value


def span_attributes(row: dict[str, Any]) -> dict[str, Any]:
    """The row's attributes, flat: ``attributes.x`` columns and/or one ``attributes`` dict."""
    found: dict[str, Any] = {}
    whole = decode_json(_cell(row.get("attributes")))
    if isinstance(whole, dict):
        for key, value in whole.items():
            flatten(key, value, found)
    for column, value in row.items():
        if column.startswith(ATTRIBUTE_PREFIX):
            flatten(column[len(ATTRIBUTE_PREFIX):], _cell(value), found)
    kind = _cell(row.get("span_kind"))
    if isinstance(kind, str) and "openinference.span.kind" not in found:
        found["openinference.span.kind"] = kind
    return found


def _events(value: Any) -> list[SpanEvent]:
    value = decode_json(_cell(value))
    events = []
    for event in value if isinstance(value, list) else []:
        if isinstance(event, dict):
            attrs: dict[str, Any] = {}
            flatten("", event.get("attributes") or {}, attrs)
            events.append(SpanEvent(str(event.get("name", "")), _nanos(event.get("timestamp")),
                                    {k.lstrip("."): v for k, v in attrs.items()}))
    return events


def parse_row(row: dict[str, Any], position: str, seq: int) -> OtelSpan:
    """One dataframe row as a span; ValueError says what is missing."""
    trace_id, span_id = _first(row, TRACE_ID_COLUMNS), _first(row, SPAN_ID_COLUMNS)
    if not isinstance(trace_id, str) or not trace_id:
        raise ValueError("the row has no context.trace_id")
    if not isinstance(span_id, str) or not span_id:
        raise ValueError("the row has no context.span_id (save the dataframe with its index)")
    start = _nanos(_cell(row.get("start_time")))
    if start is None:
        raise ValueError("start_time is missing or not a time")
    end = _nanos(_cell(row.get("end_time")))
    events = _events(row.get("events"))
    status = _cell(row.get("status_code"))
    error = None
    if isinstance(status, str) and status.upper() == "ERROR":
        message = _cell(row.get("status_message"))
        error = str(message) if message else next(
            (str(e.attrs.get("exception.message")) for e in events
             if e.name == "exception" and e.attrs.get("exception.message")), "status ERROR")
    parent = _cell(row.get("parent_id"))
    return OtelSpan(trace_id, span_id, parent if isinstance(parent, str) and parent else None,
                    str(_cell(row.get("name")) or ""), start, max(end or start, start),
                    span_attributes(row), events, error, position, seq, {})


def _parquet_columns(path: Path) -> list[str] | None:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (OSError, ValueError):
        return None


def _is_phoenix(columns: Any) -> bool:
    names = set(columns)
    return (bool(names & set(TRACE_ID_COLUMNS)) and "start_time" in names
            and bool(names & set(KIND_COLUMNS)) and "parent_id" in names)


def _head_row(path: Path) -> dict[str, Any] | None:
    head = text_head(path)
    first = head.split("\n", 1)[0] if head else ""
    try:
        value = json.loads(first)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


@register
class PhoenixSpansAdapter(Adapter):
    name: ClassVar[str] = NAME
    version: ClassVar[str] = "3"  # 2: an ending that gives up is fail (_outcome); 3: a
    # root in ERROR is not terminated, one thing or the other (EpisodeBuilder.ending)
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("Arize Phoenix span exports (get_spans_dataframe / "
                                  "TraceDataset saved as Parquet or JSON lines): OpenInference "
                                  "spans, one trace per episode")
    priority: ClassVar[int] = 30

    def claims(self, path: Path) -> bool:
        if not path.is_file():
            return False
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            columns = _parquet_columns(path)
            return columns is not None and _is_phoenix(columns)
        if suffix in (".jsonl", ".ndjson"):
            row = _head_row(path)
            return row is not None and _is_phoenix(row)
        return False

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        traces: dict[str, Trace] = {}
        counter = itertools.count()
        for position, row in self._rows(unit, out, file):
            try:
                span = parse_row(row, position, next(counter))
            except ValueError as error:
                out.reject(file=file, position=position, reason=f"malformed span: {error}",
                           hint="the span is left out; re-export it from Phoenix")
                continue
            traces.setdefault(span.trace_id, Trace(span.trace_id)).add(span)
        if not traces and not out.rejects:
            raise SourceError("the export holds no span", file=file,
                              hint="save the dataframe get_spans_dataframe() returned")
        for trace_id in sorted(traces):
            build_episode(out, traces[trace_id], file)

    def _rows(self, unit: SourceUnit, out: UnitBuilder, file: str
              ) -> Iterator[tuple[str, dict[str, Any]]]:
        if unit.path.suffix.lower() != ".parquet":
            for number, row in iter_jsonl(unit.path, unit, out):
                yield f"line {number}", row
            return
        import pyarrow.parquet as pq

        try:
            handle = pq.ParquetFile(unit.path)
            row_number = 0
            for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS):
                for row in batch.to_pylist():
                    yield f"row {row_number}", row
                    row_number += 1
        except (OSError, ValueError) as error:
            raise SourceError(f"cannot read the Parquet file: {error}", file=file,
                              hint="the file is truncated or not Parquet; save it again"
                              ) from None
