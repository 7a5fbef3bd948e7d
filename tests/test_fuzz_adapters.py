"""Mangled inputs never crash an adapter and never lose steps silently.

For every unit in the adapters' fixtures and the example recordings, a file is truncated,
corrupted or deleted; ingest must still return, and if fewer steps come out than from the
intact unit, at least one reject must say why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.pipeline.extract import extract_unit
from curate.sources.discover import PlannedUnit, discover

REPO = Path(__file__).resolve().parents[1]
ROOTS = [REPO / "tests" / "fixtures", REPO / "examples" / "recordings"]


def units() -> list[PlannedUnit]:
    found = [p for root in ROOTS if root.is_dir() for p in discover([root])]
    return [p for p in found if p.adapter is not None]


UNITS = units()


def mangle(path: Path, how: str, where: float) -> None:
    data = path.read_bytes()
    cut = int(len(data) * where)
    if how == "truncate":
        # A torn write: cutting exactly after a newline is indistinguishable from a shorter
        # recording, and so is cutting only a line's newline: the cut lands inside a line.
        while 0 < cut < len(data) and b"\n" in (data[cut - 1:cut], data[cut:cut + 1]):
            cut -= 1
        path.write_bytes(data[:cut])
    elif how == "garbage":
        path.write_bytes(data[:cut] + b"\x00\xff{not json]\n" + data[cut + 7:])
    elif how == "delete":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")


def test_there_are_fixtures_for_every_builtin_adapter() -> None:
    from curate.sources.adapters import all_adapters

    covered = {p.adapter for p in UNITS}
    missing = {a.name for a in all_adapters()} - covered
    # Tool-log adapters share fixtures: one format may be covered through another's folder.
    assert not missing - {"http_cassette", "openai_responses", "anthropic_messages"}, missing


@pytest.mark.parametrize("planned", UNITS, ids=lambda p: p.unit.source_path)
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=st.sampled_from(["truncate", "garbage", "delete", "empty"]),
       where=st.floats(0, 1), pick=st.integers(0, 10**6))
def test_mangled_input_is_rejected_not_crashed(planned: PlannedUnit, how: str, where: float,
                                               pick: int, tmp_path_factory) -> None:
    intact = extract_unit(planned.unit, planned.adapter)
    work = tmp_path_factory.mktemp("fuzz") / planned.unit.path.name
    if planned.unit.path.is_dir():
        shutil.copytree(planned.unit.path, work)
        files = sorted(p for p in work.rglob("*") if p.is_file())
    else:
        shutil.copy(planned.unit.path, work)
        files = [work]
    mangle(files[pick % len(files)], how, where)
    mangled_unit = type(planned.unit)(work, planned.unit.source_path)
    result = extract_unit(mangled_unit, planned.adapter)
    lost = intact.steps.num_rows - result.steps.num_rows
    lost_frames = (sum(1 for v in result.steps.column("frame_id").to_pylist() if v is None)
                   - sum(1 for v in intact.steps.column("frame_id").to_pylist() if v is None))
    if lost > 0 or lost_frames > 0:
        assert result.rejects.num_rows > 0, (how, files[pick % len(files)].name)
    for reject in result.rejects.to_pylist():
        assert reject["reason"] and reject["hint"]


# -- the real samples ------------------------------------------------------------------------
# The same property over every unit of every sample in ../shared/realdata, fewer examples
# each (there are more units, and they are bigger): never a traceback, always a report.

REALDATA = REPO.parent / "shared" / "realdata"
REAL_UNITS = ([p for p in discover([REALDATA]) if p.adapter is not None]
              if REALDATA.is_dir() else [])
_INTACT: dict[str, tuple[int, int]] = {}


def _intact_counts(planned: PlannedUnit) -> tuple[int, int]:
    key = planned.unit.source_path
    if key not in _INTACT:
        tables = extract_unit(planned.unit, planned.adapter)
        missing = sum(1 for v in tables.steps.column("frame_id").to_pylist() if v is None)
        _INTACT[key] = (tables.steps.num_rows, missing)
    return _INTACT[key]


def test_there_are_real_samples_to_fuzz() -> None:
    if not REALDATA.is_dir():
        pytest.skip(f"real samples {REALDATA} are not available")
    assert len({p.adapter for p in REAL_UNITS}) >= 5


@pytest.mark.realdata
@pytest.mark.parametrize("planned", REAL_UNITS, ids=lambda p: p.unit.source_path)
@settings(max_examples=2, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(how=st.sampled_from(["truncate", "garbage", "delete", "empty"]),
       where=st.floats(0, 1), pick=st.integers(0, 10**6))
def test_mangled_real_sample_is_reported_not_crashed(planned: PlannedUnit, how: str,
                                                    where: float, pick: int,
                                                    tmp_path_factory) -> None:
    steps, missing_frames = _intact_counts(planned)
    work = tmp_path_factory.mktemp("fuzz_real") / planned.unit.path.name
    if planned.unit.path.is_dir():
        shutil.copytree(planned.unit.path, work, symlinks=True)
        files = sorted(p for p in work.rglob("*") if p.is_file() and not p.is_symlink())
    else:
        shutil.copy(planned.unit.path, work)
        files = [work]
    mangle(files[pick % len(files)], how, where)
    result = extract_unit(type(planned.unit)(work, planned.unit.source_path), planned.adapter)
    lost = steps - result.steps.num_rows
    lost_frames = sum(1 for v in result.steps.column("frame_id").to_pylist()
                      if v is None) - missing_frames
    if lost > 0 or lost_frames > 0:
        assert result.rejects.num_rows > 0, (how, files[pick % len(files)].name)
    for reject in result.rejects.to_pylist():
        assert reject["reason"] and reject["hint"]
