"""The labeling configs in ``annotations/`` and how a project's config is recognised.

A project's config is compared by its *control signature* (each control's name, tag, target
and choice values), not its text: a reviewer may retitle a header without breaking the
round trip, but renaming or removing a control that pull reads is detected.
"""

from __future__ import annotations

import functools
from typing import Any
from xml.etree import ElementTree

from curate.resources import resource_path
from curate.review.client import Connection, ReviewError, find_project

UNITS = ("step", "segment", "episode")
CONFIG_FILES = {unit: f"{unit}_review.xml" for unit in UNITS}
# Tags that produce results (controls); object tags (Image, Text, Header) are not compared.
CONTROL_TAGS = frozenset({"Choices", "KeyPointLabels", "RectangleLabels", "TextArea", "Number",
                          "Rating", "Labels", "PolygonLabels", "BrushLabels", "Taxonomy"})
Signature = tuple[tuple[str, str, str, tuple[str, ...]], ...]
# Controls added to a unit's config since its first release: a project created before has
# the config without them, is still recognised, and push adds them (adding controls leaves
# every annotation valid).
ADDED_CONTROLS = {"step": frozenset({"step_instruction", "state"})}


def check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ReviewError(f"unknown review unit {unit!r}; use one of {', '.join(UNITS)}")


@functools.cache
def label_config(unit: str) -> str:
    """The XML labeling config shipped for a review unit."""
    check_unit(unit)
    return resource_path("annotations", CONFIG_FILES[unit]).read_text(encoding="utf-8")


def signature(config: str) -> Signature:
    """The controls of a config: (name, tag, toName, child values), sorted by name."""
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError as error:
        raise ReviewError(f"the project's labeling config is not valid XML: {error}") from None
    controls = []
    for element in root.iter():
        if element.tag in CONTROL_TAGS and "name" in element.attrib:
            values = tuple(child.attrib.get("value", "") for child in element)
            controls.append((element.attrib["name"], element.tag,
                             element.attrib.get("toName", ""), values))
    return tuple(sorted(controls))


def earlier_signature(unit: str) -> Signature:
    """The unit's controls before ADDED_CONTROLS (the same as now for a unit without any)."""
    added = ADDED_CONTROLS.get(unit, frozenset())
    return tuple(c for c in signature(label_config(unit)) if c[0] not in added)


def is_earlier_config(config: str, unit: str) -> bool:
    """True for a project config of ``unit`` from before its ADDED_CONTROLS."""
    return unit in ADDED_CONTROLS and signature(config) == earlier_signature(unit)


def unit_of_config(config: str, project: str) -> str:
    """Which curate unit a project's config is; a clear error when it matches none."""
    found = signature(config)
    for unit in UNITS:
        if found in (signature(label_config(unit)), earlier_signature(unit)):
            return unit
    raise ReviewError(
        f"the labeling config of Label Studio project {project!r} is not one of curate's "
        f"({', '.join(CONFIG_FILES.values())} in annotations/): its controls were changed "
        f"by hand ({_describe(found)}). Restore the config from annotations/, or push to a "
        "new --project"
    )


def existing_project(connection: Connection, project: str, *,
                     missing_hint: str = "") -> tuple[Any, str]:
    """The Label Studio project titled ``project`` and its curate unit; a ReviewError (with
    ``missing_hint`` appended) when there is none."""
    found = find_project(connection, project)
    if found is None:
        raise ReviewError(f"no Label Studio project titled {project!r} on {connection.url}"
                          + missing_hint)
    return found, unit_of_config(str(found.label_config), project)


def _describe(found: Signature) -> str:
    names = ", ".join(f"{tag} {name!r}" for name, tag, _, _ in found) or "no controls"
    return f"it has {names}"
