"""curate's own recording format (documented in schemas/native_format.md).

A folder with ``episode.json`` (``curate_native: 1``), ``steps.jsonl`` and ``frames/``.
Pixel coordinates (px/py) are normalised by the declared screen size or by the s_t frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from curate.actions import (
    SEMANTIC_FIELDS,
    Action,
    Target,
    canonical_json,
    normalise,
    parse_action_text,
)
from curate.errors import ActionParseError, SourceError
from curate.sources.adapters import register
from curate.sources.adapters.base import (
    FILE_CORRUPT,
    FILE_MISSING,
    Adapter,
    EpisodeBuilder,
    SourceUnit,
    UnitBuilder,
    iter_jsonl,
    load_json,
    point_in_frame,
)
from curate.sources.values import number_or_none
from curate.store.frames import Frame

META_FILE = "episode.json"
STEPS_FILE = "steps.jsonl"
_PROVENANCE = ("px", "py", "px2", "py2", "coord_space", "screen_width", "screen_height",
               "scale", "raw")


@register
class NativeAdapter(Adapter):
    name: ClassVar[str] = "native"
    version: ClassVar[str] = "1"
    platform: ClassVar[str] = "desktop"
    description: ClassVar[str] = "curate's native format: episode.json + steps.jsonl + frames/"
    priority: ClassVar[int] = 10

    def claims(self, path: Path) -> bool:
        return path.is_dir() and (path / META_FILE).is_file()

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        meta = load_json(unit.path / META_FILE, unit)
        if not isinstance(meta, dict) or meta.get("curate_native") != 1:
            raise SourceError(
                "episode.json must be an object with \"curate_native\": 1",
                file=unit.relative(unit.path / META_FILE),
                hint="see schemas/native_format.md",
            )
        steps_path = unit.path / STEPS_FILE
        if not steps_path.is_file():
            raise SourceError(f"{STEPS_FILE} is missing", file=unit.source_path,
                              hint="write one JSON object per action to steps.jsonl")
        episode = out.episode()
        _apply_meta(episode, meta)
        screen = meta.get("screen") or {}
        cache: dict[str, Frame | None] = {}
        for number, line in iter_jsonl(steps_path, unit, episode):
            position = f"{STEPS_FILE} line {number}"
            try:
                _read_step(unit, episode, line, position, screen, cache)
            except (ActionParseError, ValueError, TypeError) as error:
                episode.reject(file=unit.relative(steps_path), position=f"line {number}",
                               reason=f"bad step: {error}",
                               hint="see schemas/native_format.md for the step fields")
        if any(step.timestamp is not None for step in episode.steps) and "clock" not in meta:
            episode.clock = "relative"


def _apply_meta(episode: EpisodeBuilder, meta: dict[str, Any]) -> None:
    episode.instruction = meta.get("instruction")
    episode.platform = meta.get("platform", "desktop")
    episode.outcome = meta.get("outcome", "unknown")
    score = meta.get("score")
    episode.score = float(score) if isinstance(score, int | float) else None
    episode.terminated = bool(meta.get("terminated", False))
    episode.truncated = bool(meta.get("truncated", False))
    episode.clock = meta.get("clock", "none")
    if isinstance(meta.get("metadata"), dict):
        episode.metadata = meta["metadata"]


def _frame(unit: SourceUnit, episode: EpisodeBuilder, name: Any,
           cache: dict[str, Frame | None]) -> tuple[Frame | None, str | None]:
    if name is None:
        return None, None
    if not isinstance(name, str):
        raise ValueError("frame paths must be strings")
    if name not in cache:
        path = unit.path / name
        if not path.is_file():
            episode.reject(file=unit.relative(path), position="", level="frame",
                           reason="referenced screenshot does not exist",
                           hint="check the path in steps.jsonl (relative to the episode folder)")
            cache[name] = None
            return None, FILE_MISSING
        cache[name] = episode.add_frame_file(path)
    frame = cache[name]
    return frame, (None if frame else FILE_CORRUPT)


def _read_step(unit: SourceUnit, episode: EpisodeBuilder, line: dict[str, Any], position: str,
               screen: dict[str, Any], cache: dict[str, Frame | None]) -> None:
    if "action" not in line:
        raise ValueError("the line has no 'action'")
    before, before_missing = _frame(unit, episode, line.get("frame"), cache)
    after, after_missing = _frame(unit, episode, line.get("next_frame"), cache)
    width = screen.get("width") or (before.width if before else None)
    height = screen.get("height") or (before.height if before else None)
    action, warnings = _action(line["action"], width, height)
    episode.add_step(
        action,
        source_position=position,
        frame_id=before.frame_id if before else None,
        next_frame_id=after.frame_id if after else None,
        frame_missing=before_missing or ("no_screenshots" if line.get("frame") is None else None),
        next_frame_missing=after_missing or (
            "no_screenshots" if line.get("next_frame") is None else None
        ),
        timestamp=_optional_number(line.get("timestamp")),
        timestamp_end=_optional_number(line.get("timestamp_end")),
        thought=line.get("thought"),
        observation=line.get("observation"),
        reward=_optional_number(line.get("reward")),
        warnings=warnings,
    )


def _optional_number(value: Any) -> float | None:
    """An optional number of curate's own format: absent is fine, anything else (text, a
    boolean, NaN, infinity) is a mistake in the file and said so."""
    if value is None:
        return None
    number = number_or_none(value)
    if number is None:
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _action(spec: Any, width: int | None, height: int | None) -> tuple[Action, list[str]]:
    if isinstance(spec, str):
        return parse_action_text(spec), []
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError("'action' must be an object with a 'type', or an action text")
    values: dict[str, Any] = {k: spec[k] for k in (*SEMANTIC_FIELDS, *_PROVENANCE) if k in spec}
    values["keys"] = tuple(values.get("keys") or ())
    if isinstance(values.get("tool_args"), dict | list):
        values["tool_args"] = canonical_json(values["tool_args"])
    warnings: list[str] = []
    for px_key, py_key, x_key, y_key in (("px", "py", "x", "y"), ("px2", "py2", "x2", "y2")):
        if values.get(px_key) is not None and values.get(x_key) is None:
            if not (width and height):
                raise ValueError(f"{px_key}/{py_key} given but no screen size or frame to "
                                 "normalise by; add episode.json 'screen' or a frame")
            x, y, problems = point_in_frame(float(values[px_key]), float(values[py_key]),
                                            width=width, height=height)
            values[x_key], values[y_key] = x, y
            values.setdefault("coord_space", "screen_px")
            values.setdefault("screen_width", width)
            values.setdefault("screen_height", height)
            warnings.extend(problems)
    target = spec.get("target")
    if isinstance(target, dict):
        values["target"] = _target(target, width, height)
    return Action(**values), warnings


def _target(spec: dict[str, Any], width: int | None, height: int | None) -> Target:
    box = {k: spec.get(k) for k in ("x0", "y0", "x1", "y1")}
    if spec.get("units") == "px" and width and height:
        box = {k: (None if v is None else normalise(float(v), width if k[0] == "x" else height))
               for k, v in box.items()}
    return Target(text=spec.get("text"), role=spec.get("role"),
                  element_id=spec.get("element_id"), **box)
