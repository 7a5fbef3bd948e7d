"""Everything an export can be asked to do, as one typed, documented parameter set."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from curate.errors import CurateError
from curate.export.splits import SPLIT_KEYS, parse_fractions
from curate.export.tool_context import CONTEXT_CHARS, RESULT_CHARS

CONFIGS = ("stage1", "stage2")
FLAVOURS = ("plain", "trl", "verl", "easyr1")
# Flavours with a config-specific format: easyr1 is TraceR1's Stage-1 step format.
FLAVOUR_CONFIGS = {"easyr1": ("stage1",)}
DEFAULT_FLAVOURS = ("plain", "trl", "verl")
STAGE2_STEPS = ("all", "on_path", "useful", "executable")
DEFAULT_SHARD_BYTES = 256 << 20
DEFAULT_LICENSE_NAME = "per-source-licenses"
# The Hub's forms: a license name is lower-case letters, digits, '-' and '.'; a language is an
# ISO 639-1/2/3 code, optionally with a BCP-47 region or script ("en", "zh-Hans", "pt-BR").
LICENSE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


@dataclass(frozen=True)
class ExportParams:
    """Options of ``curate export``; a recipe's ``export:`` section sets the same names."""

    configs: tuple[str, ...] = CONFIGS
    flavours: tuple[str, ...] = DEFAULT_FLAVOURS
    splits: dict[str, float] = field(default_factory=lambda: {"train": 0.9, "test": 0.1})
    split_by: str = "episode"
    seed: int = 0
    history: int = 4
    history_images: int = 0
    future_images: bool = False
    # Tool episodes: characters of tool results one prompt's history shows, and one result.
    context_chars: int = CONTEXT_CHARS
    result_chars: int = RESULT_CHARS
    stage2_steps: str = "all"
    preset: str = "default"
    redact: bool = True
    max_shard_bytes: int = DEFAULT_SHARD_BYTES
    license: str = "other"
    # With license "other" the Hub wants a name and a link too; the default link is the
    # LICENSE.md every export writes, which lists each source's own terms.
    license_name: str = DEFAULT_LICENSE_NAME
    license_link: str = "LICENSE.md"
    languages: tuple[str, ...] = ("en",)
    pretty_name: str = "curate trajectories"

    def check(self) -> None:
        unknown = [c for c in self.configs if c not in CONFIGS]
        if unknown:
            raise CurateError(f"unknown config {unknown}; configs are {', '.join(CONFIGS)}")
        unknown = [f for f in self.flavours if f not in FLAVOURS]
        if unknown or not self.flavours:
            raise CurateError(f"unknown flavour {unknown}; flavours are {', '.join(FLAVOURS)}")
        if self.split_by not in SPLIT_KEYS:
            raise CurateError(f"--split-by takes one of {', '.join(SPLIT_KEYS)}")
        if self.stage2_steps not in STAGE2_STEPS:
            raise CurateError(f"--stage2-steps takes one of {', '.join(STAGE2_STEPS)}")
        if self.history < 0:
            raise CurateError("--history must be 0 or more")
        if self.history_images < 0:
            raise CurateError("--history-images must be 0 or more")
        if self.context_chars < 0 or self.result_chars < 0:
            raise CurateError("--context-chars and --result-chars must be 0 or more")
        parse_fractions(self.splits)
        if self.license == "other" and not LICENSE_NAME_PATTERN.match(self.license_name):
            raise CurateError(f"--license-name {self.license_name!r}: use lower-case letters, "
                              "digits, '-' and '.' (the Hub's form), e.g. my-license-1.0")
        if self.license == "other" and not self.license_link:
            raise CurateError("--license other needs --license-link (a URL or a file in the "
                              "dataset, default LICENSE.md)")
        bad = [code for code in self.languages if not LANGUAGE_PATTERN.match(code)]
        if bad or not self.languages:
            raise CurateError(f"--language takes ISO 639 codes such as en, de, zh-Hans; got "
                              f"{', '.join(bad) or 'none'}")
        from curate.rewards.presets import PRESETS

        if self.preset not in PRESETS:
            raise CurateError(f"unknown preset {self.preset!r}; presets: {', '.join(PRESETS)}")

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["configs"] = list(self.configs)
        values["flavours"] = list(self.flavours)
        values["languages"] = list(self.languages)
        return values
