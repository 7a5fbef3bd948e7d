"""Reviewers correct a step's instruction and its state in Label Studio, against a real server.

The step config's two text boxes start from the step's current texts (prefilled as
predictions); the reviewer's edit is posted the way the UI posts it (the prediction's results
with the edited text box), and must come back through pull, segment, export and execute with
source ``human``; a prefilled text submitted unchanged records nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from curate.review import pull, push
from curate.review.configs import ADDED_CONTROLS, label_config
from curate.review.results import textarea

from .conftest import LabelStudioServer
from .test_review_roundtrip import NATIVE, annotate, choice, project_name, sdk, tasks_by_key
from .test_review_semantics import CLICK, FOCUS, TYPING, from_prediction, pull_chosen

pytestmark = pytest.mark.slow
NEW_INSTRUCTION = 'tick the "Show hidden files" checkbox'
NEW_STATE = "the name field holds the new name, not yet saved"


def prefilled(task: dict[str, Any], name: str) -> str | None:
    for result in task["predictions"][0]["result"]:
        if result["from_name"] == name:
            return str(result["value"]["text"][0])
    return None


def test_an_edited_step_instruction_and_state_reach_the_export_as_human(
        label_studio: LabelStudioServer, sample_store: Path, tmp_path: Path) -> None:
    from conftest import load_fresh

    from curate.export import ExportParams, export
    from curate.pipeline.execute import execute
    from curate.pipeline.segment import segment

    project = project_name("texts")
    push(sample_store, project=project, url=label_studio.url, api_key=label_studio.token,
         filter_sql=f"episode_id = '{NATIVE}'")
    tasks = tasks_by_key(label_studio, project)
    click, focus, typing = (tasks[f"step:{NATIVE}:{i}"] for i in (CLICK, FOCUS, TYPING))
    # The boxes start from the step's texts, and the task data keeps what was shown.
    for task in (click, focus, typing):
        for name in ("step_instruction", "state"):
            assert prefilled(task, name) == (task["data"][name] or None), name
        assert task["data"]["step_instruction"], "every step has a step instruction"
        assert "(now: " in task["data"]["step_instruction_header"]
    assert prefilled(click, "step_instruction") != NEW_INSTRUCTION

    annotate(label_studio, click, *from_prediction(
        click, step_instruction=textarea("step_instruction", "screen", NEW_INSTRUCTION)))
    annotate(label_studio, focus, *from_prediction(focus))  # submitted as prefilled
    annotate(label_studio, typing, *from_prediction(
        typing, state=textarea("state", "screen", f"  {NEW_STATE}\n")))
    pulled = pull_chosen(label_studio, sample_store, project)
    rows = pulled["rows"]
    assert pulled["summary"].text_corrections == 2
    assert (rows[f"step:{NATIVE}:{CLICK}"]["step_instruction"],
            rows[f"step:{NATIVE}:{CLICK}"]["state"]) == (NEW_INSTRUCTION, None)
    assert (rows[f"step:{NATIVE}:{FOCUS}"]["step_instruction"],
            rows[f"step:{NATIVE}:{FOCUS}"]["state"]) == (None, None)
    assert (rows[f"step:{NATIVE}:{TYPING}"]["step_instruction"],
            rows[f"step:{NATIVE}:{TYPING}"]["state"]) == (None, NEW_STATE)

    # Stage 1: the window starting at each step carries the step's texts first.
    segment(sample_store)
    export(sample_store, tmp_path / "dist", params=ExportParams(flavours=("plain",)))
    # (any horizon: a window's first target is the step it starts at)
    windows = {r["step_index"]: r for split in load_fresh(tmp_path / "dist", "stage1").values()
               for r in split if r["episode_id"] == NATIVE}
    assert (windows[CLICK]["target_step_instructions"][0],
            windows[CLICK]["target_step_instruction_sources"][0]) == (NEW_INSTRUCTION, "human")
    assert windows[CLICK]["target_state_sources"][0] != "human"
    assert (windows[TYPING]["target_states"][0],
            windows[TYPING]["target_state_sources"][0]) == (NEW_STATE, "human")
    assert windows[TYPING]["target_step_instruction_sources"][0] != "human"
    assert "human" not in (windows[FOCUS]["target_step_instruction_sources"][0],
                           windows[FOCUS]["target_state_sources"][0])
    # Stage 2 rows carry the corrected instruction and its source too.
    steps = {r["step_index"]: r for split in load_fresh(tmp_path / "dist", "stage2").values()
             for r in split if r["episode_id"] == NATIVE}
    assert (steps[CLICK]["step_instruction"],
            steps[CLICK]["step_instruction_source"]) == (NEW_INSTRUCTION, "human")
    assert steps[FOCUS]["step_instruction_source"] != "human"

    # Stage 2: the executor is asked the corrected instruction, and says where it came from.
    execute(sample_store, executor="a11y")
    executions = {(r["episode_id"], r["step_index"]): r
                  for r in open_executions(sample_store) if r["episode_id"] == NATIVE}
    assert (executions[(NATIVE, CLICK)]["proposed"],
            executions[(NATIVE, CLICK)]["step_instruction_source"]) == (NEW_INSTRUCTION, "human")
    assert executions[(NATIVE, FOCUS)]["step_instruction_source"] != "human"

    # A new push shows the reviewer's text as the current one.
    again = project_name("texts-again")
    push(sample_store, project=again, url=label_studio.url, api_key=label_studio.token,
         filter_sql=f"episode_id = '{NATIVE}' AND step_index = {CLICK}")
    task = tasks_by_key(label_studio, again)[f"step:{NATIVE}:{CLICK}"]
    assert prefilled(task, "step_instruction") == NEW_INSTRUCTION
    assert "(now: human;" in task["data"]["step_instruction_header"]


def open_executions(store: Path) -> list[dict[str, Any]]:
    from curate.store.core import open_store

    return list(open_store(store).read("executions").to_pylist())


def test_a_project_made_before_the_text_boxes_is_pulled_and_upgraded_by_push(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    earlier = "\n".join(line for line in label_config("step").splitlines()
                        if not any(f'name="{name}"' in line for name in ADDED_CONTROLS["step"]))
    assert earlier != label_config("step")
    project = project_name("earlier")
    sdk(label_studio).projects.create(title=project, label_config=earlier)
    push(sample_store, project=project, url=label_studio.url, api_key=label_studio.token,
         filter_sql=f"episode_id = '{NATIVE}' AND step_index = {CLICK}")
    task = tasks_by_key(label_studio, project)[f"step:{NATIVE}:{CLICK}"]
    annotate(label_studio, task, choice("verdict", "accept"),
             textarea("step_instruction", "screen", NEW_INSTRUCTION))
    summary = pull(sample_store, project=project, url=label_studio.url,
                   api_key=label_studio.token)
    assert (summary.reviews, summary.text_corrections) == (1, 1)
    found = next(p for p in sdk(label_studio).projects.list() if p.title == project)
    assert 'name="step_instruction"' in str(sdk(label_studio).projects.get(
        id=int(found.id or 0)).label_config)
