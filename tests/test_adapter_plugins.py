"""Adapters as plugins: an installed package adds a format through `curate.adapters`.

The fixture package (tests/fixtures/plugin_package) is packed into a wheel here and
installed by pip into a temporary folder, so Python finds it through real
``*.dist-info/entry_points.txt`` metadata, exactly as after ``pip install``; curate then runs
in a fresh process with that folder on its path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "tests" / "fixtures" / "plugin_package"
DIST, VERSION = "curate_demo_plugin", "0.1.0"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(folder: Path) -> Path:
    """A pure-Python wheel of the fixture package (no build backend needed offline)."""
    info = f"{DIST}-{VERSION}.dist-info"
    files = {f"{DIST}/__init__.py": (PACKAGE / DIST / "__init__.py").read_bytes(),
             f"{info}/METADATA": (f"Metadata-Version: 2.1\nName: curate-demo-plugin\n"
                                  f"Version: {VERSION}\n").encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: curate-tests\n"
                              b"Root-Is-Purelib: true\nTag: py3-none-any\n",
             f"{info}/entry_points.txt": (PACKAGE / "entry_points.txt").read_bytes()}
    record = [_record_line(name, data) for name, data in files.items()] + [f"{info}/RECORD,,"]
    wheel = folder / f"{DIST}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("plugin")
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(target), str(build_wheel(work))],
                   check=True, capture_output=True)
    assert (target / f"{DIST}-{VERSION}.dist-info" / "entry_points.txt").is_file()
    return target


def curate(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    return subprocess.run([sys.executable, "-m", "curate.cli", *args], env=env, text=True,
                          capture_output=True, timeout=300)


def test_formats_lists_the_plugin_with_its_origin(site: Path) -> None:
    result = curate(site, "formats")
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("demo_clicks ")]
    assert "plugin curate-demo-plugin 0.1.0 (demo_clicks = curate_demo_plugin:ClicksAdapter)" \
        in line
    assert any(line.startswith("agentnet_hf ") and " built-in " in line
               for line in result.stdout.splitlines())


def test_a_broken_entry_point_is_reported_and_skipped(site: Path) -> None:
    result = curate(site, "formats")
    assert "zz_broken" not in result.stdout
    assert "adapter plugin curate-demo-plugin 0.1.0 (zz_broken" in result.stderr
    assert "NoSuchAdapter" in result.stderr


def test_ingest_detects_and_reads_the_plugin_format(site: Path, tmp_path: Path) -> None:
    source = tmp_path / "recordings"
    source.mkdir()
    (source / "sample.clicks").write_bytes((PACKAGE / "sample.clicks").read_bytes())
    result = curate(site, "ingest", str(source), "-o", str(tmp_path / "store"),
                    "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "episodes   1 (demo_clicks 1)" in result.stdout
    assert "steps      2" in result.stdout
    assert "rejects    1" in result.stdout  # the line that is not two numbers


def test_without_the_package_the_format_is_unknown(tmp_path: Path) -> None:
    result = curate(tmp_path, "formats")
    assert result.returncode == 0 and "demo_clicks" not in result.stdout
