"""What an adapter is, and the builders it fills.

An adapter reads one *source unit* (an episode folder or a log file) and describes what it
found through a :class:`UnitBuilder`: episodes with their steps and frames, and rejects for
everything it could not use. It never writes to the store and never prints; the ingest
driver turns a finished builder into Arrow tables. A unit that cannot be read at all raises
:class:`curate.errors.SourceError`, which becomes an episode-level reject.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from curate.actions import Action, canonical_json, format_action_text, normalise
from curate.errors import SourceError
from curate.sources.catalogue_shapes import Shape
from curate.store.frames import Frame, ImageBytes, encode_array_png, probe_frame

PLATFORMS = frozenset({"desktop", "web", "mobile", "tool"})
OUTCOMES = frozenset({"success", "fail", "unknown"})
CLOCKS = frozenset({"unix", "relative", "none"})

# Reasons a state frame is absent (steps.frame_missing / next_frame_missing).
INITIAL_STATE_NOT_RECORDED = "initial_state_not_recorded"
NO_SCREENSHOTS = "no_screenshots"
FILE_MISSING = "file_missing"
FILE_CORRUPT = "file_corrupt"
TEXT_ONLY = "text_only"
# A state between two actions the source recorded as one step (one screenshot for several).
INTERMEDIATE_NOT_RECORDED = "intermediate_not_recorded"
# No screen after the last step: the source saves only the state before each action.
FINAL_STATE_NOT_RECORDED = "final_state_not_recorded"
# The source has no record for this state (ids skip) and no unreadable record explains it.
RECORD_MISSING = "record_missing"
# The moment lies before the screen video starts or after it ends.
NOT_IN_VIDEO = "not_in_video"
# The source's record that would hold the state is itself unreadable (and rejected).
RECORD_UNREADABLE = "record_unreadable"

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
# The frame-level report of an image among a unit's screenshots that no step reads.
UNREFERENCED_IMAGE = "image not referenced by any step"


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file read in place on the Hub (curate.sources.hub), never downloaded whole."""

    path: str  # the Hub filesystem's path: datasets/ORG/NAME/...
    size: int
    sha256: str | None  # what the Hub lists for an LFS file: the content's sha256
    blob_id: str | None  # the git blob id, when no sha256 is listed
    limit: int | None = None  # at most this many episodes (ingest --limit)


@dataclass(frozen=True, slots=True)
class SourceUnit:
    """One input an adapter reads: an episode folder or a log file."""

    path: Path
    source_path: str  # relative, posix; the name the store uses
    # Set for a file streamed from the Hub: ``path`` is then where a local copy would be
    # (it does not exist), so names and ids are those of a copy; read it with open_unit.
    remote: RemoteFile | None = None
    # ``ingest --tasks DIR``: where the benchmark's task configs live when they are not
    # beside the recordings (OSWorld's evaluation_examples); adapters that look up a task
    # search it first.
    tasks: Path | None = None

    def relative(self, file: Path) -> str:
        """A file inside the unit, named the way rejects and source positions name it."""
        try:
            inner = file.relative_to(self.path).as_posix()
        except ValueError:
            return file.name
        if self.remote is not None or self.path.is_file():
            return self.source_path
        return f"{self.source_path}/{inner}"


@dataclass(slots=True)
class RejectRecord:
    file: str
    position: str
    level: str
    reason: str
    hint: str
    episode_id: str | None = None


@dataclass(slots=True)
class StepRecord:
    action: Action
    source_position: str
    frame_id: str | None = None
    next_frame_id: str | None = None
    frame_missing: str | None = None
    next_frame_missing: str | None = None
    timestamp: float | None = None
    timestamp_end: float | None = None
    thought: str | None = None
    observation: str | None = None
    # The model that decided this step, when the source names one per call (steps.model).
    model: str | None = None
    reward: float | None = None
    warnings: list[str] = field(default_factory=list)
    step_instruction: str | None = None
    # The screen's recorded elements (schemas/element.yaml dicts, boxes in [0,1] of s_t).
    elements: list[dict[str, Any]] | None = None


def episode_id_for(source_format: str, source_id: str) -> str:
    """Stable episode id: same format and source id, same id, wherever the store is."""
    return hashlib.sha256(f"{source_format}:{source_id}".encode()).hexdigest()[:32]


