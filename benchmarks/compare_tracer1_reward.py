"""curate's TraceR1 reward beside the author's public ``gui.py``, on the same rows (issue 17).

    .venv/bin/python benchmarks/compare_tracer1_reward.py --upstream DIR [--dataset D | --store S]

``--upstream`` is the author's EasyR1 fork (``cheryyunl/EasyR1``): a checkout, or a bare git
directory as the search tool's ``fetch`` leaves it (``.../cheryyunl+EasyR1/repo``). Its
``examples/reward_function/gui.py`` is read from there at run time, written to a temporary
file outside the project and loaded by path, as EasyR1 loads it: nothing of it is copied into
curate. ``--dataset`` is an ``easyr1`` export folder (its ``answer`` column gives the
references), ``--store`` a curate store (whole episodes become references); without either
a few built-in references are used. For each reference the script
scores the reference itself and perturbed answers with both rewards and prints both
``overall`` scores side by side; ``docs/rewards.md`` explains the differences.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.rewards.easyr1 import compute_score
from curate.rewards.tracer1 import TraceStep, format_answer, parse_answer, steps_from_actions

GUI_PY = "examples/reward_function/gui.py"
BatchReward = Callable[[list[str], list[str]], list[dict[str, float]]]

BUILT_IN = [
    [TraceStep("open_app", "open the Mail app", "Mail inbox"),
     TraceStep("click", "click on Compose", "empty draft"),
     TraceStep("input_text", "type 'Ada' in the To field", "recipient filled"),
     TraceStep("click", "click on Send", "message sent", done=True)],
    [TraceStep("click", "click on the search bar", "keyboard open"),
     TraceStep("input_text", "type 'weather' in the search bar", "suggestions listed"),
     TraceStep("click", "click on the first suggestion", "forecast shown"),
     TraceStep("scroll", "scroll down to the weekly forecast", "week listed"),
     TraceStep("scroll", "scroll down to the hourly chart", "chart shown"),
     TraceStep("scroll", "scroll down to the radar", "radar shown"),
     TraceStep("navigate_back", "go back to the results", "results", done=True)],
]


def load_upstream_reward(upstream: Path) -> BatchReward:
    """The author's ``compute_score``, read from the fork and loaded by path like EasyR1."""
    file = upstream / GUI_PY
    if file.is_file():
        source = file.read_text(encoding="utf-8")
    else:  # a bare git directory
        source = subprocess.run(["git", "--git-dir", str(upstream), "show", f"HEAD:{GUI_PY}"],
                                check=True, capture_output=True, text=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="tracer1_gui_"))
    path = folder / "gui.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn"] = module
    spec.loader.exec_module(module)
    reward: BatchReward = module.compute_score
    return reward


