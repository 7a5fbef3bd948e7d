"""Tool episodes in the export: prompts and histories carry the tool results the agent had
seen (bounded, with marks where cut), a user's new message becomes the context of the steps
after it, and an answer the user replied to is not the end of the episode."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.export import ExportParams, export
from curate.export.tool_context import (
    RESULT_CHARS,
    cut,
    latest_user_messages,
    within_budget,
)
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import SegmentParams, segment
from curate.rewards.easyr1 import compute_score
from curate.store.core import open_store

LONG = "row " * 1500  # 6,000 characters: over one result's budget


def call(call_id: str, name: str, args: dict[str, object]) -> dict[str, object]:
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)}}


CONVERSATION = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {"role": "assistant", "content": None,
     "tool_calls": [call("c1", "weather", {"city": "Paris"})]},
    {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 21 C"},
    {"role": "assistant", "content": "It is sunny in Paris."},
    {"role": "user", "content": "And the rows of the sales table?"},
    {"role": "assistant", "content": None,
     "tool_calls": [call("c2", "sql", {"query": "select * from sales"})]},
    {"role": "tool", "tool_call_id": "c2", "content": LONG},
    {"role": "assistant", "content": None,
     "tool_calls": [call("c3", "count", {"table": "sales"})]},
    {"role": "tool", "tool_call_id": "c3", "content": "1500"},
    {"role": "assistant", "content": "The sales table has 1500 rows."},
]


def rows_of(dist: Path, config: str) -> list[dict]:
    files = sorted(glob.glob(str(dist / "data" / config / "*.parquet")))
    return [r for f in files for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tools")
    (root / "rec").mkdir()
    (root / "rec" / "chat.json").write_text(json.dumps({"messages": CONVERSATION}))
    ingest([root / "rec"], root / "store")
    label(root / "store")
    segment(root / "store", params=SegmentParams(horizons=(2, "end")))
    export(root / "store", root / "dist",
           params=ExportParams(flavours=("plain", "easyr1", "verl"), splits={"train": 1.0}))
    return root


def test_history_carries_each_tool_result_the_agent_saw(dist: Path) -> None:
    stage2 = {r["step_index"]: r for r in rows_of(dist / "dist", "stage2")}
    assert stage2[0]["history_results"] == []
    assert stage2[1]["history_results"] == ["Sunny, 21 C"]
    # The answer's result is the user's reply, marked as the user's.
    assert stage2[2]["history_results"] == ["Sunny, 21 C",
                                            "[user] And the rows of the sales table?"]
    long = stage2[4]["history_results"][2]
    assert long.startswith(LONG[:RESULT_CHARS])
    assert long.endswith(f"[cut: {len(LONG) - RESULT_CHARS} of {len(LONG)} characters "
                         "not shown]")
    verl = {r["extra_info"]["step_index"]: r for r in rows_of(dist / "dist", "stage2_verl")}
    assert "1. tool_call(name=\"weather\"" in verl[1]["problem"]
    assert "   Result: Sunny, 21 C" in verl[1]["problem"]


def test_a_new_user_message_is_the_context_of_the_steps_after_it(dist: Path) -> None:
    stage1 = [r for r in rows_of(dist / "dist", "stage1") if r["horizon"] == 2]
    by_step = {r["step_index"]: r for r in stage1}
    assert by_step[0]["user_message"] is None and by_step[1]["user_message"] is None
    assert {by_step[t]["user_message"] for t in (2, 3, 4)} == {
        "And the rows of the sales table?"}
    easyr1 = {r["id"]: r for r in rows_of(dist / "dist", "stage1_easyr1")}
    problem = easyr1[by_step[3]["id"]]["problem"]
    assert problem.startswith("Task: What is the weather in Paris?\n"
                              "Latest user message: And the rows of the sales table?\n")
    assert "Result: [cut: " not in problem and "[cut: " in problem
    # The references still score 1.0 under curate's batch reward.
    answers = [r["answer"] for r in easyr1.values()]
    assert {s["overall"] for s in compute_score(answers, answers)} == {1.0}


def test_a_user_message_between_a_result_and_the_next_call_is_context_too(
        tmp_path: Path) -> None:
    conversation = [
        {"role": "user", "content": "List the files."},
        {"role": "assistant", "content": None, "tool_calls": [call("c1", "ls", {})]},
        {"role": "tool", "tool_call_id": "c1", "content": "a.txt\nb.txt"},
        {"role": "user", "content": "Only the first one, please."},
        {"role": "assistant", "content": None,
         "tool_calls": [call("c2", "cat", {"file": "a.txt"})]},
        {"role": "tool", "tool_call_id": "c2", "content": "hello"},
        {"role": "assistant", "content": "a.txt says hello."},
    ]
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / "chat.json").write_text(json.dumps(conversation))
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    segment(tmp_path / "store", params=SegmentParams(horizons=(1,)))
    export(tmp_path / "store", tmp_path / "dist",
           params=ExportParams(configs=("stage2",), flavours=("plain",), splits={"train": 1.0}))
    stage2 = {r["step_index"]: r for r in rows_of(tmp_path / "dist", "stage2")}
    assert [stage2[t]["user_message"] for t in (0, 1, 2)] == [
        None, "Only the first one, please.", "Only the first one, please."]
    assert stage2[1]["history_results"] == ["a.txt\nb.txt\n\n[user] Only the first one, please."]


def test_an_answer_the_user_replied_to_is_not_terminal(dist: Path) -> None:
    labels = {r["step_index"]: r["terminal"]
              for r in open_store(dist / "store").read("labels").to_pylist()}
    assert labels == {0: False, 1: False, 2: False, 3: False, 4: True}


def test_gui_rows_carry_no_tool_context(tmp_path: Path) -> None:
    folder = tmp_path / "rec" / "ep"
    folder.mkdir(parents=True)
    (folder / "episode.json").write_text(json.dumps(
        {"curate_native": 1, "platform": "web", "instruction": "open the cart"}))
    (folder / "steps.jsonl").write_text(json.dumps(
        {"action": {"type": "wait"}, "observation": "page loaded"}) + "\n")
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    segment(tmp_path / "store", params=SegmentParams(horizons=(1,)))
    # Without screenshots a GUI step is skipped, so read what the rows would carry directly.
    from curate.export.redact import Redactor
    from curate.export.rows import RowContext, ToolContext
    from curate.export.source import read_batches

    episode = next(read_batches(open_store(tmp_path / "store"), need_segments=True))
    context = RowContext(None, Redactor(enabled=True), "default", 0, False)  # type: ignore[arg-type]
    assert ToolContext.of(episode, context).columns(0, 0) == {
        "history_results": None, "user_message": None, "history_models": None, "model": None}


def test_results_over_the_budget_are_cut_newest_first_and_say_so() -> None:
    results = ["a" * 3000, None, "b" * 1500, "c" * 100]
    kept = within_budget(results, budget=2000)
    assert kept[3] == "c" * 100 and kept[2] == "b" * 1500 and kept[1] is None
    assert kept[0] == "a" * 400 + " [cut: 2600 of 3000 characters not shown]"
    assert within_budget(["x" * 10, "y" * 50], budget=50) == [
        "[not shown: 10 characters over the context budget]", "y" * 50]
    assert cut("short", 10) == "short"
    assert within_budget(["a" * 30, "b" * 30], budget=100, each=20) == [
        "a" * 20 + " [cut: 10 of 30 characters not shown]",
        "b" * 20 + " [cut: 10 of 30 characters not shown]"]


def test_the_context_budget_is_an_option_of_export_and_the_recipe(dist: Path,
                                                                   tmp_path: Path) -> None:
    from click.testing import CliRunner

    from curate.cli import cli
    from curate.pipeline.recipe import load_recipe

    result = CliRunner().invoke(cli, [
        "export", str(dist / "store"), "-o", str(tmp_path / "small"), "--config", "stage2",
        "--flavour", "plain", "--splits", "train=1", "--context-chars", "620",
        "--result-chars", "600"])
    assert result.exit_code == 0, result.output
    small = {r["step_index"]: r for r in rows_of(tmp_path / "small", "stage2")}
    # Step 4's history (newest last): the weather, the user's reply, the 6,000-character
    # table, the count. Newest first: the count whole, the table 600, the reply the 16 left,
    # the weather nothing.
    reply = "[user] And the rows of the sales table?"
    assert small[4]["history_results"] == [
        "[not shown: 11 characters over the context budget]",
        f"{reply[:16]} [cut: {len(reply) - 16} of {len(reply)} characters not shown]",
        f"{LONG[:600]} [cut: {len(LONG) - 600} of {len(LONG)} characters not shown]", "1500"]
    default = {r["step_index"]: r for r in rows_of(dist / "dist", "stage2")}
    assert default[4]["history_results"][:2] == ["Sunny, 21 C", reply]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("export:\n  context_chars: 500\n  result_chars: 100\n")
    loaded = load_recipe(recipe).export
    assert (loaded.context_chars, loaded.result_chars) == (500, 100)
    assert load_recipe("tracer1").export.context_chars == 8000


def test_only_a_user_mark_that_starts_a_paragraph_is_a_user_message() -> None:
    def tool(observation: str) -> dict[str, object]:
        return {"action": {"type": "tool_call"}, "observation": observation}

    steps = [tool("log line: [user] said hi"), tool("out\n\n[user] stop"), tool("ok")]
    assert latest_user_messages(steps, lambda text: text) == [None, None, "stop"]
