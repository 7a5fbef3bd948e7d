"""Rows of the plain flavour, one per segment (stage1) or step (stage2), and their conversion
into the TRL and verl/EasyR1 flavours. The ground truth is written by curate.rewards, the
same code the shipped reward functions read it with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curate.actions import Action, format_action_text
from curate.export.frame_reader import FrameReader
from curate.export.images import FrameImage
from curate.export.prompts import stage1_prompt, stage2_prompt, tracer1_prompt
from curate.export.redact import Redactor
from curate.export.source import Episode, action_texts, redacted_actions
from curate.export.tool_context import (
    CONTEXT_CHARS,
    RESULT_CHARS,
    latest_user_messages,
    step_results,
    within_budget,
)
from curate.pipeline.instructions import StoreInstructions
from curate.rewards import make_ground_truth
from curate.rewards.alternatives import alternatives_by_step, reference
from curate.rewards.entrypoints import action_json, make_step_ground_truth
from curate.rewards.presets import get_preset
from curate.rewards.tracer1 import TraceStep, format_answer, steps_from_actions

IMAGE_TAG = "<image>"


@dataclass
class RowContext:
    frames: FrameReader
    redactor: Redactor
    preset: str
    history_images: int
    future_images: bool
    # (episode_id, step_index) -> that step's executions row (curate execute), for stage2
    executions: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    # The tool-result budget of one prompt's history, and of one result (--context-chars,
    # --result-chars)
    context_chars: int = CONTEXT_CHARS
    result_chars: int = RESULT_CHARS
    # The model's and reviewers' step instructions, for stage2's step_instruction
    instructions: StoreInstructions = field(default_factory=StoreInstructions)


def image_value(context: RowContext, frame_id: str | None) -> FrameImage | None:
    """The row's image (its bytes stay in Arrow until the writer takes them)."""
    if frame_id is None or frame_id not in context.frames:
        return None
    return context.frames.image(frame_id)


def _size(context: RowContext, frame_id: str | None) -> tuple[int, int] | None:
    if frame_id is None or frame_id not in context.frames:
        return None
    return context.frames.size(frame_id)


def _semantic_row(action: Action) -> dict[str, Any]:
    row = action.semantic().to_row()
    keep = {name: row[name] for name in row if name not in ("px", "py", "px2", "py2",
                                                            "coord_space", "screen_width",
                                                            "screen_height", "scale", "raw")}
    keep["target"] = action.to_row()["target"]
    return keep


def _common(episode: Episode, split: tuple[str, str], redactor: Redactor) -> dict[str, Any]:
    row = episode.row
    return {"episode_id": row["episode_id"], "split": split[0], "split_group": split[1],
            "source_format": row["source_format"], "platform": row["platform"],
            "instruction": redactor.text(row["instruction"])}


@dataclass
class ToolContext:
    """What the agent of a tool episode had seen at each step, and which model took each
    step; empty for other platforms."""
    results: list[str | None] | None
    user_messages: list[str | None] | None
    models: list[str | None] | None = None
    context_chars: int = CONTEXT_CHARS
    result_chars: int = RESULT_CHARS
    # The model's and reviewers' step instructions, for stage2's step_instruction
    instructions: StoreInstructions = field(default_factory=StoreInstructions)

    @classmethod
    def of(cls, episode: Episode, context: RowContext) -> ToolContext:
        if episode.row["platform"] != "tool":
            return cls(None, None)
        redact = context.redactor.text
        return cls(step_results(episode.steps, redact),
                   latest_user_messages(episode.steps, redact),
                   [step.get("model") for step in episode.steps],
                   context.context_chars, context.result_chars)

    def columns(self, start: int, index: int) -> dict[str, Any]:
        """The columns of a row at step position ``index`` whose history starts at ``start``."""
        if self.results is None or self.user_messages is None or self.models is None:
            return {"history_results": None, "user_message": None, "history_models": None,
                    "model": None}
        return {"history_results": within_budget(self.results[start:index],
                                                 self.context_chars, self.result_chars),
                "user_message": self.user_messages[index],
                "history_models": self.models[start:index], "model": self.models[index]}


