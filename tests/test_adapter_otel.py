"""OpenTelemetry GenAI spans and OpenInference traces (OTLP JSON and JSON lines)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from curate.actions import format_action_text, parse_action_text
from curate.pipeline.extract import extract_unit, read_unit
from curate.sources import adapters
from curate.sources.adapters.base import TEXT_ONLY, EpisodeBuilder, SourceUnit, UnitBuilder
from curate.sources.adapters.otel import any_value, attributes, decode_json, unflatten
from curate.sources.discover import discover

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "recordings"
REALDATA = REPO.parent / "shared" / "realdata"
FIXTURES = REPO / "tests" / "fixtures" / "otel"
GENAI = FIXTURES / "genai_agent.otlp.json"
OPENINFERENCE = FIXTURES / "openinference_run.jsonl"
FLATTENED = FIXTURES / "flattened_prompt.otlp.json"
WEATHER = "4bf92f3577b34da6a3ce929d0e0e4736"
EVENTS = "0af7651916cd43dd8448eb211c80b7c1"
T0 = 1_717_000_000


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("otel_genai"))


def trace(out: UnitBuilder, trace_id: str) -> EpisodeBuilder:
    found = [e for e in out.episodes if e.metadata.get("trace_id") == trace_id]
    assert len(found) == 1, ([e.source_id for e in out.episodes], out.rejects)
    return found[0]


def tools(episode: EpisodeBuilder) -> list[tuple[str, str | None, str | None]]:
    return [(s.action.type, s.action.tool_name, s.action.tool_args) for s in episode.steps]


def otlp(spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceSpans": [{"resource": {"attributes": []},
                               "scopeSpans": [{"spans": spans}]}]}


def span(span_id: str, parent: str, start: int, end: int, **attrs: str) -> dict[str, Any]:
    return {"traceId": "t" * 32, "spanId": span_id, "parentSpanId": parent, "name": span_id,
            "startTimeUnixNano": str(start * 10**9), "endTimeUnixNano": str(end * 10**9),
            "attributes": [{"key": k.replace("__", "."), "value": {"stringValue": v}}
                           for k, v in attrs.items()]}


def write(tmp_path: Path, spans: list[dict[str, Any]]) -> Path:
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(otlp(spans)))
    return path


# ------------------------------------------------------------------------------ detection


@pytest.mark.parametrize("path", [GENAI, OPENINFERENCE, FLATTENED], ids=lambda p: p.name)
def test_otlp_exports_are_detected(path: Path) -> None:
    adapter = adapters.detect(path)
    assert adapter is not None and adapter.name == "otel_genai"


def test_files_of_other_adapters_are_not_claimed() -> None:
    adapter = adapters.get("otel_genai")
    roots = [REPO / "tests" / "fixtures", EXAMPLES] + ([REALDATA] if REALDATA.is_dir() else [])
    others = [p for root in roots for p in discover([root])
              if p.adapter is not None and p.adapter != "otel_genai"]
    assert others
    assert not [p.unit.path for p in others if adapter.claims(p.unit.path)]


def test_a_chat_log_mentioning_resource_spans_in_text_is_not_claimed(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps([{"role": "user", "content": 'what is "resourceSpans": ?'}]))
    assert not adapters.get("otel_genai").claims(path)


# ------------------------------------------------------------------------- GenAI spans


def test_tool_spans_become_steps_in_time_order_with_one_step_per_call() -> None:
    weather = trace(read(GENAI), WEATHER)
    assert tools(weather) == [
        ("tool_call", "get_weather", '{"city": "Paris"}'),
        ("tool_call", "get_weather", '{"city": "Lyon"}'),
        ("tool_call", "lookup_units", "{}"),
        ("answer", None, None),
    ]
    assert [s.timestamp for s in weather.steps] == [T0 + 0.21, T0 + 0.21, T0 + 0.52, T0 + 0.88]
    assert weather.clock == "unix" and weather.steps[0].timestamp_end == T0 + 0.3


def test_double_encoded_arguments_and_json_results_are_decoded() -> None:
    paris = trace(read(GENAI), WEATHER).steps[0]
    assert json.loads(paris.action.tool_args or "") == {"city": "Paris"}
    assert paris.observation == '{"temp_c": 18}'
    assert decode_json(json.dumps(json.dumps({"a": [1]}))) == {"a": [1]}
    assert decode_json("plain text") == "plain text"
    assert decode_json('"quoted"') == "quoted"


def test_model_text_next_to_calls_is_the_first_calls_thought() -> None:
    steps = trace(read(GENAI), WEATHER).steps
    assert steps[0].thought == "I will check both cities."
    assert steps[1].thought is None


def test_first_user_message_is_the_instruction_and_last_output_the_answer() -> None:
    weather = trace(read(GENAI), WEATHER)
    assert weather.instruction == "What is the weather in Paris and Lyon?"
    assert weather.steps[-1].action.text == "Paris: 18 °C. Lyon is unavailable right now."
    assert weather.terminated and weather.outcome == "unknown"


def test_a_tool_span_with_error_status_keeps_the_error_as_observation() -> None:
    lyon = trace(read(GENAI), WEATHER).steps[1]
    assert lyon.observation == "error: timeout after 250 ms"
    assert any("status ERROR" in w for w in lyon.warnings)


def test_orphan_spans_are_kept_attached_to_the_root_with_a_warning() -> None:
    weather = trace(read(GENAI), WEATHER)
    orphan = weather.steps[2]
    assert orphan.action.tool_name == "lookup_units" and orphan.observation == "metric"
    assert any("attached to the trace's root" in w for w in orphan.warnings)
    assert weather.metadata["orphan_spans"][0]["parent_span_id"] == "ffffffffffffffff"


def test_malformed_spans_are_rejected_with_their_position() -> None:
    out = read(GENAI)
    rejects = {r.position: r for r in out.rejects}
    assert set(rejects) == {"resourceSpans[0].scopeSpans[1].spans[0]",
                            "resourceSpans[0].scopeSpans[1].spans[3]"}
    assert "spanId" in rejects["resourceSpans[0].scopeSpans[1].spans[0]"].reason
    assert "startTimeUnixNano" in rejects["resourceSpans[0].scopeSpans[1].spans[3]"].reason
    assert {r.episode_id for r in out.rejects} == {trace(out, WEATHER).episode_id}


def test_images_in_messages_become_states_and_parallel_calls_share_theirs() -> None:
    steps = trace(read(GENAI), WEATHER).steps
    initial = steps[0].frame_id
    assert initial is not None and steps[1].frame_id == initial  # Lyon started before Paris ended
    assert steps[0].next_frame_id is not None and steps[0].next_frame_id != initial
    assert steps[1].next_frame_missing == TEXT_ONLY
    assert steps[2].frame_id == steps[0].next_frame_id


def test_older_span_events_give_messages_calls_and_results() -> None:
    docs = trace(read(GENAI), EVENTS)
    assert docs.instruction == "What is OTLP?"
    assert tools(docs) == [("tool_call", "search_docs", '{"query": "OTLP"}'),
                           ("answer", None, None)]
    assert docs.steps[0].observation == "OTLP: the OpenTelemetry protocol"
    assert docs.steps[0].timestamp == T0 + 0.1  # requested at the model span's end
    assert docs.steps[0].frame_missing == TEXT_ONLY


# -------------------------------------------------------------------------- OpenInference


def test_openinference_trace_spread_over_lines_is_one_episode() -> None:
    out = read(OPENINFERENCE)
    assert len(out.episodes) == 1
    run = out.episodes[0]
    assert run.instruction == "Convert 100 USD to EUR."
    assert tools(run) == [
        ("tool_call", "convert", '{"amount": 100, "from": "USD", "to": "EUR"}'),
        ("answer", None, None),
    ]
    assert run.steps[0].observation == '{"eur": 92}'
    assert run.steps[0].source_position == "line 1: resourceSpans[0].scopeSpans[0].spans[2]"
    assert run.steps[1].action.text == "100 USD is 92 EUR."
    assert run.metadata["conventions"] == ["openinference"]


def test_nested_tool_and_model_spans_are_not_steps_again() -> None:
    run = read(OPENINFERENCE).episodes[0]
    assert run.metadata["nested_spans_not_steps"] == {"tool": 1, "llm": 1}


def test_bad_json_line_and_trace_without_genai_content_are_rejected() -> None:
    out = read(OPENINFERENCE)
    by_position = {r.position: r for r in out.rejects}
    assert by_position["line 3"].level == "episode"
    dropped = by_position["line 4: resourceSpans[0].scopeSpans[0].spans[0]"]
    assert dropped.level == "episode" and "no tool call" in dropped.reason


def test_protobuf_field_names_and_flattened_prompt_attributes() -> None:
    legacy = read(FLATTENED).episodes[0]
    assert legacy.instruction == "Book a table for two."
    assert tools(legacy) == [("tool_call", "book_table", '{"people": 2}')]
    assert legacy.steps[0].observation is None
    assert any("no result recorded" in w for w in legacy.steps[0].warnings)
    assert not legacy.terminated


# ------------------------------------------------------------------------ tree and details


def test_text_only_model_outputs_before_the_end_are_thoughts(tmp_path: Path) -> None:
    path = write(tmp_path, [
        span("r", "", 0, 10, openinference__span__kind="AGENT"),
        span("a", "r", 1, 2, openinference__span__kind="LLM",
             **{"llm.output_messages.0.message.content": "Let me think."}),
        span("b", "r", 3, 4, openinference__span__kind="LLM",
             **{"llm.output_messages.0.message.content": "Done: 42."}),
    ])
    steps = read(path).episodes[0].steps
    assert [(s.action.type, s.action.text, s.thought) for s in steps] == [
        ("answer", "Done: 42.", "Let me think.")]


def test_a_trace_without_its_root_span_uses_the_earliest_span(tmp_path: Path) -> None:
    path = write(tmp_path, [
        span("b", "missing", 3, 4, gen_ai__operation__name="execute_tool",
             gen_ai__tool__name="late"),
        span("a", "missing", 1, 2, gen_ai__operation__name="execute_tool",
             gen_ai__tool__name="early"),
    ])
    run = read(path).episodes[0]
    assert [s.action.tool_name for s in run.steps] == ["early", "late"]
    assert "root_missing" in run.metadata
    assert any("attached" in w for w in run.steps[1].warnings)


def test_a_parent_cycle_does_not_hang(tmp_path: Path) -> None:
    path = write(tmp_path, [
        span("a", "b", 1, 2, gen_ai__operation__name="execute_tool", gen_ai__tool__name="x"),
        span("b", "a", 3, 4, gen_ai__operation__name="execute_tool", gen_ai__tool__name="y"),
    ])
    out = read(path)
    assert out.episodes or out.rejects


def test_duplicate_spans_are_read_once(tmp_path: Path) -> None:
    tool = span("a", "", 1, 2, gen_ai__operation__name="execute_tool", gen_ai__tool__name="x")
    run = read(write(tmp_path, [tool, dict(tool)])).episodes[0]
    assert len(run.steps) == 1 and run.metadata["duplicate_spans"] == 1


def test_a_file_without_spans_is_an_episode_reject(tmp_path: Path) -> None:
    path = write(tmp_path, [])
    out = read(path)
    assert not out.episodes and out.rejects[0].level == "episode"


def test_any_value_decodes_every_otlp_kind() -> None:
    values = attributes([
        {"key": "i", "value": {"intValue": "7"}},
        {"key": "d", "value": {"doubleValue": 0.5}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}},
        {"key": "k", "value": {"kvlistValue": {"values": [
            {"key": "n", "value": {"intValue": 1}}]}}},
        {"key": "empty", "value": {}},
        {"value": {"stringValue": "no key"}},
    ])
    assert values == {"i": 7, "d": 0.5, "b": True, "a": ["x"], "k": {"n": 1}, "empty": None}
    assert any_value({"bytesValue": "AAE="}) == "AAE="


def test_unflatten_rebuilds_indexed_attributes() -> None:
    flat = {"llm.input_messages.1.message.role": "user",
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.1.message.tool_calls.0.tool_call.id": "c"}
    assert unflatten(flat, "llm.input_messages.") == [
        {"message": {"role": "system"}},
        {"message": {"role": "user", "tool_calls": [{"tool_call": {"id": "c"}}]}},
    ]


@pytest.mark.parametrize("path", [GENAI, OPENINFERENCE, FLATTENED], ids=lambda p: p.name)
def test_every_fixture_extracts_into_store_tables(path: Path) -> None:
    tables = extract_unit(SourceUnit(path, path.name), "otel_genai")
    assert tables.steps.num_rows > 0
    for text in tables.steps.column("action_text").to_pylist():
        assert format_action_text(parse_action_text(text)) == text
    assert set(tables.episodes.column("clock").to_pylist()) == {"unix"}
