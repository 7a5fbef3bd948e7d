"""TFRecord streaming benchmark (issue 7): peak memory stays flat as the file grows.

    .venv/bin/python benchmarks/bench_tfrecord.py [--sizes 20,200] [--mode groups|episodes|ingest]

Writes AITW-like GZIP TFRecord files (one step per record, raw 640x360x3 pixel arrays, as
the public release stores them, episodes of 8 steps) of each size in MB under
benchmarks/_work/, then reads each in a fresh process through the aitw adapter's streaming
reader and prints wall time, throughput and peak RSS. ``groups`` streams records into episode
groups (decode, CRC check, grouping); ``episodes`` also builds each episode (PNG encoding of
the raw pixels, actions, targets) into a throwaway builder, as ingest would per episode;
``ingest`` runs the real `curate.pipeline.ingest` into a fresh store (episodes are written as the
adapter finishes them, so the file never sits in memory whole).
"""

from __future__ import annotations

import argparse
import gzip
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work" / "tfrecord"
sys.path.insert(0, str(REPO / "tests"))

HEIGHT, WIDTH, STEPS = 360, 640, 8


def _record(episode: int, step: int) -> bytes:
    from tfrecord_writer import bytes_feature, encode_example, float_feature, int64_feature

    # Horizontal bands: cheap to make and to encode, and distinct per step.
    rows = [bytes(((episode * 7 + step * 13 + row) % 256,)) * (WIDTH * 3)
            for row in range(HEIGHT)]
    last = step == STEPS - 1
    return encode_example({
        "episode_id": bytes_feature(f"bench-{episode}"),
        "step_id": int64_feature(step),
        "episode_length": int64_feature(STEPS),
        "goal_info": bytes_feature("Open the settings and turn on dark mode"),
        "image/encoded": bytes_feature(b"".join(rows)),
        "image/height": int64_feature(HEIGHT),
        "image/width": int64_feature(WIDTH),
        "image/channels": int64_feature(3),
        "results/action_type": int64_feature(10 if last else 4),
        "results/yx_touch": float_feature(0.5, 0.25),
        "results/yx_lift": float_feature(0.5 if step % 2 else 0.9, 0.25),
        "image/ui_annotations_positions": float_feature(0.45, 0.2, 0.1, 0.1),
        "image/ui_annotations_text": bytes_feature("Settings"),
        "image/ui_annotations_ui_types": bytes_feature("TEXT"),
    })


def build(size_mb: int) -> Path:
    from tfrecord_writer import frame

    path = WORK / f"aitw_{size_mb}mb.tfrecord.gz"
    if path.is_file():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    written, episode = 0, 0
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1,
                                               mtime=0) as out:
        while written < size_mb * 1_000_000:
            for step in range(STEPS):
                data = frame(_record(episode, step))
                out.write(data)
                written += len(data)
            episode += 1
    return path


def measure_ingest(path: Path) -> None:
    """Child process: ingest the file into a fresh store; print steps, episodes, seconds, RSS."""
    import shutil

    from curate.pipeline.ingest import ingest

    store = path.with_suffix(".store")
    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    summary = ingest([path], store, source_format="aitw")
    seconds = time.perf_counter() - start
    shutil.rmtree(store, ignore_errors=True)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert summary.rejects == 0, summary
    print(summary.steps, summary.episodes, seconds, peak_mb)


def measure(path: Path, mode: str) -> None:
    """Child process: stream the file, print records, episodes, seconds and peak RSS."""
    if mode == "ingest":
        measure_ingest(path)
        return
    from curate.sources.adapters.aitw import build_episode, iter_episode_groups
    from curate.sources.adapters.base import SourceUnit, UnitBuilder

    unit = SourceUnit(path, path.name)
    sink = UnitBuilder(unit, "aitw", "mobile")
    start, records, episodes = time.perf_counter(), 0, 0
    for group in iter_episode_groups(unit, sink):
        records += len(group.records)
        episodes += 1
        if mode == "episodes":
            out = UnitBuilder(unit, "aitw", "mobile")  # one episode's worth, then dropped
            build_episode(unit, out, group)
            assert len(out.episodes[0].steps) == STEPS, out.rejects
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert not sink.rejects, sink.rejects[:3]
    print(records, episodes, seconds, peak_mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20,200", help="uncompressed sizes in MB")
    parser.add_argument("--mode", choices=("groups", "episodes", "ingest"), default="groups")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(Path(args.child), args.mode)
        return
    print(f"mode={args.mode}  (records of {HEIGHT}x{WIDTH}x3 raw pixels, GZIP level 1)")
    print(f"{'size MB':>8}{'gz MB':>8}{'records':>9}{'episodes':>9}{'seconds':>9}"
          f"{'MB/s':>8}{'peak RSS MB':>13}")
    for size in (int(s) for s in args.sizes.split(",")):
        path = build(size)
        result = subprocess.run(
            [sys.executable, __file__, "--mode", args.mode, "--child", str(path)],
            check=True, capture_output=True, text=True)
        records, episodes, seconds, peak = result.stdout.split()
        print(f"{size:>8}{path.stat().st_size / 1e6:>8.1f}{records:>9}{episodes:>9}"
              f"{float(seconds):>9.1f}{size / float(seconds):>8.1f}{float(peak):>13.0f}")


if __name__ == "__main__":
    main()