class EpisodeBuilder:
    """Collects one episode's metadata, steps and frames."""

    def __init__(self, unit: UnitBuilder, source_id: str) -> None:
        self._unit = unit
        self.source_id = source_id
        self.episode_id = episode_id_for(unit.source_format, source_id)
        self.instruction: str | None = None
        self.platform: str = unit.default_platform
        self.outcome: str = "unknown"
        self.score: float | None = None
        self.terminated: bool = False
        self.truncated: bool = False
        self.clock: str = "none"
        self.metadata: dict[str, Any] = {}
        self.steps: list[StepRecord] = []
        self.frames: dict[str, Frame] = {}

    def add_frame(self, data: ImageBytes, *, file: str, position: str = "",
                  digest: str | None = None) -> Frame | None:
        """Validate and keep a screenshot; an unusable one becomes a frame-level reject.

        ``digest`` is the bytes' sha256 when the caller already knows it."""
        try:
            frame = probe_frame(data, digest=digest)
        except SourceError as error:
            self.reject(file=file, position=position, level="frame", reason=error.reason,
                        hint=error.hint)
            return None
        self.frames.setdefault(frame.frame_id, frame)
        return frame

    def add_frame_array(self, value: object, *, file: str, position: str = "") -> Frame | None:
        """Keep a screenshot given as a pixel array (encoded once as PNG, deterministically);
        encoded bytes are passed through as recorded."""
        if isinstance(value, bytes | bytearray):
            return self.add_frame(bytes(value), file=file, position=position)
        try:
            data = encode_array_png(value)
        except SourceError as error:
            self.reject(file=file, position=position, level="frame", reason=error.reason,
                        hint=error.hint)
            return None
        return self.add_frame(data, file=file, position=position)

    def add_frame_file(self, path: Path, *, name: str | None = None) -> Frame | None:
        """Read and keep a screenshot file; a missing or unusable file becomes a reject.
        ``name`` is how rejects call the file (default: its path inside the unit)."""
        name = name or self._unit.unit.relative(path)
        self.names_image(path)
        try:
            digest = cached_digest(path)
            data = read_input(path)
        except OSError as error:
            self.reject(file=name, position="", level="frame",
                        reason=f"cannot read image: {error.strerror}",
                        hint="restore the file or remove its reference")
            return None
        return self.add_frame(data, file=name, digest=digest)

    def names_image(self, path: Path) -> None:
        """A step names this image file (read or, marked broken by the source, not): it is
        not reported as unreferenced (Adapter.image_files)."""
        self._unit.images_read.add(os.path.abspath(path))

    def add_step(self, action: Action, *, source_position: str, **values: Any) -> StepRecord:
        step = StepRecord(action=action, source_position=source_position, **values)
        self.steps.append(step)
        return step

    def reject(self, *, file: str, position: str, reason: str, hint: str,
               level: str = "step") -> None:
        self._unit.reject(file=file, position=position, reason=reason, hint=hint, level=level,
                          episode_id=self.episode_id)

    def screen_size(self) -> tuple[int | None, int | None]:
        """Size of the episode's first frame (in step order), or (None, None)."""
        for step in self.steps:
            for frame_id in (step.frame_id, step.next_frame_id):
                if frame_id is not None:
                    frame = self.frames[frame_id]
                    return frame.width, frame.height
        return None, None

    def ending(self) -> tuple[bool, bool]:
        """(terminated, truncated) as stored: exactly one is true for an episode with steps.
        A cut-off episode (truncated: a step limit, a crash, a cut file) did not end by
        itself even when its last step is an answer; one not known to have ended by itself
        (no ending action, no verdict of the environment: a recording that just stops)
        counts as cut off, as segments and exports already treat it."""
        if not self.steps:
            return self.terminated and not self.truncated, self.truncated
        terminated = self.terminated and not self.truncated
        return terminated, not terminated

    def episode_row(self, adapter_version: str, fingerprint: str) -> dict[str, Any]:
        width, height = self.screen_size()
        terminated, truncated = self.ending()
        return {
            "episode_id": self.episode_id,
            "source_format": self._unit.source_format,
            "source_path": self._unit.unit.source_path,
            "source_id": self.source_id,
            "instruction": self.instruction,
            "platform": self.platform,
            "screen_width": width,
            "screen_height": height,
            "outcome": self.outcome,
            "score": self.score,
            "terminated": terminated,
            "truncated": truncated,
            "step_count": len(self.steps),
            "clock": self.clock,
            "adapter_version": adapter_version,
            "input_fingerprint": fingerprint,
            "metadata": canonical_json(self.metadata) if self.metadata else None,
        }

    def step_rows(self) -> list[dict[str, Any]]:
        rows = []
        for index, step in enumerate(self.steps):
            rows.append({
                "episode_id": self.episode_id,
                "step_index": index,
                "timestamp": step.timestamp,
                "timestamp_end": step.timestamp_end,
                "action": step.action.to_row(),
                "action_text": format_action_text(step.action),
                "step_instruction": step.step_instruction,
                "thought": step.thought,
                "observation": step.observation,
                "model": step.model,
                "frame_id": step.frame_id,
                "next_frame_id": step.next_frame_id,
                "frame_missing": step.frame_missing if step.frame_id is None else None,
                "next_frame_missing": (
                    step.next_frame_missing if step.next_frame_id is None else None
                ),
                "source_position": step.source_position,
                "reward": step.reward,
                "elements": step.elements,
                "warnings": list(step.warnings),
            })
        return rows

    def check(self) -> None:
        """Catch adapter bugs early: values outside the declared vocabularies."""
        if self.platform not in PLATFORMS:
            raise ValueError(f"platform {self.platform!r} not in {sorted(PLATFORMS)}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} not in {sorted(OUTCOMES)}")
        if self.clock not in CLOCKS:
            raise ValueError(f"clock {self.clock!r} not in {sorted(CLOCKS)}")
        for step in self.steps:
            for frame_id in (step.frame_id, step.next_frame_id):
                if frame_id is not None and frame_id not in self.frames:
                    raise ValueError(f"step refers to frame {frame_id} it never added")