def perturbations(steps: list[TraceStep], rng: random.Random) -> dict[str, str]:
    """The reference and its perturbations, as responses (think/answer tags around them)."""
    def tagged(items: list[TraceStep]) -> str:
        return f"<think>plan</think><answer>{format_answer(items)}</answer>"

    def with_done(items: list[TraceStep], last_only: bool = True) -> list[TraceStep]:
        return [TraceStep(s.action_type, s.step_instruction, s.state,
                          (k == len(items) - 1) if last_only else True)
                for k, s in enumerate(items)]

    shuffled = steps[:]
    for _ in range(20):
        rng.shuffle(shuffled)
        if shuffled != steps:
            break
    wrong = "click" if steps[0].action_type != "click" else "scroll"
    retyped = [TraceStep(wrong, s.step_instruction, s.state, s.done) for s in steps]
    gibberish = [TraceStep(s.action_type, "xyz", "nothing", s.done) for s in steps]
    return {
        "reference": tagged(steps),
        "reference, no tags": format_answer(steps),
        "reversed": tagged(with_done(steps[::-1])),
        "shuffled": tagged(with_done(shuffled)),
        "truncated to 1": tagged(with_done(steps[:1])),
        "first half": tagged(steps[: max(1, len(steps) // 2)]),
        "padded with 2 waits": tagged(with_done(steps + [TraceStep("wait", "wait", "")] * 2)),
        "every type wrong": tagged(retyped),
        "right types, nonsense text": tagged(gibberish),
        "first step 3x": tagged(with_done(steps[:1] * 3 + steps[1:])),
        "never done": tagged([TraceStep(s.action_type, s.step_instruction, s.state)
                              for s in steps]),
        "done on every step": tagged(with_done(steps, last_only=False)),
        "steps after an answer": tagged(with_done([*steps[:-1], TraceStep("answer", "ok", ""),
                                                   *steps[-1:]])),
        "broken JSON": tagged(steps).replace('"action": {', '"action": {{', 1),
        "4x as long": tagged(with_done(steps * 4)),
    }


def store_references(store: Path, limit: int) -> list[str]:
    """Whole episodes of a curate store as TraceR1 answers (every step, the last one done),
    the step instruction where the source recorded one; states are not in the store yet."""
    from curate.store.core import open_store

    steps = open_store(store).read("steps", columns=["episode_id", "step_index", "action",
                                                     "step_instruction"]).to_pylist()
    episodes: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(steps, key=lambda r: (r["episode_id"], r["step_index"])):
        episodes.setdefault(row["episode_id"], []).append(row)
    answers = []
    for rows in episodes.values():
        if len(rows) < 2:
            continue
        types = [row["action"]["type"] for row in rows]
        instructions = [row["step_instruction"] or "" for row in rows]
        answers.append(format_answer(steps_from_actions(types, instructions, [None] * len(rows),
                                                        complete=True)))
    return answers[:limit]


def references(dataset: Path | None, limit: int) -> list[str]:
    if dataset is None:
        return [format_answer(steps) for steps in BUILT_IN]
    import pyarrow.parquet as pq

    # Only the easyr1 configs: a full export (the tracer1 recipe) has verl configs whose
    # `answer` is a ground-truth JSON, and plain ones with no `answer` at all.
    files = sorted(dataset.glob("data/*_easyr1/*.parquet"))
    answers: list[str] = []
    for file in files:
        answers.extend(pq.read_table(file, columns=["answer"]).column("answer").to_pylist())
        if len(answers) >= limit:
            break
    return answers[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", type=Path, required=True,
                        help="the author's EasyR1 fork: a checkout or a bare git directory")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="an easyr1 export folder whose answers are the references")
    parser.add_argument("--store", type=Path, default=None,
                        help="a curate store: its episodes (2 steps or more) as references")
    parser.add_argument("--limit", type=int, default=3,
                        help="references read from --dataset or --store")
    parser.add_argument("--state-weight", type=float, default=0.0)
    args = parser.parse_args()
    theirs = load_upstream_reward(args.upstream)
    rng = random.Random(11)
    print(f"{'answer':<28} {'author':>7} {'curate':>7}   curate's reason")
    truths = (store_references(args.store, args.limit) if args.store
              else references(args.dataset, args.limit))
    totals: dict[str, list[tuple[float, float]]] = {}
    for number, truth in enumerate(truths):
        steps = [parsed.step for parsed in parse_answer(truth).steps]
        print(f"-- reference {number}: {len(steps)} steps: "
              + ", ".join(s.action_type for s in steps))
        cases = perturbations(steps, rng)
        names, responses = list(cases), list(cases.values())
        author = theirs(responses, [truth] * len(responses))
        ours: list[dict[str, Any]] = compute_score(responses, [truth] * len(responses),
                                                   state_weight=args.state_weight, reasons=True)
        for name, a, c in zip(names, author, ours, strict=True):
            print(f"{name:<28} {a['overall']:7.3f} {c['overall']:7.3f}   {c['reason'][:90]}")
            totals.setdefault(name, []).append((a["overall"], c["overall"]))
    print(f"-- mean over {len(truths)} references")
    for name, pairs in totals.items():
        author_mean = sum(a for a, _ in pairs) / len(pairs)
        curate_mean = sum(c for _, c in pairs) / len(pairs)
        print(f"{name:<28} {author_mean:7.3f} {curate_mean:7.3f}")


if __name__ == "__main__":
    main()
