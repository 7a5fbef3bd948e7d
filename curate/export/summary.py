"""What an export wrote, as the CLI and build report it (light: no export machinery)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ExportSummary:
    out: Path
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # config -> split -> rows
    files: int = 0
    bytes: int = 0
    redactions: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)  # config names written, card order
    warnings: list[str] = field(default_factory=list)
