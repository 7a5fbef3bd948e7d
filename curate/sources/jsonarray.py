"""Read a JSON array one element at a time from a binary handle, in bounded memory.

Corpora published as one JSON list (AgentTrek's ``agenttrek_1207.json`` is 1.8 GB) cannot be
``json.load``-ed. This reader keeps a text window of a few megabytes: each element is decoded
with ``json.JSONDecoder.raw_decode`` (the C scanner), the consumed text is dropped, and more is
read when an element runs past the window. Nothing is guessed: an element either decodes
completely or ends the iteration with :class:`BrokenArray`, which says which element, where,
and whether the file simply ends inside it (a cut download) or is not JSON there.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import IO, Any

CHUNK_CHARS = 4 << 20
# The longest element held: AgentTrek's records are ~35 KB; a longer one is a dump or corrupt.
MAX_ELEMENT_CHARS = 256 << 20
_SPACE = " \t\n\r"
_LITERAL = 8  # an error this close to the end of a complete file is the cut itself
# What a window can end with right after a number's digits when the number goes on.
_NUMBER_TAILS = {".", "e", "E", "e+", "e-", "E+", "E-"}


class BrokenArray(Exception):
    """The array cannot be read past element ``index`` (starting at character ``offset``)."""

    def __init__(self, index: int, offset: int, reason: str, *, cut: bool) -> None:
        super().__init__(reason)
        self.index = index
        self.offset = offset
        self.reason = reason
        self.cut = cut  # True: the file ends inside the element (truncated, not malformed)


class _Window:
    """The undecoded text of the file: ``text[pos:]``, refilled from ``handle`` on demand."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.pos = 0
        self.base = 0  # characters dropped before text[0]
        self.eof = False

    def offset(self) -> int:
        return self.base + self.pos

    def more(self, at_least: int = 0) -> bool:
        """Append at least ``at_least`` characters (fewer at the end); False at end of file."""
        if self.eof:
            return False
        if self.pos > CHUNK_CHARS:  # drop what is decoded, so the window stays small
            self.base += self.pos
            self.text, self.pos = self.text[self.pos:], 0
        data = self.handle.read(max(at_least, CHUNK_CHARS))
        final = not data
        try:
            added = self.decoder.decode(data, final=final)
        except UnicodeDecodeError as error:
            raise UnicodeError(f"not UTF-8 near byte {error.start} of a read") from None
        self.text += added
        self.eof = final
        return bool(added) or not final

    def skip_space(self) -> str | None:
        """The next non-space character (not consumed), or None at the end of the file."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
                self.pos += 1
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return None


def iter_json_array(handle: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, value)`` for each element of the JSON array the handle holds.

    Raises ValueError when the file does not start with ``[``, and :class:`BrokenArray` at the
    first element (or separator) that does not decode: everything before it was yielded."""
    window = _Window(handle)
    decoder = json.JSONDecoder()
    index = 0
    try:
        if window.skip_space() != "[":
            raise ValueError("not a JSON array: the file does not start with '['")
        window.pos += 1
        if window.skip_space() == "]":
            return
        while True:
            start = window.offset()
            value = _decode(window, decoder, index)
            yield index, value
            index += 1
            following = window.skip_space()
            if following == "]":
                return
            if following != ",":
                cut = following is None
                raise BrokenArray(index, window.offset(), (
                    f"the file ends after element {index - 1}, without ']'" if cut else
                    f"expected ',' or ']' after element {index - 1} (which starts at "
                    f"character {start}), got {following!r}"), cut=cut)
            window.pos += 1
            if window.skip_space() is None:
                raise BrokenArray(index, window.offset(),
                                  f"the file ends after element {index - 1} and a ','", cut=True)
    except UnicodeError as error:
        raise BrokenArray(index, window.offset(), str(error), cut=False) from None


def _decode(window: _Window, decoder: json.JSONDecoder, index: int) -> Any:
    """Decode the element at the window's position, reading more while it runs past the
    window; a syntax error that more text does not move is the file's, not the window's."""
    start = window.offset()
    last: tuple[str, int] | None = None
    while True:
        try:
            value, end = decoder.raw_decode(window.text, window.pos)
        except json.JSONDecodeError as error:
            where = (error.msg, window.base + error.pos)
            unterminated = error.msg.startswith("Unterminated string")
            # All of the file is in the window, or more text did not move the error: final.
            if window.eof or (where == last and not unterminated):
                # Cut when the error is the end itself (a literal like `tru` is 4 characters).
                cut = window.eof and (unterminated
                                      or error.pos >= len(window.text.rstrip()) - _LITERAL)
                raise BrokenArray(index, start, (
                    f"the file ends inside element {index} (starting at character {start}): "
                    f"{error.msg}" if cut else
                    f"element {index} (starting at character {start}) is not valid JSON: "
                    f"{error.msg} at character {where[1]}"), cut=cut) from None
            if len(window.text) - window.pos > MAX_ELEMENT_CHARS:
                raise BrokenArray(index, start, f"element {index} (starting at character "
                                  f"{start}) is longer than {MAX_ELEMENT_CHARS >> 20} M "
                                  "characters or not valid JSON", cut=False) from None
            last = where
            window.more(len(window.text) - window.pos)  # grows the window geometrically
            continue
        if not window.eof and (end == len(window.text) or (
                type(value) in (int, float) and window.text[end:] in _NUMBER_TAILS)):
            # A number the window ends inside decodes as its first digits ("12" of "12.5",
            # "1.5" of "1.5e-7" when the window ends at "." or "e"): read on.
            window.more()
            continue
        window.pos = end
        return value


__all__ = ["BrokenArray", "iter_json_array"]
