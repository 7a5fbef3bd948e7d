"""`terminated` / `truncated` agree with where segments end, on every real sample (issue 18
part 3): each real folder is ingested, labelled and segmented; every episode is exactly one of
terminated (it ended by itself) and truncated (it was cut off); a window that reaches an
episode's end says the same (`end`), one that does not says `within`; so a truncated
episode's last window is never a real ending."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.store import open_store
from tests.conftest import realdata
from tests.test_realdata_rejects import EXPECTED


def _run(*args: str) -> None:
    result = CliRunner().invoke(cli, [*args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_episode_endings_agree_with_segments(folder: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _run("ingest", str(realdata(folder)), "-o", str(store), "--no-progress")
    _run("label", str(store), "--no-progress")
    _run("segment", str(store), "--horizon", "3", "--horizon", "end")
    opened = open_store(store)
    episodes = {row["episode_id"]: row for row in opened.read_episodes().to_pylist()}
    assert episodes
    both_or_neither = sorted(row["source_id"] for row in episodes.values()
                             if row["terminated"] == row["truncated"])
    assert both_or_neither == [], "an episode must be terminated or truncated, not both/neither"
    lengths: dict[str, int] = {}
    for row in opened.read_steps().select(["episode_id"]).to_pylist():
        lengths[row["episode_id"]] = lengths.get(row["episode_id"], 0) + 1
    checked = 0
    for path in opened.files("segments"):
        for segment in pq.read_table(path, columns=["episode_id", "step_index", "mask",
                                                    "to_end", "end"]).to_pylist():
            episode = episodes[segment["episode_id"]]
            real = sum(segment["mask"])
            reaches_end = segment["step_index"] + real == lengths[segment["episode_id"]]
            expected = ("within" if not reaches_end
                        else "terminated" if episode["terminated"] else "truncated")
            assert segment["end"] == expected, (episode["source_id"], segment)
            checked += reaches_end
    # Every episode's last window (one per horizon) was checked.
    assert checked >= len(lengths)