class UnitBuilder:
    """Everything one source unit yields: episodes and rejects."""

    def __init__(self, unit: SourceUnit, source_format: str, default_platform: str) -> None:
        self.unit = unit
        self.source_format = source_format
        self.default_platform = default_platform
        self.episodes: list[EpisodeBuilder] = []
        self.rejects: list[RejectRecord] = []
        # Set by a streaming ingest: finished episodes go there at once instead of piling up.
        self.sink: Callable[[EpisodeBuilder], None] | None = None
        # Absolute paths of the image files steps asked for (read or not), so images of the
        # unit that no step names can be reported (Adapter.image_files).
        self.images_read: set[str] = set()

    def finish(self, episode: EpisodeBuilder) -> None:
        """The adapter is done with ``episode``: a streaming ingest writes it out now, so a
        file of many episodes never holds them all in memory."""
        if self.sink is not None and episode in self.episodes:
            self.episodes.remove(episode)
            self.sink(episode)

    def episode(self, inner_id: str | None = None) -> EpisodeBuilder:
        """Start an episode; ``inner_id`` names it when one unit holds several."""
        source_id = self.unit.source_path if inner_id is None else (
            f"{self.unit.source_path}#{inner_id}"
        )
        builder = EpisodeBuilder(self, source_id)
        self.episodes.append(builder)
        return builder

    def reject(self, *, file: str, position: str, reason: str, hint: str, level: str = "step",
               episode_id: str | None = None) -> None:
        self.rejects.append(RejectRecord(file, position, level, reason, hint, episode_id))

    def drop_episode(self, episode: EpisodeBuilder, *, file: str, position: str, reason: str,
                     hint: str) -> None:
        """Reject a whole episode that turned out unusable after it was started."""
        self.episodes.remove(episode)
        self.reject(file=file, position=position, reason=reason, hint=hint, level="episode",
                    episode_id=episode.episode_id)


