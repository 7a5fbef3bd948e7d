"""Files an adapter knows as part of its format but that hold no episode (OSWorld task
configs, ToolBench query lists, AgentLab study summaries) are not reported as unrecognised;
look-alikes that are not are still reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from curate.sources.discover import discover
from tests.conftest import realdata


def unrecognised(root: Path) -> list[str]:
    return [p.unit.source_path for p in discover([root]) if p.adapter is None]


def test_real_osworld_task_configs_are_auxiliary_and_the_runs_still_use_them() -> None:
    root = realdata("osworld_sec_eval_claude")
    assert unrecognised(root) == []
    runs = [p for p in discover([root]) if p.adapter == "osworld"]
    assert len(runs) == 2


def test_real_toolbench_query_list_is_auxiliary() -> None:
    assert unrecognised(realdata("toolbench")) == []


def test_real_agentlab_study_summaries_are_auxiliary() -> None:
    root = realdata("agentlab_browsergym")
    assert unrecognised(root) == []


def test_look_alikes_are_still_reported(tmp_path: Path) -> None:
    (tmp_path / "task.json").write_text(json.dumps({"id": "x", "instruction": "do"}),
                                        encoding="utf-8")  # no evaluator / config
    (tmp_path / "queries.json").write_text(json.dumps([{"query": "q"}]), encoding="utf-8")
    (tmp_path / "result_df_1.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # no experiment
    assert sorted(Path(p).name for p in unrecognised(tmp_path)) == [
        "queries.json", "result_df_1.csv", "task.json"]


def test_a_study_summary_beside_an_experiment_is_auxiliary(tmp_path: Path) -> None:
    study = realdata("agentlab_browsergym") / "tests/data/error_analysis"
    experiment = next(p for p in sorted(study.iterdir()) if p.is_dir())
    shutil.copytree(experiment, tmp_path / experiment.name)
    (tmp_path / "summary_df_trial_1_of_1.csv").write_text("a\n1\n", encoding="utf-8")
    assert unrecognised(tmp_path) == []
    (tmp_path / "summary_df_trial_1_of_1.csv").rename(tmp_path / "other.csv")
    assert [Path(p).name for p in unrecognised(tmp_path)] == ["other.csv"]
