"""OpenAdapt legacy recording dumps (``openadapt_legacy``): ``INSERT INTO`` statements of
OpenAdapt's SQLite tables, as its test fixtures ship them (``tests/assets/fixtures.sql``).

The dump is not valid SQL for any database (no ``CREATE TABLE``; later rows hold Python
literals: ``None``, ``True``, ``{'KEY': ...}`` dicts, ``[]``), so it is *parsed* here with a
small literal scanner and never executed. The tables read (OpenAdapt's ``models.py``):

* ``recording`` (``timestamp``, ``monitor_width``/``height``, ``double_click_interval_seconds``,
  ``double_click_distance_pixels``, ``platform``, ``task_description``): one episode each,
  keyed by its ``timestamp``; its ``config`` (settings with scrubbed API keys) is not kept;
* ``action_event`` (``name`` move / click / scroll / press / release, ``timestamp``,
  ``recording_timestamp``, ``mouse_x``/``mouse_y`` in monitor points, ``mouse_button_name``,
  ``mouse_pressed``, ``key_name``/``key_char`` and their ``canonical_`` forms,
  ``screenshot_timestamp``): raw input events, reduced to actions by curate.sources.reduce
  with the recording's own double-click settings;
* ``screenshot`` (``recording_timestamp``, ``timestamp``, ``png_data``): the screen before an
  event; each step's state is the screenshot its first event names. Dumps with the images
  stripped (``png_data`` None) leave the frames missing, reported once per recording.

Other tables (``window_event``, ``performance_stat``, ``memory_stat``) and the other columns
are scanned (a malformed row stops the parse as anywhere else) but never turned into Python.
A row of plain values is matched whole by one regular expression, in C; the scanner reads
the rest (nested literals, escapes, comments) one value at a time.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action, normalise
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_MISSING,
    FINAL_STATE_NOT_RECORDED,
    NO_SCREENSHOTS,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    text_head,
)
from curate.sources.reduce import RawEvent, ReducedAction, ReductionParams, reduce_events

_INSERT = re.compile(r"INSERT\s+INTO\s+\"?([A-Za-z_]+)\"?\s*\(([^)]*)\)\s*VALUES\s*",
                     re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z]+")
_BLANK = re.compile(r"(?:\s+|--[^\n]*)*")
# A whole quoted string in one match (the scan below is the fallback that names the error).
_STRINGS = {"'": re.compile(r"'(?:[^'\\]|\\.|'')*'(?!')"),
            '"': re.compile(r'"(?:[^"\\]|\\.)*"')}
_WORDS = {"null": None, "none": None, "true": True, "false": False}
# The fast path: a row of plain values (strings without backslashes, hex, numbers, the
# words above, empty brackets) with no comment inside is matched whole by one pattern made
# for the statement's column count, its values captured one per group, all in C; any other
# row (nested literals, escapes, comments, anything malformed) goes through the scanner
# below, which reads or rejects it as before. Each pattern reads a token as the scanner
# does (a row's split into tokens is unique, and the alternatives begin with different
# characters, so their order only matters for speed), so the values are the same.
_PLAIN = (r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|(?i:null|none|true|false)(?![A-Za-z])"
          r"|'[^'\\]*(?:''[^'\\]*)*'(?!')|\"[^\"\\\n\r\x00]*\"|[xX]'(?:[0-9A-Fa-f]{2})*'"
          r"|\[\s*\]|\{\s*\}")
_CLOSING = {"(": ")", "[": "]", "{": "}"}
_POINTER = {"move": "move", "scroll": "scroll"}
# What the adapter reads of each table (None: every column); the other tables are scanned
# and dropped.
READ: dict[str, frozenset[str] | None] = {
    "recording": None,
    "action_event": frozenset({
        "name", "timestamp", "recording_timestamp", "screenshot_timestamp", "mouse_x",
        "mouse_y", "mouse_dx", "mouse_dy", "mouse_button_name", "mouse_pressed", "key_name",
        "key_char", "canonical_key_name", "canonical_key_char"}),
    "screenshot": frozenset({"recording_timestamp", "timestamp", "png_data"}),
}


class DumpError(ValueError):
    """The dump cannot be scanned at ``offset``."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Statement:
    table: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    offset: int


