"""ToolBench answer files (``answer/G*_answer/*.json``): DFS answer trees of tool calls.

``answer_generation.train_messages`` is a list of message lists, one per explored path, each
the conversation up to a point of the search. The episode is the path that ends in the final
answer: the last path whose final message is the ``Finish`` call matching
``answer_generation.final_answer``; failing that the longest path ending in ``Finish``;
failing that the longest path. The other paths are not episodes of their own (they are
prefixes of the chosen one, or abandoned branches); their ids, lengths and whether they are a
prefix of the chosen one are kept in ``metadata.train_messages``.

Traps handled:

* legacy OpenAI ``function_call`` (assistant ``content: null``; text next to a call is its
  thought) and role ``function`` results with no call id, matched to the waiting call of the
  same name (shared normaliser in :mod:`curate.sources.adapters._conversation`);
* results are JSON strings holding JSON strings (``{"error": "", "response": "[{...}]"}``) or
  Python reprs (``{'id': ...}``): JSON strings are decoded again and again (up to a depth),
  Python reprs stay text (never evaluated); the observation is the decoded value as JSON;
  results the recorder cut short (invalid JSON ending in ``...``) stay text, with a warning;
* ``Finish`` with ``return_type: give_answer`` is an ``answer`` action carrying
  ``final_answer``; ``give_up_and_restart`` is ``fail``; arguments that are not JSON keep the
  call a ``tool_call`` with a warning;
* the DFS re-prompts the model mid-path with a user message listing earlier failed candidates;
  it is appended to the preceding observation with a warning (the model did see it);
* outcome from the evaluator when the source has one: a StableToolBench pass-rate file
  (``eval_pass_rate.py``'s ``{test_set}_{model}.json``: query id -> ``is_solved``, one
  ``AnswerStatus.*`` verdict per evaluation run) in the answer file's folder or up to three
  folders above it (or their ``pass_rate_results/``) gives the query's verdict: the runs'
  mean with Solved 1, Unsure 0.5, Unsolved 0 is ``score``; above 0.5 success, below fail,
  0.5 unknown. The file is recognised as auxiliary, never rejected;
* else the file's own verdict: a final answer that opens with an apology or says it could
  not do the task ("I'm sorry, but I couldn't...": the agent gave up in words) is fail,
  whatever ``finish_type`` says (the rule every tool-use source shares,
  :mod:`curate.sources.adapters._outcome`); else ``finish_type == "give_answer"`` with
  ``valid_data`` true is success (the search's own notion: the agent gave an answer),
  ``give_up`` or a path ending in ``give_up_and_restart`` fail, anything else unknown;
* ``instruction/G*_query.json`` holds queries, not trajectories: it is not claimed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, ClassVar

from curate.actions import Action
from curate.errors import SourceError
from curate.sources.adapters import register
from curate.sources.adapters._conversation import StepPlanner, ToolCall, ToolResult, located
from curate.sources.adapters._outcome import GAVE_UP_IN_WORDS, gives_up, outcome_from_ending
from curate.sources.adapters.base import Adapter, SourceUnit, UnitBuilder, load_json, text_head
from curate.sources.adapters.openai_chat import parse_chat

FINISH = "Finish"
PASS_RATE_LEVELS = 3  # parents of the answer folder searched for a pass-rate file
_STATUS_POINTS = {"AnswerStatus.Solved": 1.0, "AnswerStatus.Unsure": 0.5,
                  "AnswerStatus.Unsolved": 0.0}
MAX_DECODE_DEPTH = 8
_MARKERS = ('"answer_generation"', '"compare_candidates"', '"forward_args"')
_BEGIN = "Begin!"


def decode_nested(value: Any, depth: int = 0) -> Any:
    """Decode JSON found inside strings, recursively; anything that is not JSON stays as is."""
    if depth >= MAX_DECODE_DEPTH:
        return value
    if isinstance(value, dict):
        return {key: decode_nested(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_nested(item, depth + 1) for item in value]
    if isinstance(value, str) and value.strip()[:1] in ("{", "[", '"'):
        try:
            return decode_nested(json.loads(value), depth + 1)
        except json.JSONDecodeError:
            return value  # a Python repr or plain text: kept verbatim, never eval'd
    return value


def observation_text(text: str) -> str:
    """A function result as readable text: nested JSON decoded, Python reprs untouched."""
    decoded = decode_nested(text)
    if isinstance(decoded, str):
        return decoded
    return json.dumps(decoded, ensure_ascii=False)


class ToolBenchPlanner(StepPlanner):
    """Steps from a ToolBench path: ``Finish`` ends it, results are decoded JSON."""

    def action_for(self, call: ToolCall) -> Action:
        if call.name != FINISH:
            return super().action_for(call)
        arguments = call.arguments
        if not isinstance(arguments, dict):
            call.warnings.append("Finish arguments are not a JSON object; kept as a tool call")
            return super().action_for(call)
        kind = arguments.get("return_type")
        if kind == "give_answer":
            answer = arguments.get("final_answer")
            if not isinstance(answer, str):
                call.warnings.append("Finish(give_answer) has no final_answer text")
                answer = None
            return Action(type="answer", text=answer, raw=call.raw)
        if kind == "give_up_and_restart":
            return Action(type="fail", raw=call.raw)
        call.warnings.append(f"Finish with unknown return_type {kind!r}; kept as a tool call")
        return super().action_for(call)

    def observation_for(self, result: ToolResult, warnings: list[str]) -> str | None:
        if result.text is None:
            return super().observation_for(result, warnings)
        if _looks_cut(result.text):
            warnings.append("the result was cut short by the recorder (invalid JSON ending "
                            "in '...'); kept as text")
        return observation_text(result.text)


def _looks_cut(text: str) -> bool:
    """ToolBench truncates long observations mid-JSON and appends '...'."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")) or not stripped.endswith("..."):
        return False
    try:
        json.loads(stripped)
    except json.JSONDecodeError:
        return True
    return False


