"""K-step forecast windows: padding, masks, endings, history, stride, consistency."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import SegmentParams, segment
from curate.store.core import open_store


def tool_episode(root: Path, name: str, calls: list[str], *, terminated: bool) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "episode.json").write_text(json.dumps(
        {"curate_native": 1, "platform": "tool", "instruction": f"do {name}",
         "terminated": terminated, "truncated": not terminated}))
    (folder / "steps.jsonl").write_text("".join(json.dumps({"action": c}) + "\n" for c in calls))


def call(query: str) -> str:
    return f'tool_call(name="search", args={{"q": "{query}"}})'


def segments_of(store: Path) -> dict[tuple[str, int, int], dict]:
    rows = [r for p in open_store(store).files("segments") for r in pq.read_table(p).to_pylist()]
    instruction = {e["episode_id"]: e["instruction"] for e in
                   open_store(store).read_episodes().to_pylist()}
    return {(instruction[r["episode_id"]], r["step_index"], r["horizon"]): r for r in rows}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "rec"
    tool_episode(root, "straight", [call("a"), call("b"), call("c"), 'answer(text="ok")'],
                 terminated=True)
    # Step 1 repeats step 0's call: a loop, cut from the path.
    tool_episode(root, "detour", [call("a"), call("a"), call("b"), call("c")], terminated=False)
    ingest([root], tmp_path / "store")
    label(tmp_path / "store")
    return tmp_path / "store"


def test_one_window_per_step_and_horizon_with_done_padding(store: Path) -> None:
    segment(store, params=SegmentParams(horizons=(1, 3), stride=1, history=2))
    windows = segments_of(store)
    assert len(windows) == 2 * 4 * 2
    last = windows[("do straight", 3, 3)]
    assert last["target_action_texts"] == ['answer(text="ok")', "done()", "done()"]
    assert last["mask"] == [True, False, False]
    assert last["target_next_frame_ids"][1:] == [None, None]
    assert windows[("do straight", 0, 3)]["end"] == "within"


def test_truncated_and_terminated_endings_are_kept_apart(store: Path) -> None:
    segment(store, params=SegmentParams(horizons=(3,)))
    windows = segments_of(store)
    assert windows[("do straight", 2, 3)]["end"] == "terminated"
    assert windows[("do detour", 2, 3)]["end"] == "truncated"


def test_history_holds_the_last_h_actions_oldest_first(store: Path) -> None:
    segment(store, params=SegmentParams(horizons=(1,), history=2))
    windows = segments_of(store)
    assert windows[("do straight", 0, 1)]["history"] == []
    assert windows[("do straight", 3, 1)]["history"] == [call("b"), call("c")]


def test_stride_skips_start_steps(store: Path) -> None:
    segment(store, params=SegmentParams(horizons=(2,), stride=2))
    assert sorted(t for (name, t, _) in segments_of(store) if name == "do straight") == [0, 2]


def test_consistency_is_one_on_the_path_and_lower_across_a_detour(store: Path) -> None:
    segment(store, params=SegmentParams(horizons=(3,)))
    windows = segments_of(store)
    assert all(windows[("do straight", t, 3)]["consistency"] == 1.0 for t in range(4))
    detour = windows[("do detour", 0, 3)]["consistency"]
    assert 0.0 <= detour < 1.0
    assert windows[("do detour", 2, 3)]["consistency"] == 1.0  # past the detour


def test_segments_need_labels_and_sane_parameters(tmp_path: Path, native_episode) -> None:
    native_episode("a")
    ingest([tmp_path / "recordings"], tmp_path / "store")
    with pytest.raises(CurateError, match="run `curate label"):
        segment(tmp_path / "store")
    with pytest.raises(CurateError, match="horizon"):
        segment(tmp_path / "store", params=SegmentParams(horizons=(0,)))


def test_resegmenting_with_the_same_parameters_is_a_no_op(store: Path) -> None:
    first = segment(store)
    second = segment(store)
    assert first.batches_segmented == 1 and second.batches_current == 1
    assert second.segments == first.segments


def test_steps_out_of_order_and_labels_that_do_not_line_up_are_joined_by_key() -> None:
    import numpy as np
    import pyarrow as pa

    from curate.actions import Action
    from curate.pipeline.segment import _prepare
    from curate.store.schema import struct_type

    steps = pa.table({
        "episode_id": ["b", "a", "a", "b"], "step_index": [1, 1, 0, 0],
        "action": pa.array([Action("wait").to_row()] * 4, struct_type("action")),
        "action_text": ["b1", "a1", "a0", "b0"],
        "frame_id": [None] * 4, "next_frame_id": [None] * 4,
    })
    # Labels in another order, and step b:1 has none (it counts as on the path, heuristic).
    labels = pa.table({"episode_id": ["b", "a", "a"], "step_index": [0, 0, 1],
                       "on_path": [False, True, False],
                       "label_source": ["human", "heuristic", "heuristic"]})
    prepared = _prepare(steps, labels)
    assert prepared.take("action_text", np.arange(4)).to_pylist() == ["a0", "a1", "b0", "b1"]
    assert prepared.on_path.tolist() == [True, False, False, True]
    assert prepared.sources.to_pylist() == ["heuristic", "heuristic", "human", "heuristic"]
    assert prepared.start.tolist() == [0, 0, 2, 2]
    assert prepared.end.tolist() == [2, 2, 4, 4]


def test_a_batch_whose_every_episode_was_rejected_gets_an_empty_segments_file(
        tmp_path: Path) -> None:
    tool_episode(tmp_path / "rec", "broken", [], terminated=True)
    (tmp_path / "rec" / "broken" / "steps.jsonl").write_text("not json\n")
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    summary = segment(tmp_path / "store")
    assert summary.batches_segmented == 1
    assert summary.segments == 0
    (path,) = open_store(tmp_path / "store").files("segments")
    assert pq.read_table(path).num_rows == 0


def test_labels_with_two_rows_for_one_step_are_refused() -> None:
    import pyarrow as pa

    from curate.errors import CurateError
    from curate.pipeline.segment import _prepare

    steps = pa.table({"episode_id": ["a", "a"], "step_index": [0, 1],
                      "action": [{"type": "wait"}] * 2, "action_text": ["a0", "a1"],
                      "frame_id": [None] * 2, "next_frame_id": [None] * 2})
    labels = pa.table({"episode_id": ["a", "a", "a"], "step_index": [0, 1, 1],
                       "on_path": [True, True, False],
                       "label_source": ["heuristic"] * 3})
    with pytest.raises(CurateError, match="several rows for one step"):
        _prepare(steps, labels)


def test_target_columns_taken_field_by_field_equal_arrows_take() -> None:
    import pyarrow as pa

    from curate.actions import Action
    from curate.pipeline.segment import DONE_ROW, _padded

    rows = [Action("click", x=0.1, y=0.2).to_row(), Action("type", text="hi").to_row(),
            {**Action("click", x=0.5, y=0.5).to_row(),
             "target": {"text": "OK", "role": "button", "x0": 0.4, "y0": 0.4, "x1": 0.6,
                        "y1": 0.6, "element_id": None}}]
    column = pa.array(rows)
    indices = [2, 0, 3, 3, 1, 2]  # 3: the padding
    expected = pa.concat_arrays([column, pa.array([DONE_ROW]).cast(column.type)]).take(
        pa.array(indices))
    got = _padded(column, pa.array([DONE_ROW]), np.array(indices))
    assert got.equals(expected) and got.type == expected.type
    assert got.to_pylist()[2] == Action("done").to_row()
    # A struct with null rows is taken by Arrow itself (children do not carry its nulls).
    holes = pa.array([rows[0], None, rows[1]])
    assert _padded(holes, pa.array([DONE_ROW]), np.array([1, 3, 0])).to_pylist() == [
        None, Action("done").to_row(), rows[0]]


def test_horizons_parse_as_a_number_of_steps_or_end() -> None:
    from curate.pipeline.segment import END, parse_horizon, sorted_horizons

    assert parse_horizon(" END ") == END
    assert parse_horizon("10") == 10
    assert parse_horizon(1) == 1
    for bad, message in ((0, "at least 1"), ("-2", "at least 1"), ("ten", "'ten'")):
        with pytest.raises(CurateError, match=message):
            parse_horizon(bad)
    assert sorted_horizons((END, 10, 3, 10)) == (3, 10, END)


@pytest.mark.parametrize(("params", "option"), [
    (SegmentParams(horizons=()), "--horizon"),
    (SegmentParams(horizons=("END",)), "horizon 'END'"),  # unparsed: a recipe's typo
    (SegmentParams(max_horizon=0), "--max-horizon"),
    (SegmentParams(stride=0), "--stride"),
    (SegmentParams(history=-1), "--history"),
])
def test_each_bad_parameter_is_refused_by_its_own_name(params: SegmentParams,
                                                       option: str) -> None:
    with pytest.raises(CurateError, match=option):
        params.check()


def test_the_smallest_sane_parameters_are_accepted() -> None:
    SegmentParams(horizons=(1, "end"), stride=1, history=0, max_horizon=1).check()


def test_every_parameter_is_part_of_what_makes_segments_current() -> None:
    from curate.pipeline.segment import SEGMENT_VERSION

    base = SegmentParams()
    recorded = base.as_dict()
    assert recorded["version"] == SEGMENT_VERSION
    assert recorded["horizons"] == [3] and recorded["stride"] == 1
    assert recorded["history"] == 4 and recorded["max_horizon"] == 50
    assert "labels" in recorded
    for changed in (SegmentParams(horizons=(3, 5)), SegmentParams(stride=2),
                    SegmentParams(history=2), SegmentParams(max_horizon=9)):
        assert changed.as_dict() != recorded


def annotated_steps() -> tuple[pa.Table, pa.Table]:
    from curate.actions import Action
    from curate.store.schema import struct_type

    steps = pa.table({
        "episode_id": ["a", "a", "a"], "step_index": [0, 1, 2],
        "action": pa.array([Action("wait").to_row()] * 3, struct_type("action")),
        "action_text": ["a0", "a1", "a2"], "frame_id": [None] * 3,
        "next_frame_id": [None] * 3,
    })
    labels = pa.table({"episode_id": ["a"] * 3, "step_index": [0, 1, 2],
                       "on_path": [True] * 3, "label_source": ["heuristic"] * 3})
    return steps, labels


def test_model_annotations_are_joined_by_step_and_blank_ones_fall_back() -> None:
    from curate.pipeline.segment import _prepare

    steps, labels = annotated_steps()
    # Out of order, step 1 not annotated, step 0's state blank.
    annotations = pa.table({"episode_id": ["a", "a"], "step_index": [2, 0],
                            "step_instruction": ["press the last", "wait first"],
                            "state": ["the end screen", " "]})
    texts = _prepare(steps, labels, annotations).texts
    assert texts["step_instruction"].to_pylist()[0] == "wait first"
    assert texts["step_instruction"].to_pylist()[2] == "press the last"
    assert texts["step_instruction_source"].to_pylist() == ["model", "derived", "model"]
    assert texts["state"].to_pylist()[2] == "the end screen"
    assert texts["state_source"].to_pylist()[2] == "model"
    assert texts["state_source"].to_pylist()[0] != "model"
    # An empty annotations table is no annotations at all.
    without = _prepare(steps, labels).texts
    empty = _prepare(steps, labels, annotations.slice(0, 0)).texts
    assert {k: v.to_pylist() for k, v in empty.items()} == {
        k: v.to_pylist() for k, v in without.items()}
    assert "model" not in without["step_instruction_source"].to_pylist()


def test_annotations_with_two_rows_for_one_step_are_refused() -> None:
    from curate.pipeline.segment import _prepare

    steps, labels = annotated_steps()
    annotations = pa.table({"episode_id": ["a", "a"], "step_index": [1, 1],
                            "step_instruction": ["one", "two"],
                            "state": pa.array([None, None], pa.string())})
    with pytest.raises(CurateError, match="curate annotate --force"):
        _prepare(steps, labels, annotations)


def test_labels_without_a_source_count_as_heuristic() -> None:
    from curate.pipeline.segment import _prepare

    steps, _ = annotated_steps()
    labels = pa.table({"episode_id": ["a"] * 3, "step_index": [0, 1, 2],
                       "on_path": [True, None, False], "label_source": ["", None, "human"]})
    prepared = _prepare(steps, labels)
    assert prepared.on_path.tolist() == [True, True, False]
    assert prepared.sources.to_pylist() == ["heuristic", "heuristic", "human"]


def test_the_segment_command_writes_the_same_files_without_importing_pandas(
        store: Path, tmp_path: Path) -> None:
    # pyarrow imports pandas on its first conversion unless refused (curate.without_pandas);
    # the command refuses it and must write what the library writes with pandas allowed.
    import shutil

    import pandas  # noqa: F401  (imported here: the library run below may use it)

    from tests.fresh_command import run_without_pandas

    twin = tmp_path / "twin"
    shutil.copytree(store, twin)
    segment(store, params=SegmentParams(horizons=(3, 10, "end")))
    run_without_pandas("segment", str(twin), "--horizon", "3", "--horizon", "10",
                       "--horizon", "end")
    for library in sorted((store / "segments").glob("*.parquet")):
        assert (twin / "segments" / library.name).read_bytes() == library.read_bytes()


def test_the_segment_command_invoked_in_process_leaves_pandas_to_pyarrow(store: Path) -> None:
    # Through click's CliRunner (or cli(...) from Python) the process outlives the command,
    # so it must not refuse pandas: pyarrow would remember the refusal, and a categorical
    # Series handed to it afterwards would come out as plain integers.
    import subprocess
    import sys

    code = ("import sys\nimport pyarrow as pa\nfrom click.testing import CliRunner\n"
            "from curate.cli import cli\n"
            "result = CliRunner().invoke(cli, ['segment', sys.argv[1]])\n"
            "assert result.exit_code == 0, result.output\n"
            "import pandas as pd\n"
            "print(pa.array(pd.Series(['a', 'b', 'a'], dtype='category')).type)")
    result = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True,
                            text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    assert result.stdout.splitlines()[-1].startswith("dictionary<")
