"""Shared fixtures: paths to the repository, the real samples, and a native-episode factory."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from PIL import Image

# `datasets` reads its cache location once, at import: give every test session its own, so
# no test ever reads a dataset cached by another run.
_SESSION_CACHE = tempfile.mkdtemp(prefix="curate-tests-hf-")
os.environ["HF_HOME"] = _SESSION_CACHE
os.environ["HF_DATASETS_CACHE"] = os.path.join(_SESSION_CACHE, "datasets")
os.environ.pop("HF_TOKEN", None)

# Property tests explore new examples on a developer's machine (and keep what fails in
# .hypothesis/), but CI draws the same examples every run: a red CI is then a change's fault,
# never the luck of the draw.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "recordings"
REALDATA = REPO.parent / "shared" / "realdata"


def realdata(name: str) -> Path:
    """A real sample folder, or skip the test with the reason when it is not beside the repo."""
    path = REALDATA / name
    if not path.is_dir():
        pytest.skip(f"real sample {path} is not available (../shared/realdata is absent)")
    return path


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep Hugging Face caches and tokens of the machine out of the tests."""
    home = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)


@pytest.fixture(scope="session")
def sample_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/recordings + the OSWorld fixtures, ingested and labelled once per session;
    tests that write into a store copy it first."""
    from curate.pipeline.ingest import ingest
    from curate.pipeline.label import label

    store = tmp_path_factory.mktemp("sample_store") / "store"
    ingest([REPO / "examples" / "recordings", REPO / "tests" / "fixtures" / "osworld"], store)
    label(store)
    return store


NativeFactory = Callable[..., Path]


@pytest.fixture
def native_episode(tmp_path: Path) -> NativeFactory:
    """Write a native-format episode folder; steps are dicts, frames are solid colours."""

    def make(name: str = "ep", steps: list[dict[str, Any]] | None = None,
             colours: int = 3, meta: dict[str, Any] | None = None,
             root: Path | None = None) -> Path:
        folder = (root or tmp_path / "recordings") / name
        (folder / "frames").mkdir(parents=True, exist_ok=True)
        for index in range(colours):
            colour = ((index * 70) % 256, (index * 40) % 256, 90)
            Image.new("RGB", (64, 48), colour).save(folder / "frames" / f"{index}.png")
        body = {"curate_native": 1, "instruction": f"task {name}", **(meta or {})}
        (folder / "episode.json").write_text(json.dumps(body))
        if steps is None:
            steps = [
                {"action": {"type": "click", "px": 32, "py": 24},
                 "frame": "frames/0.png", "next_frame": "frames/1.png"},
                {"action": "type(text=\"hello\")", "frame": "frames/1.png",
                 "next_frame": "frames/2.png"},
            ]
        (folder / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
        return folder

    return make


def load_fresh(path: str | Path, *args: Any, **kwargs: Any) -> Any:
    """`datasets.load_dataset` with a cache of its own: the library caches local folders by
    their file patterns and times, and two exports made in the same second must not share."""
    from datasets import load_dataset

    return load_dataset(str(path), *args, cache_dir=tempfile.mkdtemp(prefix="curate-ds-"),
                        **kwargs)
