"""Run by ``.trainers-venv/bin/python``: curate's Stage-2 reward that executes, inside TRL's
own ``GRPOTrainer``, against the test model server the calling test started.

The trainer is built as a user builds it (``reward_funcs=[make_trl_reward(url=..., ...)]``,
a dataset with the export's ``prompt``, ``solution``, ``episode_id`` and ``step_index``), on a
one-layer Llama made here from a config (no download, CPU). One training step runs the whole
loop (generate, reward, loss): the tiny model's completions are noise, so they score 0 without
a request. Then the trainer's own reward call (``_calculate_rewards``, what that step called)
is given the cases' completions, and scores them through the executor.

argv: CASES_JSON (a list of {"prompt", "completion", "solution", "episode_id", "step_index"}),
REWARD_KWARGS_JSON, OUTPUT_DIR. Prints the training step, then one line per case, as JSON
after MARK.
"""

import json
import sys
from pathlib import Path

from byte_tokenizer import byte_tokenizer  # beside this script
from datasets import Dataset
from transformers import LlamaConfig, LlamaForCausalLM
from trl import GRPOConfig, GRPOTrainer

from curate.rewards.executed import make_trl_reward

MARK = "curate: "  # the trainer prints its logs to stdout too


def main(cases_path: str, kwargs_json: str, output_dir: str) -> None:
    cases = json.loads(Path(cases_path).read_text(encoding="utf-8"))
    tokenizer = byte_tokenizer([c["prompt"] + c["completion"] for c in cases])
    tokenizer.eos_token = tokenizer.pad_token  # generation stops on it
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id))
    columns = ("prompt", "solution", "episode_id", "step_index")
    dataset = Dataset.from_list([{k: c[k] for k in columns} for c in cases])
    args = GRPOConfig(output_dir=output_dir, per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=4, max_steps=1, report_to="none", use_cpu=True,
                      save_strategy="no", logging_steps=1, bf16=False)
    reward = make_trl_reward(**json.loads(kwargs_json))
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                          processing_class=tokenizer)
    trainer.train()
    logged = [entry for entry in trainer.state.log_history if "reward" in entry]
    print(MARK + json.dumps({"trained_steps": trainer.state.global_step,
                      "logged_reward": logged[0]["reward"] if logged else None}))
    inputs = [{k: c[k] for k in columns} for c in cases]
    rewards = trainer._calculate_rewards(
        inputs, [c["prompt"] for c in cases], [c["completion"] for c in cases],
        [tokenizer(c["completion"])["input_ids"] for c in cases])
    for case, score in zip(cases, rewards[:, 0].tolist(), strict=True):
        print(MARK + json.dumps({"id": f"{case['episode_id']}:{case['step_index']}",
                          "completion": case["completion"], "score": score}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
