"""The store's reviewable items (steps, segments, episodes), keyed as in Label Studio tasks.

Keys: ``step:EPISODE:INDEX``, ``segment:SEGMENT_ID``, ``episode:EPISODE``. A fingerprint of
what a reviewer saw (action texts and frame ids) is pushed with each task, so pull can tell a
review of the item as it still is from one of an item that has changed since.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from curate.store.core import Store

_STEP_COLUMNS = ["episode_id", "step_index", "action", "action_text", "frame_id",
                 "next_frame_id", "thought"]
_EPISODE_COLUMNS = ["episode_id", "instruction", "source_format", "platform", "outcome",
                    "step_count", "screen_width", "screen_height"]


def step_key(episode_id: str, step_index: int) -> str:
    return f"step:{episode_id}:{step_index}"


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:16]


@dataclass
class StoreItems:
    """What push and pull need to know about the store, loaded once (no image bytes)."""

    episodes: dict[str, dict[str, Any]]
    steps: dict[tuple[str, int], dict[str, Any]]
    labels: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per step: state, step_instruction and their sources as segment computes them (push
    # fills it for step tasks; see curate.pipeline.segment.current_step_texts)
    step_texts: dict[tuple[str, int], dict[str, str | None]] = field(default_factory=dict)

    @classmethod
    def load(cls, store: Store, *, with_segments: bool = False) -> StoreItems:
        episodes = {r["episode_id"]: r for r in store.read("episodes",
                                                           columns=_EPISODE_COLUMNS).to_pylist()}
        steps = {(r["episode_id"], r["step_index"]): r
                 for r in store.read("steps", columns=_STEP_COLUMNS).to_pylist()}
        labels = {(r["episode_id"], r["step_index"]): r for r in store.read("labels").to_pylist()}
        segments = ({r["segment_id"]: r for r in store.read("segments").to_pylist()}
                    if with_segments else {})
        return cls(episodes, steps, labels, segments)

    def episode_steps(self, episode_id: str) -> list[dict[str, Any]]:
        count = int(self.episodes[episode_id]["step_count"])
        return [self.steps[(episode_id, i)] for i in range(count)
                if (episode_id, i) in self.steps]

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The row behind a key (step, segment or episode row), None when it is gone."""
        unit, _, rest = key.partition(":")
        if unit == "step":
            episode_id, _, index = rest.rpartition(":")
            return self.steps.get((episode_id, int(index))) if index.isdigit() else None
        if unit == "segment":
            return self.segments.get(rest)
        if unit == "episode":
            return self.episodes.get(rest)
        return None

    def fingerprint(self, key: str) -> str | None:
        """What the reviewer was shown, hashed; None when the item no longer exists."""
        row = self.lookup(key)
        if row is None:
            return None
        if key.startswith("step:"):
            return _digest(row["action_text"], row["frame_id"])
        if key.startswith("segment:"):
            # every frame the task shows: s_t, then the state after each target step
            return _digest(*row["target_action_texts"], row["frame_id"],
                           *row["target_next_frame_ids"])
        steps = self.episode_steps(row["episode_id"])
        return _digest(*(f"{s['action_text']}|{s['frame_id']}" for s in steps))
