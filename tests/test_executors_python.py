"""The python executor runs code tool calls in a subprocess with limits and no network."""

from __future__ import annotations

import json

from curate.actions import Action
from curate.executors.base import ProposedStep, StepContext
from curate.executors.python import PythonExecutor


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