class Adapter(ABC):
    """One source format. Subclasses register themselves with ``@register``."""

    name: ClassVar[str]
    version: ClassVar[str]
    platform: ClassVar[str]
    description: ClassVar[str]
    # Lower runs earlier in detection, so specific formats win over generic ones.
    priority: ClassVar[int] = 50
    # True for formats whose one file holds many episodes (TFRecord shards): the adapter
    # calls ``out.finish(episode)`` and ingest runs it in-process, writing each episode as
    # it is finished.
    streams: ClassVar[bool] = False
    # What the format's files look like (keys, file names), for the "nearest format" hint
    # of files no adapter claims; built-in formats declare theirs in
    # curate.sources.catalogue_shapes, plugins here.
    expects: ClassVar[tuple[Shape, ...]] = ()

    @abstractmethod
    def claims(self, path: Path) -> bool:
        """Cheaply decide whether ``path`` (a folder or a file) is a unit of this format."""

    @abstractmethod
    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        """Read the unit into ``out``; raise SourceError when nothing of it is usable."""

    def streams_unit(self, unit: SourceUnit) -> bool:
        """Whether this unit is read in the driver, its episodes written as they finish."""
        return self.streams

    def reads_remote(self, path: str) -> bool:
        """Whether a Hub file with this name might be read in place (``claims_remote``)."""
        return False

    def claims_remote(self, handle: IO[bytes]) -> bool:
        """Like ``claims``, for a Hub file given as a seekable handle that fetches ranges."""
        return False

    def auxiliary(self, path: Path) -> str | None:
        """For a file no adapter claims: what it is, when it is a file of this format that
        holds no episode (a benchmark's task config, a query list, a study summary). Such
        files are not reported as unrecognised. Cheap, like ``claims``; None by default."""
        return None

    def image_files(self, unit: SourceUnit) -> list[Path]:
        """The screenshots that belong to this unit's steps (a run folder's step_N.png, a
        DroidBot states/ folder). After reading, each one no step asked for is reported as
        a frame-level reject (UNREFERENCED_IMAGE): nothing is lost, but the user learns that
        the records do not name it. Empty by default, and for formats whose image folders
        are shared by many units or are a stream sampled between actions."""
        return []

    def input_files(self, unit: SourceUnit) -> list[Path]:
        """The files whose bytes make the unit's fingerprint (all files below a folder)."""
        if unit.path.is_file():
            return [unit.path]
        return sorted(p for p in unit.path.rglob("*") if p.is_file())


# sha256 of files this process fingerprinted, keyed by path and (size, mtime): a screenshot's
# frame id is the sha256 of its bytes, so add_frame_file reuses it instead of hashing twice.
_FILE_DIGESTS: dict[Path, tuple[tuple[int, int], str]] = {}
_DIGEST_CACHE_LIMIT = 4096


