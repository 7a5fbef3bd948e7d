"""Where per-episode work runs: a local process pool, or Ray tasks on a cluster.

Every stage hands an engine a pure, module-level function and an iterable of picklable items;
the engine yields the results **in input order** with a bounded number in flight. Order is
what keeps the store's bytes independent of the engine, the worker count and scheduling:
the caller writes results in the order it gets them, so any engine that preserves order
produces identical Parquet.

Faults. A worker process can die under a task (killed by an operator or the OOM killer, or
crashed by a recording that trips a native decoder). Both engines retry such a task once;
when it fails again the item is handed to the caller's ``on_crash`` (ingest turns it into a
reject naming the unit) instead of failing the run. Retries are safe because the functions
are pure: a retried item gives the same result, and it is consumed exactly once, in order.
Ordinary Python exceptions are not retried: they are bugs, and propagate.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from curate.errors import CurateError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

ENGINES = ("local", "ray")
RAY_MISSING = ("the ray engine needs Ray, which is not installed; "
               "install it with `pip install 'curate[ray]'`")
# How often a task whose worker died is run again before the item is given up on.
CRASH_RETRIES = 1

# Fault injection for the tests (never set in production): a worker running a unit whose
# source path matches CURATE_TEST_CRASH_UNITS exits hard, as a native crash would; one
# matching CURATE_TEST_SLOW_UNITS writes its pid into CURATE_TEST_PID_DIR and sleeps, so a
# test can kill that very process mid-task. Only worker processes obey (see _in_worker).
CRASH_ENV = "CURATE_TEST_CRASH_UNITS"
SLOW_ENV = "CURATE_TEST_SLOW_UNITS"
PID_DIR_ENV = "CURATE_TEST_PID_DIR"
SLOW_SECONDS = 3.0

_in_worker_process = False


class EngineError(CurateError):
    """An engine cannot be created or connected (Ray missing, cluster unreachable)."""


class WorkerCrashed(CurateError):
    """A worker died on an item twice and the caller gave no ``on_crash``."""


class Engine(Protocol):
    """Runs a pure function over items, yielding results in input order."""

    name: str

    def map_ordered(self, function: Callable[[T], R], items: Iterable[T], *,
                    window: int | None = None,
                    on_crash: Callable[[T, str], R] | None = None) -> Iterator[R]:
        """``function(item)`` for each item, in order; at most ``window`` in flight.
        ``on_crash(item, why)`` stands in for the result of an item whose worker died on
        every attempt (without it, :class:`WorkerCrashed` is raised)."""
        ...

    def close(self) -> None:
        """Release processes or the cluster connection."""
        ...


def _in_worker(function: Callable[[T], R], item: T) -> R:
    """The body every engine runs remotely: marks the process as a worker (the test fault
    hooks fire only there, never in the driver) and calls the function."""
    global _in_worker_process
    _in_worker_process = True
    return function(item)


def fault_point(key: str) -> None:
    """Test hook (see CRASH_ENV): crash or stall this worker when ``key`` matches."""
    if not _in_worker_process:
        return
    crash = os.environ.get(CRASH_ENV)
    if crash and fnmatch.fnmatch(key, crash):
        os._exit(70)  # like a segfault: no exception, no cleanup, the process is gone
    slow = os.environ.get(SLOW_ENV)
    if slow and fnmatch.fnmatch(key, slow):
        pid_dir = os.environ.get(PID_DIR_ENV)
        if pid_dir:
            (Path(pid_dir) / str(os.getpid())).write_text(key)
        time.sleep(SLOW_SECONDS)


def _crashed(item: T, why: str, on_crash: Callable[[T, str], R] | None) -> R:
    log.warning("worker died on %r twice: %s", item, why)
    if on_crash is None:
        raise WorkerCrashed(f"a worker process died while running {item!r}: {why}")
    return on_crash(item, why)


class _EngineBase:
    name = "base"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        return None


# ---------------------------------------------------------------- local process pool


@dataclass
class _Slot(Generic[T, R]):
    """One item in flight: its future, or its result once known."""

    item: T
    future: Future[R] | None
    result: R | None = None
    done: bool = False


class LocalEngine(_EngineBase):
    """A process pool on this machine; ``workers=1`` runs inline (no pool, no pickling).

    The pool is started on first use and kept until :meth:`close`, so a stage that maps in
    several runs (ingest between streaming units) does not pay for new processes each time.
    When a pool process dies, every task in flight fails with BrokenProcessPool and the
    culprit is unknown, so the pool is restarted and each of those items is run again on its
    own: an item that kills its worker a second time is the culprit."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise EngineError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Self:
        if self.workers > 1:
            # Fork the workers now, while this process has one thread: later, a stage's
            # background writer may be running, and a fork copies the locks it holds.
            self._executor().submit(int).result()
        return self

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        return self._pool

    def _restart(self) -> ProcessPoolExecutor:
        self.close()
        return self._executor()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None

    def map_ordered(self, function: Callable[[T], R], items: Iterable[T], *,
                    window: int | None = None,
                    on_crash: Callable[[T, str], R] | None = None) -> Iterator[R]:
        if self.workers <= 1:
            # A hard crash here takes the driver with it: isolation needs workers >= 2.
            for item in items:
                yield function(item)
            return
        limit = max(1, window or 2 * self.workers)
        pending: deque[_Slot[T, R]] = deque()
        try:
            for item in items:
                pending.append(_Slot(item, self._submit(function, item)))
                while len(pending) >= limit:
                    yield self._next(pending, function, on_crash)
            while pending:
                yield self._next(pending, function, on_crash)
        finally:
            for slot in pending:  # abandoned by the caller (an error, or it stopped early)
                if slot.future is not None:
                    slot.future.cancel()

    def _submit(self, function: Callable[[T], R], item: T) -> Future[R]:
        try:
            return self._executor().submit(_in_worker, function, item)
        except BrokenProcessPool as error:
            # The pool broke under an earlier item and nobody has looked yet: this one is
            # settled by the recovery, with the rest in flight.
            failed: Future[R] = Future()
            failed.set_exception(error)
            return failed

    def _next(self, pending: deque[_Slot[T, R]], function: Callable[[T], R],
              on_crash: Callable[[T, str], R] | None) -> R:
        head = pending[0]
        if not head.done:
            assert head.future is not None
            try:
                head.result, head.done = head.future.result(), True
            except BrokenProcessPool:
                self._recover(pending, function, on_crash)
        pending.popleft()
        return head.result  # type: ignore[return-value]

    def _recover(self, pending: deque[_Slot[T, R]], function: Callable[[T], R],
                 on_crash: Callable[[T, str], R] | None) -> None:
        """Restart the broken pool and settle every slot in flight, each item on its own."""
        log.warning("a worker process died; restarting the pool and retrying %d task(s) "
                    "one at a time", len(pending))
        self._restart()
        for slot in pending:
            if slot.done:
                continue
            assert slot.future is not None
            if slot.future.done() and slot.future.exception() is None:
                slot.result = slot.future.result()  # it finished before the pool broke
            else:
                slot.result = self._isolated(function, slot.item, on_crash)
            slot.done = True

    def _isolated(self, function: Callable[[T], R], item: T,
                  on_crash: Callable[[T, str], R] | None) -> R:
        for _ in range(CRASH_RETRIES):
            try:
                return self._executor().submit(_in_worker, function, item).result()
            except BrokenProcessPool:
                self._restart()
        return _crashed(item, "the worker process exited abruptly", on_crash)


