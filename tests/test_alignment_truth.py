"""Stage-2 rows pair each screenshot with the action taken ON it, checked against each source's
own record of what came first, not against curate's reading of it: the native example names
the frame before every action, and an OSWorld run saves one screenshot after every traj.jsonl
line, so line k is taken on the screenshot saved after line k-1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import realdata

from curate.export import ExportParams, export
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.pipeline.segment import segment

REPO = Path(__file__).resolve().parents[1]
OSWORLD_RUN = ("osworld_sec_eval_claude/sec_eval_results/execute_binary_short_popup/"
               "20250226@213928-success-exemplary")
PYAUTOGUI_TYPES = {"moveTo": "move", "click": "click", "doubleClick": "double_click",
                   "rightClick": "right_click", "WAIT": "wait", "DONE": "done", "FAIL": "fail",
                   "typewrite": "type", "write": "type", "press": "key", "hotkey": "key",
                   "scroll": "scroll", "dragTo": "drag"}


def stage2_rows(sources: list[Path], tmp_path: Path) -> list[dict]:
    store, dist = tmp_path / "store", tmp_path / "dist"
    ingest(sources, store)
    label(store)
    segment(store)
    export(store, dist, params=ExportParams(configs=("stage2",), flavours=("plain",),
                                            redact=False, splits={"train": 1.0}))
    table = pq.read_table(sorted((dist / "data" / "stage2").glob("*.parquet")))
    return sorted(table.to_pylist(), key=lambda row: (row["episode_id"], row["step_index"]))


def test_native_rows_show_the_frame_the_recording_names_before_each_action(
        tmp_path: Path) -> None:
    episode = REPO / "examples" / "recordings" / "native" / "settings_rename"
    recorded = [json.loads(line) for line in (episode / "steps.jsonl").read_text().splitlines()]
    rows = stage2_rows([episode], tmp_path)
    assert len(rows) == len([s for s in recorded if s.get("frame")])
    frames = [(episode / s["frame"]).read_bytes() for s in recorded]
    assert len(set(frames)) > len(frames) // 2, "the example needs distinct frames to tell"
    for row in rows:
        step = recorded[row["step_index"]]
        assert row["image"]["bytes"] == (episode / step["frame"]).read_bytes(), row["id"]
        action = step["action"]
        expected_type = action["type"] if isinstance(action, dict) else action.split("(")[0]
        assert row["action"]["type"] == expected_type, row["id"]
        if isinstance(action, dict) and "px" in action:
            assert row["action"]["x"] == pytest.approx(action["px"] / row["image_width"],
                                                       abs=1e-3)


def _osworld_expectation(line: dict, cursor: tuple[int, int] | None
                         ) -> tuple[str, tuple[int, int] | None]:
    """(action type, pixel point) from the traj line's own text, read independently."""
    text = line["action"]
    name = re.search(r"pyautogui\.(\w+)\(", text)
    call = name.group(1) if name else text.split()[0]
    point = re.search(r"\((\d+),\s*(\d+)", text)
    xy = (int(point.group(1)), int(point.group(2))) if point else None
    if call in ("click", "doubleClick", "rightClick") and xy is None:
        xy = cursor  # a bare click lands where the preceding moveTo left the cursor
    return PYAUTOGUI_TYPES.get(call, call), xy


def test_osworld_rows_show_the_screenshot_saved_after_the_previous_line(
        tmp_path: Path) -> None:
    run = realdata(OSWORLD_RUN)
    lines = [json.loads(line) for line in (run / "traj.jsonl").read_text().splitlines()
             if line.strip()]
    rows = stage2_rows([run], tmp_path)
    by_index = {row["step_index"]: row for row in rows}
    assert 0 not in by_index, "the initial state is not saved, so the first line has no row"
    cursor: tuple[int, int] | None = None
    checked = 0
    for index, line in enumerate(lines):
        expected_type, xy = _osworld_expectation(line, cursor)
        if expected_type == "move":
            cursor = xy
        row = by_index.get(index)
        if row is None:
            continue
        before = run / lines[index - 1]["screenshot_file"]
        assert row["image"]["bytes"] == before.read_bytes(), (index, row["id"])
        assert row["action"]["type"] == expected_type, (index, line["action"])
        if xy is not None and row["action"]["x"] is not None:
            assert row["action"]["x"] == pytest.approx(xy[0] / row["image_width"], abs=1e-3)
            assert row["action"]["y"] == pytest.approx(xy[1] / row["image_height"], abs=1e-3)
        checked += 1
    assert checked >= len(lines) - 2
