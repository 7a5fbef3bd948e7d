"""OpenAdapt legacy dumps: INSERT statements with Python literals parsed (never executed),
events reduced to actions, stripped screenshots reported, a broken tail kept apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import FILE_MISSING, NO_SCREENSHOTS, SourceUnit, UnitBuilder
from curate.sources.adapters.openadapt_legacy import DumpError, parse_dump
from curate.sources.discover import discover
from tests.conftest import realdata

# A recording of one key press; its last statement has no ';', for each test to end it.
ONE_KEY_PRESS = (
    "INSERT INTO recording (timestamp, monitor_width, monitor_height, task_description)"
    " VALUES (10.0, 100, 50, 'press a');\n"
    "INSERT INTO action_event (name, timestamp, recording_timestamp, key_char) VALUES\n"
    "('press', 11.0, 10.0, 'a'), ('release', 11.1, 10.0, 'a')")


def read(path: Path) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("openadapt_legacy"))


def test_literals_of_both_dialects_are_parsed() -> None:
    (statement,) = parse_dump(
        "-- c\nINSERT INTO t (a, b, c, d, e, f) VALUES\n"
        "(1, 'it''s', x'0aff', NULL, {'k': [1, None, True]}, 'a\\'b'), "
        "(2.5, \"q\", None, False, [], -3e2);")
    assert statement.table == "t"
    assert statement.rows == (
        {"a": 1, "b": "it's", "c": b"\n\xff", "d": None, "e": {"k": [1, None, True]},
         "f": "a'b"},
        {"a": 2.5, "b": "q", "c": None, "d": False, "e": [], "f": -300.0})


def test_code_in_the_dump_is_never_run() -> None:
    with pytest.raises(DumpError):
        list(parse_dump("INSERT INTO t (a) VALUES (__import__('os').system('true'));"))


def test_real_dump_gives_two_recordings_of_reduced_actions() -> None:
    path = realdata("openadapt_legacy") / "tests/assets/fixtures.sql"
    found = adapters.detect(path)
    assert found is not None and found.name == "openadapt_legacy"
    out = read(path)
    by_task = {episode.instruction: episode for episode in out.episodes}
    assert set(by_task) == {"type l", "test_calculator"}
    calculator = by_task["test_calculator"]
    actions = [step.action for step in calculator.steps]
    assert [a.type for a in actions] == ["key", "type", "key"] + ["click"] * 5
    assert actions[0].keys == ("cmd", "space") and actions[1].text == "calculator"
    assert actions[2].keys == ("enter",)
    first_click = actions[3]
    assert (first_click.px, first_click.screen_width, first_click.coord_space) == (
        pytest.approx(953.6, abs=1), 1440, "screen_px")
    assert first_click.x == pytest.approx(first_click.px / 1440, abs=1e-4)
    assert calculator.metadata["platform"] == "darwin" and "config" not in calculator.metadata
    # The sample strips png_data: the frames are missing and said so once, not rejected.
    assert {step.frame_missing for step in calculator.steps} == {FILE_MISSING}
    assert [(r.level, r.reason[:2]) for r in out.rejects] == [("frame", "8 ")]
    # The first recording's events name a screenshot the dump does not have.
    assert by_task["type l"].steps[0].frame_missing == NO_SCREENSHOTS
    assert by_task["type l"].steps[0].action.text == "l"


def test_real_folder_has_no_unrecognised_file() -> None:
    planned = list(discover([realdata("openadapt_legacy")]))
    assert [(Path(p.unit.source_path).name, p.adapter) for p in planned] == [
        ("fixtures.sql", "openadapt_legacy")]


def test_a_broken_tail_keeps_the_statements_before_it(tmp_path: Path) -> None:
    path = tmp_path / "dump.sql"
    path.write_text(ONE_KEY_PRESS + ";\n"
                    "INSERT INTO screenshot (recording_timestamp, timestamp, png_data) VALUES\n"
                    "(10.0, 10.5, x'89504E47", encoding="utf-8")
    out = read(path)
    (episode,) = out.episodes
    assert [step.action.text for step in episode.steps] == ["a"]
    (reject,) = out.rejects
    assert reject.level == "file" and reject.position == "line 5"
    assert "unterminated hex literal" in reject.reason


def test_a_dump_cut_after_a_complete_row_is_reported_and_keeps_its_rows(tmp_path: Path) -> None:
    # A torn write can stop right after a row: the statement has no ';', the file ends.
    path = tmp_path / "dump.sql"
    path.write_text(ONE_KEY_PRESS, encoding="utf-8")
    out = read(path)
    (episode,) = out.episodes
    assert [step.action.text for step in episode.steps] == ["a"]
    (reject,) = out.rejects
    assert reject.level == "file" and reject.position == "line 2"
    assert "before its ';'" in reject.reason
    # A statement without ';' followed by another one is read as before.
    (first, second) = parse_dump("INSERT INTO t (a) VALUES (1)\nINSERT INTO t (a) VALUES (2);")
    assert (first.rows, second.rows) == (({"a": 1},), ({"a": 2},))


def test_the_plain_row_pattern_reads_what_the_scanner_reads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Rows of plain values are matched whole by a regular expression; every other row goes
    # through the value-by-value scanner. Both must give the same statements, on the real
    # dump, on both dialects' literals and on rows the pattern must hand over (or reject).
    import re

    from curate.sources.adapters import openadapt_legacy

    dump = (realdata("openadapt_legacy") / "tests/assets/fixtures.sql").read_text()
    samples = [dump, ONE_KEY_PRESS, ONE_KEY_PRESS + ";",
               "INSERT INTO t (a, b) VALUES ('it''s', \"q\"), (x'0aff', -3e2), (NuLl, []);",
               "INSERT INTO t (a) VALUES ('a'''), (''''), ({ }), (TRUE), (01);",
               "INSERT INTO t (a) VALUES (\"a\nb\");", "INSERT INTO t (a) VALUES (x'0af');",
               "INSERT INTO t (a, b) VALUES (Nonee, 1);", "INSERT INTO t (a) VALUES (1, 2);",
               "INSERT INTO t (a) VALUES ( -- c\n 1 ), ('a\\'b');"]

    def statements(text: str) -> object:
        try:
            return [(s.table, s.rows) for s in parse_dump(text)]
        except DumpError as error:
            return (str(error), error.offset)

    fast = [repr(statements(text)) for text in samples]
    never = re.compile(r"(?!)")
    monkeypatch.setattr(openadapt_legacy, "_plain_row", lambda width: never)
    assert [repr(statements(text)) for text in samples] == fast
    assert "a row of 2 values for 1 columns" in fast[8]
