"""rrweb session recordings: a DOM mirror kept by mutations, one step per user action
(click, double and right click, typing, scrolling), DOM-text states before and after,
gestures merged, bad events rejected one by one."""

from __future__ import annotations

import json
from pathlib import Path

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import SourceUnit, UnitBuilder

FIXTURES = Path(__file__).resolve().parent / "fixtures/rrweb"
SESSION = FIXTURES / "session.json"
LINES = FIXTURES / "session.jsonl"


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("rrweb"))


def test_event_lists_and_lines_are_detected_and_other_json_is_not(tmp_path: Path) -> None:
    for path in (SESSION, LINES):
        found = adapters.detect(path)
        assert found is not None and found.name == "rrweb"
    other = tmp_path / "list.json"
    other.write_text(json.dumps([{"type": "click", "timestamp": 1, "data": {}}]))
    found = adapters.detect(other)
    assert found is None or found.name != "rrweb"


def test_one_step_per_user_action_with_gestures_merged() -> None:
    steps = read(SESSION).episodes[0].steps
    assert [s.action.type for s in steps] == [
        "click", "type", "click", "click", "scroll", "double_click", "right_click"]
    typing = steps[1].action
    assert typing.text == "shoes"  # four keystroke events; the page's own edit is not a step
    assert typing.target.element_id == "10"
    scroll = steps[4].action
    assert (scroll.direction, scroll.amount) == ("down", 400.0)  # three positions, one step
    assert scroll.target.role == "document"
    double = steps[5].action  # click, click, dblclick on one node
    assert double.target.text == "Blue shoes"


def test_clicks_carry_viewport_points_and_their_element() -> None:
    search = read(SESSION).episodes[0].steps[2].action
    assert (search.px, search.py) == (640.0, 100.0)
    assert (search.x, search.y) == (0.5, round(100 / 720, 4))
    assert (search.target.role, search.target.text) == ("button", "Search")
    assert search.coord_space == "viewport_css_px"


def test_states_are_dom_text_before_and_after_each_action() -> None:
    episode = read(SESSION).episodes[0]
    initial = episode.metadata["initial_dom_text"]
    assert initial.splitlines() == ["Shoe shop", "[input name=q type=text placeholder=Search]",
                                    "[button id=go] Search", "[input name=gift type=checkbox]"]
    assert "body{color" not in initial and "var x" not in initial  # style and script hidden
    click, typing, search = episode.steps[:3]
    assert '"s"' not in click.observation  # the typing that follows is not in its state
    assert '[input name=q type=text placeholder=Search] "shoes "' in typing.observation
    # the results the search click caused (a later mutation) are in its after-state
    assert search.observation.splitlines()[-2:] == ["Red shoes", "Blue shoes"]
    assert "Red shoes" not in typing.observation
    assert all(s.frame_missing == "text_only" for s in episode.steps)
    assert episode.metadata["states"] == "DOM text (no screenshots are rendered)"


def test_bad_events_are_rejected_one_by_one_and_the_rest_is_read() -> None:
    session = [(r.position, r.reason) for r in read(SESSION).rejects]
    assert session == [
        ("[22]", "mutation changes the text of an unknown node; that change was skipped"),
        ("[23]", "unknown rrweb event (type 9); skipped")]
    out = read(LINES)
    lines = sorted((r.position, r.reason.split(";")[0].split(":")[0]) for r in out.rejects)
    assert lines == [("line 1", "incremental event before the first full snapshot"),
                     ("line 5", "invalid JSON line")]
    assert [s.action.type for s in out.episodes[0].steps] == ["click"]
