"""curate.sources.video._DecodeAhead: the decode thread's errors and early stops.

Run over plain generators (the class takes any iterator of frames): what matters here is
that an error in the thread reaches the reader, and that stopping early ends the thread and
closes the frame iterator before the caller closes the container.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from curate.sources.video import DECODE_AHEAD, _DecodeAhead


def _decoders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "curate-video-decode"]


def test_an_error_in_the_decode_thread_is_raised_in_the_reader_after_its_frames() -> None:
    def frames() -> Iterator[int]:
        yield from range(3)
        raise ValueError("the decoder broke")

    seen = []
    with pytest.raises(ValueError, match="the decoder broke"):
        for frame in _DecodeAhead(frames()):
            seen.append(frame)
    assert seen == [0, 1, 2]
    assert not _decoders()


def test_closing_early_ends_the_thread_and_closes_the_frames() -> None:
    closed = []

    def frames() -> Iterator[int]:
        try:
            yield from range(10 * DECODE_AHEAD)  # more than the queue holds: the thread waits
        finally:
            closed.append(threading.current_thread().name)

    decoded = _DecodeAhead(frames())
    first = next(iter(decoded))
    decoded.close()
    assert first == 0
    assert closed == ["curate-video-decode"]  # closed in its own thread, before close() returned
    assert not _decoders()


def test_every_frame_comes_out_once_in_order() -> None:
    assert list(_DecodeAhead(iter(range(5 * DECODE_AHEAD + 3)))) == list(
        range(5 * DECODE_AHEAD + 3)
    )
    assert not _decoders()


def test_an_interrupt_while_closing_still_stops_the_thread_before_it_is_raised() -> None:
    # A Ctrl-C inside close() must not let the caller close the container under a thread
    # that is still decoding from it.
    decoded = _DecodeAhead(iter(range(10 * DECODE_AHEAD)))
    next(iter(decoded))
    real_get = decoded._queue.get
    raised: list[bool] = []

    def interrupted_once(*args: object, **kwargs: object) -> object:
        if not raised:
            raised.append(True)
            raise KeyboardInterrupt
        return real_get(*args, **kwargs)  # type: ignore[arg-type]

    decoded._queue.get = interrupted_once  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        decoded.close()
    assert raised == [True]
    assert not _decoders()  # the thread had ended when the interrupt reached the caller
