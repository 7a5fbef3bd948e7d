"""Agreement between `curate label` and a person's labels of the real samples.

The person's labels are fixtures made by hand (tests/fixtures/human_labels/<sample>.json: each
judged step's noop, loop and on_path with a one-line reason, and who made them). This helper
ingests and labels a sample and counts, per label, the steps where curate says the same, and
lists the others with both reasons. tests/test_label_agreement.py pins the counts as floors;
run this file to print the table docs/labels.md quotes:

    PYTHONPATH=. python tests/label_agreement.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import REALDATA

from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.store.core import open_store

HUMAN_LABELS = Path(__file__).parent / "fixtures" / "human_labels"
JUDGED = ("noop", "loop", "on_path")


@dataclass
class Disagreement:
    source_path: str
    step_index: int
    action: str
    human: bool
    curate: bool | None
    human_reason: str
    curate_evidence: str


@dataclass
class Agreement:
    label: str
    agree: int = 0
    total: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)


def human_labels(sample: str) -> dict[str, Any]:
    return json.loads((HUMAN_LABELS / f"{sample}.json").read_text())


def curate_labels(sample_dir: Path, store: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Ingest and label one sample; its labels keyed by (episode source_path, step_index).

    Keyed by source path, not episode id, so that the person's file names the recording it
    was made from in words a reader can find in ../shared/realdata."""
    ingest([sample_dir], store)
    label(store)
    opened = open_store(store)
    paths = {row["episode_id"]: row["source_path"]
             for row in opened.read("episodes", ["episode_id", "source_path"]).to_pylist()}
    return {(paths[row["episode_id"]], row["step_index"]): row
            for row in opened.read("labels").to_pylist()}


def compare(human: dict[str, Any], labels: dict[tuple[str, int], dict[str, Any]]
            ) -> dict[str, Agreement]:
    """Per label: how many judged steps curate agrees on, and where it does not, why."""
    result = {name: Agreement(name) for name in JUDGED}
    for episode in human["episodes"]:
        for step in episode["steps"]:
            key = (episode["source_path"], step["step_index"])
            if key not in labels:
                raise KeyError(f"{human['sample']}: curate has no label for step {key}")
            ours = labels[key]
            for name in JUDGED:
                tally = result[name]
                tally.total += 1
                if ours[name] == step[name]:
                    tally.agree += 1
                else:
                    tally.disagreements.append(Disagreement(
                        key[0], key[1], step["action"], step[name], ours[name],
                        step["reason"], ours["evidence"]))
    return result


def measure(sample: str, work: Path) -> dict[str, Agreement]:
    return compare(human_labels(sample), curate_labels(REALDATA / sample, work / sample))


def main() -> None:
    samples = sorted(path.stem for path in HUMAN_LABELS.glob("*.json"))
    with tempfile.TemporaryDirectory() as work:
        for sample in samples:
            agreement = measure(sample, Path(work))
            counts = ", ".join(f"{name} {tally.agree}/{tally.total}"
                               for name, tally in agreement.items())
            print(f"{sample}: {counts}")
            for tally in agreement.values():
                for miss in tally.disagreements:
                    print(f"  {tally.label} step {miss.step_index} ({miss.action}) of "
                          f"{miss.source_path}: person {miss.human}, curate {miss.curate}\n"
                          f"    person: {miss.human_reason}\n    curate: {miss.curate_evidence}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