# ---------------------------------------------------------------- Ray tasks


class RayEngine(_EngineBase):
    """Ray tasks on a cluster (``address``: ``auto``, ``host:port`` or ``ray://host:port``;
    None starts a private single-machine Ray).

    One task per item, ``max_retries`` so Ray itself reruns a task whose worker or node
    died; at most ``window`` tasks in flight (``workers`` when given, else twice the
    cluster's CPUs) so the object store holds a bounded number of results; results are
    fetched head first, which is the order the caller needs them in."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, *,
                 runtime_env: dict[str, Any] | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise EngineError(RAY_MISSING) from None
        self._ray: Any = ray  # typed loosely: Ray's own annotations are partial
        self.address = address
        self.workers = workers
        self.runtime_env = runtime_env
        self._owns_connection = False
        self._remote: Any = None

    def _connect(self) -> Any:
        if self._remote is not None:
            return self._remote
        ray = self._ray
        if not ray.is_initialized():
            _check_reachable(self.address)
            options: dict[str, Any] = {"address": self.address, "logging_level": logging.WARNING,
                                       "log_to_driver": False, "runtime_env": self.runtime_env}
            if self.address is None:
                options.update(num_cpus=self.workers, include_dashboard=False)
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise EngineError(f"cannot connect to the Ray cluster at "
                                  f"{self.address or 'a new local instance'}: {error}") from None
            self._owns_connection = True
        # Not retrying Python exceptions: a bug in a pure function fails the same way again.
        self._remote = ray.remote(_in_worker).options(
            num_cpus=1, max_retries=CRASH_RETRIES, retry_exceptions=False)
        return self._remote

    def default_window(self) -> int:
        if self.workers:
            return self.workers
        resources: dict[str, float] = self._ray.cluster_resources()
        cpus = int(resources.get("CPU", 1))
        return max(1, 2 * cpus)

    def map_ordered(self, function: Callable[[T], R], items: Iterable[T], *,
                    window: int | None = None,
                    on_crash: Callable[[T, str], R] | None = None) -> Iterator[R]:
        remote = self._connect()
        limit = max(1, window or self.default_window())
        pending: deque[tuple[T, Any]] = deque()
        for item in items:
            pending.append((item, remote.remote(function, item)))
            while len(pending) >= limit:
                yield self._get(*pending.popleft(), on_crash)
        while pending:
            yield self._get(*pending.popleft(), on_crash)

    def _get(self, item: T, ref: Any, on_crash: Callable[[T, str], R] | None) -> R:
        exceptions = self._ray.exceptions
        try:
            result: R = self._ray.get(ref)
            return result
        except exceptions.RayTaskError as error:
            raise error.as_instanceof_cause() from None  # the function's own exception
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError,
                exceptions.OutOfMemoryError) as error:
            return _crashed(item, f"{type(error).__name__}: {_first_line(error)}", on_crash)

    def close(self) -> None:
        if self._owns_connection and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns_connection = False
        self._remote = None


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast on a ``host:port`` nobody listens on: ray.init would retry for minutes."""
    if address is None or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise EngineError(f"--address {address!r} is not auto, host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise EngineError(f"cannot connect to the Ray cluster at {address}: {error}; is "
                          f"`ray start --head` running there, and is the port open?") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def get_engine(name: str = "local", *, workers: int | None = None,
               address: str | None = None) -> LocalEngine | RayEngine:
    """The engine called ``name``: ``local`` (a process pool of ``workers``, default 1) or
    ``ray`` (tasks on the cluster at ``address``; ``workers`` caps the tasks in flight)."""
    if name == "local":
        if address is not None:
            raise EngineError("--address is for the ray engine; add --engine ray")
        return LocalEngine(workers or 1)
    if name == "ray":
        return RayEngine(address, workers)
    raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "EngineError", "LocalEngine", "RayEngine", "WorkerCrashed",
           "fault_point", "get_engine"]
