"""curate's exports loaded by the real trainers: verl 0.9's ``RLHFDataset`` and TRL's GRPO
data path, run from their own environment (``.trainers-venv``, installed by .ci/run: torch
CPU, verl, TRL, transformers) so curate's environment stays light.

Each check is a script run by that environment's Python on a fresh ``curate build`` of the
example recordings; it prints one JSON line per row. Skipped when the environment is missing
on a developer machine, failed under CI=true.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
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


Targets = dict[str, tuple[float, float, float, float]]


def click_rows(dist: Path, prefix: str = "") -> tuple[list[tuple[dict[str, Any],
                                                                dict[str, Any]]], Targets]:
    """Up to four stage2_verl rows whose reference is a click on a screenshot, with their
    actions, and the test server's targets: "target i" a box around row i's click, "the wrong
    button" a corner far from all of them (names after ``prefix``: the tests share the
    store's answer cache, and each counts its own requests)."""
    rows = [row for path in sorted((dist / "data" / "stage2_verl").glob("*.parquet"))
            for row in pq.read_table(path).to_pylist()]
    clicks = [(row, json.loads(row["reward_model"]["ground_truth"])["actions"][0])
              for row in rows if row["images"]]
    clicks = [(row, action) for row, action in clicks if action["type"] == "click"][:4]
    assert len(clicks) >= 2
    targets = {f"{prefix}target {i}": (a["x"] - 0.01, a["y"] - 0.01, a["x"] + 0.01,
                                       a["y"] + 0.01) for i, (_, a) in enumerate(clicks)}
    targets[f"{prefix}the wrong button"] = (0.96, 0.96, 0.99, 0.99)
    return clicks, targets


def test_the_stage2_reward_that_executes_runs_in_trls_grpo_trainer(dist: Path,
                                                                   tmp_path: Path) -> None:
    from modelserver import ModelServer, grounding_responder

    clicks, targets = click_rows(dist, prefix="trl ")
    cases = [{"prompt": row["problem"], "completion": f'click(instruction="{name}")',
              "solution": row["reward_model"]["ground_truth"],
              "episode_id": row["extra_info"]["episode_id"],
              "step_index": row["extra_info"]["step_index"]}
             for i, (row, _) in enumerate(clicks)
             for name in (f"trl target {i}", "trl the wrong button")]
    (tmp_path / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
    with ModelServer(grounding_responder("ui-tars-1.5", targets)) as server:
        kwargs = {"url": server.url, "model": "ui-tars-1.5-7b", "family": "ui-tars-1.5",
                  "store": str(dist.parent / "dist.store")}
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
               "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([str(PYTHON), str(HERE / "trl_executed_check.py"),
                               str(tmp_path / "cases.json"), json.dumps(kwargs),
                               str(tmp_path / "grpo")],
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        assert server.count == len(cases)  # each case's click grounded by the server once
    lines = [json.loads(line.removeprefix("curate: ")) for line in done.stdout.splitlines()
             if line.startswith("curate: ")]
    trained, scored = lines[0], lines[1:]
    assert trained["trained_steps"] == 1 and trained["logged_reward"] is not None, trained
    # the executed click on its own target earns 1, on the wrong button 0
    assert [r["score"] for r in scored] == [1.0, 0.0] * len(clicks), scored


def test_the_stage2_reward_that_executes_runs_in_verls_reward_managers(dist: Path,
                                                                       tmp_path: Path) -> None:
    from modelserver import ModelServer, grounding_responder

    clicks, targets = click_rows(dist)
    cases = [{"response": f'click(instruction="{name}")', "data_source": row["data_source"],
              "ground_truth": row["reward_model"]["ground_truth"], "extra_info": row["extra_info"]}
             for i, (row, _) in enumerate(clicks) for name in (f"target {i}", "the wrong button")]
    (tmp_path / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
    with ModelServer(grounding_responder("ui-tars-1.5", targets)) as server:
        server.inject("429", "500")  # the reward worker's client retries them
        kwargs = {"url": server.url, "model": "ui-tars-1.5-7b", "family": "ui-tars-1.5",
                  "store": str(dist.parent / "dist.store")}
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
               "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([str(PYTHON), str(HERE / "verl_executed_check.py"),
                               str(tmp_path / "cases.json"), json.dumps(kwargs)],
                              capture_output=True, text=True, env=env, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        asked = server.count
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for manager in ("reward_loop.naive", "batch"):
        scores = [r["score"] for r in results if r["manager"] == manager]
        # the executed click on its own target earns 1, on the wrong button 0
        assert scores == [1.0, 0.0] * len(clicks), (manager, results)
        assert {r["outcome"] for r in results if r["manager"] == manager} == {"executed"}
    # each distinct request once (plus the two retried); the batch manager's pass was cached
    screens = [hashlib.sha256(row["images"][0]["bytes"]).digest() for row, _ in clicks]
    distinct = {(screens[i // 2], case["response"]) for i, case in enumerate(cases)}
    assert asked == len(distinct) + 2
