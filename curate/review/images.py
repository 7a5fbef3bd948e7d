"""How screenshots reach the Label Studio server.

- ``data-uri`` (default): the PNG/JPEG bytes go inside the task as ``data:image/...;base64``.
  Works with any server, local or remote, with no server-side setup; costs about 4/3 of the
  image size in the server's database per task.
- ``local-files``: frames are written once to ``ROOT/curate-frames/<frame_id>.<ext>`` and tasks
  point at ``/data/local-files/?d=curate-frames/...``. Needs a server on this machine (or
  sharing ROOT) started with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=ROOT``; push adds the matching local storage to the
  project. Best for big local stores: tasks stay small.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
from pathlib import Path

from curate.actions import Action, format_action_text
from curate.review.client import ReviewError
from curate.store.core import Store
from curate.store.frames import Frame

IMAGE_MODES = ("data-uri", "local-files")
FRAMES_FOLDER = "curate-frames"
LOCAL_ROOT_ENV = "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
PLACEHOLDER_TEXT = "no screenshot recorded for this step"
_EXTENSION = {"png": "png", "jpeg": "jpg", "webp": "webp", "gif": "gif"}


def read_frames(store: Store, frame_ids: set[str]) -> dict[str, Frame]:
    """The wanted frames, reading only their rows (one filtered pass per frames file)."""
    rows = store.read_where_in("frames", "frame_id", frame_ids,
                               columns=["frame_id", "format", "width", "height", "bytes"])
    return {row["frame_id"]: Frame(row["frame_id"], row["format"], row["width"], row["height"],
                                   row["bytes"]) for row in rows.to_pylist()}


@functools.cache
def placeholder() -> Frame:
    """A grey image standing in for a step with no screenshot (text-only or not recorded)."""
    from PIL import Image, ImageDraw, ImageFont  # imported here: only pushes without frames

    image = Image.new("RGB", (480, 120), (224, 224, 224))
    # Pillow's bitmap font: its default FreeType one draws a space 2 px wide at this size,
    # so the words ran together.
    ImageDraw.Draw(image).text((20, 50), PLACEHOLDER_TEXT, fill=(60, 60, 60),
                               font=ImageFont.load_default_imagefont())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Frame("placeholder", "png", 480, 120, buffer.getvalue())


def drawn_frame(frame: Frame, action: Action | None) -> Frame:
    """The frame with ``action`` drawn on it, as a PNG with its own id (the drawn copy is a
    different image from the frame); the frame itself when there is nothing to draw or no
    screenshot (the placeholder)."""
    if action is None or frame.frame_id == "placeholder":
        return frame
    from PIL import Image  # imported here: only segment pushes draw

    from curate.actions.drawing import draw_action

    with Image.open(io.BytesIO(frame.data)) as image:
        drawn = draw_action(image, action)
    buffer = io.BytesIO()
    drawn.save(buffer, format="PNG")
    digest = hashlib.sha256(format_action_text(action).encode()).hexdigest()[:12]
    return Frame(f"{frame.frame_id}-{digest}", "png", drawn.width, drawn.height,
                 buffer.getvalue())


class ImageSource:
    """Turns a frame into the URL a task carries, according to the image mode."""

    def __init__(self, mode: str, local_root: Path | None) -> None:
        if mode not in IMAGE_MODES:
            raise ReviewError(f"unknown image mode {mode!r}; use one of {', '.join(IMAGE_MODES)}")
        if mode == "local-files" and local_root is None:
            raise ReviewError(f"image mode local-files needs the server's document root: pass "
                              f"--local-files-root or set ${LOCAL_ROOT_ENV}")
        self.mode = mode
        self.local_root = local_root

    @property
    def folder(self) -> Path | None:
        """The folder a local-files storage must point at (None for data URIs)."""
        return self.local_root / FRAMES_FOLDER if self.local_root is not None else None

    def url(self, frame: Frame) -> str:
        if self.folder is None:
            encoded = base64.b64encode(frame.data).decode("ascii")
            return f"data:{_MIME.get(frame.format, 'image/png')};base64,{encoded}"
        name = f"{frame.frame_id}.{_EXTENSION.get(frame.format, 'png')}"
        path = self.folder / name
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{name}.tmp")
            temporary.write_bytes(frame.data)
            temporary.replace(path)
        return f"/data/local-files/?d={FRAMES_FOLDER}/{name}"
