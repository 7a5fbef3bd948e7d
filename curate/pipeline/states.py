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
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

GRID = 32
CELL_DIFF_LEVELS = 6
SAME_STATE_MAX_CELLS = 2


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
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
        # draft() lets JPEG decode at reduced scale; PNG ignores it.
        image.draft("L", (GRID * 4, GRID * 4))
        small = image.convert("L").resize((GRID, GRID), Image.Resampling.BOX)
        return StateGrid(small.tobytes(), width, height)


def changed_cells(a: StateGrid, b: StateGrid) -> int:
    """Cells that differ by more than CELL_DIFF_LEVELS; every cell when sizes differ."""
    if (a.width, a.height) != (b.width, b.height):
        return GRID * GRID
    return int(np.count_nonzero(np.abs(a.cells - b.cells) > CELL_DIFF_LEVELS))


def same_state(a: StateGrid, b: StateGrid) -> bool:
    return changed_cells(a, b) <= SAME_STATE_MAX_CELLS
