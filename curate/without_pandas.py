"""Run a command's Arrow work without pyarrow importing pandas.

pyarrow imports pandas the first time it converts a Python or numpy value (``pa.array``,
``pa.scalar``, ``Array.to_numpy``, a compute call given a Python scalar), only to recognise
pandas objects among them. On this project's machine that import is ~0.2 s of CPU, more
than the rest of ``curate segment``'s start-up and about as much as the whole DuckDB scan
it is compared with (benchmarks/README.md). A command that hands pyarrow no pandas object
can refuse it the import: inside :func:`pandas_refused`, importing pandas raises
ImportError, which pyarrow takes as "pandas is not installed" and carries on.

pyarrow remembers that answer for the rest of the process, so this is for a whole CLI
command (the process ends with it), never for the library: a caller's later
``pa.array(series)`` would no longer recognise the Series (a categorical Series would
become plain integers). So the refusal is armed only by the console-script entry point
(:func:`curate.cli.main` calls :func:`refuse_in_this_process`); a command invoked in a
longer-lived process (click's CliRunner, ``cli(...)`` from Python, ``curate build``'s
library calls) runs with pandas allowed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

_ARMED = False


def refuse_in_this_process() -> None:
    """Let :func:`pandas_refused` refuse: only for a process that ends with the command."""
    global _ARMED
    _ARMED = True


class _RefusePandas:
    """A meta path finder (importlib.abc is not imported for it: 10 ms of start-up)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname == "pandas" or fullname.startswith("pandas."):
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (curate refuses pandas in this command: "
                "see curate.without_pandas)", name=fullname)
        return None


@contextmanager
def pandas_refused() -> Iterator[None]:
    """Importing pandas fails inside the block (nothing changes when it is imported
    already, or when :func:`refuse_in_this_process` was not called)."""
    if not _ARMED or "pandas" in sys.modules:
        yield
        return
    finder = _RefusePandas()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


__all__ = ["pandas_refused", "refuse_in_this_process"]
