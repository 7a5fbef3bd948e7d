"""Run by ``.trainers-venv/bin/python``: load a curate TRL export with ``datasets`` as TRL's
GRPO script does, render each prompt with TRL's own ``maybe_apply_chat_template`` and call
curate's reward as ``GRPOTrainer`` calls ``reward_funcs``: keywords, with every extra column.

argv: DIST CONFIG. Prints one JSON line per row.
"""

import json
import sys

from datasets import load_dataset
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast
from trl.data_utils import is_conversational, maybe_apply_chat_template

from curate.rewards import make_trl_reward

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>"
                 "{% for part in m['content'] %}{% if part['type'] == 'image' %}<image>"
                 "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def main(dist: str, config: str) -> None:
    dataset = load_dataset(dist, config, split="train")
    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator([part["text"] or "" for row in dataset for m in row["prompt"]
                              for part in m["content"]],
                             trainers.WordLevelTrainer(special_tokens=["<unk>", "<image>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>")
    tokenizer.chat_template = CHAT_TEMPLATE
    reward = make_trl_reward(preset="default")
    extra_columns = [c for c in dataset.column_names if c not in ("prompt", "completion")]
    for row in dataset:
        rendered = maybe_apply_chat_template({"prompt": row["prompt"]}, tokenizer)["prompt"]
        completions = [row["completion"], [{"role": "assistant", "content": "garbage"}]]
        extra = {c: [row[c]] * 2 for c in extra_columns}
        scores = reward(prompts=[row["prompt"]] * 2, completions=completions,
                        completion_ids=[[0], [0]], trainer_state=None, **extra)
        print(json.dumps({"id": row["id"], "conversational": is_conversational(row),
                          "image_tags": rendered.count("<image>"),
                          "images": len(row["images"]), "scores": scores}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
