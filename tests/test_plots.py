"""The data card's plots, drawn in a child process (issue 21: the exporting process never
imports matplotlib): the same bytes as drawing them in this process, and a clear error when
the child cannot draw."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.export.plots import PlotData, PlotWorker, write_plots

DATA = PlotData(action_types=[("click", 5), ("type", 2), ("scroll", 2)],
                episode_lengths=[3, 4, 4, 12], sources=[("native", 3), ("t3_agent", 1)],
                consistency=[0.25, 0.5, 1.0])


def test_the_plot_worker_draws_what_drawing_here_draws(tmp_path: Path) -> None:
    worker = PlotWorker()
    try:
        assert worker.render(tmp_path / "child", DATA) is True
    finally:
        worker.close()
    assert write_plots(tmp_path / "here", DATA) is True
    names = sorted(p.name for p in (tmp_path / "here").iterdir())
    assert names == ["action_types.png", "consistency.png", "episode_lengths.png",
                     "sources.png"]
    for name in names:
        assert (tmp_path / "child" / name).read_bytes() == (tmp_path / "here" / name).read_bytes()


def test_a_plot_worker_that_cannot_draw_says_so(tmp_path: Path) -> None:
    occupied = tmp_path / "plots"
    occupied.write_text("a file where the plots folder goes")
    worker = PlotWorker()
    try:
        with pytest.raises(CurateError, match="plots could not be drawn"):
            worker.render(occupied, DATA)
    finally:
        worker.close()


def test_an_unused_plot_worker_is_ended_by_close() -> None:
    worker = PlotWorker()
    worker.close()
    assert worker._process.returncode is not None
