"""The motion tap: the small grey picture the publisher's ffmpeg writes for motion detection, and the
agent's end of it.

The ffmpeg side (built in :mod:`.pipelines`) is one more output of the ffmpeg that already publishes:
``-map 0:v:0 -vf fps=4,scale=160:H:flags=area,format=gray -f rawvideo -y <fifo>`` — raw grey frames, a
fixed number of bytes each, written into a FIFO in the agent's private runtime directory (the key-frame
tap's, :mod:`.keyframes`). Why a FIFO rather than an inherited descriptor: the argument list can name it
before the pipe exists, exactly like the key-frame file, and ffmpeg needs no descriptor juggling.

The agent's side (:class:`MotionTap`), for each run of a publisher:

* a fresh FIFO (so a frame cut off by a dying ffmpeg never misaligns the next run's frames),
* opened for reading without blocking, plus a write end the agent holds itself: without it, reading a FIFO
  no writer has opened yet reports end-of-file at once,
* the FIFO's buffer raised to 1 MiB (``F_SETPIPE_SZ``, the unprivileged limit): about 13 s of 160x120
  frames at 4 fps, so an agent held up for a moment never makes ffmpeg wait on a full pipe (ffmpeg writes
  blocking: a pipe nobody reads would hold up the published stream too),
* frames cut from the bytes as they arrive (the event loop wakes about 4 times a second, only while
  motion detection is on) and handed to ``on_frame`` with their arrival time.

Closed after the publisher has stopped (never before: ffmpeg would fail writing to a FIFO without reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

_LOGGER = logging.getLogger(__name__)

# fcntl.F_SETPIPE_SZ exists from Python 3.10 on Linux; the number is Linux's, for older builds.
_F_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_BYTES: Final = 1 << 20

FrameHandler = Callable[[bytes, float], None]


def motion_fifo_path(tap_dir: str, stream_id: str) -> str:
    """Where a stream's analysis frames pass (stream ids are plain ``[a-z0-9_-]``: no escaping needed)."""
    return str(Path(tap_dir) / f"{stream_id}.motion.fifo")


class MotionTap:
    """Reads one publisher run's grey frames of ``frame_bytes`` each from the FIFO at ``path``."""

    def __init__(self, path: str, frame_bytes: int, on_frame: FrameHandler) -> None:
        self.path = path
        self.frame_bytes = frame_bytes
        self.frames = 0
        self._on_frame = on_frame
        self._buffer = bytearray()
        self._read_fd: int | None = None
        self._keepalive_fd: int | None = None
        self._transport: asyncio.ReadTransport | None = None

    async def open(self) -> None:
        """Make a fresh FIFO and start reading it (before the publisher starts). Raises OSError."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.mkfifo(self.path, 0o600)
        try:
            self._read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            self._keepalive_fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with contextlib.suppress(OSError):  # a smaller pipe still works, with less slack
                fcntl.fcntl(self._read_fd, _F_SETPIPE_SZ, PIPE_BYTES)
            pipe = os.fdopen(self._read_fd, "rb", buffering=0)
            self._read_fd = None  # owned by the file object, then by the transport
            loop = asyncio.get_running_loop()
            try:
                transport, _ = await loop.connect_read_pipe(lambda: _FrameProtocol(self), pipe)
            except BaseException:
                pipe.close()
                raise
            self._transport = transport
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop reading, close both ends and remove the FIFO (after the publisher has stopped)."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for fd in (self._read_fd, self._keepalive_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._read_fd = self._keepalive_fd = None
        self._buffer.clear()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _data(self, data: bytes) -> None:
        self._buffer += data
        size = self.frame_bytes
        if len(self._buffer) < size:
            return
        now = time.time()
        # Frames that queued up while the agent was busy are all analysed (the background needs them), in
        # order; they share the arrival time, which is as close as the agent knows.
        whole = len(self._buffer) // size * size
        frames, self._buffer = bytes(self._buffer[:whole]), self._buffer[whole:]
        for start in range(0, whole, size):
            self.frames += 1
            try:
                self._on_frame(frames[start : start + size], now)
            except Exception:  # a broken consumer must not stop the reading (ffmpeg would block)
                _LOGGER.exception("motion frame consumer failed")


class _FrameProtocol(asyncio.Protocol):
    def __init__(self, tap: MotionTap) -> None:
        self._tap = tap

    def data_received(self, data: bytes) -> None:
        self._tap._data(data)

    def eof_received(self) -> bool | None:
        return None
