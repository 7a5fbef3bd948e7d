"""Start-up: heavy libraries are imported where they are used, and optional extras that are
missing give one line naming the extra, never a traceback.

Every check runs in a fresh interpreter (a subprocess), since this test process has imported
everything already; `sys.modules` there says what a command really loaded. Timings are in
benchmarks/bench_startup.py, not here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pyarrow", "duckdb", "numpy", "polars", "datasets", "pandas", "yaml",
         "label_studio_sdk", "matplotlib", "av", "httpx")
OPTIONAL = ("label_studio_sdk", "matplotlib", "av")

# Run the CLI in-process with some modules made unimportable (None in sys.modules makes
# `import name` raise ImportError, as an absent package does), then report what was loaded.
PRELUDE = """
import json, sys
for name in BLOCKED:
    sys.modules[name] = None
def loaded(names):
    return sorted(n for n in names if sys.modules.get(n) is not None)
def run_cli(*args):
    from curate.cli import cli
    try:
        cli.main(list(args), prog_name="curate", standalone_mode=False)
    except SystemExit as stop:
        if stop.code:
            raise
"""


def python(code: str, *, blocked: tuple[str, ...] = (),
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = f"BLOCKED = {list(blocked)!r}\n" + PRELUDE + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def loaded_after(code: str, **kwargs: Any) -> list[str]:
    result = python(code + f"\nprint(json.dumps(loaded({list(HEAVY)!r})))\n", **kwargs)
    assert result.returncode == 0, result.stderr[-3000:]
    last: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return last


def test_help_loads_no_heavy_library() -> None:
    assert loaded_after('run_cli("--help")') == []


def test_formats_loads_no_heavy_library() -> None:
    # `formats` imports every adapter module: none may pull in Arrow, numpy, YAML or video.
    assert loaded_after('run_cli("formats")') == []


def test_formats_imports_no_adapter_module() -> None:
    # Without plugins the list comes from curate.sources.catalogue, not the adapters.
    code = '''
    run_cli("formats")
    print(json.dumps(sorted(n for n in sys.modules if n.startswith("curate.sources.adapters"))))
    '''
    result = python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    assert "agentnet_hf " in result.stdout


def test_importing_the_stages_loads_no_optional_extra() -> None:
    code = "import curate.pipeline.segment, curate.export, curate.pipeline.build, curate.pipeline.label, curate.pipeline.ingest"  # noqa: E501 (a path the layout move made longer)
    assert set(loaded_after(code)) & set(OPTIONAL) == set()


def test_the_stages_leave_the_export_run_and_duckdb_alone() -> None:
    # An unchanged build imports these modules and no more of export and review: the
    # export run (card, row builders) and DuckDB load when used.
    code = ("import curate.pipeline.build, curate.pipeline.segment\n"
            "print(json.dumps(loaded(['curate.export.run', 'curate.export.card', "
            "'duckdb', 'pandas'])))")
    result = python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


@pytest.fixture
def store(sample_store_template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store"
    shutil.copytree(sample_store_template, path)
    return path


def test_segment_and_export_run_without_label_studio_or_pyav(store: Path,
                                                             tmp_path: Path) -> None:
    code = f"""
    run_cli("segment", {str(store)!r}, "--horizon", "2")
    print("after segment", json.dumps(loaded({list(OPTIONAL)!r})))
    run_cli("export", {str(store)!r}, "-o", {str(tmp_path / "dist")!r}, "--flavour", "plain")
    print("after export", json.dumps(loaded({[*OPTIONAL, "datasets"]!r})))
    """
    result = python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = {line.split(" [")[0]: json.loads(line[line.index("["):])
            for line in result.stdout.splitlines() if line.startswith("after ")}
    assert seen["after segment"] == []
    # export needs neither Label Studio nor PyAV, draws the card's plots with matplotlib in a
    # child process and writes the `datasets` features itself (issue 21): the exporting
    # process imports neither.
    assert seen["after export"] == []
    assert (tmp_path / "dist" / "plots" / "action_types.png").is_file()


def test_export_without_the_plots_extra_writes_the_card_and_says_so(store: Path,
                                                                    tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    code = f"""
    run_cli("segment", {str(store)!r}, "--horizon", "2")
    run_cli("export", {str(store)!r}, "-o", {str(dist)!r}, "--flavour", "plain")
    """
    result = python(code, blocked=("matplotlib",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pip install 'curate[plots]'" in result.stderr
    assert "Traceback" not in result.stderr
    card = (dist / "README.md").read_text(encoding="utf-8")
    assert "without the optional `plots` dependencies" in card
    assert not (dist / "plots").exists()


def test_review_without_the_review_extra_is_one_line_naming_the_extra(store: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    script = ("import sys; sys.modules['label_studio_sdk'] = None\n"
              "from curate.cli import main; sys.argv[0] = 'curate'; main()")
    result = subprocess.run(
        [sys.executable, "-c", script, "review", "push", str(store), "--project", "p",
         "--url", "http://127.0.0.1:9", "--api-key", "k"],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Error: curate review (push, pull, status) needs the optional 'review' dependencies, "
        "which are not installed: pip install 'curate[review]'"], result.stderr


def test_video_without_the_video_extra_names_the_extra(tmp_path: Path) -> None:
    video = tmp_path / "screen.mp4"
    video.write_bytes(b"not decoded: the extra is missing before the file is opened")
    code = f"""
    from pathlib import Path
    from curate.extras import MissingExtra
    from curate.sources.video import FrameRequest, pick_video_frames
    try:
        list(pick_video_frames(Path({str(video)!r}), [FrameRequest(0.0)]))
    except MissingExtra as error:
        print("missing:", error)
    """
    result = python(code, blocked=("av",))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "missing: reading screen recordings (video files) needs the optional 'video'" \
        in result.stdout
    assert "pip install 'curate[video]'" in result.stdout


def test_an_import_error_inside_an_installed_extra_is_not_hidden() -> None:
    # Only the extra's own absence becomes the one-line message; a broken dependency *of* the
    # extra is a real bug and keeps its ImportError.
    code = """
    from curate.extras import require
    try:
        require("matplotlib", needed_for="x")
    except ImportError as error:
        print("import error:", error.name)
    """
    result = python(code, blocked=("numpy",))  # matplotlib imports numpy first thing
    assert result.returncode == 0, result.stderr[-3000:]
    assert "import error: numpy" in result.stdout
