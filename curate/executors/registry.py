"""Executors by name: ``get_executor("a11y")``, ``get_executor("grounding", url=..., model=...)``.

A module that defines an executor registers a factory for it with ``register(name, factory)``.
The built-in executors' modules are imported only when one of them is asked for (so importing
curate does not import a model client or a sandbox), which is why they are listed here by
module path rather than imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from curate.errors import CurateError
from curate.executors.base import Executor

ExecutorFactory = Callable[..., Executor]

# name -> module that registers it when imported.
_BUILTIN_MODULES = {
    "a11y": "curate.executors.a11y",
    "grounding": "curate.executors.grounding",
    "python": "curate.executors.python",
    "replay": "curate.executors.replay",
}
_FACTORIES: dict[str, ExecutorFactory] = {}


class UnknownExecutorError(CurateError, KeyError):
    """An executor name nothing registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def register(name: str, factory: ExecutorFactory) -> None:
    """Make ``factory(**options)`` the executor called ``name``; registering again replaces it."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"executor name {name!r} must be a non-empty word (letters, digits, _ -)")
    _FACTORIES[name] = factory


def available() -> tuple[str, ...]:
    """Every executor name that ``get_executor`` accepts, sorted."""
    for name in _BUILTIN_MODULES:
        _load_builtin(name)
    return tuple(sorted(_FACTORIES))


def get_executor(name: str, **options: Any) -> Executor:
    """A new executor ``name`` built with ``options`` (e.g. ``url``, ``model``, ``family``)."""
    if name not in _FACTORIES:
        _load_builtin(name)
    factory = _FACTORIES.get(name)
    if factory is None:
        known = ", ".join(available()) or "none"
        raise UnknownExecutorError(f"unknown executor {name!r}; executors are: {known}")
    return factory(**options)


def _load_builtin(name: str) -> None:
    module = _BUILTIN_MODULES.get(name)
    if module is None or name in _FACTORIES:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        # A built-in whose module is not there is simply not available; a module that is
        # there but fails to import (a missing dependency, a bug) must surface.
        if error.name != module:
            raise
