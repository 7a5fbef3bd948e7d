"""``python``: a code tool call run in a sandboxed subprocess, returning its output.

The code (the call's ``code`` argument, or its whole arguments when they are a string) runs in
a fresh ``python -I`` (isolated: no user site, no PYTHON* variables, no current directory on
the path) in an empty temporary folder, with an empty environment, with:

* time: a wall-clock timeout and an RLIMIT_CPU of the same seconds;
* memory: RLIMIT_AS (address space), so a runaway allocation fails with MemoryError;
* output: stdout and stderr each cut at ``max_output`` bytes (read in full, kept bounded);
* no network: the child is started in its own network namespace (``unshare --net``, which
  needs root or CAP_SYS_ADMIN, as in CI's containers here) so that no socket can reach
  anything; where unshare is refused, a prelude replaces ``socket.socket`` and
  ``socket.create_connection`` before the code runs (weaker: recorded in provenance).

Hitting a limit is the ``limit`` outcome with which limit it was; a non-zero exit is
``executed`` (the program ran; its stderr is the feedback).
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from curate.executors.base import Execution, ProposedStep, StepContext
from curate.executors.registry import register

CODE_TOOLS = frozenset({"python", "python_interpreter", "execute_python", "run_python", "code",
                        "code_interpreter", "ipython"})
_PRELUDE = (
    "import socket as _s\n"
    "def _refuse(*a, **k):\n    raise OSError('network access is disabled in this sandbox')\n"
    "_s.socket = _refuse; _s.create_connection = _refuse; del _s, _refuse\n"
)


def code_of(tool_name: str | None, tool_args: str | None) -> str | None:
    """The program a tool call asks to run, or None when it is not a code call."""
    if not tool_name or tool_name.lower() not in CODE_TOOLS:
        return None
    try:
        args: Any = json.loads(tool_args) if tool_args else None
    except json.JSONDecodeError:
        return tool_args
    if isinstance(args, str):
        return args
    if isinstance(args, dict):
        for key in ("code", "source", "script", "command"):
            if isinstance(args.get(key), str):
                return str(args[key])
    return None


class PythonExecutor:
    name = "python"
    needs_screenshot = False
    version = 1

    def __init__(self, *, timeout: float = 5.0, memory_mb: int = 256,
                 max_output: int = 64_000, concurrency: int | None = None) -> None:
        self.timeout = timeout
        self.memory = memory_mb << 20
        self.max_output = max_output
        self.concurrency = concurrency or 1
        self.isolated_net = shutil.which("unshare") is not None and _unshare_works()

    def execute(self, context: StepContext, proposed: ProposedStep) -> Execution:
        action = proposed.action
        code = code_of(action.tool_name, action.tool_args) if action is not None else None
        if code is None:
            return Execution(self.name, "not_executable",
                             reason=f"python runs code tool calls, not {proposed.action_type}"
                             + (f" {action.tool_name!r}" if action and action.tool_name else ""))
        return self._run(code, action)

    def execute_many(self, items: Sequence[tuple[StepContext, ProposedStep]]
                     ) -> list[Execution]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda item: self.execute(*item), items))

    def _run(self, code: str, action: Any) -> Execution:
        command = [sys.executable, "-I", "-c", _PRELUDE + code]
        if self.isolated_net:
            command = ["unshare", "--net", *command]
        provenance = {"timeout_s": self.timeout, "memory_bytes": self.memory,
                      "max_output": self.max_output,
                      "network": "own namespace" if self.isolated_net else "socket prelude"}
        with tempfile.TemporaryDirectory(prefix="curate-python-") as folder:
            try:
                done = subprocess.run(command, cwd=folder, env={}, capture_output=True,
                                      timeout=self.timeout, preexec_fn=self._limits,
                                      check=False)
            except subprocess.TimeoutExpired:
                return Execution(self.name, "limit", reason=f"time limit: still running after "
                                 f"{self.timeout:g} s", provenance=provenance)
        stdout = done.stdout[:self.max_output].decode("utf-8", "replace")
        stderr = done.stderr[:self.max_output].decode("utf-8", "replace")
        if len(done.stdout) > self.max_output or len(done.stderr) > self.max_output:
            return Execution(self.name, "limit", raw=stdout, provenance=provenance,
                             reason=f"output limit: more than {self.max_output} bytes")
        if "MemoryError" in stderr:
            return Execution(self.name, "limit", raw=stdout, provenance=provenance,
                             reason=f"memory limit: {self.memory >> 20} MB of address space")
        if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            # The CPU limit is a backstop one second past the wall-clock one; on a busy
            # machine it can still fire first, and it is the same limit to the caller.
            return Execution(self.name, "limit", raw=stdout, provenance=provenance,
                             reason=f"time limit: used {self._cpu_seconds()} s of CPU")
        if done.returncode < 0:
            return Execution(self.name, "limit", raw=stdout, provenance=provenance,
                             reason=f"killed by signal {-done.returncode}")
        feedback = stdout if done.returncode == 0 else (
            f"exit status {done.returncode}: {stderr.strip()[-2000:]}")
        return Execution(self.name, "executed", executed=action, reason=feedback, raw=stdout,
                         provenance={**provenance, "exit_status": done.returncode})

    def _limits(self) -> None:
        resource.setrlimit(resource.RLIMIT_AS, (self.memory, self.memory))
        seconds = self._cpu_seconds()
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))

    def _cpu_seconds(self) -> int:
        """CPU seconds a program may use: past the wall-clock limit, so that one decides."""
        return max(1, int(self.timeout + 0.999)) + 1


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=5,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


register("python", lambda **options: PythonExecutor(**options))
