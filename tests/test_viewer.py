"""`curate view`: one self-contained page, checked in headless Chromium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from browser import chromium_page

from curate.actions import Action
from curate.errors import CurateError
from curate.pipeline.ingest import ingest
from curate.store.core import open_store
from curate.views.viewer import render_view

REPO = Path(__file__).resolve().parents[1]
NATIVE = "1d2a3d40451cde2950be7353896efd60"


@pytest.fixture(scope="module")
def store(sample_store_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared sample store (a test here segments it)."""
    path = tmp_path_factory.mktemp("view") / "store"
    shutil.copytree(sample_store_template, path)
    return path


def pointer_steps_with_frames(store: Path) -> int:
    steps = open_store(store).read("steps").to_pylist()
    return sum(1 for s in steps if s["frame_id"] and Action.from_row(s["action"]).x is not None)


def test_page_is_self_contained(store: Path, tmp_path: Path) -> None:
    page = render_view(store, out_path=tmp_path / "view.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page), "external resource"
    assert "<script" not in page
    assert page.count('loading="lazy"') == page.count("<img ")


def test_unknown_episode_is_a_clear_error(store: Path, tmp_path: Path) -> None:
    with pytest.raises(CurateError, match=r"episode nope is not in .*; list them with `curate"):
        render_view(store, episode_ids=["nope"], out_path=tmp_path / "v.html")


def test_viewer_shows_every_step_with_its_action_in_chromium(store: Path,
                                                             tmp_path: Path) -> None:
    out = render_view(store, out_path=tmp_path / "view.html")
    steps = open_store(store).read("steps").num_rows
    with chromium_page() as page:
        page.goto(out.as_uri())
        page.wait_for_load_state("load")
        assert page.errors == []
        assert page.locator("article.step").count() == steps
        assert page.locator("svg.overlay .marker").count() == pointer_steps_with_frames(store)
        assert page.locator("details.episode").count() == 5
        assert page.locator(".rejects li").count() >= 5  # the OSWorld edge run's rejects
        assert page.locator(".caption", has_text="studio-laptop").count() == 1


def test_one_episode_screenshot(store: Path, tmp_path: Path) -> None:
    out = render_view(store, episode_ids=[NATIVE], out_path=tmp_path / "native.html")
    shot = tmp_path / "viewer.png"
    with chromium_page(1200, 900) as page:
        page.goto(out.as_uri())
        page.wait_for_load_state("load")
        cards = page.locator("article.step")
        assert cards.count() == 5
        first = cards.nth(0)
        assert first.locator("img").evaluate("i => i.complete && i.naturalWidth") == 480
        marker = first.locator(".marker.click")
        assert marker.count() == 1
        # The marker sits on the "Enable sync" checkbox: click(x=0.1021, y=0.2156).
        image, point = first.locator("img").bounding_box(), marker.bounding_box()
        assert image is not None and point is not None
        centre_x = (point["x"] + point["width"] / 2 - image["x"]) / image["width"]
        centre_y = (point["y"] + point["height"] / 2 - image["y"]) / image["height"]
        assert centre_x == pytest.approx(0.1021, abs=0.01)
        assert centre_y == pytest.approx(0.2156, abs=0.01)
        assert "on_path" in first.inner_text()
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"viewer screenshot: {shot}")


def test_drag_and_scroll_are_drawn_as_paths(native_episode, tmp_path: Path) -> None:
    steps = [
        {"action": "drag(x=0.1, y=0.2, x2=0.6, y2=0.7)", "frame": "frames/0.png",
         "next_frame": "frames/1.png"},
        {"action": 'scroll(x=0.5, y=0.5, direction="down", amount=3)',
         "frame": "frames/1.png", "next_frame": "frames/2.png"},
        {"action": 'key(keys=["ctrl", "s"])', "frame": "frames/2.png"},
    ]
    native_episode("moves", steps=steps)
    ingest([tmp_path / "recordings"], tmp_path / "store")
    out = render_view(tmp_path / "store", out_path=tmp_path / "moves.html")
    with chromium_page() as page:
        page.goto(out.as_uri())
        page.wait_for_load_state("load")
        assert page.errors == []
        assert page.locator(".marker.drag line[marker-end]").count() == 1
        assert page.locator(".marker.scroll line[marker-end]").count() == 1
        assert page.locator(".caption", has_text="ctrl + s").count() == 1
        assert page.locator(".badge.none").count() == 3  # not labelled yet, and says so


def test_forecast_windows_sit_next_to_their_reference(store: Path, tmp_path: Path) -> None:
    from curate.pipeline.segment import segment

    segment(store)
    out = render_view(store, episode_ids=[NATIVE], out_path=tmp_path / "windows.html")
    with chromium_page() as page:
        page.goto(out.as_uri())
        page.wait_for_load_state("load")
        assert page.errors == []
        windows = page.locator("table.window")
        assert windows.count() == 5  # one K=3 window per step
        first = windows.first.inner_text()
        assert "forecast target" in first and "loop-free reference" in first
        assert "click(x=0.1021, y=0.2156)" in first


def test_inverted_target_boxes_are_drawn_between_their_corners() -> None:
    """DroidBot records views clipped off-screen with top below bottom."""
    import re

    from curate.actions import Action, Target
    from curate.views.viewer import _overlay

    action = Action("click", x=0.5, y=0.5, target=Target(x0=0.6, y0=0.9, x1=0.2, y1=0.4))
    svg = _overlay(action, 100, 200, "recorded")
    width, height = (float(v) for v in re.search(
        r'width="(-?[\d.]+)" height="(-?[\d.]+)"', svg).groups())
    assert (width, height) == (40.0, 100.0)