def parse_dump(text: str, read: Mapping[str, Collection[str] | None] | None = None
               ) -> Iterator[Statement]:
    """Every ``INSERT INTO t (cols) VALUES (...), ...;`` of the dump, values as Python.

    ``read`` (table -> the columns to keep, None for all) limits what is turned into Python:
    the rows of other tables, and the other columns, are still scanned (a malformed row
    stops the parse just the same) but not kept; without it every value is kept."""
    position = 0
    while (match := _INSERT.search(text, position)) is not None:
        table = match.group(1).lower()
        columns = tuple(c.strip().strip('"') for c in match.group(2).split(","))
        kept = _kept_columns(columns, read, table)
        rows, position = _rows(text, match.end(), columns, kept)
        yield Statement(table, columns, tuple(rows), match.start())
        if position >= len(text) and text[position - 1] != ";":
            # Dumps end every statement with ';': one that stops at the end of the file
            # was cut short. Its complete rows are kept (yielded above); the loss is reported.
            raise DumpError("the dump ends inside this statement, before its ';' (cut short?)",
                            match.start())


def _kept_columns(columns: tuple[str, ...], read: Mapping[str, Collection[str] | None] | None,
                  table: str) -> tuple[int, ...] | None:
    """The indices of the columns to keep (None: the table is not kept at all)."""
    if read is None:
        return tuple(range(len(columns)))
    if table not in read:
        return None
    wanted = read[table]
    return tuple(i for i, name in enumerate(columns) if wanted is None or name in wanted)


def _rows(text: str, position: int, columns: tuple[str, ...], kept: tuple[int, ...] | None
          ) -> tuple[list[dict[str, Any]], int]:
    rows = []
    pattern = _plain_row(len(columns))
    seen: dict[str, Any] = {}
    names = tuple(columns[i] for i in kept or ())
    while True:
        plain = pattern.match(text, position)
        if plain is not None:
            # Only the kept tokens become values: the pattern has checked the others.
            tokens = plain.groups()
            if kept is not None:
                rows.append(dict(zip(names, [_plain_value(tokens[i], seen) for i in kept],
                                     strict=True)))
            position = plain.end()
            if tokens[-1]:  # the ',' or ';' after the row, matched with it
                if tokens[-1] == ";":
                    return rows, position
                continue
        else:
            position = _skip(text, position)
            if position >= len(text) or text[position] != "(":
                raise DumpError("expected '(' opening a row of values", position)
            values, position = _tuple(text, position + 1)
            if len(values) != len(columns):
                raise DumpError(f"a row of {len(values)} values for {len(columns)} columns",
                                position)
            if kept is not None:
                rows.append(dict(zip(names, [values[i] for i in kept], strict=True)))
        position = _skip(text, position)
        if position < len(text) and text[position] == ",":
            position += 1
            continue
        if position < len(text) and text[position] == ";":
            return rows, position + 1
        if position >= len(text) or _INSERT.match(text, position):
            return rows, position  # a statement without its ';'
        raise DumpError("expected ',' or ';' after a row", position)


@functools.lru_cache(maxsize=32)
def _plain_row(width: int) -> re.Pattern[str]:
    """A row of ``width`` plain values, each captured, and the ',' or ';' after it if there
    is one (captured last)."""
    value = rf"\s*({_PLAIN})\s*"
    return re.compile(rf"\s*\({','.join([value] * width)}\)\s*([,;]?)")


def _plain_value(token: str, seen: dict[str, Any]) -> Any:
    """One captured token as ``_value`` reads it; ``seen`` remembers immutable values (the
    same timestamps, names and Nones recur thousands of times)."""
    value = seen.get(token, _UNSEEN)
    if value is not _UNSEEN:
        return value
    first = token[0]
    if first == "'":
        value = token[1:-1].replace("''", "'")
    elif first == '"':
        value = token[1:-1]  # no escape, newline or NUL: what literal_eval gives
    elif first in "xX":
        value = bytes.fromhex(token[2:-1])
    elif first == "[":
        return []
    elif first == "{":
        return {}
    elif first in "-0123456789":
        value = float(token) if "." in token or "e" in token or "E" in token else int(token)
    else:
        value = _WORDS[token.lower()]
    seen[token] = value
    return value


_UNSEEN = object()


def _skip(text: str, position: int) -> int:
    """Past whitespace and ``--`` comments."""
    blank = _BLANK.match(text, position)  # the pattern matches the empty string too
    return blank.end() if blank is not None else position


def _tuple(text: str, position: int) -> tuple[list[Any], int]:
    values = []
    while True:
        position = _skip(text, position)
        value, position = _value(text, position)
        values.append(value)
        position = _skip(text, position)
        if position < len(text) and text[position] == ",":
            position += 1
        elif position < len(text) and text[position] == ")":
            return values, position + 1
        else:
            raise DumpError("expected ',' or ')' in a row", position)


