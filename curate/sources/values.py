"""Numbers, text and timestamps read from a source's records, one way for every adapter.

Sources say "not recorded" in many ways: a missing key, ``null``, ``""``, whitespace, NaN or
infinity (pandas-backed pickles and Python's own ``json`` write them), a boolean where a
number belongs. Each helper turns all of those into ``None``, so an adapter only decides what
a missing value means for its format, never what counts as missing.
"""

from __future__ import annotations

import math
import numbers
from datetime import UTC, datetime
from typing import Any


def is_nan(value: Any) -> bool:
    """Whether a value is a float NaN (how pandas-backed sources write "no value")."""
    return isinstance(value, float) and math.isnan(value)


def number_or_none(value: Any) -> float | None:
    """A finite number as a float (JSON ints and floats, NumPy scalars); None for anything
    else: missing, booleans, text, NaN and ±infinity."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None  # numpy.bool_ is not a numbers.Real either
    result = float(value)
    return result if math.isfinite(result) else None


def text_or_none(value: Any, *, strip: bool = False) -> str | None:
    """A string with something in it, as it is (typed text keeps its spaces) or stripped;
    None for non-strings, ``""`` and whitespace only."""
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip() if strip else value


def iso_seconds(value: Any) -> float | None:
    """An ISO 8601 timestamp (``2025-06-06T14:40:28.562Z``) as unix seconds; one without a
    zone is read as UTC, so the result does not depend on the machine's zone. None for
    anything that is not such a timestamp."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
