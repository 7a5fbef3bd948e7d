"""The old import path of :mod:`curate.pipeline.execute` (docs/executors.md named
``curate.execute.execute`` as the library call before the module moved into the pipeline).
"""

# layout: compatibility shim
from __future__ import annotations

from curate.pipeline.execute import execute, read_executions

__all__ = ["execute", "read_executions"]
