"""Claude Code session transcripts: merged responses, tool results in user records,
rejected calls, sidechains, bookkeeping records counted, bad lines rejected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import SourceUnit, UnitBuilder

FIXTURE = Path(__file__).resolve().parent / "fixtures/claude_code_sessions/session.jsonl"
REAL = (Path(__file__).resolve().parents[2]
        / "shared/realdata/claude_code_sessions/test/fixtures/transcripts")


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("claude_code_sessions"))


def by_id(out: UnitBuilder) -> dict[str, Any]:
    return {episode.source_id: episode for episode in out.episodes}


def test_transcripts_are_detected_and_plain_anthropic_jsonl_is_not(tmp_path: Path) -> None:
    found = adapters.detect(FIXTURE)
    assert found is not None and found.name == "claude_code_sessions"
    other = tmp_path / "messages.jsonl"
    other.write_text(json.dumps({"role": "user", "content": "hi"}) + "\n")
    found = adapters.detect(other)
    assert found is None or found.name != "claude_code_sessions"


def test_split_response_is_one_turn_and_tool_results_come_from_user_records() -> None:
    main = by_id(read(FIXTURE))["session.jsonl"]
    first = main.steps[0]
    assert first.action.tool_name == "Bash"
    assert json.loads(first.action.tool_args) == {"command": "ls"}
    assert first.thought == "use ls"  # the thinking block of the same message id
    assert first.observation == "a.txt\nb.txt"
    assert main.instruction == "list the files"
    assert main.metadata["models"] == ["claude-x"]


def test_rejected_call_keeps_its_result_and_is_marked() -> None:
    main = by_id(read(FIXTURE))["session.jsonl"]
    rejected = main.steps[1]
    assert rejected.action.tool_name == "Bash"
    assert rejected.observation.startswith("The user doesn't want to proceed")
    assert "the user rejected this tool call; it did not run" in rejected.warnings
    assert main.steps[-1].action.type == "answer"
    assert main.steps[-1].action.text == "There are two files: a.txt and b.txt."


def test_sidechain_records_in_a_main_file_are_their_own_episode() -> None:
    episodes = by_id(read(FIXTURE))
    assert set(episodes) == {"session.jsonl", "session.jsonl#sidechain-ag1"}
    side = episodes["session.jsonl#sidechain-ag1"]
    assert [s.action.tool_name for s in side.steps] == ["Glob"]
    assert side.metadata["sidechain"] is True
    assert all(s.action.tool_name != "Glob" for s in episodes["session.jsonl"].steps)


def test_bookkeeping_is_counted_unknown_types_and_truncated_lines_rejected() -> None:
    out = read(FIXTURE)
    main = by_id(out)["session.jsonl"]
    assert main.metadata["skipped_records"] == {
        "brand-new-type": 1, "file-history-snapshot": 1, "progress": 1, "system": 1}
    reasons = sorted((r.position, r.reason.split(":")[0]) for r in out.rejects)
    assert reasons == [("line 11", "unknown record type 'brand-new-type'; skipped"),
                       ("line 14", "invalid JSON line")]


def test_real_sessions_ingest_without_rejects() -> None:
    files = sorted(REAL.rglob("*.jsonl"))
    assert len(files) == 3
    steps = {}
    for path in files:
        out = read(path)
        assert not out.rejects, [(r.position, r.reason) for r in out.rejects]
        assert len(out.episodes) == 1
        steps[path.name] = [s.action.tool_name or s.action.type for s in out.episodes[0].steps]
    assert steps["short.jsonl"] == ["Bash", "Glob"]  # both rejected by the user
    assert steps["tool_heavy.jsonl"] == ["Bash", "Bash", "WebSearch", "Glob", "Read",
                                         "WebFetch"]
    assert steps["agent-aac57f5.jsonl"] == ["WebSearch"] * 6 + ["WebFetch"] * 6 + ["answer"]


def test_real_subagent_file_is_marked_sidechain_with_its_agent_id() -> None:
    path = REAL / "ae4a77f8-aedd-4bc1-888f-c94edc91af04/subagents/agent-aac57f5.jsonl"
    episode = read(path).episodes[0]
    assert episode.metadata["sidechain"] is True
    assert episode.metadata["agentId"] == "aac57f5"
    assert episode.metadata["skipped_records"] == {"progress": 12}
