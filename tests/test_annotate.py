"""`curate annotate` against a real chat-completions server on 127.0.0.1, on a real store."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from modelserver import ModelServer, Request
from modelserver.fixture import model_server

from curate.cli import cli
from curate.pipeline.annotate import annotate, parse_fields
from curate.store.core import open_store

__all__ = ["model_server"]


def describer(request: Request) -> str:
    """Answers as an annotator would: the instruction names the action it was shown, the
    state counts the screenshots it was given."""
    action = re.search(r"Action taken in this step[^:]*: (.*)", request.text)
    assert action is not None, request.text
    answer: dict[str, str] = {}
    if '"step_instruction"' in request.text:
        answer["step_instruction"] = f"Perform {action.group(1)}"
    if '"state"' in request.text:
        answer["state"] = f"The screen after {action.group(1)} ({len(request.image_sizes)} images)"
    return "```json\n" + json.dumps(answer) + "\n```"


@pytest.fixture
def store(sample_store_template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "store"
    shutil.copytree(sample_store_template, copy)
    return copy


def annotations(store: Path) -> list[dict[str, object]]:
    rows = open_store(store).read("annotations").to_pylist()
    return sorted(rows, key=lambda r: (str(r["episode_id"]), int(str(r["step_index"]))))


def test_every_step_gets_an_instruction_and_a_state_and_a_rerun_sends_nothing(
        model_server: ModelServer, store: Path) -> None:
    model_server.responder = describer
    steps = open_store(store).read_steps().select(
        ["episode_id", "step_index", "action_text", "next_frame_id"]).to_pylist()
    summary = annotate(store, model="qwen2.5-vl-7b", url=model_server.url)
    rows = annotations(store)
    assert len(rows) == len(steps) == summary.steps
    by_key = {(s["episode_id"], s["step_index"]): s for s in steps}
    for row in rows:
        step = by_key[(row["episode_id"], row["step_index"])]
        assert row["step_instruction"] == f"Perform {step['action_text']}"
        assert row["model"] == "qwen2.5-vl-7b" and row["cache_key"]
        assert row["prompt_version"] == "annotate/request.v1+step_instruction.v1+state.v1"
        if step["next_frame_id"]:
            assert str(row["state"]).startswith(f"The screen after {step['action_text']}")
        else:
            assert row["state"] is None and str(row["reason"]).startswith("no_frame")
    sent = model_server.count
    assert summary.requests == sent > 0
    before = {p.name: p.read_bytes() for p in (store / "annotations").glob("*.parquet")}
    again = annotate(store, model="qwen2.5-vl-7b", url=model_server.url)
    assert again.batches_current == summary.batches_annotated and again.requests == 0
    forced = annotate(store, model="qwen2.5-vl-7b", url=model_server.url, force=True)
    assert forced.requests == 0 and forced.cache_hits > 0 and model_server.count == sent
    after = {p.name: p.read_bytes() for p in (store / "annotations").glob("*.parquet")}
    assert after == before  # the same answers give the same bytes


def test_the_state_prompt_carries_the_screen_after_the_step(model_server: ModelServer,
                                                            store: Path) -> None:
    model_server.responder = describer
    annotate(store, model="m", url=model_server.url, fields=["state"])
    assert {len(r.image_sizes) for r in model_server.requests} <= {1, 2}
    assert all('"step_instruction"' not in r.text for r in model_server.requests)
    rows = annotations(store)
    assert all(r["step_instruction"] is None for r in rows)
    assert any(r["state"] for r in rows)


def test_failures_are_recorded_and_the_next_run_asks_again_only_for_them(
        model_server: ModelServer, store: Path) -> None:
    model_server.responder = describer
    model_server.inject("garbage", "500", "500")
    first = annotate(store, model="m", url=model_server.url, fields=["step_instruction"],
                     concurrency=1, max_retries=1, backoff=0.0)
    reasons = [str(r["reason"]) for r in annotations(store) if r["reason"]]
    assert first.failed == {"invalid_answer": 1, "unreachable": 1}
    assert any(r.startswith("invalid_answer: not a JSON object") for r in reasons)
    assert any(r.startswith("unreachable:") and "HTTP 500" in r for r in reasons)
    sent = model_server.count
    second = annotate(store, model="m", url=model_server.url, fields=["step_instruction"])
    assert second.requests == 1  # only the step the server failed on; the rest is cached
    assert model_server.count == sent + 1
    assert second.failed == {"invalid_answer": 1}  # a cached bad answer stays what it was


def test_cli_annotate_prints_a_summary(model_server: ModelServer, store: Path) -> None:
    model_server.responder = describer
    result = CliRunner().invoke(cli, ["annotate", str(store), "--model", "m", "--url",
                                      model_server.url, "--fields", "step_instruction",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "answered from the cache" in result.output and "failed     none" in result.output
    bad = CliRunner().invoke(cli, ["annotate", str(store), "--model", "m", "--url",
                                   model_server.url, "--fields", "colour"])
    assert bad.exit_code == 2 and "unknown fields ['colour']" in bad.output


def test_fields_are_checked() -> None:
    assert parse_fields("state, step_instruction") == ("step_instruction", "state")
    with pytest.raises(ValueError, match="choose from step_instruction, state"):
        parse_fields("")
