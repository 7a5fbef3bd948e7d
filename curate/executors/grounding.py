"""The ``grounding`` executor: a frozen grounding model turns a step instruction into a point.

One family per output convention (docs/executors.md cites each model's documentation):

=============  =======================================  =================================
family         answer                                   coordinates
=============  =======================================  =================================
ui-tars-1.0    ``(x,y)`` / ``start_box='(x,y)'``        0-1000 grid of the screenshot
ui-tars-1.5    ``click(start_box='(x,y)')`` or          absolute pixels on the image as
               ``<point>x y</point>``                   smart-resized (factor 28)
qwen2.5-vl     ``[{"bbox_2d": [...]}]`` / ``point_2d``  absolute pixels on the resized
               / ``<tool_call>`` coordinate             image (factor 28)
qwen3-vl       ``[{"point_2d": [x, y]}]`` / bbox_2d     0-1000 grid (tool calls: 0-999,
                                                        as its mobile-agent cookbook)
os-atlas       ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>``  0-1000 grid
=============  =======================================  =================================

A box becomes its centre. The point is converted back to [0, 1] of the screenshot and the
conversion is recorded in the execution's provenance. A malformed, truncated or out-of-image
answer is ``invalid_answer``; a server that cannot be reached is ``unreachable``; neither
raises.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.actions import COORD_DECIMALS, POINTER_TYPES, Action, Target
from curate.executors.base import Execution, ProposedStep, StepContext
from curate.executors.registry import register
from curate.models.client import DEFAULT_API_KEY_ENV, ChatClient, ChatResult, image, user_request
from curate.resources import resource_path

NAME = "grounding"
PROMPT_VERSION = "v1"
# Actions a single grounded point carries out; drags and swipes need two.
GROUNDED_TYPES = frozenset(POINTER_TYPES - {"drag", "swipe"})
FACTOR = 28


@dataclass(frozen=True, slots=True)
class Family:
    """A model family's convention: how its answer is read and its coordinates scaled."""

    name: str
    convention: str  # "grid1000" or "resized_pixels"
    min_pixels: int = 0
    max_pixels: int = 0

    @property
    def prompt_version(self) -> str:
        return f"grounding/{self.name}.{PROMPT_VERSION}"

    def prompt(self, instruction: str) -> str:
        return _template(self.prompt_version).format(instruction=instruction)


@functools.cache
def _template(version: str) -> str:
    """A prompt template, read once per process (templates are versioned, never edited)."""
    path = resource_path("annotations", f"prompts/{version}.txt")
    return path.read_text(encoding="utf-8").strip()


# Pixel bounds as the families' processors use them: UI-TARS README_coordinates.md
# (MIN_PIXELS = 100·28·28, MAX_PIXELS = 16384·28·28); Qwen2.5-VL's processor defaults
# (min_pixels = 4·28·28 = 3136, max_pixels = 16384·28·28 = 12845056).
FAMILIES = {family.name: family for family in (
    Family("ui-tars-1.0", "grid1000"),
    Family("ui-tars-1.5", "resized_pixels", 100 * 28 * 28, 16384 * 28 * 28),
    Family("qwen2.5-vl", "resized_pixels", 4 * 28 * 28, 16384 * 28 * 28),
    Family("qwen3-vl", "grid1000"),
    Family("os-atlas", "grid1000"),
)}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown grounding family {name!r}; families are "
                         f"{', '.join(sorted(FAMILIES))}") from None


# -- reading answers ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ModelPoint:
    """What the model answered, in its own coordinate space: a point or a box."""

    values: tuple[float, ...]  # (x, y) or (x0, y0, x1, y1)
    form: str  # which documented form it was written in

    @property
    def point(self) -> tuple[float, float]:
        if len(self.values) == 4:
            x0, y0, x1, y1 = self.values
            return (x0 + x1) / 2, (y0 + y1) / 2
        return self.values[0], self.values[1]


