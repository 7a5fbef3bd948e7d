"""Stage-1 data as TraceR1 trains it: target states with their sources, `--horizon end`, the
`tracer1` recipe and the `easyr1` export flavour, scored by curate's batch reward."""

from __future__ import annotations

import glob
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.recipe import load_recipe
from curate.pipeline.segment import SegmentParams, parse_horizon, segment
from curate.store.core import open_store

REPO = Path(__file__).resolve().parents[1]
REALDATA = (REPO.parent / "shared" / "realdata").resolve()


def gui_episode(root: Path, name: str, steps: list[dict], *, terminated: bool = True,
                platform: str = "web") -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "episode.json").write_text(json.dumps(
        {"curate_native": 1, "platform": platform, "instruction": f"do {name}",
         "terminated": terminated, "truncated": not terminated}))
    (folder / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))


def segments(store: Path) -> list[dict]:
    return sorted((r for p in open_store(store).files("segments")
                   for r in pq.read_table(p).to_pylist()),
                  key=lambda r: (r["episode_id"], r["step_index"], r["segment_id"]))


STEPS = [
    {"action": {"type": "open_app", "app": "Firefox"}},
    {"action": {"type": "navigate", "url": "https://shop.example/cart"}},
    {"action": {"type": "click", "x": 0.5, "y": 0.5,
                "target": {"text": "Checkout", "role": "button"}}},
    {"action": {"type": "wait"}, "observation": "Order placed"},
    {"action": {"type": "wait"}},
]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    gui_episode(tmp_path / "rec", "shop", STEPS)
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    return tmp_path / "store"


def test_each_target_step_carries_the_next_state_as_text_with_its_source(store: Path) -> None:
    segment(store, params=SegmentParams(horizons=(3,)))
    by_step = {r["step_index"]: r for r in segments(store)}
    first = by_step[0]
    # The page navigated to, and the element the next step acts on is on that screen.
    assert first["target_states"] == ["app: Firefox",
                                      'page: https://shop.example/cart; shows: button "Checkout"',
                                      None]
    assert first["target_state_sources"] == ["derived", "derived", "none"]
    assert by_step[3]["target_states"][0] == "result: Order placed"
    # Nothing recorded about the screen after the last wait, then padding: explicit none.
    last = by_step[4]
    assert last["target_states"] == [None, None, None]
    assert last["target_state_sources"] == ["none", "none", "none"]
    assert first["target_step_instructions"][2] == 'click "Checkout"'
    assert first["target_step_instruction_sources"] == ["derived"] * 3
    assert last["target_step_instruction_sources"] == ["derived", "none", "none"]


def test_annotations_written_by_a_model_take_precedence_and_say_so(store: Path) -> None:
    import pyarrow as pa

    from curate.store.derived import write_derived

    opened = open_store(store)
    batch = sorted(opened.manifest.batches)[0]
    episode = opened.read_steps().column("episode_id")[0].as_py()
    table = pa.table({"episode_id": [episode], "step_index": pa.array([2], pa.int32()),
                      "step_instruction": ["Press Checkout"], "state": ["The payment form"],
                      "model": ["m"], "prompt_version": ["v"], "cache_key": [None],
                      "reason": pa.array([None], pa.string())})
    from curate.store.schema import table_schema
    write_derived(opened.path, "annotations", batch, table.cast(table_schema("annotations")),
                  {"model": "m"})
    segment(store, params=SegmentParams(horizons=(1,)))
    row = {r["step_index"]: r for r in segments(store)}[2]
    assert row["target_states"] == ["The payment form"]
    assert row["target_state_sources"] == ["model"]
    assert row["target_step_instructions"] == ["Press Checkout"]
    assert row["target_step_instruction_sources"] == ["model"]


def test_horizon_end_runs_every_window_to_the_episode_end_capped(store: Path) -> None:
    segment(store, params=SegmentParams(horizons=(2, "end"), max_horizon=4))
    ends = {r["step_index"]: r for r in segments(store) if r["to_end"]}
    assert sorted(ends) == [0, 1, 2, 3, 4]
    assert ends[0]["horizon"] == 4 and ends[0]["end"] == "within"  # capped: 5 steps left
    assert ends[1]["horizon"] == 4 and ends[1]["end"] == "terminated"
    assert ends[4]["horizon"] == 1 and all(ends[4]["mask"])
    assert ends[1]["segment_id"].endswith(":1:end")
    fixed = [r for r in segments(store) if not r["to_end"]]
    assert {r["horizon"] for r in fixed} == {2}


