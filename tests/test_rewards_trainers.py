"""The reward entry points loaded and called the way verl, EasyR1 and TRL do it.

verl, TRL and EasyR1 need torch and GPUs-class dependencies that this CPU machine does not
install, so each trainer's loading and calling code is followed from its source (verl 0.9.1
``verl/utils/import_utils.py:load_module`` and ``NaiveRewardManager``; EasyR1
``verl/workers/reward/function.py`` of hiyouga/EasyR1 and of the author's fork; TRL's
``GRPOTrainer._calculate_rewards``), step for step, on the real files.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections import defaultdict
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from curate.actions import Action, Target
from curate.rewards import make_ground_truth
from curate.rewards.tracer1 import TraceStep, format_answer

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "rewards.md"
CARD = REPO / "data_cards" / "dataset_card.md.j2"
TRUTH = make_ground_truth([Action("click", x=0.5, y=0.4,
                                  target=Target(x0=0.45, y0=0.35, x1=0.55, y1=0.45)),
                           Action("type", text="cheap flights")])
RIGHT = 'click(x=0.5, y=0.4)\ntype(text="cheap flights")'


def load_like_verl(module_path: str) -> ModuleType:
    """verl's load_module: ``pkg://`` imports the module; a file path is executed as a module
    that is NOT registered in sys.modules."""
    if module_path.startswith("pkg://"):
        return importlib.import_module(module_path[len("pkg://"):].replace("/", "."))
    if not os.path.exists(module_path):
        raise FileNotFoundError(f"Custom module file not found: {module_path=}")
    spec = importlib.util.spec_from_file_location(
        f"custom_module_{hash(os.path.abspath(module_path))}", module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise RuntimeError(f"Error loading module from {module_path=}") from error
    return module


def load_like_easyr1(path: str) -> ModuleType:
    """EasyR1's reward manager: the file runs as module ``custom_reward_fn``, registered."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"Reward function file {path} not found.")
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop("custom_reward_fn", None)
    return module


def verl_naive_manager(reward_fn: Any, responses: list[str], truths: list[str]
                       ) -> tuple[list[float], dict[str, list[Any]]]:
    """What verl's NaiveRewardManager does per sample with a custom reward function
    (``reward_kwargs`` merged in by get_custom_reward_fn's partial)."""
    rewards, extra = [], defaultdict(list)
    for index, (response, truth) in enumerate(zip(responses, truths, strict=True)):
        score = reward_fn(data_source="curate/stage1", solution_str=response,
                          ground_truth=truth, extra_info={"index": index})
        if isinstance(score, dict):
            rewards.append(score["score"])
            for key, value in score.items():
                extra[key].append(value)
        else:
            rewards.append(score)
    return rewards, extra


def _call_with_kwargs(raw_fn: Any, extra_kwargs: dict[str, Any], *args: Any,
                      **kwargs: Any) -> Any:
    return raw_fn(*args, **{**kwargs, **extra_kwargs})  # verl's merge: config wins


def docs_wrapper(tmp_path: Path) -> Path:
    block = re.search(r"<!-- reward-wrapper -->\s*```python\n(.*?)```",
                      DOCS.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None, "docs/rewards.md shows no wrapper file"
    path = tmp_path / "curate_reward.py"
    path.write_text("\n".join(line.strip() for line in block.group(1).splitlines()) + "\n",
                    encoding="utf-8")
    return path


def test_verl_loads_the_entry_point_through_pkg_as_the_card_says() -> None:
    card = CARD.read_text(encoding="utf-8")
    found = re.search(r"custom_reward_function\.path=(\S+)`", card)
    assert found is not None and found.group(1) == "pkg://curate.rewards.entrypoints"
    module = load_like_verl(found.group(1))
    reward_fn = partial(_call_with_kwargs, module.compute_score, {"preset": "aitw"})
    rewards, extra = verl_naive_manager(reward_fn, [RIGHT, "garbage"], [TRUTH, TRUTH])
    assert rewards[0] == 1.0 and rewards[1] == 0.0
    assert set(extra) == {"score", "accuracy", "format", "type_match", "parsed_steps", "reason"}


def test_verl_cannot_run_the_entrypoints_file_by_path_but_can_run_the_docs_wrapper(
        tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="Error loading module"):
        load_like_verl(str(REPO / "curate" / "rewards" / "entrypoints.py"))
    module = load_like_verl(str(docs_wrapper(tmp_path)))
    rewards, _ = verl_naive_manager(partial(_call_with_kwargs, module.compute_score, {}),
                                    [RIGHT], [TRUTH])
    assert rewards == [1.0]


def test_easyr1_runs_the_docs_wrapper_in_both_batch_conventions(tmp_path: Path) -> None:
    module = load_like_easyr1(str(docs_wrapper(tmp_path)))
    # reward_function_kwargs are bound with a partial, as EasyR1's manager does
    reward_fn = partial(module.easyr1_compute_score)
    inputs = [{"response": RIGHT, "response_length": 12, "ground_truth": TRUTH},
              {"response": "garbage", "response_length": 1, "ground_truth": TRUTH}]
    scores = reward_fn(inputs)  # current EasyR1, reward_type batch
    assert [s["overall"] for s in scores] == [1.0, 0.0]
    # the author's fork: BatchFunctionRewardManager calls reward_fn(responses, ground_truths)
    assert reward_fn([RIGHT, "garbage"], [TRUTH, TRUTH]) == scores
    metrics: dict[str, list[float]] = defaultdict(list)
    for score in scores:  # EasyR1 collects every key as a metric: numbers only
        for key, value in score.items():
            metrics[key].append(value)
    assert all(isinstance(v, float) for values in metrics.values() for v in values)
    truth = format_answer([TraceStep("click", "click on Send", "sent", done=True)])
    tracer = partial(module.tracer1_compute_score, format_weight=0.1)
    answer = f"<think>t</think><answer>{truth}</answer>"
    assert tracer([answer], [truth]) == [{"overall": 1.0, "format": 1.0, "accuracy": 1.0}]


def test_trl_calls_reward_funcs_with_keywords_and_every_extra_column() -> None:
    from curate.rewards import make_trl_reward, trl_reward

    completions = [[{"role": "assistant", "content": RIGHT}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "garbage"}]}]]
    # GRPOTrainer: reward_func(prompts=..., completions=..., completion_ids=...,
    # **extra dataset columns, trainer_state=...)
    kwargs = {"prompts": [[{"role": "user", "content": "task"}]] * 2,
              "completions": completions, "completion_ids": [[1, 2], [3]],
              "solution": [TRUTH, TRUTH], "id": ["a", "b"], "images": [[], []],
              "trainer_state": object()}
    assert trl_reward(**kwargs) == [1.0, 0.0]
    named = make_trl_reward(preset="aitw")
    assert named.__name__ == "curate_reward_aitw" and named(**kwargs) == [1.0, 0.0]