def stage2_rows(episode: Episode, split: tuple[str, str], context: RowContext,
                steps_filter: str, history: int) -> list[dict[str, Any]]:
    actions = redacted_actions(episode.steps, context.redactor)
    texts = action_texts(actions)
    tolerance = get_preset(context.preset).click_threshold
    alternatives = alternatives_by_step(episode.row.get("metadata"))
    seen = ToolContext.of(episode, context)
    rows = []
    for index, (step, action) in enumerate(zip(episode.steps, actions, strict=True)):
        label = episode.labels.get(step["step_index"], {})
        executed = context.executions.get((step["episode_id"], step["step_index"]))
        keep = (bool(executed and executed["success"]) if steps_filter == "executable"
                else _keep_step(label, steps_filter))
        if step["step_index"] in episode.rejected_steps or not keep:
            continue
        size = _size(context, step["frame_id"])
        own = context.redactor.text(step.get("step_instruction"))
        instruction, source = context.instructions.resolve(
            (step["episode_id"], step["step_index"]), action.to_row(),
            step.get("step_instruction"))
        rows.append({
            **_common(episode, split, context.redactor),
            "id": f"{step['episode_id']}:{step['step_index']}",
            "step_index": step["step_index"], "timestamp": step["timestamp"],
            # Every step's instruction with where it came from (curate.pipeline.instructions,
            # from the redacted action); the prompt's "Next step" stays the source's own text
            # alone: a derived one would spell out the reference's target.
            "step_instruction": (own.strip() if source == "recorded" and own
                                 else context.redactor.text(instruction)),
            "step_instruction_source": source, "own_step_instruction": own,
            "thought": context.redactor.text(step["thought"]),
            "history": texts[max(0, index - history):index],
            **seen.columns(max(0, index - history), index),
            "image": image_value(context, step["frame_id"]),
            "image_width": size[0] if size else None,
            "image_height": size[1] if size else None,
            "action": _semantic_row(action),
            "action_text": texts[index],
            "preset": context.preset, "click_tolerance": tolerance,
            "ground_truth": make_ground_truth([reference(action, alternatives.get(
                                                  step["step_index"]))], preset=context.preset,
                                              image_size=size, horizon=1, check=False),
            **{name: label.get(name) for name in ("noop", "loop", "on_path", "recovery",
                                                  "terminal")},
            "label_source": label.get("label_source", "heuristic"),
            **_executor_columns(executed),
        })
    return rows


def _executor_columns(executed: dict[str, Any] | None) -> dict[str, Any]:
    if executed is None:
        return {"executor": None, "executed_action": None, "executor_success": None,
                "executor_reward": None, "executor_feedback": None}
    return {"executor": executed["executor"], "executed_action": executed["executed_action"],
            "executor_success": executed["success"], "executor_reward": executed["reward"],
            "executor_feedback": executed["feedback"]}


def _keep_step(label: dict[str, Any], steps_filter: str) -> bool:
    if steps_filter == "all":
        return True
    if steps_filter == "on_path":
        return bool(label.get("on_path", True))
    return not label.get("noop") and not label.get("loop")  # "useful"


def stage1_rows(episode: Episode, split: tuple[str, str], context: RowContext
                ) -> list[dict[str, Any]]:
    actions = redacted_actions(episode.steps, context.redactor)
    texts = action_texts(actions)
    # Each action's columns once per episode, not once per window that reaches it (a step
    # sits in about K windows of each horizon: 20 with K = 10 and end).
    semantic = [_semantic_row(action) for action in actions] if episode.segments else []
    seen = ToolContext.of(episode, context)
    rows = []
    for segment in sorted(episode.segments, key=lambda s: (s["step_index"], s["horizon"])):
        t, horizon = segment["step_index"], segment["horizon"]
        real = sum(segment["mask"])
        mask = _reviewed_mask(segment["mask"], t, episode.rejected_steps)
        if not any(mask):
            continue  # every real target was rejected: nothing left to learn from
        padding = [Action.from_row(a) for a in segment["target_actions"][real:]]
        window = actions[t:t + real] + padding
        size = _size(context, segment["frame_id"])
        history_ids = segment["history_frame_ids"][-context.history_images:] if (
            context.history_images) else []
        rows.append({
            **_common(episode, split, context.redactor),
            "id": segment["segment_id"], "step_index": t, "horizon": horizon,
            "history": texts[max(0, t - len(segment["history"])):t],
            **seen.columns(max(0, t - len(segment["history"])), t),
            "image": image_value(context, segment["frame_id"]),
            "history_images": [v for v in (image_value(context, f) for f in history_ids) if v],
            "future_images": [v for v in (image_value(context, f) for f in
                                          segment["target_next_frame_ids"]) if v]
            if context.future_images else [],
            "image_width": size[0] if size else None,
            "image_height": size[1] if size else None,
            "target_actions": semantic[t:t + real] + [_semantic_row(a) for a in padding],
            "target_action_texts": texts[t:t + real] + [format_action_text(a) for a in padding],
            "target_next_frame_ids": segment["target_next_frame_ids"],
            **{f"target_{name}s": [context.redactor.text(text) for text in
                                   segment[f"target_{name}s"]]
               for name in ("state", "step_instruction")},
            "target_state_sources": segment["target_state_sources"],
            "target_step_instruction_sources": segment["target_step_instruction_sources"],
            "to_end": segment["to_end"],
            "mask": mask, "end": segment["end"],
            "consistency": segment["consistency"], "label_source": segment["label_source"],
            "preset": context.preset,
            "ground_truth": make_ground_truth(window, mask=mask,
                                              preset=context.preset, image_size=size,
                                              horizon=horizon, check=False),
        })
    return rows



def _reviewed_mask(mask: list[bool], first: int, rejected: set[int]) -> list[bool]:
    """The window's mask with the steps a reviewer rejected masked out: a rejected action is
    no training target, in its own window or in the earlier windows that reach it."""
    if not rejected:
        return list(mask)
    return [real and first + offset not in rejected for offset, real in enumerate(mask)]


# ---------------------------------------------------------------- flavours


