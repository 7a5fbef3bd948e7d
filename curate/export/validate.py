"""``validate``: check an exported dataset folder before it is trusted or published.

Every problem is collected (not just the first): card metadata, configs and their files,
each file's schema against the declared features, image bytes, coordinates inside [0, 1],
screenshots present for GUI rows, timestamps in order, ground truth readable, image-tag
counts for the verl and TRL flavours, and split leakage (an episode or split group in two
splits).
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import SourceError
from curate.export.card import read_card_header
from curate.export.features import arrow_schema
from curate.export.params import CONFIGS, FLAVOURS
from curate.store.frames import probe_frame

REQUIRED_CARD_KEYS = ("configs", "license", "language", "pretty_name", "task_categories",
                      "tags", "size_categories")
IMAGE_COLUMNS = ("image", "images", "history_images", "future_images")
MAX_PROBLEMS = 200
TRUTHS_REMEMBERED = 100_000  # ground-truth verdicts kept across a config's flavours


@dataclass
class ValidationReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0
    images: int = 0

    def problem(self, text: str) -> None:
        self.ok = False
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


@dataclass
class _Leakage:
    """What one validation run has seen across files: the splits of each episode and split
    group, and the verdicts on recent ground truths (each flavour repeats its config's)."""

    episode_split: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    group_split: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    truth_errors: dict[bytes, str | None] = field(default_factory=dict)


def _parse_config_name(name: str) -> tuple[str, str] | None:
    config, _, flavour = name.partition("_")
    flavour = flavour or "plain"
    if config in CONFIGS and flavour in FLAVOURS:
        return config, flavour
    return None


def validate(dist: str | Path, *, images: bool = True) -> ValidationReport:
    """Check an export folder; ``images=False`` skips re-reading image bytes (the export's
    own check: its images were validated at ingest and copied untouched)."""
    root = Path(dist)
    report = ValidationReport()
    if not (root / "README.md").is_file():
        report.problem(f"{root}/README.md is missing: not an exported dataset folder")
        return report
    try:
        header = read_card_header(root)
    except (ValueError, OSError) as error:
        report.problem(f"README.md: {error}")
        return report
    for key in REQUIRED_CARD_KEYS:
        if not header.get(key):
            report.problem(f"README.md YAML: '{key}' is missing or empty")
    if header.get("license") == "other":
        for key in ("license_name", "license_link"):
            if not header.get(key):
                report.problem(f"README.md YAML: license is 'other' but '{key}' is missing "
                               "(the Hub asks for both)")
    leakage = _Leakage()
    listed: set[Path] = set()
    for entry in header.get("configs") or []:
        listed |= _check_config(root, entry, report, leakage, images)
    for path in sorted((root / "data").rglob("*.parquet")):
        if path not in listed:
            report.problem(f"{path.relative_to(root)} is not listed in any config of README.md")
    for episode, splits in sorted(leakage.episode_split.items()):
        if len(splits) > 1:
            report.problem(f"split leakage: episode {episode} is in {sorted(splits)}")
    for group, splits in sorted(leakage.group_split.items()):
        if len(splits) > 1:
            report.problem(f"split leakage: split group {group!r} is in {sorted(splits)}")
    return report


def _check_config(root: Path, entry: Any, report: ValidationReport, leakage: _Leakage,
                  images: bool) -> set[Path]:
    name = entry.get("config_name") if isinstance(entry, dict) else None
    parsed = _parse_config_name(str(name))
    if parsed is None:
        report.problem(f"README.md YAML: unknown config {name!r}")
        return set()
    files: set[Path] = set()
    for data_file in entry.get("data_files") or []:
        pattern, split = data_file.get("path", ""), data_file.get("split", "")
        matched = sorted(Path(p) for p in glob.glob(str(root / pattern)))
        if not matched:
            report.problem(f"config {name}: split {split} path {pattern} matches no file")
        for path in matched:
            files.add(path)
            _check_file(path, root, parsed, split, report, leakage, images)
    return files


def _check_file(path: Path, root: Path, parsed: tuple[str, str], split: str,
                report: ValidationReport, leakage: _Leakage, images: bool) -> None:
    config, flavour = parsed
    where = str(path.relative_to(root))
    report.files += 1
    parquet = pq.ParquetFile(path)
    expected = arrow_schema(config, flavour)
    actual = parquet.schema_arrow
    if actual.remove_metadata() != expected.remove_metadata():
        report.problem(f"{where}: columns differ from the {config}/{flavour} features")
        return
    if b"huggingface" not in (actual.metadata or {}):
        report.problem(f"{where}: no `datasets` features metadata (images would not decode)")
    # Without image checks, read only the images' paths: enough to count them.
    columns = [c if images or c not in IMAGE_COLUMNS else
               (f"{c}.path" if c == "image" else f"{c}.list.element.path")
               for c in actual.names]
    for group in range(parquet.num_row_groups):
        table = parquet.read_row_group(group, columns=columns)
        report.rows += table.num_rows
        _check_rows(table, where, flavour, config, split, report, leakage)


def _check_rows(table: pa.Table, where: str, flavour: str, config: str, split: str,
                report: ValidationReport, leakage: _Leakage) -> None:
    previous: dict[str, tuple[int, float]] = {}
    for row in table.to_pylist():
        row_split = row.get("split") or (row.get("extra_info") or {}).get("split")
        if row_split != split:
            report.problem(f"{where}: row {row.get('id')} says split {row_split!r}")
        episode = row.get("episode_id") or (row.get("extra_info") or {}).get("episode_id")
        leakage.episode_split[str(episode)].add(split)
        if row.get("split_group"):
            leakage.group_split[row["split_group"]].add(split)
        truth = row.get("ground_truth") or row.get("solution") or row.get("answer")
        error = _tracer1_error(truth) if flavour == "easyr1" else _truth_error(
            truth, leakage.truth_errors)
        if error is not None:
            report.problem(f"{where}: row {row.get('id')}: ground truth unreadable: {error}")
        elif flavour == "verl" and config == "stage2":
            _check_envelope(row, where, report)
        _check_images(row, where, report)
        if flavour == "plain":
            _check_plain(row, where, config, report, previous)
        else:
            _check_image_tags(row, where, flavour, report)


def _check_envelope(row: dict[str, Any], where: str, report: ValidationReport) -> None:
    """A stage2 verl `answer` is the step envelope: it must name the row's own step (the
    Stage-2 rewards that execute read the screenshot of the step it names)."""
    from curate.rewards.entrypoints import split_step_envelope

    _, named = split_step_envelope(row.get("answer"))
    extra = row.get("extra_info") or {}
    own = (extra.get("episode_id"), extra.get("step_index"))
    if named != own:
        report.problem(f"{where}: row {row.get('id')}: answer names step {named}, "
                       f"the row is step {own}")


def _tracer1_error(answer: Any) -> str | None:
    """Why a TraceR1 reference answer cannot be read back (None: every step reads)."""
    from curate.rewards.tracer1 import parse_answer

    parsed = parse_answer(answer)
    if not parsed.ok:
        return parsed.reason
    broken = [step.problem for step in parsed.steps if not step.well_formed]
    return f"a step is malformed: {broken[0]}" if broken else None


def _truth_error(truth: Any, seen: dict[bytes, str | None]) -> str | None:
    """Why the ground truth cannot be read (None: it can). Each flavour of a config repeats
    its ground truths, so the verdicts of the last TRUTHS_REMEMBERED distinct strings are
    kept, by digest: memory stays bounded however large the dataset."""
    from curate.rewards.entrypoints import load_ground_truth

    key = hashlib.blake2b(truth.encode(), digest_size=16).digest() \
        if isinstance(truth, str) else None
    if key is not None and key in seen:
        return seen[key]
    try:
        load_ground_truth(truth)
        error = None
    except (ValueError, TypeError) as problem:
        error = str(problem)
    if key is not None:
        if len(seen) >= TRUTHS_REMEMBERED:
            del seen[next(iter(seen))]  # the oldest: dicts keep insertion order
        seen[key] = error
    return error


def _check_images(row: dict[str, Any], where: str, report: ValidationReport) -> None:
    for column in IMAGE_COLUMNS:
        value = row.get(column)
        for image in (value if isinstance(value, list) else [value]):
            if image is None:
                continue
            report.images += 1
            if "bytes" not in image:
                continue
            try:
                probe_frame(image["bytes"])
            except (SourceError, TypeError) as error:
                report.problem(f"{where}: row {row.get('id')} {column}: {error}")


def _check_plain(row: dict[str, Any], where: str, config: str, report: ValidationReport,
                 previous: dict[str, tuple[int, float]]) -> None:
    actions = row["target_actions"] if config == "stage1" else [row["action"]]
    for action in actions:
        for name in ("x", "y", "x2", "y2"):
            value = action.get(name)
            if value is not None and not 0.0 <= value <= 1.0:
                report.problem(f"{where}: row {row['id']}: {name}={value} outside [0, 1]")
    if row.get("label_source") == "human":
        for action in actions:
            if _click_outside_box(action):
                report.problem(f"{where}: row {row['id']}: a reviewer's click "
                               f"({action['x']}, {action['y']}) lies outside its own target "
                               "box; re-review the step (move the point or redraw the box)")
    if row["platform"] != "tool" and "image" in row and row["image"] is None:
        report.problem(f"{where}: row {row['id']}: GUI row without a screenshot")
    stamp = row.get("timestamp")
    if config == "stage2" and stamp is not None:
        last = previous.get(row["episode_id"])
        if last is not None and last[0] < row["step_index"] and stamp < last[1]:
            report.problem(f"{where}: row {row['id']}: timestamp {stamp} before the previous "
                           f"step's {last[1]}")
        previous[row["episode_id"]] = (row["step_index"], stamp)


def _click_outside_box(action: dict[str, Any]) -> bool:
    box = action.get("target") or {}
    edges = [box.get(name) for name in ("x0", "y0", "x1", "y1")]
    if action.get("x") is None or action.get("y") is None or None in edges:
        return False
    x0, y0, x1, y1 = edges
    return not (x0 <= action["x"] <= x1 and y0 <= action["y"] <= y1)


def _check_image_tags(row: dict[str, Any], where: str, flavour: str,
                      report: ValidationReport) -> None:
    count = len(row.get("images") or [])
    if flavour == "easyr1":
        if row["problem"].count("<image>") != count:
            report.problem(f"{where}: {row['problem'].count('<image>')} <image> tags for "
                           f"{count} images")
    elif flavour == "verl":
        tags = sum(str(m["content"]).count("<image>") for m in row["prompt"])
        if tags != count or row["problem"].count("<image>") != count:
            report.problem(f"{where}: {tags} <image> tags for {count} images")
    else:
        parts = sum(1 for m in row["prompt"] for p in m["content"] if p["type"] == "image")
        if parts != count:
            report.problem(f"{where}: {parts} image parts for {count} images")


def report_json(report: ValidationReport) -> str:
    return json.dumps(report.__dict__, indent=2)
