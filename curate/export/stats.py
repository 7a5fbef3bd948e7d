"""Numbers an export gathers for its card: rows per split, action types, episode lengths,
sources, consistency, review coverage, and what was skipped and why."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plots' child process imports this module: only the types it names
    from curate.export.source import Episode
    from curate.store.core import Store


@dataclass
class ExportStats:
    episodes_total: int = 0
    rows_by_split: dict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))
    episodes_by_split: Counter[str] = field(default_factory=Counter)
    episode_lengths: list[int] = field(default_factory=list)
    action_types: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    platforms: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    consistency: list[float] = field(default_factory=list)
    label_sources: Counter[str] = field(default_factory=Counter)
    # (executor, "source" | "type", source format or action type) -> [steps, executed,
    # reward sum]
    executability: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    # executor -> the model ids it asked (curate.pipeline.execute.executor_models)
    executor_models: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    @classmethod
    def for_store(cls, store: Store) -> ExportStats:
        return cls(episodes_total=store.read("episodes", columns=["episode_id"]).num_rows)

    def add(self, other: ExportStats) -> None:
        """Add a later batch's numbers (``episodes_total`` is the store's, not added): merged
        in batch order, the lists come out as one pass over the store would have made them."""
        for config, counts in other.rows_by_split.items():
            self.rows_by_split[config].update(counts)
        for config, reasons in other.skipped.items():
            self.skipped[config].update(reasons)
        for counter, more in ((self.episodes_by_split, other.episodes_by_split),
                              (self.action_types, other.action_types),
                              (self.sources, other.sources), (self.platforms, other.platforms),
                              (self.outcomes, other.outcomes),
                              (self.label_sources, other.label_sources)):
            counter.update(more)
        self.episode_lengths.extend(other.episode_lengths)
        self.consistency.extend(other.consistency)
        for key, (steps, executed, reward) in other.executability.items():
            totals = self.executability.setdefault(key, [0, 0, 0.0])
            totals[0] += steps
            totals[1] += executed
            totals[2] += reward

    def episode(self, episode: Episode, split: str) -> None:
        self.episodes_by_split[split] += 1
        self.episode_lengths.append(len(episode.steps))
        self.sources[episode.row["source_format"]] += 1
        self.platforms[episode.row["platform"]] += 1
        self.outcomes[episode.row["outcome"]] += 1
        self.action_types.update(step["action"]["type"] for step in episode.steps)
        self.label_sources.update(
            str(label.get("label_source", "heuristic")) for label in episode.labels.values())

    def executions(self, episode: Episode,
                   executed: dict[tuple[str, int], dict[str, Any]]) -> None:
        """Count each step of an exported episode under the executor its stage2 row names,
        by source format and by action type, before ``--stage2-steps`` filters them: the
        card's rates describe the store's steps, not only those kept."""
        source = episode.row["source_format"]
        for step in episode.steps:
            if step["step_index"] in episode.rejected_steps:
                continue
            row = executed.get((step["episode_id"], step["step_index"]))
            if row is None:
                continue
            for by, group in (("source", source), ("type", step["action"]["type"])):
                counts = self.executability.setdefault((row["executor"], by, group),
                                                       [0, 0, 0.0])
                counts[0] += 1
                counts[1] += bool(row["success"])
                counts[2] += row["reward"]

    def executability_rows(self) -> list[dict[str, Any]]:
        """The card's table: one row per executor and source format or action type, with the
        models behind the executor (``-`` for none), the share executed, and the success:
        the mean reward of what was executed against the reference action (the share that
        matched, with binary rewards)."""
        return [{"executor": executor,
                 "model": ", ".join(f"`{m}`" for m in self.executor_models.get(executor, []))
                 or "-",
                 "by": by, "group": group, "steps": int(steps), "executed": int(done),
                 "rate": f"{done / steps:.1%}", "success": f"{reward / steps:.1%}"}
                for (executor, by, group), (steps, done, reward)
                in sorted(self.executability.items())]

    def row(self, config: str, row: dict[str, Any]) -> None:
        self.rows_by_split[config][row["split"]] += 1
        if config == "stage1":
            self.consistency.append(float(row["consistency"]))

    def skip(self, config: str, reason: str) -> None:
        self.skipped[config][reason] += 1

    def skipped_flat(self) -> dict[str, int]:
        return {f"{config}:{reason}": count for config, reasons in sorted(self.skipped.items())
                for reason, count in sorted(reasons.items())}