class AnswerError(ValueError):
    """An answer that does not hold a point or box in the family's format."""


_NUMBER = r"-?\d+(?:\.\d+)?"
_TOKENS = re.compile(r"<\|(?:box_start|box_end|object_ref_start|object_ref_end|im_end"
                     r"|endoftext)\|>|\[EOS\]")
_UITARS_ARG = re.compile(r"(?:start_box|point)\s*=\s*['\"]([^'\"]*)['\"]")
_POINT_TAG = re.compile(rf"<point>\s*({_NUMBER})[\s,]+({_NUMBER})\s*</point>")
_BBOX_TAG = re.compile(rf"<bbox>\s*({_NUMBER})[\s,]+({_NUMBER})[\s,]+({_NUMBER})[\s,]+"
                       rf"({_NUMBER})\s*</bbox>")
_TUPLE = re.compile(rf"[(\[]\s*({_NUMBER})\s*,\s*({_NUMBER})\s*(?:,\s*({_NUMBER})\s*,\s*"
                    rf"({_NUMBER})\s*)?[)\]]")
_TWO_TUPLES = re.compile(rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)\s*,\s*\(\s*({_NUMBER})\s*,"
                         rf"\s*({_NUMBER})\s*\)")
_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def _numbers(match: re.Match[str]) -> tuple[float, ...]:
    return tuple(float(g) for g in match.groups() if g is not None)


def parse_uitars(text: str) -> ModelPoint:
    """UI-TARS: ``Action: click(start_box='(x,y)')``, ``point='<point>x y</point>'``,
    ``<|box_start|>(x,y)<|box_end|>`` or a bare ``(x,y)`` (the 1.0 grounding answer)."""
    action = text.split("Action:")[-1]
    argument = _UITARS_ARG.search(action)
    scope = argument.group(1) if argument else _TOKENS.sub("", action)
    for pattern, form in ((_POINT_TAG, "point_tag"), (_BBOX_TAG, "bbox_tag"), (_TUPLE, "tuple")):
        found = pattern.search(scope)
        if found:
            return ModelPoint(_numbers(found), ("start_box:" if argument else "") + form)
    raise AnswerError("no (x,y), <point>x y</point> or start_box in the answer")


def parse_qwen(text: str) -> ModelPoint:
    """Qwen2.5-VL / Qwen3-VL: JSON ``[{"bbox_2d": [...]}]`` or ``point_2d`` (in a ```json
    fence or bare), or a ``<tool_call>`` whose arguments hold ``coordinate``."""
    call = _TOOL_CALL.search(text)
    if call:
        body = _json(call.group(1))
        arguments = body.get("arguments") if isinstance(body, dict) else None
        coordinate = arguments.get("coordinate") if isinstance(arguments, dict) else None
        return ModelPoint(_coords(coordinate, 2, "coordinate"), "tool_call")
    fenced = _FENCE.search(text)
    body = _json(fenced.group(1) if fenced else text.strip())
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, dict):
            if "point_2d" in item:
                return ModelPoint(_coords(item["point_2d"], 2, "point_2d"), "point_2d")
            if "bbox_2d" in item:
                return ModelPoint(_coords(item["bbox_2d"], 4, "bbox_2d"), "bbox_2d")
    raise AnswerError("no point_2d, bbox_2d or tool-call coordinate in the answer")


def parse_os_atlas(text: str) -> ModelPoint:
    """OS-Atlas: ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` (special tokens may have been
    stripped by the server), a point ``(x,y)``, or ``[[x1,y1,x2,y2]]``."""
    plain = _TOKENS.sub(" ", text)
    corners = _TWO_TUPLES.search(plain)
    if corners:
        return ModelPoint(_numbers(corners), "box_corners")
    found = _TUPLE.search(plain)
    if found:
        return ModelPoint(_numbers(found), "tuple")
    raise AnswerError("no (x1,y1),(x2,y2) box or (x,y) point in the answer")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise AnswerError(f"not JSON: {text[:80]!r}") from None


