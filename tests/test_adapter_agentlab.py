"""The AgentLab/BrowserGym adapter, on the generated fixture and on the real sample."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from curate.actions import Action
from curate.errors import ActionParseError
from curate.pipeline.extract import extract_unit, read_unit
from curate.sources import adapters
from curate.sources.adapters.agentlab import convert_code
from curate.sources.adapters.base import (
    FILE_MISSING,
    INTERMEDIATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    SourceUnit,
    UnitBuilder,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "agentlab"
FIXTURE = FIXTURES / "exp_form"
REAL = Path(__file__).resolve().parents[2] / "shared/realdata/agentlab_browsergym"
REAL_RUNS = REAL / "tests" / "data" / "error_analysis"
REAL_STUBS = REAL / "tests" / "data" / "test_study"


def _read(folder: Path) -> UnitBuilder:
    return read_unit(SourceUnit(folder, folder.name), adapters.get("agentlab"))


def _steps(out: UnitBuilder) -> list[dict[str, Any]]:
    (episode,) = out.episodes
    return episode.step_rows()


@pytest.fixture
def fixture_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "exp_form"
    shutil.copytree(FIXTURE, folder)
    return folder


@pytest.fixture(scope="module")
def maker() -> ModuleType:
    """The fixture generator, imported to write variant step pickles."""
    spec = importlib.util.spec_from_file_location("agentlab_make_fixture",
                                                  FIXTURES / "make_fixture.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _real_runs() -> list[Path]:
    if not REAL_RUNS.is_dir():
        pytest.skip(f"real sample {REAL} is not available (../shared/realdata is absent)")
    return sorted(path for path in REAL_RUNS.iterdir() if path.is_dir())


# --------------------------------------------------------------------------- detection

def test_claims_experiment_folders_with_step_pickles_or_exp_args(tmp_path: Path) -> None:
    adapter = adapters.get("agentlab")
    assert adapter.claims(FIXTURE)
    assert not adapter.claims(FIXTURES)
    assert not adapter.claims(FIXTURE / "summary_info.json")
    assert not adapter.claims(tmp_path)


# --------------------------------------------------------------------------- the fixture

def test_fill_becomes_type_with_the_textbox_as_target() -> None:
    fill = _steps(_read(FIXTURE))[0]
    assert fill["action_text"] == 'type(text="hello world")'
    target = fill["action"]["target"]
    # bbox [40, 60, 200, 30] in a 400x300 viewport (from exp_args.pkl)
    assert target == {"text": "Name", "role": "textbox", "x0": 0.1, "y0": 0.2, "x1": 0.6,
                      "y1": 0.3, "element_id": "12"}
    assert fill["action"]["raw"] == "fill('12', 'hello world')"


def test_click_on_a_bid_lands_on_the_centre_of_its_box() -> None:
    click = _steps(_read(FIXTURE))[1]["action"]
    # bbox [40, 120, 80, 32]: centre (80, 136) of 400x300
    assert (click["type"], click["x"], click["y"]) == ("click", 0.2, 0.4533)
    assert (click["px"], click["py"], click["coord_space"]) == (80.0, 136.0, "element")
    assert (click["screen_width"], click["screen_height"]) == (400, 300)
    assert click["target"]["role"] == "button" and click["target"]["text"] == "Submit"
    assert click["target"]["x0"] <= click["x"] <= click["target"]["x1"]


def test_reward_of_an_action_is_read_from_the_next_step_pickle() -> None:
    steps = _steps(_read(FIXTURE))
    assert steps[0]["reward"] == 0.25  # step_1.pkl.gz's reward, not step_0's 0.0
    assert steps[-1]["reward"] == 1.0  # the final observation's reward


def test_error_text_and_timing_of_an_action_come_from_the_next_step() -> None:
    fill = _steps(_read(FIXTURE))[0]
    assert fill["observation"] == "Error: the autocomplete popup covered the field"
    # step_1's profiling: action_exec_start/stop of the transition into obs 1
    assert fill["timestamp"] == pytest.approx(1_700_000_010.1)
    assert fill["timestamp_end"] == pytest.approx(1_700_000_010.4)


def test_final_step_with_action_none_is_the_next_state_not_a_step() -> None:
    out = _read(FIXTURE)
    steps = _steps(out)
    assert [step["source_position"].split("/")[-1] for step in steps] == [
        "step_0.pkl.gz", "step_1.pkl.gz", "step_3.pkl.gz call 1 of 2",
        "step_3.pkl.gz call 2 of 2",
    ]
    final = out.episodes[0].frames[steps[-1]["next_frame_id"]]
    assert (final.width, final.height) == (400, 300)


def test_corrupt_step_pickle_is_a_step_reject_naming_the_file() -> None:
    out = _read(FIXTURE)
    (reject,) = out.rejects
    assert (reject.file, reject.level) == ("exp_form/step_2.pkl.gz", "step")
    assert "truncated" in reject.reason and reject.position.startswith("byte ")
    assert reject.episode_id == out.episodes[0].episode_id


def test_step_before_a_corrupt_pickle_keeps_its_action_but_not_its_reward() -> None:
    click = _steps(_read(FIXTURE))[1]
    assert click["action"]["type"] == "click"
    assert click["reward"] is None and click["next_frame_id"] is None
    assert click["next_frame_missing"] == FILE_MISSING
    assert any("step_2.pkl.gz unreadable" in warning for warning in click["warnings"])


def test_several_calls_in_one_step_become_consecutive_steps() -> None:
    first, second = _steps(_read(FIXTURE))[2:]
    assert first["action"]["type"] == "click" and second["action_text"] == (
        'answer(text="Submitted.")')
    assert first["thought"] == "Click the confirmation and tell the user."
    assert second["thought"] is None
    assert first["reward"] is None and second["reward"] == 1.0
    assert first["next_frame_missing"] == INTERMEDIATE_NOT_RECORDED
    assert second["frame_missing"] == INTERMEDIATE_NOT_RECORDED
    assert second["next_frame_id"] is not None


def test_unresolvable_bid_keeps_the_element_id_with_a_warning() -> None:
    click = _steps(_read(FIXTURE))[2]
    assert click["action"]["target"]["element_id"] == "99"
    assert click["action"]["x"] is None and click["action"]["target"]["x0"] is None
    assert any("'99' not resolved" in warning for warning in click["warnings"])


def test_screenshot_files_are_kept_as_recorded_and_arrays_encoded_as_png() -> None:
    out = _read(FIXTURE)
    steps, frames = _steps(out), out.episodes[0].frames
    recorded = (FIXTURE / "screenshot_step_0.png").read_bytes()
    assert frames[steps[0]["frame_id"]].data == recorded
    encoded = frames[steps[0]["next_frame_id"]]  # obs["screenshot"] array of step_1
    assert encoded.format == "png" and (encoded.width, encoded.height) == (400, 300)
    assert steps[1]["frame_id"] == steps[0]["next_frame_id"]
    again = _read(FIXTURE).episodes[0].frames
    assert again[encoded.frame_id].data == encoded.data  # deterministic encoding
    assert steps[2]["frame_missing"] == FILE_MISSING  # step_3 has no screenshot


def test_instruction_thought_summary_and_metadata() -> None:
    (episode,) = _read(FIXTURE).episodes
    assert episode.instruction == "Type hello world in the Name field and submit the form."
    assert episode.platform == "web"
    assert (episode.outcome, episode.score) == ("success", 1.75)
    assert (episode.terminated, episode.truncated, episode.clock) == (True, False, "unix")
    assert episode.metadata["task_name"] == "fixture.form"
    assert episode.metadata["viewport"] == [400, 300]
    assert _steps(_read(FIXTURE))[0]["thought"] == "The Name field is empty, so I fill it first."


def test_extract_unit_writes_tables_matching_the_store_schema() -> None:
    tables = extract_unit(SourceUnit(FIXTURE, FIXTURE.name), "agentlab")
    assert tables.summary == (1, 4, 1)
    assert tables.frames.num_rows == 3
    second = extract_unit(SourceUnit(FIXTURE, FIXTURE.name), "agentlab")
    assert second.steps.equals(tables.steps) and second.frames.equals(tables.frames)


# --------------------------------------------------------------------------- variants

def test_folder_without_step_pickles_is_an_episode_reject(fixture_copy: Path) -> None:
    for path in fixture_copy.glob("step_*.pkl.gz"):
        path.unlink()
    out = _read(fixture_copy)
    assert out.episodes == []
    (reject,) = out.rejects
    assert reject.level == "episode" and "no step_N.pkl.gz" in reject.reason
    assert "n_steps=4" in reject.reason


def test_missing_step_in_the_numbering_is_reported(fixture_copy: Path) -> None:
    (fixture_copy / "step_1.pkl.gz").unlink()
    out = _read(fixture_copy)
    files = {reject.file for reject in out.rejects}
    assert "exp_form/step_1.pkl.gz" in files
    fill = _steps(out)[0]
    assert fill["reward"] is None and any("no step_1" in w for w in fill["warnings"])


def test_action_none_before_the_last_step_is_a_step_reject(fixture_copy: Path,
                                                           maker: ModuleType) -> None:
    maker._write_pickle(fixture_copy / "step_1.pkl.gz",
                        maker._step(1, None, 0.25, maker._obs()))
    out = _read(fixture_copy)
    reject = next(r for r in out.rejects if r.file.endswith("step_1.pkl.gz"))
    assert "action=None but is not the last step" in reject.reason
    assert _steps(out)[0]["action"]["raw"] == "fill('12', 'hello world')"


def test_unparseable_action_is_a_step_reject(fixture_copy: Path, maker: ModuleType) -> None:
    maker._write_pickle(fixture_copy / "step_0.pkl.gz",
                        maker._step(0, "__import__('os').system('x')", 0.0, maker._obs()))
    out = _read(fixture_copy)
    reject = next(r for r in out.rejects if r.file.endswith("step_0.pkl.gz"))
    assert reject.position == "action" and "bad action" in reject.reason


def test_summary_with_an_error_and_no_reward_is_unknown_and_truncated(
        fixture_copy: Path) -> None:
    summary = {"n_steps": 4, "cum_reward": 0.0, "err_msg": "browser crashed",
               "stack_trace": "Traceback ...", "terminated": False, "truncated": False}
    (fixture_copy / "summary_info.json").write_text(json.dumps(summary))
    (episode,) = _read(fixture_copy).episodes
    assert (episode.outcome, episode.truncated) == ("unknown", True)
    assert episode.metadata["err_msg"] == "browser crashed"


def test_terminated_with_zero_reward_is_fail(fixture_copy: Path) -> None:
    summary = {"n_steps": 4, "cum_reward": 0.0, "err_msg": None, "terminated": True,
               "truncated": False}
    (fixture_copy / "summary_info.json").write_text(json.dumps(summary))
    assert _read(fixture_copy).episodes[0].outcome == "fail"


def test_missing_summary_takes_the_outcome_from_the_steps(fixture_copy: Path) -> None:
    (fixture_copy / "summary_info.json").unlink()
    (episode,) = _read(fixture_copy).episodes
    # step_2 is unreadable, so the sum of rewards is unknown; terminated comes from step_4
    assert (episode.score, episode.terminated, episode.outcome) == (None, True, "unknown")
    assert any("summary_info.json missing" in note for note in episode.metadata["notes"])


def test_no_screenshots_at_all_means_no_screenshots_and_dom_page_size(
        fixture_copy: Path, maker: ModuleType) -> None:
    for path in fixture_copy.glob("screenshot_*.png"):
        path.unlink()
    (fixture_copy / "exp_args.pkl").unlink()
    maker._write_pickle(fixture_copy / "step_1.pkl.gz",
                        maker._step(1, "click('15')", 0.25, maker._obs()))
    steps = _steps(_read(fixture_copy))
    # Between the actions of a multi-action step no screenshot could exist either way.
    assert {s["frame_missing"] for s in steps} == {NO_SCREENSHOTS, INTERMEDIATE_NOT_RECORDED}
    assert steps[0]["frame_missing"] == NO_SCREENSHOTS
    click = steps[1]
    assert (click["action"]["x"], click["action"]["y"]) == (0.2, 0.4533)
    assert any("page size 400x300 from the DOM snapshot" in w for w in click["warnings"])


# --------------------------------------------------------------------------- action mapping

OBS = {
    "extra_element_properties": {"30": {"bbox": [100, 50, 40, 20], "visibility": 1.0}},
    "axtree_object": {"nodes": [{"browsergym_id": "30", "role": {"value": "link"},
                                 "name": {"value": "Home"}}]},
}


def _one(code: str) -> tuple[Action, list[str]]:
    (converted,) = convert_code(code, OBS, viewport=(400, 200))
    return converted


@pytest.mark.parametrize("code, expected", [
    ("click('30')", "click(x=0.3, y=0.3)"),
    ("click('30', button='right')", "right_click(x=0.3, y=0.3)"),
    ("dblclick('30')", "double_click(x=0.3, y=0.3)"),
    ("hover('30')", "move(x=0.3, y=0.3)"),
    ("fill('30', 'text')", 'type(text="text")'),
    ("select_option('30', 'Blue')", 'type(text="Blue")'),
    ("clear('30')", 'type(text="")'),
    ("press('30', 'Enter')", 'key(keys=["enter"])'),
    ("keyboard_press('Control+Shift+a')", 'key(keys=["ctrl", "shift", "a"])'),
    ("keyboard_press('Control++')", 'key(keys=["ctrl", "+"])'),
    ("keyboard_type('hi')", 'type(text="hi")'),
    ("scroll(0, 200)", 'scroll(direction="down", amount=200.0)'),
    ("scroll(-50, 0)", 'scroll(direction="left", amount=50.0)'),
    ("goto('https://example.org')", 'navigate(url="https://example.org")'),
    ("go_back()", "back()"),
    ("noop(wait_ms=500)", "wait(amount=0.5)"),
    ("noop()", "wait(amount=1.0)"),
    ("send_msg_to_user('It is 42.')", 'answer(text="It is 42.")'),
    ("report_infeasible('No such page')", 'fail(text="No such page")'),
    ("mouse_click(100, 50)", "click(x=0.25, y=0.25)"),
    ("mouse_drag_and_drop(0, 0, 200, 100)", "drag(x=0.0, y=0.0, x2=0.5, y2=0.5)"),
    ("tab_focus(1)", 'tool_call(name="tab_focus", args={"index": 1})'),
])
def test_browsergym_calls_map_to_canonical_actions(code: str, expected: str) -> None:
    from curate.actions import format_action_text
    action, _ = _one(code)
    assert format_action_text(action) == expected
    assert action.raw == code


def test_element_actions_carry_the_target_box_and_name() -> None:
    action, warnings = _one("click('30')")
    assert action.target is not None
    assert (action.target.role, action.target.text) == ("link", "Home")
    assert (action.target.x0, action.target.y0, action.target.x1, action.target.y1) == (
        0.25, 0.25, 0.35, 0.35)
    assert warnings == []


def test_unknown_functions_are_kept_as_tool_calls_with_a_warning() -> None:
    action, warnings = _one("launch_rockets(3, speed='fast')")
    assert action.type == "tool_call" and action.tool_name == "launch_rockets"
    assert json.loads(action.tool_args or "") == {"args": [3], "speed": "fast"}
    assert warnings == ["unknown BrowserGym function launch_rockets()"]


def test_several_lines_give_several_actions() -> None:
    converted = convert_code("click('30')\nkeyboard_type('x')\n# done\n", OBS,
                             viewport=(400, 200))
    assert [action.type for action, _ in converted] == ["click", "type"]


@pytest.mark.parametrize("code", [
    "", "click(", "click(bid)", "x = 1", "os.system('ls')", "click('1', 'left', [], 4)",
    "click('1', nope=2)", "click(**{'bid': '1'})",
])
def test_code_that_is_not_literal_calls_is_refused(code: str) -> None:
    with pytest.raises(ActionParseError):
        convert_code(code)


# --------------------------------------------------------------------------- the real sample

def test_real_sample_every_step_pickle_is_a_step_or_a_reject() -> None:
    for folder in _real_runs():
        out = _read(folder)
        files = sorted(folder.glob("step_*.pkl.gz"), key=lambda p: int(p.name[5:-7]))
        positions = {row["source_position"].split(" call ")[0] for row in _steps(out)}
        rejected = {reject.file for reject in out.rejects}
        final = files[-1]  # the final observation, no action
        for path in files[:-1]:
            name = f"{folder.name}/{path.name}"
            assert name in positions or name in rejected, name
        assert f"{folder.name}/{final.name}" not in positions


def test_real_sample_rewards_are_shifted_onto_the_action_that_earned_them() -> None:
    for folder in _real_runs():
        steps = _steps(_read(folder))
        summary = json.loads((folder / "summary_info.json").read_text())
        # Every run in the sample succeeds on its last click: reward 1.0 lands there.
        assert steps[-1]["reward"] == 1.0
        assert all(step["reward"] == 0.0 for step in steps[:-1])
        assert sum(step["reward"] for step in steps) == summary["cum_reward"]
        assert len(steps) == summary["n_steps"]


def test_real_sample_clicks_are_resolved_to_boxes() -> None:
    for folder in _real_runs():
        for step in _steps(_read(folder)):
            action = step["action"]
            assert action["type"] == "click" and action["coord_space"] == "element"
            target = action["target"]
            assert target["element_id"] and target["role"] in ("checkbox", "button")
            assert target["x0"] <= action["x"] <= target["x1"]
            assert target["y0"] <= action["y"] <= target["y1"]
            assert step["frame_missing"] == step["next_frame_missing"] == NO_SCREENSHOTS


def test_real_sample_episode_fields() -> None:
    for folder in _real_runs():
        (episode,) = _read(folder).episodes
        assert episode.outcome == "success" and episode.terminated
        assert episode.instruction and episode.metadata["task_name"].startswith("miniwob.")
        assert all(step.thought for step in episode.steps)


def test_real_sample_runs_without_steps_are_episode_rejects() -> None:
    if not REAL_STUBS.is_dir():
        pytest.skip(f"real sample {REAL} is not available (../shared/realdata is absent)")
    for folder in sorted(p for p in REAL_STUBS.iterdir() if p.is_dir()):
        assert adapters.get("agentlab").claims(folder)
        out = _read(folder)
        assert out.episodes == []
        assert [reject.level for reject in out.rejects] == ["episode"]
