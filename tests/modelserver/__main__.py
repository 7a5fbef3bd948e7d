"""Run the test server in its own process: ``python -m modelserver --family F --targets FILE``.

Prints its URL on the first line of stdout, then serves until stdin closes. The request count
is at ``GET /stats``. Benchmarks use it so the server's work does not share the client's GIL.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .server import ModelServer, grounding_responder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True)
    parser.add_argument("--targets", type=Path, required=True,
                        help="JSON object: name -> [x0, y0, x1, y1] as fractions")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    targets = {name: tuple(box) for name, box in json.loads(args.targets.read_text()).items()}
    with ModelServer(grounding_responder(args.family, targets), latency=args.latency) as server:
        print(server.url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
