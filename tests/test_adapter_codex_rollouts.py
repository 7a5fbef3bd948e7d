"""Codex CLI rollouts: envelope and bare eras, injected context kept out of the instruction,
shell / patch / local-shell / web-search calls, JSON-in-string outputs, compaction and UI
events counted not read, unknown records and a truncated last line rejected one by one."""

from __future__ import annotations

import json
from pathlib import Path

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import SourceUnit, UnitBuilder

FIXTURES = Path(__file__).resolve().parent / "fixtures/codex_rollouts"
MODERN = FIXTURES / "2025/10/29/rollout-2025-10-29T01-00-00-019a-child.jsonl"
BARE = FIXTURES / "rollout-2025-08-18T01-16-13-5973b6c0-94b8.jsonl"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("codex_rollouts"))


def test_both_eras_are_detected_and_other_jsonl_is_not(tmp_path: Path) -> None:
    for path in (MODERN, BARE):
        found = adapters.detect(path)
        assert found is not None and found.name == "codex_rollouts"
    responses = tmp_path / "items.jsonl"
    responses.write_text(json.dumps([{"type": "function_call", "name": "f", "call_id": "1",
                                      "arguments": "{}"}]) + "\n")
    found = adapters.detect(responses)
    assert found is not None and found.name == "openai_responses"
    header_only = tmp_path / "notes.jsonl"  # a bare header needs the rollout- file name
    header_only.write_text(json.dumps({"id": "x", "timestamp": "t", "instructions": None}))
    found = adapters.detect(header_only)
    assert found is None or found.name != "codex_rollouts"


def test_injected_context_is_system_text_and_the_typed_prompt_is_the_instruction() -> None:
    episode = read(MODERN).episodes[0]
    assert episode.instruction == "fix the failing test"
    system = episode.metadata["system"]
    assert "# AGENTS.md instructions" in system and "<environment_context>" in system
    assert "<permissions instructions>" in system  # the developer message


def test_calls_become_steps_with_their_outputs_thoughts_and_times() -> None:
    steps = read(MODERN).episodes[0].steps
    assert [s.action.tool_name or s.action.type for s in steps] == [
        "shell", "apply_patch", "local_shell", "web_search", "answer", "shell"]
    shell, patch, local, search, answer, cut = steps
    assert json.loads(shell.action.tool_args)["command"] == ["bash", "-lc", "make test"]
    assert shell.thought == "**Looking at the tests**"  # the reasoning summary, not encrypted
    assert shell.observation == "FAIL test_add\n"  # unwrapped from {"output", "metadata"}
    assert "the command exited with code 2" in shell.warnings
    assert json.loads(patch.action.tool_args)["input"].startswith("*** Begin Patch")
    assert patch.observation.startswith("Success.")
    assert json.loads(local.action.tool_args)["command"] == ["make", "test"]
    assert local.observation == "Exit code: 0\nOutput:\n1 passed\n"
    assert json.loads(search.action.tool_args) == {"type": "search", "query": "python add"}
    assert search.observation is None
    assert any("no result for the tool call" in w for w in search.warnings)
    assert answer.action.text == "Fixed: add() now adds."
    assert answer.observation == "now run the linter"  # the person's next message
    assert any("not valid JSON" in w for w in cut.warnings)
    assert shell.timestamp is not None and patch.timestamp == shell.timestamp + 2


def test_bookkeeping_is_counted_and_compaction_history_is_not_replayed() -> None:
    episode = read(MODERN).episodes[0]
    skipped = episode.metadata["skipped_records"]
    assert skipped["event_msg:user_message"] == 2 and skipped["compacted"] == 1
    assert skipped["response_item:ghost_snapshot"] == 1
    assert episode.metadata["compactions"] == 1
    assert episode.metadata["models"] == ["gpt-5-codex"]
    assert episode.metadata["session_id"] == "019a-child"
    # the replacement_history repeats "fix the failing test": it is not a new user turn
    assert all("fix the failing test" not in (s.observation or "") for s in episode.steps)


def test_an_interrupted_session_is_truncated_not_terminated() -> None:
    episode = read(MODERN).episodes[0]
    assert episode.metadata["aborted_turns"] == [{"line": 27, "reason": "interrupted"}]
    assert episode.truncated and not episode.terminated and episode.clock == "unix"


def test_unknown_records_and_the_truncated_last_line_are_rejected_one_by_one() -> None:
    out = read(MODERN)
    found = sorted((r.position, r.reason.split(";")[0].split(":")[0]) for r in out.rejects)
    assert found == [("line 25: payload", "item type 'brand_new_item' is not supported and "
                                          "was skipped"),
                     ("line 26", "unknown rollout record type 'world_state'"),
                     ("line 28", "invalid JSON line")]
    assert all(r.file == MODERN.name for r in out.rejects)
    assert len(out.episodes[0].steps) == 6  # everything before the cut line is kept


def test_bare_era_rollout_reads_its_header_items_and_state_markers() -> None:
    out = read(BARE)
    assert not out.rejects
    episode = out.episodes[0]
    assert episode.metadata["era"] == "bare"
    assert episode.metadata["session_id"] == "5973b6c0-94b8"
    assert episode.metadata["skipped_records"] == {"record_type:state": 2}
    assert episode.instruction == "list the files"  # the context wrapper recognised by prefix
    assert [s.action.tool_name or s.action.type for s in episode.steps] == ["shell", "answer"]
    assert episode.steps[0].observation == "a.txt\n" and not episode.steps[0].warnings
    assert episode.clock == "none" and episode.terminated


def test_a_file_without_a_session_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rollout-x.jsonl"
    path.write_text(json.dumps({"timestamp": "2025-10-29T01:00:00Z", "type": "response_item",
                                "payload": {"type": "message", "role": "user",
                                            "content": "hi"}}) + "\n")
    out = read(path)
    assert not out.episodes
    assert [r.level for r in out.rejects] == ["episode"]
    assert "no session_meta record" in out.rejects[0].reason
