"""A grounding model for the test server that is right where the recording says it would be:
it grounds with curate's ``a11y`` executor on the elements a real source recorded.

The request is read as a model would get it: the step instruction is taken back out of the
family's prompt (the versioned file under annotations/prompts/grounding/), the screenshot is
recognised by its frame id (the sha256 prefix of its bytes, as the store names frames), and
the a11y executor picks the element on that screen's recorded elements. Its box is answered
in the family's documented format (``render_grounding``), so the grounding executor's
request building, image encoding, parsing and coordinate conversion all run for real. What
the a11y executor cannot find, the "model" answers in words (an invalid answer).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curate.executors.a11y import A11yExecutor
from curate.executors.base import ProposedStep, StepContext
from curate.store.frames import content_id

from .server import Request, Responder, render_grounding

PROMPTS = Path(__file__).resolve().parents[2] / "annotations" / "prompts" / "grounding"


def instruction_pattern(family: str) -> re.Pattern[str]:
    """The family's prompt with its ``{instruction}`` slot as a group."""
    template = (PROMPTS / f"{family}.v1.txt").read_text(encoding="utf-8").strip()
    before, after = template.split("{instruction}")
    unescape = lambda text: text.replace("{{", "{").replace("}}", "}")  # noqa: E731
    return re.compile(re.escape(unescape(before)) + "(.*?)" + re.escape(unescape(after)) + "$",
                      re.DOTALL)


def a11y_responder(family: str, elements_by_frame: Mapping[str, Sequence[Mapping[str, Any]]]
                   ) -> Responder:
    """Answers each grounding request from the elements recorded for its screenshot."""
    pattern = instruction_pattern(family)
    grounder = A11yExecutor()

    def respond(request: Request) -> str:
        found = pattern.search(request.text)
        if found is None:
            return "That is not a grounding request."
        elements = elements_by_frame.get(content_id(request.image_bytes(0)), ())
        context = StepContext("test", 0, "unknown", elements=elements)
        grounded = grounder.execute(context, ProposedStep("click", found.group(1)))
        target = grounded.executed.target if grounded.executed else None
        if target is None or None in (target.x0, target.y0, target.x1, target.y1):
            return f"I cannot find that element on the screen ({grounded.reason})."
        assert target.x0 is not None and target.y0 is not None
        assert target.x1 is not None and target.y1 is not None
        box = (target.x0, target.y0, target.x1, target.y1)
        return render_grounding(family, box, target.text or "element", request.image_sizes[0])

    return respond
