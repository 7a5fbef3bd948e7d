"""Old import path of the adapter registry: it lives in curate.sources.adapters.

Kept so code written against ``curate.adapters`` keeps working (new code imports
``curate.sources.adapters``); every name is the registry's own object, so registering
through either path fills the one registry. The entry-point group installed plugins use is
still called ``curate.adapters``.
"""
# layout: compatibility shim

from typing import Any

from curate.sources import adapters as _adapters
from curate.sources.adapters import *  # noqa: F403 - the public names, for static checkers

_names: dict[str, Any] = {name: value for name, value in vars(_adapters).items()
                          if not name.startswith("__")}
globals().update(_names)
