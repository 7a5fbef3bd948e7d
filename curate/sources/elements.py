"""The elements of a recorded screen (``steps.elements``), built the same way for every source.

Adapters hand over what the source recorded (an accessibility-tree node, a DOM element, an
Android view) as text, role, a box in the source's pixels and the source's id; this module
turns it into the element dict declared in ``schemas/element.yaml``, boxes in [0,1] of the
frame. Elements with neither text nor role, or with no visible box on the screen, are left out:
nothing can be grounded on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from curate.actions import normalise

Box = tuple[float, float, float, float]  # left, top, right, bottom in source pixels


def element(text: str | None, role: str | None, box: Box | None, width: float, height: float,
            element_id: str | None = None) -> dict[str, Any] | None:
    """One element dict, or None when it has nothing to ground on or lies off the screen."""
    text = " ".join(text.split()) if isinstance(text, str) else None
    if not text and not role:
        return None
    if box is None or width <= 0 or height <= 0:
        return None
    left, top, right, bottom = (max(0.0, box[0]), max(0.0, box[1]),
                                min(float(width), box[2]), min(float(height), box[3]))
    if right <= left or bottom <= top:
        return None
    return {"text": text or None, "role": role or None,
            "x0": normalise(left, width), "y0": normalise(top, height),
            "x1": normalise(right, width), "y1": normalise(bottom, height),
            "element_id": element_id}


def distinct(elements: Iterable[dict[str, Any] | None]) -> list[dict[str, Any]] | None:
    """The elements kept (None dropped, exact repeats once), or None when none is left."""
    kept: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for item in elements:
        if item is None:
            continue
        key = tuple(item.values())
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept or None
