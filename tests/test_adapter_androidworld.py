"""The AndroidWorld adapter, on the generated checkpoints and on the real sample."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import Any

import pytest

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.androidworld import OPAQUE_TOOL, action_from_text, exception_summary
from curate.sources.adapters.base import NO_SCREENSHOTS, SourceUnit, UnitBuilder
from curate.sources.discover import discover

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "androidworld"
M3A = FIXTURES / "ContactsAddContact_0.pkl.gz"
CRASHED = FIXTURES / "SystemWifiTurnOff_0.pkl.gz"
TWO = FIXTURES / "MarkorDeleteNote_0.pkl.gz"
# Resolved: ../shared may be a symbolic link, and discover() names units by resolved paths.
REAL_ROOT = (Path(__file__).resolve().parents[2] / "shared/realdata").resolve()
REAL = REAL_ROOT / "androidworld_checkpoints"
needs_real = pytest.mark.skipif(not REAL.is_dir(),
                                reason=f"real AndroidWorld sample absent: {REAL}")


def _read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("androidworld"))


def _rows(out: UnitBuilder) -> list[dict[str, Any]]:
    (episode,) = out.episodes
    return episode.step_rows()


def test_checkpoints_are_detected_as_androidworld() -> None:
    for path in (M3A, CRASHED, TWO):
        detected = adapters.detect(path)
        assert detected is not None and detected.name == "androidworld"


def test_every_step_of_episode_data_is_a_step_or_a_reject() -> None:
    out = _read(M3A)
    rows = _rows(out)
    kept = [int(row["source_position"].rsplit(" ", 1)[1]) for row in rows]
    rejected = [int(r.position.rsplit(" ", 1)[1]) for r in out.rejects]
    assert sorted(kept + rejected) == list(range(10))
    assert rejected == [5] and "fly_away" in out.rejects[0].reason


def test_actions_map_to_curate_actions_with_indexes_resolved_to_elements() -> None:
    texts = [row["action_text"] for row in _rows(_read(M3A))]
    assert texts == [
        'open_app(app="Contacts")', "click(x=0.8241, y=0.875)",
        'type(x=0.5, y=0.2833, text="Hugo")', 'scroll(direction="down")', "click()", "back()",
        'key(keys=["enter"])', "long_press(x=0.5, y=0.5)", "done()"]


def test_an_element_index_becomes_the_box_centre_and_the_target() -> None:
    click = _rows(_read(M3A))[1]["action"]
    assert (click["px"], click["py"], click["coord_space"]) == (890.0, 2100.0, "element")
    assert (click["screen_width"], click["screen_height"]) == (1080, 2400)
    assert click["target"]["text"] == "Create contact"
    assert click["target"]["element_id"] == "com.android.contacts:id/fab"


def test_an_index_outside_the_element_list_keeps_the_step_with_a_warning() -> None:
    row = _rows(_read(M3A))[4]
    assert row["action"]["target"]["element_id"] == "9"
    assert any("outside the UI element list" in w for w in row["warnings"])


def test_screenshot_arrays_become_png_frames_and_shift_to_the_next_step() -> None:
    out = _read(M3A)
    (episode,) = out.episodes
    rows = episode.step_rows()
    assert {frame.format for frame in episode.frames.values()} == {"png"}
    assert rows[0]["next_frame_id"] == rows[1]["frame_id"]
    assert rows[-1]["next_frame_missing"] == NO_SCREENSHOTS
    again = _read(M3A).episodes[0]
    assert sorted(again.frames) == sorted(episode.frames)  # same pixels, same PNG bytes


def test_outcome_thought_and_observation_come_from_the_checkpoint() -> None:
    (episode,) = _read(M3A).episodes
    assert (episode.outcome, episode.score, episode.terminated) == ("success", 1.0, True)
    assert episode.instruction == "Create a new contact for Hugo Pereira."
    row = episode.step_rows()[0]
    assert row["thought"] == "step 0: because" and row["observation"] == "did step 0"


def test_a_crash_after_some_steps_is_kept_as_failed_and_truncated_with_the_traceback() -> None:
    out = _read(CRASHED)
    (episode,) = out.episodes
    assert (episode.outcome, episode.score, episode.truncated) == ("fail", None, True)
    assert episode.metadata["exception"] == "RuntimeError: emulator connection lost"
    assert "Traceback" in episode.metadata["traceback"]
    rows = episode.step_rows()
    assert [row["action_text"] for row in rows] == [
        'open_app(app="Settings")', "click(x=0.5, y=0.0417)"]
    assert rows[0]["thought"] == "open settings"
    assert rows[0]["frame_missing"] == NO_SCREENSHOTS


def test_a_crash_before_any_step_is_an_episode_reject_naming_the_exception() -> None:
    out = _read(TWO)
    (reject,) = out.rejects
    assert reject.level == "episode" and "emulator connection lost" in reject.reason
    (episode,) = out.episodes
    assert episode.source_id == "MarkorDeleteNote_0.pkl.gz#1"


def test_an_agent_that_records_only_text_gives_opaque_agent_steps() -> None:
    (episode,) = _read(TWO).episodes
    (row,) = episode.step_rows()
    assert row["action"]["tool_name"] == OPAQUE_TOOL
    assert row["thought"] == "I opened Markor and deleted the note."
    assert any("no action recorded" in w for w in row["warnings"])


def test_the_pickle_is_never_imported_from(tmp_path: Path) -> None:
    evil = tmp_path / "Evil_0.pkl.gz"

    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            import os
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with gzip.open(evil, "wb") as handle:
        pickle.dump([{"goal": "x", "episode_data": {"action": [Boom()]},
                      "is_successful": 0.0}], handle)
    out = _read(evil)
    assert not (tmp_path / "pwned").exists()
    assert out.rejects  # the stubbed call is no action


def test_helpers_read_model_text_and_tracebacks() -> None:
    assert action_from_text('Reason: x\nAction: {"action_type": "wait"}') == {
        "action_type": "wait"}
    assert action_from_text("no json here") is None
    assert exception_summary("Traceback...\n  File x\nValueError: bad\n") == "ValueError: bad"


def test_claims_only_androidworld_checkpoints() -> None:
    roots = [REPO / "tests" / "fixtures", REPO / "examples"]
    if REAL_ROOT.is_dir():
        roots.append(REAL_ROOT)
    planned = [p for root in roots if root.is_dir() for p in discover([root])]
    claimed = {p.unit.path for p in planned if p.adapter == "androidworld"}
    expected = set(FIXTURES.glob("*.pkl.gz")) | set(REAL.rglob("*.pkl.gz"))
    assert claimed == expected


# -- the real sample -----------------------------------------------------------------------

REAL_STEPS = {  # file: (episodes kept, steps, outcome) or None for an episode reject
    "MarkorDeleteNote_0.pkl.gz": (1, "success"),
    "ExpenseAddMultipleFromMarkor_0.pkl.gz": (1, "fail"),
    "SystemWifiTurnOff_0.pkl.gz": (1, "success"),
    "AudioRecorderRecordAudio_0.pkl.gz": (1, "success"),
    "AudioRecorderRecordAudioWithFileName_0.pkl.gz": (2, "fail"),
    "BrowserDraw_0.pkl.gz": (1, "fail"),
    "BrowserMaze_0.pkl.gz": (1, "success"),
    "ClockStopWatchRunning_0.pkl.gz": None,
    "ContactsAddContact_0.pkl.gz": None,
}


@needs_real
@pytest.mark.parametrize("name", sorted(REAL_STEPS))
def test_real_checkpoints_are_accounted_for_step_by_step(name: str) -> None:
    (path,) = REAL.rglob(name)
    out = _read(path)
    expected = REAL_STEPS[name]
    if expected is None:
        assert out.episodes == []
        (reject,) = out.rejects
        assert reject.level == "episode"
        assert "NameError: name 'aclosing' is not defined" in reject.reason
        return
    steps, outcome = expected
    assert out.rejects == []
    (episode,) = out.episodes
    rows = episode.step_rows()
    assert len(rows) == steps == episode.metadata["episode_length"]
    assert episode.outcome == outcome
    assert all(row["action"]["tool_name"] == OPAQUE_TOOL for row in rows)
    assert all(row["frame_missing"] == NO_SCREENSHOTS for row in rows)
    assert all(row["thought"] for row in rows)
    assert episode.instruction and episode.metadata["agent_name"] == "simple_claude"
