"""A pushed task, opened in the real Label Studio UI in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import chromium_page

from curate.review import push

from .conftest import LabelStudioServer, open_task

pytestmark = pytest.mark.slow
NATIVE = "1d2a3d40451cde2950be7353896efd60"


def test_pushed_step_shows_its_screenshot_and_click_marker_in_the_ui(
        label_studio: LabelStudioServer, sample_store: Path, tmp_path: Path) -> None:
    summary = push(sample_store, project="browser-steps", url=label_studio.url,
                   api_key=label_studio.token,
                   filter_sql=f"episode_id = '{NATIVE}' AND step_index = 1")
    task_id = summary.task_ids[0]
    shot = tmp_path / "label_studio_task.png"
    with chromium_page(1400, 950) as page:
        open_task(page, label_studio, summary.project_id, task_id)
        # The prediction becomes the reviewer's starting point: its regions are listed.
        keypoint = page.locator(".lsf-tree__node_type_keypointregion")
        keypoint.first.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)  # let the canvas draw the marker before the screenshot
        page.screenshot(path=str(shot))
        assert "click" in keypoint.first.inner_text()
        assert page.locator(".lsf-tree__node_type_rectangleregion").count() == 1
        screenshot = page.locator('img[src^="data:image/png;base64,"]')
        assert screenshot.count() >= 1 and screenshot.first.is_visible()
        body = page.inner_text("body")
        assert "step 1: click(x=0.3542, y=0.3844)" in body
        assert "Turn on sync and rename this device" in body
    assert shot.stat().st_size > 10_000
    print(f"Label Studio screenshot: {shot}")
