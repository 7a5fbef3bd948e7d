"""Step instructions for every step, with where each came from (``step_instruction_source``).

In order of preference: a human's correction from review (``human``), the source's own
low-level instruction (``recorded``), a model's from the ``annotations`` table written by
``curate annotate`` (``model``), else one derived here from the action and its recorded target
element (``derived``): verb, the element's text in quotes, its role in plain words and where it
sits on the screen, e.g. ``click the "Submit" button at the bottom left``. ``none`` is left for
steps nothing can describe. A derived instruction quotes the element's text exactly, so a
grounder (the ``a11y`` executor, a grounding model) has the words it needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate.actions import Target
from curate.review.overrides import read_reviews, step_text_corrections
from curate.store.core import open_store

SOURCES = ("recorded", "derived", "model", "human", "none")

_VERBS = {
    "click": "click", "double_click": "double-click", "right_click": "right-click",
    "middle_click": "middle-click", "long_press": "long-press", "move": "move the pointer to",
}
# Roles as sources spell them (UIA control types, AX roles, ARIA roles, Android classes) folded
# to the word a person would use.
_ROLE_WORDS = {
    "button": "button", "imagebutton": "button", "splitbutton": "button", "link": "link",
    "hyperlink": "link", "checkbox": "checkbox", "radiobutton": "radio button", "radio":
    "radio button", "edittext": "text field", "edit": "text field", "textbox": "text field",
    "textfield": "text field", "combobox": "drop-down", "spinner": "drop-down", "listitem":
    "list item", "menuitem": "menu item", "tabitem": "tab", "tab": "tab", "treeitem": "tree item",
    "slider": "slider", "seekbar": "slider", "switch": "switch", "image": "image", "imageview":
    "image", "text": "text", "textview": "text", "statictext": "text", "option": "option",
    "icon": "icon", "searchbox": "search box", "heading": "heading", "cell": "cell",
    "a": "link", "select": "drop-down",  # HTML tags (Mind2Web candidates)
}


def role_word(role: str | None) -> str | None:
    """``ButtonControl``, ``AXButton``, ``android.widget.Button`` → ``button``; None if unknown."""
    if not role:
        return None
    name = role.rsplit(".", 1)[-1].lower()
    name = name.removeprefix("ax").removesuffix("control")
    name = name.replace("_", "").replace("-", "").replace(" ", "")
    return _ROLE_WORDS.get(name)


def position_words(x: float, y: float) -> str:
    """Where a point in [0,1] sits: ``top left``, ``middle``, ``bottom right``, ..."""
    row = "top" if y < 1 / 3 else "bottom" if y > 2 / 3 else "middle"
    column = "left" if x < 1 / 3 else "right" if x > 2 / 3 else ""
    if row == "middle":
        return f"middle {column}".strip() if column else "middle"
    return f"{row} {column}".strip()


def derive_step_instruction(action: dict[str, Any]) -> str | None:
    """A deterministic instruction from an action row (``schemas/action.yaml``), or None."""
    kind = action.get("type")
    if kind in _VERBS:
        return _pointer(_VERBS[kind], action)
    text = action.get("text")
    simple = {
        "type": f'type "{text}"' if text else None,
        "key": "press " + "+".join(action.get("keys") or []) if action.get("keys") else None,
        "scroll": f"scroll {action['direction']}" if action.get("direction") else "scroll",
        "swipe": f"swipe {action['direction']}" if action.get("direction") else "swipe",
        "drag": _drag(action),
        "wait": "wait",
        "open_app": f'open the "{action["app"]}" app' if action.get("app") else None,
        "navigate": f"go to {action['url']}" if action.get("url") else None,
        "back": "go back",
        "home": "go to the home screen",
        "tool_call": _tool_call(action),
        "answer": f'answer "{text}"' if text else "answer",
        "done": "finish the task",
        "fail": "give up: the task cannot be done",
    }
    if kind == "type" and text and _has_box(action.get("target")):
        return f'type "{text}" into {_element_phrase(action["target"])}'
    return simple.get(str(kind))


def _pointer(verb: str, action: dict[str, Any]) -> str | None:
    target = action.get("target")
    if target and (target.get("text") or role_word(target.get("role"))):
        return f"{verb} {_element_phrase(target)}"
    x, y = action.get("x"), action.get("y")
    if x is not None and y is not None:
        return f"{verb} the {position_words(x, y)} of the screen"
    # Recorders that log pixels without the screen size (OSWorld's pyautogui calls) give no
    # place in [0,1]; the pixel itself is still a deterministic description of the step.
    px, py = action.get("px"), action.get("py")
    if px is not None and py is not None:
        return f"{verb} the point ({_pixel(px)}, {_pixel(py)}) in screen pixels"
    # BrowserGym-style actions (ADP's web datasets) name the element only by its page id.
    element_id = target.get("element_id") if target else None
    return f'{verb} the element with id "{element_id}"' if element_id else None


def _pixel(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _element_phrase(target: dict[str, Any]) -> str:
    text, role = target.get("text"), role_word(target.get("role"))
    name = " ".join(str(text).split()) if text else ""
    parts = ["the"]
    if name:
        parts.append(f'"{name}"')
    parts.append(role or "element")
    phrase = " ".join(parts)
    if _has_box(target):
        box = Target(**target)
        assert box.x0 is not None and box.x1 is not None
        assert box.y0 is not None and box.y1 is not None
        phrase += f" at the {position_words((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)}"
    return phrase


def _has_box(target: Any) -> bool:
    return bool(target) and None not in (target.get(k) for k in ("x0", "y0", "x1", "y1"))


def _drag(action: dict[str, Any]) -> str | None:
    if None in (action.get(k) for k in ("x", "y", "x2", "y2")):
        return None
    start = position_words(action["x"], action["y"])
    end = position_words(action["x2"], action["y2"])
    return f"drag from the {start} to the {end} of the screen"


def _tool_call(action: dict[str, Any]) -> str | None:
    name = action.get("tool_name")
    if not name:
        return None
    args = action.get("tool_args")
    try:
        keys = sorted(json.loads(args)) if args else []
    except (json.JSONDecodeError, TypeError):
        keys = []
    with_args = f" with {', '.join(keys)}" if keys and all(isinstance(k, str) for k in keys) else ""
    return f"call {name}{with_args}"


# Single quotes only around words, so an apostrophe ("don't") opens no quote.
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|(?<!\w)\'([^\']+)\'(?!\w)')


def quoted_phrases(instruction: str) -> list[str]:
    """The phrases an instruction quotes (``"..."``, ``“...”``, ``'...'``), in order."""
    return [next(g for g in match.groups() if g) for match in _QUOTED.finditer(instruction)]


def resolve(action: dict[str, Any], *, recorded: str | None = None, model: str | None = None,
            human: str | None = None) -> tuple[str | None, str]:
    """(step instruction, step_instruction_source) for one step, by the order above."""
    for text, source in ((human, "human"), (recorded, "recorded"), (model, "model")):
        if text and text.strip():
            return text.strip(), source
    derived = derive_step_instruction(action)
    return (derived, "derived") if derived else (None, "none")


Key = tuple[str, int]


def read_step_texts(store_path: Path, table: str, column: str) -> dict[Key, str]:
    """(episode_id, step_index) -> text from every Parquet file of a store table folder that
    has ``column`` (the ``annotations`` table of ``curate annotate``). Absent folder or
    column: nothing."""
    folder = store_path / table
    found: dict[Key, str] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.parquet")):
        names = pq.read_schema(path).names
        if not {"episode_id", "step_index", column} <= set(names):
            continue
        rows = pq.ParquetFile(path).read(columns=["episode_id", "step_index", column])
        for episode, index, text in zip(rows.column("episode_id").to_pylist(),
                                        rows.column("step_index").to_pylist(),
                                        rows.column(column).to_pylist(), strict=True):
            if isinstance(text, str) and text.strip() and index is not None:
                found[(episode, int(index))] = text
    return found


def reviewed_step_instructions(store_path: Path) -> dict[Key, str]:
    """(episode_id, step_index) -> the step instruction a reviewer corrected (the chosen
    step review's, see schemas/reviews.yaml)."""
    corrections = step_text_corrections(read_reviews(open_store(store_path)))
    if corrections is None:
        return {}
    return {(episode, int(index)): text for episode, index, text in zip(
        *(corrections.column(name).to_pylist()
          for name in ("episode_id", "step_index", "step_instruction")), strict=True)
        if isinstance(text, str) and text.strip()}


@dataclass(frozen=True)
class StoreInstructions:
    """A store's step instructions written by a model (``annotations``) and corrected by
    reviewers, read once: what :func:`resolve` needs beside each step's own row."""

    model: dict[Key, str] = field(default_factory=dict)
    human: dict[Key, str] = field(default_factory=dict)

    @classmethod
    def read(cls, store_path: Path) -> StoreInstructions:
        return cls(read_step_texts(store_path, "annotations", "step_instruction"),
                   reviewed_step_instructions(store_path))

    def resolve(self, key: Key, action: dict[str, Any],
                recorded: str | None) -> tuple[str | None, str]:
        """(step instruction, step_instruction_source) of the step ``key``."""
        return resolve(action, recorded=recorded, model=self.model.get(key),
                       human=self.human.get(key))


def step_instructions(store_path: Path, steps: pa.Table) -> tuple[list[str | None], list[str]]:
    """Every step's instruction and its source, for a steps table with episode_id,
    step_index, action and step_instruction columns."""
    known = StoreInstructions.read(store_path)
    texts: list[str | None] = []
    sources: list[str] = []
    for episode, index, action, recorded in zip(
            steps.column("episode_id").to_pylist(), steps.column("step_index").to_pylist(),
            steps.column("action").to_pylist(), steps.column("step_instruction").to_pylist(),
            strict=True):
        text, source = known.resolve((episode, index), action, recorded)
        texts.append(text)
        sources.append(source)
    return texts, sources
