"""The adapter registry: one module per source format, each registering itself.

``detect(path)`` asks the adapters in priority order whether the path is one of their units;
``get(name)`` returns one by name for ``--format``. Every module of this package is imported
on first use, so adding a format is adding a module: nothing else changes.

Installed packages add formats through the entry-point group ``curate.adapters``: each entry
point names an :class:`Adapter` subclass (``pkg.module:MyAdapter``), which is registered
like a built-in one, or a module whose import registers its adapters with ``@register``.
``origin(name)`` says where a format came from. See docs/writing-an-adapter.md.
``curate.sources.catalogue`` indexes the built-in formats, so listing them imports none.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TypeVar

from curate.errors import CurateError
from curate.sources.adapters.base import Adapter
from curate.sources.catalogue import BUILTIN, ENTRY_POINT_GROUP

_REGISTRY: dict[str, Adapter] = {}
_ORIGINS: dict[str, str] = {}
_NOT_ADAPTERS = frozenset({"base"})
_loaded = False
# Set while a plugin's entry point is loaded, so adapters it registers are credited to it.
_loading_origin: str | None = None
log = logging.getLogger(__name__)

A = TypeVar("A", bound=type[Adapter])


def register(cls: A) -> A:
    """Class decorator: make an adapter available to detection and ``--format``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"adapter name {cls.name!r} registered twice "
                         f"(already by {_ORIGINS.get(cls.name, BUILTIN)})")
    _REGISTRY[cls.name] = cls()
    _ORIGINS[cls.name] = _loading_origin or BUILTIN
    return cls


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    for module in pkgutil.iter_modules(__path__):
        if module.name not in _NOT_ADAPTERS and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    _loaded = True
    _load_plugins()


def _describe(entry: EntryPoint) -> str:
    dist = entry.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "unknown package"
    return f"plugin {package} ({entry.name} = {entry.value})"


def _load_plugins() -> None:
    """Register the adapters installed packages declare; a broken plugin is logged, skipped."""
    global _loading_origin
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = _describe(entry)
        _loading_origin = origin
        try:
            loaded = entry.load()
            if isinstance(loaded, type) and issubclass(loaded, Adapter) and (
                    getattr(loaded, "name", None) not in _REGISTRY):
                register(loaded)
            elif not (isinstance(loaded, type) or hasattr(loaded, "__path__")
                      or hasattr(loaded, "__file__")):
                raise TypeError(f"{entry.value} is neither an Adapter subclass nor a module")
        except Exception as error:  # a third-party import may fail in any way
            log.warning("adapter %s not loaded: %s: %s", origin,
                        type(error).__name__, error)
        finally:
            _loading_origin = None


def all_adapters() -> list[Adapter]:
    """Every registered adapter, in detection order."""
    _load_builtins()
    return sorted(_REGISTRY.values(), key=lambda adapter: (adapter.priority, adapter.name))


def origin(name: str) -> str:
    """Where the format ``name`` comes from: ``built-in`` or ``plugin <package> (<entry>)``."""
    get(name)
    return _ORIGINS.get(name, BUILTIN)


def get(name: str) -> Adapter:
    """The adapter called ``name``; the error lists the valid names."""
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise CurateError(f"unknown format {name!r}; --format takes one of: {known}") from None


def detect(path: Path) -> Adapter | None:
    """The first adapter that claims ``path``, or None."""
    for adapter in all_adapters():
        if adapter.claims(path):
            return adapter
    return None


__all__ = ["ENTRY_POINT_GROUP", "Adapter", "all_adapters", "detect", "get", "origin",
           "register"]
