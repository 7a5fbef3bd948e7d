"""The canonical store and its contracts: ``core`` (batches, manifest, reads, atomic
writes), ``schema``, ``layout``, ``frames``, ``derived``, ``query``, ``info``, ``docs``.

The names of the old ``curate.store`` module (``Store``, ``open_store``, ...) stay importable
from here; they are loaded from :mod:`curate.store.core` on first use, so importing a light
submodule (``curate.store.schema`` for ``curate --help``) does not load pyarrow.
"""
# layout: compatibility shim

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.store.core import *  # noqa: F403


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module("curate.store.core"), name)
