"""curate.without_pandas: the refusal only in a process that ends with the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# pyarrow remembers a refused pandas import for the rest of the process: after it, a
# categorical Series given to pa.array comes out as plain integers, not a dictionary array.
_AFTER = (
    "import pyarrow as pa\n"
    "with pandas_refused():\n"
    "    pa.array([1, 2])\n"
    "import pandas as pd\n"
    "print(pa.array(pd.Series(['a', 'b', 'a'], dtype='category')).type)\n"
)


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1])
    return result.stdout.strip().splitlines()[-1]


def test_a_process_that_did_not_arm_the_refusal_keeps_pandas_for_pyarrow() -> None:
    # What click's CliRunner or a Python caller of the command gets: pandas stays usable.
    out = _run("import sys\nfrom curate.without_pandas import pandas_refused\n" + _AFTER)
    assert out.startswith("dictionary<")


def test_the_armed_refusal_keeps_pandas_out() -> None:
    code = ("import sys\nfrom curate.without_pandas import pandas_refused, "
            "refuse_in_this_process\nrefuse_in_this_process()\n"
            "with pandas_refused():\n"
            "    try:\n        import pandas\n    except ImportError:\n"
            "        print('refused')\n    else:\n        print('imported')\n")
    assert _run(code) == "refused"
