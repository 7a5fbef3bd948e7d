"""Tool-call conversations (OpenAI Chat, OpenAI Responses, Anthropic) and HTTP cassettes."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    TEXT_ONLY,
    SourceUnit,
    UnitBuilder,
)
from curate.store.frames import content_id

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "toolcalls"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples/recordings/tool_calls/lyon_umbrella.json"
CASSETTES = (Path(__file__).resolve().parents[2]
             / "shared/realdata/pydantic_ai_cassettes/tests/models/cassettes")


def read(path: Path, name: str | None = None) -> UnitBuilder:
    adapter = adapters.get(name) if name else adapters.detect(path)
    assert adapter is not None, f"no adapter claimed {path}"
    return read_unit(SourceUnit(path, path.name), adapter)


def only_episode(out: UnitBuilder) -> Any:
    assert len(out.episodes) == 1, out.rejects
    return out.episodes[0]


def png_bytes(colour: tuple[int, int, int] = (10, 20, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def tool_sequence(out: UnitBuilder) -> list[tuple[str, str | None]]:
    return [(s.action.type, s.action.tool_name) for s in only_episode(out).steps]


# ------------------------------------------------------------------------------ detection


@pytest.mark.parametrize(("file", "name"), [
    ("openai_chat_parallel_image.json", "openai_chat"),
    ("legacy_function_call.json", "openai_chat"),
    ("conversations.jsonl", "openai_chat"),
    ("openai_responses.json", "openai_responses"),
    ("anthropic_image_result.json", "anthropic_messages"),
    ("cassette_anthropic.yaml", "http_cassette"),
])
def test_each_provider_schema_is_detected(file: str, name: str) -> None:
    adapter = adapters.detect(FIXTURES / file)
    assert adapter is not None and adapter.name == name


def test_files_of_other_adapters_are_not_claimed(tmp_path: Path) -> None:
    osworld = tmp_path / "run" / "traj.jsonl"
    osworld.parent.mkdir()
    osworld.write_text(json.dumps({"step_num": 1, "action": "WAIT", "reward": 0}) + "\n")
    events = write_json(tmp_path / "events.jsonl", {"time_stamp": 1.5, "action": "move",
                                                    "x": 3, "y": 4, "event_idx": 0})
    native = tmp_path / "ep"
    native.mkdir()
    write_json(native / "episode.json", {"curate_native": 1})
    steps = write_json(native / "steps.jsonl", {"action": {"type": "tool_call"}})
    messages = write_json(osworld.parent / "messages.json", [
        {"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}])
    config = write_json(tmp_path / "config.json", {"name": "not a conversation"})
    tool_adapters = [adapters.get(n) for n in ("openai_chat", "openai_responses",
                                               "anthropic_messages", "http_cassette")]
    for path in (osworld, events, steps, messages, config):
        assert not any(a.claims(path) for a in tool_adapters), path


def test_claims_sniffs_only_the_head_of_a_long_first_line(tmp_path: Path) -> None:
    big = "A" * 100_000  # the first line is longer than the 64 KB the sniffer reads
    line = json.dumps({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": big}]}]})
    path = tmp_path / "long.jsonl"
    path.write_text(line + "\n")
    adapter = adapters.detect(path)
    assert adapter is not None and adapter.name == "anthropic_messages"


# ---------------------------------------------------------------------------- OpenAI Chat


def test_chat_parallel_calls_are_steps_in_call_order_with_results_matched_by_id() -> None:
    episode = only_episode(read(FIXTURES / "openai_chat_parallel_image.json"))
    first, second, answer = episode.steps
    assert (first.action.tool_name, second.action.tool_name) == ("open_page", "screenshot_page")
    # The tool messages come in the opposite order; ids decide.
    assert first.observation == "Page a: three paragraphs, no chart."
    assert second.observation == "Screenshot taken. See file f00b42."
    assert first.action.tool_args == '{"url": "https://example.com/a"}'
    assert answer.action.type == "answer"
    assert answer.action.text == "Page b has a bar chart; page a has none."
    assert episode.terminated and not episode.truncated


def test_chat_hoisted_image_is_the_next_state_of_the_result_its_caption_names() -> None:
    episode = only_episode(read(FIXTURES / "openai_chat_parallel_image.json"))
    first, second, answer = episode.steps
    # The image follows both tool messages; its caption names file f00b42, which only the
    # screenshot_page result mentions (even though open_page's result came last).
    assert second.next_frame_id is not None and first.next_frame_id is None
    assert first.next_frame_missing == TEXT_ONLY
    assert episode.frames[second.next_frame_id].width == 10
    assert answer.frame_id == second.next_frame_id


def test_chat_user_image_is_the_state_before_parallel_calls() -> None:
    episode = only_episode(read(FIXTURES / "openai_chat_parallel_image.json"))
    first, second, _ = episode.steps
    assert first.frame_id is not None and first.frame_id == second.frame_id
    assert episode.frames[first.frame_id].width == 8
    assert episode.instruction.startswith("Which of the two pages has a chart?")


def test_assistant_text_beside_calls_is_the_first_calls_thought() -> None:
    episode = only_episode(read(FIXTURES / "openai_chat_parallel_image.json"))
    assert episode.steps[0].thought.startswith("I'll open page a")
    assert episode.steps[1].thought is None


def test_legacy_function_call_and_function_result_matched_by_name() -> None:
    episode = only_episode(read(FIXTURES / "legacy_function_call.json"))
    call, answer = episode.steps
    assert call.action.tool_name == "get_weather"
    assert call.action.tool_args == '{"city": "Lyon"}'
    assert call.observation == '{"condition": "light rain", "temp_c": 14}'
    assert call.frame_missing == TEXT_ONLY and call.next_frame_missing == TEXT_ONLY
    assert answer.action.text == "Yes, light rain at 14 °C."
    assert episode.metadata["system"] == "You can call functions."
    assert episode.clock == "none" and episode.platform == "tool"


def test_jsonl_broken_line_is_an_episode_reject_and_the_rest_go_on() -> None:
    out = read(FIXTURES / "conversations.jsonl")
    assert [e.source_id for e in out.episodes] == [
        "conversations.jsonl#line 1", "conversations.jsonl#line 3"]
    assert [(r.position, r.level) for r in out.rejects] == [
        ("line 2", "episode"), ("line 4", "episode")]
    assert "invalid JSON" in out.rejects[0].reason
    assert "expected a list of messages" in out.rejects[1].reason
    assert out.episodes[1].steps[0].source_position == "line 3: [1].tool_calls[0]"


def test_result_without_a_call_is_a_step_reject(tmp_path: Path) -> None:
    path = write_json(tmp_path / "orphan.json", [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "tool", "tool_call_id": "c_unknown", "content": "stray"},
        {"role": "assistant", "content": "done"}])
    out = read(path)
    episode = only_episode(out)
    assert [s.action.type for s in episode.steps] == ["tool_call", "answer"]
    [reject] = out.rejects
    assert (reject.level, reject.position) == ("step", "[3]")
    assert "c_unknown" in reject.reason and reject.episode_id == episode.episode_id


def test_call_without_a_result_keeps_no_observation_and_warns(tmp_path: Path) -> None:
    path = write_json(tmp_path / "cut.json", {"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "only g answered"}]})
    episode = only_episode(read(path))
    first, second = episode.steps
    assert first.observation is None and "no result" in first.warnings[0]
    assert second.observation == "only g answered" and not second.warnings
    assert episode.truncated and not episode.terminated


def test_arguments_that_are_not_json_are_kept_as_a_string_with_a_warning(tmp_path: Path
                                                                         ) -> None:
    path = write_json(tmp_path / "args.json", [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "?"}])
    step = only_episode(read(path)).steps[0]
    assert step.action.tool_args == '"{oops"'
    assert "not valid JSON" in step.warnings[0]


def test_broken_and_remote_images_are_frame_rejects(tmp_path: Path) -> None:
    path = write_json(tmp_path / "images.json", [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "see img1a"},
        {"role": "tool", "tool_call_id": "c2", "content": "see img2b"},
        {"role": "user", "content": [
            {"type": "text", "text": "img1a"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@not-base64"}},
            {"type": "text", "text": "img2b"},
            {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}])
    out = read(path)
    first, second = only_episode(out).steps
    assert first.next_frame_missing == FILE_CORRUPT
    assert second.next_frame_missing == FILE_MISSING
    assert [(r.level, r.position) for r in out.rejects] == [
        ("frame", "[4].content[1]"), ("frame", "[4].content[3]")]
    assert "not embedded" in out.rejects[1].reason


def test_multi_turn_chat_user_reply_is_the_answers_observation(tmp_path: Path) -> None:
    path = write_json(tmp_path / "turns.json", [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Spain?"},
        {"role": "assistant", "content": "Madrid."}])
    episode = only_episode(read(path))
    assert [s.action.text for s in episode.steps] == ["Paris.", "Madrid."]
    assert episode.steps[0].observation == "And of Spain?"
    assert episode.instruction == "Capital of France?"


# ------------------------------------------------------------------- Responses and Anthropic


def test_responses_items_reasoning_is_thought_and_image_output_is_a_frame() -> None:
    episode = only_episode(read(FIXTURES / "openai_responses.json"))
    get_time, render, answer = episode.steps
    assert (get_time.action.tool_name, render.action.tool_name) == ("get_time", "render_clock")
    assert get_time.thought == "Need the time, then a picture."
    assert get_time.observation == "14:05 CET"  # matched by call_id, output came second
    assert render.observation == "Clock rendered." and render.next_frame_id is not None
    assert answer.action.text.startswith("It is 14:05") and answer.frame_id == render.next_frame_id
    assert episode.metadata["system"] == "Answer with the tools you have."


def test_anthropic_image_tool_result_becomes_the_next_frame() -> None:
    episode = only_episode(read(FIXTURES / "anthropic_image_result.json"))
    screenshot, click, answer = episode.steps
    assert screenshot.thought == "First look at the screen.\n\nLet me take a screenshot."
    assert screenshot.frame_missing == TEXT_ONLY
    assert screenshot.observation == "Current screen:"
    assert screenshot.next_frame_id is not None
    assert click.frame_id == screenshot.next_frame_id  # s_t: the latest image seen
    assert click.action.tool_args == '{"element": "Settings"}'
    assert click.observation == "clicked Settings" and click.next_frame_missing == TEXT_ONLY
    assert answer.action.text == "The theme is Dark."
    assert episode.metadata["tools"] == ["screenshot", "click"]


# -------------------------------------------------------------------------------- cassettes


def test_vcr_cassette_with_string_bodies_reads_the_last_request_once() -> None:
    out = read(FIXTURES / "cassette_anthropic.yaml")
    episode = only_episode(out)
    assert tool_sequence(out) == [("tool_call", "lookup"), ("tool_call", "lookup"),
                                  ("answer", None)]
    assert [s.observation for s in episode.steps[:2]] == ["Frank Herbert", "1965"]
    assert episode.metadata["provider"] == "anthropic_messages"
    assert episode.steps[0].source_position == "interactions[1].request.body.messages[1].content[1]"
    assert not out.rejects


def cassette(tmp_path: Path, interactions: list[dict[str, Any]]) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}))
    return path


def exchange(uri: str, request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    return {"request": {"method": "POST", "uri": uri, "headers": {}, "parsed_body": request},
            "response": {"status": {"code": 200}, "headers": {}, "parsed_body": response}}


def chat_reply(calls: list[tuple[str, str]] | None, text: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [{"id": i, "type": "function",
                                  "function": {"name": n, "arguments": "{}"}} for i, n in calls]
    return {"choices": [{"index": 0, "message": message}]}


def test_cassette_of_an_unsupported_provider_is_rejected_clearly(tmp_path: Path) -> None:
    path = cassette(tmp_path, [exchange(
        "https://generativelanguage.googleapis.com/v1beta/models/x:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "messages": []},
        {"candidates": []})])
    out = read(path, "http_cassette")
    [reject] = out.rejects
    assert reject.level == "episode" and "Google Gemini" in reject.reason


def test_cassette_reply_missing_from_the_last_history_is_reported(tmp_path: Path) -> None:
    url = "https://api.openai.com/v1/chat/completions"
    first = exchange(url, {"messages": [{"role": "user", "content": "run A"}]},
                     chat_reply([("call_A", "f")]))
    second = exchange(url, {"messages": [{"role": "user", "content": "run B"}]},
                      chat_reply(None, "B done"))
    out = read(cassette(tmp_path, [first, second]))
    episode = only_episode(out)
    assert episode.instruction == "run B"
    [reject] = out.rejects
    assert reject.position == "interactions[0].response" and "call_A" in reject.reason


def test_cassette_error_response_ends_the_episode_at_the_request(tmp_path: Path) -> None:
    url = "https://api.openai.com/v1/chat/completions"
    history = [{"role": "user", "content": "go"},
               {"role": "assistant", "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "ok"}]
    failed = exchange(url, {"messages": history}, {"error": {"message": "overloaded"}})
    failed["response"]["status"] = {"code": 529}
    out = read(cassette(tmp_path, [failed]))
    episode = only_episode(out)
    assert tool_sequence(out) == [("tool_call", "f")] and episode.truncated
    assert "status 529" in out.rejects[0].reason


# -------------------------------------------------------------------------------- example


def test_example_recording_has_four_calls_an_image_and_an_answer() -> None:
    assert EXAMPLE.stat().st_size < 50_000
    out = read(EXAMPLE)
    episode = only_episode(out)
    assert [s.action.type for s in episode.steps] == ["tool_call"] * 4 + ["answer"]
    radar = episode.steps[1]
    assert radar.action.tool_name == "get_radar_image" and radar.next_frame_id is not None
    assert [s.frame_id for s in episode.steps[2:]] == [radar.next_frame_id] * 3
    assert all(s.observation is not None for s in episode.steps[:4])
    assert not out.rejects


# ------------------------------------------------------------------------------- real data


def real_cassettes() -> list[Path]:
    if not CASSETTES.is_dir():
        pytest.skip(f"real pydantic-ai cassettes not available at {CASSETTES} "
                    "(../shared/realdata is absent)")
    return sorted(CASSETTES.rglob("*.yaml"))


def recorded_tool_calls(path: Path) -> list[str]:
    """Tool call ids in the last model request and its response, counted independently."""
    data = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    last = [i for i in data["interactions"]
            if "generativelanguage" not in i["request"]["uri"]][-1]
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") in ("tool_use", "function_call"):
                found.append(value.get("call_id") or value["id"])
            for call in value.get("tool_calls") or []:
                found.append(call["id"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(last["request"]["parsed_body"])
    walk(last["response"]["parsed_body"])
    return found


@pytest.mark.realdata
def test_real_cassettes_every_tool_call_is_a_step_with_its_result() -> None:
    for path in real_cassettes():
        out = read(path)
        assert out.episodes, (path.name, out.rejects)
        steps = only_episode(out).steps
        calls = [s for s in steps if s.action.type == "tool_call"]
        recorded = recorded_tool_calls(path)
        assert len(calls) == len(recorded) > 0, path.name
        assert all(s.observation is not None and not s.warnings for s in calls), path.name
        assert steps[-1].action.type == "answer", path.name
        assert all(r.level == "frame" for r in out.rejects), (path.name, out.rejects)


@pytest.mark.realdata
def test_real_mixed_content_three_providers_give_the_same_logical_sequence() -> None:
    real_cassettes()
    runs = {}
    for provider in ("openai_chat", "anthropic", "openai_responses"):
        out = read(CASSETTES / "test_multimodal_tool_returns"
                   / f"test_mixed_content_ordering[{provider}].yaml")
        runs[provider] = only_episode(out)
    sequences = {p: [(s.action.type, s.action.tool_name) for s in e.steps]
                 for p, e in runs.items()}
    assert len({tuple(seq) for seq in sequences.values()}) == 1, sequences
    assert sequences["anthropic"] == [("tool_call", "get_mixed_content"), ("answer", None)]
    # The same JPEG travels three ways (a hoisted data URL, an image block, an input_image):
    # it becomes the same frame, the tool step's next state and the answer's state.
    next_frames = {e.steps[0].next_frame_id for e in runs.values()}
    assert len(next_frames) == 1 and None not in next_frames
    for episode in runs.values():
        assert episode.steps[1].frame_id == episode.steps[0].next_frame_id
        assert "pydantic_ai_marker" in episode.steps[0].observation
        assert episode.instruction == ("Call the get_mixed_content tool and describe what you "
                                       "received.")


@pytest.mark.realdata
def test_real_parallel_anthropic_calls_share_one_thought_and_match_by_tool_use_id() -> None:
    real_cassettes()
    path = CASSETTES / "test_anthropic" / "test_multiple_parallel_tool_calls.yaml"
    episode = only_episode(read(path))
    calls = episode.steps[:4]
    assert [json.loads(s.action.tool_args)["name"] for s in calls] == [
        "Alice", "Bob", "Charlie", "Daisy"]
    assert [s.observation.split()[0] for s in calls] == ["alice", "bob", "charlie", "daisy"]
    assert calls[0].thought and all(s.thought is None for s in calls[1:])


@pytest.mark.realdata
def test_real_cassette_history_is_not_duplicated_and_other_providers_are_listed() -> None:
    real_cassettes()
    out = read(CASSETTES / "test_openai/test_multiple_agent_tool_calls.yaml")
    episode = only_episode(out)
    assert [s.action.type for s in episode.steps] == ["tool_call", "answer", "tool_call",
                                                      "answer"]
    assert episode.steps[1].observation == "What is the capital of England?"
    assert [o["request"] for o in episode.metadata["other_requests"]] == [
        "Google Gemini generateContent"] * 2


@pytest.mark.realdata
def test_real_image_by_url_is_a_frame_reject_not_a_download() -> None:
    real_cassettes()
    out = read(CASSETTES / "test_openai/test_image_url_tool_response.yaml")
    step = only_episode(out).steps[0]
    assert step.next_frame_id is None and step.next_frame_missing == FILE_MISSING
    [reject] = out.rejects
    assert reject.level == "frame" and "https://" in reject.reason


def test_frame_ids_are_content_hashes_of_the_decoded_bytes(tmp_path: Path) -> None:
    image = png_bytes((1, 2, 3))
    path = write_json(tmp_path / "one.json", [
        {"role": "user", "content": [{"type": "text", "text": "look"},
                                     {"type": "image_url", "image_url": {"url": data_url(image)}}]},
        {"role": "assistant", "content": "I see a dark pixel field."}])
    answer = only_episode(read(path)).steps[0]
    assert answer.frame_id == content_id(image)


def test_corrupt_conversation_file_is_claimed_and_rejected_where_it_breaks(tmp_path: Path
                                                                           ) -> None:
    path = tmp_path / "cut.json"
    path.write_text('[{"role": "user", "content": "go"},\n {"role": "assistant", "tool_calls": [')
    adapter = adapters.detect(path)
    assert adapter is not None and adapter.name == "openai_chat"
    [reject] = read(path).rejects
    assert reject.level == "episode" and "invalid JSON" in reject.reason
    assert reject.position.startswith("line 2")
