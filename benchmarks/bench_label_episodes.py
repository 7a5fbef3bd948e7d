"""Label benchmark (issue 21): is labelling linear in episode length?

    .venv/bin/python benchmarks/bench_label_episodes.py [--repeat 5]

Times ``label_episode`` alone (state grids in memory, no decoding, no files) on 1,600 steps
of distinct screens cut into episodes of 40, 100, 400 and 1,600 steps, and beside it the
pairwise search it replaced (each after-state compared with every earlier before-state, one
call per pair). Screens are the real OSWorld seed screenshots' state grids, each step with
a window of its own drawn in (6-12 cells square, random levels), so no two screens are the
same state, as in a long session that never goes back. A second corpus, "near", changes only
3-5 cells a screen: every earlier state of the same seed passes the block-sum filters and
reaches the exact cell test, the search's worst case. Goal: one 1,600-step episode in <= 2x
the time of forty 40-step episodes. Interleaved, median of --repeat, CPU time beside wall.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from corpus import seed_screenshots

from curate.pipeline import label as label_module
from curate.pipeline.states import GRID, SAME_STATE_MAX_CELLS, StateGrid, changed_cells, grid_of

STEPS = 1600
LENGTHS = (40, 100, 400, 1600)


def screens(near: bool) -> list[StateGrid]:
    rng = np.random.default_rng(21)
    seeds = [grid_of(data) for data in seed_screenshots()]
    states = []
    for index in range(STEPS + 1):
        seed = seeds[index % len(seeds)]
        cells = np.frombuffer(seed.grid, np.uint8).reshape(GRID, GRID).copy()
        if near:
            spots = rng.choice(GRID * GRID, rng.integers(3, 6), replace=False)
            cells.reshape(-1)[spots] ^= 0x80
        else:
            side = int(rng.integers(6, 13))
            row, col = rng.integers(0, GRID - side, 2)
            cells[row:row + side, col:col + side] = rng.integers(0, 256, (side, side))
        states.append(StateGrid(cells.tobytes(), seed.width, seed.height))
    return states


def episodes(states: list[StateGrid], length: int) -> tuple[list[list[dict[str, Any]]],
                                                            dict[str, StateGrid]]:
    grids = {f"s{i}": state for i, state in enumerate(states)}
    cut = []
    for start in range(0, STEPS, length):
        cut.append([{"episode_id": f"e{start}", "step_index": i - start, "frame_id": f"s{i}",
                     "next_frame_id": f"s{i + 1}", "action": {"type": "click"}}
                    for i in range(start, start + length)])
    return cut, grids


class PairwiseStates:
    """The search label used before issue 21: one comparison per earlier state."""

    def __init__(self, expected: Iterable[StateGrid] = ()) -> None:
        self.states: list[tuple[int, StateGrid]] = []  # ``expected``: unused, as before

    def add(self, step_index: int, state: StateGrid) -> None:
        self.states.append((step_index, state))

    def first_match(self, after: StateGrid) -> int | None:
        for step_index, state in self.states:
            if changed_cells(state, after) <= SAME_STATE_MAX_CELLS:
                return step_index
        return None


def timed(search: Callable[[], Any], cut: list[list[dict[str, Any]]],
          grids: dict[str, StateGrid]) -> tuple[float, float, list[Any]]:
    """(wall, CPU) seconds of labelling the episodes with ``search``, and the labels; the
    garbage collector run before and paused during, as timeit does."""
    label_module.EarlierStates = search  # type: ignore[assignment,misc]
    gc.collect()
    gc.disable()
    started, cpu = time.perf_counter(), time.process_time()
    labels = [label_module.label_episode(episode, grids) for episode in cut]
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    gc.enable()
    return wall, cpu, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    indexed = label_module.EarlierStates
    for corpus in ("distinct", "near"):
        states = screens(corpus == "near")
        runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for repeat in range(args.repeat):
            for length in LENGTHS:
                cut, grids = episodes(states, length)
                made = {}
                for name, search in (("indexed", indexed), ("pairwise", PairwiseStates)):
                    if name == "pairwise" and repeat >= 1:
                        continue  # seconds a run at 1,600; once is enough to compare
                    wall, cpu, made[name] = timed(search, cut, grids)
                    runs.setdefault((name, length), []).append((wall, cpu))
                if repeat == 0:
                    loops = sum(bool(r["loop"]) for e in made["indexed"] for r in e)
                    same = made["indexed"] == made["pairwise"]
                    print(f"{corpus}: {length}-step episodes, loops found: {loops}, "
                          f"labels identical to the pairwise search: {same}")
        label_module.EarlierStates = indexed  # type: ignore[misc]
        wall = {key: sorted(v[0] for v in values)[len(values) // 2]
                for key, values in runs.items()}
        cpu = {key: sorted(v[1] for v in values)[len(values) // 2]
               for key, values in runs.items()}
        print(f"\n{corpus} screens, {STEPS} steps (median of {args.repeat}; pairwise once)")
        print(f"{'episode length':>15}{'indexed':>12}{'CPU':>12}{'pairwise':>12}")
        for length in LENGTHS:
            print(f"{length:>15}{wall[('indexed', length)] * 1e3:>10.1f}ms"
                  f"{cpu[('indexed', length)] * 1e3:>10.1f}ms"
                  f"{wall[('pairwise', length)] * 1e3:>10.1f}ms")
        print("one 1,600-step episode / forty 40-step episodes: "
              f"{wall[('indexed', 1600)] / wall[('indexed', 40)]:.2f}x wall, "
              f"{cpu[('indexed', 1600)] / cpu[('indexed', 40)]:.2f}x CPU (goal <= 2)")


if __name__ == "__main__":
    main()
