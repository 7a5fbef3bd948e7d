"""The built-in source formats as a static index, so `curate formats` lists them without
importing the adapter modules (about twenty, and the libraries they read with).

The adapter classes stay the definition: each entry names the module that registers the
format, and tests/test_adapter_catalogue.py checks that this index and the registry agree
(name, platform, priority, module, description) and print the entry to paste when they do
not. Installed plugins cannot be known without loading them, so with any installed
``curate.adapters`` entry point the listing comes from the full registry instead.
"""

from __future__ import annotations

from dataclasses import dataclass

ENTRY_POINT_GROUP = "curate.adapters"
BUILTIN = "built-in"


@dataclass(frozen=True)
class Format:
    """One built-in format: what `curate formats` prints and the module that reads it."""

    name: str
    platform: str
    priority: int
    module: str  # under curate.sources.adapters
    description: str


BUILTIN_FORMATS: tuple[Format, ...] = (
    Format("native", "desktop", 10, "native",
           "curate's native format: episode.json + steps.jsonl + frames/"),
    Format("agentnet_bench", "desktop", 30, "agentnet_bench",
           "AgentNetBench episode JSON (ground_truth_actions, alternative_options) with images/ "
           "beside it"),
    Format("agentnet_hf", "desktop", 30, "agentnet_hf",
           "AgentNet Hugging Face release JSONL (task_id, instruction, traj[].value.code), "
           "screenshots in images/ beside it"),
    Format("aitz", "mobile", 30, "aitz",
           "Android in the Zoo (AITZ) episode JSON: AITW actions with CoAT screen descriptions, "
           "thoughts and action descriptions"),
    Format("mind2web", "web", 30, "mind2web",
           "Mind2Web processed task JSON, raw-dump task folders (processed/screenshot.json + "
           "task.json) and Multimodal-Mind2Web Parquet"),
    Format("phoenix_spans", "tool", 30, "phoenix",
           "Arize Phoenix span exports (get_spans_dataframe / TraceDataset saved as Parquet or "
           "JSON lines): OpenInference spans, one trace per episode"),
    Format("seeact", "web", 30, "seeact",
           "SeeAct per-action Mind2Web folders (<annotation_id>_<action_uid>/queries.jsonl + "
           "images/ + prediction*.jsonl), grouped into tasks"),
    Format("weblinx", "web", 30, "weblinx",
           "WebLINX demonstrations (a folder with replay.json chat / browser turns, "
           "screenshots/, form.json)"),
    Format("otel_genai", "tool", 30, "otel",
           "OpenTelemetry traces (OTLP JSON / JSON lines) with GenAI gen_ai.* or OpenInference "
           "attributes: one trace per episode"),
    Format("adp", "tool", 40, "adp",
           "Agent Data Protocol standardized trajectories ({id, content[], details}) and ATIF "
           "trajectories (ATIF-v1.x steps[])"),
    Format("agentnet", "desktop", 40, "agentnet",
           "AgentNetTool/DuckTrack recordings: events.jsonl + metadata.json + screen video (or "
           "timestamped screenshots), optional a11y/element jsonl"),
    Format("agenttrek", "web", 40, "agenttrek",
           "AgentTrek JSON list of per-step chat samples (AgentLab prompt: goal, AXTree, "
           "history; <think>/<action> answer), joined into trajectories"),
    Format("aitw", "mobile", 40, "aitw",
           "Android in the Wild TFRecord files: one step per record (y-first normalised "
           "touch/lift points, action_type enum, UI annotations)"),
    Format("androidcontrol", "mobile", 40, "androidcontrol",
           "AndroidControl TFRecord shards (GZIP): one episode per record, PNG screenshots, JSON"
           " actions, low-level step instructions"),
    Format("androidworld", "mobile", 40, "androidworld",
           "AndroidWorld checkpoint pickle (TaskName_N.pkl.gz): episodes with column-oriented "
           "episode_data"),
    Format("claude_code_sessions", "tool", 40, "claude_code_sessions",
           "Claude Code session transcripts (~/.claude/projects/*/*.jsonl, incl. "
           "subagents/agent-*.jsonl)"),
    Format("codex_rollouts", "tool", 40, "codex_rollouts",
           "Codex CLI session rollouts (~/.codex/sessions/**/rollout-*.jsonl: session_meta, "
           "response_item, event_msg)"),
    Format("droidbot", "mobile", 40, "droidbot",
           "DroidBot output folder: events/event_*.json + states/ (screens, view trees) + utg.js"),
    Format("gui_odyssey", "mobile", 40, "gui_odyssey",
           "GUI-Odyssey annotation JSON (one episode per file, 0-1000 grid coordinates, "
           "screenshots in ../screenshots)"),
    Format("langfuse_traces", "tool", 40, "langfuse",
           "Langfuse trace exports ({trace, observations} JSON, observation trees)"),
    Format("openadapt_legacy", "desktop", 40, "openadapt_legacy",
           "OpenAdapt legacy recording dump (INSERT INTO recording / action_event / screenshot"
           " ...; parsed, never executed)"),
    Format("osworld", "desktop", 40, "osworld",
           "OSWorld result folders: traj.jsonl + step_*.png (after each action) + result.txt"),
    Format("playwright", "web", 40, "playwright",
           "Playwright trace.zip (format versions 4-10): actions and screencast frames"),
    Format("rrweb", "web", 40, "rrweb",
           "rrweb session recordings (event lists / JSON lines: full snapshot + incremental "
           "mutations, clicks, input, scroll); DOM-text states"),
    Format("t3_agent", "tool", 40, "t3_agent",
           "T3-Agent / MM-Traj trajectories (MAT-Agent train_*.json: Thought/Code/Observation "
           "turns)"),
    Format("toolbench", "tool", 40, "toolbench",
           "ToolBench DFS/CoT answer files (answer/G*_answer/*.json) with "
           "answer_generation.train_messages"),
    Format("agentlab", "web", 50, "agentlab",
           "AgentLab/BrowserGym experiment folder: step_N.pkl.gz + summary_info.json"),
    Format("http_cassette", "tool", 70, "http_cassette",
           "recorded HTTP traffic (VCR cassettes, e.g. pydantic-ai's) of OpenAI Chat, OpenAI "
           "Responses or Anthropic calls with tools"),
    Format("anthropic_messages", "tool", 80, "anthropic_messages",
           "Anthropic Messages conversations with tool_use / tool_result blocks, .json or .jsonl"),
    Format("openai_chat", "tool", 80, "openai_chat",
           "OpenAI Chat Completions conversations with tool_calls (and legacy function_call), "
           ".json or .jsonl"),
    Format("openai_responses", "tool", 80, "openai_responses",
           "OpenAI Responses input/output items (function_call, function_call_output, message), "
           ".json or .jsonl"),
)


@dataclass(frozen=True)
class Listed:
    """A line of `curate formats`."""

    name: str
    platform: str
    origin: str
    description: str


def plugins_installed() -> bool:
    """Whether an installed package declares adapters (entry points of the group)."""
    from importlib.metadata import entry_points

    return bool(entry_points(group=ENTRY_POINT_GROUP))


def listing() -> list[Listed]:
    """Every format this installation reads, in detection order, with its origin."""
    if not plugins_installed():
        ordered = sorted(BUILTIN_FORMATS, key=lambda entry: (entry.priority, entry.name))
        return [Listed(e.name, e.platform, BUILTIN, e.description) for e in ordered]
    from curate.sources.adapters import all_adapters, origin

    return [Listed(a.name, a.platform, origin(a.name), a.description) for a in all_adapters()]
