"""The review package in pieces, without a server: task building (curate.review.tasks), result
parsing (curate.review.results and pull.review_rows) and override application
(curate.review.overrides). The annotations here have Label Studio's result shape — the same
dicts a task's prediction carries; the server round trip itself is tested in tests/review/
against a real Label Studio."""

from __future__ import annotations

import base64
import io
from typing import Any

import pyarrow as pa
import pytest
from PIL import Image

from curate.actions import Action, Target, format_action_text
from curate.actions.drawing import RING
from curate.review.agreement import krippendorff_alpha
from curate.review.images import ImageSource
from curate.review.items import StoreItems, step_key
from curate.review.overrides import (
    apply_action_corrections,
    apply_reviews_to_episodes,
    apply_reviews_to_labels,
    apply_reviews_to_segments,
    review_exclusions,
)
from curate.review.pull import PullSummary, review_rows
from curate.review.results import choice, textarea
from curate.review.tasks import episode_task, segment_task, step_task
from curate.store.frames import Frame
from curate.store.schema import table_schema


def grey_png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 200, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


FRAME = Frame("f0", "png", 480, 320, grey_png((480, 320)))
CLICK = Action("click", x=0.25, y=0.5, target=Target(text="OK", x0=0.2, y0=0.4, x1=0.3, y1=0.6))
REVIEWERS = {7: "alice", 8: "bob", 9: "carol"}


def store_items() -> StoreItems:
    episode = {"episode_id": "e1", "instruction": "press OK", "source_format": "native",
               "platform": "desktop", "outcome": "unknown", "step_count": 2}
    steps = {("e1", i): {"episode_id": "e1", "step_index": i, "action": action.to_row(),
                         "action_text": format_action_text(action), "frame_id": "f0",
                         "next_frame_id": None, "thought": None}
             for i, action in enumerate([CLICK, Action("wait", amount=1.0)])}
    labels = {("e1", 0): {"episode_id": "e1", "step_index": 0, "noop": False, "loop": True,
                          "on_path": False, "recovery": None, "label_source": "heuristic",
                          "evidence": "same screen twice"}}
    segments = {"s1": {"segment_id": "s1", "episode_id": "e1", "step_index": 0,
                       "frame_id": "f0", "instruction": "press OK", "history": [],
                       "target_action_texts": ["click(x=0.25, y=0.5)", "wait(1.0)"],
                       "target_actions": [CLICK.to_row(), Action("wait", amount=1.0).to_row()],
                       "target_next_frame_ids": ["f0", None], "mask": [True, False],
                       "consistency": 0.8,
                       "label_source": "heuristic", "end": False}}
    return StoreItems({"e1": episode}, steps, labels, segments)


def frame_of(frame_id: str | None) -> Frame:
    assert frame_id == "f0"
    return FRAME


def built_task(unit: str, key: str, items: StoreItems, task_id: int = 3) -> dict[str, Any]:
    builder = {"step": step_task, "segment": segment_task, "episode": episode_task}[unit]
    task = builder(items, key, frame_of, ImageSource("data-uri", None))
    return {"id": task_id, "project": 1, "data": task["data"], "annotations": [],
            "predictions": task["predictions"]}


def annotate(task: dict[str, Any], results: list[dict[str, Any]], *, annotation_id: int = 11,
             reviewer: int = 7, at: str = "2026-12-01T10:00:00Z") -> dict[str, Any]:
    task["annotations"].append({"id": annotation_id, "completed_by": reviewer,
                                "updated_at": at, "result": results,
                                "was_cancelled": False})
    return task


def pulled(tasks: list[dict[str, Any]], unit: str,
           items: StoreItems) -> tuple[list[dict[str, Any]], PullSummary]:
    summary = PullSummary("p", 1, unit)
    return review_rows(tasks, items, unit, summary, REVIEWERS), summary


