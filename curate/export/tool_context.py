"""What a tool-using agent had seen before a step: the results of its earlier calls and the
latest thing the user said, bounded so that a prompt cannot grow without limit.

Only ``platform = tool`` episodes get this context: a GUI step's observation is an
environment message the screenshot already shows, and GUI prompts stay as they were.

* Results: each history step's ``observation`` (redacted), cut to ``RESULT_CHARS``; all the
  results of one prompt together get ``CONTEXT_CHARS``, the newest first (the agent acts on
  what it saw last); both are export options (``--result-chars``, ``--context-chars``).
  The user's reply to an answer is that answer's result, marked ``[user]``. What is cut
  says so in the text, with how many characters were left out, so a reader never mistakes a
  cut result for the whole one.
* A result that was an image (the step has a ``next_frame_id`` and no text) is named as one:
  the image itself is the next screen, shown as the current screen or a history image.
* The model of each step (``steps.model``), when the conversation switched models: each
  history action names the model that chose it, so a trainer can tell whose decisions it is
  imitating.
* The user's latest message: the tool adapters keep a user's reply to an ``answer`` as that
  answer's ``observation``, and a user message between a result and the next call after a
  ``[user]`` mark in that result (docs/sources/toolcalls.md); every step after it is working
  on that message, so it goes into the prompt beside the episode's first instruction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RESULT_CHARS = 2_000  # one result at most, in characters
CONTEXT_CHARS = 8_000  # every result of one prompt's history together
IMAGE_RESULT = "[an image]"
USER_MARK = "[user] "  # how the tool adapters mark a user message inside an observation


def cut(text: str, limit: int) -> str:
    """``text`` whole when it fits in ``limit`` characters, else its head and a mark that
    names how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [cut: {len(text) - limit} of {len(text)} characters not shown]"


def step_results(steps: list[dict[str, Any]], redact: Callable[[str | None], str | None]
                 ) -> list[str | None]:
    """Each step's result as the agent saw it, redacted and whole; for an answer, the user's
    reply to it; null for a step whose result was never recorded."""
    results: list[str | None] = []
    for step in steps:
        text = step.get("observation")
        if text is None:
            results.append(None)
        elif step["action"]["type"] == "answer":
            results.append(f"{USER_MARK}{redact(text) or ''}")
        elif not text and step.get("next_frame_id"):
            results.append(IMAGE_RESULT)
        else:
            results.append(redact(text) or "")
    return results


def within_budget(results: list[str | None], budget: int = CONTEXT_CHARS,
                  each: int = RESULT_CHARS) -> list[str | None]:
    """The results of one prompt's history (oldest first) as the prompt shows them: each cut
    to ``each`` characters, all together within ``budget`` characters, the newest kept first,
    and those left without room replaced by a mark."""
    kept: list[str | None] = [None] * len(results)
    left = budget
    for index in range(len(results) - 1, -1, -1):
        text = results[index]
        if text is None:
            continue
        if left <= 0:
            kept[index] = f"[not shown: {len(text)} characters over the context budget]"
            continue
        limit = min(each, left)
        kept[index] = cut(text, limit)
        left -= min(len(text), limit)
    return kept


def latest_user_messages(steps: list[dict[str, Any]],
                         redact: Callable[[str | None], str | None]) -> list[str | None]:
    """For each step, the user's latest message before it, when the user spoke again after
    the first instruction (a reply to an earlier answer); else null."""
    latest: str | None = None
    messages: list[str | None] = []
    for step in steps:
        messages.append(latest)
        reply = _user_reply(step)
        if reply:
            latest = redact(reply)
    return messages


def _user_reply(step: dict[str, Any]) -> str | None:
    """What the user said right after this step, as the tool adapters record it: the whole
    observation of an answer; the part after a last ``[user]`` mark that starts an
    observation or a paragraph of it for a user message between a result and the next call
    (curate.sources.adapters._conversation appends it so)."""
    observation = step.get("observation")
    if not observation:
        return None
    if step["action"]["type"] == "answer":
        return str(observation)
    head, mark, tail = observation.rpartition(USER_MARK)
    return tail if mark and (not head or head.endswith("\n\n")) else None
