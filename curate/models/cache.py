"""The content-addressed cache of model answers, kept inside the store.

    STORE/cache/models/<key[:2]>/<key>.json      one answer per request key

The key (see :meth:`curate.models.client.ChatRequest.cache_key`) hashes the model id, the
prompt template's version, the request text and the images' hashes, so the same request always
finds the same answer: a re-run makes no calls and gives the same bytes. Entries are written
to a temporary name and renamed into place, so a crash never leaves half an answer, and two
threads writing the same key write the same bytes.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_DIR = ("cache", "models")


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """What is kept of one answer: enough to parse it again and to say where it came from."""

    key: str
    model: str
    prompt_version: str
    text: str
    finish_reason: str | None

    def to_json(self) -> str:
        body = {"key": self.key, "model": self.model, "prompt_version": self.prompt_version,
                "text": self.text, "finish_reason": self.finish_reason}
        return json.dumps(body, sort_keys=True, ensure_ascii=False) + "\n"


class ModelCache:
    """Answers by request key under ``root`` (usually ``STORE/cache/models``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = str(root) + os.sep

    @classmethod
    def in_store(cls, store: Path | str) -> ModelCache:
        return cls(Path(store).joinpath(*CACHE_DIR))

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> CachedAnswer | None:
        """The cached answer for ``key``, or None (a corrupt entry counts as missing)."""
        try:
            # Plain string paths: a warm re-run is mostly these reads (pathlib costs ~30%).
            with open(f"{self._prefix}{key[:2]}{os.sep}{key}.json", "rb") as handle:
                body: dict[str, Any] = json.loads(handle.read())
            return CachedAnswer(key, str(body["model"]), str(body["prompt_version"]),
                                str(body["text"]), body.get("finish_reason"))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, KeyError, TypeError):
            return None

    def put(self, answer: CachedAnswer) -> None:
        final = self.path(answer.key)
        final.parent.mkdir(parents=True, exist_ok=True)
        # One temporary name per thread and process: concurrent writers never share one.
        temporary = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(answer.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)

    def keys(self) -> list[str]:
        """Every cached key (sorted)."""
        if not self.root.is_dir():
            return []
        return sorted(path.stem for path in self.root.glob("??/*.json"))