def _finish_arguments(path: list[Any]) -> Any:
    """The decoded arguments of the path's final Finish call, or None when it has none."""
    last = path[-1] if path else None
    call = last.get("function_call") if isinstance(last, dict) else None
    if not isinstance(call, dict) or call.get("name") != FINISH:
        return None
    try:
        return json.loads(call.get("arguments") or "null")
    except (json.JSONDecodeError, TypeError):
        return call.get("arguments")


def choose_path(paths: list[Any], final_answer: Any) -> int:
    """Index of the path that ends in the final answer (see the module docstring)."""
    usable = [i for i, path in enumerate(paths) if isinstance(path, list) and path]
    if not usable:
        raise ValueError("no train_messages path holds messages")
    finished = [i for i in usable if _finish_arguments(paths[i]) is not None]
    if isinstance(final_answer, str):
        try:
            wanted = json.loads(final_answer)
        except json.JSONDecodeError:
            wanted = final_answer
        matching = [i for i in finished if _finish_arguments(paths[i]) == wanted]
        if matching:
            return matching[-1]
    pool = finished or usable
    return max(pool, key=lambda i: (len(paths[i]), i))


def _paths_metadata(paths: list[Any], chosen: int) -> dict[str, Any]:
    best = paths[chosen]
    others = [
        {"id": f"train_messages[{i}]", "length": len(path) if isinstance(path, list) else 0,
         "prefix_of_chosen": isinstance(path, list) and path == best[: len(path)]}
        for i, path in enumerate(paths) if i != chosen
    ]
    return {"chosen": f"train_messages[{chosen}]", "count": len(paths), "others": others}


