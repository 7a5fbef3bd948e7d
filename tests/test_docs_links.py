"""Every relative link in the README and docs/ points at a file or folder that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md"),
                *(REPO / "benchmarks").glob("*.md")])
# [text](target) and [text]: target, outside code spans; images too.
INLINE = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]\n]+\]:\s*(\S+)", re.M)
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, hf:, ...


def links(page: Path) -> list[str]:
    text = CODE.sub("", page.read_text(encoding="utf-8"))
    return [*INLINE.findall(text), *REFERENCE.findall(text)]


def broken(page: Path) -> list[str]:
    missing = []
    for target in links(page):
        if EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path and not (page.parent / path).exists():
            missing.append(target)
    return missing


# A repository path named in a code span (`docs/recipes.md`, `curate/cli.py`): a reference a
# reader follows by hand, so it must exist too.
REPO_PATH = re.compile(r"`((?:docs|curate|tests|benchmarks|pipelines|schemas|"
                       r"data_cards)/[\w./-]*)`")
# Placeholders (<x>, NAME, *) and what runs create (benchmarks/_work/) are not checked.
PLACEHOLDER = re.compile(r"[<>*{}]|[A-Z]{3,}|\.\.\.|(^|/)_work(/|$)")


def named_paths(page: Path) -> list[str]:
    text = page.read_text(encoding="utf-8")
    return [path for path in REPO_PATH.findall(text) if not PLACEHOLDER.search(path)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_path_named_in_the_docs_exists(page: Path) -> None:
    assert [path for path in named_paths(page) if not (REPO / path).exists()] == []


def test_the_walk_finds_links() -> None:
    # The walk itself works: the README links to the docs.
    assert any(target.startswith("docs/") for target in links(REPO / "README.md"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken(page) == []


def test_a_missing_target_is_reported(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("x", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#part) [gone](recipes.md) [web](https://example.org) "
                    "`[not a link](in-code.md)`\n[ref]: gone-too.md\n", encoding="utf-8")
    assert broken(page) == ["recipes.md", "gone-too.md"]
