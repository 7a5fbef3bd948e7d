"""Every format goes through the same path: ingest → label → segment → export → validate →
load_dataset, on the adapters' fixtures and on the real samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_fresh

from curate.export.validate import validate
from curate.pipeline.build import build
from curate.store.core import open_store

REPO = Path(__file__).resolve().parents[1]
REALDATA = (REPO.parent / "shared" / "realdata").resolve()
REAL_SAMPLES = ["osworld_sec_eval_claude", "agentlab_browsergym", "pydantic_ai_cassettes",
                "toolbench", "droidbot_utg", "androidworld_checkpoints", "playwright_traces",
                "opencua_agentnet_raw"]


def check_dataset(dist: Path) -> dict[str, int]:
    report = validate(dist)
    assert report.ok, report.problems[:10]
    rows = {}
    for config in ("stage1", "stage2"):
        dataset = load_fresh(dist, config)
        rows[config] = sum(split.num_rows for split in dataset.values())
        assert rows[config] > 0
    return rows


def test_every_fixture_format_builds_into_one_valid_dataset(tmp_path: Path) -> None:
    from curate.sources.adapters import all_adapters

    summary = build([REPO / "tests" / "fixtures", REPO / "examples" / "recordings"],
                    tmp_path / "dist", recipe="quick", workers=1)
    formats = set(summary.ingest.episodes_by_format)
    expected = {a.name for a in all_adapters()} - {"anthropic_messages", "openai_responses",
                                                   "http_cassette"}
    assert expected <= formats, expected - formats
    check_dataset(tmp_path / "dist")


@pytest.mark.realdata
def test_the_real_samples_build_into_one_valid_dataset(tmp_path: Path) -> None:
    sources = [REALDATA / name for name in REAL_SAMPLES if (REALDATA / name).is_dir()]
    if len(sources) < len(REAL_SAMPLES):
        pytest.skip(f"real samples missing under {REALDATA}")
    summary = build(sources, tmp_path / "dist", recipe="tracer1", workers=2)
    store = open_store(tmp_path / "dist.store")
    formats = set(store.read_episodes().column("source_format").to_pylist())
    assert {"osworld", "agentlab", "http_cassette", "toolbench", "droidbot", "androidworld",
            "playwright", "agentnet"} <= formats
    # Every episode has labels and segments; every step is labelled.
    assert summary.label.steps == store.read_steps().num_rows
    assert summary.segment.segments >= store.read_steps().num_rows
    rows = check_dataset(tmp_path / "dist")
    assert rows["stage2"] > 50
    assert (tmp_path / "dist" / "redaction_report.json").exists()
