"""Stage-2 rewards that execute: the policy proposes one step, a frozen executor runs it.

As published for TraceR1's second stage, the policy proposes an action type and a *step
instruction* ("click the Save button in the toolbar"), or a whole action such as a tool call;
a frozen executor (a grounding model behind an OpenAI-compatible server, through the store's
answer cache) carries it out on the step's screenshot, and the reward compares the *executed*
action with the reference: 1 when it matches under the preset (the click lands on the target),
else 0 (``shaped=True`` gives the preset's graded credit instead).

Entry points, called the way each trainer's reward manager calls them:

- verl: :func:`compute_score` per sample (``NaiveRewardManager``) or with the lists a
  ``BatchRewardManager`` passes (``data_sources=``, ``solution_strs=``, ...);
- EasyR1: :func:`easyr1_compute_score` with ``reward_type: batch`` (a list of
  ``{"response", "ground_truth"}``) or ``sequential`` (one such dict);
- TRL: :func:`trl_reward` / :func:`make_trl_reward` (``completions`` and the ``solution``,
  ``episode_id``, ``step_index`` columns as keyword arguments).

A batch is executed in one concurrent call, so the reward worker is not serialised on the
network. The executor is configured by keyword arguments (verl ``reward_kwargs``, EasyR1
``reward_function_kwargs``), else per sample by ``extra_info`` keys, else by environment
variables: ``CURATE_EXECUTOR`` (default ``grounding``), ``CURATE_EXECUTOR_URL``,
``CURATE_EXECUTOR_MODEL``, ``CURATE_EXECUTOR_FAMILY``, ``CURATE_STORE`` (screenshots and the
answer cache), ``CURATE_EXECUTOR_CONCURRENCY``. Which step a sample is comes from
``extra_info`` (verl) or the ``episode_id``/``step_index`` columns (TRL); EasyR1 passes only
the ground truth, so there it must be the *step envelope* :func:`make_step_ground_truth`
writes. Nothing raises on bad input: the reward is 0 and the reason says why.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from curate.actions import Action, canonical_json, parse_action_text
from curate.errors import ActionParseError, CurateError
from curate.executors.base import Execution, Executor, ProposedStep, StepContext
from curate.rewards.entrypoints import (
    GroundTruth,
    completion_text,
    load_ground_truth,
    make_step_ground_truth,
    split_step_envelope,
)
from curate.rewards.match import score_step

ENV = {"executor": "CURATE_EXECUTOR", "url": "CURATE_EXECUTOR_URL",
       "model": "CURATE_EXECUTOR_MODEL", "family": "CURATE_EXECUTOR_FAMILY",
       "store": "CURATE_STORE", "concurrency": "CURATE_EXECUTOR_CONCURRENCY"}
_EXTRA_KEYS = {"executor": "executor", "url": "executor_url", "model": "executor_model",
               "family": "executor_family", "store": "store"}
MATCHED = 1.0 - 1e-9


# -- the proposed step --------------------------------------------------------------------------

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.DOTALL)
_INSTRUCTION_ARG = re.compile(r"""(?:^|,)\s*(?:step_)?instruction\s*=\s*("(?:[^"\\]|\\.)*")\s*""")


def parse_proposed_step(response: Any) -> ProposedStep:
    """The step a policy proposed, from its answer (``<answer>`` tags and ``<think>`` are
    stripped). Accepted: ``click(instruction="the Save button")`` (other arguments allowed),
    JSON ``{"action_type": "click", "step_instruction": "..."}``, a tool call
    ``{"name": ..., "arguments": {...}}``, or any action text (``type(text="hi")``).
    Raises ValueError with the reason."""
    if not isinstance(response, str):
        raise ValueError(f"the response is {type(response).__name__}, not text")
    text = _THINK.sub("", response)
    answer = _ANSWER.search(text)
    text = (answer.group(1) if answer else text).strip()
    if not text:
        raise ValueError("the response is empty")
    if text.startswith("{"):
        return _from_json(text)
    call = _CALL.match(text)
    if call is None:
        raise ValueError(f"expected an action such as click(instruction=\"...\"), got "
                         f"{text[:60]!r}")
    kind, arguments = call.groups()
    found = _INSTRUCTION_ARG.search(arguments)
    instruction = None
    if found:
        instruction = json.loads(found.group(1))
        arguments = (arguments[:found.start()] + arguments[found.end():]).strip(" ,")
    try:
        action = parse_action_text(f"{kind}({arguments})")
    except ActionParseError as error:
        raise ValueError(str(error)) from None
    return ProposedStep(kind, instruction, action)


