"""Fault injection for the crash tests (test-only; does nothing unless the variable is set).

``CURATE_FAULT=POINT`` kills the process with SIGKILL the first time it reaches ``POINT``;
``CURATE_FAULT=POINT@N`` the N-th time (e.g. ``ingest.after-unit@3``: after the third unit).
SIGKILL is the point: no ``finally``, no ``atexit``, no flush, exactly like a power cut or
the OOM killer. ``CURATE_FAULT=POINT@N:wait`` instead creates the file named by
``CURATE_FAULT_READY`` and waits there until that file is removed, so a test can act on a
process caught mid-run (send SIGTERM, start a second writer) and then let it go on. The
points are named where they are reached (``fault("...")``); tests/test_crash.py lists them.
Unlike curate.engines' CURATE_TEST_CRASH, which crashes a worker, this kills the process
that is writing.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

FAULT_ENV = "CURATE_FAULT"
READY_ENV = "CURATE_FAULT_READY"

_reached: Counter[str] = Counter()


def fault(point: str) -> None:
    """Die here when ``CURATE_FAULT`` names this point (and this is the chosen visit)."""
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    name, _, visit = wanted.partition("@")
    visit, _, mode = visit.partition(":")
    if name != point:
        return
    _reached[point] += 1
    if _reached[point] != (int(visit) if visit else 1):
        return
    if mode != "wait":
        os.kill(os.getpid(), signal.SIGKILL)
    ready = Path(os.environ[READY_ENV])
    ready.write_text(str(os.getpid()))
    while ready.exists():
        time.sleep(0.02)
