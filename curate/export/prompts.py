"""The text a model is shown: one prompt builder per stage, shared by every flavour."""

from __future__ import annotations

ACTION_FORMAT = (
    "Write each action as type(key=value, ...) with JSON values, e.g. "
    'click(x=0.42, y=0.17) or type(text="hello"); coordinates are fractions of the '
    "screenshot's width and height."
)


def _history(history: list[str], results: list[str | None] | None = None,
             models: list[str | None] | None = None) -> str:
    """The previous actions, each followed by the result the agent saw (tool episodes) and,
    when the history switches models, by the model that chose it."""
    if not history:
        return "Previous actions: none."
    seen = results or [None] * len(history)
    # One model throughout says nothing: only a switch is worth the prompt's room.
    named = models if models and len({m for m in models if m}) > 1 else [None] * len(history)
    lines = "\n".join(
        f"{i + 1}. {text}" + ("" if model is None else f" [model: {model}]")
        + ("" if result is None else f"\n   Result: {result}")
        for i, (text, result, model) in enumerate(zip(history, seen, named, strict=True)))
    return f"Previous actions:\n{lines}"


def _task(instruction: str | None, user_message: str | None) -> str:
    """The task, and the user's latest message when the conversation moved on since."""
    task = f"Task: {instruction or '(no instruction recorded)'}\n"
    return task + (f"Latest user message: {user_message}\n" if user_message else "")


def screens_text(image_tags: list[str], *, current: bool = True) -> str:
    """Where the screenshots go, saying which one is the current screen.

    ``image_tags`` are in the order of the images: earlier screens oldest first, then (when
    ``current``) the current screen, so with history images the model is told which is which.
    """
    if not image_tags:
        return "No screenshot is available.\n"
    history, now = (image_tags[:-1], image_tags[-1]) if current else (image_tags, None)
    count = len(image_tags)
    text = (f"Earlier screens, oldest first (images 1 to {len(history)} of {count}): "
            f"{''.join(history)}\n") if history else ""
    if now is None:
        return text + "No screenshot of the current screen is available.\n"
    where = f" (image {count} of {count})" if history else ""
    return f"{text}Current screen{where}: {now}\n"


def stage1_prompt(instruction: str | None, history: list[str], horizon: int,
                  image_tags: list[str], *, current: bool = True,
                  results: list[str | None] | None = None,
                  user_message: str | None = None,
                  models: list[str | None] | None = None) -> str:
    """Forecast K actions; ``image_tags`` are placed where the screenshots belong (the last
    one is the current screen unless ``current`` is False); ``results`` are the history's
    tool results, ``user_message`` the user's latest message and ``models`` the model of each
    history action (curate.export.tool_context)."""
    screens = screens_text(image_tags, current=current)
    return (f"{_task(instruction, user_message)}{_history(history, results, models)}\n"
            f"{screens}Predict the next {horizon} actions, one per line. {ACTION_FORMAT}")


def stage2_prompt(instruction: str | None, step_instruction: str | None, history: list[str],
                  image_tags: list[str], *, current: bool = True,
                  results: list[str | None] | None = None,
                  user_message: str | None = None,
                  models: list[str | None] | None = None) -> str:
    current_text = screens_text(image_tags, current=current)
    step = f"Next step: {step_instruction}\n" if step_instruction else ""
    return (f"{_task(instruction, user_message)}{_history(history, results, models)}\n{step}"
            f"{current_text}Predict the next action. {ACTION_FORMAT}")


TRACER1_FORMAT = (
    "Think first, then answer as <think>...</think><answer>...</answer>. In the answer, write "
    "one line per step, up to the end of the task, each as\n"
    'Step k: "screenshot_abstraction": "<the screen after this step>", "action": '
    '{"action_type": "<type>", "step_instruction": "<what to do, on which element>"}, '
    '"status": "not done"\n'
    'with "status": "done" on the step that completes the task.'
)


def tracer1_prompt(instruction: str | None, history: list[str], horizon: int,
                   image_tags: list[str], *, to_end: bool,
                   results: list[str | None] | None = None,
                   user_message: str | None = None,
                   models: list[str | None] | None = None) -> str:
    """TraceR1's Stage-1 request (the step format of the first author's
    ``examples/format_prompt/gui_format.jinja``, in curate's words): forecast action-state
    steps up to task completion, at most ``horizon`` of them."""
    screens = screens_text(image_tags)
    reach = ("every remaining step of the task" if to_end
             else f"the next {horizon} steps (fewer if the task ends sooner)")
    return (f"{_task(instruction, user_message)}{_history(history, results, models)}\n"
            f"{screens}Forecast {reach}. {TRACER1_FORMAT}")
