"""The text beside each forecast step: the state after it and its step instruction, with
where each came from (``state_source`` / ``step_instruction_source``).

Precedence, per step:

* both: a reviewer's correction (``human``: the chosen step review's ``step_instruction`` /
  ``state``, see schemas/reviews.yaml) over everything below;
* state: the ``annotations`` table's ``state`` where ``curate annotate`` wrote one (``model``);
  else a description built from what the source recorded about the screen after the step
  (``derived``): the app an ``open_app`` opened, the page a ``navigate`` went to, the element
  the next step of the episode acts on (it is on that screen), and the step's own
  ``observation`` (a tool result, an error, a terminal output); else null with ``none``;
* step instruction: the source's own (``recorded``); else the annotations' (``model``); else
  one built from the action (``derived``: its type and the target's text, or its action_text).

Everything is Arrow compute over whole columns: segment stays linear in the steps.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

TEXT_COLUMNS = ["action", "action_text", "step_instruction", "observation"]
# An observation longer than this is cut, with a mark saying so: a state is a short text.
MAX_OBSERVATION_CHARS = 300
CUT_MARK = " [...]"


def _blank_to_null(values: pa.Array) -> pa.Array:
    stripped = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(pc.utf8_length(stripped), 0), pa.scalar(None, pa.string()),
                      values)


def _prefixed(prefix: str, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(prefix), values, "")


def _shorten(values: pa.Array, limit: int) -> pa.Array:
    long = pc.greater(pc.utf8_length(values), limit)
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(values, 0, limit),
                                      pa.scalar(CUT_MARK), "")
    return pc.if_else(long, cut, values)


def _next(values: pa.Array, has_next: npt.NDArray[np.bool_]) -> pa.Array:
    """Each step's value taken from the next step of its episode (null at an episode's end)."""
    count = len(values)
    indices = np.where(has_next, np.arange(count) + 1, count)
    return pa.chunked_array([values, pa.nulls(1, values.type)]).take(
        pa.array(indices)).combine_chunks()


def derived_states(steps: pa.Table, has_next: npt.NDArray[np.bool_]) -> pa.Array:
    """A deterministic description of the screen after each step, or null when the source
    recorded nothing about it. ``steps`` are in (episode, step) order."""
    action = steps.column("action").combine_chunks()
    kind = pc.struct_field(action, "type")
    target = pc.struct_field(action, "target")
    app = _blank_to_null(pc.struct_field(action, "app"))
    url = _blank_to_null(pc.struct_field(action, "url"))
    none = pa.scalar(None, pa.string())
    opened = pc.if_else(pc.equal(kind, "open_app"), _prefixed("app: ", app), none)
    page = pc.if_else(pc.equal(kind, "navigate"), _prefixed("page: ", url), none)
    next_text = _blank_to_null(_next(pc.struct_field(target, "text"), has_next))
    next_role = _blank_to_null(_next(pc.struct_field(target, "role"), has_next))
    element = pc.binary_join_element_wise(pc.fill_null(pc.binary_join_element_wise(
        next_role, pa.scalar(" "), ""), ""), pa.scalar('"'), next_text, pa.scalar('"'), "")
    shows = _prefixed("shows: ", element)
    observation = _blank_to_null(steps.column("observation").combine_chunks())
    result = _prefixed("result: ", _shorten(pc.utf8_trim_whitespace(observation),
                                            MAX_OBSERVATION_CHARS))
    return _joined([opened, page, shows, result], "; ")


def _joined(parts: list[pa.Array], separator: str) -> pa.Array:
    """The non-null parts of each row joined by ``separator``; null when every part is null.
    (``null_handling="skip"`` drops rows whose parts are all null in pyarrow 26, so the
    separators of missing parts are removed afterwards instead.)"""
    joined = pc.binary_join_element_wise(*[pc.fill_null(part, "") for part in parts],
                                         separator)
    mark = re.escape(separator)
    joined = pc.replace_substring_regex(joined, f"({mark}){{2,}}", separator)
    joined = pc.replace_substring_regex(joined, f"^({mark})+|({mark})+$", "")
    return _blank_to_null(joined)


def derived_instructions(steps: pa.Table) -> pa.Array:
    """A step instruction built from the action alone: its type and the target's text
    (``click "Save"``), else its canonical action_text."""
    action = steps.column("action").combine_chunks()
    text = _blank_to_null(pc.struct_field(pc.struct_field(action, "target"), "text"))
    named = pc.binary_join_element_wise(pc.struct_field(action, "type"), pa.scalar(' "'), text,
                                        pa.scalar('"'), "")
    return pc.coalesce(named, steps.column("action_text").combine_chunks())


def _with_source(first: pa.Array, first_source: str, second: pa.Array | None,
                 second_source: str) -> tuple[pa.Array, pa.Array]:
    values = first if second is None else pc.coalesce(first, second)
    sources = pc.if_else(pc.is_null(first), pa.scalar(second_source), pa.scalar(first_source))
    sources = pc.if_else(pc.is_null(values), pa.scalar("none"), sources)
    return values, sources


def _human_first(human: pa.Table | None, name: str, values: pa.Array,
                 sources: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``values`` with a reviewer's text in its place where there is one (source human)."""
    if human is None:
        return values, sources
    corrected = _blank_to_null(human.column(name).combine_chunks())
    return (pc.coalesce(corrected, values),
            pc.if_else(pc.is_null(corrected), sources, pa.scalar("human")))


def step_texts(steps: pa.Table, has_next: npt.NDArray[np.bool_],
               annotations: pa.Table | None,
               human: pa.Table | None = None) -> dict[str, pa.Array]:
    """state, state_source, step_instruction and step_instruction_source per step, aligned
    with ``steps`` (in (episode, step) order; ``annotations`` and ``human``, the reviewers'
    corrections, aligned with it, or None)."""
    derived_state = derived_states(steps, has_next)
    recorded = _blank_to_null(steps.column("step_instruction").combine_chunks())
    made = derived_instructions(steps)
    if annotations is not None:
        model_state = _blank_to_null(annotations.column("state").combine_chunks())
        model_instruction = _blank_to_null(
            annotations.column("step_instruction").combine_chunks())
        state, state_source = _with_source(model_state, "model", derived_state, "derived")
        known, known_source = _with_source(recorded, "recorded", model_instruction, "model")
    else:
        state, state_source = _with_source(derived_state, "derived", None, "none")
        known, known_source = recorded, pc.if_else(pc.is_null(recorded), pa.scalar("none"),
                                                   pa.scalar("recorded"))
    instruction = pc.coalesce(known, made)
    instruction_source = pc.if_else(pc.is_null(known), pa.scalar("derived"), known_source)
    state, state_source = _human_first(human, "state", state, state_source)
    instruction, instruction_source = _human_first(human, "step_instruction", instruction,
                                                   instruction_source)
    return {"state": state, "state_source": state_source,
            "step_instruction": instruction,
            "step_instruction_source": instruction_source}


__all__ = ["MAX_OBSERVATION_CHARS", "TEXT_COLUMNS", "derived_instructions", "derived_states",
           "step_texts"]
