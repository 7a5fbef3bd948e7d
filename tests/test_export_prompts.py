"""The prompt tells the model which screenshot is the current screen."""

from __future__ import annotations

from curate.export.prompts import stage1_prompt, stage2_prompt
from curate.export.rows import _images_and_prompt


def test_with_history_images_the_last_image_is_named_the_current_screen() -> None:
    prompt = stage1_prompt("Send mail", ["click(x=0.1, y=0.2)"], 3, ["<image>"] * 3)
    assert ("Earlier screens, oldest first (images 1 to 2 of 3): <image><image>\n"
            "Current screen (image 3 of 3): <image>\n") in prompt
    assert "Current screen: <image>\n" in stage2_prompt("Send mail", None, [], ["<image>"])


def test_history_images_without_a_current_screenshot_say_so() -> None:
    row = {"history_images": [{"bytes": b"1"}, {"bytes": b"2"}], "image": None,
           "instruction": "Send mail", "history": [], "horizon": 3}
    images, prompt = _images_and_prompt(row, "stage1")
    assert len(images) == 2 and prompt.count("<image>") == 2
    assert ("Earlier screens, oldest first (images 1 to 2 of 2): <image><image>\n"
            "No screenshot of the current screen is available.\n") in prompt
    row = {**row, "history_images": [], "image": {"bytes": b"3"}}
    assert "Current screen: <image>\n" in _images_and_prompt(row, "stage1")[1]
