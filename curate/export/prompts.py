"""The text a model is shown: one prompt builder per stage, shared by every flavour."""

from __future__ import annotations

ACTION_FORMAT = (
    "Write each action as type(key=value, ...) with JSON values, e.g. "
    'click(x=0.42, y=0.17) or type(text="hello"); coordinates are fractions of the '
    "screenshot's width and height."
)


def _history(history: list[str]) -> str:
    if not history:
        return "Previous actions: none."
    lines = "\n".join(f"{i + 1}. {text}" for i, text in enumerate(history))
    return f"Previous actions:\n{lines}"


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
                  image_tags: list[str], *, current: bool = True) -> str:
    """Forecast K actions; ``image_tags`` are placed where the screenshots belong (the last
    one is the current screen unless ``current`` is False)."""
    screens = screens_text(image_tags, current=current)
    return (f"Task: {instruction or '(no instruction recorded)'}\n{_history(history)}\n"
            f"{screens}Predict the next {horizon} actions, one per line. {ACTION_FORMAT}")


def stage2_prompt(instruction: str | None, step_instruction: str | None, history: list[str],
                  image_tags: list[str], *, current: bool = True) -> str:
    current_text = screens_text(image_tags, current=current)
    step = f"Next step: {step_instruction}\n" if step_instruction else ""
    return (f"Task: {instruction or '(no instruction recorded)'}\n{_history(history)}\n{step}"
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
                   image_tags: list[str], *, to_end: bool) -> str:
    """TraceR1's Stage-1 request (the step format of the first author's
    ``examples/format_prompt/gui_format.jinja``, in curate's words): forecast action-state
    steps up to task completion, at most ``horizon`` of them."""
    screens = screens_text(image_tags)
    reach = ("every remaining step of the task" if to_end
             else f"the next {horizon} steps (fewer if the task ends sooner)")
    return (f"Task: {instruction or '(no instruction recorded)'}\n{_history(history)}\n"
            f"{screens}Forecast {reach}. {TRACER1_FORMAT}")
