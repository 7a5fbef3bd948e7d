"""The one small protocol every frozen executor speaks.

An executor is given one step's context (its screenshot, what the source recorded about the
screen or the tool calls, the task) and a *proposed* step (an action type plus a step
instruction, or a full action such as a tool call), and returns what it executed, in curate's
action space, with an outcome. "Not found", "ambiguous" and "not executable" are outcomes,
never exceptions: a Stage-2 run over a whole store must go on whatever one step does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from curate.actions import Action

# Outcomes an executor may report. ``executed`` is the only one with ``success = True``.
OUTCOMES = (
    "executed",  # the step was carried out; ``executed`` holds the action
    "not_found",  # the instruction names an element the executor could not find
    "ambiguous",  # several elements match equally well
    "not_executable",  # this executor cannot carry out this kind of step
    "invalid_answer",  # a model answered, but its answer could not be parsed or is out of range
    "limit",  # a time, memory or output limit was hit (sandboxed code)
    "unreachable",  # the model server could not be reached or kept failing
)


@dataclass(frozen=True, slots=True)
class ProposedStep:
    """What the policy proposes: an action type and step instruction, or a whole action."""

    action_type: str
    step_instruction: str | None = None
    action: Action | None = None


@dataclass(frozen=True, slots=True)
class StepContext:
    """Everything an executor may look at for one step; sources fill what they recorded."""

    episode_id: str
    step_index: int
    platform: str
    instruction: str | None = None
    screenshot: bytes | None = None
    width: int | None = None
    height: int | None = None
    # The store's frame id of ``screenshot`` (content hash): lets the model cache key skip
    # hashing the bytes again.
    frame_id: str | None = None
    # Recorded screen structure (accessibility tree, DOM, view hierarchy, element candidates),
    # already parsed into curate's element dicts: {"text", "role", "x0", "y0", "x1", "y1", ...}.
    elements: Sequence[Mapping[str, Any]] = ()
    # Tool-use episodes: the calls the episode recorded, each {"name", "args", "result"}.
    recorded_calls: Sequence[Mapping[str, Any]] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Execution:
    """What an executor did with one proposed step."""

    executor: str
    outcome: str
    executed: Action | None = None
    reason: str = ""
    raw: str | None = None
    cache_key: str | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.outcome == "executed"


class Executor(Protocol):
    """A frozen executor. ``execute_many`` may run concurrently; order is preserved."""

    name: str

    def execute(self, context: StepContext, proposed: ProposedStep) -> Execution: ...

    def execute_many(
        self, items: Sequence[tuple[StepContext, ProposedStep]]
    ) -> list[Execution]: ...
