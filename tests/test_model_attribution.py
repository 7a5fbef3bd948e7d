"""Per-step model attribution (issue 17 part 4): when a conversation switches models, each
step records the model that decided it (steps.model), and the tool rows and prompts carry it.

Real samples: a pydantic-ai cassette whose conversation begun with Gemini is continued by
gpt-4o-mini (the history is passed from one agent to the other), and a Claude Code session
in which one assistant message is edited to come from a small model (no real session in
../shared/realdata switches models inside one file; Claude Code does so for sidechains)."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.errors import StoreError
from curate.export import ExportParams, export
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import SegmentParams, segment
from curate.store.core import open_store
from tests.conftest import realdata

SMALL_MODEL = "claude-haiku-4-5-20251001"


def steps_by_index(store: Path) -> list[dict]:
    return sorted(open_store(store).read("steps").to_pylist(), key=lambda r: r["step_index"])


def rows_of(dist: Path, config: str) -> list[dict]:
    files = sorted(glob.glob(str(dist / "data" / config / "*.parquet")))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def test_a_cassette_continued_by_another_model_names_each_steps_model(
        tmp_path: Path) -> None:
    (sample,) = realdata("pydantic_ai_cassettes").rglob("test_multiple_agent_tool_calls.yaml")
    ingest([sample], tmp_path / "store")
    steps = steps_by_index(tmp_path / "store")
    assert [(s["action"]["type"], s["model"]) for s in steps] == [
        ("tool_call", "gemini-2.0-flash-exp"), ("answer", "gemini-2.0-flash-exp"),
        ("tool_call", "gpt-4o-mini-2024-07-18"), ("answer", "gpt-4o-mini-2024-07-18")]


@pytest.fixture(scope="module")
def switched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real tool_heavy session with its second assistant turn's model edited."""
    root = tmp_path_factory.mktemp("switched")
    source = realdata("claude_code_sessions") / "test" / "fixtures" / "transcripts"
    lines = (source / "tool_heavy.jsonl").read_text(encoding="utf-8").splitlines()
    message_ids = []
    for line in lines:
        record = json.loads(line)
        if record.get("type") == "assistant" and record["message"]["id"] not in message_ids:
            message_ids.append(record["message"]["id"])
    edited = message_ids[1]  # the whole second response (all its records)
    out = []
    for line in lines:
        record = json.loads(line)
        if record.get("type") == "assistant" and record["message"]["id"] == edited:
            record["message"]["model"] = SMALL_MODEL
            line = json.dumps(record)
        out.append(line)
    (root / "rec").mkdir()
    (root / "rec" / "session.jsonl").write_text("\n".join(out) + "\n", encoding="utf-8")
    ingest([root / "rec"], root / "store")
    label(root / "store")
    segment(root / "store", params=SegmentParams(horizons=(2,)))
    export(root / "store", root / "dist",
           params=ExportParams(flavours=("plain", "easyr1", "verl"), splits={"train": 1.0}))
    return root


def test_a_claude_code_session_that_switches_models_records_it_per_step(
        switched: Path) -> None:
    models = [s["model"] for s in steps_by_index(switched / "store")]
    assert SMALL_MODEL in models and "claude-opus-4-6" in models
    assert None not in models
    # Only the edited response's steps changed: the ones before and after it are opus's.
    first_small = models.index(SMALL_MODEL)
    assert first_small > 0 and models[-1] == "claude-opus-4-6"
    assert json.loads(open_store(switched / "store").read("episodes")
                      .column("metadata")[0].as_py())["models"] == [
        "claude-opus-4-6", SMALL_MODEL]


def test_rows_and_prompts_carry_the_model_of_each_step(switched: Path) -> None:
    models = [s["model"] for s in steps_by_index(switched / "store")]
    after = models.index(SMALL_MODEL) + 1  # a step whose history holds the switch
    stage2 = {r["step_index"]: r for r in rows_of(switched / "dist", "stage2")}
    row = stage2[after]
    assert row["model"] == models[after]
    assert row["history_models"] == models[max(0, after - 4):after]
    verl = {r["extra_info"]["step_index"]: r for r in rows_of(switched / "dist", "stage2_verl")}
    problem = verl[after]["problem"]
    assert f" [model: {SMALL_MODEL}]" in problem and " [model: claude-opus-4-6]" in problem
    stage1 = {r["step_index"]: r for r in rows_of(switched / "dist", "stage1")}
    assert stage1[after]["model"] == models[after]
    easyr1 = {r["id"]: r for r in rows_of(switched / "dist", "stage1_easyr1")}
    assert f"[model: {SMALL_MODEL}]" in easyr1[stage1[after]["id"]]["problem"]
    # One model throughout says nothing: the first step's history has no mark.
    assert "[model:" not in verl[1]["problem"]


