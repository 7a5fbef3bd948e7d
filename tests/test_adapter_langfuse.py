"""Langfuse trace exports: observation trees, JSON in JSON, tool runs and requested calls,
bad observations rejected with a reason, truncated files salvaged, the real framework
traces ingested with zero rejects, and curate's message mapping compared with Langfuse's own
expected ChatML files (every difference explained)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters._chatml import ChatMessage, deep_json, messages_from
from curate.sources.adapters.base import SourceUnit, UnitBuilder
from tests.conftest import realdata

FIXTURE = Path(__file__).resolve().parent / "fixtures/langfuse_traces/weather.json"
CHATML = "worker/src/__tests__/chatml/framework-traces"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("langfuse_traces"))


def reasons(out: UnitBuilder) -> list[tuple[str, str]]:
    return [(r.position, r.reason) for r in out.rejects]


def test_exports_are_detected_and_other_json_is_not(tmp_path: Path) -> None:
    found = adapters.detect(FIXTURE)
    assert found is not None and found.name == "langfuse_traces"
    other = tmp_path / "messages.json"
    other.write_text(json.dumps([{"role": "user", "content": "hi"}]))
    found = adapters.detect(other)
    assert found is None or found.name != "langfuse_traces"


def test_tree_in_time_order_gives_requested_and_run_calls_once_each() -> None:
    out = read(FIXTURE)
    episode = out.episodes[0]
    steps = episode.steps
    assert [(s.action.type, s.action.tool_name) for s in steps] == [
        ("tool_call", "weather"), ("tool_call", "weather"), ("tool_call", "clock"),
        ("answer", None)]
    oslo, rome, _, answer = steps
    assert json.loads(oslo.action.tool_args) == {"city": "Oslo"}
    assert oslo.observation == '{"sky": "snow"}'
    assert oslo.thought == "I will look up both cities."
    assert oslo.source_position == "observations[3]"  # the TOOL observation that ran it
    # c2 was requested but no observation ran it: its result comes from g2's input.
    assert json.loads(rome.action.tool_args) == {"city": "Rome"}
    assert rome.observation == '{"sky": "sun"}'
    assert any("later model call's input" in w for w in rome.warnings)
    assert answer.action.text == "Oslo: snow, Rome: sun; it is 11:00 in Oslo."
    assert episode.instruction == "Weather in Oslo and Rome, then the time in Oslo?"
    assert episode.clock == "unix" and episode.terminated and not episode.truncated
    # A call is timed by the model call that asked for it, not by when its tool ran:
    # Oslo and Rome were asked together at :02 (Oslo ran at :03), so the steps' times never
    # go backwards (stage2 exports check that); a call no model asked for has its run's time.
    start = 1735812000.0  # 2025-01-02T10:00:00Z
    assert [s.timestamp - start for s in steps] == [2.0, 2.0, 6.0, 10.0]
    assert episode.metadata["trace_id"] == "t-1"
    assert episode.metadata["models"] == ["gpt-x"]
    assert episode.metadata["duplicate_observations"] == 1
    assert episode.metadata["orphans"] == ["o1"]


def test_error_level_and_output_that_is_not_json_are_kept_with_warnings() -> None:
    clock = read(FIXTURE).episodes[0].steps[2]
    assert clock.observation == "{11:00 not json\n\n[error] clock drift"
    assert "the tool output looks like JSON but does not parse; kept as text" in clock.warnings
    assert any("level ERROR: clock drift" in w for w in clock.warnings)


def test_bad_observations_are_rejected_with_position_and_reason() -> None:
    out = read(FIXTURE)
    assert reasons(out) == [
        ("observations[7]", "unknown observation type 'WEIRD'; read as a span"),
        ("observations[9]", "malformed observation: expected an observation object, got str"),
    ]


def test_a_truncated_export_keeps_the_observations_before_the_cut(tmp_path: Path) -> None:
    text = FIXTURE.read_text()
    cut = text.index('"id": "g2"')  # inside the fifth observation
    broken = tmp_path / "cut.json"
    broken.write_text(text[:cut])
    out = read(broken)
    episode = out.episodes[0]
    assert [s.action.tool_name for s in episode.steps] == ["weather", "weather", None]
    assert episode.truncated
    assert len(out.rejects) == 1 and out.rejects[0].position.startswith("character ")
    assert "cut short" in out.rejects[0].reason


def test_a_file_cut_before_its_observations_is_one_clear_reject(tmp_path: Path) -> None:
    broken = tmp_path / "cut.json"
    broken.write_text(FIXTURE.read_text()[:200])
    out = read(broken)
    assert out.episodes == []
    [reject] = out.rejects
    assert reject.level == "episode" and reject.file == "cut.json"
    assert reject.reason.startswith("the export has no 'observations' list (the file is cut")


def test_every_real_trace_ingests_with_zero_rejects() -> None:
    root = realdata("langfuse_traces")
    files = sorted(p for p in root.rglob("*.json") if not p.name.endswith(".chatml.json"))
    assert len(files) == 23
    steps = 0
    for path in files:
        assert adapters.detect(path).name == "langfuse_traces", path
        out = read(path)
        assert reasons(out) == [], path
        assert len(out.episodes) == 1 and out.episodes[0].steps, path
        steps += len(out.episodes[0].steps)
    assert steps == 39  # 18 tool calls, 21 answers (Vercel and C# end on a call)
    for path in root.rglob("*.chatml.json"):  # Langfuse's expectations are not traces
        found = adapters.detect(path)
        assert found is None or found.name != "langfuse_traces"


def _real(name: str) -> Any:
    return read(realdata("langfuse_traces") / CHATML / f"{name}.trace.json").episodes[0]


def test_real_traces_keep_their_tool_calls_and_results() -> None:
    claude = _real("claude-agent-2025-12-22")
    assert [json.loads(s.action.tool_args) for s in claude.steps[:2]] == [
        {"city": "Berlin"}, {"city": "New York"}]
    assert claude.steps[0].observation == "Weather in Berlin: Cloudy, 59°F"
    assert claude.steps[-1].action.type == "answer"
    # BeeAI: one observation per framework event; the Wikipedia call is one step.
    beeai = _real("beeai-2025-08-01")
    assert [s.action.tool_name for s in beeai.steps] == ["Wikipedia", "OpenMeteoTool", None]
    assert json.loads(beeai.steps[0].action.tool_args) == {"query": "Tourism in Barcelona"}
    assert beeai.steps[-1].action.text.startswith("Barcelona is")  # from a Python repr
    # LangGraph.js runs the requested tool in a span named after it.
    langgraph = _real("langgraph-js-2025-10-30")
    assert [s.action.tool_name for s in langgraph.steps] == ["get_weather", None]
    assert langgraph.steps[0].observation == "It's always sunny in San Francisco!"
    # Vercel AI SDK: the wrapper and doGenerate generations give one call, not two.
    vercel = _real("vercel-aisdk-2025-11-17")
    assert [s.action.tool_name for s in vercel.steps] == ["getWeather"]
    assert vercel.truncated  # the example stops after the tool result


# -- curate's message mapping against Langfuse's expected ChatML ---------------------------------


def _same_text(ours: str | None, theirs: Any) -> bool:
    if not isinstance(theirs, str) or not theirs:
        return True
    if ours == theirs:
        return True
    # Tool results: curate writes JSON canonically (sorted keys); same value, other spelling.
    left, right = deep_json(ours), deep_json(theirs)
    if isinstance(right, dict) and isinstance(left, dict):
        right = {k: v for k, v in right.items() if k != "type"}  # the part's own tag
        left = {k: v for k, v in left.items() if k != "type"}
    return left == right and not isinstance(left, str)


def _message_text(message: ChatMessage) -> str | None:
    if message.role == "tool" and message.results:
        return message.results[0].text
    return message.text


def _compare(ours: list[ChatMessage] | None, expected: dict[str, Any]) -> str:
    """'same', or why curate differs from Langfuse for one observation side."""
    if not expected["success"]:
        return "langfuse_failed_curate_too" if ours is None else "langfuse_failed_curate_reads"
    theirs = expected["data"]
    if any(not m.get("role") for m in theirs):
        # Langfuse passes an object that is not a chat message through as a role-less
        # message ({json: ...} or {tools: ...}); curate does not call it a message.
        return "langfuse_roleless_passthrough"
    assert ours is not None, theirs
    aliases = {"model": "assistant"}
    roles = [aliases.get(m["role"], m["role"]) for m in theirs]
    our_roles = [m.source_role if m.role == "tool" and m.source_role else m.role
                 for m in ours]
    assert our_roles == roles
    explained = "same"
    for mine, their in zip(ours, theirs, strict=True):
        their_calls = [c.get("name") for c in their.get("tool_calls") or []]
        if their_calls != [c.name for c in mine.calls]:
            # Anthropic tool_use blocks stay content in Langfuse; curate reads them as calls.
            assert not their_calls and isinstance(their.get("content"), list)
            explained = "curate_reads_tool_use_blocks"
        assert _same_text(_message_text(mine), their.get("content")), (mine, their)
    return explained


def test_message_mapping_agrees_with_langfuse_expected_chatml() -> None:
    folder = realdata("langfuse_traces") / CHATML
    tally: dict[str, int] = {}
    for expected_file in sorted(folder.glob("*.chatml.json")):
        trace = json.loads(expected_file.with_name(
            expected_file.name.replace(".chatml.", ".trace.")).read_text())
        by_id = {o["id"]: o for o in trace["observations"]}
        for observation_id, sides in json.loads(expected_file.read_text()).items():
            for side, expected in sides.items():
                verdict = _compare(messages_from(by_id[observation_id][side]), expected)
                tally[verdict] = tally.get(verdict, 0) + 1
    # 137 parses: 75 Langfuse mapped, 62 it could not (SOURCE.md counts).
    assert sum(tally.values()) == 137
    assert tally["langfuse_failed_curate_too"] + tally["langfuse_failed_curate_reads"] == 62
    # Where Langfuse produced chat messages with roles, curate produces the same roles and
    # the same text (every one of them).
    assert tally["same"] + tally["curate_reads_tool_use_blocks"] == 56
    assert tally["langfuse_roleless_passthrough"] == 19
    # curate reads messages where Langfuse's parser gives up (LangChain serialised messages,
    # Anthropic content without a role, {prompt, system} requests).
    assert tally["langfuse_failed_curate_reads"] == 28


def test_langfuse_expected_chatml_beside_a_trace_is_part_of_it_not_unknown_data(
        tmp_path: Path) -> None:
    from curate.sources.discover import discover

    (tmp_path / "run.trace.json").write_text(FIXTURE.read_text())
    (tmp_path / "run.chatml.json").write_text('{"g1": {"input": {"success": true}}}')
    (tmp_path / "other.json").write_text('{"unrelated": 1}')
    planned = {p.unit.path.name: p.adapter for p in discover([tmp_path])}
    assert planned == {"run.trace.json": "langfuse_traces", "other.json": None}
    unit = SourceUnit(tmp_path / "run.trace.json", "run.trace.json")
    assert [p.name for p in adapters.get("langfuse_traces").input_files(unit)] == [
        "run.trace.json", "run.chatml.json"]
    real = realdata("langfuse_traces")
    assert all(p.adapter == "langfuse_traces" for p in discover([real]))
