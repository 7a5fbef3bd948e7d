"""The earlier states of one episode, searchable for "which is the same state as this one".

``label`` asks, for every step, which earlier before-state (the first, in step order) is the
same state as the step's after-state (``states.same_state``). Comparing with each earlier
state in turn made an episode quadratic in Python calls; here the earlier states are kept
stacked in arrays and each question is a few vectorised calls:

States of another screen size never match (``changed_cells`` counts every cell), so each
size has its own stack. Then:

1. exact bytes: a dict from grid to its first position. An exact earlier copy ends the
   search at that position (only states before it can still come first).
2. block sums, once an episode has ``_SMALL`` states of a size: two grids are the same state
   only if at most ``SAME_STATE_MAX_CELLS`` cells differ by more than ``CELL_DIFF_LEVELS``.
   A block whose sum moved by more than ``CELL_DIFF_LEVELS`` times its cell count must hold
   such a cell, so a candidate has at most that many blocks over the bound. This is
   necessary, never sufficient: it only removes states that cannot match. Checked on 8x8,
   4x4, then 2x2 blocks, each level on what the one before left (screens a few cells apart
   pass the 8x8 level; a cell off by 120 levels fails the 4x4 one at a quarter of the 2x2
   level's work).
3. the exact cell test (``states.changed_cells``) on what is left, in one call; none when
   the filters left nothing, the usual case for a new screen.

Screens that differ from every earlier one in a few cells only pass every filter and reach
step 3: the search stays one vectorised pass over them, not one Python call per state.
The answer is the same as comparing with every earlier state in order (tests/test_label.py
holds both on long random episodes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from curate.pipeline.states import CELL_DIFF_LEVELS, GRID, SAME_STATE_MAX_CELLS, StateGrid

_BLOCK_SIDES = (8, 4, 2)  # filter levels, coarse to fine: 16, 64 and 256 block sums a state
_SMALL = 128  # below this many earlier states one direct pass is cheaper than the filters
_FEW = 16  # candidates so few that the cell test costs less than a finer filter first

Array = np.ndarray[Any, Any]
SumsOf = Callable[[StateGrid], list[Array]]


def _summed_blocks(squares: Array, side: int) -> Array:
    """Sums of the ``side`` x ``side`` blocks of a stack of square arrays of cells (int16)."""
    count, width = len(squares), squares.shape[1]
    blocks = width // side
    rows: Array = squares.reshape(count, blocks, side, width).sum(axis=2, dtype=np.int16)
    return np.asarray(rows.reshape(count, blocks, blocks, side).sum(axis=3, dtype=np.int16))


def stacked_block_sums(cells: Array) -> list[Array]:
    """Block sums of many states at once (``cells``: one state's cells a row), one array per
    ``_BLOCK_SIDES`` level, one row a state (int16: at most 64 * 255, and differences of two
    such sums, fit)."""
    fine_side = _BLOCK_SIDES[-1]
    fine = _summed_blocks(cells.reshape(-1, GRID, GRID), fine_side)
    coarse = [_summed_blocks(fine, side // fine_side).reshape(len(cells), -1)
              for side in _BLOCK_SIDES[:-1]]
    return [*coarse, fine.reshape(len(cells), -1)]


def block_sums(state: StateGrid) -> list[Array]:
    """The block sums of one state (see :func:`stacked_block_sums`)."""
    return [level[0] for level in stacked_block_sums(state.cells.reshape(1, -1))]


def _over_count(rows: Array, own: Array, bound: int) -> Array:
    """How many entries of each row differ from ``own`` by more than ``bound`` (int16 rows,
    a multiple of 8 wide, differences within int16)."""
    # |r - o| > b  <=>  r - (o - b), read unsigned, exceeds 2b: one pass, no abs.
    over = ((rows - (own - bound)).view(np.uint16) > 2 * bound).view(np.uint64)
    counted: Array = np.bitwise_count(over)  # eight booleans a word
    if counted.shape[1] > 8:
        return np.asarray(counted.sum(axis=1, dtype=np.int16))
    # Few words a row: numpy's row reduction is slow on short rows; halving adds are not.
    counted = counted.astype(np.int16)
    while counted.shape[1] > 1:
        half = counted.shape[1] // 2
        counted = counted[:, :half] + counted[:, half:]
    return counted[:, 0]


class _SameSize:
    """The earlier states of one screen size (states of other sizes never match)."""

    def __init__(self) -> None:
        self.positions: list[int] = []  # positions in the episode's order of adding
        self.states: list[StateGrid] = []
        self.exact: dict[bytes, int] = {}
        self.cells = np.empty((16, GRID * GRID), dtype=np.int16)
        self.sums = [np.empty((16, (GRID // side) ** 2), dtype=np.int16)
                     for side in _BLOCK_SIDES]
        self.summed = 0  # rows whose block sums are filled in (only long episodes need them)

    def add(self, position: int, state: StateGrid) -> None:
        row = len(self.positions)
        if row == len(self.cells):
            self.cells = _doubled(self.cells)
            self.sums = [_doubled(level) for level in self.sums]
        self.positions.append(position)
        self.states.append(state)
        self.exact.setdefault(state.grid, row)
        self.cells[row] = state.cells

    def first_match(self, state: StateGrid, sums_of: SumsOf) -> int | None:
        """Position of the first state here that is the same state, else None."""
        exact = self.exact.get(state.grid)
        limit = len(self.positions) if exact is None else exact
        row = self._first_near(state, limit, sums_of)
        if row is None:
            row = exact
        return None if row is None else self.positions[row]

    def _first_near(self, state: StateGrid, limit: int, sums_of: SumsOf) -> int | None:
        """First row below ``limit`` that passes the cell test."""
        if limit == 0:
            return None
        if limit < _SMALL:
            candidates: Array = np.arange(limit)
            changed = _changed_cells(self.cells[:limit], state)  # a view: nothing copied
        else:
            candidates = self._filtered(state, limit, sums_of)
            if not candidates.size:  # the common case of a new screen: nothing to test
                return None
            changed = _changed_cells(self.cells[candidates], state)
        hits = candidates[changed <= SAME_STATE_MAX_CELLS]
        return int(hits[0]) if hits.size else None

    def _filtered(self, state: StateGrid, limit: int, sums_of: SumsOf) -> Array:
        """Rows below ``limit`` that the block sums do not rule out."""
        for row in range(self.summed, len(self.positions)):
            for stored, row_sums in zip(self.sums, sums_of(self.states[row]), strict=True):
                stored[row] = row_sums
        self.summed = len(self.positions)
        mine = sums_of(state)
        over = _over_count(self.sums[0][:limit], mine[0], _bound(_BLOCK_SIDES[0]))
        candidates: Array = np.flatnonzero(over <= SAME_STATE_MAX_CELLS)
        for side, stored, own in zip(_BLOCK_SIDES[1:], self.sums[1:], mine[1:], strict=True):
            if candidates.size <= _FEW:
                break
            over = _over_count(stored[candidates], own, _bound(side))
            candidates = candidates[over <= SAME_STATE_MAX_CELLS]
        return candidates


def _bound(side: int) -> int:
    """The most a block of ``side`` x ``side`` cells moves without an outlier cell in it."""
    return CELL_DIFF_LEVELS * side * side


def _changed_cells(cells: Array, state: StateGrid) -> Array:
    """``states.changed_cells`` of each row against one state of the same size."""
    return _over_count(cells, state.cells, CELL_DIFF_LEVELS)


def _doubled(array: Array) -> Array:
    bigger = np.empty((2 * len(array), *array.shape[1:]), dtype=array.dtype)
    bigger[:len(array)] = array
    return bigger


class EarlierStates:
    """Before-states added in step order; ``first_match`` finds the first same state."""

    def __init__(self, expected: Iterable[StateGrid] = ()) -> None:
        """``expected``: the states the episode will add and ask about, when known. A long
        episode's block sums are then made in one vectorised call instead of one a state."""
        self._steps: list[int] = []
        self._by_size: dict[tuple[int, int], _SameSize] = {}
        # A step's after-state is most often the next step's before-state: sums made once.
        self._sums: dict[bytes, list[Array]] = {}
        unique = list({state.grid: state for state in expected}.values())
        if len(unique) >= _SMALL:  # shorter episodes never reach the filters
            stacked = stacked_block_sums(np.stack([state.cells for state in unique]))
            for row, state in enumerate(unique):
                self._sums[state.grid] = [level[row] for level in stacked]

    def __len__(self) -> int:
        return len(self._steps)

    def _sums_of(self, state: StateGrid) -> list[Array]:
        sums = self._sums.get(state.grid)
        if sums is None:
            sums = self._sums[state.grid] = block_sums(state)
        return sums

    def add(self, step_index: int, state: StateGrid) -> None:
        size = self._by_size.get((state.width, state.height))
        if size is None:  # not setdefault: a _SameSize allocates its arrays when made
            size = self._by_size[(state.width, state.height)] = _SameSize()
        size.add(len(self._steps), state)
        self._steps.append(step_index)

    def first_match(self, state: StateGrid) -> int | None:
        """Step index of the first earlier state that is the same state, else None."""
        size = self._by_size.get((state.width, state.height))
        if size is None:
            return None
        position = size.first_match(state, self._sums_of)
        return None if position is None else self._steps[position]
