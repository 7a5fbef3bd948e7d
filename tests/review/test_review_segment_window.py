"""A forecast window reviewed as it will be trained: every frame with its action drawn, in the
real Label Studio UI (headless Chromium, checked by its pixels), and the first wrong step
marked, pulled and applied."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import chromium_page
from PIL import Image

from curate.actions.drawing import RING
from curate.review import apply_reviews_to_segments, pull, push, read_reviews
from curate.store.core import open_store

from .conftest import LabelStudioServer, open_task
from .test_review_roundtrip import NATIVE, annotate, choice, project_name, tasks_by_key

pytestmark = pytest.mark.slow
# settings_rename from step 0: click the checkbox, click into the name field, type the name;
# then the screen after the window. Four frames, three drawn actions.
WINDOW = f"{NATIVE}:0:3"
CLICKS = {0: (0.1021, 0.2156), 1: (0.3542, 0.3844)}  # frame -> a_t+i's click point


def push_window(server: LabelStudioServer, store: Path, prefix: str) -> tuple[Any, dict[
        str, Any]]:
    from curate.pipeline.segment import segment

    segment(store)
    project = project_name(prefix)
    summary = push(store, project=project, url=server.url, api_key=server.token,
                   unit="segment", filter_sql=f"segment_id = '{WINDOW}'")
    return summary, tasks_by_key(server, project)[f"segment:{WINDOW}"]


def red_pixels(image: Image.Image, centre: tuple[float, float], radius: int) -> int:
    """Pixels near the click marker's colour within ``radius`` of ``centre``."""
    want = RING["click"]
    x, y = round(centre[0]), round(centre[1])
    patch = np.asarray(image.convert("RGB").crop((x - radius, y - radius, x + radius,
                                                  y + radius)), dtype=np.int32)
    return int((np.abs(patch - np.array(want)).max(axis=2) < 40).sum())


def yellow_pixels(image: Image.Image, bottom: float) -> int:
    """Caption-coloured pixels in the bottom share of the image's left half."""
    band = np.asarray(image.crop((0, int(image.height * (1 - bottom)), image.width // 2,
                                  image.height)))
    return int(((band[..., 0] > 200) & (band[..., 1] > 200) & (band[..., 2] < 120)).sum())


def frame_image(store: Path, frame_id: str) -> Image.Image:
    return Image.open(io.BytesIO(open_store(store).frame_bytes(frame_id)))


def test_a_window_task_shows_every_frame_with_its_action_drawn_in_the_ui(
        label_studio: LabelStudioServer, sample_store: Path, tmp_path: Path) -> None:
    summary, task = push_window(label_studio, sample_store, "window-ui")
    captions = [f["caption"] for f in task["data"]["frames"]]
    assert captions == ['s_t+0 with a_t+0: click(x=0.1021, y=0.2156)',
                        's_t+1 with a_t+1: click(x=0.3542, y=0.3844)',
                        's_t+2 with a_t+2: type(text="studio-laptop")',
                        's_t+3: the screen after the window']
    assert [c["value"] for c in task["data"]["step_choices"]] == ["a_t+0", "a_t+1", "a_t+2"]
    segment = next(r for r in open_store(sample_store).read("segments").to_pylist()
                   if r["segment_id"] == WINDOW)
    with chromium_page(1400, 950) as page:
        open_task(page, label_studio, summary.project_id, int(task["id"]))
        # Label Studio draws each image on a Konva stage (the <img> itself is clipped away):
        # the stages are what the reviewer sees, one per frame.
        stages = page.locator(".konvajs-content")
        stages.nth(3).wait_for(timeout=60_000)
        page.wait_for_timeout(1000)  # let the images decode before the screenshots
        assert stages.count() == 4
        body = page.inner_text("body")
        for caption in captions:
            assert caption in body
        offered = body.partition("First wrong step")[2].partition("Is this window")[0]
        assert [v for v in ("a_t+0", "a_t+1", "a_t+2", "a_t+3") if v in offered] == [
            "a_t+0", "a_t+1", "a_t+2"]
        shots = []
        for index in range(4):
            path = tmp_path / f"frame_{index}.png"
            stages.nth(index).screenshot(path=str(path))
            shots.append(Image.open(path).convert("RGB"))
    scale = shots[0].width / frame_image(sample_store, segment["frame_id"]).width
    for index, shot in enumerate(shots):
        for clicked, (x, y) in CLICKS.items():
            found = red_pixels(shot, (x * shot.width, y * shot.height), round(4 * scale))
            if clicked == index:  # the marker's centre dot sits on the click point ...
                assert found >= 8, (index, found)
            else:  # ... of its own frame only
                assert found == 0, (index, clicked, found)
    # the recorded screenshot itself has no red there: the marker is curate's drawing
    raw = frame_image(sample_store, segment["frame_id"])
    assert red_pixels(raw, (CLICKS[0][0] * raw.width, CLICKS[0][1] * raw.height), 16) == 0
    # typed text is a caption on its frame (yellow on black, bottom left) ...
    assert yellow_pixels(shots[2], bottom=0.15) > 20
    # ... and the screen after the window is shown as recorded, with nothing drawn on it
    after = shots[3]
    assert yellow_pixels(after, bottom=1.0) == 0
    assert red_pixels(after, (after.width / 2, after.height / 2), after.width) == 0
    recorded = frame_image(sample_store, segment["target_next_frame_ids"][2])
    difference = np.abs(np.asarray(after, dtype=np.int32) - np.asarray(
        recorded.convert("RGB").resize(after.size), dtype=np.int32)).mean()
    assert difference < 20, difference


def test_the_first_wrong_step_masks_it_and_the_steps_after_it(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    summary, task = push_window(label_studio, sample_store, "window-first-wrong")
    annotate(label_studio, task, choice("first_wrong", "a_t+1", "targets"),
             choice("consistent", "inconsistent", "targets"))
    pulled = pull(sample_store, project=summary.project, url=label_studio.url,
                  api_key=label_studio.token)
    assert pulled.skipped == [] and pulled.reviews == 1
    reviews = read_reviews(open_store(sample_store))
    assert reviews is not None
    row = reviews.to_pylist()[0]
    assert (row["first_wrong_step"], row["consistency"]) == (1, 0.0)
    segments = open_store(sample_store).read("segments")
    reviewed = {r["segment_id"]: r for r in
                apply_reviews_to_segments(segments, reviews).to_pylist()}
    # a_t+0 accepted (still a target), a_t+1 and a_t+2 out of this window's targets
    assert reviewed[WINDOW]["mask"] == [True, False, False]
    assert reviewed[WINDOW]["label_source"] == "human"
    # other windows, which the reviewer did not see, keep their mask
    untouched = f"{NATIVE}:1:3"
    assert reviewed[untouched]["mask"] == next(
        r["mask"] for r in segments.to_pylist() if r["segment_id"] == untouched)


def test_a_first_wrong_step_outside_the_window_is_reported_and_nothing_applied(
        label_studio: LabelStudioServer, sample_store: Path) -> None:
    summary, task = push_window(label_studio, sample_store, "window-bad-step")
    annotate(label_studio, task, choice("first_wrong", "a_t+5", "targets"),
             choice("consistent", "inconsistent", "targets"))
    pulled = pull(sample_store, project=summary.project, url=label_studio.url,
                  api_key=label_studio.token)
    assert [s.task_id for s in pulled.skipped] == [int(task["id"])]
    assert "a_t+5" in pulled.skipped[0].reason and "not a real step" in pulled.skipped[0].reason
    assert pulled.reviews == 0