def _images_and_prompt(row: dict[str, Any], config: str) -> tuple[list[FrameImage], str]:
    images = [*row.get("history_images", []), *([row["image"]] if row["image"] else [])]
    tags = [IMAGE_TAG] * len(images)
    current = bool(row["image"])  # the last image is the current screen only when it exists
    if config == "stage1":
        prompt = stage1_prompt(row["instruction"], row["history"], row["horizon"], tags,
                               current=current, results=row.get("history_results"),
                               user_message=row.get("user_message"),
                               models=row.get("history_models"))
    else:
        prompt = stage2_prompt(row["instruction"], row.get("own_step_instruction"),
                               row["history"], tags, current=current,
                               results=row.get("history_results"),
                               user_message=row.get("user_message"),
                               models=row.get("history_models"))
    return images, prompt


def _answer_text(row: dict[str, Any], config: str) -> str:
    if config == "stage1":
        return "\n".join(text for text, real in zip(row["target_action_texts"], row["mask"],
                                                    strict=True) if real)
    return str(row["action_text"])


def to_trl(row: dict[str, Any], config: str) -> dict[str, Any]:
    """Conversational prompt whose image parts stand where the screenshots go (TRL does not
    read `<image>` inside text), the images column, and the ground truth as `solution`."""
    images, prompt = _images_and_prompt(row, config)
    content: list[dict[str, Any]] = []
    for index, piece in enumerate(prompt.split(IMAGE_TAG)):
        if index:
            content.append({"type": "image", "text": None})
        if piece:
            content.append({"type": "text", "text": piece})
    return {
        "id": row["id"], "split": row["split"], "episode_id": row["episode_id"],
        "step_index": row["step_index"],
        "prompt": [{"role": "user", "content": content}],
        "completion": [{"role": "assistant",
                        "content": [{"type": "text", "text": _answer_text(row, config)}]}],
        "images": images, "solution": row["ground_truth"],
    }


def to_verl(row: dict[str, Any], config: str, index: int) -> dict[str, Any]:
    """verl's columns (prompt with one `<image>` per image); `problem` and `answer` are the
    plain-string prompt and JSON-string ground truth EasyR1 reads. EasyR1 passes its reward
    nothing but `answer`, so a stage2 answer is the step envelope naming its step: the
    Stage-2 rewards that execute need the step's screenshot."""
    images, prompt = _images_and_prompt(row, config)
    answer = row["ground_truth"] if config == "stage1" else make_step_ground_truth(
        row["ground_truth"], episode_id=row["episode_id"], step_index=row["step_index"],
        check=False)
    return {
        "data_source": f"curate/{config}",
        "prompt": [{"role": "user", "content": prompt}],
        "images": images,
        "ability": "gui_forecast" if config == "stage1" else "gui_grounding",
        "reward_model": {"style": "rule", "ground_truth": row["ground_truth"]},
        "extra_info": {"index": index, "split": row["split"], "id": row["id"],
                       "episode_id": row["episode_id"], "step_index": row["step_index"],
                       "horizon": row.get("horizon", 1)},
        "problem": prompt, "answer": answer,
    }


def _tracer1_steps(row: dict[str, Any]) -> tuple[list[TraceStep], list[str]]:
    """The reference of a plain stage1 row in TraceR1's step format: its real steps (states,
    action types, step instructions), with ``done`` on the last one only where the episode
    really ends there (a cut-off episode's padding is not an ending); and, one per step,
    where its step instruction came from."""
    real = [i for i, kept in enumerate(row["mask"]) if kept]
    types = [row["target_actions"][i]["type"] for i in real]
    instructions = [row["target_step_instructions"][i] for i in real]
    states = [row["target_states"][i] for i in real]
    ends_here = row["end"] == "terminated"
    steps = steps_from_actions(types, instructions, states, complete=ends_here)
    # Step k is the k-th real step (a done folds into the step before it, at the end).
    sources = [row["target_step_instruction_sources"][i] for i in real[:len(steps)]]
    return steps, sources


def to_easyr1(row: dict[str, Any]) -> dict[str, Any]:
    """EasyR1's columns for TraceR1 (prompt_key=problem answer_key=answer image_key=images):
    a plain-string prompt with one `<image>` per image, the reference answer as text."""
    images = [*row.get("history_images", []), *([row["image"]] if row["image"] else [])]
    steps, sources = _tracer1_steps(row)
    prompt = tracer1_prompt(row["instruction"], row["history"], row["horizon"],
                            [IMAGE_TAG] * len(images), to_end=row["to_end"],
                            results=row.get("history_results"),
                            user_message=row.get("user_message"),
                            models=row.get("history_models"))
    return {"id": row["id"], "split": row["split"], "episode_id": row["episode_id"],
            "step_index": row["step_index"], "horizon": row["horizon"],
            "to_end": row["to_end"], "problem": prompt, "answer": format_answer(steps),
            "step_instruction_sources": sources, "images": images}


def ground_truth_actions(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The reference actions of a plain row as JSON objects (for cards and checks)."""
    if "target_actions" in row:
        return [action_json(Action.from_row(a)) for a in row["target_actions"]]
    return [action_json(Action.from_row(row["action"]))]
