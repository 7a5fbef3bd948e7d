"""Video-source benchmark (issue 3): ingesting a recording vs decoding its video once.

    .venv/bin/python benchmarks/bench_video.py [--repeat 3] [--scale 4]

Runs, each in a fresh process, interleaved, medians of --repeat (timed after imports and,
for ingest, after a warm-up ingest of an empty folder; wall and CPU time, the CPU time of
every thread, for a shared machine whose load distorts wall time; peak RSS of the process):
  decode   PyAV decodes every frame of the video once (curate.sources.video.decode_all)
  ingest   curate.pipeline.ingest.ingest of the recording into an empty store
for the AgentNet sample (../shared/realdata/opencua_agentnet_raw) and for a synthetic
recording N times longer made from it (video packets remuxed N times, no re-encoding; events,
element and a11y records repeated with shifted time stamps). Prints the ingest/decode time
ratio (goal <= 1.3, issue 21) and peak memory at 1x and Nx (goal: flat).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work" / "video"
SAMPLE = REPO.parent / "shared" / "realdata" / "opencua_agentnet_raw"
STOP_EVENTS = 4  # the sample's trailing Ctrl+Alt+T (3 presses, 1 release)


def sample_recording() -> Path:
    found = sorted(SAMPLE.rglob("events.jsonl"))
    if not found:
        sys.exit(f"the AgentNet sample is not at {SAMPLE}; nothing to benchmark")
    return found[0].parent


def _video(folder: Path) -> Path:
    return next(p for p in sorted(folder.iterdir()) if p.suffix == ".mp4")


def _remux_repeated(source: Path, target: Path, times: int) -> float:
    """Write ``source``'s video stream ``times`` times in a row (packets copied, not
    re-encoded; the input is demuxed afresh each round because muxing consumes packets)."""
    import av

    with av.open(str(source)) as probe:
        stream = probe.streams.video[0]
        span = max(int(p.pts or 0) + int(p.duration or 0) for p in probe.demux(stream)
                   if p.dts is not None)
        seconds = float(span * stream.time_base)
    with av.open(str(target), "w") as out:
        copy = None
        for round_ in range(times):
            with av.open(str(source)) as inp:
                video = inp.streams.video[0]
                copy = copy or out.add_stream_from_template(video)
                for packet in inp.demux(video):
                    if packet.dts is None or packet.pts is None:
                        continue
                    packet.pts += span * round_
                    packet.dts += span * round_
                    packet.stream = copy
                    out.mux(packet)
    return seconds


def _repeat_jsonl(source: Path, target: Path, times: int, period: float,
                  drop_tail: int = 0) -> None:
    lines = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    body = lines[:len(lines) - drop_tail] if drop_tail else lines
    tail = lines[len(lines) - drop_tail:] if drop_tail else []
    with target.open("w") as out:
        for round_ in range(times):
            chunk = body + (tail if round_ == times - 1 else [])
            for record in chunk:
                shifted = dict(record, time_stamp=record["time_stamp"] + period * round_)
                out.write(json.dumps(shifted) + "\n")


def longer_recording(times: int) -> Path:
    """The sample made ``times`` times longer, in benchmarks/_work (rebuilt when absent)."""
    source = sample_recording()
    folder = WORK / f"agentnet_x{times}"
    if (folder / "events.jsonl").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    period = _remux_repeated(_video(source), folder / "screen recording.mp4", times)
    _repeat_jsonl(source / "events.jsonl", folder / "events.jsonl", times, period, STOP_EVENTS)
    for name in ("element.jsonl", "a11y.jsonl", "top_window.jsonl"):
        _repeat_jsonl(source / name, folder / name, times, period)
    for name in ("metadata.json", "task_name.json"):
        shutil.copy(source / name, folder / name)
    return folder


def child(kind: str, folder: str) -> None:
    """Run one contender in this process and print wall seconds, CPU seconds (every thread
    of this process and of any child it waited for) and peak RSS (MB)."""
    from curate.pipeline.ingest import ingest
    from curate.sources.video import decode_all

    path = Path(folder)
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "ingest":
            # Warm-up: ingest an empty folder, so the modules ingest imports lazily (the
            # adapters, pandas behind the store reader) are not counted as this recording's.
            (Path(tmp) / "empty").mkdir()
            ingest([Path(tmp) / "empty"], Path(tmp) / "warm")
        cpu = _cpu_seconds()
        start = time.perf_counter()
        if kind == "decode":
            decode_all(_video(path))
        else:
            ingest([path], Path(tmp) / "store")
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:.4f} {cpu:.4f} {peak:.1f}")


def _cpu_seconds() -> float:
    mine, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                          resource.RUSAGE_CHILDREN))
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


Measured = tuple[float, float, float]  # wall seconds, CPU seconds, peak RSS MB


def run_once(kind: str, folder: Path) -> Measured:
    """One contender in a fresh process."""
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(folder)],
                         check=True, capture_output=True, text=True)
    seconds, cpu, peak = out.stdout.split()
    return float(seconds), float(cpu), float(peak)


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    rows = []
    for label, folder in (("1x", sample_recording()),
                          (f"{args.scale}x", longer_recording(args.scale))):
        # Interleaved rounds: a busy minute of the shared machine hits both contenders.
        runs: dict[str, list[Measured]] = {"decode": [], "ingest": []}
        for _ in range(args.repeat):
            for kind, measured in runs.items():
                measured.append(run_once(kind, folder))
        decode, ingest = ((_median([m[0] for m in runs[kind]]),
                           _median([m[1] for m in runs[kind]]), max(m[2] for m in runs[kind]))
                          for kind in ("decode", "ingest"))
        rows.append((label, decode, ingest))
        print(f"{label:>4}  decode {decode[0]:7.2f} s ({decode[1]:6.2f} s CPU) {decode[2]:6.1f} MB"
              f"   ingest {ingest[0]:7.2f} s ({ingest[1]:6.2f} s CPU) {ingest[2]:6.1f} MB   "
              f"ingest/decode {ingest[0] / decode[0]:.2f}x wall, "
              f"{ingest[1] / decode[1]:.2f}x CPU (goal <= 1.3)", flush=True)
    (_, _, small), (label, _, large) = rows
    print(f"peak memory {label} / 1x: {large[2] / small[2]:.2f} (goal: flat, ~1.0; "
          f"{large[2] - small[2]:+.1f} MB)")


if __name__ == "__main__":
    main()
