"""segment's consistency column against its definition, window by window, on the real
samples: score_trajectory of the window's actions against the next on-path steps (the
array scorer of curate.rewards.pair_arrays must change no bit of it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curate.actions import Action
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import SegmentParams, _prepare, _windows, segment_batch
from curate.rewards import score_trajectory
from curate.store.core import open_store, read_parquet
from curate.store.layout import batch_file
from tests.conftest import REALDATA


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    samples = sorted(path for path in REALDATA.glob("*") if path.is_dir())
    if not samples:
        pytest.skip(f"the real samples are not available ({REALDATA} is absent)")
    store = tmp_path_factory.mktemp("real") / "store"
    ingest(samples, store)
    label(store)
    return store


def one_window_at_a_time(store: Path, batch: str, params: SegmentParams) -> list[float]:
    """Each window's consistency by the rule segment documents: 1.0 when its real steps are
    all on the loop-free path or its actions are the path's own; else score_trajectory of
    its actions against the next K on-path steps of its episode, padding masked."""
    steps = _prepare(read_parquet(batch_file(store, "steps", batch)),
                     read_parquet(batch_file(store, "labels", batch)))
    actions = [Action.from_row(row) for row in steps.take(
        "action", np.arange(len(steps))).to_pylist()]
    on_path = np.flatnonzero(steps.on_path).tolist()
    found = []
    for t, k, n in zip(*(values.tolist() for values in _windows(steps, params)[:3]),
                       strict=True):
        window = [actions[i] for i in range(t, t + n)] + [Action("done")] * (k - n)
        future = [actions[i] for i in on_path if t <= i < steps.end[t]][:k]
        future += [Action("done")] * (k - len(future))
        if steps.on_path[t:t + n].all() or window == future:
            found.append(1.0)
        else:
            found.append(score_trajectory(window, future, mask=[True] * n + [False] * (k - n))
                         .score)
    return found


@pytest.mark.parametrize("horizons", [(3,), (10,), ("end",), (1, 3, 10, "end")])
def test_consistency_equals_score_trajectory_window_by_window(real_store: Path,
                                                              horizons: tuple) -> None:
    params = SegmentParams(horizons=horizons)
    windows, below_one = 0, 0
    for batch in open_store(real_store).manifest.batches:
        got = segment_batch(open_store(real_store), batch, params).column("consistency")
        expected = one_window_at_a_time(real_store, batch, params)
        assert got.to_numpy().tobytes() == np.array(expected, dtype=np.float64).tobytes()
        windows += len(expected)
        below_one += sum(value < 1.0 for value in expected)
    assert windows > 500  # every real sample's steps, one window per step and horizon
    assert below_one > 0  # windows off the path were scored, not all waved through
