"""Arize Phoenix span exports: the spans dataframe saved as Parquet (index kept, nested
messages) and as pandas JSON lines (epoch-ms times, dotted message keys) read into the same
episodes through the OpenTelemetry trace planner; bad rows rejected one by one."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import SourceUnit, UnitBuilder

FIXTURES = Path(__file__).resolve().parent / "fixtures/phoenix_spans"
PARQUET = FIXTURES / "spans.parquet"
JSONL = FIXTURES / "spans.jsonl"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("phoenix_spans"))


def summary(out: UnitBuilder, trace: str) -> list[tuple[str, str | None, str | None]]:
    episode = next(e for e in out.episodes if e.source_id.endswith(f"#{trace}"))
    return [(s.action.type, s.action.tool_name or s.action.text, s.observation)
            for s in episode.steps]


def test_both_saved_forms_are_detected_and_other_parquet_is_not(tmp_path: Path) -> None:
    for path in (PARQUET, JSONL):
        found = adapters.detect(path)
        assert found is not None and found.name == "phoenix_spans"
    other = tmp_path / "table.parquet"
    pq.write_table(pa.table({"start_time": [1], "parent_id": ["x"]}), other)
    found = adapters.detect(other)
    assert found is None or found.name != "phoenix_spans"


def test_a_trace_becomes_tool_steps_and_the_answer() -> None:
    expected = [("tool_call", "get_weather", '{"celsius": 21, "sky": "sunny"}'),
                ("answer", "It is sunny in Paris.", None)]
    for path in (PARQUET, JSONL):
        out = read(path)
        assert summary(out, "t1") == expected, path.name
        episode = next(e for e in out.episodes if e.source_id.endswith("#t1"))
        assert episode.instruction == "What is the weather in Paris?"
        call = episode.steps[0]
        assert json.loads(call.action.tool_args) == {"city": "Paris"}
        assert call.thought == "Let me check."  # the model's text beside its tool call
        assert call.timestamp == 1762164003.0  # the tool span's start, from either time form
        assert episode.metadata["models"] == ["gpt-4o"] and episode.terminated


def test_an_errored_tool_span_keeps_its_exception_and_marks_the_trace() -> None:
    out = read(PARQUET)
    [(kind, name, observation)] = summary(out, "t2")
    assert (kind, name) == ("tool_call", "search")
    assert observation == "error: timeout after 5 s"  # from the exception event
    episode = next(e for e in out.episodes if e.source_id.endswith("#t2"))
    assert episode.truncated and episode.metadata["error"] == "timeout after 5 s"


def test_bad_rows_are_rejected_one_by_one() -> None:
    parquet = [(r.position, r.reason) for r in read(PARQUET).rejects]
    assert parquet == [("row 5", "malformed span: the row has no context.span_id (save the "
                                 "dataframe with its index)")]
    lines = [(r.position, r.reason.split(":")[0]) for r in read(JSONL).rejects]
    assert lines == [("line 5", "invalid JSON line")]  # the cut last line; 4 spans kept
