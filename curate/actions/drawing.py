"""An action drawn on its screenshot, for people checking what was extracted or forecast.

``draw_action`` marks the click point with a ring (two for a double click; colour by
button), a drag as a line with an arrowhead, a scroll as an arrow with its amount, typed
text and hotkeys as a caption, and the target's box when there is one. Points outside the
frame are pinned to its edge and labelled, so a coordinate problem is visible, not hidden.
Used by the contact sheets (curate.views) and the segment review tasks (curate.review).
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from curate.actions import Action

RING = {"click": (230, 30, 30), "double_click": (230, 30, 30), "right_click": (30, 90, 230),
        "middle_click": (160, 40, 200), "drag": (240, 120, 0), "scroll": (0, 150, 60),
        "move": (120, 120, 120), "long_press": (230, 30, 30), "swipe": (240, 120, 0)}
TARGET = (0, 190, 90)
CAPTION_BG = (0, 0, 0)
CAPTION_FG = (255, 255, 80)
SCROLL_VECTORS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


def font(size: int) -> Any:
    return ImageFont.load_default(size=max(10, size))


def _to_px(x: float, y: float, size: tuple[int, int]) -> tuple[float, float, bool]:
    """Normalised point -> pixel, pinned inside the image; the flag says it was outside."""
    width, height = size
    inside = 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0
    return (min(max(x, 0.0), 1.0) * (width - 1), min(max(y, 0.0), 1.0) * (height - 1),
            not inside)


def _ring(draw: ImageDraw.ImageDraw, x: float, y: float, radius: float, colour: tuple[int, ...],
          width: int) -> None:
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=colour, width=width)
    draw.ellipse((x - width, y - width, x + width, y + width), fill=colour)


def _arrow(draw: ImageDraw.ImageDraw, start: tuple[float, float], end: tuple[float, float],
           colour: tuple[int, ...], width: int) -> None:
    draw.line((start, end), fill=colour, width=width)
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    head = width * 5
    left = (end[0] - head * math.cos(angle - 0.45), end[1] - head * math.sin(angle - 0.45))
    right = (end[0] - head * math.cos(angle + 0.45), end[1] - head * math.sin(angle + 0.45))
    draw.polygon((end, left, right), fill=colour)


def label_box(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int,
           image_size: tuple[int, int]) -> None:
    face = font(size)
    box = draw.textbbox((0, 0), text, font=face)
    w, h = box[2] - box[0] + 8, box[3] - box[1] + 8
    x = min(max(xy[0], 0), image_size[0] - w)
    y = min(max(xy[1], 0), image_size[1] - h)
    draw.rectangle((x, y, x + w, y + h), fill=CAPTION_BG)
    draw.text((x + 4, y + 4 - box[1]), text, fill=CAPTION_FG, font=face)


def _caption(action: Action) -> str | None:
    if action.type == "type" and action.text is not None:
        return f"type {action.text!r}"
    if action.type == "key":
        return "key " + "+".join(action.keys)
    if action.keys and action.type in RING:
        return "with " + "+".join(action.keys)
    return None


def draw_action(image: Image.Image, action: Action) -> Image.Image:
    """A copy of ``image`` with ``action`` drawn on it (coordinates normalised to it)."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    size = out.size
    unit = max(2, round(size[0] / 320))  # line width that survives a 4x downscale
    font_size = max(12, size[0] // 50)
    colour = RING.get(action.type, (230, 30, 30))
    _draw_target(draw, action, size, unit)
    if action.x is not None and action.y is not None:
        x, y, outside = _to_px(action.x, action.y, size)
        _draw_pointer(draw, action, (x, y), size, unit, colour)
        if outside:
            label_box(draw, (x + 4 * unit, y - 10 * unit), f"off-frame ({action.x:.2f}, "
                   f"{action.y:.2f})", font_size, size)
    caption = _caption(action)
    if caption is not None:
        label_box(draw, (size[0] * 0.02, size[1] * 0.9), caption, font_size * 3 // 2, size)
    return out


def _draw_target(draw: ImageDraw.ImageDraw, action: Action, size: tuple[int, int],
                 unit: int) -> None:
    target = action.target
    if target is None or None in (target.x0, target.y0, target.x1, target.y1):
        return
    assert target.x0 is not None and target.y0 is not None
    assert target.x1 is not None and target.y1 is not None
    draw.rectangle((target.x0 * size[0], target.y0 * size[1], target.x1 * size[0],
                    target.y1 * size[1]), outline=TARGET, width=max(1, unit // 2))


def _draw_pointer(draw: ImageDraw.ImageDraw, action: Action, point: tuple[float, float],
                  size: tuple[int, int], unit: int, colour: tuple[int, ...]) -> None:
    x, y = point
    radius = unit * 7
    if action.type == "scroll":
        dx, dy = SCROLL_VECTORS.get(action.direction or "down", (0, 1))
        length = radius * (2 + min(action.amount or 1, 10) / 2)
        _ring(draw, x, y, unit * 2, colour, unit)
        _arrow(draw, (x, y), (x + dx * length, y + dy * length), colour, unit)
        label_box(draw, (x + radius, y - radius), f"x{(action.amount or 0):g}",
               max(12, size[0] // 60), size)
        return
    _ring(draw, x, y, radius, colour, unit)
    if action.type == "double_click":
        _ring(draw, x, y, radius * 1.6, colour, unit)
    if action.x2 is not None and action.y2 is not None:
        x2, y2, _ = _to_px(action.x2, action.y2, size)
        _arrow(draw, (x, y), (x2, y2), colour, unit)
