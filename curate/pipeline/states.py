"""State identity: a tiny grayscale grid per unique frame, and how two grids compare.

Each frame is decoded exactly once (here) into a 32x32 box-filtered grayscale grid. Two
frames are the same *state* when at most ``SAME_STATE_MAX_CELLS`` cells differ by more than
``CELL_DIFF_LEVELS`` grey levels: small enough to see one typed character on a 1080p screen
(a glyph moves its cell by ~10 levels), large enough to ignore a blinking caret (~4 levels)
and codec noise.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

GRID = 32
CELL_DIFF_LEVELS = 6
SAME_STATE_MAX_CELLS = 2
# Target boxes: a box is kept at its own pixels up to 64 on a side (a checkbox, a toggle, a
# radio button are 12-40 px), larger ones box-filtered down to 64. A crop pixel changed when
# it moved by more than 32 grey levels: anti-aliased edges re-rendered and video codec noise
# move pixels by less; a tick mark, a knob sliding or a dot filling in move them by 100+.
BOX_SIDE = 64
BOX_DIFF_LEVELS = 32
# At least this many changed crop pixels, not all in one 2-pixel-wide column: fewer is a stray
# anti-aliased pixel, a single column is a text caret blinking on or off.
BOX_CHANGED_PIXELS = 4
CARET_MAX_COLUMNS = 2

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in [0,1] of the frame


@dataclass(frozen=True)
class StateGrid:
    grid: bytes
    width: int
    height: int

    @functools.cached_property
    def cells(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        """The grid as signed integers, so differences do not wrap around."""
        return np.frombuffer(self.grid, dtype=np.uint8).astype(np.int16)


def grid_of(data: bytes) -> StateGrid:
    """Decode an encoded image once and reduce it to its state grid."""
    return frame_state_of(data)[0]


@dataclass(frozen=True)
class BoxCrop:
    """The grayscale pixels of one target box on one frame."""

    box: Box
    width: int
    height: int
    pixels: bytes

    def as_row(self) -> dict[str, Any]:
        x0, y0, x1, y1 = self.box
        return {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "width": self.width,
                "height": self.height, "pixels": self.pixels}


def frame_state_of(data: bytes | BinaryIO, boxes: Sequence[Box] = ()
                   ) -> tuple[StateGrid, list[BoxCrop]]:
    """Decode an encoded image (its bytes, or a file reading them: label passes readers over
    Arrow buffers, so no copy of the bytes is made) once into its state grid and the crops
    of ``boxes``.

    Without boxes a JPEG decodes at reduced scale (draft); with boxes at full resolution,
    since a checkbox tick is a few pixels."""
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        width, height = image.size
        if not boxes:
            # draft() lets JPEG decode at reduced scale; PNG ignores it.
            image.draft("L", (GRID * 4, GRID * 4))
        # A greyscale frame (or a JPEG drafted to L) is used as decoded: convert would copy.
        grey = image if image.mode == "L" else image.convert("L")
        small = grey.resize((GRID, GRID), Image.Resampling.BOX)
        crops = [crop for crop in (_crop(grey, box) for box in boxes) if crop is not None]
        return StateGrid(small.tobytes(), width, height), crops


def _crop(grey: Image.Image, box: Box) -> BoxCrop | None:
    """The box's pixels (edges rounded outwards), None when it covers no pixel."""
    width, height = grey.size
    left, top = max(0, math.floor(box[0] * width)), max(0, math.floor(box[1] * height))
    right = min(width, math.ceil(box[2] * width))
    bottom = min(height, math.ceil(box[3] * height))
    if right <= left or bottom <= top:
        return None
    crop = grey.crop((left, top, right, bottom))
    if crop.width > BOX_SIDE or crop.height > BOX_SIDE:
        crop = crop.resize((min(crop.width, BOX_SIDE), min(crop.height, BOX_SIDE)),
                           Image.Resampling.BOX)
    return BoxCrop(box, crop.width, crop.height, crop.tobytes())


def changed_box_pixels(a: BoxCrop, b: BoxCrop) -> int:
    """Crop pixels that moved by more than BOX_DIFF_LEVELS; 0 when the change is smaller than
    BOX_CHANGED_PIXELS or fits in one caret-wide column (a blinking caret is no effect)."""
    if (a.width, a.height) != (b.width, b.height):
        return a.width * a.height
    diff = np.abs(np.frombuffer(a.pixels, np.uint8).astype(np.int16)
                  - np.frombuffer(b.pixels, np.uint8).astype(np.int16))
    changed = diff.reshape(a.height, a.width) > BOX_DIFF_LEVELS
    count = int(np.count_nonzero(changed))
    columns = np.flatnonzero(changed.any(axis=0))
    if count < BOX_CHANGED_PIXELS or columns[-1] - columns[0] < CARET_MAX_COLUMNS:
        return 0
    return count


def changed_cells(a: StateGrid, b: StateGrid) -> int:
    """Cells that differ by more than CELL_DIFF_LEVELS; every cell when sizes differ."""
    if (a.width, a.height) != (b.width, b.height):
        return GRID * GRID
    return int(np.count_nonzero(np.abs(a.cells - b.cells) > CELL_DIFF_LEVELS))


def same_state(a: StateGrid, b: StateGrid) -> bool:
    return changed_cells(a, b) <= SAME_STATE_MAX_CELLS
