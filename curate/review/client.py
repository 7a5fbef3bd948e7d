"""Connecting to a Label Studio server, with errors that say what to do.

The SDK's own errors (``httpx.ConnectError``, ``ApiError`` with a status code) are turned into
:class:`ReviewError` once, here, so push, pull and status never show a traceback for a
server that is down or a token that is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from curate.errors import CurateError
from curate.extras import require
from curate.secrets import register_secret, scrub

if TYPE_CHECKING:  # the SDK is the optional `review` extra, loaded by connect()
    from label_studio_sdk import LabelStudio

URL_ENV = "LABEL_STUDIO_URL"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
PAGE_SIZE = 100
# Importing tasks with data-URI screenshots can take a while on a busy server.
TIMEOUT_SECONDS = 120.0

T = TypeVar("T")


class ReviewError(CurateError):
    """Label Studio could not be reached or used: names the server or project and the fix."""


@dataclass
class Connection:
    """A checked connection: the SDK client and the server it talks to."""

    client: LabelStudio
    url: str
    user_id: int

    def call(self, what: str, function: Callable[[], T]) -> T:
        """Run one SDK call; a transport or HTTP failure becomes a ReviewError naming ``what``."""
        return call_server(self.url, what, function)


def call_server(url: str, what: str, function: Callable[[], T]) -> T:
    # Only reached through connect(), so the SDK (and httpx, its transport) is installed.
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    url = scrub(url)  # credentials in the URL (http://user:password@host) are not echoed
    try:
        return function()
    except httpx.TransportError as error:
        raise ReviewError(
            f"cannot reach Label Studio at {url} ({error.__class__.__name__}: "
            f"{scrub(str(error))}) while trying to {what}; start the server or pass the right "
            f"--url / ${URL_ENV}"
        ) from None
    except ApiError as error:
        if error.status_code in (401, 403):
            raise ReviewError(
                f"Label Studio at {url} refused the API key ({error.status_code}) while trying "
                f"to {what}; pass a valid --api-key / ${API_KEY_ENV} (Account & Settings > "
                "Access Token; legacy tokens need LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true "
                "on the server)"
            ) from None
        raise ReviewError(
            f"Label Studio at {url} answered {error.status_code} while trying to {what}: "
            f"{_short(error.body)}"
        ) from None


def _short(body: Any, limit: int = 400) -> str:
    # Servers echo what they were sent (a debug page, a proxy's 500): scrub before cutting,
    # so a key is never half-printed either.
    text = scrub(str(body))
    return text if len(text) <= limit else text[:limit] + "…"


def resolve_settings(url: str | None, api_key: str | None) -> tuple[str, str]:
    """The server URL and key from the arguments, else the environment; error when missing."""
    url = url or os.environ.get(URL_ENV)
    api_key = api_key or os.environ.get(API_KEY_ENV)
    if not url:
        raise ReviewError(f"no Label Studio URL: pass --url or set ${URL_ENV} "
                          "(e.g. http://127.0.0.1:8080)")
    if not api_key:
        raise ReviewError(f"no Label Studio API key: pass --api-key or set ${API_KEY_ENV}")
    return url.rstrip("/"), api_key


def connect(url: str | None = None, api_key: str | None = None) -> Connection:
    """Connect and check the key by asking who we are (fails fast, before any work)."""
    url, api_key = resolve_settings(url, api_key)
    register_secret(api_key)
    sdk = require("label_studio_sdk", needed_for="curate review (push, pull, status)")
    client = sdk.LabelStudio(base_url=url, api_key=api_key,
                         timeout=TIMEOUT_SECONDS)
    me = call_server(url, "check the API key", client.users.whoami)
    return Connection(client=client, url=url, user_id=int(me.id or 0))


def find_project(connection: Connection, title: str) -> Any | None:
    """The project with exactly this title, or None; two with the same title is an error."""
    pager: Any = connection.call("list projects",
                            lambda: connection.client.projects.list(title=title,
                                                                     page_size=PAGE_SIZE))
    matches = [p for p in connection.call("list projects", lambda: list(pager))
               if p.title == title]
    if len(matches) > 1:
        ids = ", ".join(str(p.id) for p in matches)
        raise ReviewError(f"{len(matches)} Label Studio projects are titled {title!r} "
                          f"(ids {ids}) on {connection.url}; rename all but one")
    if not matches:
        return None
    project_id = int(matches[0].id)
    return connection.call(f"read project {title!r}",
                           lambda: connection.client.projects.get(id=project_id))


def iter_tasks(connection: Connection, project_id: int) -> Iterator[dict[str, Any]]:
    """Every task of a project with its annotations, as plain dicts."""
    pager: Any = connection.call(
        "list tasks",
        lambda: connection.client.tasks.list(project=project_id, fields="all",
                                             page_size=PAGE_SIZE))
    for task in connection.call("list tasks", lambda: list(pager)):
        yield task.model_dump(mode="json")


def user_names(connection: Connection) -> dict[int, str]:
    """User id -> email (or username), for the reviewer column."""
    users = connection.call("list users", connection.client.users.list)
    names: dict[int, str] = {}
    for user in users:
        if user.id is not None:
            names[int(user.id)] = str(user.email or user.username or user.id)
    return names
