"""Pure parser for ffmpeg's ``-progress`` output: ``key=value`` lines, one block per report, each block
ended by ``progress=continue`` (or ``progress=end`` when ffmpeg finishes).

A block as ffmpeg 5.1 (Debian 12) writes it with ``-progress pipe:1 -stats_period 1``::

    frame=16
    fps=15.90
    stream_0_0_q=19.0
    bitrate= 646.0kbits/s
    total_size=59220
    out_time_us=733344
    out_time_ms=733344
    out_time=00:00:00.733344
    dup_frames=0
    drop_frames=0
    speed=0.729x
    progress=continue

No I/O and no regex (this runs for every line the publisher reports, on a Pi Zero); odd values become
None, never an exception.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pi_stream_agent.streams.model import Progress

# The shortest stretch of media time a bitrate is measured over.
MIN_RATE_WINDOW_S = 1.0
# A key ffmpeg never repeats within one block; its arrival closes the block.
_END_KEY = "progress"


@dataclass(frozen=True)
class ProgressBlock:
    """One ``-progress`` report. None where ffmpeg wrote ``N/A``, left the key out, or wrote nonsense."""

    frames: int | None
    fps: float | None
    bitrate_bps: float | None
    out_time_s: float | None
    speed: float | None
    end: bool  # ``progress=end``: ffmpeg is finishing
    total_size: int | None = None  # bytes written so far; N/A for RTSP outputs (no file behind them)


def parse_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def parse_float(value: str) -> float | None:
    try:
        number = float(value.strip())
    except ValueError:
        return None
    # float() accepts "nan"/"inf"; neither means anything for a rate.
    return number if math.isfinite(number) else None


def parse_bitrate(value: str) -> float | None:
    """``" 646.0kbits/s"`` → 646000.0 bits per second; ``N/A`` → None (ffmpeg prints ``%6.1fkbits/s``)."""
    text = value.strip()
    if not text.endswith("kbits/s"):
        return None
    kbits = parse_float(text[: -len("kbits/s")])
    return None if kbits is None or kbits < 0 else kbits * 1000.0


def parse_speed(value: str) -> float | None:
    """``"0.729x"`` / ``"   1x"`` → 0.729 / 1.0; ``N/A`` → None."""
    text = value.strip()
    if not text.endswith("x"):
        return None
    speed = parse_float(text[:-1])
    return None if speed is None or speed < 0 else speed


def parse_out_time_us(value: str) -> float | None:
    """Microseconds → seconds. ffmpeg writes a huge negative number before the first timestamp is
    known (AV_NOPTS_VALUE arithmetic), so anything negative is "unknown"."""
    micros = parse_int(value)
    return None if micros is None or micros < 0 else micros / 1_000_000


class ProgressParser:
    """Feed it the lines of ffmpeg's ``-progress`` output; it returns a :class:`ProgressBlock` when a
    block ends. Lines that are not ``key=value`` are ignored (an ffmpeg that prints something else on
    the same stream must not break the reader)."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def feed(self, line: str) -> ProgressBlock | None:
        key, sep, value = line.partition("=")
        if not sep:
            return None
        key = key.strip()
        if key != _END_KEY:
            # Bounded: a block has about a dozen keys, one per output stream more; garbage without
            # a ``progress=`` line must not grow this forever.
            if len(self._fields) < 64 or key in self._fields:
                self._fields[key] = value
            return None
        fields, self._fields = self._fields, {}
        return _block(fields, end=value.strip() == "end")


def _block(fields: dict[str, str], *, end: bool) -> ProgressBlock:
    out_time: float | None = None
    if "out_time_us" in fields:
        out_time = parse_out_time_us(fields["out_time_us"])
    elif "out_time_ms" in fields:
        # Despite its name ffmpeg writes microseconds here too (a long-standing ffmpeg quirk:
        # out_time_ms == out_time_us); older builds only have this one.
        out_time = parse_out_time_us(fields["out_time_ms"])
    frame_text = fields.get("frame")
    frames = parse_int(frame_text) if frame_text is not None else None
    fps_text = fields.get("fps")
    bitrate_text = fields.get("bitrate")
    speed_text = fields.get("speed")
    size_text = fields.get("total_size")
    size = parse_int(size_text) if size_text is not None else None
    return ProgressBlock(
        frames=frames if frames is None or frames >= 0 else None,
        fps=parse_float(fps_text) if fps_text is not None else None,
        bitrate_bps=parse_bitrate(bitrate_text) if bitrate_text is not None else None,
        total_size=size if size is not None and size >= 0 else None,
        out_time_s=out_time,
        speed=parse_speed(speed_text) if speed_text is not None else None,
        end=end,
    )


