"""AgentNetBench episodes: ground-truth actions, boxes, alternatives, sparse step numbers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from curate.actions import Action
from curate.pipeline.extract import read_unit
from curate.rewards import make_ground_truth, score_response
from curate.rewards.alternatives import alternatives_by_step, reference
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    RECORD_MISSING,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
)
from tests.conftest import realdata

NAME = "agentnet_bench"


def sample_dir() -> Path:
    return realdata("agentnet_bench") / "evaluation" / "agentnetbench" / "sample_data"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, f"sample_data/{path.name}"), adapters.get(NAME))


def episode(task: str) -> EpisodeBuilder:
    out = read(sample_dir() / f"{task}.json")
    assert not out.rejects
    [ep] = out.episodes
    return ep


@pytest.mark.realdata
def test_real_sample_reads_every_step_and_screenshot() -> None:
    files = sorted(sample_dir().glob("*.json"))
    assert [adapters.detect(f).name for f in files] == [NAME] * 3
    counts = [len(episode(f.stem).steps) for f in files]
    assert counts == [10, 11, 10]
    ep = episode("s_7f27a11115e596eb")
    assert ep.instruction.startswith("Open Spotify in a web browser")
    assert ep.metadata["user_task_description"].startswith("Look for the last song")
    assert ep.outcome == "success" and ep.terminated
    assert ep.screen_size() == (1212, 758)  # the PNGs, not meta_info's 1024x640
    assert ep.metadata["meta_info"]["screen_resolution"] == {"width": 1024, "height": 640}


@pytest.mark.realdata
def test_real_sample_ground_truth_becomes_actions_with_boxes() -> None:
    steps = episode("s_7f27a11115e596eb").steps
    click = steps[0].action
    assert (click.type, click.x, click.y) == ("click", 0.3395, 0.6307)
    # rel_bbox is [x, y, width, height]: x1 = x + width
    assert click.target is not None
    assert (click.target.x0, click.target.x1) == (0.2321, round(0.23205445544554457
                                                                 + 0.6551567656765677, 4))
    assert steps[1].action.text == "SPOTIFY\n"  # write + enter merged by the benchmark
    scroll = steps[6].action
    assert (scroll.type, scroll.direction, scroll.amount, scroll.x) == ("scroll", "down", 54.0,
                                                                       0.4496)
    assert steps[-1].action.type == "done"
    assert steps[0].step_instruction.startswith("Click on the search bar")
    assert steps[0].thought.startswith("To achieve the goal")
    drag = episode("s_5473959e0f6e21f7").steps[0].action
    assert (drag.type, drag.x, drag.y, drag.x2, drag.y2) == ("drag", 0.328, 0.4697, 0.5025,
                                                              0.6039)


@pytest.mark.realdata
def test_real_sample_ground_truth_wins_over_the_code() -> None:
    step = episode("s_5473959e0f6e21f7").steps[3]  # step_num 5
    assert step.action.text == "help me polish this: "
    assert step.action.raw == "pyautogui.write(message=\"help me polish this: '\")"


@pytest.mark.realdata
def test_real_sample_sparse_step_numbers_break_the_next_state() -> None:
    ep = episode("s_7f27a11115e596eb")  # step_num 0,1,3,4,...
    assert ep.metadata["step_nums"] == [0, 1, 3, 4, 5, 6, 7, 8, 10, 12, 13]
    assert ep.steps[0].next_frame_id == ep.steps[1].frame_id
    assert ep.steps[1].next_frame_id is None and ep.steps[1].next_frame_missing == RECORD_MISSING
    assert ep.steps[-1].next_frame_missing == FINAL_STATE_NOT_RECORDED
    assert ep.steps[1].source_position == "steps[1] (step_num 1)"


@pytest.mark.realdata
def test_real_sample_alternatives_are_accepted_by_the_rewards() -> None:
    ep = episode("s_7f27a11115e596eb")
    alternatives = alternatives_by_step(ep.metadata)
    assert sorted(alternatives) == [0, 6]
    [other] = alternatives[0]
    assert (other.type, other.x, other.y) == ("click", 0.3763, 0.1003)
    truth = make_ground_truth([reference(ep.steps[0].action, alternatives[0])])
    alone = make_ground_truth([ep.steps[0].action])
    answer = "click(x=0.3763, y=0.1003)"
    assert score_response(answer, truth).accuracy == 1.0
    assert score_response(answer, alone).accuracy < 1.0


@pytest.mark.realdata
def test_real_sample_state_text_is_kept_per_step() -> None:
    ep = episode("s_a96285eb665bef92")
    assert len(ep.metadata["state_text"]) == 10
    assert all(s.observation is None for s in ep.steps)


def test_missing_image_unknown_type_and_truncation(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    shutil.copy(Path(__file__).parent / "fixtures" / "agentnet_hf" / "images" / "t1_0.png",
                tmp_path / "images" / "e_0.png")
    steps = [
        {"step_num": 0, "image": "e_0.png", "action": "pyautogui.click(x=0.1, y=0.2)",
         "ground_truth_actions": [{"type": "click", "params": {"position": {"x": 0.1, "y": 0.2}},
                                   "metadata": {"bboxes": []}}], "alternative_options": []},
        {"step_num": 1, "image": "e_1.png", "action": "pyautogui.tripleSwipe()",
         "ground_truth_actions": [{"type": "swipeLeft", "params": {}}],
         "alternative_options": [[{"type": "teleport", "params": {}}]]},
        {"step_num": 2, "image": "e_2.png", "action": "computer.terminate(status='failure')",
         "ground_truth_actions": [{"type": "terminate", "params": {"status": "failure"}}],
         "alternative_options": []},
    ]
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"task_id": "e", "high_level_task_description": "Do it",
                                "steps": steps}))
    out = read(path)
    [ep] = out.episodes
    assert [s.action.type for s in ep.steps] == ["click", "fail"]
    assert ep.outcome == "fail"
    assert ep.steps[1].frame_missing == FILE_MISSING
    step_reject = next(r for r in out.rejects if r.level == "step")
    assert "unknown action type 'swipeLeft'" in step_reject.reason
    assert step_reject.position == "steps[1] (step_num 1)"
    assert sum(r.level == "frame" for r in out.rejects) == 2
    truncated = tmp_path / "t.json"
    truncated.write_text(path.read_text()[:200])
    cut = read(truncated)
    assert not cut.episodes and cut.rejects[0].level == "episode"
    assert "invalid JSON" in cut.rejects[0].reason


def test_alternative_reference_scores_by_the_best_match() -> None:
    main = Action("click", x=0.2, y=0.2)
    other = Action("click", x=0.8, y=0.8)
    assert reference(main, []) is main
    truth = make_ground_truth([reference(main, [other])])
    assert score_response("click(x=0.8, y=0.8)", truth).accuracy == 1.0


def test_fixture_episode_drag_boxes_and_alternatives() -> None:
    path = Path(__file__).parent / "fixtures" / "agentnet_bench" / "b.json"
    out = read(path)
    assert not out.rejects
    [ep] = out.episodes
    assert [s.action.type for s in ep.steps] == ["click", "drag", "done"]
    drag = ep.steps[1].action
    assert (drag.x, drag.y, drag.x2, drag.y2) == (0.3, 0.3, 0.7, 0.6)
    assert drag.target is not None and (drag.target.x0, drag.target.x1) == (0.28, 0.33)
    assert ep.steps[1].next_frame_missing == RECORD_MISSING  # step_num 2 was sampled away
    assert alternatives_by_step(ep.metadata)[0][0].x == 0.05


def test_export_writes_alternatives_into_the_stage2_reference(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from curate.pipeline.build import build

    fixtures = Path(__file__).parent / "fixtures" / "agentnet_bench"
    build([fixtures], tmp_path / "out", store=tmp_path / "store")
    rows = [row for part in sorted((tmp_path / "out" / "data" / "stage2").glob("*.parquet"))
            for row in pq.read_table(part, columns=["step_index", "ground_truth"]).to_pylist()]
    first = next(json.loads(r["ground_truth"]) for r in rows if r["step_index"] == 0)
    [[main, other]] = first["actions"]
    assert (main["x"], other["x"]) == (0.25, 0.05)
    answer = "click(x=0.05, y=0.2)"
    assert score_response(answer, json.dumps(first)).accuracy == 1.0