def _outcome(generation: dict[str, Any]) -> tuple[str, str]:
    """(outcome, why) from the answer file alone."""
    finish = generation.get("finish_type")
    if finish == "give_up":
        return "fail", "finish_type give_up"
    if gives_up(_final_answer_text(generation.get("final_answer"))):
        return "fail", GAVE_UP_IN_WORDS
    if finish == "give_answer" and generation.get("valid_data") is True:
        return "success", "finish_type give_answer with valid_data"
    return "unknown", "no verdict in the answer file"


def _final_answer_text(value: Any) -> str | None:
    """The ``final_answer`` text inside answer_generation.final_answer (JSON text)."""
    decoded = decode_nested(value)
    if isinstance(decoded, dict):
        decoded = decoded.get("final_answer")
    return decoded if isinstance(decoded, str) else None


# -- StableToolBench pass-rate files ---------------------------------------------------------


def is_pass_rate(path: Path) -> bool:
    """A pass-rate file: an object of query ids, each with ``is_solved`` verdicts."""
    head = text_head(path)
    return (path.suffix.lower() == ".json" and head is not None
            and head.lstrip().startswith("{") and '"is_solved"' in head
            and "AnswerStatus." in head)


def _verdict(record: Any) -> float | None:
    """The mean of one query's evaluator runs (Solved 1, Unsure 0.5, Unsolved 0)."""
    runs = record.get("is_solved") if isinstance(record, dict) else None
    if not isinstance(runs, dict):
        return None
    points = [_STATUS_POINTS[v] for v in runs.values() if v in _STATUS_POINTS]
    return sum(points) / len(points) if points else None


@functools.lru_cache(maxsize=64)
def _pass_rate_files(folder: Path) -> tuple[Path, ...]:
    """Pass-rate files in ``folder`` or its ``pass_rate_results/`` subtree."""
    found: list[Path] = []
    try:
        found = [p for p in folder.glob("*.json") if p.is_file()]
        results = folder / "pass_rate_results"
        if results.is_dir():
            found += [p for p in results.rglob("*.json") if p.is_file()]
    except OSError:
        return ()
    return tuple(sorted(p for p in found if is_pass_rate(p)))


