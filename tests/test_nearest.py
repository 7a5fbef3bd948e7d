"""A file no adapter claims is reported with the nearest supported format and what that
format expected (issue 18 part 3): near misses made from the real samples (a key renamed, a
file missing) get the right format; JSON of unrelated keys gets "no format close"; the hint
is in the rejects table and in `curate ingest`'s output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.sources.adapters import detect
from curate.sources.nearest import nearest, unrecognised_hint
from curate.store import open_store
from tests.conftest import realdata

LANGFUSE = ("langfuse_traces/packages/shared/scripts/seeder/utils/framework-traces/"
            "autogen-2025-06-06.json")
OSWORLD = ("osworld_sec_eval_claude/sec_eval_results/execute_binary_short_popup/"
           "20250226@213928-success-exemplary")
TOOLBENCH = "toolbench/data_example/answer/G1_answer/10_ChatGPT_DFS_woFilter_w2.json"
BENCH = "agentnet_bench/evaluation/agentnetbench/sample_data/s_7f27a11115e596eb.json"
T3 = "t3_agent/experiments/Qwen-VL/data/train_20241116_1628_subset.json"
CLAUDE = "claude_code_sessions/test/fixtures/transcripts/tool_heavy.jsonl"


def _sample(path: str) -> Path:
    folder, _, rest = path.partition("/")
    return realdata(folder) / rest


def _edited(source: Path, target: Path, *replacements: tuple[str, str]) -> Path:
    text = source.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def _unclaimed_nearest(path: Path) -> str | None:
    assert detect(path) is None, "the near miss must not be claimed"
    found = nearest(path)
    return found.format if found else None


@pytest.mark.realdata
def test_renamed_langfuse_key(tmp_path: Path) -> None:
    path = _edited(_sample(LANGFUSE), tmp_path / "trace.json",
                   ('"parentObservationId"', '"parentId"'))
    found = nearest(path)
    assert _unclaimed_nearest(path) == "langfuse_traces"
    assert found is not None and "parentObservationId" in found.missing and "trace" in found.has


@pytest.mark.realdata
def test_osworld_folder_without_result_and_renamed_keys(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(_sample(OSWORLD), run)
    (run / "result.txt").unlink()
    _edited(run / "traj.jsonl", run / "traj.jsonl", ('"step_num"', '"n"'),
            ('"screenshot_file"', '"shot"'))
    assert detect(run) is None
    found = nearest(run / "traj.jsonl")
    assert found is not None and found.format == "osworld"
    assert {"traj.jsonl", "step_*.png"} <= set(found.has)
    assert {"result.txt", "step_num", "screenshot_file"} <= set(found.missing)


@pytest.mark.realdata
@pytest.mark.parametrize(("sample", "name", "replacements", "expected"), [
    (TOOLBENCH, "answer.json", [('"answer_generation"', '"generation"'),
                                  ('"compare_candidates"', '"candidates"'),
                                  ('"forward_args"', '"args"')], "toolbench"),
    (BENCH, "episode.json", [('"ground_truth_actions"', '"actions_gt"')], "agentnet_bench"),
    (T3, "train.json", [('"traj_verification"', '"verification"'),
                        ("[OUTPUT OF STEP", "[STEP OUTPUT")], "t3_agent"),
    (CLAUDE, "session.jsonl", [('"sessionId"', '"session"'),
                               ('"file-history-snapshot"', '"snapshot"')],
     "claude_code_sessions"),
])
def test_near_misses_of_real_samples(tmp_path: Path, sample: str, name: str,
                                     replacements: list[tuple[str, str]],
                                     expected: str) -> None:
    path = _edited(_sample(sample), tmp_path / name, *replacements)
    assert _unclaimed_nearest(path) == expected


def test_phoenix_parquet_missing_a_column(tmp_path: Path) -> None:
    path = tmp_path / "spans.parquet"
    pq.write_table(pa.table({
        "name": ["llm"], "span_kind": ["LLM"], "context.trace_id": ["t"],
        "context.span_id": ["s"], "start_time": ["2025-01-01T00:00:00Z"],
        "end_time": ["2025-01-01T00:00:01Z"]}), path)
    found = nearest(path)
    assert _unclaimed_nearest(path) == "phoenix_spans"
    assert found is not None and found.missing == ("parent_id",)


def test_unrelated_json_is_close_to_no_format(tmp_path: Path) -> None:
    path = tmp_path / "weather.json"
    path.write_text(json.dumps({"city": "Paris", "temperature": 21,
                                "wind": {"speed": 3, "direction": "NW"}}))
    assert nearest(path) is None
    assert unrecognised_hint(path).startswith("no format close (keys seen: city, direction")
    # One key a format also has is chance, not closeness.
    path.write_text(json.dumps({"conversations": [], "city": "Paris"}))
    assert nearest(path) is None


def test_hint_in_rejects_table_and_ingest_output(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "trace.json").write_text(json.dumps({
        "trace": {"id": "t1", "name": "agent"},
        "spans": [{"id": "o1", "type": "GENERATION", "traceId": "t1",
                   "startTime": "2025-01-01T00:00:00Z", "input": "x", "output": "y"}]}))
    (source / "weather.json").write_text(json.dumps({"city": "Paris"}))
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["ingest", str(source), "-o", str(store),
                                      "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    hints = {Path(r["file"]).name: r["hint"]
             for r in open_store(store).read_rejects().to_pylist()}
    assert hints["trace.json"].startswith("nearest format: langfuse_traces (has trace, ")
    assert "expected also: observations, parentObservationId" in hints["trace.json"]
    assert hints["weather.json"].startswith("no format close")
    assert f"not recognised: in/trace.json: {hints['trace.json']}" in result.output
    assert f"not recognised: in/weather.json: {hints['weather.json']}" in result.output


def test_every_declared_shape_names_a_built_in_format() -> None:
    from curate.sources.catalogue import BUILTIN_FORMATS
    from curate.sources.catalogue_shapes import SHAPES

    names = {entry.name for entry in BUILTIN_FORMATS}
    assert set(SHAPES) <= names
    # Formats without JSON-like files are the only ones without a shape.
    assert names - set(SHAPES) == {"aitw", "androidcontrol", "androidworld",
                                   "openadapt_legacy", "playwright"}
