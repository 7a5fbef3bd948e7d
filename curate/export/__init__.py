"""``export``: a store in, a folder laid out like a Hugging Face dataset repo out.

    DIST/README.md                               data card (YAML configs + text)
    DIST/data/<config>/<split>-NNNNN-of-NNNNN.parquet
    DIST/plots/*.png                             statistics shown in the card
    DIST/croissant.json                          Croissant metadata
    DIST/redaction_report.json                   what was redacted, by kind

Everything is written into ``.DIST.partial`` first, validated with ``curate.export.validate``, and
only then swapped into place (curate.store.outputs); a folder that fails validation is left as
``.partial`` for inspection and the export raises; any other failure or an interruption
removes it. DIST itself is only ever replaced when curate made it (its marker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from curate.export.params import ExportParams
from curate.export.summary import ExportSummary

if TYPE_CHECKING:
    from curate.export.run import export

__all__ = ["ExportParams", "ExportSummary", "export"]


def __getattr__(name: str) -> Any:
    # `export` is loaded on first use: importing any curate.export submodule (the parameters
    # a recipe names, say) runs this file, and the export run pulls in the card, the row
    # builders and the rewards, which an unchanged build or `curate --help` never needs.
    if name == "export":
        from curate.export.run import export

        return export
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