def by_name(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        grouped.setdefault(result["from_name"], []).append(result)
    return grouped


def point(x: float, y: float, label: str = "click") -> dict[str, Any]:
    return {"id": f"p{x}", "from_name": "point", "to_name": "screen", "type": "keypointlabels",
            "value": {"x": x, "y": y, "width": 1.0, "keypointlabels": [label]}}


# ------------------------------------------------------------------------- task building


def test_a_step_task_carries_the_recorded_action_in_percent_and_its_labels() -> None:
    items = store_items()
    key = step_key("e1", 0)
    task = built_task("step", key, items)
    grouped = by_name(task["predictions"][0]["result"])
    [click] = grouped["point"]
    assert (click["value"]["x"], click["value"]["y"]) == (25.0, 50.0)
    assert (click["original_width"], click["original_height"]) == (480, 320)
    [box] = grouped["target"]
    assert {k: box["value"][k] for k in ("x", "y", "width", "height")} == {
        "x": 20.0, "y": 40.0, "width": 10.0, "height": 20.0}
    assert grouped["action_type"][0]["value"]["choices"] == ["click"]
    assert grouped["flags"][0]["value"]["choices"] == ["loop", "off_path"]
    assert task["data"]["curate_key"] == key
    assert task["data"]["curate_fingerprint"] == items.fingerprint(key)
    assert task["data"]["image"] == ("data:image/png;base64,"
                                     + base64.b64encode(FRAME.data).decode())
    assert "loop=yes" in task["data"]["labels_text"]


def test_a_step_without_labels_says_so_and_predicts_no_flags() -> None:
    task = built_task("step", step_key("e1", 1), store_items())
    grouped = by_name(task["predictions"][0]["result"])
    assert "flags" not in grouped and "point" not in grouped
    assert grouped["text"][0]["value"]["text"] == ["1.0"]  # a wait's box edits its amount
    assert "not computed" in task["data"]["labels_text"]


def test_segment_and_episode_tasks_show_what_the_reviewer_judges() -> None:
    items = store_items()
    segment = built_task("segment", "segment:s1", items)
    assert segment["data"]["targets_text"].splitlines()[1] == "a_t+1: wait(1.0)  (padding)"
    grouped = by_name(segment["predictions"][0]["result"])
    assert grouped["consistent"][0]["value"]["choices"] == ["consistent"]
    assert grouped["consistency"][0]["value"]["number"] == 0.8
    # every frame of the window: s_t with a_t drawn on it, then the screen after the window
    frames = segment["data"]["frames"]
    assert [f["caption"] for f in frames] == ["s_t+0 with a_t+0: click(x=0.25, y=0.5)",
                                              "s_t+1: the screen after the window"]
    drawn = Image.open(io.BytesIO(base64.b64decode(frames[0]["image"].partition(",")[2])))
    assert drawn.convert("RGB").getpixel((120, 160)) == RING["click"]  # the click point
    assert frames[1]["image"].endswith(base64.b64encode(FRAME.data).decode())  # undrawn
    assert segment["data"]["step_choices"] == [{"value": "a_t+0",
                                                "hint": "click(x=0.25, y=0.5)"}]
    episode = built_task("episode", "episode:e1", items)
    assert [s["caption"].split(":")[0] for s in episode["data"]["steps"]] == ["step 0",
                                                                               "step 1"]
    # an unknown recorded outcome is not offered as the prediction
    assert "outcome" not in by_name(episode["predictions"][0]["result"])


# ------------------------------------------------------------------------ result parsing


def test_accepting_the_prediction_as_it_is_is_an_accept_with_the_predicted_labels() -> None:
    items = store_items()
    task = built_task("step", step_key("e1", 0), items)
    annotate(task, task["predictions"][0]["result"])
    [row], summary = pulled([task], "step", items)
    assert (row["verdict"], row["corrected_action"], row["chosen"]) == ("accept", None, True)
    assert (row["loop"], row["on_path"], row["noop"]) == (True, False, False)
    assert row["reviewer"] == "alice" and summary.reviews == 1 and summary.skipped == []


def test_a_fix_that_moves_the_point_off_the_target_drops_the_target() -> None:
    items = store_items()
    task = annotate(built_task("step", step_key("e1", 0), items),
                    [choice("verdict", "screen", ["fix"]), point(80.0, 10.0)])
    [row], summary = pulled([task], "step", items)
    action = Action.from_row(row["corrected_action"])
    assert (action.x, action.y, action.target) == (0.8, 0.1, None)
    assert row["corrected_action_text"] == format_action_text(action)
    assert summary.corrections == 1


def test_a_fix_that_changes_the_type_keeps_only_that_types_fields() -> None:
    items = store_items()
    task = annotate(built_task("step", step_key("e1", 0), items),
                    [choice("verdict", "screen", ["fix"]),
                     choice("action_type", "screen", ["key"]),
                     textarea("text", "screen", "c + ctrl")])
    [row], _ = pulled([task], "step", items)
    action = Action.from_row(row["corrected_action"])
    assert (action.type, action.keys, action.x, action.target) == ("key", ("ctrl", "c"),
                                                                    None, None)


@pytest.mark.parametrize(("kind", "text", "reason"), [
    ("wait", "soon", "not a number"),
    ("tool_call", "{not json", "not JSON"),
])
def test_a_result_that_makes_no_valid_action_is_skipped_with_its_reason(
        kind: str, text: str, reason: str) -> None:
    items = store_items()
    task = annotate(built_task("step", step_key("e1", 1), items),
                    [choice("verdict", "screen", ["fix"]),
                     choice("action_type", "screen", [kind]),
                     textarea("text", "screen", text)])
    rows, summary = pulled([task], "step", items)
    assert rows == []
    [skip] = summary.skipped
    assert reason in skip.reason and skip.item_key == step_key("e1", 1)


def test_a_review_of_an_item_changed_or_gone_since_the_push_is_not_applied() -> None:
    items = store_items()
    changed = annotate(built_task("step", step_key("e1", 0), items, task_id=3),
                       [choice("verdict", "screen", ["reject"])])
    changed["data"] = {**changed["data"], "curate_fingerprint": "pushed-before-a-change"}
    gone = annotate(built_task("step", step_key("e1", 1), items, task_id=4),
                    [choice("verdict", "screen", ["reject"])])
    del items.steps[("e1", 1)]
    foreign = annotate({"id": 5, "project": 1, "data": {}, "annotations": []}, [])
    rows, summary = pulled([changed, gone, foreign], "step", items)
    assert rows == []
    reasons = [skip.reason for skip in summary.skipped]
    assert "changed in the store" in reasons[0]
    assert "no longer in the store" in reasons[1]
    assert "not pushed by curate" in reasons[2]


def test_conflicting_annotations_majority_first_then_the_latest() -> None:
    items = store_items()
    task = built_task("step", step_key("e1", 0), items)
    for annotation_id, (reviewer, verdict, at) in enumerate(
            [(7, "accept", "2026-12-01T12:00:00Z"), (8, "reject", "2026-12-01T10:00:00Z"),
             (9, "reject", "2026-12-01T11:00:00Z")], start=20):
        annotate(task, [choice("verdict", "screen", [verdict])],
                 annotation_id=annotation_id, reviewer=reviewer, at=at)
    rows, summary = pulled([task], "step", items)
    [winner] = [row for row in rows if row["chosen"]]
    # the majority (reject) wins over the latest (accept); of the rejects, the latest counts
    assert (winner["verdict"], winner["reviewer"]) == ("reject", "carol")
    assert winner["agreement"] == pytest.approx(2 / 3) and summary.conflicts == 1
    # one task, one dissent: alpha says no better than chance (percent agreement 2/3)
    assert summary.alpha == pytest.approx(0.0)
    # a tie goes to the latest decision
    task["annotations"].pop(1)
    rows, _ = pulled([task], "step", items)
    assert [row["verdict"] for row in rows if row["chosen"]] == ["accept"]


def test_segment_consistency_from_the_number_or_the_choice_and_checked() -> None:
    items = store_items()
    number = annotate(built_task("segment", "segment:s1", items),
                      [{"from_name": "consistency", "type": "number", "value": {"number": 0.3}}])
    [row], _ = pulled([number], "segment", items)
    assert row["consistency"] == 0.3 and row["segment_id"] == "s1"
    only_choice = annotate(built_task("segment", "segment:s1", items),
                           [choice("consistent", "screen", ["inconsistent"])])
    [row], _ = pulled([only_choice], "segment", items)
    assert row["consistency"] == 0.0
    outside = annotate(built_task("segment", "segment:s1", items),
                       [{"from_name": "consistency", "type": "number", "value": {"number": 1.5}}])
    rows, summary = pulled([outside], "segment", items)
    assert rows == [] and "outside [0, 1]" in summary.skipped[0].reason


def test_first_wrong_step_is_read_from_the_window_and_checked() -> None:
    items = store_items()
    marked = annotate(built_task("segment", "segment:s1", items),
                      [choice("first_wrong", "targets", ["a_t+0"]),
                       choice("consistent", "targets", ["inconsistent"])])
    [row], _ = pulled([marked], "segment", items)
    assert (row["first_wrong_step"], row["consistency"]) == (0, 0.0)
    none_marked = annotate(built_task("segment", "segment:s1", items),
                           [choice("consistent", "targets", ["consistent"])])
    [row], _ = pulled([none_marked], "segment", items)
    assert row["first_wrong_step"] is None
    padding = annotate(built_task("segment", "segment:s1", items),
                       [choice("first_wrong", "targets", ["a_t+1"])])  # a_t+1 is padding
    rows, summary = pulled([padding], "segment", items)
    assert rows == [] and "not a real step of the window" in summary.skipped[0].reason


def test_krippendorff_alpha_against_hand_computed_values() -> None:
    # 2 reviewers, 4 tasks, one disagreement: coincidences aa 2, ab 1, ba 1, bb 4 (n = 8);
    # alpha = 1 - (n - 1) * 2 / (3 * 5 + 5 * 3) = 16 / 30, below percent agreement (3/4)
    assert krippendorff_alpha([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]) == \
        pytest.approx(16 / 30)
    assert krippendorff_alpha([["a", "a"], ["b", "b", "b"], ["a", "a"]]) == 1.0
    # always disagreeing is worse than chance
    alpha = krippendorff_alpha([["a", "b"], ["b", "a"]])
    assert alpha is not None and alpha < 0
    # no pairs (one annotation per task) or no variation: undefined, not 1.0
    assert krippendorff_alpha([["a"], ["b"]]) is None
    assert krippendorff_alpha([["a", "a"], ["a", "a"]]) is None
    # a missing decision is left out, not counted as a value
    assert krippendorff_alpha([["a", None, "a"], ["b", "b"]]) == 1.0


# ---------------------------------------------------------------------- override application


def reviews_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=table_schema("reviews"))


