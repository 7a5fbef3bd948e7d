"""Run by ``.trainers-venv/bin/python``: curate's Stage-2 reward that executes, inside verl's
own reward managers, against the test model server the calling test started.

verl is configured as a user would: ``reward.custom_reward_function`` names
``pkg://curate.rewards.executed`` / ``compute_score`` with the executor in
``reward_kwargs``, and ``verl.trainer.ppo.reward.load_reward_manager`` builds the reward loop's
``naive`` manager from it; its ``run_single`` is awaited per sample, all at once, as the
reward loop does. The same function is then given to the ``BatchRewardManager`` (one call per
batch with lists). Responses are tokenised with a byte-level BPE trained here (no download),
so they decode back exactly.

argv: CASES_JSON (a list of {"response", "data_source", "ground_truth", "extra_info"}),
REWARD_KWARGS_JSON. Prints one JSON line per case and manager.
"""

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import torch
from byte_tokenizer import byte_tokenizer  # beside this script
from omegaconf import OmegaConf
from transformers import PreTrainedTokenizerFast
from verl import DataProto
from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager
from verl.workers.reward_manager.batch import BatchRewardManager

PATH = "pkg://curate.rewards.executed"


def batch_of(cases: list[dict], tokenizer: PreTrainedTokenizerFast) -> DataProto:
    """A rollout batch as verl's trainer hands it to the reward: left-padded prompts,
    right-padded responses, one attention mask over both."""
    encoded = [tokenizer(case["response"])["input_ids"] for case in cases]
    width = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id
    responses = torch.tensor([ids + [pad] * (width - len(ids)) for ids in encoded])
    prompts = torch.full((len(cases), 2), pad)
    prompts[:, 1] = encoded[0][0]
    mask = torch.tensor([[0, 1] + [1] * len(ids) + [0] * (width - len(ids)) for ids in encoded])
    objects = lambda values: np.array(values, dtype=object)  # noqa: E731
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "attention_mask": mask},
        non_tensors={"data_source": objects([c["data_source"] for c in cases]),
                     "reward_model": objects([{"style": "rule", "ground_truth": c["ground_truth"]}
                                              for c in cases]),
                     "extra_info": objects([dict(c["extra_info"]) for c in cases])})


async def reward_loop(manager, data: DataProto) -> list[dict]:
    return await asyncio.gather(*(manager.run_single(data[i:i + 1]) for i in range(len(data))))


def main(cases_path: str, kwargs_json: str) -> None:
    cases = json.loads(Path(cases_path).read_text(encoding="utf-8"))
    reward_kwargs = json.loads(kwargs_json)
    tokenizer = byte_tokenizer([case["response"] for case in cases])
    config = OmegaConf.create({"reward": {
        "custom_reward_function": {"path": PATH, "name": "compute_score",
                                   "reward_kwargs": reward_kwargs},
        "reward_manager": {"source": "register", "name": "naive"}}})
    manager = load_reward_manager(config, tokenizer)
    loop = manager.loop
    results = loop.run_until_complete(reward_loop(manager, batch_of(cases, tokenizer)))
    for case, result in zip(cases, results, strict=True):
        info = result["reward_extra_info"]
        print(json.dumps({"manager": "reward_loop.naive", "id": case["extra_info"]["id"],
                          "score": result["reward_score"], "outcome": info["outcome"]}))
    from verl.utils.import_utils import load_extern_object

    batch_manager = BatchRewardManager(tokenizer, 0, load_extern_object(PATH, "compute_score"),
                                       **reward_kwargs)
    assert get_custom_reward_fn(config) is not None
    out = batch_manager(batch_of(cases, tokenizer), return_dict=True)
    lengths = [len(tokenizer(c["response"])["input_ids"]) for c in cases]
    for i, case in enumerate(cases):
        print(json.dumps({"manager": "batch", "id": case["extra_info"]["id"],
                          "score": float(out["reward_tensor"][i, lengths[i] - 1]),
                          "outcome": out["reward_extra_info"]["outcome"][i]}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
