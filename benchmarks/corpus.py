"""Build benchmark corpora of OSWorld-style runs from real-size screenshots.

Seed screenshots are the real 1024x768 OSWorld PNGs from ../shared/realdata when present
(else synthetic ones of the same size). Each copy gets a unique PNG text chunk, so every
screenshot in the corpus has distinct bytes (no free deduplication) while keeping the real
size and compressibility. With ``distinct_pixels`` each copy also gets a window of its own
drawn in (3x3 state-grid cells at a place and shade no other step has), re-encoded as
PNG: every screenshot is then a distinct *state* too (the label benchmark needs that; a
tEXt chunk alone leaves the pixels, and so every state, the seed's).
"""

from __future__ import annotations

import io
import json
import random
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
SEED_DIR = (REPO.parent / "shared/realdata/osworld_sec_eval_claude/sec_eval_results/"
            "execute_binary_short_popup/20250226@213928-success-exemplary")
STEPS_PER_RUN = 10


def seed_screenshots() -> list[bytes]:
    seeds = sorted(SEED_DIR.glob("step_*.png")) if SEED_DIR.is_dir() else []
    if seeds:
        return [path.read_bytes() for path in seeds]
    rng = random.Random(0)
    images = []
    for index in range(6):
        image = Image.new("RGB", (1024, 768), (30 + index * 20, 30, 40))
        draw = ImageDraw.Draw(image)
        for _ in range(400):
            x, y = rng.randrange(1000), rng.randrange(760)
            draw.text((x, y), f"item {rng.randrange(10**6)}", fill=(220, 220, 220))
        path = REPO / "benchmarks" / "_work" / f"seed{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        images.append(path.read_bytes())
    return images


def unique_png(seed: bytes, tag: str) -> bytes:
    """The seed PNG with a tEXt chunk naming ``tag`` inserted after IHDR."""
    ihdr_end = 8 + 4 + 4 + 13 + 4
    body = b"tEXt" + b"curate-bench\0" + tag.encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return seed[:ihdr_end] + chunk + seed[ihdr_end:]


def windowed_png(seed: Image.Image, index: int, image_format: str = "PNG") -> bytes:
    """``seed`` with a window drawn at a place and in a shade only step ``index`` has: 3x3
    cells of the 32x32 state grid, black rows above and below a light one, so whatever lies
    under it, at least three cells change (more than a same-state match tolerates). Saved
    at zlib level 1: building the corpus stays quick (label and its baseline decode the
    same bytes)."""
    cell_w, cell_h = seed.width // 32, seed.height // 32
    places = 29 * 29
    column, row = index % 29, (index // 29) % 29
    light = 255 - 60 * (index // places) % 240
    left, top = column * cell_w, row * cell_h
    image = seed.copy()
    draw = ImageDraw.Draw(image)
    draw.rectangle((left, top, left + 3 * cell_w - 1, top + 3 * cell_h - 1), fill=(0, 0, 0))
    draw.rectangle((left, top + cell_h, left + 3 * cell_w - 1, top + 2 * cell_h - 1),
                   fill=(light, light, light))
    buffer = io.BytesIO()
    options = {"compress_level": 1} if image_format == "PNG" else {"quality": 90}
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def build_corpus(root: Path, steps: int, *, distinct_pixels: bool = False) -> Path:
    """Write ``steps`` steps' worth of OSWorld-style runs under ``root`` (reused if present)."""
    marker = root / ".complete"
    if marker.exists():
        return root
    seeds = seed_screenshots()
    images = [Image.open(io.BytesIO(seed)).convert("RGB") for seed in seeds]
    runs = steps // STEPS_PER_RUN
    for run in range(runs):
        folder = root / f"task_{run:05d}" / "20250101@000000"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for step in range(1, STEPS_PER_RUN + 1):
            stamp = f"20250101@00{step:02d}00"
            name = f"step_{step}_{stamp}.png"
            seed = (run + step) % len(seeds)
            index = run * STEPS_PER_RUN + step - 1
            (folder / name).write_bytes(windowed_png(images[seed], index) if distinct_pixels
                                        else unique_png(seeds[seed], f"{run}-{step}"))
            x, y = (37 * step + run) % 1024, (53 * step + run) % 768
            lines.append({"step_num": step, "action_timestamp": stamp,
                          "action": f"import pyautogui; pyautogui.click({x}, {y})",
                          "reward": 0, "done": step == STEPS_PER_RUN, "info": {},
                          "screenshot_file": name})
        (folder / "traj.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        (folder / "result.txt").write_text("1.0\n")
    marker.write_text("")
    return root


def build_boxed_corpus(root: Path, steps: int, *, image_format: str = "PNG") -> Path:
    """The distinct-pixel screenshots of ``build_corpus`` (same seeds and windows; PNG or
    JPEG) as curate-native episodes of ``STEPS_PER_RUN`` steps whose every click carries a
    recorded target box (a 24x24-pixel control at the click), so ``label`` crops the box on
    both frames of each click: every frame has boxes, the worst case for the crops (and, for
    JPEG, every frame is decoded at full resolution instead of draft scale)."""
    marker = root / ".complete"
    if marker.exists():
        return root
    images = [Image.open(io.BytesIO(seed)).convert("RGB") for seed in seed_screenshots()]
    suffix = "png" if image_format == "PNG" else "jpg"
    for run in range(steps // STEPS_PER_RUN):
        folder = root / f"episode_{run:05d}"
        (folder / "frames").mkdir(parents=True, exist_ok=True)
        lines = []
        for step in range(1, STEPS_PER_RUN + 1):
            seed = images[(run + step) % len(images)]
            frame = f"frames/{step}.{suffix}"
            index = run * STEPS_PER_RUN + step - 1
            (folder / frame).write_bytes(windowed_png(seed, index, image_format))
            if step > 1:  # the previous step's click led to this frame
                lines[-1]["next_frame"] = frame
            x, y = (37 * step + run) % 1000, (53 * step + run) % 744
            box = {"x0": x / seed.width, "y0": y / seed.height, "x1": (x + 24) / seed.width,
                   "y1": (y + 24) / seed.height, "role": "button"}
            action = ({"type": "click", "x": (x + 12) / seed.width, "y": (y + 12) / seed.height,
                       "target": box} if step < STEPS_PER_RUN else {"type": "done"})
            lines.append({"action": action, "frame": frame})
        (folder / "episode.json").write_text(json.dumps({"curate_native": 1,
                                                         "terminated": True}))
        (folder / "steps.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    marker.write_text("")
    return root
