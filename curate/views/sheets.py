"""See what was extracted: an action drawn on its screenshot, and a contact sheet per episode.

``draw_action`` marks the click point with a ring (two for a double click; colour by
button), a drag as a line with an arrowhead, a scroll as an arrow with its amount, typed
text and hotkeys as a caption, and the target's box when there is one. Points outside the
frame are pinned to its edge and labelled, so a coordinate problem is visible, not hidden.
``contact_sheet`` lays every step's s_t of one episode out in a grid, each with its action
drawn, step index and action_text underneath, and returns PNG bytes.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from typing import Any

import pyarrow.compute as pc
from PIL import Image, ImageDraw, ImageFont

from curate.actions import Action
from curate.errors import StoreError
from curate.store.core import open_store

RING = {"click": (230, 30, 30), "double_click": (230, 30, 30), "right_click": (30, 90, 230),
        "middle_click": (160, 40, 200), "drag": (240, 120, 0), "scroll": (0, 150, 60),
        "move": (120, 120, 120), "long_press": (230, 30, 30), "swipe": (240, 120, 0)}
TARGET = (0, 190, 90)
CAPTION_BG = (0, 0, 0)
CAPTION_FG = (255, 255, 80)
SCROLL_VECTORS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


def _font(size: int) -> Any:
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


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int,
           image_size: tuple[int, int]) -> None:
    font = _font(size)
    box = draw.textbbox((0, 0), text, font=font)
    w, h = box[2] - box[0] + 8, box[3] - box[1] + 8
    x = min(max(xy[0], 0), image_size[0] - w)
    y = min(max(xy[1], 0), image_size[1] - h)
    draw.rectangle((x, y, x + w, y + h), fill=CAPTION_BG)
    draw.text((x + 4, y + 4 - box[1]), text, fill=CAPTION_FG, font=font)


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
            _label(draw, (x + 4 * unit, y - 10 * unit), f"off-frame ({action.x:.2f}, "
                   f"{action.y:.2f})", font_size, size)
    caption = _caption(action)
    if caption is not None:
        _label(draw, (size[0] * 0.02, size[1] * 0.9), caption, font_size * 3 // 2, size)
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
        _label(draw, (x + radius, y - radius), f"x{(action.amount or 0):g}",
               max(12, size[0] // 60), size)
        return
    _ring(draw, x, y, radius, colour, unit)
    if action.type == "double_click":
        _ring(draw, x, y, radius * 1.6, colour, unit)
    if action.x2 is not None and action.y2 is not None:
        x2, y2, _ = _to_px(action.x2, action.y2, size)
        _arrow(draw, (x, y), (x2, y2), colour, unit)


# -- contact sheet ------------------------------------------------------------------------------


def _episode_steps(store_path: str | os.PathLike[str], episode_id: str
                   ) -> tuple[Any, list[dict[str, Any]]]:
    store = open_store(store_path)
    steps = store.read_steps()
    rows = steps.filter(pc.equal(steps.column("episode_id"), episode_id)).to_pylist()
    if not rows:
        known = store.read_episodes().column("episode_id").to_pylist()
        raise StoreError(f"episode {episode_id!r} has no steps in {store_path}; expected one "
                         f"of {known[:5]}{' ...' if len(known) > 5 else ''} "
                         "(see `curate query` on the episodes table)")
    return store, sorted(rows, key=lambda r: r["step_index"])


def _tile(store: Any, row: dict[str, Any], width: int, height: int) -> Image.Image:
    frame_id = row["frame_id"]
    action = Action.from_row(row["action"])
    if frame_id is None:
        tile = Image.new("RGB", (width, height), (60, 60, 60))
        _label(ImageDraw.Draw(tile), (8, height // 2), f"no s_t: {row['frame_missing']}", 16,
               tile.size)
        return tile
    with Image.open(io.BytesIO(store.frame_bytes(frame_id))) as image:
        drawn = draw_action(image, action)
    height = round(width * drawn.height / drawn.width)
    return drawn.resize((width, height), Image.Resampling.LANCZOS)


def contact_sheet(store_path: str | os.PathLike[str], episode_id: str, *, columns: int = 4,
                  tile_width: int = 480) -> bytes:
    """A PNG grid of every step's s_t with its action drawn, index and action_text below."""
    store, rows = _episode_steps(store_path, episode_id)
    tiles = [_tile(store, row, tile_width, tile_width * 9 // 16) for row in rows]
    tile_height = max(t.height for t in tiles)
    text_height = 54
    columns = max(1, min(columns, len(tiles)))
    lines = math.ceil(len(tiles) / columns)
    sheet = Image.new("RGB", (columns * (tile_width + 8) + 8,
                              lines * (tile_height + text_height + 8) + 8), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(13)
    for index, (tile, row) in enumerate(zip(tiles, rows, strict=True)):
        left = 8 + (index % columns) * (tile_width + 8)
        top = 8 + (index // columns) * (tile_height + text_height + 8)
        sheet.paste(tile, (left, top))
        text = f"#{row['step_index']} t={row['timestamp'] or 0:.2f}s {row['action_text']}"
        wrapped = "\n".join(textwrap.wrap(text, width=tile_width // 7)[:3])
        draw.multiline_text((left, top + tile_height + 2), wrapped, fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