def apply_block(progress: Progress, block: ProgressBlock, now: float) -> bool:
    """Update ``progress`` in place from ``block``; returns True when the frame count advanced.

    ``updated_at`` moves only when ``frames`` grows: a publisher whose input froze (a SIGSTOPped or
    wedged producer) keeps reporting the same count — or nothing at all — and that is exactly what the
    supervisor's stall watch looks for. A block without a frame count keeps the previous count, so a
    single odd block cannot make the next normal one look like progress."""
    progress.blocks += 1
    # 0.00 is what ffmpeg writes before it has measured anything: "not known yet", not a frozen stream
    # (a frozen stream is told by ``updated_at``, not by this average).
    progress.fps = block.fps if block.fps is not None and block.fps > 0 else None
    progress.bitrate_bps = block.bitrate_bps
    if block.total_size is not None and block.out_time_s is not None:
        record_size(progress, block.out_time_s, block.total_size)
    progress.out_time_s = block.out_time_s
    progress.speed = block.speed
    if block.frames is None:
        return False
    previous = progress.frames
    progress.frames = block.frames
    advanced = block.frames > previous if previous is not None else block.frames > 0
    if advanced:
        progress.updated_at = now
    return advanced


def record_size(progress: Progress, media_time_s: float, total_bytes: int) -> None:
    """Measure ``progress.measured_bitrate_bps`` from the bytes written so far at a media time: growth
    over the *media* time it covers (the publisher's own clock), so an agent that reads reports late, or
    several at once, measures the same rate. Unchanged until a window of MIN_RATE_WINDOW_S has passed."""
    previous = progress.size_mark
    if previous is None or total_bytes < previous[1] or media_time_s < previous[0]:
        progress.size_mark = (media_time_s, total_bytes)  # first report, or the counters started over
        return
    elapsed = media_time_s - previous[0]
    if elapsed < MIN_RATE_WINDOW_S:
        return
    progress.size_mark = (media_time_s, total_bytes)
    progress.measured_bitrate_bps = (total_bytes - previous[1]) * 8 / elapsed


@dataclass(frozen=True)
class FrameStats:
    """One ``-vstats_version 2`` line: an encoded frame of output file ``output``, stream ``stream``."""

    output: int
    stream: int
    total_bytes: int  # the stream's bytes up to and including this frame
    time_s: float  # the frame's media time


# The ffmpeg option that names the file -vstats lines go to (the pipeline builder sets it, the process layer
# points it at a pipe of its own: see process.py).
VSTATS_OPTION = "-vstats_file"
VSTATS_PREFIX = "out="
# The unit of ``s_size``: ffmpeg 5.1 (Debian 12) writes "kB", 7.1 (Debian 13) "KiB"; both mean 1024 bytes
# (size / 1024 in each), as the captures in tests/fixtures/ffmpeg/ show.
_KIB_SUFFIXES = ("KiB", "kB")


def vstats_to(argv: Sequence[str], fd: int) -> tuple[str, ...]:
    """``argv`` with the file after :data:`VSTATS_OPTION` replaced by the pipe ``fd``, which the child must
    inherit under the same number (``pass_fds``)."""
    changed = list(argv)
    changed[changed.index(VSTATS_OPTION) + 1] = f"/dev/fd/{fd}"
    return tuple(changed)


def parse_vstats_line(line: str) -> FrameStats | None:
    """``out=  0 st=  0 frame=  1 q= 19.0 f_size=  5241 s_size=  9kB time= 0.067 br= … type= P`` →
    FrameStats (ffmpeg writes ``s_size`` in whole KiB *before* this frame, ``f_size`` in bytes); None
    for anything else. Values follow their ``key=`` with optional spaces, so the words are paired up."""
    if not line.startswith(VSTATS_PREFIX):
        return None
    words = line.replace("=", "= ").split()
    values: dict[str, str] = {}
    for key, value in itertools.pairwise(words):
        if key.endswith("=") and not value.endswith("="):
            values[key[:-1]] = value
    output = parse_int(values.get("out", ""))
    stream = parse_int(values.get("st", ""))
    frame_bytes = parse_int(values.get("f_size", ""))
    before = values.get("s_size", "")
    suffix = next((suffix for suffix in _KIB_SUFFIXES if before.endswith(suffix)), None)
    before_kb = parse_int(before[: -len(suffix)]) if suffix is not None else None
    time_s = parse_float(values.get("time", ""))
    if None in (output, stream, frame_bytes, before_kb, time_s):
        return None
    assert output is not None and stream is not None and frame_bytes is not None
    assert before_kb is not None and time_s is not None
    return FrameStats(output, stream, before_kb * 1024 + frame_bytes, time_s)
