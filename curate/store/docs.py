"""Render docs/schema.md from schemas/ (``python -m curate.store.docs`` rewrites it)."""

from __future__ import annotations

from pathlib import Path

from curate.store.schema import DOCUMENTED_TABLES, column_docs, table_doc


def render_schema_docs() -> str:
    lines = [
        "# Store schema",
        "",
        "Generated from `schemas/*.yaml` by `python -m curate.store.docs`; do not edit by hand.",
        "`curate schema [TABLE]` prints the same.",
        "",
    ]
    for table in [*DOCUMENTED_TABLES, "action"]:
        lines.append(f"## `{table}`")
        lines.append("")
        if table != "action":
            lines += [table_doc(table), ""]
        else:
            lines += ["The struct in `steps.action`; one schema for every source.", ""]
        lines += ["| column | type | meaning |", "|---|---|---|"]
        for column in column_docs(table):
            null = "" if column.nullable else ", not null"
            doc = column.doc.replace("|", "\\|")
            lines.append(f"| `{column.name}` | {column.type}{null} | {doc} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
    target.write_text(render_schema_docs(), encoding="utf-8")
    print(f"wrote {target}")
