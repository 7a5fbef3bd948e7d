"""Which packets of a screen video the frame picker needs decoded (H.264 in MP4/MOV).

Decoding is most of a video ingest, and many frames are never looked at. Before the decode,
one demux pass (no decoding: ~0.1 s for the 123 s AgentNet sample) reads every packet's time
and what its NAL headers say, and marks the frames a request could see (*needed*):

* every frame inside a settle window (the picker takes its grid);
* around each request's ``not_after`` and ``not_before``: the frames within ``MARGIN`` of it
  and the nearest frame on either side (the last frame at or before a time, the first one
  after it: the picker answers with these);
* the video's last frame (what :meth:`FramePicker.close` falls back on).

A packet whose frame is not needed is left undecoded only when nothing needed depends on
it: a non-reference picture (``nal_ref_idc`` 0: no frame is predicted from it), or any
packet of an IDR group (an IDR picture and what follows it up to the next) that comes after
the group's last needed packet in decode order (the next IDR starts the decoder afresh; a
group with no needed frame is skipped whole). Every other packet is decoded, so each frame
the picker sees has the pixels of a full decode, and the picker's answers are the same. On
the AgentNet sample: 985 of 3,678 packets skipped.

Anything this pass cannot read with certainty (another codec, Annex B streams, a packet
without a time, a demux error) turns skipping off: every packet is decoded, as before.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curate.sources.video import FrameRequest

# Frames this close to a request's bound count as on it (frame and packet times are the
# same float; the margin only widens what is kept).
MARGIN = 0.0005
_SLICE, _IDR = 1, 5  # H.264 NAL unit types of coded pictures


def decode_plan(path: Path, requests: Sequence[FrameRequest], origin: float) -> list[bool] | None:
    """One flag per demuxed video packet, in demux order: decode it or not; None: decode
    every packet (see the module doc)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            length_size = _nal_length_size(stream)
            if length_size is None or stream.time_base is None:
                return None
            base = stream.time_base
            packets: list[tuple[float, bool, bool] | None] = []  # (time, reference, idr)
            for packet in container.demux(stream):
                if packet.size == 0:
                    packets.append(None)  # the decoder's flush: always sent
                    continue
                if packet.pts is None:
                    return None
                kind = _picture_kind(memoryview(packet), length_size)
                if kind is None:
                    return None
                # The same float as the decoded frame's time (frame.time, less the origin).
                time = float(packet.pts) * base.numerator / base.denominator - origin
                packets.append((time, *kind))
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    needed = _needed_times(sorted(p[0] for p in packets if p is not None), requests)
    return _flags(packets, needed)


def _nal_length_size(stream: Any) -> int | None:
    """The NAL length prefix size of an H.264 stream in avcC form (MP4/MOV), else None."""
    extradata = stream.codec_context.extradata
    if stream.codec_context.name != "h264" or not extradata or extradata[0] != 1:
        return None
    return int(extradata[4] & 3) + 1


def _picture_kind(data: memoryview, length_size: int) -> tuple[bool, bool] | None:
    """(reference picture, IDR) from a packet's NAL headers; None when it has no slice or
    its NAL lengths do not add up."""
    reference = idr = False
    found = False
    position = 0
    while position < len(data):
        if position + length_size >= len(data):
            return None
        size = int.from_bytes(data[position:position + length_size], "big")
        header = data[position + length_size]
        kind = header & 31
        if kind in (_SLICE, _IDR):
            found = True
            reference |= (header >> 5) & 3 != 0
            idr |= kind == _IDR
        position += length_size + size
    return (reference, idr) if found and position == len(data) else None


def _needed_times(times: list[float], requests: Sequence[FrameRequest]) -> set[float]:
    """The times of the frames a request could see (see the module doc)."""
    needed: set[float] = {times[-1]} if times else set()

    def around(bound: float) -> None:
        low = max(bisect_left(times, bound - MARGIN) - 1, 0)
        high = bisect_right(times, bound + MARGIN) + 1
        needed.update(times[low:high])

    for request in requests:
        around(request.not_after)
        if request.not_before is not None:
            around(request.not_before)
        if request.settle:
            start = -math.inf if request.not_before is None else request.not_before
            needed.update(times[bisect_left(times, start - MARGIN):
                                bisect_right(times, request.not_after + MARGIN)])
    return needed


def _flags(packets: list[tuple[float, bool, bool] | None], needed: set[float]) -> list[bool]:
    """Decode a packet when its frame is needed, when it is a reference picture before the
    last needed packet of its IDR group (what follows that one in decode order is not
    predicted from by anything needed), when it comes before the first IDR, or when it is
    not a picture (the flush). A group with no needed frame is skipped whole."""
    flags: list[bool] = []
    pending: list[int] = []  # the group's reference pictures since its last needed packet
    seen_idr = False
    for packet in packets:
        if packet is None:
            flags.append(True)
            continue
        time, reference, idr = packet
        if idr:
            seen_idr, pending = True, []
        if not seen_idr or time in needed:
            for index in pending:
                flags[index] = True
            pending = []
            flags.append(True)
            continue
        if reference:
            pending.append(len(flags))
        flags.append(False)
    return flags
