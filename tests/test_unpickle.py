"""The restricted unpickler: runs nothing, stubs unknown names, reads NumPy 1 and 2 arrays."""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curate.errors import SourceError
from curate.sources import unpickle
from curate.sources.unpickle import Stub, get_field, load_restricted, load_restricted_file

FAKE = "fake_thirdparty.records"


@pytest.fixture
def fake_module() -> Iterator[types.ModuleType]:
    """A throw-away module so the test can *write* pickles naming third-party classes."""
    package = types.ModuleType("fake_thirdparty")
    module = types.ModuleType(FAKE)
    package.records = module  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in ("fake_thirdparty", FAKE)}
    sys.modules["fake_thirdparty"], sys.modules[FAKE] = package, module
    yield module
    for name, old in saved.items():
        if old is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = old


def _define(module: types.ModuleType, cls: type) -> type:
    cls.__module__ = module.__name__
    setattr(module, cls.__name__, cls)
    return cls


# ------------------------------------------------------------------------- nothing runs

def test_reduce_calling_os_system_does_not_run_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # Protocol 0 by hand: GLOBAL os.system, MARK, STRING command, TUPLE, REDUCE, STOP.
    data = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    result = load_restricted(data)
    assert not marker.exists()
    assert isinstance(result, Stub)
    assert (result.stub_module, result.stub_name) == ("os", "system")
    assert result.stub_args == (f"touch {marker}",)


def test_reduce_from_a_real_malicious_object_is_stubbed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        result = load_restricted(pickle.dumps(Evil(), protocol=protocol))
        assert not marker.exists()
        assert isinstance(result, Stub)
        assert result.stub_name == "system"


@pytest.mark.parametrize("module, name", [
    ("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"),
    ("builtins", "__import__"), ("subprocess", "Popen"), ("posix", "system"),
])
def test_dangerous_callables_are_stubs_that_only_record_arguments(module: str,
                                                                  name: str) -> None:
    data = f"c{module}\n{name}\n(S'print(1)'\ntR.".encode()
    result = load_restricted(data)
    assert isinstance(result, Stub)
    assert (result.stub_module, result.stub_name, result.stub_args) == (module, name,
                                                                       ("print(1)",))


def test_dunder_state_keys_are_kept_aside_not_planted_on_the_instance(
        fake_module: types.ModuleType) -> None:
    Thing = _define(fake_module, type("Thing", (), {}))
    thing = Thing()
    thing.__dict__.update({"__setstate__": "planted", "value": 3})
    result = load_restricted(pickle.dumps(thing, protocol=4))
    assert vars(result) == {"value": 3}
    assert get_field(result, "__setstate__") == "planted"  # still readable, as an item
    assert result.stub_items == {"__setstate__": "planted"}


def test_codecs_encode_is_only_honoured_for_latin1() -> None:
    assert load_restricted(pickle.dumps(b"\x00\xffab", protocol=2)) == b"\x00\xffab"
    with pytest.raises(SourceError, match="latin1"):
        load_restricted(b"c_codecs\nencode\n(S'x'\nS'rot13'\ntR.")


# ------------------------------------------------------------------------- allowed values

def test_builtin_containers_and_datetimes_round_trip() -> None:
    value = {
        "list": [1, 2.5, "x", None, True], "tuple": (1, 2), "set": {1, 2},
        "frozen": frozenset({3}), "bytes": b"ab", "complex": 1 + 2j,
        "ordered": OrderedDict([("a", 1)]),
        "when": datetime(2025, 1, 22, 11, 3, 29, tzinfo=timezone(timedelta(hours=1))),
        "delta": timedelta(seconds=5),
    }
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert load_restricted(pickle.dumps(value, protocol=protocol)) == value


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_and_scalars_load_as_numpy(protocol: int) -> None:
    value = {"image": np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
             "elapsed": np.array([0.25]), "scalar": np.float64(1.5)}
    result = load_restricted(pickle.dumps(value, protocol=protocol))
    assert isinstance(result["image"], np.ndarray)
    np.testing.assert_array_equal(result["image"], value["image"])
    np.testing.assert_array_equal(result["elapsed"], value["elapsed"])
    assert result["scalar"] == 1.5 and isinstance(result["scalar"], np.floating)


def _with_module_spelling(data: bytes, old: bytes, new: bytes) -> bytes:
    # Protocol 2 writes GLOBAL as "module\nname\n" (no length prefix), so a plain swap is valid.
    assert old in data
    return data.replace(old, new)


