"""How an export was made (command, recipe, input fingerprint, versions), for the data card
and the Croissant metadata alike; its own module so neither of those imports the other."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from curate import __version__
from curate.store.core import Store
from curate.store.schema import SCHEMA_VERSION


@dataclass(frozen=True)
class BuildInfo:
    """How the dataset was made, for the card: no clock, so the card is reproducible."""

    command: str
    recipe_name: str
    recipe_text: str
    input_fingerprint: str
    sources: int
    toolkit_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_store(cls, store: Store, *, command: str = "curate export",
                   recipe_name: str = "none (command-line options)",
                   recipe_text: str = "") -> BuildInfo:
        sources = store.read("sources", columns=["source_path", "input_fingerprint"])
        digest = hashlib.sha256()
        pairs = sorted(zip(sources.column("source_path").to_pylist(),
                           sources.column("input_fingerprint").to_pylist(), strict=True))
        for path, fingerprint in pairs:
            digest.update(f"{path}\0{fingerprint}\n".encode())
        return cls(command, recipe_name, recipe_text.strip(), digest.hexdigest()[:16],
                   len(pairs))
