"""The static index of built-in formats (curate.sources.catalogue) agrees with the registry,
so `curate formats` can list them without importing an adapter and still say the truth."""

from __future__ import annotations

import json
import textwrap

import pytest

from curate.sources import catalogue
from curate.sources.adapters import all_adapters, origin
from curate.sources.catalogue import BUILTIN, BUILTIN_FORMATS, Format


def registered() -> list[Format]:
    """The built-in adapters as catalogue entries, read from their classes."""
    return [Format(a.name, a.platform, a.priority, type(a).__module__.rsplit(".", 1)[1],
                   a.description)
            for a in all_adapters() if origin(a.name) == BUILTIN]


def entry_source(entry: Format) -> str:
    """The entry as it is written in curate/sources/catalogue.py (to paste when one drifts)."""
    head = (f"    Format({json.dumps(entry.name)}, {json.dumps(entry.platform)}, "
            f"{entry.priority}, {json.dumps(entry.module)},")
    lines = textwrap.wrap(entry.description, 84, drop_whitespace=False)
    body = "\n".join(f"           {json.dumps(line)}" for line in lines)
    return f"{head}\n{body}),"


def test_the_catalogue_lists_every_built_in_adapter_as_its_class_declares_it() -> None:
    expected = sorted(registered(), key=lambda entry: entry.name)
    actual = sorted(BUILTIN_FORMATS, key=lambda entry: entry.name)
    assert actual == expected, (
        "curate/sources/catalogue.py is out of date; its entries should be:\n"
        + "\n".join(entry_source(entry) for entry in registered()))


def test_listing_without_plugins_is_the_catalogue_in_detection_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "plugins_installed", lambda: False)
    listed = catalogue.listing()
    assert [entry.name for entry in listed] == [a.name for a in all_adapters()]
    assert {entry.origin for entry in listed} == {BUILTIN}
    by_name = {a.name: a for a in all_adapters()}
    assert all(entry.description == by_name[entry.name].description for entry in listed)


def test_listing_with_plugins_installed_asks_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalogue, "plugins_installed", lambda: True)
    names = [entry.name for entry in catalogue.listing()]
    assert names == [a.name for a in all_adapters()]
