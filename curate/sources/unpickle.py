"""Read third-party pickles without importing or running anything they name.

A pickle is a small program: ``GLOBAL`` names any importable callable and ``REDUCE`` calls it,
so ``pickle.load`` on a file from someone else runs their code. This module reads pickles with
an unpickler whose ``find_class`` never imports by name:

* an explicit allow-list of inert builtins (containers, numbers, text, datetime types,
  ``collections.OrderedDict``, ``copyreg._reconstructor``, ``builtins.object``) and the NumPy
  array/scalar/dtype reconstructors resolves to the real objects;
* every other global (agentlab ``StepInfo``, langchain messages, dataclasses, enums, and also
  functions such as ``os.system``) becomes an inert :class:`Stub` subclass that only records
  its module and name. Calling it (``REDUCE``), instantiating it (``NEWOBJ``) or restoring its
  state (``BUILD``) records the arguments and state; nothing else happens.

Traps handled:

* NumPy 1 pickles name ``numpy.core.multiarray`` and NumPy 2 pickles ``numpy._core.multiarray``;
  both spellings map to whichever module the installed NumPy provides (stubbed when absent or
  when NumPy is not installed), so arrays from either version load.
* Protocols 0-2 write Python 2 module names (``__builtin__``, ``copy_reg``); they are
  renamed first, as ``pickle`` itself does, then checked against the allow-list.
* Protocol-2 pickles spell ``bytes`` as ``_codecs.encode(text, "latin1")``; only that exact
  call is honoured (other codecs would import modules by name).
* Protocol-5 NumPy arrays use ``numpy._core.numeric._frombuffer``; it is allow-listed too.
* Stubbed objects that were dict or list subclasses upstream receive ``SETITEMS``/``APPENDS``;
  stubs keep those items instead of failing.
* A ``BUILD`` state with dunder keys (``__setstate__``...) is kept aside, never put in the
  instance dict, so a crafted pickle cannot plant a callable that a later ``BUILD`` would call.
* A truncated or corrupt pickle (or gzip stream) raises :class:`curate.errors.SourceError`.

Memory use is bounded only by the input: this guards against code execution, not against a
pickle that asks for a huge array.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import copyreg
import datetime
import gzip
import importlib
import io
import pickle
from pathlib import Path
from typing import IO, Any, ClassVar

from curate.errors import SourceError

GZIP_MAGIC = b"\x1f\x8b"


class Stub:
    """An inert stand-in for a class or function a pickle named but we did not import.

    ``stub_module``/``stub_name`` say what the pickle referred to. Instance attributes hold
    the pickled state (``vars(stub)``); ``stub_args``/``stub_kwargs`` the constructor or call
    arguments; ``stub_items``/``stub_list`` what ``SETITEMS``/``APPENDS`` added.
    """

    __slots__ = ("__dict__", "stub_args", "stub_extra", "stub_items", "stub_kwargs", "stub_list")
    stub_module: ClassVar[str] = ""
    stub_name: ClassVar[str] = ""
    stub_args: tuple[Any, ...]
    stub_kwargs: dict[str, Any]
    stub_items: dict[Any, Any]
    stub_list: list[Any]
    stub_extra: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Stub:
        instance = object.__new__(cls)
        instance.stub_args = args
        instance.stub_kwargs = kwargs
        instance.stub_items = {}
        instance.stub_list = []
        instance.stub_extra = None
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Arguments were recorded by __new__; ``_reconstructor`` may call __init__ again.
        pass

    def __setstate__(self, state: Any) -> None:
        # Dataclasses with slots pickle as (dict_state, slot_state); merge both.
        if isinstance(state, tuple) and len(state) == 2 and all(
            part is None or isinstance(part, dict) for part in state
        ):
            for part in state:
                if part:
                    self._absorb(part)
            return
        if isinstance(state, dict):
            self._absorb(state)
            return
        self.stub_extra = state

    def _absorb(self, state: dict[Any, Any]) -> None:
        for key, value in state.items():
            if isinstance(key, str) and not (key.startswith("__") and key.endswith("__")):
                self.__dict__[key] = value
            else:
                self.stub_items[key] = value

    def __setitem__(self, key: Any, value: Any) -> None:
        self.stub_items[key] = value

    def append(self, value: Any) -> None:
        self.stub_list.append(value)

    def extend(self, values: Any) -> None:
        self.stub_list.extend(values)

    def __repr__(self) -> str:
        return f"<stub {self.stub_module}.{self.stub_name} {sorted(self.__dict__)}>"


def get_field(obj: Any, name: str, default: Any = None) -> Any:
    """A field of an unpickled value: a dict key or a stub's attribute (``default`` if absent).

    Third-party objects may arrive as stubs in one version and plain dicts in another (AgentLab
    stores ``agent_info`` as either), so readers go through this one accessor.
    """
    if isinstance(obj, dict):
        return obj.get(name, default)
    if isinstance(obj, Stub):
        return vars(obj).get(name, obj.stub_items.get(name, default))
    return default


def stub_class(module: str, name: str) -> type[Stub]:
    """A fresh Stub subclass standing for ``module.name``."""
    attributes = {"stub_module": module, "stub_name": name, "__slots__": ()}
    # The class name keeps only identifier characters so reprs and tracebacks stay readable.
    label = "".join(ch if ch.isalnum() else "_" for ch in name) or "anonymous"
    return type(f"Stub_{label}", (Stub,), attributes)


def _latin1_encode(text: Any, encoding: str = "utf-8", *rest: Any) -> bytes:
    """``_codecs.encode`` restricted to what protocol 2 emits for bytes objects."""
    if rest or not isinstance(text, str) or encoding.lower() not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(
            f"_codecs.encode is only allowed as encode(str, 'latin1'), got encoding {encoding!r}"
        )
    return codecs.encode(text, "latin1")


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` (protocols 0 and 1), routing stubs through ``Stub.__new__``.

    The original calls ``object.__new__(cls)``, which would skip the stub's bookkeeping.
    """
    if isinstance(cls, type) and issubclass(cls, Stub):
        return cls() if state is None else cls(state)
    return copyreg._reconstructor(cls, base, state)  # type: ignore[attr-defined]


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **{("builtins", kind.__name__): kind for kind in (
        dict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex, bool,
        object,
    )},
    **{("datetime", kind.__name__): kind for kind in (
        datetime.datetime, datetime.date, datetime.time, datetime.timedelta, datetime.timezone,
    )},
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _latin1_encode,
}

