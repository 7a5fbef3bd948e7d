"""Models over the OpenAI-compatible chat-completions protocol: one client, one answer cache.

Models are never bundled: curate talks to a server (vLLM, SGLang, TGI, a hosted API) and keeps
every answer in the store, keyed by content (``curate.models.cache``).
"""

from curate.models.cache import CachedAnswer, ModelCache
from curate.models.client import (
    DEFAULT_API_KEY_ENV,
    ChatClient,
    ChatRequest,
    ChatResult,
    ClientStats,
    Image,
    Message,
    ModelError,
    endpoint_url,
    image,
    user_request,
)

__all__ = ["DEFAULT_API_KEY_ENV", "CachedAnswer", "ChatClient", "ChatRequest", "ChatResult",
           "ClientStats", "Image", "Message", "ModelCache", "ModelError", "endpoint_url",
           "image", "user_request"]
