"""Run a ``curate`` command the way a user does: the CLI entry point in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

# The entry point itself (curate.cli.main), not click's CliRunner: only a process that ends
# with the command refuses pandas (curate.without_pandas), and that is what is checked.
_PROGRAM = (
    "import sys\nfrom curate.cli import main\n"
    "sys.argv = ['curate', *sys.argv[1:]]\n"
    "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code\n"
    "print('pandas' in sys.modules)"
)


def run_without_pandas(*args: str) -> None:
    """Run ``curate ARGS...`` in a fresh interpreter; it must succeed and never import
    pandas."""
    result = subprocess.run([sys.executable, "-c", _PROGRAM, *args], capture_output=True,
                            text=True, check=True)
    assert result.stdout.splitlines()[-1] == "False", result.stdout