def _from_json(text: str) -> ProposedStep:
    try:
        body = json.loads(text)
    except ValueError:
        raise ValueError(f"not JSON: {text[:60]!r}") from None
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    if "name" in body and "arguments" in body:  # a tool call
        arguments = body["arguments"]
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError:
                raise ValueError("tool-call arguments are not JSON") from None
        action = Action("tool_call", tool_name=str(body["name"]),
                        tool_args=canonical_json(arguments))
        return ProposedStep("tool_call", None, action)
    kind = body.get("action_type", body.get("type"))
    instruction = body.get("step_instruction", body.get("instruction"))
    if not isinstance(kind, str) or not (instruction is None or isinstance(instruction, str)):
        raise ValueError("expected action_type (text) and step_instruction (text)")
    fields: dict[str, Any] = {k: tuple(v) if k == "keys" else v for k, v in body.items()
                              if k not in ("action_type", "type", "step_instruction",
                                           "instruction")}
    try:
        action = Action(kind, **fields)
    except (TypeError, ActionParseError) as error:
        raise ValueError(str(error)) from None
    return ProposedStep(kind, instruction, action)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample to score: the response, its ground truth, its step and its options."""

    response: Any
    ground_truth: Any
    episode_id: str | None = None
    step_index: int | None = None
    options: Mapping[str, Any] | None = None


def _unwrap(sample: Sample) -> tuple[GroundTruth, str | None, int | None]:
    value, (episode, index) = split_step_envelope(sample.ground_truth)
    if sample.episode_id is not None:
        episode = sample.episode_id
    if sample.step_index is not None:
        index = sample.step_index
    return load_ground_truth(value), episode, index


# -- configuration and executors ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ExecutorConfig:
    executor: str = "grounding"
    url: str | None = None
    model: str | None = None
    family: str | None = None
    store: str | None = None
    concurrency: int = 8

    def options(self) -> dict[str, Any]:
        values = {"url": self.url, "model": self.model, "family": self.family,
                  "store": self.store, "concurrency": self.concurrency}
        return {k: v for k, v in values.items() if v is not None}


def resolve_config(options: Mapping[str, Any]) -> ExecutorConfig:
    """The options given (keyword options, then the sample's extra_info), then the
    environment."""
    values: dict[str, Any] = {}
    for name, variable in ENV.items():
        value = options.get(name)
        if value is None:
            value = os.environ.get(variable)
        if value is not None:
            values[name] = int(value) if name == "concurrency" else str(value)
    return ExecutorConfig(**values)


_EXECUTORS: dict[ExecutorConfig, Executor] = {}
_LOCK = threading.Lock()


def executor_for(config: ExecutorConfig) -> Executor:
    """One executor per configuration per process: its connection pool is reused."""
    from curate.executors.registry import get_executor

    with _LOCK:
        if config not in _EXECUTORS:
            _EXECUTORS[config] = get_executor(config.executor, **config.options())
        return _EXECUTORS[config]


# -- scoring ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ExecutedReward:
    """A sample's reward and how it came about."""

    score: float
    format: float
    outcome: str
    reason: str
    execution: Execution | None = None

    def as_verl(self) -> dict[str, float | str]:
        return {"score": self.score, "accuracy": self.score, "format": self.format,
                "executed": float(self.outcome == "executed"), "outcome": self.outcome,
                "reason": self.reason}

    def as_easyr1(self) -> dict[str, float]:
        return {"overall": self.score, "format": self.format, "accuracy": self.score,
                "executed": float(self.outcome == "executed")}


def score_executed(samples: Sequence[Sample], *, preset: str | None = None,
                   shaped: bool = False, **options: Any) -> list[ExecutedReward]:
    """Rewards for a batch: parse every proposal, run all executions through each executor
    in one concurrent call, score the executed actions against the references."""
    rewards: list[ExecutedReward | None] = [None] * len(samples)
    work: dict[ExecutorConfig, list[tuple[int, GroundTruth, tuple[str, int], ProposedStep]]] = {}
    for index, sample in enumerate(samples):
        try:
            truth, episode, step = _unwrap(sample)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            rewards[index] = ExecutedReward(0.0, 0.0, "bad_ground_truth",
                                            f"ground truth: {error}")
            continue
        try:
            proposed = parse_proposed_step(completion_text(sample.response))
        except ValueError as error:
            rewards[index] = ExecutedReward(0.0, 0.0, "unparsable", f"response: {error}")
            continue
        if episode is None or step is None:
            rewards[index] = ExecutedReward(0.0, 1.0, "no_step", (
                "the sample does not say which step it is (extra_info episode_id and "
                "step_index, or a step envelope from make_step_ground_truth)"))
            continue
        given = {k: v for k, v in options.items() if v is not None}
        config = resolve_config({**(sample.options or {}), **given})
        work.setdefault(config, []).append((index, truth, (episode, step), proposed))
    for config, items in work.items():
        try:
            contexts = load_step_contexts(config.store, {key for _, _, key, _ in items})
            executor = executor_for(config)
        except (CurateError, ValueError, TypeError, OSError) as error:
            for index, *_ in items:
                rewards[index] = ExecutedReward(0.0, 1.0, "unconfigured", str(error))
            continue
        executions = executor.execute_many([(contexts[key], proposed)
                                            for _, _, key, proposed in items])
        for (index, truth, _, _), execution in zip(items, executions, strict=True):
            rewards[index] = _score(execution, truth, preset, shaped)
    return [reward for reward in rewards if reward is not None]


def _score(execution: Execution, truth: GroundTruth, preset: str | None,
           shaped: bool) -> ExecutedReward:
    if not execution.success or execution.executed is None:
        return ExecutedReward(0.0, 1.0, execution.outcome,
                              f"{execution.outcome}: {execution.reason}", execution)
    step = score_step(execution.executed, truth.actions[0], preset=preset or truth.preset,
                      image_size=truth.image_size)
    score = step.score if shaped else float(step.score >= MATCHED)
    return ExecutedReward(score, 1.0, "executed", step.reason, execution)


def load_step_contexts(store: str | None, wanted: set[tuple[str, int]]
                       ) -> dict[tuple[str, int], StepContext]:
    """The screenshot, size, task and platform of each (episode, step), read from the store
    in one filtered pass per table; a step the store lacks gets a context without one."""
    if store is None:
        raise ValueError("no store to read screenshots from: set CURATE_STORE, or pass "
                         "store= in the reward kwargs")
    from curate.store.core import open_store

    opened = open_store(store)
    episodes = {episode for episode, _ in wanted}
    steps = opened.read_where_in("steps", "episode_id", episodes,
                                 columns=["episode_id", "step_index", "frame_id"])
    frame_of = {(row["episode_id"], row["step_index"]): row["frame_id"]
                for row in steps.to_pylist()}
    needed = {frame_of[key] for key in wanted if frame_of.get(key)}
    frames = {row["frame_id"]: row for row in opened.read_where_in(
        "frames", "frame_id", needed, columns=["frame_id", "width", "height", "bytes"]
    ).to_pylist()}
    info = {row["episode_id"]: row for row in opened.read_where_in(
        "episodes", "episode_id", episodes,
        columns=["episode_id", "instruction", "platform"]).to_pylist()}
    contexts = {}
    for episode, step in wanted:
        frame = frames.get(frame_of.get((episode, step)) or "")
        meta = info.get(episode, {})
        contexts[(episode, step)] = StepContext(
            episode, step, meta.get("platform") or "unknown", instruction=meta.get("instruction"),
            screenshot=frame["bytes"] if frame else None,
            frame_id=frame["frame_id"] if frame else None,
            width=frame["width"] if frame else None, height=frame["height"] if frame else None)
    return contexts


# -- verl ---------------------------------------------------------------------------------------

def compute_score(data_source: Any = None, solution_str: Any = None, ground_truth: Any = None,
                  extra_info: Mapping[str, Any] | None = None, *,
                  data_sources: Sequence[Any] | None = None,
                  solution_strs: Sequence[Any] | None = None,
                  ground_truths: Sequence[Any] | None = None,
                  extra_infos: Sequence[Mapping[str, Any] | None] | None = None,
                  preset: str | None = None, shaped: bool = False, **options: Any
                  ) -> dict[str, float | str] | list[dict[str, float | str]]:
    """verl's ``custom_reward_function``: one sample, or the lists of a batch reward manager
    (then a list of dicts). ``extra_info`` carries ``episode_id`` and ``step_index``."""
    if solution_strs is not None:
        assert ground_truths is not None
        extras = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
        samples = [_verl_sample(s, g, e) for s, g, e in
                   zip(solution_strs, ground_truths, extras, strict=True)]
        return [r.as_verl() for r in score_executed(samples, preset=preset, shaped=shaped,
                                                    **options)]
    [reward] = score_executed([_verl_sample(solution_str, ground_truth, extra_info)],
                              preset=preset, shaped=shaped, **options)
    return reward.as_verl()


def _verl_sample(response: Any, truth: Any, extra: Mapping[str, Any] | None) -> Sample:
    extra = dict(extra or {})
    index = extra.get("step_index")
    return Sample(response, truth, extra.get("episode_id"),
                  None if index is None else int(index),
                  {k: extra[v] for k, v in _EXTRA_KEYS.items() if extra.get(v) is not None})


# -- EasyR1 -------------------------------------------------------------------------------------

def easyr1_compute_score(reward_inputs: list[dict[str, Any]] | dict[str, Any], *,
                         preset: str | None = None, shaped: bool = False, **options: Any
                         ) -> list[dict[str, float]] | dict[str, float]:
    """EasyR1's reward function (``reward_type: batch`` or ``sequential``); the ground truth
    is the step envelope of :func:`make_step_ground_truth`."""
    single = isinstance(reward_inputs, dict)
    inputs = [reward_inputs] if isinstance(reward_inputs, dict) else reward_inputs
    samples = [Sample(item.get("response"), item.get("ground_truth")) for item in inputs]
    scores = [r.as_easyr1() for r in score_executed(samples, preset=preset, shaped=shaped,
                                                    **options)]
    return scores[0] if single else scores


# -- TRL ----------------------------------------------------------------------------------------

def trl_reward(completions: Sequence[Any], solution: Sequence[Any] | None = None,
               episode_id: Sequence[str] | None = None, step_index: Sequence[int] | None = None,
               **kwargs: Any) -> list[float]:
    """TRL's GRPO reward: one float per completion; the export's ``solution``,
    ``episode_id`` and ``step_index`` columns arrive as keyword arguments."""
    return _trl(completions, solution, episode_id, step_index, {})


def make_trl_reward(*, name: str | None = None, preset: str | None = None,
                    shaped: bool = False, **options: Any) -> Callable[..., list[float]]:
    """A TRL reward function bound to an executor configuration (url, model, family,
    store, ...), named for TRL's logs."""
    def reward(completions: Sequence[Any], solution: Sequence[Any] | None = None,
               episode_id: Sequence[str] | None = None,
               step_index: Sequence[int] | None = None, **kwargs: Any) -> list[float]:
        return _trl(completions, solution, episode_id, step_index,
                    {"preset": preset, "shaped": shaped, **options})

    reward.__name__ = reward.__qualname__ = name or "curate_executed_reward"
    return reward


def _trl(completions: Sequence[Any], solution: Sequence[Any] | None,
         episode_id: Sequence[str] | None, step_index: Sequence[int] | None,
         options: dict[str, Any]) -> list[float]:
    if solution is None:
        raise ValueError("the dataset has no 'solution' column: TRL passes extra columns to "
                         "reward functions by name, and curate's exports name it 'solution'")
    count = len(completions)
    episodes = list(episode_id) if episode_id is not None else [None] * count
    steps = list(step_index) if step_index is not None else [None] * count
    samples = [Sample(c, s, e, None if i is None else int(i)) for c, s, e, i in
               zip(completions, solution, episodes, steps, strict=True)]
    return [r.score for r in score_executed(samples, **options)]


__all__ = ["ExecutedReward", "ExecutorConfig", "Sample", "compute_score",
           "easyr1_compute_score", "executor_for", "make_step_ground_truth", "make_trl_reward",
           "parse_proposed_step", "resolve_config", "score_executed", "trl_reward"]
