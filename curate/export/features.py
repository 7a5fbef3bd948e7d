"""The columns of every exported config and flavour, declared once as Arrow types.

The Parquet files are written with :func:`arrow_schema`, which carries the ``huggingface``
metadata ``datasets.Features`` would write, so ``load_dataset`` decodes images without a
card entry; :func:`features_for` gives the same as ``datasets.Features``.
"""

from __future__ import annotations

import functools
import json
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
    "step_instruction_source": pa.string(), "thought": pa.string(),
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
    "step_instruction_sources": pa.list_(pa.string()),
}


# Image columns hold {"bytes", "path"} structs, the layout `datasets.Image` reads.
IMAGE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
# Arrow type names that `datasets` spells differently in its features metadata.
_DATASETS_DTYPES = {"double": "float64", "float": "float32", "halffloat": "float16"}


def _layout(config: str, flavour: str) -> tuple[dict[str, pa.DataType], tuple[str, ...],
                                                tuple[str, ...]]:
    """(value columns, single-image columns, image-list columns) in column order."""
    if flavour == "plain":
        if config == "stage1":
            return STAGE1, ("image",), ("history_images", "future_images")
        return STAGE2, ("image",), ()
    if flavour == "trl":
        return TRL, (), ("images",)
    if flavour in ("verl", "easyr1"):
        return (VERL if flavour == "verl" else EASYR1), (), ("images",)
    raise ValueError(f"unknown flavour {flavour!r}")


def _feature(arrow: pa.DataType) -> dict[str, Any]:
    """The `datasets` features entry of a value column (what ``Features.to_dict`` writes)."""
    if pa.types.is_struct(arrow):
        return {field.name: _feature(field.type) for field in arrow}
    if pa.types.is_list(arrow):
        return {"feature": _feature(arrow.value_type), "_type": "List"}
    if not (pa.types.is_primitive(arrow) or pa.types.is_string(arrow)
            or pa.types.is_binary(arrow)):
        raise ValueError(f"no datasets feature for Arrow type {arrow}")
    return {"dtype": _DATASETS_DTYPES.get(str(arrow), str(arrow)), "_type": "Value"}


@functools.cache
def arrow_schema(config: str, flavour: str) -> pa.Schema:
    """The Arrow schema of one exported config, with the ``huggingface`` metadata that
    ``datasets.Features`` would give it, built without importing `datasets` (1.3-1.8 s of a
    small export); tests/test_export_features.py holds it equal to ``features_for``'s."""
    values, images, image_lists = _layout(config, flavour)
    fields = [pa.field(name, arrow) for name, arrow in values.items()]
    features = {name: _feature(arrow) for name, arrow in values.items()}
    for name in images:
        fields.append(pa.field(name, IMAGE))
        features[name] = {"_type": "Image"}
    for name in image_lists:
        fields.append(pa.field(name, pa.list_(IMAGE)))
        features[name] = {"feature": {"_type": "Image"}, "_type": "List"}
    metadata = json.dumps({"info": {"features": features}})
    return pa.schema(fields).with_metadata({"huggingface": metadata})


@functools.cache
def features_for(config: str, flavour: str) -> Any:
    """The ``datasets.Features`` of one exported config in one flavour (imports `datasets`;
    the export itself writes :func:`arrow_schema`, which carries the same features)."""
    from datasets import Features

    values, images, image_lists = _layout(config, flavour)
    columns = _value_features(values)
    for name in images:
        columns[name] = _image()
    for name in image_lists:
        columns[name] = _images()
    return Features(columns)


def config_name(config: str, flavour: str) -> str:
    """``stage1`` for the plain flavour, ``stage1_trl`` / ``stage1_verl`` for the others."""
    return config if flavour == "plain" else f"{config}_{flavour}"