# (module spellings seen in pickles, attribute): NumPy 1 uses numpy.core, NumPy 2 numpy._core.
_NUMPY_GLOBALS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("numpy.core.multiarray", "numpy._core.multiarray"), "_reconstruct", "multiarray"),
    (("numpy.core.multiarray", "numpy._core.multiarray"), "scalar", "multiarray"),
    (("numpy.core.numeric", "numpy._core.numeric"), "_frombuffer", "numeric"),
    (("numpy",), "ndarray", ""),
    (("numpy",), "dtype", ""),
)


def _installed_numpy(submodule: str, name: str) -> Any | None:
    """The named NumPy object from whichever core module this NumPy has, or None."""
    candidates = ("numpy",) if not submodule else (
        f"numpy._core.{submodule}", f"numpy.core.{submodule}",
    )
    for module_name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        value = getattr(module, name, None)
        if value is not None:
            return value
    return None


def _numpy_globals() -> dict[tuple[str, str], Any]:
    table: dict[tuple[str, str], Any] = {}
    for spellings, name, submodule in _NUMPY_GLOBALS:
        value = _installed_numpy(submodule, name)
        if value is None:
            continue  # left out of the table, so find_class stubs it
        for spelling in spellings:
            table[(spelling, name)] = value
    return table


_ALLOWED: dict[tuple[str, str], Any] | None = None


def allowed_globals() -> dict[tuple[str, str], Any]:
    """The allow-list, built once (NumPy is imported lazily, on the first load)."""
    global _ALLOWED
    if _ALLOWED is None:
        _ALLOWED = {**_SAFE_GLOBALS, **_numpy_globals()}
    return _ALLOWED


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` returns allow-listed objects or inert stubs."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self._allowed = allowed_globals()
        self._stubs: dict[tuple[str, str], type[Stub]] = {}
        self.stubbed: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        module, name = _python3_name(module, name)
        allowed = self._allowed.get((module, name))
        if allowed is not None:
            return allowed
        # One class per name within a load, so isinstance checks between objects agree.
        key = (module, name)
        if key not in self._stubs:
            self._stubs[key] = stub_class(module, name)
            self.stubbed.add(key)
        return self._stubs[key]


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 spellings (``__builtin__``, ``copy_reg``) that protocols 0-2 write, renamed.

    ``pickle.Unpickler.find_class`` does this itself; overriding it means doing it here.
    """
    if (module, name) in _compat_pickle.NAME_MAPPING:
        renamed: tuple[str, str] = _compat_pickle.NAME_MAPPING[(module, name)]
        return renamed
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _load(handle: IO[bytes] | gzip.GzipFile, source: str) -> Any:
    try:
        return RestrictedUnpickler(handle).load()  # type: ignore[arg-type]
    except Exception as error:  # any failure inside a pickle means "corrupt"
        raise SourceError(
            f"corrupt or unsupported pickle: {type(error).__name__}: {error}; expected a "
            "complete pickle stream",
            file=source,
            position=_position(handle),
            hint="the file is truncated or not a pickle; re-copy it from the experiment folder",
        ) from None


def _position(handle: IO[bytes] | gzip.GzipFile) -> str:
    """Where reading stopped (in the decompressed stream for .gz), for the error message."""
    try:
        return f"byte {handle.tell()}"
    except (OSError, ValueError, EOFError):
        return ""


def load_restricted(data: bytes, *, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` without importing or calling anything outside the allow-list."""
    return _load(io.BytesIO(data), source)


def load_restricted_file(path: Path | str) -> Any:
    """Unpickle a ``.pkl`` or gzip-compressed ``.pkl.gz`` file (sniffed from its first bytes)."""
    path = Path(path)
    try:
        with path.open("rb") as raw:
            compressed = raw.read(2) == GZIP_MAGIC
    except OSError as error:
        raise SourceError(f"cannot read pickle: {error.strerror}", file=str(path),
                          hint="check that the file exists and is readable") from None
    if compressed:
        with gzip.open(path, "rb") as unpacked:
            return _load(unpacked, str(path))
    with path.open("rb") as handle:
        return _load(handle, str(path))


__all__ = [
    "RestrictedUnpickler",
    "Stub",
    "allowed_globals",
    "get_field",
    "load_restricted",
    "load_restricted_file",
    "stub_class",
]