def labels_table() -> pa.Table:
    return pa.Table.from_pylist([
        {"episode_id": "e1", "step_index": i, "noop": False, "loop": True, "on_path": True,
         "recovery": False, "label_source": "heuristic", "evidence": "heuristic says so"}
        for i in range(2)])


def test_reviewed_labels_and_actions_replace_the_heuristic_ones_only_where_reviewed() -> None:
    items = store_items()
    task = built_task("step", step_key("e1", 0), items)
    # As the UI submits it: the predicted box is still on the canvas, the point moved.
    box = next(r for r in task["predictions"][0]["result"] if r["from_name"] == "target")
    annotate(task, [choice("verdict", "screen", ["fix"]), point(22.0, 45.0), box,
                    choice("flags", "screen", ["noop"])])
    reviews = reviews_table(pulled([task], "step", items)[0])
    labels = apply_reviews_to_labels(labels_table(), reviews).to_pylist()
    assert labels[0] | {"evidence": None} == {
        "episode_id": "e1", "step_index": 0, "noop": True, "loop": False, "on_path": True,
        "recovery": False, "label_source": "human", "evidence": None}
    assert labels[0]["evidence"] == "reviewed by alice (fix); heuristic: heuristic says so"
    assert labels[1] == labels_table().to_pylist()[1]
    rows = [items.steps[("e1", i)] for i in range(2)]
    schema = pa.schema([table_schema("steps").field(name) for name in rows[0]])
    steps = pa.Table.from_pylist(rows, schema=schema)
    corrected = apply_action_corrections(steps, reviews).to_pylist()
    action = Action.from_row(corrected[0]["action"])
    assert (action.x, action.y, action.target) == (0.22, 0.45, CLICK.target)  # still inside
    assert corrected[0]["action_text"] == format_action_text(action)
    assert corrected[1] == steps.to_pylist()[1]


