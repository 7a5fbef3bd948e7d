"""`curate label` against a person's labels of the real samples (tests/fixtures/human_labels):
the agreement measured when the labels were made is a floor, so a rule change that agrees
with the person less often fails here (docs/labels.md quotes the figures and the misses)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import realdata
from label_agreement import JUDGED, compare, human_labels, measure

# Measured with LABEL_VERSION 6 on 2026-12-04 (agree, of the steps the person judged).
FLOORS = {
    "osworld_sec_eval_claude": {"noop": 8, "loop": 9, "on_path": 8, "steps": 9},
    "droidbot_utg": {"noop": 15, "loop": 14, "on_path": 13, "steps": 15},
    "agentnet_bench": {"noop": 23, "loop": 24, "on_path": 17, "steps": 24},
}


@pytest.mark.parametrize("sample", sorted(FLOORS))
def test_curate_agrees_with_the_persons_labels_at_least_as_often_as_measured(
        sample: str, tmp_path: Path) -> None:
    realdata(sample)
    agreement = measure(sample, tmp_path)
    floor = FLOORS[sample]
    assert {tally.total for tally in agreement.values()} == {floor["steps"]}
    worse = {name: f"{tally.agree}/{tally.total} < {floor[name]}, misses "
                   f"{[(miss.source_path, miss.step_index) for miss in tally.disagreements]}"
             for name, tally in agreement.items() if tally.agree < floor[name]}
    assert not worse, worse


def test_every_judged_step_has_all_three_labels_and_a_reason() -> None:
    for sample in FLOORS:
        labels = human_labels(sample)
        assert "made_by" in labels and labels["sample"] == sample
        for episode in labels["episodes"]:
            for step in episode["steps"]:
                assert all(isinstance(step[name], bool) for name in JUDGED), step
                assert step["reason"].strip(), step


def test_compare_counts_agreement_per_label_and_names_each_miss() -> None:
    human = {"sample": "s", "episodes": [{"source_path": "s/run", "steps": [
        {"step_index": 0, "action": "click", "noop": False, "loop": False, "on_path": True,
         "reason": "a menu opens"},
        {"step_index": 1, "action": "move", "noop": True, "loop": False, "on_path": False,
         "reason": "hover only"}]}]}
    ours = {("s/run", 0): {"noop": False, "loop": False, "on_path": True, "evidence": "e0"},
            ("s/run", 1): {"noop": False, "loop": False, "on_path": True, "evidence": "e1"}}
    agreement = compare(human, ours)
    assert [(t.agree, t.total) for t in agreement.values()] == [(1, 2), (2, 2), (1, 2)]
    miss = agreement["noop"].disagreements[0]
    assert (miss.step_index, miss.human, miss.curate, miss.human_reason) == (
        1, True, False, "hover only")
    del ours[("s/run", 1)]
    with pytest.raises(KeyError, match="step"):
        compare(human, ours)
