"""Redaction of secrets before anything leaves the machine.

Where it runs: at export, over every text of every row (:meth:`Redactor.row` walks the whole
row, so a column added later is covered without a change here), after the actions were
redacted field by field (typed text after a password field is replaced whole). The store
keeps what was recorded: it stays on the machine, and better rules can be applied by exporting
again, without ingesting again (docs/decisions.md).

What it finds is :mod:`curate.secrets` (detect-secrets plugins and curate's PII rules). Each
replacement is counted by kind, and each distinct secret is remembered by a hash only, for the
redaction report. With redaction turned off the texts are still scanned: what would have been
replaced is reported as unresolved, and ``curate publish`` refuses such a folder unless told.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from curate.secrets import PLACEHOLDERS, redact_text

# Row keys whose values are identifiers or vocabulary curate wrote itself, never user text.
_SKIP_KEYS = frozenset({"id", "episode_id", "split", "source_format", "platform", "preset",
                        "label_source", "end", "coord_space", "type", "role", "data_source",
                        "ability", "style", "frame_id", "next_frame_id",
                        "target_next_frame_ids", "target_state_sources",
                        "target_step_instruction_sources", "step_instruction_source"})

_NOT_TEXT = frozenset({bool, int, float, type(None)})
WALKED_STRUCTS = 4096  # more than the distinct actions of the windows of one episode


@dataclass
class Redactor:
    """Applies the rules and counts what it replaced (or, when disabled, would have)."""

    counts: Counter[str] = field(default_factory=Counter)  # replacements, every occurrence
    enabled: bool = True
    _seen: set[tuple[str, str]] = field(default_factory=set)  # (kind, digest of the secret)
    # Nested structs walked lately (the action columns a row shares with the other windows
    # that reach its step), by identity: (the struct, its redacted copy, what was found in it).
    _walked: OrderedDict[int, tuple[dict[str, Any], dict[str, Any], list[tuple[str, str]]]] = (
        field(default_factory=OrderedDict))
    _recording: list[list[tuple[str, str]]] = field(default_factory=list)

    def secrets(self) -> set[tuple[str, str]]:
        """The (kind, digest) of every distinct secret found, to merge into another redactor."""
        return set(self._seen)

    def merge(self, replacements: Counter[str], secrets: set[tuple[str, str]]) -> None:
        """Add what another redactor (an export task's) counted and found."""
        self.counts.update(replacements)
        self._seen.update(secrets)

    @property
    def distinct(self) -> Counter[str]:
        """How many different secrets of each kind were found (not stored, only hashed)."""
        return Counter(kind for kind, _ in self._seen)

    def text(self, value: str | None) -> str | None:
        if not value:
            return value
        redacted, findings = redact_text(value)
        for finding in findings:
            self._note(finding.kind, finding.value)
        return redacted if self.enabled else value

    def typed_password(self, value: str | None) -> str | None:
        """Text typed into a password field: replaced whole."""
        if not value or value == PLACEHOLDERS["password"]:
            return value
        self._note("password", value)
        return PLACEHOLDERS["password"] if self.enabled else value

    def row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with every string in it redacted, nested lists and structs included."""
        return {key: value if key in _SKIP_KEYS else self._value(value)
                for key, value in row.items()}

    def _value(self, value: Any) -> Any:
        if type(value) in _NOT_TEXT:  # most values of a row: nothing to look into
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._value(item) for item in value]
        if isinstance(value, dict):
            if "bytes" in value:  # an image: {"bytes", "path"} with a content-hash name
                return value
            return self._struct(value)
        return value

    def _struct(self, value: dict[str, Any]) -> dict[str, Any]:
        """A nested struct redacted; one walked lately is not walked again, but what was
        found in it is counted again, as a second walk would have counted it."""
        walked = self._walked.get(id(value))
        if walked is not None and walked[0] is value:
            self._walked.move_to_end(id(value))
            for kind, secret in walked[2]:
                self._note(kind, secret)
            return walked[1]
        found: list[tuple[str, str]] = []
        self._recording.append(found)
        try:
            redacted = self.row(value)
        finally:
            self._recording.pop()
        # Holding the struct keeps its id from being reused by another while remembered.
        self._walked[id(value)] = (value, redacted, found)
        if len(self._walked) > WALKED_STRUCTS:
            self._walked.popitem(last=False)
        return redacted

    def _note(self, kind: str, secret: str) -> None:
        self.counts[kind] += 1
        self._seen.add((kind, hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()))
        for found in self._recording:
            found.append((kind, secret))


def redaction_report(redactor: Redactor) -> dict[str, Any]:
    """What redaction_report.json holds. ``unresolved`` counts the distinct secrets left in
    the exported text (all of them when redaction was off); publish refuses when it is not
    zero."""
    distinct = dict(sorted(redactor.distinct.items()))
    return {
        "enabled": redactor.enabled,
        "scanner": "curate.secrets (detect-secrets plugins + curate PII rules)",
        "distinct_secrets": distinct,
        "replacements": dict(sorted(redactor.counts.items())),
        "unresolved": {} if redactor.enabled else distinct,
    }
