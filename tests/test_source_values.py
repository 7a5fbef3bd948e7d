"""curate.sources.values: what every adapter counts as a number, a text and a timestamp."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curate.sources.values import is_nan, iso_seconds, number_or_none, text_or_none

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("value", "expected"), [
    (3, 3.0), (-2.5, -2.5), (0, 0.0), (np.float32(0.5), 0.5), (np.int64(7), 7.0),
    (np.float64(1.25), 1.25),
])
def test_finite_numbers_are_floats(value: Any, expected: float) -> None:
    result = number_or_none(value)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value", [
    None, True, False, np.bool_(True), "3", "", [1], {"x": 1},
    math.nan, np.float64("nan"), math.inf, -math.inf, np.float32("inf"),
])
def test_missing_booleans_text_nan_and_infinity_are_no_number(value: Any) -> None:
    assert number_or_none(value) is None


def test_nan_is_recognised_only_as_a_float() -> None:
    assert is_nan(math.nan) and is_nan(np.float64("nan"))
    assert not is_nan(None) and not is_nan("nan") and not is_nan(0.0) and not is_nan(math.inf)


@pytest.mark.parametrize(("value", "strip", "expected"), [
    ("hello", False, "hello"),
    ("  two spaces typed ", False, "  two spaces typed "),  # typed text keeps its spaces
    ("  padded label ", True, "padded label"),
    ("", False, None), ("   \n\t", False, None), ("   ", True, None),
    (None, False, None), (3, False, None), (math.nan, False, None), (b"bytes", False, None),
])
def test_text_is_a_string_with_something_in_it(value: Any, strip: bool,
                                               expected: str | None) -> None:
    assert text_or_none(value, strip=strip) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-06-06T14:40:28.562Z", 1749220828.562),
    ("2025-06-06T14:40:28.562+00:00", 1749220828.562),
    ("2025-06-06T16:40:28.562+02:00", 1749220828.562),
    ("2025-06-06T14:40:28.562", 1749220828.562),  # no zone: UTC
])
def test_iso_timestamps_are_unix_seconds(value: str, expected: float) -> None:
    assert iso_seconds(value) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("value", [None, "", "yesterday", "2025-13-01T00:00:00Z", 1749220828,
                                   ["2025-06-06"]])
def test_anything_else_is_no_timestamp(value: Any) -> None:
    assert iso_seconds(value) is None


def test_a_timestamp_without_a_zone_does_not_depend_on_the_machines_zone() -> None:
    code = ("from curate.sources.values import iso_seconds;"
            "print(repr(iso_seconds('2025-06-06T14:40:28')))")
    outputs = set()
    for zone in ("UTC", "America/New_York", "Asia/Tokyo"):
        env = {**os.environ, "PYTHONPATH": str(REPO), "TZ": zone}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True)
        outputs.add(result.stdout.strip())
    assert outputs == {"1749220828.0"}


def test_no_adapter_keeps_a_private_copy_of_these_readers() -> None:
    # The helpers above are the one definition; a private _number or _text in an adapter is
    # how the eight copies that disagreed on NaN and blanks came about.
    import ast

    copies = []
    for path in sorted((REPO / "curate" / "sources" / "adapters").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        copies += [f"{path.name}: {node.name}" for node in ast.walk(tree)
                   if isinstance(node, ast.FunctionDef)
                   and node.name in {"_number", "_text", "_is_nan", "parse_time"}]
    assert copies == []
