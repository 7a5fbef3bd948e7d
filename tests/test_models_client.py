"""The model client against a real chat-completions server on 127.0.0.1 (tests/modelserver)."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from pathlib import Path

import pytest
from modelserver import ModelServer
from modelserver.fixture import model_server
from PIL import Image

from curate.models import ChatClient, ModelCache, ModelError, image, user_request

__all__ = ["model_server"]


def png(width: int = 64, height: int = 48, colour: str = "white") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def request(text: str = "hello", picture: bytes | None = None, version: str = "test.v1"):
    parts = [image(picture)] if picture is not None else []
    return user_request("test-model", version, [*parts, text])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_images_travel_as_data_urls_and_the_answer_comes_back(model_server: ModelServer,
                                                              tmp_path: Path) -> None:
    model_server.responder = lambda r: f"{r.image_sizes[0][0]}x{r.image_sizes[0][1]}: {r.text}"
    with ChatClient(model_server.url, cache=tmp_path) as client:
        result = client.chat(request("what is this?", png(64, 48)))
    assert result.text == "64x48: what is this?"
    assert result.finish_reason == "stop" and not result.cached
    content = model_server.requests[0].body["messages"][0]["content"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert base64.b64decode(content[0]["image_url"]["url"].split(",", 1)[1]) == png(64, 48)
    assert model_server.requests[0].body["model"] == "test-model"


def test_text_that_looks_like_the_image_placeholder_is_sent_as_written() -> None:
    text = '@@curate-image-0" and "@@curate-image-'
    body = json.loads(user_request("m", "v1", [image(png()), text, image(png(8, 8))])
                      .encoded_body())
    parts = body["messages"][0]["content"]
    assert parts[1] == {"type": "text", "text": text}
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert base64.b64decode(parts[2]["image_url"]["url"].split(",", 1)[1]) == png(8, 8)


def test_a_rerun_is_answered_from_the_store_with_zero_requests(model_server: ModelServer,
                                                               tmp_path: Path) -> None:
    model_server.responder = lambda r: r.text.upper()
    batch = [request(f"item {i}", png()) for i in range(5)]
    with ChatClient(model_server.url, cache=tmp_path) as client:
        first = client.chat_many(batch)
    assert model_server.count == 5
    with ChatClient(model_server.url, cache=tmp_path) as client:
        second = client.chat_many(batch)
        assert client.stats.requests == 0 and client.stats.cache_hits == 5
    assert model_server.count == 5
    assert [r.text for r in second] == [r.text for r in first] == [f"ITEM {i}" for i in range(5)]
    assert all(r.cached for r in second)
    entries = list((tmp_path / "cache" / "models").glob("??/*.json"))
    assert len(entries) == 5 and not list((tmp_path / "cache").rglob("*.tmp"))


def test_the_cache_key_covers_model_prompt_version_text_and_image_bytes() -> None:
    base = request("a", png(colour="white"))
    assert base.cache_key() == request("a", png(colour="white")).cache_key()
    assert base.cache_key() != request("b", png(colour="white")).cache_key()
    assert base.cache_key() != request("a", png(colour="black")).cache_key()
    assert base.cache_key() != request("a", png(colour="white"), version="test.v2").cache_key()
    other_model = user_request("other-model", "test.v1", [image(png()), "a"])
    assert base.cache_key() != other_model.cache_key()


def test_a_known_frame_id_gives_the_same_key_as_hashing_the_bytes() -> None:
    from curate.store.frames import content_id

    data = png(colour="red")
    hashed = user_request("m", "v1", [image(data), "a"])
    known = user_request("m", "v1", [image(data, content_id(data)), "a"])
    assert hashed.cache_key() == known.cache_key()


def test_identical_requests_in_one_batch_are_sent_once(model_server: ModelServer) -> None:
    model_server.responder = lambda r: "same"
    with ChatClient(model_server.url) as client:
        results = client.chat_many([request("x")] * 4)
    assert model_server.count == 1 and [r.text for r in results] == ["same"] * 4


def test_429_and_500_are_retried_and_retry_after_is_honoured(model_server: ModelServer) -> None:
    model_server.responder = lambda r: "fine"
    model_server.inject("429:0.3", "500")
    start = time.perf_counter()
    with ChatClient(model_server.url, backoff=0.01) as client:
        result = client.chat(request())
        assert client.stats.retries == 2
    assert result.text == "fine" and model_server.count == 3
    assert time.perf_counter() - start >= 0.3  # waited as long as the server asked


def test_a_body_cut_short_is_retried(model_server: ModelServer) -> None:
    model_server.responder = lambda r: "whole"
    model_server.inject("cut")
    with ChatClient(model_server.url, backoff=0.01) as client:
        assert client.chat(request()).text == "whole"
    assert model_server.count == 2


def test_a_server_that_keeps_failing_is_an_outcome_naming_url_and_status(
        model_server: ModelServer) -> None:
    model_server.inject(*["500"] * 3)
    with ChatClient(model_server.url, backoff=0.0, max_retries=2) as client:
        [result] = client.chat_many([request()])
    assert result.error == "unreachable"
    assert model_server.url + "/chat/completions" in result.reason and "HTTP 500" in result.reason
    assert model_server.count == 3


def test_a_client_error_is_not_retried_and_chat_raises_it(model_server: ModelServer) -> None:
    model_server.inject("401")
    with ChatClient(model_server.url, backoff=0.0) as client, \
            pytest.raises(ModelError, match=r"answered HTTP 401: .*injected 401"):
        client.chat(request())
    assert model_server.count == 1


def test_an_unreachable_endpoint_is_an_outcome_not_an_exception(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with ChatClient(url, cache=tmp_path, backoff=0.0, max_retries=1, timeout=2) as client:
        [result] = client.chat_many([request()])
    assert result.error == "unreachable" and "ConnectError" in result.reason
    assert url in result.reason
    assert ModelCache.in_store(tmp_path).keys() == []  # failures are never cached


def test_the_api_key_is_sent_from_the_environment_and_never_shown(
        model_server: ModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("MY_MODEL_KEY", secret)
    model_server.responder = lambda r: f"your key was {r.authorization}"
    model_server.inject("401")
    with ChatClient(model_server.url, api_key_env="MY_MODEL_KEY", backoff=0.0) as client:
        assert secret not in repr(client)
        [failed] = client.chat_many([request("first")])
        [answer] = client.chat_many([request("second")])
    assert model_server.requests[0].authorization == f"Bearer {secret}"
    assert secret not in failed.reason
    assert answer.text == f"your key was Bearer {secret}"  # what the server said, untouched


def test_a_truncated_answer_is_returned_with_its_finish_reason(model_server: ModelServer) -> None:
    model_server.responder = lambda r: "Action: click(start_box='(100,200)')"
    model_server.inject("truncated")
    with ChatClient(model_server.url) as client:
        result = client.chat(request())
    assert result.finish_reason == "length" and result.text == "Action: click(star"


@pytest.mark.parametrize("concurrency", [1, 8])
def test_concurrency_overlaps_requests(model_server: ModelServer, concurrency: int) -> None:
    # Counted at the server, not timed: on a shared machine a wall-clock bound is noise.
    model_server.responder = lambda r: "ok"
    model_server.latency = 0.3
    with ChatClient(model_server.url, concurrency=concurrency) as client:
        client.chat_many([request(f"r{i}") for i in range(8)])
    assert model_server.count == 8
    if concurrency == 1:
        assert model_server.max_in_flight == 1
    else:  # eight requests each held 0.3 s at the server: several were answered at once
        assert model_server.max_in_flight >= 2


def test_a_corrupt_cache_entry_is_asked_again(model_server: ModelServer, tmp_path: Path) -> None:
    model_server.responder = lambda r: "fresh"
    req = request()
    cache = ModelCache.in_store(tmp_path)
    cache.path(req.cache_key()).parent.mkdir(parents=True)
    cache.path(req.cache_key()).write_text("{not json")
    with ChatClient(model_server.url, cache=cache) as client:
        assert client.chat(req).text == "fresh"
    assert json.loads(cache.path(req.cache_key()).read_text())["text"] == "fresh"