def test_atif_steps_take_their_model_name_else_the_agents(tmp_path: Path) -> None:
    # Made from the ATIF RFC's step fields (model_name on a step and on the agent).
    trajectory = {
        "schema_version": "ATIF-v1.4", "session_id": "s1",
        "agent": {"name": "demo", "version": "1", "model_name": "main-model"},
        "steps": [
            {"step_id": 1, "source": "user", "message": "Find the file."},
            {"step_id": 2, "source": "agent", "message": "Looking.",
             "tool_calls": [{"tool_call_id": "c1", "function_name": "ls",
                             "arguments": {}}],
             "observation": {"results": [{"source_call_id": "c1", "content": "a.txt"}]}},
            {"step_id": 3, "source": "agent", "model_name": "small-model",
             "message": "It is a.txt."},
        ]}
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "run.json").write_text(json.dumps(trajectory))
    ingest([tmp_path / "rec"], tmp_path / "store")
    assert [s["model"] for s in steps_by_index(tmp_path / "store")] == [
        "main-model", "small-model"]
    # Written back as each agent step's model_name by `curate export --format atif`.
    from curate.export.interchange import FILE_NAMES, export_interchange

    export_interchange(tmp_path / "store", tmp_path / "atif", "atif")
    (written,) = json.loads((tmp_path / "atif" / FILE_NAMES["atif"]).read_text())
    assert [s.get("model_name") for s in written["steps"] if s["source"] == "agent"] == [
        "main-model", "small-model"]


def test_a_store_of_the_previous_schema_is_refused_with_what_to_do(tmp_path: Path) -> None:
    folder = tmp_path / "rec" / "ep"
    folder.mkdir(parents=True)
    (folder / "episode.json").write_text(json.dumps({"curate_native": 1, "instruction": "x"}))
    (folder / "steps.jsonl").write_text(json.dumps({"action": "done()"}) + "\n")
    ingest([tmp_path / "rec"], tmp_path / "store")
    manifest = tmp_path / "store" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "schema_version": 1}))
    before = {p: p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file()}
    with pytest.raises(StoreError, match=r"schema version 1, older than this curate \(2: "
                                         r"steps gained the model column\); re-ingest"):
        open_store(tmp_path / "store")
    with pytest.raises(StoreError, match="older than this curate"):
        ingest([tmp_path / "rec"], tmp_path / "store")
    assert {p: p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file()} == before


def test_a_codex_rollout_takes_each_turns_model_from_its_turn_context(tmp_path: Path) -> None:
    # The repo's own Codex fixture, with a second turn_context (Codex writes one per turn)
    # switching the model before the second turn.
    fixture = (Path(__file__).resolve().parent / "fixtures" / "codex_rollouts" / "2025" / "10"
               / "29" / "rollout-2025-10-29T01-00-00-019a-child.jsonl")
    lines = fixture.read_text(encoding="utf-8").split("\n")
    at = next(i for i, line in enumerate(lines) if '"now run the linter"' in line
              and '"event_msg"' in line) + 1
    switch = {"timestamp": "2025-10-29T01:00:12.500Z", "type": "turn_context",
              "payload": {"cwd": "/home/u/proj", "model": "gpt-5-mini"}}
    lines.insert(at, json.dumps(switch))
    folder = tmp_path / "rec" / "2025" / "10" / "29"
    folder.mkdir(parents=True)
    (folder / fixture.name).write_text("\n".join(lines), encoding="utf-8")
    ingest([tmp_path / "rec"], tmp_path / "store")
    steps = steps_by_index(tmp_path / "store")
    models = [s["model"] for s in steps]
    assert models[-1] == "gpt-5-mini" and set(models[:-1]) == {"gpt-5-codex"}
    assert steps[-1]["action"]["tool_name"] == "shell"
