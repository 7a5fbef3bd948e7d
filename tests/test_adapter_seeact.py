"""SeeAct per-action Mind2Web folders: grouped into tasks by annotation_id and ordered by
previous_actions, crops located, step descriptions taken from later actions, model
predictions kept apart, bad folders and records rejected one by one."""

from __future__ import annotations

from pathlib import Path

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import SourceUnit, UnitBuilder
from curate.sources.discover import discover

EXPERIMENT = Path(__file__).resolve().parent / "fixtures/seeact/exp_textual_choice"
TASK = "11111111-2222-4333-8444-555555555555"
STEP0 = EXPERIMENT / f"{TASK}_ffffffff-0000-4000-8000-000000000000"  # sorts last


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("seeact"))


def episodes(out: UnitBuilder) -> dict[str, object]:
    return {e.metadata["annotation_id"]: e for e in out.episodes}


def test_an_experiment_folder_is_one_unit_and_an_action_folder_alone_is_claimed() -> None:
    planned = list(discover([EXPERIMENT.parent]))
    assert [(u.unit.source_path, u.adapter) for u in planned] == [
        ("seeact/exp_textual_choice", "seeact")]
    found = adapters.detect(STEP0)
    assert found is not None and found.name == "seeact"
    assert len(read(STEP0).episodes[0].steps) == 1


def test_actions_of_a_task_are_ordered_by_their_previous_actions() -> None:
    # the first action's folder sorts last by name: the order comes from the records
    episode = episodes(read(EXPERIMENT))[TASK]
    assert [s.action.type for s in episode.steps] == ["type", "click", "type"]
    assert [s.action.text for s in episode.steps] == ["10203", None, "4 hours"]
    assert episode.instruction == "Find a plumber near 10203"
    assert episode.metadata["missing_steps"] == [2]
    assert episode.truncated and not episode.terminated


def test_the_state_is_the_crop_holding_the_target_and_the_box_is_moved_into_it() -> None:
    episode = episodes(read(EXPERIMENT))[TASK]
    first = episode.steps[0]
    frame = episode.frames[first.frame_id]
    assert (frame.width, frame.height) == (640, 1200)  # images/1.jpg, the target's batch
    # rect 400,1500,140,50; batch candidates start at y=1400, so the crop starts at 376
    assert episode.metadata["crop_tops"]["0"] == 376.0
    assert first.action.target.y0 == round((1500 - 376) / 1200, 4)
    assert first.action.py == 1500 - 376 + 25
    assert first.next_frame_id == episode.steps[1].frame_id  # the next action's state


def test_descriptions_come_from_later_actions_and_gaps_are_said() -> None:
    steps = episodes(read(EXPERIMENT))[TASK].steps
    assert steps[0].step_instruction == "[textbox]  Zip code -> TYPE: 10203"
    assert steps[1].step_instruction == "[button]  Search -> CLICK"
    assert steps[2].step_instruction is None
    assert any("description is not known" in w for w in steps[2].warnings)
    assert steps[1].next_frame_missing == "record_missing"  # step 2 is not shipped
    assert steps[2].next_frame_missing == "final_state_not_recorded"


def test_model_predictions_are_metadata_not_steps() -> None:
    episode = episodes(read(EXPERIMENT))[TASK]
    assert episode.metadata["predictions"] == [
        {"file": "prediction-4api.jsonl", "multichoice_id": 0, "element": "B",
         "action": "TYPE", "value": "10203", "step": 0}]


def test_bad_records_are_rejected_one_by_one_and_the_rest_is_kept() -> None:
    out = read(EXPERIMENT)
    found = sorted((r.file.split("/")[-2][-2:], r.level, r.reason.split(":")[0])
                   for r in out.rejects)
    assert found == [
        ("01", "step", "invalid JSON line"),  # a cut second batch line
        ("02", "episode", f"the folder is named {TASK}_00000000-0000-4000-8000-000000000002 "
                          "but its records are aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee_00000000-"
                          "0000-4000-8000-000000000002"),
        ("04", "frame", "no screenshot for this action"),
        ("04", "step", "unknown operation 'HOVER'; expected CLICK, TYPE or SELECT"),
        ("05", "frame", "no screenshot for this action"),
        # the crop of a batch without the positive candidate (.../ffffffff.../images/0.jpg)
        ("es", "frame", "image not referenced by any step"),
    ]
    other = episodes(out)["aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"]
    assert [s.frame_missing for s in other.steps] == ["file_missing"]  # kept without state
