"""Old import path of the adapter base classes: curate.sources.adapters.base.

The same module object is returned (not a copy), so classes, isinstance checks and
monkeypatching behave exactly as with the new path.
"""
# layout: compatibility shim

import sys

from curate.sources.adapters import base as _base
from curate.sources.adapters.base import *  # noqa: F403 - names for static checkers

sys.modules[__name__] = _base
