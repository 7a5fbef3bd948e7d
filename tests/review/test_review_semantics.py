"""Each row of the reviewer-action table in docs/review.md, against a real Label Studio.

Annotations are made the way the UI makes them: starting from the task's prediction (the
reviewer edits what curate pre-filled), with a group whose every choice was unticked left out
and a deleted region simply absent. Then pull, and the store must hold what the reviewer did.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import NativeFactory

from curate.review import apply_action_corrections, apply_reviews_to_labels, pull, push
from curate.review import read_reviews as read_review_table
from curate.store.core import open_store

from .conftest import LabelStudioServer
from .test_review_roundtrip import NATIVE, annotate, choice, keypoint, project_name, tasks_by_key

pytestmark = pytest.mark.slow
CLICK, FOCUS, TYPING = 0, 1, 2  # settings_rename: checkbox click, click into a field, typing


def push_native(server: LabelStudioServer, store: Path, prefix: str) -> tuple[str, dict[
        str, dict[str, Any]]]:
    project = project_name(prefix)
    push(store, project=project, url=server.url, api_key=server.token,
         filter_sql=f"episode_id = '{NATIVE}'")
    return project, tasks_by_key(server, project)


def from_prediction(task: dict[str, Any], *, drop: tuple[str, ...] = (),
                    **replace: dict[str, Any]) -> list[dict[str, Any]]:
    """The prediction's results as the UI submits them after the reviewer's edits: the
    controls in ``drop`` removed (a deleted region, an unticked group), others replaced."""
    results = [copy.deepcopy(r) for r in task["predictions"][0]["result"]
               if r["from_name"] not in drop and r["from_name"] not in replace]
    return results + list(replace.values())


def pull_chosen(server: LabelStudioServer, store: Path, project: str) -> dict[str, Any]:
    summary = pull(store, project=project, url=server.url, api_key=server.token)
    reviews = read_review_table(open_store(store))
    rows = {r["item_key"]: r for r in reviews.to_pylist() if r["chosen"]} if reviews else {}
    return {"summary": summary, "rows": rows, "table": reviews}


def test_unticking_every_flag_records_none_not_the_heuristic(
        label_studio: LabelStudioServer, native_episode: NativeFactory, tmp_path: Path) -> None:
    from curate.pipeline.ingest import ingest
    from curate.pipeline.label import label

    # step 1 clicks and nothing changes (the same frame): the heuristics call it noop and
    # off the path
    native_episode("stuck", steps=[
        {"action": {"type": "click", "px": 32, "py": 24}, "frame": "frames/0.png",
         "next_frame": "frames/1.png"},
        {"action": {"type": "click", "px": 10, "py": 10}, "frame": "frames/1.png",
         "next_frame": "frames/1.png"},
        {"action": "done()", "frame": "frames/1.png"}])
    store = tmp_path / "store"
    ingest([tmp_path / "recordings"], store)
    label(store)
    [episode] = open_store(store).read("episodes").column("episode_id").to_pylist()
    project = project_name("cleared")
    push(store, project=project, url=label_studio.url, api_key=label_studio.token,
         filter_sql=f"episode_id = '{episode}' AND step_index = 1")
    key = f"step:{episode}:1"
    task = tasks_by_key(label_studio, project)[key]
    flags = [r for r in task["predictions"][0]["result"] if r["from_name"] == "flags"]
    assert flags and set(flags[0]["value"]["choices"]) == {"noop", "off_path"}  # heuristic
    annotate(label_studio, task, *from_prediction(task, drop=("flags",)))
    pulled = pull_chosen(label_studio, store, project)
    row = pulled["rows"][key]
    assert (row["noop"], row["loop"], row["on_path"], row["recovery"]) == (
        False, False, True, False)
    labels = apply_reviews_to_labels(open_store(store).read("labels"), pulled["table"])
    step = next(r for r in labels.to_pylist() if r["step_index"] == 1)
    assert (step["noop"], step["on_path"], step["label_source"]) == (False, True, "human")


def test_a_moved_point_drops_the_predicted_box_it_left(label_studio: LabelStudioServer,
                                                      sample_store: Path) -> None:
    project, tasks = push_native(label_studio, sample_store, "moved")
    task = tasks[f"step:{NATIVE}:{CLICK}"]
    # The reviewer deletes the predicted point, places one far from the checkbox, says fix;
    # the predicted box stays on the canvas (they did not touch it).
    annotate(label_studio, task, *from_prediction(
        task, point=keypoint(50.0, 50.0), verdict=choice("verdict", "fix")))
    row = pull_chosen(label_studio, sample_store, project)["rows"][f"step:{NATIVE}:{CLICK}"]
    assert row["corrected_action"]["x"] == 0.5 and row["corrected_action"]["target"] is None


def test_a_box_redrawn_around_the_moved_point_is_kept_and_a_deleted_box_is_gone(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    project, tasks = push_native(label_studio, sample_store, "redrawn")
    redrawn = {"id": "box", "from_name": "target", "to_name": "screen",
               "type": "rectanglelabels", "original_width": 480, "original_height": 320,
               "image_rotation": 0, "value": {"x": 40.0, "y": 40.0, "width": 20.0,
                                              "height": 20.0, "rotation": 0,
                                              "rectanglelabels": ["target"]}}
    moved = tasks[f"step:{NATIVE}:{CLICK}"]
    annotate(label_studio, moved, *from_prediction(
        moved, point=keypoint(50.0, 50.0), target=redrawn, verdict=choice("verdict", "fix")))
    # On the Save click the reviewer keeps the point and deletes the box.
    save = tasks[f"step:{NATIVE}:3"]
    annotate(label_studio, save, *from_prediction(save, drop=("target",),
                                                  verdict=choice("verdict", "fix")))
    rows = pull_chosen(label_studio, sample_store, project)["rows"]
    box = rows[f"step:{NATIVE}:{CLICK}"]["corrected_action"]["target"]
    assert (box["x0"], box["y0"], box["x1"], box["y1"]) == (0.4, 0.4, 0.6, 0.6)
    assert box["text"] is None  # a redrawn box no longer names the checkbox
    assert rows[f"step:{NATIVE}:3"]["corrected_action"]["target"] is None
    kept = apply_action_corrections(open_store(sample_store).read("steps"),
                                    read_review_table(open_store(sample_store)))
    save_step = next(r for r in kept.to_pylist()
                     if (r["episode_id"], r["step_index"]) == (NATIVE, 3))
    assert save_step["action"]["target"] is None


def test_a_box_left_as_predicted_keeps_the_element_it_names(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    project, tasks = push_native(label_studio, sample_store, "kept")
    task = tasks[f"step:{NATIVE}:{CLICK}"]
    annotate(label_studio, task, *from_prediction(task, point=keypoint(11.0, 22.0),
                                                  verdict=choice("verdict", "fix")))
    row = pull_chosen(label_studio, sample_store, project)["rows"][f"step:{NATIVE}:{CLICK}"]
    assert row["corrected_action"]["target"]["text"] == "Enable sync"


def test_relations_are_read_past_and_bad_results_are_reported_with_the_task(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    project, tasks = push_native(label_studio, sample_store, "bad")
    click, focus, typing = (tasks[f"step:{NATIVE}:{i}"] for i in (CLICK, FOCUS, TYPING))
    relation = {"from_id": "point-click", "to_id": "target-target", "type": "relation",
                "direction": "right"}
    annotate(label_studio, click, *from_prediction(click), relation)
    polygon = {"id": "poly", "from_name": "point", "to_name": "screen",
               "type": "polygonlabels", "value": {"points": [[1, 1], [2, 2], [3, 1]],
                                                  "polygonlabels": ["click"]}}
    annotate(label_studio, focus, *from_prediction(focus, point=polygon))
    annotate(label_studio, tasks[f"step:{NATIVE}:3"], *from_prediction(
        tasks[f"step:{NATIVE}:3"], point=keypoint(120.0, 50.0), verdict=choice("verdict", "fix")))
    annotate(label_studio, typing, *from_prediction(typing, drop=("text",),
                                                    verdict=choice("verdict", "fix")))
    pulled = pull_chosen(label_studio, sample_store, project)
    reasons = {s.task_id: s.reason for s in pulled["summary"].skipped}
    assert "'polygonlabels' result from control 'point'" in reasons[int(focus["id"])]
    assert "outside the image" in reasons[int(tasks[f"step:{NATIVE}:3"]["id"])]
    assert "corrected text of a type action is empty" in reasons[int(typing["id"])]
    assert set(pulled["rows"]) == {f"step:{NATIVE}:{CLICK}"}  # the rest changed nothing


def test_validate_rejects_a_human_click_outside_its_own_box(sample_store: Path,
                                                            tmp_path: Path) -> None:
    from curate.export import ExportParams, export
    from curate.export.validate import validate
    from curate.pipeline.segment import segment

    segment(sample_store)
    dist = tmp_path / "dist"
    export(sample_store, dist, params=ExportParams(flavours=("plain",)))
    assert validate(dist, images=False).ok
    path = next((dist / "data" / "stage2").rglob("*.parquet"))
    table = pq.read_table(path)
    rows = table.to_pylist()
    index = next(i for i, r in enumerate(rows) if (r["action"]["target"] or {}).get("x0"))
    rows[index]["label_source"] = "human"
    rows[index]["action"]["x"] = min(1.0, rows[index]["action"]["target"]["x1"] + 0.1)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    report = validate(dist, images=False)
    assert not report.ok
    assert any("outside its own target box" in p for p in report.problems)


def test_export_after_a_pull_refuses_stale_segments_and_masks_the_rejected_step(
        label_studio: LabelStudioServer, sample_store: Path, tmp_path: Path) -> None:
    from conftest import load_fresh

    from curate.errors import CurateError
    from curate.export import ExportParams, export
    from curate.pipeline.segment import segment

    segment(sample_store)
    project, tasks = push_native(label_studio, sample_store, "stale")
    annotate(label_studio, tasks[f"step:{NATIVE}:{TYPING}"], choice("verdict", "reject"))
    pull(sample_store, project=project, url=label_studio.url, api_key=label_studio.token)
    params = ExportParams(flavours=("plain",))
    with pytest.raises(CurateError, match=rf"consistency is stale; run `curate segment "
                                          rf"{sample_store}`"):
        export(sample_store, tmp_path / "stale", params=params)
    assert not (tmp_path / "stale").exists()

    segment(sample_store)
    export(sample_store, tmp_path / "dist", params=params)
    windows = [r for split in load_fresh(tmp_path / "dist", "stage1").values() for r in split
               if r["episode_id"] == NATIVE]
    reaching = [w for w in windows if w["step_index"] <= TYPING < w["step_index"] + len(
        w["mask"])]
    assert reaching, "windows that reach the rejected step"
    for window in reaching:
        assert window["mask"][TYPING - window["step_index"]] is False, window["id"]
    assert any(w["step_index"] < TYPING for w in reaching)  # earlier windows masked too


def test_opposite_verdicts_in_two_projects_are_reported_and_the_latest_applies(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    from curate.review import status

    first, first_tasks = push_native(label_studio, sample_store, "round-a")
    second, second_tasks = push_native(label_studio, sample_store, "round-b")
    key = f"step:{NATIVE}:{CLICK}"
    annotate(label_studio, first_tasks[key], choice("verdict", "accept"))
    annotate(label_studio, second_tasks[key], choice("verdict", "reject"))
    pull(sample_store, project=first, url=label_studio.url, api_key=label_studio.token)
    pulled = pull(sample_store, project=second, url=label_studio.url,
                  api_key=label_studio.token)
    assert pulled.conflicts == 0  # within the project, one annotation
    [conflict] = pulled.cross_project_conflicts
    assert conflict.item_key == key and dict(conflict.decisions) == {first: "accept",
                                                                     second: "reject"}
    assert conflict.applied == second
    seen = status(sample_store, project=first, url=label_studio.url, api_key=label_studio.token)
    assert [c.item_key for c in seen.cross_project_conflicts] == [key]
    from curate.review import review_exclusions

    assert review_exclusions(read_review_table(open_store(sample_store))).steps == {
        (NATIVE, CLICK)}
