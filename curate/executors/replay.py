"""``replay``: a proposed tool call executed against the calls the episode recorded.

The call is matched by tool name and normalised arguments (JSON with sorted keys, strings with
their surrounding spaces trimmed, numbers compared as numbers) to the episode's recorded calls;
the match's recorded result becomes the feedback. No match, or a step that is not a tool call,
is ``not_executable`` with the reason (the nearest recorded call of the same name is named).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from curate.actions import canonical_json
from curate.executors.base import Execution, ProposedStep, StepContext
from curate.executors.registry import register


def normalised_args(args: Any) -> str:
    """Arguments in the one form calls are compared in."""
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return json.dumps(args.strip())
    return canonical_json(_normal(args))


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class ReplayExecutor:
    name = "replay"
    needs_screenshot = False
    version = 1

    def execute(self, context: StepContext, proposed: ProposedStep) -> Execution:
        action = proposed.action
        if action is None or action.type != "tool_call" or not action.tool_name:
            return Execution(self.name, "not_executable",
                             reason=f"replay runs tool calls, not {proposed.action_type}")
        wanted = normalised_args(action.tool_args or "{}")
        same_name = [c for c in context.recorded_calls if c.get("name") == action.tool_name]
        for call in same_name:
            if normalised_args(call.get("args")) == wanted:
                result = call.get("result")
                return Execution(self.name, "executed", executed=action,
                                 reason=str(result) if result is not None
                                 else "the recorded call has no result",
                                 raw=str(result) if result is not None else None,
                                 provenance={"recorded_step": call.get("step_index")})
        if not same_name:
            return Execution(self.name, "not_executable",
                             reason=f"the episode recorded no call to {action.tool_name!r}")
        return Execution(self.name, "not_executable",
                         reason=f"no recorded {action.tool_name!r} call has these arguments; "
                                f"{len(same_name)} recorded with others, e.g. "
                                f"{normalised_args(same_name[0].get('args'))[:200]}")

    def execute_many(self, items: Sequence[tuple[StepContext, ProposedStep]]
                     ) -> list[Execution]:
        return [self.execute(context, proposed) for context, proposed in items]


def _factory(*, concurrency: int | None = None) -> ReplayExecutor:
    del concurrency  # lookups in memory: nothing to run concurrently
    return ReplayExecutor()


register("replay", _factory)
