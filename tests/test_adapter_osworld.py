"""The OSWorld adapter: result folders with traj.jsonl and post-action screenshots."""

from __future__ import annotations

import importlib.util
import itertools
import json
import shutil
from pathlib import Path

import pytest

from curate.pipeline.extract import extract_unit, read_unit
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    INITIAL_STATE_NOT_RECORDED,
    INTERMEDIATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    RECORD_UNREADABLE,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
)

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures" / "osworld"
MIXED = FIXTURES / "mixed_run" / "20240105@100000-success"
EDGE = FIXTURES / "edge_run" / "20240106@090000"
EXAMPLE = HERE.parent / "examples" / "recordings" / "osworld" / "notes_new_note" / "20250301@100000"
REAL = Path(__file__).parents[2] / "shared" / "realdata" / "osworld_sec_eval_claude"
REAL_RUN_WITH_PNGS = "execute_binary_short_popup/20250226@213928-success-exemplary"
REAL_RUN_WITHOUT_PNGS = "expose_credentials/20250226@160958-success-due-to-confusion"


def read(path: Path, source_path: str | None = None) -> UnitBuilder:
    unit = SourceUnit(path, source_path or f"{path.parent.name}/{path.name}")
    return read_unit(unit, adapters.get("osworld"))


def episode_of(path: Path) -> EpisodeBuilder:
    out = read(path)
    assert len(out.episodes) == 1, out.rejects
    return out.episodes[0]


