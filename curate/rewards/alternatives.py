"""Alternative reference actions: other answers a source accepts for a step.

Benchmarks such as AgentNetBench list, beside each step's ground truth, other actions that
are just as correct (a second button that does the same thing). An adapter keeps them in the
episode's metadata under ``alternatives``: step index (as a string) -> list of actions as
:func:`curate.rewards.entrypoints.action_json` objects. Exports add them to the step's
reference, and the rewards already score a reference step that is a list of actions by the
best-matching one (docs/rewards.md), so a prediction matching an alternative earns full credit.
"""

from __future__ import annotations

import json
from typing import Any

from curate.actions import Action

METADATA_KEY = "alternatives"


def alternatives_by_step(metadata: str | dict[str, Any] | None) -> dict[int, list[Action]]:
    """The alternatives an episode's metadata records, by step index (empty when none)."""
    from curate.rewards.entrypoints import load_ground_truth  # the one reader of action JSON

    document = json.loads(metadata) if isinstance(metadata, str) else (metadata or {})
    options = document.get(METADATA_KEY) if isinstance(document, dict) else None
    if not isinstance(options, dict):
        return {}
    found: dict[int, list[Action]] = {}
    for key, actions in sorted(options.items()):
        if actions:
            truth = load_ground_truth({"actions": actions})
            found[int(key)] = [step[0] for step in truth.actions]
    return found


def reference(action: Action, alternatives: list[Action] | None) -> Action | list[Action]:
    """The reference for one step: the action alone, or it followed by its alternatives."""
    return [action, *alternatives] if alternatives else action
