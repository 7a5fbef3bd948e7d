"""Hostile input: bombs, hostile zip entries, symlink loops, huge lines, undecodable names and
unreadable files each become a counted reject with a reason, the rest of the folder is still
ingested, and nothing bad reaches a later stage."""

from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from pathlib import Path

from conftest import NativeFactory

from curate.pipeline.build import build
from curate.pipeline.ingest import ingest
from curate.pipeline.label import label
from curate.store.core import open_store
from curate.store.frames import MAX_FRAME_PIXELS


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A complete, well-formed PNG of a few hundred bytes whose header claims width x height
    pixels: decoding it would allocate width*height*3 bytes."""
    rows = zlib.compress(b"\x00" * 1024, 9)  # the start of an all-black image
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", rows) + _chunk(b"IEND", b""))


def _rejects(store: Path) -> list[dict[str, object]]:
    return open_store(store).read("rejects").to_pylist()


def test_a_decompression_bomb_png_is_rejected_at_ingest_and_label_and_build_still_work(
        native_episode: NativeFactory, tmp_path: Path) -> None:
    folder = native_episode("bomb")
    (folder / "frames" / "1.png").write_bytes(bomb_png())
    native_episode("fine")
    assert MAX_FRAME_PIXELS < 50_000 * 50_000

    store = tmp_path / "store"
    summary = ingest([tmp_path / "recordings"], store)

    assert summary.episodes == 2 and summary.steps == 4
    bombs = [r for r in _rejects(store) if "decompression bomb" in str(r["reason"])]
    assert len(bombs) == 1 and bombs[0]["level"] == "frame"
    assert "50000x50000" in str(bombs[0]["reason"])
    label(store)  # decodes every frame the store holds: the bomb is not one of them
    build([tmp_path / "recordings"], tmp_path / "dist", recipe="quick", workers=1)
    assert (tmp_path / "dist" / "README.md").exists()


def _reasons(store: Path) -> dict[str, str]:
    return {str(r["file"]): str(r["reason"]) for r in _rejects(store)}


def test_a_symlink_loop_is_one_reject_and_the_siblings_are_ingested(
        native_episode: NativeFactory, tmp_path: Path) -> None:
    native_episode("a")
    native_episode("b")
    nested = tmp_path / "recordings" / "more" / "deeper"
    nested.mkdir(parents=True)
    (nested / "back_up").symlink_to(tmp_path / "recordings", target_is_directory=True)
    (nested / "self").symlink_to(nested / "self")

    summary = ingest([tmp_path / "recordings"], tmp_path / "store")

    assert summary.episodes == 2
    reasons = _reasons(tmp_path / "store")
    assert "symlink loop" in reasons["recordings/more/deeper/back_up"]
    assert "looping symlink" in reasons["recordings/more/deeper/self"]


def test_a_file_name_that_is_not_utf8_is_a_reject_named_with_escapes(
        native_episode: NativeFactory, tmp_path: Path) -> None:
    native_episode("good")
    bad = os.fsencode(tmp_path / "recordings") + b"/caf\xe9-log.jsonl"
    with open(bad, "wb") as handle:
        handle.write(b'{"action": "done()"}\n')

    summary = ingest([tmp_path / "recordings"], tmp_path / "store")

    assert summary.episodes == 1 and summary.rejects == 1
    reasons = _reasons(tmp_path / "store")
    assert "not valid UTF-8" in reasons["recordings/caf\\xe9-log.jsonl"]


def test_a_rerun_over_the_same_bad_entry_writes_nothing(native_episode: NativeFactory,
                                                         tmp_path: Path) -> None:
    native_episode("good")
    (tmp_path / "recordings" / "loop").symlink_to(tmp_path / "recordings" / "loop")
    ingest([tmp_path / "recordings"], tmp_path / "store")
    before = sorted(p.read_bytes() for p in (tmp_path / "store").rglob("*.parquet"))
    ingest([tmp_path / "recordings"], tmp_path / "store")
    after = sorted(p.read_bytes() for p in (tmp_path / "store").rglob("*.parquet"))
    assert len(_rejects(tmp_path / "store")) == 1 and before == after


def _ingest_unprivileged(sources: Path, store: Path) -> None:
    """Run ingest in a process the permission bits apply to: root reads everything, so as
    root the process drops the capabilities that bypass them (util-linux setpriv)."""
    import shutil
    import subprocess
    import sys

    code = "import sys; from curate.pipeline.ingest import ingest; ingest([sys.argv[1]], sys.argv[2])"  # noqa: E501 (a path the layout move made longer)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "as root, the test needs util-linux's setpriv to drop CAP_DAC_OVERRIDE"
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    result = subprocess.run([*prefix, sys.executable, "-c", code, str(sources), str(store)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert result.returncode == 0, result.stderr


def test_unreadable_files_and_folders_are_rejects_and_the_readable_siblings_are_kept(
        native_episode: NativeFactory, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    native_episode("readable")
    native_episode("locked", root=recordings / "private")
    (recordings / "secret.jsonl").write_text('{"action": "done()"}\n')
    (recordings / "private").chmod(0o000)
    (recordings / "secret.jsonl").chmod(0o000)
    try:
        _ingest_unprivileged(recordings, tmp_path / "store")
    finally:
        (recordings / "private").chmod(0o755)
    episodes = open_store(tmp_path / "store").read("episodes").column("source_path")
    assert episodes.to_pylist() == ["recordings/readable"]
    reasons = _reasons(tmp_path / "store")
    assert "Permission denied" in reasons["recordings/private"]
    assert "Permission denied" in reasons["recordings/secret.jsonl"]


PLAYWRIGHT_FIXTURE = Path(__file__).parent / "fixtures" / "playwright" / "form-v8.zip"
BOMB_BYTES = 1 << 30  # the test's bomb; the 4 GiB one behaves the same, 4x slower


def _trace_with_bombed_frame(path: Path, frame: str, expanded: int) -> None:
    """The fixture trace with one screencast frame replaced by `expanded` zero bytes,
    deflated (about 1 MB on disk per GiB)."""
    with zipfile.ZipFile(PLAYWRIGHT_FIXTURE) as source, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as bombed:
        for info in source.infolist():
            if info.filename != frame:
                bombed.writestr(info, source.read(info))
                continue
            with bombed.open(frame, "w", force_zip64=True) as handle:
                chunk = b"\0" * (16 << 20)
                for _ in range(expanded // len(chunk)):
                    handle.write(chunk)


def _ingest_measured(sources: Path, store: Path) -> int:
    """Ingest in a fresh process; its peak resident memory in MB."""
    import subprocess
    import sys

    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork and exec, so the child would
    # report the (large) test process's peak as its own.
    code = ("import sys; from curate.pipeline.ingest import ingest; "
            "ingest([sys.argv[1]], sys.argv[2]); "
            "print(next(int(l.split()[1]) // 1024 for l in open('/proc/self/status') "
            "if l.startswith('VmHWM:')))")
    result = subprocess.run([sys.executable, "-c", code, str(sources), str(store)],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_a_trace_zip_whose_frame_expands_to_a_gigabyte_is_a_frame_reject_in_flat_memory(
        tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    frame = "resources/page@0123456789abcdef-2.jpeg"
    _trace_with_bombed_frame(recordings / "trace.zip", frame, BOMB_BYTES)
    assert (recordings / "trace.zip").stat().st_size < 8 << 20

    peak_mb = _ingest_measured(recordings, tmp_path / "store")

    assert peak_mb < 600, f"peak memory {peak_mb} MB: the frame was decompressed"
    rejects = [r for r in _rejects(tmp_path / "store") if r["position"] == frame]
    assert len(rejects) == 1 and "zip bomb" in str(rejects[0]["reason"])
    steps = open_store(tmp_path / "store").read("steps")
    assert steps.num_rows >= 3  # the trace's other steps and frames are kept


def test_zip_entries_with_dot_dot_or_absolute_names_are_rejected_and_not_read(
        tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    with zipfile.ZipFile(PLAYWRIGHT_FIXTURE) as source, \
            zipfile.ZipFile(recordings / "trace.zip", "w") as crafted:
        for info in source.infolist():
            crafted.writestr(info, source.read(info))
        crafted.writestr("../../etc/evil.trace", b'{"type": "context-options"}\n')
        crafted.writestr("/abs/path.jpeg", b"\xff\xd8\xff")

    ingest([recordings], tmp_path / "store")

    reasons = {str(r["position"]): str(r["reason"]) for r in _rejects(tmp_path / "store")}
    assert "absolute path or '..'" in reasons["../../etc/evil.trace"]
    assert "absolute path or '..'" in reasons["/abs/path.jpeg"]
    assert open_store(tmp_path / "store").read("episodes").num_rows == 1


def test_a_10_mb_json_line_is_a_step_reject_and_the_other_lines_are_read(
        native_episode: NativeFactory, tmp_path: Path) -> None:
    folder = native_episode("huge_line")
    steps = (folder / "steps.jsonl").read_text().splitlines()
    huge = json.dumps({"action": {"type": "type", "text": "x" * (10 << 20)}})
    (folder / "steps.jsonl").write_text("\n".join([steps[0], huge, steps[1]]) + "\n")

    summary = ingest([tmp_path / "recordings"], tmp_path / "store")

    assert summary.steps == 2
    rejects = _rejects(tmp_path / "store")
    assert [r["position"] for r in rejects] == ["line 2"]
    assert "longer than 8 MB" in str(rejects[0]["reason"])
