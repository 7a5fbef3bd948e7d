"""See what was extracted: a contact sheet per episode.

``contact_sheet`` lays every step's s_t of one episode out in a grid, each with its action
drawn (curate.actions.drawing), step index and action_text underneath, and returns PNG bytes.
"""

from __future__ import annotations

import io
import math
import os
import textwrap
from typing import Any

import pyarrow.compute as pc
from PIL import Image, ImageDraw

from curate.actions import Action
from curate.actions.drawing import draw_action, font, label_box
from curate.errors import StoreError
from curate.store.core import open_store

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
        label_box(ImageDraw.Draw(tile), (8, height // 2), f"no s_t: {row['frame_missing']}", 16,
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
    face = font(13)
    for index, (tile, row) in enumerate(zip(tiles, rows, strict=True)):
        left = 8 + (index % columns) * (tile_width + 8)
        top = 8 + (index // columns) * (tile_height + text_height + 8)
        sheet.paste(tile, (left, top))
        text = f"#{row['step_index']} t={row['timestamp'] or 0:.2f}s {row['action_text']}"
        wrapped = "\n".join(textwrap.wrap(text, width=tile_width // 7)[:3])
        draw.multiline_text((left, top + tile_height + 2), wrapped, fill=(0, 0, 0), font=face)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