def test_without_reviews_every_table_comes_back_as_it_was() -> None:
    labels = labels_table()
    assert apply_reviews_to_labels(labels, None) is labels
    assert apply_action_corrections(labels, reviews_table([])) is labels
    assert review_exclusions(None).steps == set()


def test_rejections_segment_and_episode_reviews_are_applied() -> None:
    items = store_items()
    step = annotate(built_task("step", step_key("e1", 1), items, task_id=3),
                    [choice("verdict", "screen", ["reject"])])
    segment = annotate(built_task("segment", "segment:s1", items, task_id=4),
                       [{"from_name": "consistency", "type": "number", "value": {"number": 0.1}},
                        choice("verdict", "screen", ["reject"])], annotation_id=12)
    episode = annotate(built_task("episode", "episode:e1", items, task_id=5),
                       [choice("outcome", "summary", ["fail"]),
                        choice("usable", "summary", ["unusable"])], annotation_id=13)
    rows = [*pulled([step], "step", items)[0], *pulled([segment], "segment", items)[0],
            *pulled([episode], "episode", items)[0]]
    reviews = reviews_table(rows)
    excluded = review_exclusions(reviews)
    assert (excluded.steps, excluded.segments, excluded.episodes) == (
        {("e1", 1)}, {"s1"}, {"e1"})
    segments = pa.Table.from_pylist([{"segment_id": "s1", "consistency": 0.8,
                                      "mask": [True, True], "label_source": "heuristic"}])
    assert apply_reviews_to_segments(segments, reviews).to_pylist() == [
        {"segment_id": "s1", "consistency": 0.1, "mask": [True, True], "label_source": "human"}]
    # a first wrong step masks it and the steps after it, in that window only
    wrong = reviews_table([{**rows[1], "first_wrong_step": 1}])
    assert apply_reviews_to_segments(segments, wrong).column("mask").to_pylist() == [
        [True, False]]
    episodes = pa.Table.from_pylist([{"episode_id": "e1", "outcome": "unknown"}])
    assert apply_reviews_to_episodes(episodes, reviews).to_pylist() == [
        {"episode_id": "e1", "outcome": "fail"}]
