"""Optional extras: the heavy libraries only some commands need, imported where they are used.

The Label Studio SDK (``review``), matplotlib (``plots``), PyAV (``video``) and polars
(``polars``) are not part of the default install. :func:`require` imports one of them on first
use; when it is missing the caller gets one line naming the extra to install and the command
that needed it (a :class:`MissingExtra`, shown by the CLI like every other ``CurateError``),
never a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from curate.errors import CurateError

# Top-level import name -> the extra of pyproject.toml that installs it.
EXTRAS = {"label_studio_sdk": "review", "matplotlib": "plots", "av": "video",
          "polars": "polars"}


class MissingExtra(CurateError):
    """An optional dependency is not installed; the message says how to install it."""


def missing_message(module: str, needed_for: str) -> str:
    extra = EXTRAS[module.partition(".")[0]]
    return (f"{needed_for} needs the optional '{extra}' dependencies, which are not installed: "
            f"pip install 'curate[{extra}]'")


def require(module: str, *, needed_for: str) -> ModuleType:
    """Import ``module`` (of an extra), or raise MissingExtra naming the extra and ``needed_for``.

    Only the absence of the extra's own package is turned into the one-line message; an
    ImportError raised from inside an installed package is a real bug and propagates.
    """
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if error.name is not None and error.name.partition(".")[0] != top:
            raise
        raise MissingExtra(missing_message(module, needed_for)) from None


def available(module: str) -> bool:
    """Whether an extra's package can be imported (without importing it twice)."""
    try:
        importlib.import_module(module)
    except ImportError as error:
        if error.name is not None and error.name.partition(".")[0] != module.partition(".")[0]:
            raise
        return False
    return True
