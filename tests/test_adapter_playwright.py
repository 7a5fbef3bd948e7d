"""The Playwright trace.zip adapter, on the generated traces and on the real samples."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_MISSING,
    INITIAL_STATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    SourceUnit,
    UnitBuilder,
)
from curate.sources.adapters.playwright import MAX_VERSION, MIN_VERSION, convert_call
from curate.sources.discover import discover

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "playwright"
FORM = FIXTURES / "form-v8.zip"
NAV = FIXTURES / "nav-v10.zip"
# Resolved: ../shared may be a symbolic link, and discover() names units by resolved paths.
REAL_ROOT = (Path(__file__).resolve().parents[2] / "shared/realdata").resolve()
REAL = REAL_ROOT / "playwright_traces" / "tests" / "assets"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real Playwright traces absent: {REAL}")


def _read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("playwright"))


def _rows(out: UnitBuilder) -> list[dict[str, Any]]:
    (episode,) = out.episodes
    return episode.step_rows()


def _zip(tmp_path: Path, lines: list[dict[str, Any]]) -> Path:
    path = tmp_path / "trace.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("trace.trace", "\n".join(json.dumps(line) for line in lines))
    path.write_bytes(buffer.getvalue())
    return path


def _before_events(path: Path, name: str = "trace.trace") -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as archive:
        lines = archive.read(name).decode().splitlines()
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return [e for e in events if e.get("type") == "before"]


def test_trace_zips_are_detected_as_playwright() -> None:
    for path in (FORM, NAV):
        detected = adapters.detect(path)
        assert detected is not None and detected.name == "playwright"


def test_every_call_is_a_step_a_reject_or_counted_as_not_a_step() -> None:
    out = _read(FORM)
    (episode,) = out.episodes
    calls = _before_events(FORM)
    not_steps = sum(episode.metadata["calls_not_steps"].values())
    assert len(episode.steps) + not_steps == len(calls) == 9
    assert episode.metadata["calls_not_steps"] == {"locator.isVisible": 1}
    (bad_line,) = [r for r in out.rejects if r.level == "step"]
    assert bad_line.position == "trace.trace line 13"


def test_methods_map_to_curate_actions_with_points_normalised_by_the_viewport() -> None:
    texts = [row["action_text"] for row in _rows(_read(FORM))]
    assert texts == [
        'navigate(url="https://example.test/form")', "click(x=0.25, y=0.5)",
        'type(x=0.5, y=0.2, text="Ada")', 'key(keys=["ctrl", "a"])', 'type(text="Large")',
        'scroll(direction="down", amount=240.0)', "double_click(x=0.95, y=0.9667)", "click()"]


def test_screencast_frames_smaller_than_the_viewport_give_the_scale() -> None:
    click = _rows(_read(FORM))[1]["action"]
    assert (click["px"], click["py"]) == (100.0, 150.0)
    assert (click["screen_width"], click["screen_height"], click["scale"]) == (400, 300, 0.5)


def test_s_t_is_the_last_frame_before_the_call_and_s_t1_the_first_after_it() -> None:
    out = _read(FORM)
    (episode,) = out.episodes
    rows = episode.step_rows()
    assert rows[0]["frame_missing"] == INITIAL_STATE_NOT_RECORDED
    assert rows[0]["next_frame_id"] is not None
    # frame 1 (1050 ms) falls inside goto (1010-1100): neither its s_t nor its s_t+1;
    # frame 2 (1150 ms) is goto's s_t+1 and the click's (1200 ms) s_t.
    with zipfile.ZipFile(FORM) as archive:
        frame_one = archive.read("resources/page@0123456789abcdef-1.jpeg")
    assert episode.frames[rows[0]["next_frame_id"]].data != frame_one
    assert rows[1]["frame_id"] == rows[0]["next_frame_id"]
    assert rows[2]["frame_id"] == rows[1]["next_frame_id"]


def test_frames_named_but_absent_from_the_zip_are_file_missing_with_one_reject() -> None:
    out = _read(FORM)
    rows = _rows(out)
    assert rows[2]["next_frame_missing"] == FILE_MISSING
    assert rows[4]["frame_missing"] == FILE_MISSING
    (reject,) = [r for r in out.rejects if r.level == "frame"]
    assert "1 of 6 screencast frame(s)" in reject.reason and "-4.jpeg" in reject.position


def test_errors_fail_the_episode_and_a_cut_call_truncates_it() -> None:
    out = _read(FORM)
    (episode,) = out.episodes
    rows = episode.step_rows()
    assert rows[6]["observation"] == "Timeout 50ms exceeded."
    assert (episode.outcome, episode.truncated) == ("fail", True)
    assert rows[7]["next_frame_missing"] == NO_SCREENSHOTS
    assert any("no 'after'" in w for w in rows[7]["warnings"])


def test_times_are_unix_seconds_from_the_trace_anchor() -> None:
    (episode,) = _read(FORM).episodes
    assert episode.clock == "unix"
    first = episode.step_rows()[0]
    assert first["timestamp"] == pytest.approx(1704164645.010)
    assert first["timestamp_end"] == pytest.approx(1704164645.100)


def test_the_instruction_is_the_test_title_else_none() -> None:
    assert _read(FORM).episodes[0].instruction == "form.spec.ts:3 › fills the form"
    assert _read(NAV).episodes[0].instruction is None


def test_version_10_reads_frames_by_file_and_points_from_after() -> None:
    rows = _rows(_read(NAV))
    assert [row["action_text"] for row in rows] == [
        'navigate(url="https://example.test/")', "click(x=0.1, y=0.1)"]
    assert rows[1]["frame_id"] == rows[0]["next_frame_id"] is not None


@pytest.mark.parametrize("version", [MAX_VERSION + 1, MIN_VERSION - 1])
def test_unsupported_versions_are_refused_naming_the_version_and_range(
        tmp_path: Path, version: int) -> None:
    path = _zip(tmp_path, [{"type": "context-options", "version": version, "options": {}}])
    out = _read(path)
    assert out.episodes == []
    (reject,) = out.rejects
    assert reject.level == "episode"
    assert f"version {version}" in reject.reason
    assert f"{MIN_VERSION}-{MAX_VERSION}" in reject.reason


def test_a_corrupt_zip_is_an_episode_reject(tmp_path: Path) -> None:
    path = tmp_path / "trace.zip"
    path.write_bytes(FORM.read_bytes()[:200])
    (reject,) = _read(path).rejects
    assert reject.level == "episode" and "zip" in reject.reason


def test_convert_call_leaves_queries_and_setup_out() -> None:
    assert convert_call("isVisible", {"selector": "x"}, None) is None
    assert convert_call("newPage", {}, None) is None
    action = convert_call("click", {"button": "right"}, (1.0, 2.0))
    assert action is not None and action.type == "right_click"
    press = convert_call("press", {"key": "Control++"}, None)
    assert press is not None and press.keys == ("ctrl", "+")


def test_claims_only_playwright_traces() -> None:
    roots = [REPO / "tests" / "fixtures", REPO / "examples"]
    if REAL_ROOT.is_dir():
        roots.append(REAL_ROOT)
    planned = [p for root in roots if root.is_dir() for p in discover([root])]
    claimed = {p.unit.path for p in planned if p.adapter == "playwright"}
    expected = set(FIXTURES.glob("*.zip")) | (set(REAL.glob("*.zip")) if REAL.is_dir() else set())
    assert claimed == expected


# -- the real samples ----------------------------------------------------------------------

# name: (steps as action text, calls that are not steps, frame rejects)
REAL_EXPECTED: dict[str, tuple[list[str], dict[str, int], int]] = {
    "trace-1.31.zip": (["click(x=0.0287, y=0.0257)"],
                       {"browserContext.newPage": 1, "page.setContent": 1}, 0),
    "trace-1.37.zip": (['navigate(url="https://playwright.dev/index.html")'],
                       {"browserContext.newPage": 1, "page.route": 2, "route.fulfill": 2}, 0),
    "test-trace1.zip": (['navigate(url="https://playwright.dev/")'],
                        {"browserContext.newPage": 1}, 1),
    "trace-remote-time-diff.zip": (['navigate(url="https://playwright.dev/")'],
                                   {"browserContext.newPage": 1, "expect.toHaveTitle": 1}, 1),
}


@needs_real
@pytest.mark.parametrize("name", sorted(REAL_EXPECTED))
def test_real_traces_account_for_every_call(name: str) -> None:
    path = REAL / name
    out = _read(path)
    steps, not_steps, frame_rejects = REAL_EXPECTED[name]
    (episode,) = out.episodes
    library = next(n for n in episode.metadata["trace_files"]
                   if n.endswith("trace.trace") and n != "1-trace.trace")
    assert len(_before_events(path, library)) == len(steps) + sum(not_steps.values())
    assert [row["action_text"] for row in episode.step_rows()] == steps
    assert episode.metadata["calls_not_steps"] == not_steps
    assert [r.level for r in out.rejects] == ["frame"] * frame_rejects


@needs_real
def test_real_1_31_click_uses_the_input_point_and_the_800px_screencast() -> None:
    (episode,) = _read(REAL / "trace-1.31.zip").episodes
    (row,) = episode.step_rows()
    assert (row["action"]["px"], row["action"]["py"]) == (36.74, 18.48)
    assert row["action"]["scale"] == 0.625  # 800x450 JPEG for a 1280x720 viewport
    assert row["frame_id"] is not None and row["next_frame_missing"] == NO_SCREENSHOTS
    assert episode.instruction == "example.spec.ts:3 › example"


def _jpeg(colour: tuple[int, int, int], *, button: bool = False) -> bytes:
    image = Image.new("RGB", (400, 300), colour)
    if button:
        image.paste((40, 40, 40), (20, 20, 120, 50))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_blank_frame_stays_s_t_when_the_only_painted_one_comes_after_the_input(
        tmp_path: Path) -> None:
    """A frame written after the input event shows the page after the action began: it is
    never s_t. The blank one is kept, and the step says so."""
    page = "page@0123456789abcdef"
    def frame(name: str, time: float) -> dict[str, Any]:
        return {"type": "screencast-frame", "pageId": page, "timestamp": time,
                "file": f"resources/{name}.jpeg", "width": 400, "height": 300}
    lines = [
        {"type": "context-options", "version": 10, "origin": "library", "monotonicTime": 1000.0,
         "wallTime": 1704164645000, "options": {"viewport": {"width": 400, "height": 300}}},
        frame("white", 1100.0),
        {"type": "before", "callId": "call@1", "method": "click", "title": "locator.click",
         "pageId": page, "startTime": 1200.0, "params": {"selector": "text=Go"}},
        {"type": "input", "callId": "call@1", "point": {"x": 40, "y": 30}},
        frame("painted", 1250.0),
        {"type": "after", "callId": "call@1", "endTime": 1300.0},
        frame("after", 1350.0),
    ]
    path = _zip(tmp_path, lines)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("resources/white.jpeg", _jpeg((255, 255, 255)))
        archive.writestr("resources/painted.jpeg", _jpeg((255, 255, 255), button=True))
        archive.writestr("resources/after.jpeg", _jpeg((250, 250, 250), button=True))
    (episode,) = _read(path).episodes
    (row,) = episode.step_rows()
    assert episode.frames[row["frame_id"]].data == _jpeg((255, 255, 255))
    assert any(w.startswith("s_t is a blank (all-white) screencast frame (resources/white")
               for w in row["warnings"])


@needs_real
def test_real_1_31_click_is_taken_on_the_painted_frame_not_the_blank_one() -> None:
    """The last frame before the click is the white page before paint; the trace wrote a
    painted frame after the call began and before its input event: that is s_t, and the
    step says which frame it used and why."""
    (episode,) = _read(REAL / "trace-1.31.zip").episodes
    (row,) = episode.step_rows()
    blank = "resources/page@168e5bf54a506951c2129f3e089dd900-1679595660.31407.jpeg"
    painted = "resources/page@168e5bf54a506951c2129f3e089dd900-1679595660.343216.jpeg"
    with zipfile.ZipFile(REAL / "trace-1.31.zip") as archive:
        assert episode.frames[row["frame_id"]].data == archive.read(painted)
        shown = Image.open(io.BytesIO(archive.read(painted))).convert("L")
        assert shown.getextrema()[0] < 128  # the Submit button's text is on it
    (note,) = [w for w in row["warnings"] if w.startswith("s_t:")]
    assert blank in note and painted in note and "blank" in note


@needs_real
def test_real_remote_time_diff_uses_the_library_clock_only() -> None:
    out = _read(REAL / "trace-remote-time-diff.zip")
    (episode,) = out.episodes
    (row,) = episode.step_rows()
    # goto started at monotonic 57978793.716 in a trace anchored at wall 1726229139895 ms =
    # monotonic 57978519.122 (the test runner's clock starts near 1663 ms: never mixed in).
    assert row["timestamp"] == pytest.approx((1726229139895 + 57978793.716 - 57978519.122)
                                             / 1000)
    assert row["frame_missing"] == row["next_frame_missing"] == FILE_MISSING
    (reject,) = out.rejects
    assert "5 of 5 screencast frame(s)" in reject.reason


@needs_real
def test_real_test_trace1_reports_all_four_missing_frames() -> None:
    out = _read(REAL / "test-trace1.zip")
    (reject,) = out.rejects
    assert "4 of 4 screencast frame(s)" in reject.reason
    (row,) = _rows(out)
    assert row["frame_missing"] == INITIAL_STATE_NOT_RECORDED


@needs_real
def test_real_library_1_46_has_only_queries_and_is_rejected_with_the_calls_listed() -> None:
    out = _read(REAL / "trace-library-1.46.zip")
    assert out.episodes == []
    (reject,) = out.rejects
    assert reject.level == "episode" and "no page action among the 5" in reject.reason
    assert "locator.isVisible" in reject.reason


@needs_real
def test_real_future_trace_is_refused_with_the_version_and_the_supported_range() -> None:
    out = _read(REAL / "trace-from-the-future.zip")
    assert out.episodes == []
    (reject,) = out.rejects
    assert reject.level == "episode"
    assert "version 10000" in reject.reason and f"{MIN_VERSION}-{MAX_VERSION}" in reject.reason