def _stat_key(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


# Bytes of small files read while fingerprinting, kept for the adapter that reads the unit
# right after, so a screenshot is read from disk once. Bounded; dropped after each unit.
_FILE_BYTES: dict[Path, tuple[tuple[int, int], bytes]] = {}
_KEEP_FILE_BYTES = 4 << 20
_KEEP_TOTAL_BYTES = 256 << 20
_kept_total = 0


def images_in(folder: Path) -> list[Path]:
    """The image files directly in a folder, by name; none when it is not a folder."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    return [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


def file_digest(path: Path) -> str:
    """sha256 hex digest of a file's bytes, remembered for this process."""
    global _kept_total
    key = _stat_key(path)
    cached = _FILE_DIGESTS.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    if key[0] <= _KEEP_FILE_BYTES and _kept_total + key[0] <= _KEEP_TOTAL_BYTES:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        _FILE_BYTES[path] = (key, data)
        _kept_total += len(data)
    else:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    if len(_FILE_DIGESTS) >= _DIGEST_CACHE_LIMIT:
        _FILE_DIGESTS.clear()
    _FILE_DIGESTS[path] = (key, digest)
    return digest


def read_input(path: Path) -> bytes:
    """A unit's file, from the fingerprinting pass when it kept the bytes, else from disk."""
    cached = _FILE_BYTES.pop(path, None)
    if cached is not None:
        try:
            if cached[0] == _stat_key(path):
                return cached[1]
        except OSError:
            pass
    return path.read_bytes()


def forget_inputs() -> None:
    """Drop the bytes kept by fingerprinting (called after each unit is read)."""
    global _kept_total
    _FILE_BYTES.clear()
    _kept_total = 0


def cached_digest(path: Path) -> str | None:
    """The digest file_digest computed for this exact file version, if any."""
    cached = _FILE_DIGESTS.get(path)
    if cached is None:
        return None
    try:
        return cached[1] if cached[0] == _stat_key(path) else None
    except OSError:
        return None


def fingerprint_files(root: Path, files: Iterable[Path]) -> str:
    """sha256 over each file's name (relative to ``root``) and content digest, in name order."""
    digest = hashlib.sha256()
    for path in sorted(files):
        # Files outside the unit (a shared task config) are named relative to it, so the
        # fingerprint still does not depend on where the recordings live.
        name = path.name if path == root else Path(os.path.relpath(path, root)).as_posix()
        digest.update(f"{name}\0{file_digest(path)}\n".encode())
    return digest.hexdigest()


def unit_fingerprint(unit: SourceUnit, files: Iterable[Path]) -> str:
    """The fingerprint the store records for a unit: its files' (fingerprint_files), or for
    a file streamed from the Hub the same value made from the digest the Hub lists."""
    if unit.remote is not None:
        from curate.sources.hub import remote_fingerprint

        return remote_fingerprint(unit.remote, unit.path.name)
    return fingerprint_files(unit.path, files)


def open_unit(unit: SourceUnit, *, sequential: bool = False) -> IO[bytes]:
    """The unit's file as a binary handle: local, or ranges fetched from the Hub (read
    ahead when the reader goes through it once, ``sequential``)."""
    if unit.remote is not None:
        from curate.sources.hub import open_remote

        return open_remote(unit.remote, sequential=sequential)
    return unit.path.open("rb")


# How much of a file `claims` reads to recognise its format.
SNIFF_BYTES = 64 * 1024


def text_head(path: Path) -> str | None:
    """The first SNIFF_BYTES of a file as text (bad UTF-8 replaced), or None if unreadable."""
    try:
        with path.open("rb") as handle:
            return handle.read(SNIFF_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None


def load_json(path: Path, unit: SourceUnit) -> Any:
    """Parse a whole JSON file, turning failures into a SourceError that names the position."""
    name = unit.relative(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(f"cannot read {path.name}: {error}", file=name,
                          hint="check the file's permissions and encoding (UTF-8)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(f"invalid JSON: {error.msg}", file=name,
                          position=f"line {error.lineno} column {error.colno}",
                          hint="the file is truncated or not JSON; re-export it") from None


# The longest JSON line a recording format is read with: the longest real line seen is
# 150 KB (an AgentNet element dump); a longer one is a dump or corrupt, and is never held.
MAX_JSON_LINE = 8 << 20


def _bounded_lines(handle: IO[bytes]) -> Iterator[bytes | None]:
    """Each line of the file, or None for a line longer than MAX_JSON_LINE (skipped in
    chunks, so its length never sits in memory)."""
    while True:
        raw = handle.readline(MAX_JSON_LINE + 1)
        if not raw:
            return
        if len(raw) > MAX_JSON_LINE and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield raw


def iter_jsonl(path: Path, unit: SourceUnit, out: UnitBuilder | EpisodeBuilder
               ) -> Iterable[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each good line; bad lines become step rejects."""
    name = unit.relative(path)
    with (open_unit(unit, sequential=True) if path == unit.path else path.open("rb")) as handle:
        for number, raw in enumerate(_bounded_lines(handle), start=1):
            if raw is None:
                out.reject(file=name, position=f"line {number}",
                           reason=f"line longer than {MAX_JSON_LINE >> 20} MB; not parsed",
                           hint="one JSON object per line: this line is a dump or the "
                                "newlines were lost")
                continue
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                out.reject(file=name, position=f"line {number}",
                           reason=f"invalid JSON line: {error}",
                           hint="the line is truncated or corrupt; fix or remove it")
                continue
            if not isinstance(value, dict):
                out.reject(file=name, position=f"line {number}",
                           reason=f"expected a JSON object, got {type(value).__name__}",
                           hint="each line must be one JSON object")
                continue
            yield number, value


def scroll_between(start: tuple[float, float], end: tuple[float, float]) -> tuple[str, float]:
    """(direction, amount in px) of a scroll from one page position to another: sources that
    record positions, not deltas (rrweb, WebLINX), along the axis that moved most."""
    dx, dy = end[0] - start[0], end[1] - start[1]
    if abs(dy) >= abs(dx):
        return ("down" if dy >= 0 else "up"), abs(dy)
    return ("right" if dx >= 0 else "left"), abs(dx)


def point_in_frame(px: float, py: float, *, width: float, height: float,
                   scale: float = 1.0) -> tuple[float, float, list[str]]:
    """Normalise a source point to [0, 1] of the frame, with a warning when it falls outside.

    ``width``/``height`` are the extent of the source's coordinate space (e.g. the screen in
    pixels); ``scale`` only travels as provenance. A point outside is kept, not clamped, so the
    mismatch stays visible to whoever reads the warning.
    """
    x, y = normalise(px, width), normalise(py, height)
    warnings = []
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        warnings.append(
            f"point ({px:g}, {py:g}) lies outside the {width:g}x{height:g} coordinate space"
        )
    return x, y, warnings
