"""The README's two commands are true: the first sets up and runs the main job on a fresh copy
of the repository, the second is what CI runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


# What a checkout accumulates that a fresh clone does not have: the environments .ci/run makes
# (the Label Studio one is about 1 GB), and what the quick start itself writes.
LOCAL_ONLY = (".venv", ".ls-venv", ".trainers-venv", ".git", "store", "dist", "dist.store",
              "view.html")


def command_after(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\s*```(?:bash|sh)?\n(.*?)```", README, re.S)
    assert match, f"README has no code block after <!-- {marker} -->"
    return match.group(1).strip()


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert command_after("test-command") in ci.splitlines()


@pytest.mark.slow
def test_readme_quickstart_sets_up_and_runs_the_main_job(tmp_path: Path) -> None:
    copy = tmp_path / "curate"
    caches = shutil.ignore_patterns("__pycache__", ".*_cache", "_work")

    def local_only(folder: str, names: list[str]) -> set[str]:
        # Top-level names only: curate/store/ is part of the package, ./store is a local store.
        top = {n for n in names if n in LOCAL_ONLY} if Path(folder) == REPO else set()
        return top | set(caches(folder, names))

    shutil.copytree(REPO, copy, ignore=local_only)
    command = command_after("quickstart")
    result = subprocess.run(["bash", "-c", command], cwd=copy, capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^episodes\s+\d+ \(", result.stdout, re.M), result.stdout
    assert "rejects" in result.stdout
    formats = re.search(r"^episodes\s+(\d+) \((.*)\)$", result.stdout, re.M)
    assert formats is not None
    assert {"native", "osworld", "openai_chat"} <= {
        part.split()[0] for part in formats.group(2).split(", ")}
    assert (copy / "dist.store" / "manifest.json").is_file()
    assert (copy / "dist" / "README.md").is_file()
    assert "load it" in result.stdout
