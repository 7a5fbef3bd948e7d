"""Batch reward benchmark (issue 17): curate's EasyR1 TraceR1 reward on 1,000 answers of 10 steps.

    .venv/bin/python benchmarks/bench_rewards.py [--answers 1000] [--steps 10]
        [--upstream /path/to/cheryyunl+EasyR1 checkout or git dir]

Prints the time of ``curate.rewards.easyr1.compute_score`` on one core against the 1 s budget,
with every reference distinct (no reference cache hits) and as GRPO scores them (5 responses
per reference), and, when the author's ``gui.py`` can be read from ``--upstream``, its time on
the same rows side by side (the ratio curate / author).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from compare_tracer1_reward import load_upstream_reward

from curate.rewards import tracer1_score
from curate.rewards.easyr1 import compute_score
from curate.rewards.tracer1 import TraceStep, format_answer

TYPES = ["click", "input_text", "scroll", "open_app", "navigate_back", "wait", "long_press"]
BUDGET_S = 1.0


def make_rows(answers: int, steps: int, per_reference: int, seed: int = 3
              ) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    predicts, truths = [], []
    for index in range(answers):
        if index % per_reference == 0:
            reference = [TraceStep(rng.choice(TYPES), f"do thing {index} {k} on element {k}",
                                   f"screen {index} after step {k}", k == steps - 1)
                         for k in range(steps)]
            truth = format_answer(reference)
        guess = [step if rng.random() < 0.7 else TraceStep(rng.choice(TYPES), "guess",
                                                           "a screen", step.done)
                 for step in reference]
        if rng.random() < 0.3:
            rng.shuffle(guess)
        predicts.append(f"<think>plan {index}</think><answer>{format_answer(guess)}</answer>")
        truths.append(truth)
    return predicts, truths


def best_time(fn: Callable[[list[str], list[str]], object], predicts: list[str],
              truths: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn(predicts, truths)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--upstream", type=Path, default=None,
                        help="the author's EasyR1 fork (a checkout or a bare git directory)")
    args = parser.parse_args()
    upstream = load_upstream_reward(args.upstream) if args.upstream else None
    for label, per_reference in (("distinct references", 1), ("5 responses per reference", 5)):
        tracer1_score._reference.cache_clear()
        predicts, truths = make_rows(args.answers, args.steps, per_reference)
        ours = best_time(compute_score, predicts, truths, args.repeat)
        line = (f"{label}: curate {ours * 1000:.0f} ms for {args.answers} answers of "
                f"{args.steps} steps = {ours / BUDGET_S:.2f}x the {BUDGET_S:.0f} s budget")
        if upstream is not None:
            theirs = best_time(upstream, predicts, truths, args.repeat)
            line += f"; author's gui.py {theirs * 1000:.0f} ms; curate / author {ours / theirs:.2f}"
        print(line)


if __name__ == "__main__":
    main()
