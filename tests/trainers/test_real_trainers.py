"""curate's exports loaded by the real trainers: verl 0.9's ``RLHFDataset`` and TRL's GRPO
data path, run from their own environment (``.trainers-venv``, installed by .ci/run: torch
CPU, verl, TRL, transformers) so curate's environment stays light.

Each check is a script run by that environment's Python on a fresh ``curate build`` of the
example recordings; it prints one JSON line per row. Skipped when the environment is missing
on a developer machine, failed under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from browser import unavailable

from curate.pipeline.build import build

REPO = Path(__file__).resolve().parents[2]
PYTHON = Path(os.environ.get("CURATE_TRAINERS_PYTHON", REPO / ".trainers-venv/bin/python"))
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not PYTHON.exists():
        unavailable(f"no trainers environment at {PYTHON}: .ci/run creates .trainers-venv")
    out = tmp_path_factory.mktemp("trainers") / "dist"
    build([REPO / "examples" / "recordings"], out, recipe="tracer1", workers=1)
    return out


def run_check(script: str, dist: Path, config: str) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(dist.parent / "hf-cache")}
    done = subprocess.run([str(PYTHON), str(HERE / script), str(dist), config],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert rows, f"{script} printed no rows:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return rows


@pytest.mark.parametrize("config", ["stage1_verl", "stage2_verl"])
def test_verl_rlhf_dataset_loads_the_export_with_one_image_per_tag(dist: Path,
                                                                    config: str) -> None:
    rows = run_check("verl_check.py", dist, config)
    for row in rows:
        assert row["images"] == row["tags"] == row["raw_images"] >= 1, row["id"]
        assert row["images_decoded"], row["id"]


@pytest.mark.parametrize("config", ["stage1_verl", "stage2_verl"])
def test_verl_items_carry_the_ground_truth_that_curate_reward_scores(dist: Path,
                                                                      config: str) -> None:
    rows = run_check("verl_check.py", dist, config)
    for row in rows:
        horizon = json.loads(row["ground_truth"])["horizon"]
        window = row["id"].rsplit(":", 1)[-1] if config == "stage1_verl" else "1"
        # a window's id ends in its K, or in "end" (every remaining step, at most max_horizon)
        assert horizon == int(window) if window.isdigit() else 1 <= horizon <= 50, row["id"]
        # the reference answer earns full reward, garbage earns nothing
        assert (row["right_score"], row["garbage_score"]) == (1.0, 0.0), row["id"]


@pytest.mark.parametrize("config", ["stage1_trl", "stage2_trl"])
def test_trl_renders_every_image_and_calls_the_reward_with_the_extra_columns(
        dist: Path, config: str) -> None:
    rows = run_check("trl_check.py", dist, config)
    for row in rows:
        assert row["conversational"], row["id"]
        assert row["image_tags"] == row["images"] >= 1, row["id"]
        assert row["scores"] == [1.0, 0.0], row["id"]
