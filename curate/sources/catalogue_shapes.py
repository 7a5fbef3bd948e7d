"""What each built-in format's files look like, declared: the keys its JSON / JSON lines /
Parquet files carry and the file names its folders hold.

Detection (``Adapter.claims``) stays the definition of a format; these shapes only serve
:mod:`curate.sources.nearest`, which compares a file no adapter claimed with them to say
which format it is closest to and what it lacks. They list what a sniffer looks for and the
keys a reader needs first, not every optional field. A format whose files are not
JSON-like (TFRecord, pickle, SQL dumps, zip archives) has no shape: it is never "nearest".
A plugin adapter declares its own with an ``expects`` class attribute of the same type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """One layout of a format: keys found in its files (at any depth of the JSON, or as
    Parquet columns) and names found beside them (``fnmatch`` patterns; ``name/`` is a
    folder)."""

    keys: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


SHAPES: dict[str, tuple[Shape, ...]] = {
    "native": (Shape(keys=("curate_native", "instruction", "action"),
                     files=("episode.json", "steps.jsonl", "frames/")),),
    "agentnet_bench": (Shape(keys=("task_id", "steps", "ground_truth_actions",
                                   "alternative_options", "step_num"),
                             files=("images/",)),),
    "agentnet_hf": (Shape(keys=("task_id", "instruction", "traj", "index", "image", "value",
                                "code"),
                          files=("images/",)),),
    # AgentTrek's records are chat samples; what tells them apart (the AgentLab prompt's
    # "## Goal:" / "## AXTree:" sections) is inside the content text, not in keys.
    "agenttrek": (Shape(keys=("messages", "role", "content")),),
    "aitz": (Shape(keys=("episode_id", "step_id", "image_path", "result_action_type",
                         "result_touch_yx", "result_lift_yx", "coat_screen_desc",
                         "coat_action_desc", "coat_action_think", "coat_action_result")),),
    "mind2web": (
        Shape(keys=("annotation_id", "confirmed_task", "website", "actions", "action_uid",
                    "operation", "pos_candidates", "neg_candidates")),
        Shape(keys=("annotation_id", "action_uid", "target_action_index", "operation",
                    "pos_candidates", "neg_candidates", "screenshot", "confirmed_task")),
    ),
    "phoenix_spans": (Shape(keys=("context.trace_id", "context.span_id", "parent_id",
                                  "span_kind", "start_time", "end_time", "name")),),
    "seeact": (Shape(keys=("annotation_id", "action_uid", "confirmed_task", "operation",
                           "pos_candidates", "previous_actions", "choices"),
                     files=("queries.jsonl", "images/", "prediction*.jsonl")),),
    "weblinx": (Shape(keys=("data", "type", "intent", "utterance", "speaker", "timestamp"),
                      files=("replay.json", "screenshots/", "form.json")),),
    "otel_genai": (Shape(keys=("resourceSpans", "scopeSpans", "spans", "traceId", "spanId",
                               "startTimeUnixNano", "attributes")),),
    "adp": (
        Shape(keys=("id", "content", "details", "class_", "source")),
        Shape(keys=("schema_version", "session_id", "agent", "steps", "step_id", "source",
                    "message", "tool_calls")),
    ),
    "agentnet": (Shape(keys=("action", "time_stamp", "x", "y", "screen_width",
                             "screen_height", "video_start_timestamp"),
                       files=("events.jsonl", "metadata.json", "*.mp4")),),
    "claude_code_sessions": (Shape(keys=("sessionId", "parentUuid", "uuid", "type", "message",
                                         "timestamp", "isSidechain", "cwd")),),
    "codex_rollouts": (Shape(keys=("timestamp", "type", "payload", "id", "cwd",
                                   "originator", "cli_version"),
                             files=("rollout-*.jsonl",)),),
    "droidbot": (Shape(keys=("event", "event_type", "start_state", "stop_state", "tag",
                             "event_str"),
                       files=("events/", "states/", "utg.js")),),
    "gui_odyssey": (Shape(keys=("episode_id", "device_info", "task_info", "step_length",
                                "steps", "screenshot", "action", "info")),),
    "langfuse_traces": (Shape(keys=("trace", "observations", "id", "type", "startTime",
                                    "parentObservationId", "traceId", "input", "output")),),
    "osworld": (Shape(keys=("step_num", "action_timestamp", "action", "response", "reward",
                            "done", "info", "screenshot_file"),
                      files=("traj.jsonl", "result.txt", "step_*.png")),),
    "rrweb": (Shape(keys=("type", "data", "timestamp", "node", "source", "href")),),
    "t3_agent": (Shape(keys=("id", "image", "correct", "answer", "conversations", "from",
                             "value", "traj_verification")),),
    "toolbench": (Shape(keys=("answer_generation", "train_messages", "query", "final_answer",
                              "valid_data", "finish_type", "compare_candidates",
                              "forward_args")),),
    "agentlab": (Shape(keys=("n_steps", "cum_reward", "terminated", "truncated", "err_msg",
                             "stack_trace"),
                       files=("summary_info.json", "step_*.pkl.gz", "exp_args.pkl")),),
    "http_cassette": (Shape(keys=("interactions", "request", "response", "uri", "method",
                                  "body", "headers", "status")),),
    "anthropic_messages": (Shape(keys=("messages", "role", "content", "type", "tool_use_id",
                                       "input", "stop_reason")),),
    "openai_chat": (Shape(keys=("messages", "role", "content", "tool_calls", "function",
                                "arguments", "tool_call_id")),),
    "openai_responses": (Shape(keys=("input", "output", "type", "call_id", "arguments",
                                     "name")),),
}
