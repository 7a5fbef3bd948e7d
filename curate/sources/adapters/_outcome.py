"""The outcome of a tool-use episode read from how it ends, for sources with no evaluator.

A tool-use log rarely records whether the task was done. Giving an answer is no proof of
success, so such episodes stay ``unknown``, with one exception that the ending does prove: an
agent that ends by giving up failed. Giving up is a last ``fail`` action (a give-up tool such
as ToolBench's ``give_up_and_restart``) or a final answer whose first words apologise or say
the task could not be done ("I'm sorry, but I couldn't find...", "Unfortunately, I was unable
to..."). That is ``fail``, never ``success``, with the reason in ``metadata.outcome_from``.
An outcome an evaluator gave (a judge's verdict, a pass-rate file) is never replaced.

Only the *opening* of the answer is read: an answer that reports a fact after doing the work
("The flight is full; I booked the next one") does not match, and neither does an apology
later in a long answer. The words are English; other languages stay ``unknown``.
"""

from __future__ import annotations

import re

from curate.sources.adapters.base import EpisodeBuilder

# A final answer whose first words apologise or admit failure: the agent gave up in words.
GIVE_UP_ANSWER = re.compile(
    r"\s*(?:i'?m sorry|i am sorry|sorry|i apologi[sz]e|apologies|unfortunately,? i\b|"
    r"i (?:could not|couldn'?t|cannot|can'?t|was unable|am unable|wasn'?t able|was not able))",
    re.IGNORECASE)
GAVE_UP_IN_WORDS = "the final answer apologises or says the task could not be done"
GAVE_UP_BY_ACTION = "the last action gives up (fail)"


def gives_up(answer: str | None) -> bool:
    """Whether a final answer's opening apologises or says the task could not be done."""
    return answer is not None and GIVE_UP_ANSWER.match(answer.replace("\u2019", "'")) is not None


def outcome_from_ending(episode: EpisodeBuilder) -> None:
    """Set ``fail`` on an episode whose outcome no evaluator gave when its ending gives up;
    leave every other outcome as it is (an answer alone is not a success)."""
    if episode.outcome != "unknown" or not episode.steps:
        return
    last = episode.steps[-1].action
    if last.type == "fail":
        episode.outcome = "fail"
        episode.metadata["outcome_from"] = GAVE_UP_BY_ACTION
    elif last.type == "answer" and gives_up(last.text):
        episode.outcome = "fail"
        episode.metadata["outcome_from"] = GAVE_UP_IN_WORDS
