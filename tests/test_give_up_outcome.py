"""A final answer that apologises or gives up is not a success, in every tool-use source
(issue 18 part 3; the shared rule is curate.sources.adapters._outcome). For each adapter a
real sample or a fixture is read, its final answer is made to open with an apology, and the
episode's outcome becomes fail (with the reason) where no evaluator gave one; an evaluator's
verdict is kept; other answers stay what they were (an answer alone is no success)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from curate.pipeline.extract import read_unit
from curate.sources import adapters
from curate.sources.adapters._outcome import GAVE_UP_IN_WORDS, gives_up
from curate.sources.adapters.base import EpisodeBuilder, SourceUnit
from tests.conftest import REALDATA, REPO

FIXTURES = REPO / "tests" / "fixtures"
APOLOGY = "Sorry, I could not finish this. "
# (adapter, file): a file whose episodes end with a final answer, read as that adapter.
SOURCES = [
    ("openai_chat", FIXTURES / "toolcalls" / "openai_chat_parallel_image.json"),
    ("anthropic_messages", FIXTURES / "toolcalls" / "anthropic_image_result.json"),
    ("openai_responses", FIXTURES / "toolcalls" / "openai_responses.json"),
    ("http_cassette", FIXTURES / "toolcalls" / "cassette_anthropic.yaml"),
    ("claude_code_sessions", FIXTURES / "claude_code_sessions" / "session.jsonl"),
    ("codex_rollouts", FIXTURES / "codex_rollouts"
     / "rollout-2025-08-18T01-16-13-5973b6c0-94b8.jsonl"),
    ("otel_genai", FIXTURES / "otel" / "genai_agent.otlp.json"),
    ("phoenix_spans", FIXTURES / "phoenix_spans" / "spans.jsonl"),
    ("langfuse_traces", FIXTURES / "langfuse_traces" / "weather.json"),
    ("adp", FIXTURES / "adp" / "web_atif.json"),
    ("langfuse_traces", REALDATA / "langfuse_traces" / "packages" / "shared" / "scripts"
     / "seeder" / "utils" / "framework-traces" / "autogen-2025-06-06.json"),
    ("claude_code_sessions", REALDATA / "claude_code_sessions" / "test" / "fixtures"
     / "transcripts" / "ae4a77f8-aedd-4bc1-888f-c94edc91af04" / "subagents"
     / "agent-aac57f5.jsonl"),
]


def _episodes(name: str, path: Path) -> list[EpisodeBuilder]:
    unit = SourceUnit(path, path.name)
    out = read_unit(unit, adapters.get(name))
    return out.episodes


def _answered(episodes: list[EpisodeBuilder]) -> EpisodeBuilder:
    for episode in episodes:
        last = episode.steps[-1].action if episode.steps else None
        if last is not None and last.type == "answer" and last.text and _prefix(last.text):
            return episode
    raise AssertionError("no episode ends with a final answer")


def _prefix(text: str) -> str | None:
    """The answer's opening, as long as it needs no escaping in any encoding of the file."""
    match = re.match(r"[A-Za-z0-9 ,.:!]{8,40}", text)
    return match.group(0) if match else None


@pytest.mark.parametrize(("name", "path"), SOURCES,
                         ids=[f"{name}-{path.name}" for name, path in SOURCES])
def test_apologising_final_answer_is_fail(name: str, path: Path, tmp_path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    before = _answered(_episodes(name, path))
    assert before.outcome != "fail" and not gives_up(before.steps[-1].action.text)
    prefix = _prefix(before.steps[-1].action.text or "")
    assert prefix is not None
    edited = tmp_path / path.name
    edited.write_text(path.read_text(encoding="utf-8").replace(prefix, APOLOGY + prefix),
                      encoding="utf-8")
    after = {e.source_id.split("#", 1)[-1]: e for e in _episodes(name, edited)}
    episode = after[before.source_id.split("#", 1)[-1]]
    assert (episode.steps[-1].action.text or "").startswith(APOLOGY)
    assert episode.outcome == "fail"
    assert episode.metadata["outcome_from"] == GAVE_UP_IN_WORDS
    assert len(after) == len(_episodes(name, path))


def _t3(tmp_path: Path, verdict: str) -> EpisodeBuilder:
    source = FIXTURES / "t3_agent" / "train_subset.json"
    text = source.read_text(encoding="utf-8").replace(
        'final_answer(\\"2\\")', 'final_answer(\\"Sorry, I could not count them.\\")')
    text = text.replace('\\"correct\\": \\"yes\\"}', f'\\"correct\\": \\"{verdict}\\"}}', 1)
    path = tmp_path / "train_subset.json"
    path.write_text(text, encoding="utf-8")
    episode = _episodes("t3_agent", path)[0]
    assert episode.steps[-1].action.text == "Sorry, I could not count them."
    return episode


def test_t3_agent_judge_verdict_is_kept_and_apology_fails_without_one(tmp_path: Path) -> None:
    assert _t3(tmp_path, "yes").outcome == "success"  # the judge said so: kept
    judged_unsure = _t3(tmp_path, "unsure")
    assert judged_unsure.outcome == "fail"
    assert judged_unsure.metadata["outcome_from"] == GAVE_UP_IN_WORDS


@pytest.mark.parametrize(("answer", "expected"), [
    ("I'm sorry, but I couldn't find any flights.", True),
    ("I\u2019m sorry, the API returned nothing.", True),
    ("Unfortunately, I was unable to reach the service.", True),
    ("I cannot access that page.", True),
    ("Apologies: the tool kept failing.", True),
    ("The flight is full; I booked the next one. Sorry for the delay.", False),
    ("Unfortunately the shop is closed on Sundays.", False),  # a fact, not giving up
    ("Here are the results.", False),
    (None, False),
])
def test_gives_up_reads_the_opening_only(answer: str | None, expected: bool) -> None:
    assert gives_up(answer) is expected
