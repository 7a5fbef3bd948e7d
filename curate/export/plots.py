"""Statistics plots for the data card (matplotlib, Agg backend, deterministic PNGs).

They are drawn in a child process (:class:`PlotWorker`), started when an export starts: it
imports matplotlib while the rows are written and draws once the statistics are known, so
the export's own process never imports matplotlib (2 s of an export of 900 rows were its
import and drawing). ``python -m curate.export.plots`` is that child.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import curate
from curate.errors import CurateError

if TYPE_CHECKING:
    from curate.export.stats import ExportStats

# No timestamps or software version in the PNG, so the same data gives the same bytes.
_PNG_METADATA = {"Software": None}


@dataclass(frozen=True)
class PlotData:
    """What the plots show, in a form that crosses a pipe (counts keep their order, which
    breaks ties between equal counts)."""

    action_types: list[tuple[str, int]]
    episode_lengths: list[int]
    sources: list[tuple[str, int]]
    consistency: list[float]

    @classmethod
    def of(cls, stats: ExportStats) -> PlotData:
        return cls(list(stats.action_types.items()), list(stats.episode_lengths),
                   list(stats.sources.items()), list(stats.consistency))

    def to_json(self) -> str:
        return json.dumps({"action_types": self.action_types,
                           "episode_lengths": self.episode_lengths, "sources": self.sources,
                           "consistency": self.consistency})

    @classmethod
    def from_json(cls, text: str) -> PlotData:
        loaded = json.loads(text)
        return cls([(name, n) for name, n in loaded["action_types"]], loaded["episode_lengths"],
                   [(name, n) for name, n in loaded["sources"]], loaded["consistency"])


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.2), dpi=100)
    return figure, axes


def _save(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, format="png", metadata=_PNG_METADATA)
    plt.close(figure)


def _bars(counts: Counter[str], title: str, path: Path) -> None:
    figure, axes = _figure()
    items = counts.most_common(20)[::-1]
    axes.barh([name for name, _ in items], [n for _, n in items], color="#4c72b0")
    axes.set_title(title)
    axes.set_xlabel("count")
    _save(figure, path)


def _histogram(values: list[float], title: str, xlabel: str, path: Path, bins: Any) -> None:
    figure, axes = _figure()
    axes.hist(values, bins=bins, color="#55a868", edgecolor="white")
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    _save(figure, path)


def write_plots(folder: Path, data: PlotData) -> bool:
    """Write the card's plots (in this process); returns whether a consistency plot was made."""
    folder.mkdir(parents=True, exist_ok=True)
    _bars(Counter(dict(data.action_types)), "Action types (all steps)",
          folder / "action_types.png")
    lengths = data.episode_lengths or [0]
    _histogram([float(v) for v in lengths], "Episode lengths", "steps per episode",
               folder / "episode_lengths.png", bins=min(30, max(lengths) or 1))
    _bars(Counter(dict(data.sources)), "Episodes per source format", folder / "sources.png")
    if data.consistency:
        _histogram(data.consistency, "Stage-1 window consistency", "consistency",
                   folder / "consistency.png", bins=[i / 20 for i in range(21)])
        return True
    return False


def plots_available() -> bool:
    """Whether matplotlib is installed, without importing it (None in sys.modules, as tests
    block a module, counts as absent)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # in sys.modules without a spec: imported already, so present
        return True


class PlotWorker:
    """A child process that imports matplotlib at once and draws the plots when given the
    statistics (:meth:`render`). Close it in every case: :meth:`close` ends it if unused."""

    def __init__(self) -> None:
        # The child finds this very curate, wherever it was imported from.
        package_root = str(Path(curate.__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "curate.export.plots"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})

    def render(self, folder: Path, data: PlotData) -> bool:
        """Draw the plots into ``folder``; returns whether a consistency plot was made."""
        job = json.dumps({"folder": str(folder), "data": data.to_json()})
        out, err = self._process.communicate(job.encode("utf-8"))
        if self._process.returncode:
            message = err.decode("utf-8", "replace").strip().splitlines()[-5:]
            raise CurateError("the data card's plots could not be drawn: "
                              + " / ".join(message or [f"exit {self._process.returncode}"]))
        return bool(json.loads(out)["consistency"])

    def close(self) -> None:
        """End the child if it was never given its job (the export failed before the card)."""
        if self._process.returncode is None:
            self._process.kill()
            self._process.communicate()


def _child() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # the slow part, done while the parent writes rows

    job = json.loads(sys.stdin.read())
    consistency = write_plots(Path(job["folder"]), PlotData.from_json(job["data"]))
    sys.stdout.write(json.dumps({"consistency": consistency}))


if __name__ == "__main__":
    _child()