def _load_rates(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def evaluator_verdict(answer: Path) -> tuple[Path, float] | None:
    """(pass-rate file, score) for an answer file ``<query id>_<method>.json``: the nearest
    file (its folder first, then up to three parents) holding the query id; a file named
    for a test group (``G1_...``) only serves answers under a folder of that group."""
    query_id = answer.name.split("_", 1)[0]
    group = answer.parent.name.split("_", 1)[0]
    folder = answer.parent
    for _ in range(PASS_RATE_LEVELS + 1):
        for path in _pass_rate_files(folder):
            named = path.name.split("_", 1)[0]
            if named.startswith("G") and named[1:].isdigit() and named != group:
                continue
            score = _verdict(_load_rates(path).get(query_id))
            if score is not None:
                return path, score
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def _instruction(generation: dict[str, Any], fallback: str | None) -> str | None:
    query = generation.get("query")
    if isinstance(query, str) and query.strip():
        return query.strip()
    if fallback is None:
        return None
    text = fallback.strip()
    return text[: -len(_BEGIN)].rstrip() if text.endswith(_BEGIN) else text


def _metadata(data: dict[str, Any], generation: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        key: generation[key] for key in ("finish_type", "valid_data", "query_count",
                                         "total_tokens") if key in generation
    }
    if "win" in data:
        meta["win"] = data["win"]
    if isinstance(data.get("forward_args"), dict):
        meta["forward_args"] = data["forward_args"]
    functions = generation.get("function")
    if isinstance(functions, list):
        meta["tools"] = [f["name"] for f in functions
                         if isinstance(f, dict) and isinstance(f.get("name"), str)]
    return meta


@register
class ToolBenchAdapter(Adapter):
    name: ClassVar[str] = "toolbench"
    version: ClassVar[str] = "3"  # 2: evaluator verdicts; an apology is no success;
    # 3: an apology is fail whatever finish_type says; a last give-up call is fail
    platform: ClassVar[str] = "tool"
    description: ClassVar[str] = ("ToolBench DFS/CoT answer files (answer/G*_answer/*.json) "
                                  "with answer_generation.train_messages")
    priority: ClassVar[int] = 40  # before the generic tool-call adapters

    def claims(self, path: Path) -> bool:
        if not path.is_file() or path.suffix.lower() != ".json":
            return False
        head = text_head(path)
        if head is None:
            return False
        # An answer file is one object whose top-level keys include these; query files
        # (instruction/G*_query.json) are lists of {"api_list", "query", ...}.
        return head.lstrip().startswith("{") and any(marker in head for marker in _MARKERS)

    def auxiliary(self, path: Path) -> str | None:
        if path.suffix.lower() != ".json":
            return None
        if is_pass_rate(path):
            return ("a StableToolBench pass-rate file (evaluator verdicts per query id): "
                    "read as the outcome of the answer files it names")
        head = text_head(path)
        if head is None or not head.lstrip().startswith("["):
            return None
        if '"api_list"' in head and '"query' in head:
            return ("a ToolBench query list (instruction/G*_query.json): tasks without "
                    "trajectories; each answer file carries its query")
        return None

    def input_files(self, unit: SourceUnit) -> list[Path]:
        # The evaluator's verdict is part of the episode: a new verdict re-reads the answer.
        found = evaluator_verdict(unit.path) if unit.path.is_file() else None
        return [unit.path] if found is None else [unit.path, found[0]]

    def read(self, unit: SourceUnit, out: UnitBuilder) -> None:
        file = unit.relative(unit.path)
        data = load_json(unit.path, unit)
        generation = data.get("answer_generation") if isinstance(data, dict) else None
        if not isinstance(generation, dict):
            raise SourceError(
                "expected a ToolBench answer file: an object with 'answer_generation'",
                file=file, hint="query files (instruction/G*_query.json) hold tasks, not "
                                "trajectories; point curate at the answer/ folder")
        paths = generation.get("train_messages")
        if not isinstance(paths, list) or not paths:
            raise SourceError("answer_generation.train_messages is missing or empty",
                              file=file, position="answer_generation.train_messages",
                              hint="the search produced no path; nothing to ingest")
        try:
            chosen = choose_path(paths, generation.get("final_answer"))
        except ValueError as error:
            raise SourceError(str(error), file=file, position="answer_generation."
                              "train_messages", hint="each path must be a list of messages"
                              ) from None
        self._episode(unit, out, data, generation, chosen)

    def _episode(self, unit: SourceUnit, out: UnitBuilder, data: dict[str, Any],
                 generation: dict[str, Any], chosen: int) -> None:
        file = unit.relative(unit.path)
        paths = generation["train_messages"]
        prefix = f"answer_generation.train_messages[{chosen}]"
        conversation = parse_chat(located(paths[chosen], prefix))
        episode = out.episode()
        episode.platform = "tool"
        episode.metadata.update(_metadata(data, generation))
        episode.metadata["train_messages"] = _paths_metadata(paths, chosen)
        ToolBenchPlanner(episode, file).run(conversation)
        episode.instruction = _instruction(generation, episode.instruction)
        episode.outcome, why = _outcome(generation)
        judged = evaluator_verdict(unit.path)
        if judged is not None:
            path, score = judged
            episode.score = score
            episode.outcome = ("success" if score > 0.5 else "fail" if score < 0.5
                               else "unknown")
            why = (f"StableToolBench evaluator ({path.name}): mean of its runs "
                   f"{score:g} (Solved 1, Unsure 0.5, Unsolved 0)")
        episode.metadata["outcome_from"] = why
        if judged is None:
            outcome_from_ending(episode)  # no verdict in the file: a last give-up call fails
        if not episode.steps:
            out.drop_episode(episode, file=file, position=prefix,
                             reason="the chosen path has no function call",
                             hint="an answer file needs at least one assistant message")
