"""Label Studio tasks (data + prediction) for steps, segments and episodes.

Every task's data carries ``curate_key`` (the item) and ``curate_fingerprint`` (what the
reviewer is shown), which make push idempotent and let pull detect stale reviews. The
prediction holds the current action and labels, so a reviewer corrects rather than starts
from nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from curate import __version__
from curate.actions import Action
from curate.review.images import ImageSource, drawn_frame, placeholder
from curate.review.items import StoreItems
from curate.review.results import choice, step_prediction, textarea
from curate.store.frames import Frame

MODEL_VERSION = f"curate-{__version__}"
FrameLookup = Callable[[str | None], Frame]


def _prediction(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"model_version": MODEL_VERSION, "score": 1.0, "result": results}]


def _labels_text(label: dict[str, Any] | None) -> str:
    if label is None:
        return "heuristic labels: not computed (run `curate label`)"
    parts = [f"{name}={_yes_no(label.get(name))}"
             for name in ("noop", "loop", "on_path", "recovery", "terminal")]
    return f"heuristic labels ({label.get('label_source')}): " + ", ".join(parts)


def _yes_no(value: Any) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def step_task(items: StoreItems, key: str, frame_of: FrameLookup,
              images: ImageSource) -> dict[str, Any]:
    _, _, rest = key.partition(":")
    episode_id, _, index = rest.rpartition(":")
    step = items.steps[(episode_id, int(index))]
    episode = items.episodes[episode_id]
    frame = frame_of(step["frame_id"])
    label = items.labels.get((episode_id, int(index)))
    data = {
        "image": images.url(frame),
        "instruction": episode["instruction"] or "(no instruction recorded)",
        "action_text": f"step {index}: {step['action_text']}",
        "labels_text": _labels_text(label),
        "episode_id": episode_id,
        "step_index": int(index),
    }
    results = step_prediction(Action.from_row(step["action"]), label,
                              (frame.width, frame.height))
    texts = items.step_texts.get((episode_id, int(index)), {})
    for name, title in STEP_TEXTS.items():
        text = texts.get(name) or ""
        # what pull compares the reviewer's text with: a correction is a different text
        data[name] = text
        data[f"{name}_header"] = (f"{title} (now: {texts.get(f'{name}_source') or 'none'}; "
                                  "edit to correct)")
        if text:
            results.append(textarea(name, "screen", text))
    return _task(items, key, data, results)


# The step texts a reviewer may correct, and the header each is shown under.
STEP_TEXTS = {"step_instruction": "Step instruction", "state": "Screen after the step"}


def segment_task(items: StoreItems, key: str, frame_of: FrameLookup,
                 images: ImageSource) -> dict[str, Any]:
    segment = items.segments[key.partition(":")[2]]
    targets = [text if real else f"{text}  (padding)" for text, real
               in zip(segment["target_action_texts"], segment["mask"], strict=True)]
    history = segment["history"]
    consistency = float(segment["consistency"])
    frames = [{"image": images.url(drawn_frame(frame_of(frame_id), action)), "caption": caption}
              for frame_id, action, caption in window_frames(items, segment)]
    data = {
        "frames": frames,
        "instruction": segment["instruction"] or "(no instruction recorded)",
        "history_text": "history: " + (" → ".join(history) if history else "(start)"),
        "targets_text": "\n".join(f"a_t+{i}: {t}" for i, t in enumerate(targets)),
        "consistency_text": f"heuristic consistency {consistency:.2f} "
                            f"({segment['label_source']}), end: {segment['end']}",
        "step_choices": [{"value": f"a_t+{i}", "hint": text}
                         for i, (text, real) in enumerate(zip(
                             segment["target_action_texts"], segment["mask"], strict=True))
                         if real],
        "episode_id": segment["episode_id"],
        "segment_id": segment["segment_id"],
    }
    results = [choice("consistent", "targets",
                      ["consistent" if consistency >= 0.5 else "inconsistent"]),
               {"id": "consistency", "from_name": "consistency", "to_name": "targets",
                "type": "number", "value": {"number": round(consistency, 2)}},
               choice("verdict", "targets", ["accept"])]
    return _task(items, key, data, results)


def window_frames(items: StoreItems, segment: dict[str, Any]
                  ) -> list[tuple[str | None, Action | None, str]]:
    """What a window's task shows, in order: (frame id, action drawn on it, caption) for
    s_t ... s_t+K-1 with each real target action a_t+i on its own frame, then s_t+K, the
    state after the last real one (no action drawn). Padding past the end shows nothing."""
    shown: list[tuple[str | None, Action | None, str]] = []
    episode_id, first = segment["episode_id"], int(segment["step_index"])
    real = [i for i, is_real in enumerate(segment["mask"]) if is_real]
    for i in real:
        step = items.steps.get((episode_id, first + i))
        frame_id = step["frame_id"] if step is not None else None
        action = Action.from_row(segment["target_actions"][i])
        shown.append((frame_id, action,
                      f"s_t+{i} with a_t+{i}: {segment['target_action_texts'][i]}"))
    if real:
        after = segment["target_next_frame_ids"][real[-1]]
        if after is not None:
            shown.append((after, None, f"s_t+{real[-1] + 1}: the screen after the window"))
    return shown


def episode_task(items: StoreItems, key: str, frame_of: FrameLookup,
                 images: ImageSource) -> dict[str, Any]:
    episode = items.episodes[key.partition(":")[2]]
    steps = items.episode_steps(episode["episode_id"])
    data = {
        "instruction": episode["instruction"] or "(no instruction recorded)",
        "summary_text": f"{episode['source_format']} · {episode['platform']} · "
                        f"{len(steps)} steps · recorded outcome: {episode['outcome']}",
        "steps": [{"image": images.url(frame_of(step["frame_id"])),
                   "caption": f"step {step['step_index']}: {step['action_text']}"}
                  for step in steps],
        "episode_id": episode["episode_id"],
    }
    results = [choice("usable", "summary", ["usable"])]
    if episode["outcome"] in ("success", "fail"):
        results.insert(0, choice("outcome", "summary", [episode["outcome"]]))
    return _task(items, key, data, results)


def _task(items: StoreItems, key: str, data: dict[str, Any],
          results: list[dict[str, Any]]) -> dict[str, Any]:
    fingerprint = items.fingerprint(key)
    data = {**data, "curate_key": key, "curate_fingerprint": fingerprint}
    return {"data": data, "meta": {"curate_key": key}, "predictions": _prediction(results)}


BUILDERS = {"step": step_task, "segment": segment_task, "episode": episode_task}


def frames_needed(items: StoreItems, keys: list[str]) -> set[str]:
    """Frame ids the tasks for these keys show."""
    needed: set[str] = set()
    for key in keys:
        unit, _, rest = key.partition(":")
        if unit == "step":
            episode_id, _, index = rest.rpartition(":")
            needed.add(items.steps[(episode_id, int(index))]["frame_id"])
        elif unit == "segment":
            needed.update(f for f, _, _ in window_frames(items, items.segments[rest]) if f)
        else:
            needed.update(s["frame_id"] for s in items.episode_steps(rest))
    needed.discard(None)
    return needed


def frame_lookup(frames: dict[str, Frame]) -> FrameLookup:
    def lookup(frame_id: str | None) -> Frame:
        return frames.get(frame_id or "") or placeholder()

    return lookup