def _value(text: str, position: int) -> tuple[Any, int]:
    char = text[position:position + 1]
    if char in ("x", "X") and text[position + 1:position + 2] == "'":
        end = text.find("'", position + 2)
        if end < 0:
            raise DumpError("unterminated hex literal", position)
        try:
            return bytes.fromhex(text[position + 2:end]), end + 1
        except ValueError:
            raise DumpError("invalid hex literal", position) from None
    if char in ("'", '"'):
        end = _string_end(text, position)
        token = text[position:end]
        if "\\" in token or char == '"':
            return _literal(token, position), end
        return token[1:-1].replace("''", "'"), end
    if char in _CLOSING:
        end = _bracket_end(text, position)
        return _literal(text[position:end], position), end
    number = _NUMBER.match(text, position)
    if number is not None:
        token = number.group(0)
        return (float(token) if number.group(1) or number.group(2) else int(token),
                number.end())
    word = _WORD.match(text, position)
    if word is not None and word.group(0).lower() in _WORDS:
        return _WORDS[word.group(0).lower()], position + len(word.group(0))
    raise DumpError(f"unreadable value starting {text[position:position + 20]!r}", position)


def _string_end(text: str, position: int) -> int:
    """The offset after a quoted string: backslash escapes (Python) or doubled quotes (SQL)."""
    match = _STRINGS[text[position]].match(text, position)
    if match is not None:
        return match.end()
    quote, index = text[position], position + 1
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == quote:
            if text[index + 1:index + 2] == quote:
                index += 2
                continue
            return index + 1
        index += 1
    raise DumpError("unterminated string", position)


def _bracket_end(text: str, position: int) -> int:
    depth, index = 0, position
    while index < len(text):
        char = text[index]
        if char in ("'", '"'):
            index = _string_end(text, index)
            continue
        if char in _CLOSING:
            depth += 1
        elif char in _CLOSING.values():
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise DumpError("unclosed bracket", position)


def _literal(token: str, position: int) -> Any:
    try:
        return ast.literal_eval(token)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise DumpError(f"not a Python literal: {token[:40]!r}", position) from None


# ---------------------------------------------------------------- events to steps

def raw_event(row: dict[str, Any], seq: int) -> RawEvent | None:
    """One ``action_event`` row as a recorder-independent event (None: not an input)."""
    name, time = row.get("name"), row.get("timestamp")
    if not isinstance(time, int | float):
        return None
    x, y = row.get("mouse_x"), row.get("mouse_y")
    if name in _POINTER:
        return RawEvent(seq, float(time), _POINTER[str(name)], x=x, y=y,
                        dx=float(row.get("mouse_dx") or 0), dy=float(row.get("mouse_dy") or 0))
    if name == "click":
        kind = "button_down" if row.get("mouse_pressed") else "button_up"
        return RawEvent(seq, float(time), kind, x=x, y=y,
                        button=str(row.get("mouse_button_name") or "left"))
    if name in ("press", "release"):
        key = (row.get("key_name") or row.get("key_char") or row.get("canonical_key_name")
               or row.get("canonical_key_char"))
        if not isinstance(key, str):
            return None
        return RawEvent(seq, float(time), "key_down" if name == "press" else "key_up",
                        key=key)
    return None


def _action(reduced: ReducedAction, width: float, height: float) -> Action:
    point: dict[str, Any] = {}
    if reduced.x is not None and reduced.y is not None:
        point = {"x": normalise(reduced.x, width), "y": normalise(reduced.y, height),
                 "px": reduced.x, "py": reduced.y}
    if reduced.x2 is not None and reduced.y2 is not None:
        point |= {"x2": normalise(reduced.x2, width), "y2": normalise(reduced.y2, height),
                  "px2": reduced.x2, "py2": reduced.y2}
    return Action(type=reduced.type, text=reduced.text, keys=reduced.keys,
                  direction=reduced.direction, amount=reduced.amount,
                  coord_space="screen_px" if point else None,
                  screen_width=int(width) if point else None,
                  screen_height=int(height) if point else None, **point)


class _Recording:
    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.events: list[dict[str, Any]] = []
        self.screenshots: dict[float, bytes | None] = {}


def _recordings(statements: list[Statement]) -> dict[float, _Recording]:
    recordings = {float(row["timestamp"]): _Recording(row) for s in statements
                  if s.table == "recording" for row in s.rows
                  if isinstance(row.get("timestamp"), int | float)}
    for statement in statements:
        for row in statement.rows:
            owner = recordings.get(row.get("recording_timestamp"))  # type: ignore[arg-type]
            if owner is None:
                continue
            if statement.table == "action_event":
                owner.events.append(row)
            elif statement.table == "screenshot" and isinstance(row.get("timestamp"),
                                                                  int | float):
                data = row.get("png_data")
                owner.screenshots[float(row["timestamp"])] = data if isinstance(
                    data, bytes) else None
    return recordings


