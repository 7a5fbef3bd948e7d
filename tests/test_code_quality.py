"""ruff and mypy are clean; the schema docs are up to date with schemas/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = run_tool("ruff", "check", "curate", "tests", "benchmarks", "examples")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = run_tool("mypy", "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr


def test_docs_schema_is_generated_from_schemas() -> None:
    from curate.store.docs import render_schema_docs

    current = (REPO / "docs" / "schema.md").read_text(encoding="utf-8")
    assert current == render_schema_docs(), "run `python -m curate.store.docs` to regenerate"


def test_no_test_folder_shadows_an_importable_package() -> None:
    """pytest puts tests/ on sys.path; a folder there named like a package (``tests/ray``)
    becomes a namespace package where the real one is not installed, so ``import ray``
    "succeeds" on a default install and the tests that should skip fail instead."""
    import tomllib
    from importlib.metadata import packages_distributions

    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirement_names = {
        entry.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip().lower()
        for entries in (declared["dependencies"], *declared["optional-dependencies"].values())
        for entry in entries
    }
    top_level = {name.lower() for name in packages_distributions()}
    forbidden = top_level | {name.replace("-", "_") for name in requirement_names}
    folders = {p.name.lower() for p in (REPO / "tests").iterdir() if p.is_dir()}
    assert not folders & forbidden, f"rename these test folders: {sorted(folders & forbidden)}"
