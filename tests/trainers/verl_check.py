"""Run by ``.trainers-venv/bin/python``: load a curate verl export with verl's own RLHFDataset
and score each loaded item with curate's reward the way verl's reward manager calls it.

argv: DIST CONFIG. Prints one JSON line per item for the test to check.
"""

import glob
import json
import sys

import pyarrow.parquet as pq
from omegaconf import OmegaConf
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import CLIPImageProcessor, LlavaProcessor, PreTrainedTokenizerFast
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.utils.import_utils import load_extern_object

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>"
                 "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
                 "{% for part in m['content'] %}{% if part['type'] == 'image' %}<image>"
                 "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def tiny_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained here on the prompts: no download."""
    core = Tokenizer(models.WordLevel(unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.train_from_iterator(texts, trainers.WordLevelTrainer(
        special_tokens=["<unk>", "<pad>", "<image>", "<|user|>", "<|assistant|>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>",
                                        pad_token="<pad>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def main(dist: str, config: str) -> None:
    files = sorted(glob.glob(f"{dist}/data/{config}/train-*.parquet"))
    texts = [m["content"] for f in files for p in pq.read_table(f)["prompt"].to_pylist()
             for m in p]
    tokenizer = tiny_tokenizer(texts)
    # verl asserts a processor is present for rows with images; a real transformers one,
    # built from parts, so nothing is downloaded.
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer,
                               patch_size=14, chat_template=CHAT_TEMPLATE)
    data_config = OmegaConf.create({"prompt_key": "prompt", "image_key": "images",
                                    "max_prompt_length": 100000, "filter_overlong_prompts": False,
                                    "cache_dir": f"{dist}/.verl-cache"})
    dataset = RLHFDataset(data_files=files, tokenizer=tokenizer, config=data_config,
                          processor=processor)
    raw = [row for f in files for row in pq.read_table(f).to_pylist()]
    trl_files = sorted(glob.glob(f"{dist}/data/{config.replace('_verl', '_trl')}/train-*.parquet"))
    right = {row["id"]: row["completion"][0]["content"][0]["text"]
             for f in trl_files for row in pq.read_table(f).to_pylist()}
    reward_fn = load_extern_object("pkg://curate.rewards.entrypoints", "compute_score")
    for index in range(len(dataset)):
        item = dataset[index]
        parts = [part for message in item["raw_prompt"] for part in message["content"]
                 if isinstance(message["content"], list)]
        images = [part for part in parts if part["type"] == "image"]
        truth = item["reward_model"]["ground_truth"]
        # verl's reward loop: compute_score(data_source, solution_str, ground_truth, extra_info)
        score = reward_fn(data_source=item["data_source"], solution_str="garbage",
                          ground_truth=truth, extra_info=item["extra_info"])
        right_score = reward_fn(data_source=item["data_source"],
                                solution_str=right[item["extra_info"]["id"]],
                                ground_truth=truth, extra_info=item["extra_info"])
        print(json.dumps({"right_score": right_score["score"], "id": item["extra_info"]["id"],
                          "images": len(images),
                          "images_decoded": all(hasattr(p["image"], "size") for p in images),
                          "tags": sum(m["content"].count("<image>")
                                      for m in raw[index]["prompt"]),
                          "raw_images": len(raw[index]["images"]),
                          "ground_truth": truth, "garbage_score": score["score"]}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