def _build(episode: EpisodeBuilder, recording: _Recording, file: str) -> None:
    row = recording.row
    width = float(row.get("monitor_width") or 0)
    height = float(row.get("monitor_height") or 0)
    if width <= 0 or height <= 0:
        raise SourceError("the recording has no monitor size", file=file,
                          hint="monitor_width / monitor_height are needed to place clicks")
    events = sorted(recording.events, key=lambda r: (r.get("timestamp") or 0))
    raws = [raw for seq, event in enumerate(events) if (raw := raw_event(event, seq))]
    params = ReductionParams(
        double_click_interval=float(row.get("double_click_interval_seconds") or 0.5),
        double_click_distance=float(row.get("double_click_distance_pixels") or 6.0))
    reduction = reduce_events(raws, params)
    episode.instruction = row.get("task_description") or None
    episode.platform, episode.clock = "desktop", "unix"
    episode.metadata = {k: row.get(k) for k in ("platform", "monitor_width", "monitor_height",
                                                "double_click_interval_seconds",
                                                "double_click_distance_pixels", "timestamp")
                        if row.get(k) is not None}
    if reduction.ignored:
        episode.metadata["ignored_events"] = len(reduction.ignored)
    stripped = 0
    for reduced in reduction.actions:
        first = events[reduced.events[0]]
        shot = first.get("screenshot_timestamp")
        data = recording.screenshots.get(shot) if isinstance(shot, int | float) else None
        frame = episode.add_frame(data, file=file) if data else None
        missing = None
        if frame is None:
            known = isinstance(shot, int | float) and shot in recording.screenshots
            missing = FILE_MISSING if known else NO_SCREENSHOTS
            stripped += known
        episode.add_step(_action(reduced, width, height),
                         source_position=f"action_event at {reduced.start:.6f}",
                         timestamp=reduced.start, timestamp_end=reduced.end,
                         frame_id=frame.frame_id if frame else None, frame_missing=missing,
                         warnings=list(reduction.warnings) if reduced is reduction.actions[0]
                         else [])
    for step, following in zip(episode.steps, episode.steps[1:], strict=False):
        step.next_frame_id, step.next_frame_missing = following.frame_id, following.frame_missing
    if episode.steps:
        episode.steps[-1].next_frame_missing = FINAL_STATE_NOT_RECORDED
    if stripped:
        episode.reject(file=file, position=f"recording {row.get('timestamp')}", level="frame",
                       reason=f"{stripped} step screenshot(s) have no png_data (stripped from "
                              "this dump)",
                       hint="the steps are kept with those frames missing (file_missing)")


@register
class OpenAdaptLegacyAdapter(Adapter):
    name: ClassVar[str] = "openadapt_legacy"
    version: ClassVar[str] = "2"  # 2: not terminated is truncated (EpisodeBuilder.ending)
    platform: ClassVar[str] = "desktop"
    description: ClassVar[str] = ("OpenAdapt legacy recording dump (INSERT INTO recording / "
                                  "action_event / screenshot ...; parsed, never executed)")
    priority: ClassVar[int] = 40

    def claims(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".sql":
            return False
        head = text_head(path)
        return head is not None and bool(re.search(r"INSERT\s+INTO\s+\"?recording\b", head,
                                                   re.IGNORECASE))

    def auxiliary(self, path: Path) -> str | None:
        if path.suffix.lower() not in (".json", ".jsonl"):
            return None
        head = text_head(path)
        if head is not None and head.startswith('{"prompt": "({\'name\': ') and (
                '"completion": ' in head):
            return ("OpenAdapt prompt/completion pairs (next-event completions of a fine-"
                    "tuning fixture), not a recording")
        return None

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        try:
            text = unit.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise SourceError(f"cannot read the dump: {error}", file=file,
                              hint="check the file's permissions and encoding") from None
        statements: list[Statement] = []
        try:
            statements.extend(parse_dump(text, READ))
        except DumpError as error:
            line = text.count("\n", 0, error.offset) + 1
            out.reject(file=file, position=f"line {line}", level="file",
                       reason=f"dump not readable from here: {error}",
                       hint="the statements before this line were read; the rest is lost")
        recordings = _recordings(statements)
        if not recordings:
            raise SourceError("no INSERT INTO recording row in the dump", file=file,
                              hint="an OpenAdapt dump inserts recording rows first")
        for timestamp, recording in sorted(recordings.items()):
            episode = out.episode(f"{timestamp:.6f}")
            _build(episode, recording, file)
            if not episode.steps:
                out.drop_episode(episode, file=file, position=f"recording {timestamp}",
                                 reason="the recording has no input event that makes an "
                                        "action", hint="nothing to train on")
