"""Images in an ingested folder that no step references are reported (issue 18 part 3): a
frame-level report per image (file, reason "image not referenced by any step"), never an
episode reject: the episodes are whole. Each adapter that reads a folder of screenshots is
tried on a real sample or a fixture with one extra PNG; the real samples report none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from curate.cli import cli
from curate.sources.adapters.base import UNREFERENCED_IMAGE
from curate.store import open_store
from tests.conftest import REALDATA, REPO

FIXTURES = REPO / "tests" / "fixtures"
# (unit folder, where the extra image goes inside it, its name)
UNITS = [
    (REALDATA / "osworld_sec_eval_claude" / "sec_eval_results" / "execute_binary_short_popup"
     / "20250226@213928-success-exemplary", ".", "step_99_20250226@220000.png"),
    (REALDATA / "droidbot_utg" / "report_com.yanzhenjie.album.sample", "states",
     "screen_2099-01-01_000000.png"),
    (REALDATA / "agentnet_bench" / "evaluation" / "agentnetbench" / "sample_data", "images",
     "s_7f27a11115e596eb_99.png"),
    (FIXTURES / "agentlab" / "exp_form", ".", "screenshot_step_9.png"),
    (FIXTURES / "seeact" / "exp_textual_choice",
     "11111111-2222-4333-8444-555555555555_00000000-0000-4000-8000-000000000001/images",
     "9.jpg"),
    (FIXTURES / "weblinx" / "demonstrations" / "aaabbbc", "screenshots", "screenshot-99.png"),
]


def _ingest(source: Path, store: Path) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["ingest", str(source), "-o", str(store),
                                      "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return open_store(store).read_rejects().to_pylist()


def _counts(store: Path) -> tuple[int, int]:
    opened = open_store(store)
    return opened.read_episodes().num_rows, opened.read_steps().num_rows


@pytest.mark.parametrize(("unit", "inside", "name"), UNITS,
                         ids=[unit.name[:24] for unit, _, _ in UNITS])
def test_an_extra_image_is_reported_not_rejected(unit: Path, inside: str, name: str,
                                                 tmp_path: Path) -> None:
    if not unit.is_dir():
        pytest.skip(f"{unit} is not available")
    copy = tmp_path / "in" / unit.name
    shutil.copytree(unit, copy)
    before = _ingest(copy, tmp_path / "before")
    known = {str(r["file"]) for r in before if r["reason"] == UNREFERENCED_IMAGE}
    (copy / inside).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(copy / inside / name)
    after = _ingest(copy, tmp_path / "after")
    reports = [r for r in after
               if r["reason"] == UNREFERENCED_IMAGE and str(r["file"]) not in known]
    assert [(Path(str(r["file"])).name, r["level"]) for r in reports] == [(name, "frame")]
    assert str(reports[0]["file"]).endswith(f"{inside}/{name}".removeprefix("./"))
    assert len(after) == len(before) + 1  # nothing else changed, no episode reject
    assert _counts(tmp_path / "after") == _counts(tmp_path / "before")


def test_fixtures_images_left_out_are_the_ones_reported(tmp_path: Path) -> None:
    """The fixtures' own: WebLINX's screenshot marked broken is named by its step (reported
    as broken, not as unreferenced); of SeeAct's crops, the batch without the positive
    candidate is reported, and the images of an action folder rejected whole are not."""
    weblinx = _ingest(FIXTURES / "weblinx" / "demonstrations", tmp_path / "weblinx")
    assert [r["file"] for r in weblinx if r["reason"] == UNREFERENCED_IMAGE] == []
    assert any("marked broken" in str(r["reason"]) for r in weblinx)
    seeact = _ingest(FIXTURES / "seeact" / "exp_textual_choice", tmp_path / "seeact")
    assert [r["file"] for r in seeact if r["reason"] == UNREFERENCED_IMAGE] == [
        "exp_textual_choice/11111111-2222-4333-8444-555555555555_ffffffff-0000-4000-8000-"
        "000000000000/images/0.jpg"]


@pytest.mark.realdata
@pytest.mark.parametrize("folder", ["osworld_sec_eval_claude", "droidbot_utg",
                                    "agentnet_bench", "agentlab_browsergym"])
def test_real_samples_reference_every_image(folder: str, tmp_path: Path) -> None:
    if not (REALDATA / folder).is_dir():
        pytest.skip(f"{REALDATA / folder} is not available")
    rejects = _ingest(REALDATA / folder, tmp_path / "store")
    assert [r["file"] for r in rejects if r["reason"] == UNREFERENCED_IMAGE] == []
