"""The columns of every exported config and flavour, declared once as ``datasets.Features``.

The Parquet files are written with ``features.arrow_schema``, which carries the
``huggingface`` metadata, so ``load_dataset`` decodes images without a card entry.
"""

from __future__ import annotations

import functools
from typing import Any

import pyarrow as pa

from curate.actions import SEMANTIC_FIELDS
from curate.store.schema import struct_type


def _action_arrow_type() -> pa.StructType:
    declared = struct_type("action")
    keep = [declared.field(name) for name in (*SEMANTIC_FIELDS, "target")]
    return pa.struct([pa.field(f.name, f.type) for f in keep])


def _value_features(fields: dict[str, pa.DataType]) -> dict[str, Any]:
    from datasets import Features

    return dict(Features.from_arrow_schema(pa.schema(list(fields.items()))))


def _image() -> Any:
    from datasets import Image

    return Image()


def _images() -> Any:
    from datasets import Image, List

    return List(Image())


COMMON = {
    "id": pa.string(), "episode_id": pa.string(), "step_index": pa.int32(),
    "split": pa.string(), "split_group": pa.string(), "source_format": pa.string(),
    "platform": pa.string(), "instruction": pa.string(),
}
STAGE1 = {
    **COMMON, "horizon": pa.int32(), "history": pa.list_(pa.string()),
    "history_results": pa.list_(pa.string()), "user_message": pa.string(),
    "history_models": pa.list_(pa.string()), "model": pa.string(),
    "image_width": pa.int32(), "image_height": pa.int32(),
    "target_actions": pa.list_(_action_arrow_type()),
    "target_action_texts": pa.list_(pa.string()), "target_next_frame_ids": pa.list_(pa.string()),
    "target_states": pa.list_(pa.string()), "target_state_sources": pa.list_(pa.string()),
    "target_step_instructions": pa.list_(pa.string()),
    "target_step_instruction_sources": pa.list_(pa.string()), "to_end": pa.bool_(),
    "mask": pa.list_(pa.bool_()), "end": pa.string(), "consistency": pa.float64(),
    "label_source": pa.string(), "preset": pa.string(), "ground_truth": pa.string(),
}
STAGE2 = {
    **COMMON, "timestamp": pa.float64(), "step_instruction": pa.string(),
    "thought": pa.string(),
    "history": pa.list_(pa.string()), "history_results": pa.list_(pa.string()),
    "user_message": pa.string(), "history_models": pa.list_(pa.string()),
    "model": pa.string(), "image_width": pa.int32(), "image_height": pa.int32(),
    "action": _action_arrow_type(), "action_text": pa.string(),
    "preset": pa.string(), "click_tolerance": pa.float64(), "ground_truth": pa.string(),
    "noop": pa.bool_(), "loop": pa.bool_(), "on_path": pa.bool_(), "recovery": pa.bool_(),
    "terminal": pa.bool_(), "label_source": pa.string(),
    "executor": pa.string(), "executed_action": pa.string(), "executor_success": pa.bool_(),
    "executor_reward": pa.float64(), "executor_feedback": pa.string(),
}
_PART = pa.struct([pa.field("type", pa.string()), pa.field("text", pa.string())])
_CHAT = pa.list_(pa.struct([pa.field("role", pa.string()), pa.field("content", pa.list_(_PART))]))
TRL = {
    "id": pa.string(), "split": pa.string(), "episode_id": pa.string(),
    "step_index": pa.int32(), "prompt": _CHAT, "completion": _CHAT, "solution": pa.string(),
}
_EXTRA = pa.struct([pa.field("index", pa.int64()), pa.field("split", pa.string()),
                    pa.field("id", pa.string()), pa.field("episode_id", pa.string()),
                    pa.field("step_index", pa.int32()), pa.field("horizon", pa.int32())])
VERL = {
    "data_source": pa.string(),
    "prompt": pa.list_(pa.struct([pa.field("role", pa.string()),
                                  pa.field("content", pa.string())])),
    "ability": pa.string(),
    "reward_model": pa.struct([pa.field("style", pa.string()),
                               pa.field("ground_truth", pa.string())]),
    "extra_info": _EXTRA, "problem": pa.string(), "answer": pa.string(),
}

# EasyR1 reads problem / answer / images (its example config's keys); the rest is for people.
EASYR1 = {
    "id": pa.string(), "split": pa.string(), "episode_id": pa.string(),
    "step_index": pa.int32(), "horizon": pa.int32(), "to_end": pa.bool_(),
    "problem": pa.string(), "answer": pa.string(),
}


@functools.cache
def features_for(config: str, flavour: str) -> Any:
    """The ``datasets.Features`` of one exported config in one flavour."""
    from datasets import Features

    if flavour == "plain":
        columns = _value_features(STAGE1 if config == "stage1" else STAGE2)
        columns["image"] = _image()
        if config == "stage1":
            columns["history_images"] = _images()
            columns["future_images"] = _images()
        return Features(columns)
    if flavour == "trl":
        columns = _value_features(TRL)
        columns["images"] = _images()
        return Features(columns)
    if flavour in ("verl", "easyr1"):
        columns = _value_features(VERL if flavour == "verl" else EASYR1)
        columns["images"] = _images()
        return Features(columns)
    raise ValueError(f"unknown flavour {flavour!r}")


def arrow_schema(config: str, flavour: str) -> pa.Schema:
    schema: pa.Schema = features_for(config, flavour).arrow_schema
    return schema


def config_name(config: str, flavour: str) -> str:
    """``stage1`` for the plain flavour, ``stage1_trl`` / ``stage1_verl`` for the others."""
    return config if flavour == "plain" else f"{config}_{flavour}"
