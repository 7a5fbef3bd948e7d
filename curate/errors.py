"""The exception tree. The CLI catches ``CurateError`` once and prints its message.

    CurateError
    ├── ActionParseError      text that is not a valid action
    ├── SourceError           an input that cannot be read (carries file and position)
    ├── StoreError            a store folder that is missing, foreign or from a newer schema
    │   └── StoreLocked       another process holds the store's write lock past the timeout
    ├── OutputError           an output curate will not write (not its own, a file, full disk)
    └── QueryError            SQL that DuckDB refused
"""

from __future__ import annotations


class CurateError(Exception):
    """Root of every error curate raises on purpose."""


class ActionParseError(CurateError, ValueError):
    """Text that does not describe a valid action."""


class SourceError(CurateError):
    """An input that cannot be read; names the file, the position and what was expected."""

    def __init__(self, reason: str, *, file: str = "", position: str = "", hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.file = file
        self.position = position
        self.hint = hint


class StoreError(CurateError):
    """A store folder that is missing, not a curate store, or written by a newer curate."""


class StoreLocked(StoreError):
    """Another curate process kept the store's write lock for longer than the timeout."""


class OutputError(CurateError):
    """An output curate refuses to write (a folder it did not make, a file, the store
    itself, a place inside the sources) or cannot write (full disk, read-only)."""


class QueryError(CurateError):
    """SQL that DuckDB could not run over the store."""