def _coords(value: Any, count: int, name: str) -> tuple[float, ...]:
    if (not isinstance(value, list) or len(value) != count
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
        raise AnswerError(f"{name} must be {count} numbers, got {value!r:.60}")
    return tuple(float(v) for v in value)


PARSERS = {"ui-tars-1.0": parse_uitars, "ui-tars-1.5": parse_uitars,
           "qwen2.5-vl": parse_qwen, "qwen3-vl": parse_qwen, "os-atlas": parse_os_atlas}


# -- coordinates --------------------------------------------------------------------------------

def smart_resize(width: int, height: int, *, min_pixels: int, max_pixels: int,
                 factor: int = FACTOR) -> tuple[int, int]:
    """(width, height) of the image as the Qwen2-VL-family processor resizes it: each side
    a multiple of ``factor``, the area within [min_pixels, max_pixels], the ratio kept."""
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return w_bar, h_bar


@dataclass(frozen=True, slots=True)
class Grounded:
    """A model answer converted to the screenshot: [0, 1] point, optional box, provenance."""

    x: float
    y: float
    box: tuple[float, float, float, float] | None
    provenance: dict[str, Any]


def to_screen(family: Family, answer: ModelPoint, width: int, height: int) -> Grounded:
    """The answer on the screenshot, normalised; AnswerError when it lies outside the image."""
    if family.convention == "grid1000":
        # Qwen3-VL's mobile-agent cookbook declares a 999x999 screen for tool calls.
        extent = 999.0 if answer.form == "tool_call" and family.name == "qwen3-vl" else 1000.0
        space_w = space_h = extent
        space = f"grid 0-{extent:g}"
    else:
        resized_w, resized_h = smart_resize(width, height, min_pixels=family.min_pixels,
                                            max_pixels=family.max_pixels)
        space_w, space_h = float(resized_w), float(resized_h)
        space = f"pixels of the {resized_w}x{resized_h} smart-resized image"
    xs, ys = answer.values[0::2], answer.values[1::2]
    if min(xs) < 0 or min(ys) < 0 or max(xs) > space_w or max(ys) > space_h:
        raise AnswerError(f"coordinates {list(answer.values)} lie outside the model's "
                          f"{space} ({space_w:g}x{space_h:g})")
    px, py = answer.point
    box = None
    if len(answer.values) == 4:
        x0, y0, x1, y1 = answer.values
        box = (_norm(min(x0, x1), space_w), _norm(min(y0, y1), space_h),
               _norm(max(x0, x1), space_w), _norm(max(y0, y1), space_h))
    provenance = {"family": family.name, "convention": family.convention, "space": space,
                  "space_size": [space_w, space_h], "answer_form": answer.form,
                  "model_values": list(answer.values), "screenshot_size": [width, height]}
    return Grounded(_norm(px, space_w), _norm(py, space_h), box, provenance)


def _norm(value: float, extent: float) -> float:
    return round(value / extent, COORD_DECIMALS)


# -- the executor -------------------------------------------------------------------------------

class GroundingExecutor:
    """Grounds proposed pointer steps with a model behind an OpenAI-compatible server."""

    name = NAME

    def __init__(self, *, url: str, model: str, family: str, store: Path | str | None = None,
                 concurrency: int = 8, timeout: float = 60.0, max_retries: int = 4,
                 backoff: float = 0.5, max_tokens: int = 128,
                 api_key_env: str = DEFAULT_API_KEY_ENV) -> None:
        self.family = get_family(family)
        self.model = model
        self.max_tokens = max_tokens
        self.client = ChatClient(url, cache=store, concurrency=concurrency, timeout=timeout,
                                 max_retries=max_retries, backoff=backoff,
                                 api_key_env=api_key_env)

    def close(self) -> None:
        self.client.close()

    def execute(self, context: StepContext, proposed: ProposedStep) -> Execution:
        return self.execute_many([(context, proposed)])[0]

    def execute_many(self, items: Sequence[tuple[StepContext, ProposedStep]]
                     ) -> list[Execution]:
        """Every step that needs the model is asked in one concurrent batch; order kept."""
        results: list[Execution | None] = [None] * len(items)
        asks: list[tuple[int, tuple[int, int]]] = []
        requests = []
        for index, (context, proposed) in enumerate(items):
            decided = self._without_model(context, proposed)
            if isinstance(decided, Execution):
                results[index] = decided
                continue
            asks.append((index, decided))
            assert context.screenshot is not None and proposed.step_instruction is not None
            requests.append(user_request(
                self.model, self.family.prompt_version,
                [image(context.screenshot, context.frame_id),
                 self.family.prompt(proposed.step_instruction)],
                max_tokens=self.max_tokens))
        for (index, size), answer in zip(asks, self.client.chat_many(requests), strict=True):
            results[index] = self._read(answer, items[index][1], size)
        return [result for result in results if result is not None]

    def _without_model(self, context: StepContext, proposed: ProposedStep
                       ) -> Execution | tuple[int, int]:
        """The outcome when no model is needed (or none can help), else the screenshot size."""
        kind = proposed.action_type
        if kind not in GROUNDED_TYPES:
            if proposed.action is not None and kind not in POINTER_TYPES:
                return Execution(NAME, "executed", proposed.action,
                                 reason=f"{kind} carries no coordinates: executed as proposed",
                                 provenance={"family": self.family.name, "grounded": False})
            return Execution(NAME, "not_executable", reason=(
                f"{kind} needs two points; a grounding model gives one" if kind in POINTER_TYPES
                else f"{kind} without an action to carry out"))
        if not (proposed.step_instruction or "").strip():
            return Execution(NAME, "not_executable", reason="no step instruction to ground")
        if context.screenshot is None:
            return Execution(NAME, "not_executable", reason="the step has no screenshot")
        size = _image_size(context)
        if size is None:
            return Execution(NAME, "not_executable", reason="the screenshot cannot be decoded")
        return size

    def _read(self, answer: ChatResult, proposed: ProposedStep,
              size: tuple[int, int]) -> Execution:
        if not answer.ok:
            return Execution(NAME, "unreachable", reason=answer.reason,
                             cache_key=answer.cache_key)
        text = answer.text or ""
        if answer.finish_reason == "length":
            return Execution(NAME, "invalid_answer", raw=text, cache_key=answer.cache_key,
                             reason="the answer was cut at max_tokens (finish_reason length)")
        try:
            grounded = to_screen(self.family, PARSERS[self.family.name](text), *size)
        except AnswerError as error:
            return Execution(NAME, "invalid_answer", raw=text, cache_key=answer.cache_key,
                             reason=f"{self.family.name}: {error}")
        width, height = size
        target = None
        if grounded.box is not None:
            x0, y0, x1, y1 = grounded.box
            target = Target(x0=x0, y0=y0, x1=x1, y1=y1)
        executed = Action(proposed.action_type, x=grounded.x, y=grounded.y,
                          text=proposed.action.text if proposed.action else None,
                          target=target, px=round(grounded.x * width, 1),
                          py=round(grounded.y * height, 1),
                          coord_space=f"grounding:{self.family.name}", screen_width=width,
                          screen_height=height, raw=text)
        return Execution(NAME, "executed", executed, raw=text, cache_key=answer.cache_key,
                         reason=f"grounded by {self.model} ({self.family.name})",
                         provenance=grounded.provenance)


def _image_size(context: StepContext) -> tuple[int, int] | None:
    if context.width and context.height:
        return context.width, context.height
    from PIL import Image, UnidentifiedImageError

    assert context.screenshot is not None
    try:
        with Image.open(io.BytesIO(context.screenshot)) as picture:
            width, height = picture.size
            return int(width), int(height)
    except (UnidentifiedImageError, OSError):
        return None


register(NAME, GroundingExecutor)
