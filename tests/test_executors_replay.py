"""The replay executor answers a tool call with the result the episode recorded for it."""

from __future__ import annotations

from pathlib import Path

from conftest import realdata

from curate.actions import Action
from curate.executors.base import ProposedStep, StepContext
from curate.executors.replay import ReplayExecutor
from curate.pipeline.execute import execute, read_executions
from curate.pipeline.ingest import ingest

CALLS = [{"name": "search", "args": {"q": "paris ", "n": 3.0}, "result": "3 hits",
          "step_index": 0}]


def run(action: Action) -> tuple[str, str]:
    context = StepContext(episode_id="e", step_index=1, platform="tool", recorded_calls=CALLS)
    result = ReplayExecutor().execute(context, ProposedStep(action.type, action=action))
    return result.outcome, result.reason


def test_a_call_with_the_same_normalised_arguments_gets_the_recorded_result() -> None:
    call = Action(type="tool_call", tool_name="search", tool_args='{"n": 3, "q": "paris"}')
    assert run(call) == ("executed", "3 hits")


def test_calls_the_episode_never_made_are_not_executable_with_the_reason() -> None:
    other_args = Action(type="tool_call", tool_name="search", tool_args='{"q": "rome"}')
    outcome, reason = run(other_args)
    assert outcome == "not_executable" and "no recorded 'search' call has these" in reason
    unknown = Action(type="tool_call", tool_name="delete", tool_args="{}")
    assert run(unknown) == ("not_executable", "the episode recorded no call to 'delete'")
    assert run(Action(type="answer", text="hi"))[0] == "not_executable"


def test_replay_on_the_real_toolbench_trees_returns_their_recorded_results(
        tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest([realdata("toolbench")], store)
    summary = execute(store, executor="replay")
    rows = read_executions(store, "replay").to_pylist()
    calls = [r for r in rows if r["proposed_type"] == "tool_call"]
    assert calls and all(r["outcome"] == "executed" and r["reward"] == 1.0 for r in calls)
    assert all(r["feedback"] for r in calls)
    assert summary.by_type["tool_call"] == {"executed": len(calls)}
