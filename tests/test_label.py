"""Step labels from state grids: definitions in docs/labels.md."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from curate.pipeline.ingest import ingest
from curate.pipeline.label import (
    episode_groups,
    label,
    label_episode,
    load_grids,
    sorted_step_rows,
)
from curate.pipeline.state_index import EarlierStates
from curate.pipeline.states import (
    GRID,
    SAME_STATE_MAX_CELLS,
    StateGrid,
    changed_cells,
    grid_of,
    same_state,
)
from curate.store.core import open_store


def png(draw_fn=None, size=(1024, 768)) -> bytes:
    image = Image.new("RGB", size, (255, 255, 255))
    if draw_fn:
        draw_fn(ImageDraw.Draw(image))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_episode(folder: Path, frames: dict[str, bytes], steps: list[dict]) -> None:
    (folder / "frames").mkdir(parents=True)
    for name, data in frames.items():
        (folder / "frames" / f"{name}.png").write_bytes(data)
    (folder / "episode.json").write_text(json.dumps({"curate_native": 1, "terminated": True}))
    (folder / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))


def step(action: str, before: str | None, after: str | None) -> dict:
    line: dict = {"action": action}
    if before:
        line["frame"] = f"frames/{before}.png"
    if after:
        line["next_frame"] = f"frames/{after}.png"
    return line


def labels_of(store: Path) -> list[dict]:
    rows = []
    for path in open_store(store).files("labels"):
        rows += pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda r: r["step_index"])


def test_one_typed_character_is_a_change_but_a_blinking_caret_is_not() -> None:
    blank = grid_of(png(lambda d: d.rectangle((100, 100, 500, 130), outline=(0, 0, 0))))
    typed = grid_of(png(lambda d: (d.rectangle((100, 100, 500, 130), outline=(0, 0, 0)),
                                   d.text((104, 108), "a", fill=(0, 0, 0)))))
    caret = grid_of(png(lambda d: (d.rectangle((100, 100, 500, 130), outline=(0, 0, 0)),
                                   d.line((104, 106, 104, 122), fill=(0, 0, 0)))))
    assert not same_state(blank, typed) or blank.grid != typed.grid
    assert same_state(blank, caret)


def test_noop_loop_recovery_on_path_and_terminal(tmp_path: Path) -> None:
    a = png(lambda d: d.rectangle((0, 0, 300, 300), fill=(200, 0, 0)))
    b = png(lambda d: d.rectangle((400, 300, 900, 700), fill=(0, 0, 200)))
    c = png(lambda d: d.ellipse((100, 100, 800, 600), fill=(0, 150, 0)))
    write_episode(tmp_path / "rec" / "ep", {"a": a, "b": b, "c": c}, [
        step("click(x=0.1, y=0.1)", "a", "b"),      # 0: a -> b
        step("click(x=0.9, y=0.9)", "b", "b"),      # 1: no change
        step('key(keys=["escape"])', "b", "a"),     # 2: back to step 0's state
        step("click(x=0.5, y=0.5)", "a", "c"),      # 3: progress
        step("wait()", "c", "c"),                   # 4: waiting is never a no-op
        step("done()", "c", None),                  # 5: end
    ])
    ingest([tmp_path / "rec"], tmp_path / "store")
    summary = label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["noop"] for r in rows] == [False, True, False, False, False, None]
    assert [r["loop"] for r in rows] == [False, False, True, False, False, None]
    assert rows[2]["revisits_step"] == 0 and rows[2]["recovery"]
    assert [r["on_path"] for r in rows] == [False, False, False, True, True, True]
    assert [r["terminal"] for r in rows] == [False] * 5 + [True]
    assert all(r["label_source"] == "heuristic" and r["evidence"] for r in rows)
    assert summary.frames_decoded == 3


def test_each_unique_frame_is_decoded_once_and_relabelling_is_incremental(
        tmp_path: Path, native_episode) -> None:
    native_episode("a")
    native_episode("b")  # same frames as a
    ingest([tmp_path / "recordings"], tmp_path / "store")
    first = label(tmp_path / "store")
    second = label(tmp_path / "store")
    assert first.frames_decoded == 3 and first.batches_labelled == 1
    assert second.frames_decoded == 0 and second.batches_current == 1


def test_tool_calls_without_screens_loop_only_when_repeated(tmp_path: Path) -> None:
    folder = tmp_path / "rec" / "tools"
    folder.mkdir(parents=True)
    (folder / "episode.json").write_text(json.dumps({"curate_native": 1, "platform": "tool"}))
    calls = ['tool_call(name="search", args={"q": "x"})',
             'tool_call(name="search", args={"q": "y"})',
             'tool_call(name="search", args={"q": "x"})',
             'answer(text="done")']
    (folder / "steps.jsonl").write_text("".join(json.dumps({"action": c}) + "\n" for c in calls))
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["noop"] for r in rows] == [None] * 4
    assert [r["loop"] for r in rows[:3]] == [False, False, True]
    assert [r["on_path"] for r in rows] == [True, True, False, True]


def test_the_noop_limit_is_zero_changed_cells(tmp_path: Path) -> None:
    """One changed grid cell is already an effect: NOOP_MAX_CELLS is 0. A frame whose only
    difference is one black cell-sized square (a 320x320 frame: 10x10 pixels per cell) must
    not be a no-op, while the identical frame is."""
    def cells_dark(count: int) -> bytes:
        return png(lambda d: [d.rectangle((50 + 20 * i, 50, 59 + 20 * i, 59), fill=(0, 0, 0))
                              for i in range(count)], size=(320, 320))

    frames = {"a": cells_dark(0), "b": cells_dark(1), "c": cells_dark(3)}
    assert grid_of(frames["a"]) != grid_of(frames["b"])
    write_episode(tmp_path / "rec" / "ep", frames, [
        step("click(x=0.1, y=0.1)", "a", "a"),
        step("click(x=0.2, y=0.2)", "a", "b"),
        step("click(x=0.3, y=0.3)", "b", "c"),
    ])
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["changed_cells"] for r in rows] == [0, 1, 2]
    assert [r["noop"] for r in rows] == [True, False, False]


def _three_screens() -> dict[str, bytes]:
    return {"a": png(lambda d: d.rectangle((0, 0, 300, 300), fill=(200, 0, 0))),
            "b": png(lambda d: d.rectangle((400, 300, 900, 700), fill=(0, 0, 200))),
            "c": png(lambda d: d.ellipse((100, 100, 800, 600), fill=(0, 150, 0)))}


def test_recovery_needs_an_undo_or_back_action_that_returns(tmp_path: Path) -> None:
    write_episode(tmp_path / "rec" / "ep", _three_screens(), [
        step("click(x=0.1, y=0.1)", "a", "b"),        # 0: a -> b
        step("back()", "b", "a"),                      # 1: back to a: recovery
        step("click(x=0.2, y=0.2)", "a", "b"),        # 2: b again: a loop, not a recovery
        step('key(keys=["ctrl", "z"])', "b", "a"),    # 3: undo back to a: recovery
        step('key(keys=["ctrl", "s"])', "a", "b"),    # 4: a loop, but save is no undo
        step("back()", "b", "c"),                      # 5: back to a new screen: progress
        step("done()", "c", None),
    ])
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["loop"] for r in rows[:6]] == [False, True, True, True, True, False]
    assert [r["recovery"] for r in rows] == [False, True, False, True, False, False, False]
    assert "undo/back action returning to an earlier state" in rows[1]["evidence"]


def test_a_return_to_a_state_seen_only_in_a_cut_detour_stays_on_the_path(tmp_path: Path) -> None:
    """a -> b -> a is cut; going a -> b again revisits step 1's before-state, but step 1 is
    no longer on the path: cutting from it would leave no path step arriving in b."""
    write_episode(tmp_path / "rec" / "ep", _three_screens(), [
        step("click(x=0.1, y=0.1)", "a", "b"),        # 0: a -> b
        step("click(x=0.2, y=0.2)", "b", "a"),        # 1: back to a: cuts 0..1
        step("click(x=0.1, y=0.1)", "a", "b"),        # 2: b again, only seen in the detour
        step("click(x=0.5, y=0.5)", "b", "c"),        # 3: progress from b
    ])
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["loop"] for r in rows] == [False, True, True, False]
    assert rows[2]["revisits_step"] == 1
    assert [r["on_path"] for r in rows] == [False, False, True, True]


def test_terminal_marks_the_last_step_and_every_ending_action(tmp_path: Path) -> None:
    write_episode(tmp_path / "rec" / "ep", _three_screens(), [
        step("click(x=0.1, y=0.1)", "a", "b"),
        step('answer(text="42")', "b", "b"),           # an answer mid-episode ends a task
        step("click(x=0.5, y=0.5)", "b", "c"),        # the last step, whatever it is
    ])
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["terminal"] for r in rows] == [False, True, True]
    assert rows[1]["noop"] is False  # an answer is never a no-op, even on an unchanged screen
    assert "never a no-op" in rows[1]["evidence"]


def test_a_tool_call_loops_only_on_the_same_name_and_arguments(tmp_path: Path) -> None:
    folder = tmp_path / "rec" / "tools"
    folder.mkdir(parents=True)
    (folder / "episode.json").write_text(json.dumps({"curate_native": 1, "platform": "tool"}))
    calls = ['tool_call(name="search", args={"q": "x"})',
             'tool_call(name="lookup", args={"q": "x"})',
             'tool_call(name="lookup")',
             'tool_call(name="lookup")',
             'answer(text="done")']
    (folder / "steps.jsonl").write_text("".join(json.dumps({"action": c}) + "\n" for c in calls))
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["loop"] for r in rows[:4]] == [False, False, False, True]
    assert "same tool call" in rows[0]["evidence"]


def test_a_revisit_tolerates_two_changed_cells_but_not_three(tmp_path: Path) -> None:
    """Returning to an earlier state may differ in up to SAME_STATE_MAX_CELLS = 2 grid cells
    (a caret, a clock); three cells are a different screen."""
    def screen(dots: int, extra: bool = False) -> bytes:
        def draw(d: ImageDraw.ImageDraw) -> None:
            if extra:
                d.rectangle((200, 200, 260, 260), fill=(0, 90, 0))
            for i in range(dots):  # each dot darkens exactly one 10x10-pixel cell
                d.rectangle((10 + 20 * i, 300, 19 + 20 * i, 309), fill=(0, 0, 0))
        return png(draw, size=(320, 320))

    frames = {"home": screen(0), "other": screen(0, extra=True), "two": screen(2),
              "three": screen(3)}
    for back_to, is_revisit in (("two", True), ("three", False)):
        write_episode(tmp_path / back_to / "ep", frames, [
            step("click(x=0.1, y=0.1)", "home", "other"),
            step("click(x=0.2, y=0.2)", "other", back_to),  # home again, N cells off?
            step("done()", back_to, None),
        ])
        ingest([tmp_path / back_to], tmp_path / f"{back_to}.store")
        label(tmp_path / f"{back_to}.store")
        second = labels_of(tmp_path / f"{back_to}.store")[1]
        assert second["loop"] is is_revisit, back_to
        assert second["revisits_step"] == (0 if is_revisit else None), back_to


# ------------------------------------------------ the indexed search equals the pairwise one


def _pairwise_first_match(earlier: list[tuple[int, StateGrid]], after: StateGrid) -> int | None:
    """The definition: the first earlier before-state at most SAME_STATE_MAX_CELLS cells off."""
    for step_index, state in earlier:
        if changed_cells(state, after) <= SAME_STATE_MAX_CELLS:
            return step_index
    return None


def _random_states(rng: np.random.Generator, count: int) -> list[StateGrid]:
    """States built to sit on every edge of the rule: exact copies, cells moved by exactly
    CELL_DIFF_LEVELS and one more, whole blocks shifted to the block-sum bound, two and three
    outlier cells, another screen size, and unrelated screens."""
    bases = [rng.integers(0, 256, GRID * GRID, dtype=np.uint8) for _ in range(6)]
    states: list[StateGrid] = []
    for _ in range(count):
        pick = rng.integers(0, 8)
        cells = (bases[rng.integers(0, len(bases))] if pick < 6 or not states
                 else np.frombuffer(states[rng.integers(0, len(states))].grid, np.uint8))
        cells = cells.astype(np.int16)
        kind = rng.integers(0, 6)
        if kind == 1:  # a few cells moved by 6 (tolerated) or 7 (an outlier)
            spots = rng.choice(GRID * GRID, rng.integers(1, 5), replace=False)
            cells[spots] += rng.choice([-7, -6, 6, 7], spots.size)
        elif kind == 2:  # an 8x8 block moved by exactly the tolerance everywhere
            row, col = rng.integers(0, 4, 2) * 8
            block = cells.reshape(GRID, GRID)[row:row + 8, col:col + 8]
            block += rng.choice([-6, 6])
        elif kind == 3:  # a fresh screen
            cells = rng.integers(0, 256, GRID * GRID).astype(np.int16)
        elif kind == 4:  # up to three far outliers
            spots = rng.choice(GRID * GRID, rng.integers(1, 4), replace=False)
            cells[spots] += 120
        size = (1024, 768) if rng.integers(0, 10) else (800, 600)
        grid = np.clip(cells, 0, 255).astype(np.uint8).tobytes()
        states.append(StateGrid(grid, *size))
    return states


def test_the_state_index_finds_the_same_first_match_as_comparing_pairwise() -> None:
    rng = np.random.default_rng(21)
    matches = 0
    for _ in range(4):
        states = _random_states(rng, 400)
        index, earlier = EarlierStates(), []  # capacity 1: growth is exercised
        for position, state in enumerate(states):
            after = states[rng.integers(0, len(states))]
            expected = _pairwise_first_match(earlier, after)
            assert index.first_match(after) == expected, position
            matches += expected is not None
            index.add(position * 2, state)
            earlier.append((position * 2, state))
    assert matches > 200  # the episodes revisit often, so the search is really exercised


def test_a_long_episode_labels_as_the_pairwise_definition() -> None:
    rng = np.random.default_rng(7)
    states = _random_states(rng, 1200)
    grids = {f"f{i}": state for i, state in enumerate(states)}
    order = rng.integers(0, len(states), 1601)  # screens come back in no particular order
    steps = [{"episode_id": "e", "step_index": i, "frame_id": f"f{order[i]}",
              "next_frame_id": f"f{order[i + 1]}", "action": {"type": "click"}}
             for i in range(1600)]
    labels = label_episode(steps, grids)
    earlier: list[tuple[int, StateGrid]] = []
    revisits = 0
    for row, label_row in zip(steps, labels, strict=True):
        before, after = grids[row["frame_id"]], grids[row["next_frame_id"]]
        if changed_cells(before, after) > 0:
            assert label_row["revisits_step"] == _pairwise_first_match(earlier, after)
            revisits += label_row["revisits_step"] is not None
        earlier.append((row["step_index"], before))
    assert revisits > 100


def test_a_long_episode_of_near_screens_labels_as_the_pairwise_definition() -> None:
    """Screens of a few bases, each a few cells off (some by 6 levels, tolerated, some far)
    and some with a 4x4 block moved by exactly the tolerance: every block-sum level passes
    many of them, so the first match is decided by the cell test after each filter, or the
    filters leave nothing to test."""
    rng = np.random.default_rng(11)
    bases = [rng.integers(20, 236, GRID * GRID).astype(np.int16) for _ in range(4)]
    states = []
    for _ in range(900):
        cells = bases[rng.integers(0, len(bases))].copy()
        spots = rng.choice(GRID * GRID, rng.integers(0, 5), replace=False)
        cells[spots] += rng.choice([-6, 6, -7, 7, 120], spots.size)
        if rng.integers(0, 3) == 0:
            row, col = rng.integers(0, 8, 2) * 4
            cells.reshape(GRID, GRID)[row:row + 4, col:col + 4] += rng.choice([-6, 6])
        states.append(StateGrid(np.clip(cells, 0, 255).astype(np.uint8).tobytes(), 1024, 768))
    grids = {f"f{i}": state for i, state in enumerate(states)}
    steps = [{"episode_id": "e", "step_index": i, "frame_id": f"f{i}",
              "next_frame_id": f"f{i + 1}", "action": {"type": "click"}}
             for i in range(len(states) - 1)]
    labels = label_episode(steps, grids)
    earlier: list[tuple[int, StateGrid]] = []
    found = Counter()
    for row, label_row in zip(steps, labels, strict=True):
        before, after = grids[row["frame_id"]], grids[row["next_frame_id"]]
        if changed_cells(before, after) > 0:
            expected = _pairwise_first_match(earlier, after)
            assert label_row["revisits_step"] == expected, row["step_index"]
            found[expected is None] += 1
        earlier.append((row["step_index"], before))
    assert found[False] > 100 and found[True] > 100  # matches and misses both searched


def test_the_real_samples_label_as_the_pairwise_definition(sample_store_template: Path) -> None:
    store = open_store(sample_store_template)
    steps = store.read("steps", columns=["episode_id", "step_index", "action", "frame_id",
                                         "next_frame_id"])
    ids = {f for c in ("frame_id", "next_frame_id") for f in steps.column(c).to_pylist() if f}
    grids = load_grids(store, ids)
    checked = 0
    for episode in episode_groups(sorted_step_rows(steps)):
        labels = label_episode(episode, grids)
        earlier: list[tuple[int, StateGrid]] = []
        for row, label_row in zip(episode, labels, strict=True):
            before, after = grids.get(row["frame_id"] or ""), grids.get(row["next_frame_id"] or "")
            if after is not None and not label_row["noop"]:
                assert label_row["revisits_step"] == _pairwise_first_match(earlier, after)
                checked += 1
            if before is not None:
                earlier.append((row["step_index"], before))
    assert checked > 10


def test_a_click_that_focuses_the_field_typed_into_next_is_not_a_noop(tmp_path: Path) -> None:
    a = png(lambda d: d.rectangle((100, 100, 500, 130), outline=(0, 0, 0)))
    b = png(lambda d: (d.rectangle((100, 100, 500, 130), outline=(0, 0, 0)),
                       d.text((104, 108), "hello world, typed", fill=(0, 0, 0))))
    write_episode(tmp_path / "rec" / "ep", {"a": a, "b": b}, [
        step("click(x=0.2, y=0.15)", "a", "a"),     # 0: focus: the caret is too small to see
        step('type(text="hello world, typed")', "a", "b"),
        step("click(x=0.9, y=0.9)", "b", "b"),      # 2: nothing follows it that it enables
        step('key(keys=["enter"])', "b", "b"),
    ])
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["noop"] for r in rows[:3]] == [False, False, True]
    assert "focus" in rows[0]["evidence"]


def test_the_shipped_example_click_into_an_empty_field_is_not_a_noop(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "recordings" / "native"
    ingest([example / "settings_rename"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    # step 1 clicks into the empty "Device name" box; the frames before and after are the
    # same pixels, and step 2 types the new name there
    assert rows[1]["noop"] is False and rows[1]["on_path"] is True


def test_typing_and_a_save_below_the_grids_resolution_are_progress(tmp_path: Path) -> None:
    """The shipped OSWorld example types 'groceries' (the frame changes, no grid cell does)
    and saves with ctrl+s (only the title changes: one cell off the state before the typing).
    Neither is a no-op nor a loop: the rules used to call them noop and loop, and cut the
    typing, the save and the ending off the path."""
    example = Path(__file__).resolve().parents[1] / "examples" / "recordings" / "osworld"
    ingest([example / "notes_new_note"], tmp_path / "store")
    label(tmp_path / "store")
    steps = open_store(tmp_path / "store").read("steps", columns=["episode_id", "action_text"])
    [episode] = {r["episode_id"] for r in steps.to_pylist()
                 if r["action_text"] == 'type(text="groceries")'}
    rows = [r for r in labels_of(tmp_path / "store") if r["episode_id"] == episode]
    typing, save, done = rows[4], rows[5], rows[6]
    assert (typing["changed_cells"], typing["noop"]) == (0, False)
    assert "below the grid's resolution" in typing["evidence"]
    assert (save["loop"], save["revisits_step"]) == (False, 4)
    assert "not the same" in save["evidence"]
    assert done["loop"] is False and "stays on its own frame" in done["evidence"]
    assert [r["on_path"] for r in rows[1:]] == [True] * 6


def test_typing_on_a_frame_that_did_not_change_at_all_is_still_a_noop(tmp_path: Path) -> None:
    a = png(lambda d: d.rectangle((100, 100, 500, 130), outline=(0, 0, 0)))
    b = png(lambda d: d.rectangle((600, 300, 900, 700), fill=(0, 0, 200)))
    write_episode(tmp_path / "rec" / "ep", {"a": a, "b": b}, [
        step('type(text="lost")', "a", "a"),        # byte-identical frames: nothing appeared
        step('key(keys=["enter"])', "a", "b"),
        step('key(keys=["escape"])', "b", "a"),     # the exact earlier state: still a loop
        step("done()", "a", None),
    ])
    ingest([tmp_path / "rec"], tmp_path / "store")
    label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["noop"] for r in rows[:3]] == [True, False, False]
    assert rows[2]["loop"] is True and rows[2]["recovery"] is True


CHECKBOX = (100, 100, 116, 116)  # pixels of a 1024x768 frame: one grid cell is 32x24


def _checkbox(extra=None) -> bytes:
    """A white screen with an empty checkbox, plus what ``extra`` draws."""
    def draw(d: ImageDraw.ImageDraw) -> None:
        d.rectangle(CHECKBOX, outline=(0, 0, 0))
        if extra:
            extra(d)
    return png(draw)


def _tick(d: ImageDraw.ImageDraw) -> None:
    d.line((103, 108, 106, 111), fill=(0, 0, 0))
    d.line((106, 111, 112, 105), fill=(0, 0, 0))


def _click_on_checkbox(before: str, after: str) -> dict:
    x0, y0, x1, y1 = CHECKBOX
    target = {"x0": x0 / 1024, "y0": y0 / 768, "x1": x1 / 1024, "y1": y1 / 768,
              "role": "checkbox"}
    return {"action": {"type": "click", "x": 108 / 1024, "y": 108 / 768, "target": target},
            "frame": f"frames/{before}.png", "next_frame": f"frames/{after}.png"}


def test_a_checkbox_tick_inside_the_target_box_is_progress(tmp_path: Path) -> None:
    """A tick of a few pixels moves no grid cell, but the frames differ inside the clicked
    box: the rules used to call it a no-op and cut it off the path."""
    def dot(d: ImageDraw.ImageDraw) -> None:
        _tick(d)
        d.rectangle((600, 400, 602, 402), fill=(0, 0, 0))

    def caret(d: ImageDraw.ImageDraw) -> None:
        dot(d)
        d.line((102, 103, 102, 113), fill=(0, 0, 0))

    frames = {"empty": _checkbox(), "ticked": _checkbox(_tick), "dot": _checkbox(dot),
              "caret": _checkbox(caret)}
    assert changed_cells(grid_of(frames["empty"]), grid_of(frames["ticked"])) == 0
    assert changed_cells(grid_of(frames["empty"]), grid_of(frames["dot"])) == 0
    write_episode(tmp_path / "rec" / "ep", frames, [
        _click_on_checkbox("empty", "ticked"),   # 0: the tick
        _click_on_checkbox("ticked", "dot"),     # 1: the only change is outside the box
        _click_on_checkbox("dot", "caret"),      # 2: a caret-wide column inside the box
        step("done()", "caret", None),
    ])
    ingest([tmp_path / "rec"], tmp_path / "store")
    summary = label(tmp_path / "store")
    rows = labels_of(tmp_path / "store")
    assert [r["changed_cells"] for r in rows[:3]] == [0, 0, 0]
    assert [r["noop"] for r in rows[:3]] == [False, True, True]
    assert "inside the clicked target box" in rows[0]["evidence"]
    assert rows[0]["loop"] is False and rows[0]["on_path"] is True
    assert summary.frames_decoded == 4  # the crops come from the same single decode


def test_box_crops_follow_a_later_batch_that_clicks_on_an_older_frame(tmp_path: Path) -> None:
    """Frames are shared between batches: a new batch whose click targets a box on frames an
    older batch holds has that older batch's crops made again, so its tick is not a no-op."""
    frames = {"empty": _checkbox(), "ticked": _checkbox(_tick)}
    write_episode(tmp_path / "one" / "ep", frames, [step("wait()", "empty", "ticked")])
    ingest([tmp_path / "one"], tmp_path / "store")
    label(tmp_path / "store")
    write_episode(tmp_path / "two" / "ep2", frames, [_click_on_checkbox("empty", "ticked")])
    ingest([tmp_path / "two"], tmp_path / "store")
    label(tmp_path / "store")
    rows = [r for r in labels_of(tmp_path / "store") if r["noop"] is not None]
    assert sorted(r["noop"] for r in rows) == [False, False]


def test_the_label_command_writes_the_same_files_without_importing_pandas(
        sample_store_template: Path, tmp_path: Path) -> None:
    # pyarrow imports pandas on its first conversion unless refused (curate.without_pandas);
    # the command refuses it, in its workers too, and must write what the library writes.
    import shutil

    import pandas  # noqa: F401  (imported here: the library run below may use it)

    from tests.fresh_command import run_without_pandas

    unlabelled = shutil.ignore_patterns("frame_states", "labels", "segments")
    library, command = tmp_path / "library", tmp_path / "command"
    shutil.copytree(sample_store_template, library, ignore=unlabelled)
    shutil.copytree(sample_store_template, command, ignore=unlabelled)
    label(library)
    run_without_pandas("label", str(command), "--workers", "2", "--no-progress")
    for table in ("frame_states", "labels"):
        written = sorted((library / table).glob("*.parquet"))
        assert written
        for path in written:
            assert (command / table / path.name).read_bytes() == path.read_bytes()
