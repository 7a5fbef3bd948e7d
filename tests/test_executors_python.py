"""The python executor runs code tool calls in a subprocess with limits and no network."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import realdata

from curate.actions import Action
from curate.executors.base import ProposedStep, StepContext
from curate.executors.python import PythonExecutor
from curate.pipeline.execute import execute, read_executions
from curate.pipeline.ingest import ingest
from curate.store.core import open_store


def run(code: str, **limits: float) -> tuple[str, str]:
    action = Action(type="tool_call", tool_name="python", tool_args=json.dumps({"code": code}))
    context = StepContext(episode_id="e", step_index=0, platform="tool")
    executor = PythonExecutor(**limits)  # type: ignore[arg-type]
    result = executor.execute(context, ProposedStep("tool_call", action=action))
    return result.outcome, result.reason


def test_a_program_runs_and_its_output_is_the_feedback() -> None:
    assert run("print(6 * 7)") == ("executed", "42\n")


def test_an_error_is_executed_with_its_exit_status_and_traceback() -> None:
    outcome, reason = run("1 / 0")
    assert outcome == "executed" and reason.startswith("exit status 1:")
    assert "ZeroDivisionError" in reason


def test_a_loop_hits_the_time_limit() -> None:
    # The wall clock decides, unless a busy machine lets the CPU backstop fire first.
    outcome, reason = run("while True: pass", timeout=1.0)
    assert outcome == "limit"
    assert reason in ("time limit: still running after 1 s", "time limit: used 2 s of CPU")


def test_an_unbounded_allocation_hits_the_memory_limit() -> None:
    outcome, reason = run("x = []\nwhile True: x.append(bytearray(1 << 24))", memory_mb=128)
    assert outcome == "limit" and reason.startswith("memory limit")


def test_too_much_output_hits_the_output_limit() -> None:
    outcome, reason = run("print('x' * 100000)", max_output=1000)
    assert (outcome, reason) == ("limit", "output limit: more than 1000 bytes")


def test_the_network_is_unreachable() -> None:
    outcome, reason = run("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)"
                          "\nprint('connected')")
    assert outcome == "executed" and "connected" not in reason
    assert reason.startswith("exit status 1:")


def test_other_calls_are_not_executable() -> None:
    action = Action(type="tool_call", tool_name="search", tool_args="{}")
    context = StepContext(episode_id="e", step_index=0, platform="tool")
    result = PythonExecutor().execute(context, ProposedStep("tool_call", action=action))
    assert result.outcome == "not_executable" and "'search'" in result.reason


def test_the_real_t3_agent_programs_run_again_and_print_what_was_recorded(
        tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest([realdata("t3_agent")], store)
    summary = execute(store, executor="python", options={"timeout": 20.0})
    rows = read_executions(store, "python").to_pylist()
    steps = {(s["episode_id"], s["step_index"]): s for s in open_store(store).read_steps()
             .select(["episode_id", "step_index", "observation", "action"]).to_pylist()}
    recorded = {key: step["observation"] or "" for key, step in steps.items()}
    programs = [r for r in rows
                if steps[(r["episode_id"], r["step_index"])]["action"]["tool_name"] == "python"]
    others = [r for r in rows if r not in programs]
    assert len(programs) == 44 and summary.steps == len(rows) == 246
    assert {r["outcome"] for r in programs} <= {"executed", "limit"}
    assert all(r["outcome"] == "not_executable" and r["feedback"] for r in others)
    # Most programs print again exactly what the agent saw; the rest read variables an
    # earlier block defined (MM-Traj's agent keeps one interpreter; each call here is fresh).
    same = [r for r in programs if r["outcome"] == "executed" and r["feedback"].strip()
            and r["feedback"].strip() in recorded[(r["episode_id"], r["step_index"])]]
    assert len(same) >= 30
    fresh = [r for r in programs if "NameError" in (r["feedback"] or "")]
    assert fresh and all(r["outcome"] == "executed" for r in fresh)
