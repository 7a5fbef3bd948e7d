"""The import contract of docs/architecture.md: each package imports only the packages its
paragraph of the map names, so the tree keeps showing the pipeline.

An AST walk over curate/ (every import, also the ones inside functions and under
TYPE_CHECKING: a deferred import is still a dependency). Top-level modules are few and named
(TOP_LEVEL): the foundation every package may use (errors, progress, resources, extras,
secrets, without_pandas: they import no package), the CLI, which nothing imports, and one
old import path.
"""

# layout: compatibility shim (tests the old import paths on purpose: rewrite_imports.py skips it)
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "curate"

# Package -> the packages it may import besides SHARED (and every top-level module but the CLI).
ALLOWED: dict[str, set[str]] = {
    "actions": set(),
    "adapters": {"sources"},  # the old import path, a shim
    "store": set(),
    "engines": set(),
    "models": set(),
    "executors": {"models"},
    "rewards": {"store", "executors", "models"},
    "sources": {"store"},
    "review": {"store"},
    "views": {"store", "review"},
    "pipeline": {"store", "sources", "rewards", "review", "engines", "export", "models",
                 "executors"},
    "export": {"store", "rewards", "review", "engines"},
}
# Module-level exceptions to the package rules, each with its reason.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("curate.actions", "curate.store.schema"):
        "Action is checked against its declaration, schemas/action.yaml (schema_differences)",
    ("curate.store.query", "curate.review.table"):
        "the reviews table is store-level, but its file name is review's",
    ("curate.export.source", "curate.pipeline.label"):
        "export walks steps in label's order (sorted_step_rows)",
    ("curate.sources.adapters.agentnet_bench", "curate.rewards.entrypoints"):
        "benchmark alternatives are stored in the reward's action JSON",
    ("curate.executors.a11y", "curate.pipeline.instructions"):
        "a11y grounds an instruction with the role and position words derived ones are made of",
    ("curate.review.push", "curate.pipeline.segment"):
        "a step task shows the step instruction and state segment would export, to correct",
    ("curate.export.rows", "curate.pipeline.instructions"):
        "a stage2 row's step instruction is the one execute proposes, with the same source",
    ("curate.export.batches", "curate.pipeline.instructions"):
        "each export task reads the model's and reviewers' step instructions of its batches",
}
# Packages every package may import: the action schema is the shared vocabulary.
SHARED = {"actions"}
# Top-level modules everything may import, and which import no package themselves.
FOUNDATION = {"errors", "progress", "resources", "extras", "secrets", "without_pandas"}
# Every top-level module: the foundation, the CLI, and old import paths kept for users.
TOP_LEVEL = FOUNDATION | {"__init__", "cli", "execute"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            if node.module == "curate":  # from curate import x: x may be a module
                yield from (f"curate.{alias.name}" for alias in node.names)


def component(module: str) -> str:
    """The package (curate.store.query -> store) or top-level module (curate.cli -> cli)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_package(name: str) -> bool:
    return (PACKAGE / name / "__init__.py").is_file()


def violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = module_name(path)
        source = component(importer)
        for imported in imports(path):
            if not imported.startswith("curate."):
                continue
            target = component(imported)
            if target == source or target == "__init__":
                continue
            if target == "cli":
                found.append(f"{importer} imports {imported}: nothing imports the CLI")
                continue
            if not is_package(target):
                continue  # a top-level module: foundation or shared infrastructure
            if any(importer == a and (imported == b or imported.startswith(b + "."))
                   for a, b in EXCEPTIONS):
                continue
            if source in FOUNDATION:
                found.append(f"{importer} imports {imported}: the foundation imports no "
                             "package")
            elif (is_package(source) and target not in SHARED
                  and target not in ALLOWED.get(source, set())):
                allowed = ", ".join(sorted(ALLOWED.get(source, set()))) or "no package"
                found.append(f"{importer} imports {imported}: {source} may import {allowed} "
                             "(docs/architecture.md)")
    return found


def test_every_package_imports_only_what_the_map_allows() -> None:
    assert violations() == []


def test_the_map_names_every_package_and_every_package_exists() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} - {"_resources"}
    assert packages == set(ALLOWED)
    architecture = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name in packages:
        assert f"`curate/{name}/`" in architecture, f"docs/architecture.md lacks {name}"


def test_every_top_level_module_is_named_and_everything_else_is_in_a_package() -> None:
    assert {path.stem for path in PACKAGE.glob("*.py")} == TOP_LEVEL


def test_old_import_paths_users_wrote_keep_working() -> None:
    import curate.adapters
    import curate.adapters.base
    import curate.execute
    import curate.pipeline.execute
    import curate.rewards
    import curate.sources.adapters
    import curate.sources.adapters.base

    assert curate.adapters.base is curate.sources.adapters.base
    assert curate.adapters.all_adapters() == curate.sources.adapters.all_adapters()
    assert curate.adapters.Adapter is curate.sources.adapters.base.Adapter
    assert callable(curate.rewards.compute_score)
    assert curate.execute.execute is curate.pipeline.execute.execute  # docs/executors.md