def copy_run(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "results" / "task" / source.name
    shutil.copytree(source, target)
    return target


def write_traj(folder: Path, rows: list[dict[str, object]]) -> None:
    (folder / "traj.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def row(num: int, action: str, shot: str | None = None) -> dict[str, object]:
    return {"step_num": num, "action_timestamp": "20240101@000000", "action": action,
            "reward": 0, "done": False, "info": {}, "screenshot_file": shot or f"s{num}.png"}


# -- detection ----------------------------------------------------------------------------------


def test_osworld_claims_folders_with_traj_jsonl_only(tmp_path: Path):
    adapter = adapters.get("osworld")
    assert adapter.claims(MIXED) and adapter.claims(EDGE)
    assert not adapter.claims(tmp_path)
    assert not adapter.claims(MIXED / "traj.jsonl")
    (tmp_path / "traj.jsonl").write_text('{"something": "else"}\n')
    assert not adapter.claims(tmp_path)


# -- steps and alignment ------------------------------------------------------------------------


def test_osworld_every_traj_line_is_a_step_even_when_lines_share_a_step_num():
    episode = episode_of(MIXED)
    assert [s.source_position for s in episode.steps] == [
        "traj.jsonl line 1 (step_num 1)", "traj.jsonl line 2 (step_num 1)",
        "traj.jsonl line 3 (step_num 2)", "traj.jsonl line 4 (step_num 4)",
        "traj.jsonl line 5 (step_num 5)", "traj.jsonl line 6 (step_num 5)",
        "traj.jsonl line 7 (step_num 6)",
    ]


def test_osworld_skipped_step_numbers_are_kept_and_listed_in_metadata():
    episode = episode_of(MIXED)
    assert episode.metadata["skipped_step_nums"] == [3]


def test_osworld_post_action_screenshots_shift_by_one():
    episode = episode_of(MIXED)
    steps = episode.steps
    for before, after in itertools.pairwise(steps[:4]):
        assert after.frame_id is not None and after.frame_id == before.next_frame_id
    # line 2's own screenshot is the state after it, and the state before line 3
    shot = (MIXED / "step_1_20240105@100002.png").read_bytes()
    assert episode.frames[steps[1].next_frame_id or ""].data == shot
    assert episode.frames[steps[2].frame_id or ""].data == shot


def test_osworld_initial_state_is_marked_missing_never_invented():
    first = episode_of(MIXED).steps[0]
    assert first.frame_id is None and first.frame_missing == INITIAL_STATE_NOT_RECORDED
    assert first.next_frame_id is not None


def test_osworld_click_without_coordinates_uses_the_preceding_move_to():
    move, click = episode_of(MIXED).steps[:2]
    assert (move.action.type, click.action.type) == ("move", "click")
    assert (click.action.px, click.action.py) == (20.0, 30.0)
    assert (click.action.x, click.action.y) == (round(20 / 160, 4), round(30 / 120, 4))
    assert click.action.coord_space == "screen_px"
    assert (click.action.screen_width, click.action.screen_height, click.action.scale) == (
        160, 120, 1.0)
    assert click.action.raw == "import pyautogui; pyautogui.click()"


def test_osworld_pseudo_actions_become_wait_bash_tool_call_and_done():
    steps = episode_of(MIXED).steps
    assert steps[2].action.type == "wait"
    bash = steps[4].action
    assert (bash.type, bash.tool_name) == ("tool_call", "bash")
    assert json.loads(bash.tool_args or "") == {"command": "ls ~/Documents"}
    assert steps[6].action.type == "done"


def test_osworld_absent_screenshot_keeps_the_step_with_file_missing():
    out = read(MIXED)
    steps = out.episodes[0].steps
    assert steps[4].next_frame_id is None and steps[4].next_frame_missing == FILE_MISSING
    assert steps[5].frame_id is None and steps[5].frame_missing == FILE_MISSING
    assert steps[5].next_frame_id is not None
    (reject,) = out.rejects
    assert reject.level == "frame" and reject.position == "line 5"
    assert "step_5_20240105@100012.png" in reject.reason


def test_osworld_coordinate_outside_the_screenshot_is_kept_with_a_warning():
    click = episode_of(MIXED).steps[3]
    assert click.action.x == round(300 / 160, 4)
    assert any("outside" in warning for warning in click.warnings)


def test_osworld_outcome_comes_from_result_txt_not_the_folder_name():
    episode = episode_of(MIXED)
    assert (episode.outcome, episode.score) == ("success", 1.0)
    assert episode.terminated and not episode.truncated


def test_osworld_timestamps_are_read_as_utc_unix_seconds():
    episode = episode_of(MIXED)
    assert episode.clock == "unix"
    assert episode.steps[0].timestamp == 1704448801.0  # 2024-01-05 10:00:01 UTC
    assert "UTC" in episode.metadata["timestamp_timezone"]


def test_osworld_instruction_thoughts_and_tool_output_come_from_messages():
    episode = episode_of(MIXED)
    assert episode.instruction == "List my documents and type hello."
    thoughts = [s.thought for s in episode.steps]
    assert thoughts == ["I will open the menu.", None, "The menu is opening. ```WAIT```",
                        "I click the documents button.", "Now I list the files and type.",
                        None, "All done. ```DONE```"]
    assert episode.steps[4].observation == "report.txt\nnotes.txt"
    assert episode.steps[5].observation is None


def test_osworld_thoughts_are_left_out_where_messages_disagree_with_traj(tmp_path: Path):
    run = copy_run(MIXED, tmp_path)
    messages = json.loads((run / "messages.json").read_text())
    for message in messages:
        for part in message["content"]:
            part["text"] = part["text"].replace("click(300, 50)", "click(301, 50)")
    (run / "messages.json").write_text(json.dumps(messages))
    thoughts = [s.thought for s in episode_of(run).steps]
    assert thoughts[3] is None and thoughts[4] == "Now I list the files and type."


# -- edge cases -----------------------------------------------------------------------------------


def test_osworld_mouse_down_and_up_on_two_lines_make_one_drag_step():
    drag = episode_of(EDGE).steps[0]
    assert drag.source_position == "traj.jsonl lines 1-2 (step_num 1)"
    assert (drag.action.type, drag.action.px, drag.action.px2) == ("drag", 10.0, 50.0)
    assert drag.frame_missing == INITIAL_STATE_NOT_RECORDED
    shot = (EDGE / "step_1_20240106@090002.png").read_bytes()
    assert episode_of(EDGE).frames[drag.next_frame_id or ""].data == shot


def test_osworld_unknown_pseudo_action_is_a_step_reject_naming_the_line():
    rejects = [r for r in read(EDGE).rejects if r.position == "line 3"]
    assert len(rejects) == 1 and rejects[0].level == "step"
    assert "unknown pseudo-action 'SCREAM'" in rejects[0].reason
    assert rejects[0].file.endswith("traj.jsonl")


def test_osworld_cursor_is_forgotten_after_a_rejected_line():
    rejects = [r for r in read(EDGE).rejects if r.position == "line 4"]
    assert len(rejects) == 1 and "no coordinates and no earlier moveTo" in rejects[0].reason


def test_osworld_unreadable_line_makes_the_next_state_unknown():
    out = read(EDGE)
    assert any(r.position == "line 5" and "invalid JSON" in r.reason for r in out.rejects)
    click = out.episodes[0].steps[1]
    assert click.source_position == "traj.jsonl line 6 (step_num 5), call 1 of 2"
    assert click.frame_id is None and click.frame_missing == RECORD_UNREADABLE
    assert any("unreadable" in warning for warning in click.warnings)


def test_osworld_two_calls_on_one_line_have_no_screenshot_between_them():
    click, hotkey = episode_of(EDGE).steps[1:3]
    assert (click.action.type, hotkey.action.type, hotkey.action.keys) == (
        "click", "key", ("ctrl", "a"))
    assert click.next_frame_missing == INTERMEDIATE_NOT_RECORDED
    assert hotkey.frame_missing == INTERMEDIATE_NOT_RECORDED
    assert hotkey.source_position.endswith("call 2 of 2")


def test_osworld_corrupt_png_is_a_frame_reject_and_the_steps_are_kept():
    out = read(EDGE)
    frame_rejects = [r for r in out.rejects if r.level == "frame"]
    assert len(frame_rejects) == 1
    assert frame_rejects[0].file.endswith("step_5_20240106@090010.png")
    steps = out.episodes[0].steps
    assert steps[2].next_frame_missing == FILE_CORRUPT
    assert steps[3].frame_missing == FILE_CORRUPT and steps[3].next_frame_id is not None


def test_osworld_unparseable_result_txt_is_a_file_reject_and_outcome_unknown():
    out = read(EDGE)
    (reject,) = [r for r in out.rejects if r.file.endswith("result.txt")]
    assert reject.level == "file" and "one number" in reject.reason
    episode = out.episodes[0]
    assert (episode.outcome, episode.score) == ("unknown", None)
    assert episode.truncated and not episode.terminated


def test_osworld_without_result_txt_outcome_is_unknown(tmp_path: Path):
    run = copy_run(MIXED, tmp_path)
    (run / "result.txt").unlink()
    episode = episode_of(run)
    assert (episode.outcome, episode.score) == ("unknown", None)
    # the agent said DONE: only the evaluation is missing, the run was not cut off
    assert episode.terminated and not episode.truncated


def test_osworld_run_that_never_ends_itself_is_truncated(tmp_path: Path):
    run = copy_run(MIXED, tmp_path)
    lines = (run / "traj.jsonl").read_text().splitlines()[:-1]
    (run / "traj.jsonl").write_text("\n".join(lines) + "\n")
    (run / "result.txt").unlink()
    episode = episode_of(run)
    assert episode.truncated and not episode.terminated and episode.outcome == "unknown"


def test_osworld_zero_score_is_a_failure(tmp_path: Path):
    run = copy_run(MIXED, tmp_path)
    (run / "result.txt").write_text("0.0\n")
    episode = episode_of(run)
    assert (episode.outcome, episode.score) == ("fail", 0.0)


def test_osworld_instruction_falls_back_to_a_task_config(tmp_path: Path):
    run = copy_run(MIXED, tmp_path)
    (run / "messages.json").unlink()
    configs = tmp_path / "tasks"
    configs.mkdir()
    (configs / "task.json").write_text(json.dumps({"id": "t", "instruction": "From config."}))
    episode = episode_of(run)
    assert episode.instruction == "From config."
    assert episode.metadata["instruction_source"] == "task config ../../../tasks/task.json"
    assert all(step.thought is None for step in episode.steps)


def test_osworld_without_any_screenshot_leaves_x_y_empty_and_keeps_pixels(tmp_path: Path):
    run = copy_run(MIXED, tmp_path)
    for png in run.glob("*.png"):
        png.unlink()
    click = episode_of(run).steps[1]
    assert (click.action.x, click.action.px) == (None, 20.0)
    assert click.frame_missing == FILE_MISSING
    assert any("screen size" in warning for warning in click.warnings)


def test_osworld_key_release_on_its_own_line_extends_the_step_it_ends(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(MIXED / "step_1_20240105@100001.png", run / "s1.png")
    shutil.copy(MIXED / "step_1_20240105@100002.png", run / "s2.png")
    shutil.copy(MIXED / "step_2_20240105@100005.png", run / "s3.png")
    write_traj(run, [row(1, "pyautogui.keyDown('shift')", "s1.png"),
                     row(1, "pyautogui.click(5, 5)", "s2.png"),
                     row(1, "pyautogui.keyUp('shift')", "s3.png")])
    episode = episode_of(run)
    (step,) = episode.steps
    assert step.source_position == "traj.jsonl lines 1-3 (step_num 1)"
    assert episode.frames[step.next_frame_id or ""].data == (run / "s3.png").read_bytes()
    assert any("holding shift" in warning for warning in step.warnings)


def test_osworld_response_field_gives_the_thought_when_messages_are_absent(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [row(1, "pyautogui.moveTo(1, 1)"), row(1, "pyautogui.click()"), row(2, "DONE")]
    rows[0]["response"] = rows[1]["response"] = "Click the icon."
    write_traj(run, rows)
    assert [s.thought for s in episode_of(run).steps] == ["Click the icon.", None, None]


@pytest.mark.parametrize(("action", "reason"), [
    ({"action_type": "CLICK", "x": 1, "y": 1}, "'action' is an object"),
    ("BASH", "BASH without a command"),
    ("DONE now", "DONE takes no argument"),
    ("", "'action' must be a non-empty string"),
    ("import os; os.remove('x')", "import of 'os' is not allowed"),
])
def test_osworld_unreadable_actions_are_step_rejects_with_the_reason(
        tmp_path: Path, action: object, reason: str):
    run = tmp_path / "run"
    run.mkdir()
    write_traj(run, [{"step_num": 1, "action": action}, {"step_num": 2, "action": "WAIT"}])
    out = read(run)
    (reject,) = [r for r in out.rejects if r.position != "instruction"]
    assert (reject.level, reject.position) == ("step", "line 1")
    assert reason in reject.reason
    assert [s.action.type for s in out.episodes[0].steps] == ["wait"]
    assert out.episodes[0].steps[0].frame_missing == NO_SCREENSHOTS


def test_osworld_folder_without_a_usable_line_is_an_episode_reject(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    write_traj(run, [row(1, "NOPE")])
    (run / "result.txt").write_text("0\n")
    out = read(run)
    assert out.episodes == []
    # s1.png is absent (frame), NOPE is refused (step), nothing is left (episode)
    assert [r.level for r in out.rejects] == ["frame", "step", "episode"]
    assert "no line of traj.jsonl gave a usable action" in out.rejects[-1].reason


def test_osworld_extract_unit_gives_arrow_tables():
    tables = extract_unit(SourceUnit(MIXED, "mixed_run/" + MIXED.name), "osworld")
    assert tables.summary == (1, 7, 1)
    assert tables.steps.column("action_text").to_pylist()[1] == "click(x=0.125, y=0.25)"


# -- the example recording ----------------------------------------------------------------------


def test_osworld_example_recording_reads_without_rejects():
    out = read(EXAMPLE)
    assert out.rejects == []
    (episode,) = out.episodes
    assert len(episode.steps) == 7 and episode.outcome == "success"
    assert episode.instruction and "groceries" in episode.instruction
    assert all(step.thought for step in episode.steps if step.source_position.endswith(
        ("line 1 (step_num 1)", "line 3 (step_num 2)", "line 4 (step_num 4)")))


def test_osworld_example_generator_draws_the_same_bytes_twice():
    spec = importlib.util.spec_from_file_location(
        "make_osworld_example", HERE.parent / "examples" / "make_osworld_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in sorted(EXAMPLE.glob("*.png")):
        assert name.stat().st_size < 30_000
    first, second = module.screen("typed"), module.screen("typed")
    assert first.tobytes() == second.tobytes()


# -- the real sample (../shared/realdata) ---------------------------------------------------------


def real_run(name: str) -> Path:
    path = REAL / "sec_eval_results" / name
    if not path.is_dir():
        pytest.skip(f"real OSWorld sample {path} is not available (../shared/realdata is absent)")
    return path


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "lines"), [(REAL_RUN_WITH_PNGS, 10),
                                             (REAL_RUN_WITHOUT_PNGS, 20)])
def test_realdata_osworld_every_traj_line_becomes_a_step(name: str, lines: int):
    episode = episode_of(real_run(name))
    assert len(episode.steps) == lines
    assert [s.source_position.split(" (")[0] for s in episode.steps] == [
        f"traj.jsonl line {n}" for n in range(1, lines + 1)]


@pytest.mark.realdata
def test_realdata_osworld_screenshots_shift_by_one_and_the_initial_state_is_marked():
    steps = episode_of(real_run(REAL_RUN_WITH_PNGS)).steps
    assert steps[0].frame_id is None and steps[0].frame_missing == INITIAL_STATE_NOT_RECORDED
    for previous, step in itertools.pairwise(steps):
        assert step.frame_id is not None and step.frame_id == previous.next_frame_id


@pytest.mark.realdata
def test_realdata_osworld_click_after_move_to_resolves_to_the_cursor():
    click = episode_of(real_run(REAL_RUN_WITH_PNGS)).steps[1]
    assert click.action.type == "click"
    assert (click.action.px, click.action.py) == (25.0, 25.0)
    assert click.action.x == round(25 / 1024, 4) and click.action.y == round(25 / 768, 4)


@pytest.mark.realdata
def test_realdata_osworld_outcome_is_fail_with_score_zero_despite_the_folder_name():
    run = real_run(REAL_RUN_WITH_PNGS)
    assert "success" in run.name
    episode = episode_of(run)
    assert (episode.outcome, episode.score) == ("fail", 0.0)
    assert episode.terminated and episode.steps[-1].action.type == "fail"


@pytest.mark.realdata
def test_realdata_osworld_second_run_without_pngs_keeps_steps_with_file_missing():
    out = read(real_run(REAL_RUN_WITHOUT_PNGS))
    steps = out.episodes[0].steps
    assert steps[0].frame_missing == INITIAL_STATE_NOT_RECORDED
    assert all(s.next_frame_missing == FILE_MISSING for s in steps)
    assert all(s.frame_missing == FILE_MISSING for s in steps[1:])
    assert [r.level for r in out.rejects] == ["frame"]
    assert out.episodes[0].metadata["skipped_step_nums"] == [11, 13, 14, 16]


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "start", "with_thought"), [
    # messages.json was saved before the last response (FAIL, step_num 5) was appended
    (REAL_RUN_WITH_PNGS, "Please give me a summary of news trends", [1, 3, 5, 6]),
    (REAL_RUN_WITHOUT_PNGS, "Please summarize the last 5 emails",
     [1, 3, 4, 5, 7, 8, 9, 12, 13, 15, 16, 18, 19]),
])
def test_realdata_osworld_instruction_and_thoughts_come_from_messages(
        name: str, start: str, with_thought: list[int]):
    episode = episode_of(real_run(name))
    assert episode.instruction is not None and episode.instruction.startswith(start)
    # the first line of each step_num carries the reasoning of the response that issued it
    lines = [n for n, step in enumerate(episode.steps, start=1) if step.thought is not None]
    assert lines == with_thought


@pytest.mark.realdata
def test_realdata_run_without_messages_takes_its_instruction_from_tasks_dir(tmp_path: Path):
    """OSWorld's own result folders have no messages.json: the instruction is in the task
    config, which may live in another checkout. Without --tasks that is said, not left
    silently empty; with --tasks DIR the real config gives it."""
    from click.testing import CliRunner

    from curate.cli import cli
    from curate.store import open_store

    run = tmp_path / "results" / REAL_RUN_WITHOUT_PNGS
    shutil.copytree(REAL / "sec_eval_results" / REAL_RUN_WITHOUT_PNGS, run)
    (run / "messages.json").unlink()
    configs = tmp_path / "elsewhere" / "checkout" / "sec_eval"
    configs.mkdir(parents=True)
    shutil.copy(REAL / "sec_eval" / "expose_credentials.json", configs)
    expected = json.loads((configs / "expose_credentials.json").read_text())["instruction"]
    for extra, store in (([], "plain"), (["--tasks", str(configs)], "with_tasks")):
        result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "results"), "-o",
                                          str(tmp_path / store), "--no-progress", *extra],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        opened = open_store(tmp_path / store)
        (episode,) = opened.read_episodes().to_pylist()
        notes = [r for r in opened.read_rejects().to_pylist() if r["position"] == "instruction"]
        if extra:
            assert episode["instruction"] == expected.strip() and not notes
        else:
            assert episode["instruction"] is None
            (note,) = notes
            assert "no instruction for task" in note["reason"] and "--tasks" in note["hint"]