def test_a_horizon_that_is_neither_a_number_nor_end_is_refused() -> None:
    assert parse_horizon("END") == "end"
    assert parse_horizon("10") == 10
    with pytest.raises(CurateError, match="'soon'"):
        parse_horizon("soon")
    with pytest.raises(CurateError, match="at least 1"):
        SegmentParams(horizons=(0,)).check()


def test_the_tracer1_recipe_takes_the_published_settings() -> None:
    recipe = load_recipe("tracer1")
    assert recipe.segment.horizons == (10, "end")
    assert "easyr1" in recipe.export.flavours
    assert "gui.py" in recipe.text and "gui_format.jinja" in recipe.text


def test_the_easyr1_answer_marks_done_only_at_a_real_end(tmp_path: Path) -> None:
    from curate.export import ExportParams, export
    from curate.rewards.tracer1 import parse_answer

    # Without screenshots (a GUI row needs one): the answers are what is checked here.
    gui_episode(tmp_path / "rec", "ended", STEPS[:3], terminated=True, platform="tool")
    gui_episode(tmp_path / "rec", "cut", STEPS[:3], terminated=False, platform="tool")
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    segment(tmp_path / "store", params=SegmentParams(horizons=("end",)))
    export(tmp_path / "store", tmp_path / "dist",
           params=ExportParams(configs=("stage1",), flavours=("easyr1",),
                               splits={"train": 1.0}))
    files = sorted(glob.glob(str(tmp_path / "dist/data/stage1_easyr1/*.parquet")))
    rows = {r["id"]: r for r in pq.read_table(files).to_pylist()}
    episodes = {e["instruction"]: e["episode_id"]
                for e in open_store(tmp_path / "store").read_episodes().to_pylist()}
    ended = parse_answer(rows[f"{episodes['do ended']}:0:end"]["answer"])
    cut = parse_answer(rows[f"{episodes['do cut']}:0:end"]["answer"])
    assert [s.step.done for s in ended.steps] == [False, False, True]
    assert [s.step.done for s in cut.steps] == [False, False, False]
    assert [s.step.action_type for s in ended.steps] == ["open_app", "navigate", "click"]
    assert ended.steps[1].step.state == 'page: https://shop.example/cart; shows: button "Checkout"'


@pytest.mark.realdata
def test_tracer1_build_on_the_real_samples_gives_easyr1_rows_whose_references_score_1(
        tmp_path: Path) -> None:
    import datasets

    from curate.pipeline.build import build
    from curate.rewards.easyr1 import compute_score

    names = ["osworld_sec_eval_claude", "droidbot_utg", "playwright_traces",
             "opencua_agentnet_raw"]
    sources = [REALDATA / name for name in names if (REALDATA / name).is_dir()]
    if len(sources) < len(names):
        pytest.skip(f"real samples missing under {REALDATA}")
    build(sources, tmp_path / "dist", recipe="tracer1", workers=2)
    # EasyR1 reads parquet files (not the Hub-style folder) with these keys.
    files = sorted(glob.glob(str(tmp_path / "dist/data/stage1_easyr1/*.parquet")))
    data = datasets.load_dataset("parquet", data_files=files, split="train",
                                 cache_dir=tempfile.mkdtemp(prefix="curate-ds-"))
    assert {"problem", "answer", "images"} <= set(data.column_names)
    assert data.num_rows > 20
    for row in data.select(range(0, data.num_rows, 7)):
        assert isinstance(row["answer"], str) and row["answer"].startswith("Step 1:")
        assert row["problem"].count("<image>") == len(row["images"])
    # Without the Image feature cast EasyR1 sees dicts with the bytes.
    raw = pq.read_table(files[0]).slice(0, 1).to_pylist()[0]
    assert isinstance(raw["images"][0]["bytes"], bytes)
    scores = compute_score(data["answer"], data["answer"])
    assert {s["overall"] for s in scores} == {1.0}
    sources_seen = {s for p in glob.glob(str(tmp_path / "dist/data/stage1/*.parquet"))
                    for ls in pq.read_table(p, columns=["target_state_sources"])
                    .column(0).to_pylist() for s in ls}
    assert "derived" in sources_seen and "none" in sources_seen and "" not in sources_seen
