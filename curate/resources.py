"""Locate the design folders (schemas/, pipelines/, annotations/, data_cards/).

In a wheel they ship as ``curate/_resources/<name>``; in a source checkout or an editable
install they are the top-level folders of the repository. Both are tried, wheel first.
"""

from __future__ import annotations

from pathlib import Path

RESOURCE_FOLDERS = ("schemas", "pipelines", "annotations", "data_cards")


def resource_dir(name: str) -> Path:
    """Return the folder holding the named design resource."""
    if name not in RESOURCE_FOLDERS:
        raise ValueError(f"unknown resource folder {name!r}; expected one of {RESOURCE_FOLDERS}")
    from importlib import resources  # here, not at the top: `curate --help` needs no files

    packaged = Path(str(resources.files("curate"))) / "_resources" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"curate's {name}/ folder is missing from this installation")


def resource_path(name: str, filename: str) -> Path:
    """Return a file inside one of the design folders."""
    return resource_dir(name) / filename
