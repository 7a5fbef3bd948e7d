"""``curate annotate``: a model writes each step's instruction and the state after it.

For every step the model is shown the screen before the action (and, for ``state``, the screen
after it), the task and the action, and asked for a JSON object with the requested fields
(prompt templates: ``annotations/prompts/annotate/*.v1.txt``). Answers go through the model
client and its cache in the store, so a re-run makes no calls. The results are the derived
``annotations`` table, one file per steps batch, stamped with the model, prompt version and
fields: a batch already annotated with the same ones is skipped (an interrupted run resumes
there), and a batch with steps the server failed on is stamped incomplete, so the next run
asks again for those steps only (the others come from the cache).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate.models.client import (
    DEFAULT_API_KEY_ENV,
    ChatClient,
    ChatRequest,
    ChatResult,
    Image,
    Part,
    image,
    user_request,
)
from curate.progress import Progress, SilentProgress
from curate.resources import resource_path
from curate.store.core import Store, open_store, read_parquet
from curate.store.derived import is_current, write_derived
from curate.store.schema import table_schema

log = logging.getLogger(__name__)

FIELDS = ("step_instruction", "state")
PROMPT_VERSION = "v1"
MAX_TEXT = 500
# Requests are sent in chunks of this many so the progress bar moves during a large batch.
CHUNK = 64


def prompt_version(fields: Sequence[str]) -> str:
    """The templates a request is built from, e.g. annotate/request.v1+state.v1."""
    return "annotate/" + "+".join(f"{name}.{PROMPT_VERSION}" for name in ("request", *fields))


@functools.cache
def _template(name: str) -> str:
    path = resource_path("annotations", f"prompts/annotate/{name}.{PROMPT_VERSION}.txt")
    return path.read_text(encoding="utf-8").strip()


def parse_fields(text: str) -> tuple[str, ...]:
    """``step_instruction,state`` → the fields in a fixed order; ValueError for others."""
    asked = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(asked) - set(FIELDS))
    if unknown or not asked:
        raise ValueError(f"unknown fields {unknown or asked}; choose from {', '.join(FIELDS)}")
    return tuple(name for name in FIELDS if name in asked)


@dataclass
class AnnotateSummary:
    store: Path
    model: str
    prompt_version: str
    steps: int = 0
    batches_annotated: int = 0
    batches_current: int = 0
    requests: int = 0
    cache_hits: int = 0
    filled: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)


def annotate(store: str | Path, *, model: str, url: str,
             fields: Sequence[str] = FIELDS, concurrency: int = 8, timeout: float = 60.0,
             max_retries: int = 4, backoff: float = 0.5, max_tokens: int = 256,
             api_key_env: str = DEFAULT_API_KEY_ENV, force: bool = False,
             progress: Progress | None = None) -> AnnotateSummary:
    """Write the ``annotations`` table for every committed batch of ``store``."""
    opened = open_store(store)
    fields = parse_fields(",".join(fields))
    version = prompt_version(fields)
    params = {"model": model, "prompt_version": version, "fields": list(fields),
              "max_tokens": max_tokens, "complete": True}
    summary = AnnotateSummary(opened.path, model, version)
    progress = progress or SilentProgress()
    batches = sorted(opened.manifest.batches)
    todo = [b for b in batches if force or not is_current(opened.path, "annotations", b, params)]
    summary.batches_current = len(batches) - len(todo)
    instructions = {row["episode_id"]: row["instruction"] for row in opened.read(
        "episodes", columns=["episode_id", "instruction"]).to_pylist()}
    steps_by_batch = {b: _batch_steps(opened, b) for b in todo}
    progress.start(sum(len(s) for s in steps_by_batch.values()), "annotate")
    with ChatClient(url, cache=opened.path, concurrency=concurrency, timeout=timeout,
                    max_retries=max_retries, backoff=backoff, api_key_env=api_key_env) as client:
        for batch in todo:
            rows = []
            for chunk in _chunks(steps_by_batch[batch], CHUNK):
                rows += _annotate_steps(opened, client, chunk, instructions, model, fields,
                                        version, max_tokens)
                progress.advance(len(chunk))
            complete = not any(row["reason"] and "unreachable" in row["reason"] for row in rows)
            write_derived(opened.path, "annotations", batch,
                          pa.Table.from_pylist(rows, schema=table_schema("annotations")),
                          {**params, "complete": complete})
            summary.batches_annotated += 1
            summary.steps += len(rows)
            for row in rows:
                summary.filled.update(name for name in fields if row[name] is not None)
                for reason in (row["reason"] or "").split(" | "):
                    if reason:
                        summary.failed[reason.split(":")[0]] += 1
        summary.requests = client.stats.requests
        summary.cache_hits = client.stats.cache_hits
    progress.close()
    return summary


def _batch_steps(store: Store, batch: str) -> list[dict[str, Any]]:
    from curate.store.layout import batch_file

    path = batch_file(store.path, "steps", batch)
    table = read_parquet(path, ["episode_id", "step_index", "action_text", "frame_id",
                                "next_frame_id"])
    return sorted(table.to_pylist(), key=lambda r: (r["episode_id"], r["step_index"]))


def _chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _annotate_steps(store: Store, client: ChatClient, steps: list[dict[str, Any]],
                    instructions: dict[str, str | None], model: str, fields: Sequence[str],
                    version: str, max_tokens: int) -> list[dict[str, Any]]:
    wanted = {f for s in steps for f in (s["frame_id"], s["next_frame_id"]) if f}
    frames = {row["frame_id"]: image(row["bytes"], row["frame_id"]) for row in
              store.read_where_in("frames", "frame_id", wanted,
                                  columns=["frame_id", "bytes"]).to_pylist()}
    rows: list[dict[str, Any]] = []
    requests: list[ChatRequest] = []
    asked: list[tuple[int, tuple[str, ...]]] = []
    for step in steps:
        row: dict[str, Any] = {"episode_id": step["episode_id"],
                               "step_index": step["step_index"], "step_instruction": None,
                               "state": None, "model": model, "prompt_version": version,
                               "cache_key": None, "reason": None}
        before, after = frames.get(step["frame_id"] or ""), frames.get(step["next_frame_id"] or "")
        askable = tuple(f for f in fields if f != "state" or after is not None)
        if "state" in fields and after is None:
            row["reason"] = "no_frame: no screenshot after the step to describe"
        if askable:
            requests.append(_request(model, version, instructions.get(step["episode_id"]),
                                     step["action_text"], before, after, askable,
                                     max_tokens))
            asked.append((len(rows), askable))
        rows.append(row)
    for (index, askable), answer in zip(asked, client.chat_many(requests), strict=True):
        _fill(rows[index], askable, answer)
    return rows


def _request(model: str, version: str, instruction: str | None, action_text: str,
             before: Image | None, after: Image | None, fields: Sequence[str],
             max_tokens: int) -> ChatRequest:
    notes = []
    parts: list[Part] = []
    if before is not None:
        notes.append("The first image is the screen before the action.")
        parts.append(before)
    if "state" in fields and after is not None:
        notes.append(f"The {'second' if before is not None else 'first'} image is the screen "
                     "after the action.")
        parts.append(after)
    if not parts:
        notes.append("No screenshot was recorded for this step.")
    text = _template("request").format(
        instruction=instruction or "(no task recorded)", action_text=action_text,
        images=" ".join(notes), fields="\n".join(_template(name) for name in fields))
    return user_request(model, version, [*parts, text], max_tokens=max_tokens)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _fill(row: dict[str, Any], fields: Sequence[str], answer: ChatResult) -> None:
    row["cache_key"] = answer.cache_key
    reasons = [row["reason"]] if row["reason"] else []
    if not answer.ok:
        reasons.append(f"unreachable: {answer.reason}")
    elif answer.finish_reason == "length":
        reasons.append("invalid_answer: cut at max_tokens (finish_reason length)")
    else:
        values = _answer_object(answer.text or "")
        if values is None:
            reasons.append(f"invalid_answer: not a JSON object: {(answer.text or '')[:60]!r}")
        else:
            for name in fields:
                value = values.get(name)
                if isinstance(value, str) and value.strip():
                    row[name] = " ".join(value.split())[:MAX_TEXT]
                else:
                    reasons.append(f"invalid_answer: no text for {name}")
    row["reason"] = " | ".join(reasons) or None


def _answer_object(text: str) -> dict[str, Any] | None:
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        value = json.loads(body[start:end + 1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


__all__ = ["FIELDS", "AnnotateSummary", "annotate", "parse_fields", "prompt_version"]
