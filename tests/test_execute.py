"""`curate execute`: a frozen executor over a store's steps, kept in the executions table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import realdata
from modelserver import ModelServer
from modelserver.a11y import a11y_responder

from curate.cli import cli
from curate.errors import CurateError
from curate.executors.base import Execution, ProposedStep, StepContext
from curate.executors.registry import register
from curate.pipeline.execute import ExecuteSummary, execute, read_executions, summarise
from curate.pipeline.ingest import ingest
from curate.pipeline.instructions import SOURCES
from curate.store.core import open_store
from curate.store.derived import PARAMS_KEY


def _store(tmp_path: Path, sample: str) -> Path:
    store = tmp_path / "store"
    ingest([realdata(sample)], store)
    return store


def test_a11y_on_the_real_droidbot_report_clicks_the_recorded_views(tmp_path: Path) -> None:
    store = _store(tmp_path, "droidbot_utg")
    summary = execute(store, executor="a11y")
    rows = {r["step_index"]: r for r in read_executions(store, "a11y").to_pylist()}
    assert len(rows) == summary.steps == 17
    select = rows[2]  # the tap on "Select Image", grounded on the view hierarchy
    assert select["proposed"] == 'click the "Select Image" text at the top right'
    assert select["step_instruction_source"] == "derived"
    assert select["outcome"] == "executed" and select["success"]
    assert select["reward"] == 1.0
    assert select["executed_action"].startswith("click(x=")
    assert rows[0]["outcome"] == "not_executable" and "not home" in rows[0]["feedback"]
    assert {r["step_instruction_source"] for r in rows.values()} <= set(SOURCES)
    assert summary.by_source["droidbot"]["executed"] == summary.outcomes["executed"] >= 9


def test_a11y_on_the_real_browsergym_episodes_grounds_every_click(tmp_path: Path) -> None:
    store = _store(tmp_path, "agentlab_browsergym")
    summary = execute(store, executor="a11y")
    assert summary.steps == 7
    assert summary.outcomes == {"executed": 7}
    assert summary.reward_sum == 7.0


def test_a11y_on_the_real_agentnet_recording_says_why_steps_have_no_elements(
        tmp_path: Path) -> None:
    store = _store(tmp_path, "opencua_agentnet_raw")
    execute(store, executor="a11y")
    rows = read_executions(store, "a11y").to_pylist()
    executed = [r for r in rows if r["outcome"] == "executed"]
    assert executed and all(r["reward"] == 1.0 for r in executed)
    # After the display scaling changes the a11y trees are in another pixel space.
    late = [r for r in rows if r["step_index"] >= 8 and r["proposed_type"] == "click"]
    assert late and all("no screen elements" in r["feedback"] for r in late)


class _Counting:
    """Counts how often it is asked, to see what a re-run executes again."""

    name = "counting"
    needs_screenshot = False
    calls = 0

    def execute(self, context: StepContext, proposed: ProposedStep) -> Execution:
        return self.execute_many([(context, proposed)])[0]

    def execute_many(self, items):  # type: ignore[no-untyped-def]
        type(self).calls += len(items)
        return [Execution(executor=self.name, outcome="not_executable", reason="counted")
                for _ in items]


def test_a11y_on_mind2web_grounds_on_the_positive_and_negative_candidates(
        tmp_path: Path) -> None:
    # No real Mind2Web rows exist in ../shared/realdata: the fixture is written from the
    # format's documentation (tests/fixtures/mind2web/make_fixture.py).
    store = tmp_path / "store"
    ingest([Path(__file__).parent / "fixtures" / "mind2web" / "a11y"], store)
    summary = execute(store, executor="a11y")
    rows = {r["step_index"]: r for r in read_executions(store, "a11y").to_pylist()}
    assert summary.outcomes == {"executed": 1, "ambiguous": 1, "not_found": 1,
                                "not_executable": 1}
    # "Search" is also the search box's placeholder: the role word picks the button.
    assert rows[0]["outcome"] == "executed" and rows[0]["reward"] == 1.0
    assert "button 'Search'" in rows[0]["feedback"]
    assert "2 separate elements" in rows[1]["feedback"]  # two links named "Dune"
    assert rows[2]["feedback"].startswith("no element of 2")  # positive lost in cleaning
    assert "not type" in rows[3]["feedback"]


def test_a_rerun_executes_nothing_and_another_executor_keeps_the_first_ones_rows(
        tmp_path: Path) -> None:
    store = _store(tmp_path, "agentlab_browsergym")
    execute(store, executor="a11y")
    register("counting", _Counting)
    first = execute(store, executor="counting")
    assert (_Counting.calls, first.batches_run) == (7, 1)
    again = execute(store, executor="counting")
    assert (_Counting.calls, again.batches_run, again.batches_current) == (7, 0, 1)
    assert again.outcomes == {"not_executable": 7}
    assert read_executions(store, "a11y").num_rows == 7
    assert read_executions(store).num_rows == 14


def _as_plain(summary: ExecuteSummary) -> tuple[object, ...]:
    return (summary.steps, dict(summary.outcomes), summary.reward_sum,
            {k: dict(v) for k, v in summary.by_source.items()},
            {k: dict(v) for k, v in summary.by_type.items()})


def test_a_current_rerun_reports_the_counts_stamped_with_each_batch(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest([realdata("droidbot_utg"), realdata("agentlab_browsergym"), realdata("toolbench")],
           store)
    first = execute(store, executor="a11y")
    execute(store, executor="replay")
    path = next((store / "executions").glob("batch-*.parquet"))
    stamps = json.loads(pq.read_metadata(path).metadata[PARAMS_KEY])
    counts = stamps["a11y"]["counts"]
    assert {source for source, *_ in counts} == {"droidbot", "agentlab", "toolbench"}
    assert sum(count for *_, count, _ in counts) == first.steps == 34
    again = execute(store, executor="a11y")
    assert again.batches_current == 1 and _as_plain(again) == _as_plain(first)
    assert _as_plain(again) == _as_plain(summarise(store, "a11y"))  # counted from the rows
    # A batch stamped before the counts were kept is counted from its rows, the same way.
    for stamp in stamps.values():
        del stamp["counts"]
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata(
        {**table.schema.metadata, PARAMS_KEY: json.dumps(stamps, sort_keys=True)}), path)
    old = execute(store, executor="a11y")
    assert old.batches_current == 1 and _as_plain(old) == _as_plain(first)


def test_a_rerun_after_its_inputs_change_rebuilds_the_proposed_steps(tmp_path: Path) -> None:
    store = _store(tmp_path, "agentlab_browsergym")
    execute(store, executor="a11y")
    steps = next((store / "steps").glob("batch-*.parquet"))
    copy = steps.with_name("copy.tmp")
    shutil.copy(steps, copy)
    copy.replace(steps)  # the same bytes in a new file: compared, found current
    assert execute(store, executor="a11y").batches_current == 1
    first = open_store(store).read_steps().to_pylist()[0]
    (store / "annotations").mkdir(exist_ok=True)
    pq.write_table(pa.table({"episode_id": [first["episode_id"]],
                             "step_index": [first["step_index"]],
                             "step_instruction": ["click the nonexistent widget"]}),
                   store / "annotations" / "batch-x.parquet")
    again = execute(store, executor="a11y")
    assert again.batches_run == 1  # the model's instruction is a new proposed step
    row = next(r for r in read_executions(store, "a11y").to_pylist()
               if (r["episode_id"], r["step_index"]) == (first["episode_id"],
                                                          first["step_index"]))
    assert row["proposed"] == "click the nonexistent widget"
    assert row["step_instruction_source"] == "model" and row["outcome"] == "not_found"


def test_on_path_steps_need_labels_first(tmp_path: Path) -> None:
    store = _store(tmp_path, "agentlab_browsergym")
    with pytest.raises(CurateError, match="run `curate label"):
        execute(store, executor="a11y", steps="on_path")


def test_the_command_prints_rates_per_source_and_action_type(tmp_path: Path) -> None:
    store = _store(tmp_path, "droidbot_utg")
    result = CliRunner().invoke(cli, ["execute", str(store), "--executor", "a11y"])
    assert result.exit_code == 0, result.output
    assert "batches    1 executed, 0 already current" in result.output
    assert "source droidbot" in result.output and "type click" in result.output
    unknown = CliRunner().invoke(cli, ["execute", str(store), "--executor", "nope"])
    assert unknown.exit_code != 0 and "unknown executor 'nope'" in unknown.output


def test_a_stage2_export_carries_the_executions_and_keeps_only_executable_steps(
        tmp_path: Path) -> None:
    import datasets

    from curate.export import export
    from curate.export.params import ExportParams
    from curate.pipeline.label import label

    store = _store(tmp_path, "droidbot_utg")
    label(store)
    execute(store, executor="a11y")
    for name, steps in (("all", "all"), ("exe", "executable")):
        export(store, tmp_path / name, params=ExportParams(
            configs=("stage2",), stage2_steps=steps, splits={"train": 1.0}))
    every = datasets.load_dataset(str(tmp_path / "all"), "stage2", split="train")
    assert set(every["executor"]) == {"a11y"}
    assert None not in every["executor_success"] and None not in every["executor_feedback"]
    executable = datasets.load_dataset(str(tmp_path / "exe"), "stage2", split="train")
    assert 0 < executable.num_rows < every.num_rows
    assert all(executable["executor_success"])
    assert all(r == 1.0 for r in executable["executor_reward"])
    # Both cards give the rates over all the steps, whatever --stage2-steps kept (and rows
    # without a screenshot, which the export skips, still count: they were executed).
    runs = read_executions(store, "a11y").to_pylist()
    done = sum(r["success"] for r in runs)
    clicks = [r["success"] for r in runs if r["proposed_type"] == "click"]
    assert done == 11 and len(runs) == 17
    rewards = sum(r["reward"] for r in runs)
    click_rewards = sum(r["reward"] for r in runs if r["proposed_type"] == "click")
    for name in ("all", "exe"):
        card = (tmp_path / name / "README.md").read_text(encoding="utf-8")
        assert "## Stage-2 executability" in card
        assert (f"| `a11y` | - | source | droidbot | 17 | 11 | 64.7% | {rewards / 17:.1%} |"
                in card)
        assert (f"| `a11y` | - | type | click | {len(clicks)} | {sum(clicks)} | "
                f"{sum(clicks) / len(clicks):.1%} | {click_rewards / len(clicks):.1%} |" in card)
    # Each row's step instruction is the one the executor was given, with its source.
    proposed = {r["step_index"]: (r["proposed"], r["step_instruction_source"]) for r in runs}
    assert all(proposed[r["step_index"]] == (r["step_instruction"], r["step_instruction_source"])
               for r in every)
    assert {r["step_instruction_source"] for r in every} == {"derived"}


def test_the_card_names_the_model_a_grounding_executor_asked(tmp_path: Path) -> None:
    from curate.export import export
    from curate.export.params import ExportParams
    from curate.pipeline.label import label

    store = _store(tmp_path, "droidbot_utg")
    label(store)
    with ModelServer(a11y_responder("qwen3-vl", _elements_by_frame(store))) as server:
        execute(store, executor="grounding", options={
            "url": server.url, "model": "frozen-grounder", "family": "qwen3-vl"})
    export(store, tmp_path / "out", params=ExportParams(configs=("stage2",),
                                                        splits={"train": 1.0}))
    runs = read_executions(store, "grounding").to_pylist()
    done, reward = sum(r["success"] for r in runs), sum(r["reward"] for r in runs)
    assert 0 < done < len(runs)
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert (f"| `grounding` | `frozen-grounder` | source | droidbot | {len(runs)} | {done} | "
            f"{done / len(runs):.1%} | {reward / len(runs):.1%} |") in card


def _elements_by_frame(store: Path) -> dict[str, list[dict]]:
    steps = open_store(store).read_steps().select(["frame_id", "elements"]).to_pylist()
    return {s["frame_id"]: s["elements"] for s in steps if s["frame_id"] and s["elements"]}


# BrowserGym's sample has no screenshots, so a model has nothing to look at there.
@pytest.mark.parametrize(("sample", "family"), [("opencua_agentnet_raw", "ui-tars-1.5"),
                                                ("droidbot_utg", "qwen3-vl"),
                                                ("droidbot_utg", "os-atlas")])
def test_grounding_on_real_screenshots_against_a_model_server_agrees_with_a11y(
        tmp_path: Path, sample: str, family: str) -> None:
    store = _store(tmp_path, sample)
    execute(store, executor="a11y")
    with ModelServer(a11y_responder(family, _elements_by_frame(store))) as server:
        server.inject("429", "500")  # retried: the run does not notice
        options = {"url": server.url, "model": "frozen-grounder", "family": family}
        summary = execute(store, executor="grounding", options=options)
        sent = server.count
        again = execute(store, executor="grounding", options=options)
        assert server.count == sent and again.batches_run == 0  # nothing asked twice
    grounded = {(r["episode_id"], r["step_index"]): r
                for r in read_executions(store, "grounding").to_pylist()}
    a11y = {(r["episode_id"], r["step_index"]): r
            for r in read_executions(store, "a11y").to_pylist()}
    assert len(grounded) == summary.steps == len(a11y)
    # Every step the recorded elements ground, the model grounded too, onto the same
    # element: the same reward, through the family's coordinates and back.
    for step, row in a11y.items():
        if row["outcome"] == "executed":
            assert grounded[step]["outcome"] == "executed", grounded[step]
            assert grounded[step]["reward"] == row["reward"] == 1.0
            assert grounded[step]["executed"]["coord_space"] == f"grounding:{family}"
            assert json.loads(grounded[step]["provenance"])["family"] == family
            assert grounded[step]["raw"] and grounded[step]["cache_key"]
    assert summary.outcomes["executed"] >= sum(r["success"] for r in a11y.values()) > 0
    # What the model could not find comes back in words: an invalid answer with its reason.
    words = [r for r in grounded.values() if r["outcome"] == "invalid_answer"]
    assert all("cannot find" in r["raw"] for r in words), [r["feedback"] for r in words]
