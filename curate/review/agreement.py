"""Chance-corrected agreement between reviewers: Krippendorff's alpha for nominal decisions.

Why alpha and not a kappa: a Label Studio task gets as many annotations as reviewers chose to
give it, from whichever reviewers opened it. Cohen's kappa needs the same two raters on every
item and Fleiss' kappa the same number of raters per item; alpha takes any number of
annotations per task (tasks with one annotation carry no pairs and drop out) and reduces to
Scott's pi for two raters without missing data.

alpha = 1 - D_o / D_e, from the coincidence matrix o[c][k] (each ordered pair of decisions
within a task, weighted 1 / (m - 1) for a task with m decisions): D_o is the share of
disagreeing pairs, D_e the share expected if decisions were paired at random from their
overall frequencies. 1 is perfect agreement, 0 what chance gives, negative worse than chance.
It is undefined (None) when fewer than two tasks' pairs exist or every decision is the same
value (no variation: chance would agree as often as the reviewers did).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence


def krippendorff_alpha(tasks: Iterable[Sequence[Hashable | None]]) -> float | None:
    """Nominal alpha over tasks, each the decisions of its annotations (None = no decision,
    left out)."""
    coincidences: dict[tuple[Hashable, Hashable], float] = {}
    for decisions in tasks:
        values = [d for d in decisions if d is not None]
        m = len(values)
        if m < 2:
            continue
        for i, first in enumerate(values):
            for j, second in enumerate(values):
                if i != j:
                    pair = (first, second)
                    coincidences[pair] = coincidences.get(pair, 0.0) + 1.0 / (m - 1)
    totals: dict[Hashable, float] = {}
    for (first, _), weight in coincidences.items():
        totals[first] = totals.get(first, 0.0) + weight
    n = sum(totals.values())
    if n < 2 or len(totals) < 2:
        return None
    observed = sum(w for (c, k), w in coincidences.items() if c != k) / n
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k) / (
        n * (n - 1))
    return 1.0 - observed / expected


def describe_alpha(alpha: float | None) -> str:
    """The value as status and pull print it."""
    if alpha is None:
        return "n/a (needs tasks with several annotations and more than one decision value)"
    return f"{alpha:.2f}"
