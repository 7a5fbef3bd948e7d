"""The grounding executor: each family's documented answers, and a real server on 127.0.0.1."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest
from modelserver import ModelServer, grounding_responder, processor_resize
from modelserver.fixture import model_server
from PIL import Image

from curate.actions import Action
from curate.executors.base import ProposedStep, StepContext
from curate.executors.grounding import (
    FAMILIES,
    AnswerError,
    GroundingExecutor,
    get_family,
    parse_os_atlas,
    parse_qwen,
    parse_uitars,
    smart_resize,
    to_screen,
)
from curate.executors.registry import get_executor

__all__ = ["model_server"]


def screenshot(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def context(width: int = 1920, height: int = 1080, index: int = 0) -> StepContext:
    return StepContext("ep", index, "desktop", instruction="save the file",
                       screenshot=screenshot(width, height))


def click(instruction: str) -> ProposedStep:
    return ProposedStep("click", instruction)


# -- documented example answers ----------------------------------------------------------------

def test_ui_tars_1_0_readme_example_235_512_on_1920x1080_is_pixel_451_553() -> None:
    # README_v1.md "Coordinate Mapping": (235, 512) on 1920x1080 -> (451, 553).
    grounded = to_screen(get_family("ui-tars-1.0"), parse_uitars("(235,512)"), 1920, 1080)
    assert (round(grounded.x * 1920), round(grounded.y * 1080)) == (451, 553)
    assert grounded.provenance["convention"] == "grid1000"


def test_ui_tars_1_0_computer_prompt_box_tokens_are_read() -> None:
    answer = "Thought: save it\nAction: click(start_box='<|box_start|>(235,512)<|box_end|>')"
    assert parse_uitars(answer).values == (235.0, 512.0)


def test_ui_tars_1_5_coordinates_readme_example_is_pixels_of_the_smart_resized_image() -> None:
    # README_coordinates.md: "Action: click(start_box='(197,525)')", x / new_width * width.
    answer = "Thought: xxx\nAction: click(start_box='(197,525)')"
    family = get_family("ui-tars-1.5")
    assert smart_resize(1920, 1080, min_pixels=family.min_pixels,
                        max_pixels=family.max_pixels) == (1932, 1092)
    grounded = to_screen(family, parse_uitars(answer), 1920, 1080)
    assert grounded.x == round(197 / 1932, 4) and grounded.y == round(525 / 1092, 4)
    assert int(197 / 1932 * 1920) == 195  # the README's int(...) of the same conversion
    assert grounded.provenance["space"] == "pixels of the 1932x1092 smart-resized image"


def test_ui_tars_1_5_point_tag_from_its_parser_tests() -> None:
    # codes/tests/action_parser_test.py: "click(point='<point>200 300</point>')".
    point = parse_uitars("Thought: test\nAction: click(point='<point>200 300</point>')")
    assert point.values == (200.0, 300.0) and point.form == "start_box:point_tag"


def test_smart_resize_caps_large_screens_at_max_pixels() -> None:
    family = get_family("ui-tars-1.5")
    width, height = smart_resize(7680, 4320, min_pixels=family.min_pixels,
                                 max_pixels=family.max_pixels)
    assert width % 28 == 0 and height % 28 == 0 and width * height <= family.max_pixels
    assert (width, height) == processor_resize(7680, 4320, family.min_pixels,
                                               family.max_pixels)


def test_qwen2_5_vl_bbox_2d_json_in_a_fence_is_absolute_pixels_of_the_resized_image() -> None:
    answer = '```json\n[\n\t{"bbox_2d": [1300, 20, 1400, 60], "label": "Save"}\n]\n```'
    point = parse_qwen(answer)
    assert point.form == "bbox_2d" and point.point == (1350.0, 40.0)
    grounded = to_screen(get_family("qwen2.5-vl"), point, 1920, 1080)  # resized 1932x1092
    assert grounded.x == round(1350 / 1932, 4) and grounded.y == round(40 / 1092, 4)
    assert grounded.box == (round(1300 / 1932, 4), round(20 / 1092, 4),
                            round(1400 / 1932, 4), round(60 / 1092, 4))


def test_qwen_computer_use_tool_call_coordinate_is_read() -> None:
    answer = ('<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", '
              '"coordinate": [640, 360]}}\n</tool_call>')
    assert parse_qwen(answer).values == (640.0, 360.0)


def test_qwen3_vl_mobile_cookbook_tool_call_is_on_a_999_grid() -> None:
    # Qwen3-VL cookbooks/mobile_agent.ipynb: the screen is declared 999x999 and the answer
    # {"action": "click", "coordinate": [447, 81]} is rescaled by x / 999 * width.
    answer = ('Thought: search\n<tool_call>\n{"name": "mobile_use", "arguments": {"action": '
              '"click", "coordinate": [447, 81]}}\n</tool_call>')
    grounded = to_screen(get_family("qwen3-vl"), parse_qwen(answer), 1440, 3120)
    assert (round(grounded.x * 1440), round(grounded.y * 3120)) == (
        round(447 / 999 * 1440), round(81 / 999 * 3120))


def test_qwen3_vl_point_2d_is_on_a_0_1000_grid() -> None:
    # Qwen3-VL cookbooks/spatial_understanding.ipynb: {"point_2d": [x, y]}, x / 1000 * width.
    grounded = to_screen(get_family("qwen3-vl"),
                         parse_qwen('[{"point_2d": [250, 750], "label": "cake"}]'), 800, 600)
    assert (grounded.x, grounded.y) == (0.25, 0.75)


def test_os_atlas_readme_example_box_becomes_its_centre_on_a_0_1000_grid() -> None:
    # OS-Atlas README, OS-Atlas-Base-7B output.
    answer = ("<|object_ref_start|>language switch<|object_ref_end|><|box_start|>(576,12),"
              "(592,42)<|box_end|><|im_end|>")
    grounded = to_screen(get_family("os-atlas"), parse_os_atlas(answer), 1280, 720)
    assert (grounded.x, grounded.y) == (0.584, 0.027)
    assert grounded.box == (0.576, 0.012, 0.592, 0.042)


def test_os_atlas_answer_with_special_tokens_stripped_by_the_server() -> None:
    assert parse_os_atlas("language switch(576,12),(592,42)").values == (576, 12, 592, 42)


@pytest.mark.parametrize(("family", "answer"), [
    ("ui-tars-1.5", "Thought: I am not sure what to do."),
    ("ui-tars-1.0", "click somewhere"),
    ("qwen2.5-vl", '```json\n[{"bbox_2d": [1, 2, 3], "label": "x"}]\n```'),
    ("qwen3-vl", '[{"point_2d": "middle"}]'),
    ("qwen2.5-vl", "{not json"),
    ("os-atlas", "<|box_start|><|box_end|>"),
])
def test_malformed_answers_are_answer_errors(family: str, answer: str) -> None:
    from curate.executors.grounding import PARSERS

    with pytest.raises(AnswerError):
        PARSERS[family](answer)


def test_coordinates_outside_the_model_space_are_refused() -> None:
    with pytest.raises(AnswerError, match=r"outside the model's grid 0-1000"):
        to_screen(get_family("os-atlas"), parse_os_atlas("(1200,40)"), 1280, 720)
    with pytest.raises(AnswerError, match=r"1932x1092 smart-resized image"):
        to_screen(get_family("ui-tars-1.5"), parse_uitars("(1950,40)"), 1920, 1080)


# -- the executor against the test server -------------------------------------------------------

SAVE_BOX = (0.70, 0.02, 0.74, 0.06)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_grounds_the_instruction_back_onto_the_screenshot(
        family: str, model_server: ModelServer, tmp_path: Path) -> None:
    model_server.responder = grounding_responder(family, {"save button": SAVE_BOX})
    executor = get_executor("grounding", url=model_server.url, model=f"{family}-7b",
                            family=family, store=tmp_path)
    [execution] = executor.execute_many([(context(1366, 768), click("click the Save button"))])
    assert execution.outcome == "executed", execution.reason
    assert execution.executed is not None
    assert execution.executed.x == pytest.approx(0.72, abs=0.002)
    assert execution.executed.y == pytest.approx(0.04, abs=0.002)
    assert execution.executed.type == "click"
    assert execution.executed.coord_space == f"grounding:{family}"
    assert execution.provenance["family"] == family
    assert execution.raw and execution.cache_key
    prompt = model_server.requests[0].text
    assert "click the Save button" in prompt


def test_a_second_run_is_answered_from_the_store(model_server: ModelServer,
                                                 tmp_path: Path) -> None:
    model_server.responder = grounding_responder("qwen3-vl", {"save": SAVE_BOX})
    items = [(context(index=i), click("Save")) for i in range(3)]
    first = GroundingExecutor(url=model_server.url, model="q", family="qwen3-vl",
                              store=tmp_path).execute_many(items)
    again = GroundingExecutor(url=model_server.url, model="q", family="qwen3-vl",
                              store=tmp_path).execute_many(items)
    assert model_server.count == 1  # three identical screenshots and prompts: one request
    assert again == first


def test_bad_answers_and_servers_are_outcomes_with_reasons(model_server: ModelServer) -> None:
    model_server.responder = grounding_responder("ui-tars-1.5", {"save": SAVE_BOX})
    model_server.inject("garbage", "truncated")
    executor = GroundingExecutor(url=model_server.url, model="m", family="ui-tars-1.5",
                                 concurrency=1)
    garbage = executor.execute(context(index=0), click("Save one"))
    truncated = executor.execute(context(index=1), click("Save two"))
    unknown = executor.execute(context(index=2), click("the Print icon"))
    assert (garbage.outcome, truncated.outcome, unknown.outcome) == ("invalid_answer",) * 3
    assert "no (x,y)" in garbage.reason and garbage.raw
    assert "finish_reason length" in truncated.reason


def test_an_unreachable_endpoint_is_an_outcome() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    executor = GroundingExecutor(url=f"http://127.0.0.1:{port}/v1", model="m",
                                 family="os-atlas", max_retries=1, backoff=0.0)
    execution = executor.execute(context(), click("Save"))
    assert execution.outcome == "unreachable" and f"127.0.0.1:{port}" in execution.reason


def test_steps_a_grounding_model_cannot_take_are_outcomes(model_server: ModelServer) -> None:
    executor = GroundingExecutor(url=model_server.url, model="m", family="os-atlas")
    typed = Action("type", text="hello")
    results = executor.execute_many([
        (context(), ProposedStep("type", "type hello", typed)),
        (context(), ProposedStep("drag", "drag the slider")),
        (context(), ProposedStep("click", "")),
        (StepContext("ep", 0, "desktop"), click("Save")),
        (StepContext("ep", 0, "desktop", screenshot=b"not an image"), click("Save")),
    ])
    assert [r.outcome for r in results] == ["executed", "not_executable", "not_executable",
                                           "not_executable", "not_executable"]
    assert results[0].executed == typed
    assert model_server.count == 0


def test_an_unknown_family_names_the_known_ones(model_server: ModelServer) -> None:
    with pytest.raises(ValueError, match=r"unknown grounding family 'seeclick'.*os-atlas"):
        GroundingExecutor(url=model_server.url, model="m", family="seeclick")
