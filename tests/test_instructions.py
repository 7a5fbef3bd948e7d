"""Step instructions for every step, with the source each came from."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import REALDATA, realdata

from curate.pipeline.ingest import ingest
from curate.pipeline.instructions import derive_step_instruction, resolve, step_instructions

BOX = {"x0": 0.05, "y0": 0.85, "x1": 0.15, "y1": 0.95}


def test_a_click_on_a_recorded_element_names_its_text_role_and_place() -> None:
    action = {"type": "click", "x": 0.1, "y": 0.9,
              "target": {"text": " Submit\n", "role": "ButtonControl", **BOX}}
    assert derive_step_instruction(action) == 'click the "Submit" button at the bottom left'


def test_a_click_without_an_element_says_where_it_is() -> None:
    assert derive_step_instruction({"type": "right_click", "x": 0.5, "y": 0.1}) == \
        "right-click the top of the screen"


def test_pixels_without_the_screen_size_are_named_as_pixels() -> None:
    # OSWorld logs pyautogui.moveTo(124, 36) then click(): pixels, no screen size.
    assert derive_step_instruction({"type": "move", "px": 124.0, "py": 36.0}) == \
        "move the pointer to the point (124, 36) in screen pixels"
    assert derive_step_instruction({"type": "click", "px": 10.5, "py": 3.0}) == \
        "click the point (10.5, 3) in screen pixels"
    assert derive_step_instruction({"type": "click"}) is None


def test_an_element_known_only_by_its_page_id_is_named_by_it() -> None:
    # ADP's BrowserGym-style web data: click(bid="93"), no text, role or place.
    click = {"type": "click", "target": {"element_id": "93", "text": None, "role": None}}
    assert derive_step_instruction(click) == 'click the element with id "93"'
    assert derive_step_instruction({"type": "click", "target": {"element_id": None}}) is None


def test_typing_into_a_field_and_tool_calls_are_described() -> None:
    typed = {"type": "type", "text": "hello", "target": {"role": "edit", **BOX}}
    assert derive_step_instruction(typed) == 'type "hello" into the text field at the bottom left'
    call = {"type": "tool_call", "tool_name": "search", "tool_args": '{"q": "x", "n": 1}'}
    assert derive_step_instruction(call) == "call search with n, q"


def test_a_human_beats_the_source_which_beats_the_model_which_beats_deriving() -> None:
    action = {"type": "back"}
    assert resolve(action, recorded="r", model="m", human="h") == ("h", "human")
    assert resolve(action, recorded="r", model="m") == ("r", "recorded")
    assert resolve(action, recorded="  ", model="m") == ("m", "model")
    assert resolve(action) == ("go back", "derived")
    assert resolve({"type": "click"}) == (None, "none")


def test_every_step_of_the_real_samples_has_an_instruction_and_its_source(
        tmp_path: Path) -> None:
    realdata("osworld_sec_eval_claude")
    store = tmp_path / "store"
    ingest([path for path in sorted(REALDATA.iterdir()) if path.is_dir()], store)
    steps = pa.concat_tables(pq.read_table(path) for path in sorted((store / "steps").glob(
        "*.parquet")))
    assert steps.num_rows > 400
    texts, sources = step_instructions(store, steps)
    missing = [(e, i, a["type"]) for e, i, a, s in zip(
        steps.column("episode_id").to_pylist(), steps.column("step_index").to_pylist(),
        steps.column("action").to_pylist(), sources, strict=True) if s == "none"]
    assert missing == []
    assert all(texts)
    assert {"recorded", "derived"} <= set(sources)
