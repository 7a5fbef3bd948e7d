"""A test server speaking the OpenAI chat-completions protocol (see server.py)."""

from .server import (
    Box,
    ModelServer,
    Request,
    grounding_responder,
    processor_resize,
    render_grounding,
)

__all__ = ["Box", "ModelServer", "Request", "grounding_responder", "processor_resize",
           "render_grounding"]
