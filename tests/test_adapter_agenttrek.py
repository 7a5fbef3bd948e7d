"""AgentTrek's release: one JSON list of per-step chat samples joined back into trajectories
(same goal, history one step longer), BrowserGym actions with their AXTree names, the state
as text, bad records rejected one by one, a cut file keeping every whole record, and the file
streamed from the Hub.

No AgentTrek sample is in ../shared/realdata: the fixture was written for curate from the
format as docs/sources/agenttrek.md establishes it (AgentLab's GenericAgent prompt in the
user turn, ``<think>``/``<action>`` in the assistant turn).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from hubserver.fixture import hub_server
from hubserver.mind2web import publish_files
from hubserver.server import HubServer
from test_hub_streaming import curate, ok, tables

from curate.pipeline.extract import read_unit
from curate.sources import adapters, jsonarray
from curate.sources.adapters.base import SourceUnit, UnitBuilder
from curate.sources.discover import discover

FIXTURE = Path(__file__).resolve().parent / "fixtures/agenttrek/agenttrek_sample.json"
__all__ = ["hub_server"]  # the test Hub fixture, used by name


def read(path: Path = FIXTURE) -> UnitBuilder:
    return read_unit(SourceUnit(path, path.name), adapters.get("agenttrek"))


def test_the_release_file_is_claimed_and_a_plain_chat_list_is_not(tmp_path: Path) -> None:
    assert [(u.unit.path.name, u.adapter) for u in discover([FIXTURE.parent])] == [
        ("agenttrek_sample.json", "agenttrek")]
    chat = tmp_path / "chat.json"
    chat.write_text(json.dumps([{"messages": [{"role": "user", "content": "hi"},
                                              {"role": "assistant", "content": "hello"}]}]))
    found = adapters.detect(chat)
    assert found is None or found.name != "agenttrek"


def test_consecutive_records_with_a_growing_history_are_one_trajectory() -> None:
    out = read()
    assert [(e.source_id, e.metadata["records"]) for e in out.episodes] == [
        ("agenttrek_sample.json#record0", [0, 3]),
        # The same goal again, but its history starts over: a second run, not a continuation.
        ("agenttrek_sample.json#record4", [4, 5]),
        # [7] is no record at all; [8]'s history counts it, so the trajectory goes on.
        ("agenttrek_sample.json#record6", [6, 11])]
    first, again, third = out.episodes
    assert first.instruction == again.instruction == (
        "Search allrecipes.com for a vegetarian lasagna recipe and report its total cooking "
        "time.")
    assert [s.action.type for s in first.steps] == ["type", "click", "click", "answer"]
    assert [s.source_position for s in third.steps] == ["[6]", "[8]", "[11]"]
    assert [s.action.type for s in again.steps] == ["type", "key"]
    # An episode is terminated only when its last action ends the task.
    assert (first.terminated, again.terminated, third.terminated) == (True, False, True)
    assert not any(e.truncated for e in out.episodes)


def test_actions_keep_the_bid_with_its_role_and_name_from_the_axtree() -> None:
    steps = read().episodes[0].steps
    typed, search, result, answer = steps
    assert (typed.action.text, typed.action.target.element_id, typed.action.target.role,
            typed.action.target.text) == ("vegetarian lasagna", "145", "searchbox",
                                          "Search the site")
    assert (search.action.target.role, search.action.target.text) == ("button",
                                                                       "Click to search")
    # A name AgentLab quoted with double quotes (it holds an apostrophe).
    assert result.action.target.text == "Grandma's Vegetarian Lasagna"
    assert result.action.raw == "click('430')"
    assert answer.action.text == "The total cooking time is 1 hr 30 mins."
    # No boxes are recorded: no coordinates, and no warning on every step saying so.
    assert all(s.action.x is None and s.frame_missing == "no_screenshots" for s in steps)
    assert all(not s.warnings for s in steps)
    key = read().episodes[1].steps[1].action
    assert (key.type, key.keys, key.target.element_id) == ("key", ("enter",), "145")


def test_thoughts_state_text_memory_and_the_error_of_the_action_before() -> None:
    first, _, third = read().episodes
    assert first.steps[0].thought == (
        "The page has a search box (bid 145). I will type the dish name into it.")
    state = first.metadata["state_text"]
    assert sorted(state) == ["0", "1", "2", "3"]
    assert state["0"].startswith("RootWebArea 'Allrecipes")  # AgentLab's notes removed
    assert "Note:" not in state["0"] and "[151] button 'Click to search'" in state["0"]
    # Record [2] reports the error of the action of record [1]: that step's result.
    assert first.steps[1].observation == "TimeoutError: locator.click: Timeout 500ms exceeded."
    assert first.steps[2].observation is None
    assert third.metadata["memory"] == {"0": "The hours are probably under Visit."}


def test_bad_records_are_rejected_one_by_one_and_the_trajectory_is_kept() -> None:
    out = read()
    third = out.episodes[2]
    rejects = [(r.position, r.reason, r.episode_id) for r in out.rejects]
    assert [(p, e) for p, _, e in rejects] == [("[7]", third.episode_id),
                                                ("[9]", third.episode_id),
                                                ("[10]", third.episode_id)]
    reasons = [reason for _, reason, _ in rejects]
    assert reasons[0] == "expected a record object, got str"
    assert reasons[1] == "no <action>...</action> in the assistant message"
    assert reasons[2].startswith("bad action 'scroll(0, target)': arguments must be literals")


def test_a_file_cut_inside_a_record_keeps_every_whole_record(tmp_path: Path) -> None:
    data = FIXTURE.read_bytes()
    # Cut inside record [5]: the second run keeps its first step and is marked truncated.
    cut = tmp_path / "agenttrek_1207.json"
    cut.write_bytes(data[:data.index(b"Submit with Enter")])
    out = read(cut)
    assert [e.metadata["records"] for e in out.episodes] == [[0, 3], [4, 4]]
    assert [e.truncated for e in out.episodes] == [False, True]
    (reject,) = out.rejects
    assert reject.position == "[5]"
    assert reject.reason.startswith("the file ends inside element 5 (starting at character ")
    assert "fetch it again" in reject.hint
    assert out.episodes[1].metadata["truncated_reason"] == reject.reason


def test_a_damaged_record_ends_the_reading_there_with_a_reject(tmp_path: Path) -> None:
    data = FIXTURE.read_bytes()
    at = data.index(b'"messages"', data.index(b"Submit with Enter"))  # inside record [6]
    damaged = tmp_path / "agenttrek_1207.json"
    damaged.write_bytes(data[:at] + b"{not json]" + data[at + 10:])
    out = read(damaged)
    assert [e.metadata["records"][1] for e in out.episodes] == [3, 5]
    (reject,) = out.rejects
    assert reject.position == "[6]" and "is not valid JSON" in reject.reason
    assert "not read" in reject.hint


@pytest.mark.parametrize("content, reason", [
    ('{"messages": []}', "not a JSON array"), ("[]", "holds no record")])
def test_a_file_that_is_not_a_list_of_records_is_one_unit_reject(
        tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "agenttrek.json"
    path.write_text(content)
    out = read(path)
    assert not out.episodes
    (reject,) = out.rejects
    assert reject.level == "episode" and reason in reject.reason


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_the_array_reader_gives_what_json_load_gives_whatever_the_window(
        monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(jsonarray, "CHUNK_CHARS", chunk)
    values = [{"a": "é" * 30 + "漢字", "n": [1, 2.5, None, True]}, "x" * 100, 12345678, [], {}]
    raw = (" [\n" + " ,\n".join(json.dumps(v, ensure_ascii=False) for v in values)
           + "\n] ").encode()
    assert [v for _, v in jsonarray.iter_json_array(io.BytesIO(raw))] == values
    with pytest.raises(jsonarray.BrokenArray) as broken:
        list(jsonarray.iter_json_array(io.BytesIO(raw[:-4])))
    assert broken.value.cut and broken.value.index == 4
    with pytest.raises(jsonarray.BrokenArray) as invalid:
        list(jsonarray.iter_json_array(io.BytesIO(raw.replace(b"[1, 2.5", b"[1, 2x5"))))
    assert not invalid.value.cut and invalid.value.index == 0
    # Numbers the window ends inside are read whole, not as their first digits.
    numbers = list(range(10**6, 10**6 + 50))
    stream = io.BytesIO(json.dumps(numbers).encode())
    assert [v for _, v in jsonarray.iter_json_array(stream)] == numbers


def test_the_release_streams_from_the_hub_as_a_local_copy_reads(
        hub_server: HubServer, tmp_path: Path) -> None:
    publish_files(hub_server, "xlangai-test/agenttrek",
                  {"agenttrek_1207.json": FIXTURE})
    url = "hf://datasets/xlangai-test/agenttrek"
    ok(curate(hub_server, tmp_path, "ingest", url, "-o", str(tmp_path / "streamed")))
    local = tmp_path / "copy" / "agenttrek"
    local.mkdir(parents=True)
    shutil.copy(FIXTURE, local / "agenttrek_1207.json")
    ok(curate(hub_server, tmp_path, "ingest", str(local), "-o", str(tmp_path / "local")))
    streamed = tables(tmp_path / "streamed")
    assert streamed == tables(tmp_path / "local")
    assert len(streamed["episodes"]) == 3 and len(streamed["rejects"]) == 3
    cached = {p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()}
    assert not any(name.endswith(".json") and "agenttrek" in name for name in cached)
    ok(curate(hub_server, tmp_path, "ingest", url, "-o", str(tmp_path / "limited"),
              "--limit", "2"))
    assert len(tables(tmp_path / "limited")["episodes"]) == 2


def test_a_goal_starting_with_a_hash_is_not_taken_for_a_header(tmp_path: Path) -> None:
    records = json.loads(FIXTURE.read_text())[:4]
    for record in records:
        prompt = record["messages"][1]
        prompt["content"] = prompt["content"].replace("## Goal:\n", "## Goal:\n#42 ")
    path = tmp_path / "agenttrek.json"
    path.write_text(json.dumps(records))
    (episode,) = read(path).episodes
    assert episode.instruction.startswith("#42 Search allrecipes.com")
    assert len(episode.steps) == 4


@pytest.mark.parametrize("chunk", range(1, 13))
def test_a_number_the_window_ends_inside_at_its_point_or_exponent_is_read_whole(
        monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    # Windows of 1..12 characters put a boundary right after every digit run of these, so
    # one ends at "." or "e" / "e-": "12345." decodes as 12345 and the "." was left over.
    monkeypatch.setattr(jsonarray, "CHUNK_CHARS", chunk)
    raw = b"[12345.5, 1.5e-7, -2E+30, 3.25, 7E5, 0.125, 1e5, -0.0]"
    assert [v for _, v in jsonarray.iter_json_array(io.BytesIO(raw))] == json.loads(raw)
