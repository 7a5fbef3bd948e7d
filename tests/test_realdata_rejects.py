"""Every folder of ../shared/realdata with data ingests, and the only records it rejects are
the ones that cannot be read (issue 18, "Done when"). Each expected reject is named here with
its reason; frame-level reports (screenshots a sample does not ship) are reasons for skipped
frames, not rejected records, and are counted separately."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.store import open_store
from tests.conftest import REALDATA, realdata

# folder -> (episodes, the record rejects expected: (level, start of the reason), frame reports)
EXPECTED: dict[str, tuple[int, list[tuple[str, str]], int]] = {
    "adp": (28, [], 8),
    "agentnet_bench": (3, [], 0),
    # AgentLab's test_study stubs hold only exp_args.pkl: runs that saved no step.
    "agentlab_browsergym": (4, [("episode", "no step_N.pkl.gz files")] * 2, 0),
    # Two checkpoints crashed before their first step (NameError in the agent).
    "androidworld_checkpoints": (7, [("episode", "the episode crashed before")] * 2, 0),
    "claude_code_sessions": (3, [], 0),
    "droidbot_utg": (1, [], 1),
    "langfuse_traces": (23, [], 0),
    "openadapt_legacy": (2, [], 1),
    "opencua_agentnet_raw": (1, [], 0),
    "osworld_sec_eval_claude": (2, [], 1),
    # A trace from a future Playwright must be refused; one traces only setup calls.
    "playwright_traces": (4, [("episode", "no page action among"),
                              ("episode", "trace format version 10000")], 2),
    "pydantic_ai_cassettes": (6, [], 1),
    # The published MM-Traj subset is cut off inside its 95th trajectory.
    "t3_agent": (94, [("episode", "trajectory cut short")], 0),
    "toolbench": (3, [], 0),
}


def test_every_folder_with_data_is_listed() -> None:
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA} is absent")
    with_data = {p.name for p in REALDATA.iterdir()
                 if p.is_dir() and any(f.name != "SOURCE.md" for f in p.iterdir())}
    # multimodal_mind2web is documentation only (no rows).
    assert with_data - {"multimodal_mind2web"} == set(EXPECTED)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_real_folder_ingests_rejecting_only_unreadable_records(folder: str,
                                                                tmp_path: Path) -> None:
    episodes, expected, frame_reports = EXPECTED[folder]
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["ingest", str(realdata(folder)), "-o", str(store),
                                      "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    opened = open_store(store)
    rejects = opened.read_rejects().to_pylist()
    records = sorted((r["level"], r["reason"]) for r in rejects if r["level"] != "frame")
    assert len(records) == len(expected), records
    for (level, reason), (want_level, start) in zip(records, sorted(expected), strict=True):
        assert level == want_level and reason.startswith(start), (level, reason)
    assert sum(r["level"] == "frame" for r in rejects) == frame_reports
    assert opened.read_episodes().num_rows == episodes
    # No file is left unrecognised in any folder.
    assert not any(r["level"] == "file" for r in rejects)