@pytest.mark.parametrize("spelling", [b"numpy.core.multiarray", b"numpy._core.multiarray"])
def test_numpy_1_and_2_module_names_both_load(spelling: bytes) -> None:
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    data = pickle.dumps({"a": array, "s": np.int64(7)}, protocol=2)
    installed = b"numpy._core.multiarray" if b"numpy._core" in data else b"numpy.core.multiarray"
    result = load_restricted(_with_module_spelling(data, installed, spelling))
    np.testing.assert_array_equal(result["a"], array)
    assert result["s"] == 7


def test_missing_numpy_globals_are_stubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unpickle, "_ALLOWED", None)
    monkeypatch.setattr(unpickle, "_installed_numpy", lambda submodule, name: None)
    result = load_restricted(pickle.dumps(np.arange(3), protocol=2))
    assert isinstance(result, Stub)
    assert result.stub_name == "_reconstruct"
    monkeypatch.setattr(unpickle, "_ALLOWED", None)  # rebuilt with NumPy for later tests


# ------------------------------------------------------------------------- stubs

def test_unknown_classes_become_stubs_with_readable_state(
        fake_module: types.ModuleType) -> None:
    StepInfo = _define(fake_module, type("StepInfo", (), {}))
    step = StepInfo()
    step.__dict__.update({"step": 3, "action": "click('30')", "obs": {"goal": "x"}})
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        result = load_restricted(pickle.dumps(step, protocol=protocol))
        assert isinstance(result, Stub)
        assert (result.stub_module, result.stub_name) == (FAKE, "StepInfo")
        assert get_field(result, "action") == "click('30')"
        assert get_field(result, "obs") == {"goal": "x"}


def test_one_stub_class_per_name_within_a_load(fake_module: types.ModuleType) -> None:
    Message = _define(fake_module, type("Message", (), {}))
    first, second = Message(), Message()
    result = load_restricted(pickle.dumps([first, second], protocol=4))
    assert type(result[0]) is type(result[1])


def test_slotted_dataclass_state_is_readable(fake_module: types.ModuleType) -> None:
    @dataclasses.dataclass(slots=True)
    class Timing:
        start: float
        stop: float

    Timing.__qualname__ = "Timing"
    _define(fake_module, Timing)
    result = load_restricted(pickle.dumps(Timing(1.0, 2.0), protocol=4))
    assert (get_field(result, "start"), get_field(result, "stop")) == (1.0, 2.0)


def test_dict_and_list_subclasses_keep_their_items(fake_module: types.ModuleType) -> None:
    Bag = _define(fake_module, type("Bag", (dict,), {}))
    Row = _define(fake_module, type("Row", (list,), {}))
    bag, row = Bag(a=1), Row([1, 2])
    result = load_restricted(pickle.dumps({"bag": bag, "row": row}, protocol=4))
    assert result["bag"].stub_items == {"a": 1}
    assert result["row"].stub_list == [1, 2]


# ------------------------------------------------------------------------- errors and files

def test_truncated_pickle_raises_source_error_with_position(tmp_path: Path) -> None:
    data = pickle.dumps({"a": list(range(100))}, protocol=4)
    with pytest.raises(SourceError) as caught:
        load_restricted(data[: len(data) // 2], source="step_3.pkl")
    assert caught.value.file == "step_3.pkl"
    assert caught.value.position.startswith("byte ")
    assert "truncated" in caught.value.reason


def test_files_load_plain_or_gzip_sniffed_from_magic(tmp_path: Path) -> None:
    value = {"goal": "x", "n": [1, 2]}
    plain, packed = tmp_path / "a.pkl", tmp_path / "b.pkl.gz"
    plain.write_bytes(pickle.dumps(value))
    packed.write_bytes(gzip.compress(pickle.dumps(value)))
    assert load_restricted_file(plain) == value
    assert load_restricted_file(packed) == value


def test_broken_gzip_and_missing_files_raise_source_error(tmp_path: Path) -> None:
    broken = tmp_path / "step_0.pkl.gz"
    broken.write_bytes(gzip.compress(pickle.dumps(list(range(1000))))[:40])
    with pytest.raises(SourceError, match="corrupt") as caught:
        load_restricted_file(broken)
    assert caught.value.file.endswith("step_0.pkl.gz")
    with pytest.raises(SourceError, match="cannot read"):
        load_restricted_file(tmp_path / "absent.pkl")
