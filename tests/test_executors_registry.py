"""The executor registry: executors by name, built-ins loaded on demand."""

from __future__ import annotations

import pytest

from curate.executors.base import Execution, ProposedStep, StepContext
from curate.executors.registry import (
    UnknownExecutorError,
    available,
    get_executor,
    register,
)


class _Echo:
    """An executor that carries out nothing, to see the registry hand over its options."""

    def __init__(self, *, outcome: str = "not_executable") -> None:
        self.name = "echo"
        self.outcome = outcome

    def execute(self, context: StepContext, proposed: ProposedStep) -> Execution:
        return Execution(executor=self.name, outcome=self.outcome, reason=proposed.action_type)

    def execute_many(self, items: list[tuple[StepContext, ProposedStep]]) -> list[Execution]:
        return [self.execute(context, proposed) for context, proposed in items]


def test_a_registered_factory_is_built_with_the_options_given() -> None:
    register("test-echo", _Echo)
    executor = get_executor("test-echo", outcome="limit")
    context = StepContext(episode_id="e", step_index=0, platform="web")
    result = executor.execute(context, ProposedStep(action_type="click"))
    assert (result.outcome, result.reason) == ("limit", "click")
    assert "test-echo" in available()


def test_an_unknown_name_lists_the_executors_there_are() -> None:
    register("test-echo", _Echo)
    with pytest.raises(UnknownExecutorError) as raised:
        get_executor("no-such-executor")
    assert "unknown executor 'no-such-executor'" in str(raised.value)
    assert "test-echo" in str(raised.value)


def test_names_must_be_words() -> None:
    with pytest.raises(ValueError, match="must be a non-empty word"):
        register("a b", _Echo)
