"""Push -> annotate through the API as a reviewer would -> pull, against a real Label Studio."""

from __future__ import annotations

import itertools
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from label_studio_sdk import LabelStudio

from curate.review import (
    ReviewError,
    apply_action_corrections,
    apply_reviews_to_episodes,
    apply_reviews_to_labels,
    pull,
    push,
    read_reviews,
    review_exclusions,
    status,
)
from curate.review.client import connect, find_project, iter_tasks
from curate.review.table import reviews_path
from curate.store.core import open_store

from .conftest import LabelStudioServer

pytestmark = pytest.mark.slow
NATIVE = "1d2a3d40451cde2950be7353896efd60"  # examples/recordings/native/settings_rename
_names = itertools.count()


def project_name(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def sdk(server: LabelStudioServer) -> LabelStudio:
    return LabelStudio(base_url=server.url, api_key=server.token)


def tasks_by_key(server: LabelStudioServer, project: str) -> dict[str, dict[str, Any]]:
    connection = connect(server.url, server.token)
    found = find_project(connection, project)
    assert found is not None
    return {t["data"]["curate_key"]: t for t in iter_tasks(connection, int(found.id))}


def choice(name: str, value: str, to_name: str = "screen") -> dict[str, Any]:
    return {"from_name": name, "to_name": to_name, "type": "choices",
            "value": {"choices": [value]}}


def keypoint(x: float, y: float, size: tuple[int, int] = (480, 320)) -> dict[str, Any]:
    return {"id": "moved", "from_name": "point", "to_name": "screen", "type": "keypointlabels",
            "original_width": size[0], "original_height": size[1], "image_rotation": 0,
            "value": {"x": x, "y": y, "width": 1.0, "keypointlabels": ["click"]}}


def annotate(server: LabelStudioServer, task: dict[str, Any], *results: dict[str, Any]) -> None:
    sdk(server).annotations.create(id=int(task["id"]), result=list(results),
                                   was_cancelled=False)


def test_push_imports_tasks_with_the_recorded_action_as_prediction(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    project = project_name("steps")
    first = push(sample_store, project=project, url=label_studio.url,
                 api_key=label_studio.token, unit="step")
    again = push(sample_store, project=project, url=label_studio.url,
                 api_key=label_studio.token, unit="step")
    assert first.project_created and first.created == first.selected == 28
    assert again.created == 0 and again.already_present == 28 and not again.project_created
    task = tasks_by_key(label_studio, project)[f"step:{NATIVE}:0"]
    assert task["data"]["image"].startswith("data:image/png;base64,")
    regions = {r["from_name"]: r for r in task["predictions"][0]["result"]}
    # click(x=0.1021, y=0.2156) on a 480x320 frame, as percent of the image
    assert (regions["point"]["value"]["x"], regions["point"]["value"]["y"]) == (10.21, 21.56)
    assert regions["point"]["original_width"] == 480
    assert regions["verdict"]["value"]["choices"] == ["accept"]
    assert regions["action_type"]["value"]["choices"] == ["click"]


def test_filter_and_sample_choose_what_is_pushed(label_studio: LabelStudioServer,
                                                 sample_store: Path) -> None:
    summary = push(sample_store, project=project_name("filtered"), url=label_studio.url,
                   api_key=label_studio.token, filter_sql="action_type = 'click'", sample=3,
                   seed=1)
    assert summary.selected == summary.created == 3
    keys = tasks_by_key(label_studio, summary.project)
    assert all(t["data"]["action_text"].split(": ", 1)[1].startswith("click(")
               for t in keys.values())


def test_corrections_come_back_in_store_coordinates_and_replace_the_action(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    project = project_name("roundtrip")
    push(sample_store, project=project, url=label_studio.url, api_key=label_studio.token,
         filter_sql=f"episode_id = '{NATIVE}'")
    tasks = tasks_by_key(label_studio, project)
    # The reviewer moves the click of step 0 to the middle of the checkbox row and says fix,
    annotate(label_studio, tasks[f"step:{NATIVE}:0"], choice("verdict", "fix"),
             choice("action_type", "double_click"), keypoint(11.0, 22.0))
    # rejects step 3, and two reviewers disagree on step 1 (two accept, one reject).
    annotate(label_studio, tasks[f"step:{NATIVE}:3"], choice("verdict", "reject"))
    for verdict in ("accept", "reject", "accept"):
        annotate(label_studio, tasks[f"step:{NATIVE}:1"], choice("verdict", verdict))

    summary = pull(sample_store, project=project, url=label_studio.url,
                   api_key=label_studio.token)
    assert (summary.reviews, summary.corrections, summary.conflicts) == (5, 1, 1)
    reviews = read_reviews(open_store(sample_store))
    assert reviews is not None
    chosen = {r["item_key"]: r for r in reviews.to_pylist() if r["chosen"]}
    fixed = chosen[f"step:{NATIVE}:0"]
    assert fixed["reviewer"] == "reviewer@example.com"
    assert fixed["corrected_action_text"] == "double_click(x=0.11, y=0.22)"
    assert fixed["corrected_action"]["coord_space"] == "norm_1"
    assert chosen[f"step:{NATIVE}:3"]["on_path"] is False
    assert chosen[f"step:{NATIVE}:1"]["verdict"] == "accept"
    assert chosen[f"step:{NATIVE}:1"]["agreement"] == pytest.approx(2 / 3)

    store = open_store(sample_store)
    steps = apply_action_corrections(store.read("steps"), reviews)
    texts = {(r["episode_id"], r["step_index"]): r["action_text"] for r in steps.to_pylist()}
    assert texts[(NATIVE, 0)] == "double_click(x=0.11, y=0.22)"
    assert texts[(NATIVE, 1)] == "click(x=0.3542, y=0.3844)"  # accepted: unchanged
    labels = apply_reviews_to_labels(store.read("labels"), reviews)
    by_step = {(r["episode_id"], r["step_index"]): r for r in labels.to_pylist()}
    assert by_step[(NATIVE, 3)]["label_source"] == "human"
    assert by_step[(NATIVE, 3)]["on_path"] is False
    assert by_step[(NATIVE, 2)]["label_source"] == "heuristic"
    assert review_exclusions(reviews).steps == {(NATIVE, 3)}

    # The corrections flow into the exported dataset: segment and export prefer them.
    from conftest import load_fresh

    from curate.export import ExportParams, export
    from curate.pipeline.segment import segment

    segment(sample_store)
    dist = sample_store.parent / "reviewed_dist"
    export(sample_store, dist, params=ExportParams(flavours=("plain",)))
    rows = [r for split in load_fresh(dist, "stage2").values() for r in split
            if r["episode_id"] == NATIVE]
    exported = {r["step_index"]: r for r in rows}
    assert exported[0]["action_text"] == "double_click(x=0.11, y=0.22)"
    assert exported[0]["label_source"] == "human"
    assert 3 not in exported  # the reviewer rejected it
    windows = [r for split in load_fresh(dist, "stage1").values() for r in split
               if r["episode_id"] == NATIVE and r["step_index"] == 0]
    assert windows and windows[0]["target_action_texts"][0] == "double_click(x=0.11, y=0.22)"


def test_pulling_twice_writes_the_same_bytes(label_studio: LabelStudioServer,
                                             sample_store: Path) -> None:
    project = project_name("twice")
    push(sample_store, project=project, url=label_studio.url, api_key=label_studio.token,
         filter_sql=f"episode_id = '{NATIVE}'")
    annotate(label_studio, tasks_by_key(label_studio, project)[f"step:{NATIVE}:2"],
             choice("verdict", "accept"))
    first = pull(sample_store, project=project, url=label_studio.url,
                 api_key=label_studio.token)
    before = reviews_path(sample_store).read_bytes()
    second = pull(sample_store, project=project, url=label_studio.url,
                  api_key=label_studio.token)
    assert first.changed and not second.changed
    assert reviews_path(sample_store).read_bytes() == before


def test_wrong_token_and_unreachable_server_are_clear_errors(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    with pytest.raises(ReviewError, match=r"refused the API key .*--api-key"):
        push(sample_store, project="x", url=label_studio.url, api_key="0" * 40)
    with pytest.raises(ReviewError, match=r"cannot reach Label Studio at http://127\.0\.0\.1:9 "):
        pull(sample_store, project="x", url="http://127.0.0.1:9", api_key=label_studio.token)
    assert not reviews_path(sample_store).exists()


def test_missing_url_names_the_option_and_variable(sample_store: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    with pytest.raises(ReviewError, match="pass --url or set \\$LABEL_STUDIO_URL"):
        push(sample_store, project="x", api_key="k")


def test_pull_and_status_of_a_project_never_pushed_name_it(label_studio: LabelStudioServer,
                                                          sample_store: Path) -> None:
    project = project_name("never-pushed")
    with pytest.raises(ReviewError, match=r"no Label Studio project titled .*never-pushed.* "
                                          r"push to it first with `curate review push"):
        pull(sample_store, project=project, url=label_studio.url, api_key=label_studio.token)
    with pytest.raises(ReviewError, match=r"no Label Studio project titled .*never-pushed"):
        status(sample_store, project=project, url=label_studio.url, api_key=label_studio.token)
    assert not reviews_path(sample_store).exists()


def test_a_config_changed_by_hand_is_refused(label_studio: LabelStudioServer,
                                             sample_store: Path) -> None:
    project = project_name("hand-edited")
    summary = push(sample_store, project=project, url=label_studio.url,
                   api_key=label_studio.token, filter_sql=f"episode_id = '{NATIVE}'")
    edited = ('<View><Image name="screen" value="$image"/>'
              '<Choices name="quality" toName="screen"><Choice value="good"/></Choices></View>')
    sdk(label_studio).projects.update(id=summary.project_id, label_config=edited)
    for call in (pull, status):
        with pytest.raises(ReviewError, match=r"changed by hand .*Choices 'quality'"):
            call(sample_store, project=project, url=label_studio.url,
                 api_key=label_studio.token)
    with pytest.raises(ReviewError, match="changed by hand"):
        push(sample_store, project=project, url=label_studio.url, api_key=label_studio.token)


def test_deleted_tasks_and_vanished_steps_are_reported_not_applied(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    project = project_name("gone")
    summary = push(sample_store, project=project, url=label_studio.url,
                   api_key=label_studio.token, filter_sql=f"episode_id = '{NATIVE}'")
    tasks = tasks_by_key(label_studio, project)
    client = sdk(label_studio)
    client.tasks.delete(id=str(tasks[f"step:{NATIVE}:4"]["id"]))
    # A task about a step the store does not have (e.g. removed by a re-ingest).
    ghost = client.projects.import_tasks(summary.project_id, request=[{"data": {
        **tasks[f"step:{NATIVE}:0"]["data"], "curate_key": "step:0000:0"}}],
        return_task_ids=True)
    annotate(label_studio, {"id": ghost.task_ids[0]}, choice("verdict", "reject"))
    annotate(label_studio, tasks[f"step:{NATIVE}:0"], choice("verdict", "accept"))

    pulled = pull(sample_store, project=project, url=label_studio.url,
                  api_key=label_studio.token)
    assert pulled.deleted_tasks == [f"step:{NATIVE}:4"]
    assert [(s.item_key, s.reason.split(" (")[0]) for s in pulled.skipped] == [
        ("step:0000:0", "item no longer in the store")]
    reviews = read_reviews(open_store(sample_store))
    assert reviews is not None and reviews.column("item_key").to_pylist() == [
        f"step:{NATIVE}:0"]
    progress = status(sample_store, project=project, url=label_studio.url,
                      api_key=label_studio.token)
    assert (progress.tasks, progress.annotated, progress.deleted_tasks) == (5, 2, 1)
    assert progress.verdicts == {"accept": 1, "reject": 1}


def test_episode_review_overrides_outcome_and_usability(label_studio: LabelStudioServer,
                                                        sample_store: Path) -> None:
    project = project_name("episodes")
    push(sample_store, project=project, url=label_studio.url, api_key=label_studio.token,
         unit="episode", filter_sql=f"episode_id = '{NATIVE}'")
    task = tasks_by_key(label_studio, project)[f"episode:{NATIVE}"]
    assert len(task["data"]["steps"]) == 5
    annotate(label_studio, task, choice("outcome", "fail", "summary"),
             choice("usable", "unusable", "summary"))
    pull(sample_store, project=project, url=label_studio.url, api_key=label_studio.token)
    reviews = read_reviews(open_store(sample_store))
    episodes = apply_reviews_to_episodes(open_store(sample_store).read("episodes"), reviews)
    outcome = {r["episode_id"]: r["outcome"] for r in episodes.to_pylist()}
    assert outcome[NATIVE] == "fail"
    assert review_exclusions(reviews).episodes == {NATIVE}


def test_local_files_mode_serves_frames_from_the_document_root(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    project = project_name("local")
    push(sample_store, project=project, url=label_studio.url, api_key=label_studio.token,
         image_mode="local-files", local_files_root=label_studio.local_root,
         filter_sql=f"episode_id = '{NATIVE}' AND step_index = 0")
    image = tasks_by_key(label_studio, project)[f"step:{NATIVE}:0"]["data"]["image"]
    assert image.startswith("/data/local-files/?d=curate-frames/")
    request = urllib.request.Request(label_studio.url + image,
                                     headers={"Authorization": f"Token {label_studio.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert response.read()[:8] == b"\x89PNG\r\n\x1a\n"


def test_overrides_leave_tables_alone_without_reviews(sample_store: Path) -> None:
    store = open_store(sample_store)
    steps, labels = store.read("steps"), store.read("labels")
    assert apply_action_corrections(steps, None) is steps
    empty = pa.Table.from_pylist([], schema=read_schema())
    assert apply_reviews_to_labels(labels, empty) is labels


def read_schema() -> pa.Schema:
    from curate.store.schema import table_schema

    return table_schema("reviews")


def test_segment_review_overrides_consistency_low_ones_first(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    from curate.pipeline.segment import segment
    from curate.review import apply_reviews_to_segments

    segment(sample_store)
    segments = open_store(sample_store).read("segments")
    lowest = min(segments.to_pylist(), key=lambda r: (r["consistency"], r["segment_id"]))
    project = project_name("segments")
    summary = push(sample_store, project=project, url=label_studio.url,
                   api_key=label_studio.token, unit="segment", sample=2)
    tasks = tasks_by_key(label_studio, project)
    assert summary.created == 2 and f"segment:{lowest['segment_id']}" in tasks
    task = tasks[f"segment:{lowest['segment_id']}"]
    assert task["data"]["targets_text"].startswith("a_t+0: ")
    annotate(label_studio, task, choice("consistent", "consistent"),
             {"from_name": "consistency", "to_name": "screen", "type": "number",
              "value": {"number": 0.9}})
    pull(sample_store, project=project, url=label_studio.url, api_key=label_studio.token)
    reviewed = apply_reviews_to_segments(segments, read_reviews(open_store(sample_store)))
    row = next(r for r in reviewed.to_pylist() if r["segment_id"] == lowest["segment_id"])
    assert (row["consistency"], row["label_source"]) == (0.9, "human")
