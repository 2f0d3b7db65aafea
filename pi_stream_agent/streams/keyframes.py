"""The key-frame tap: the publishing ffmpeg leaves the newest key frame of each stream in a file, so a
snapshot needs no RTSP session, no wait for the next key frame and no second camera open.

How it works (the ffmpeg side is built in :mod:`.pipelines`, the reading side in :mod:`.snapshot`):

* The publisher's output goes through ffmpeg's ``tee`` muxer: one slave publishes RTSP exactly as before,
  the other is the ``image2`` muxer with ``update=1`` (one file, overwritten) and ``atomic_writing=1``
  (written to ``<file>.tmp`` and renamed, so a reader never sees half a frame), behind the bitstream
  filter ``noise=drop=not(key)``, which drops every packet that is not a key frame. The encoded packets
  are copied, never decoded; with a GOP of 1 s ffmpeg writes one small file a second (tens to a few
  hundred kB) on a tmpfs. A card sending MJPEG (every frame a key frame) is thinned to one frame per
  key-frame interval by frame number instead (:func:`drop_expression`).
* Nobody reads the file until a snapshot is asked for: the tap wakes the agent never, and costs the
  publisher one small write a second (measured in bench/streams_snapshot.py, docs/benchmarks.md).
* The file's modification time is when the key frame left the encoder: the picture's age.
* The tap slave has ``onfail=ignore``: a full or missing tap directory never stops the stream (the
  snapshot then falls back to reading the stream over RTSP).

The directory is private to one agent run (:func:`make_tap_dir`: a fresh ``0700`` directory on a tmpfs,
so a Pi's SD card never sees these writes, named ``pi-stream-keyframes-<pid>-<random>``) and removed when
the agent stops. A SIGKILLed agent cannot remove it: the next start removes every such directory whose
owner process is gone (``rundirs.py``), before it makes its own.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from pi_stream_agent.rundirs import make_run_dir, remove_run_dir

TAP_PREFIX: Final = "pi-stream-keyframes-"
# Prefer systemd's RuntimeDirectory (set when the unit asks for one), then the tmpfs every Linux has.
# mkdtemp makes a fresh 0700 directory there (no name an attacker could pre-create).
_TMPFS_CANDIDATES: Final = ("/dev/shm",)  # noqa: S108

KeyFrameCodec = Literal["h264", "mjpeg"]

_JPEG_SOI: Final = b"\xff\xd8"


def make_tap_dir() -> str:
    """A fresh private directory for this agent run's key frames, on a tmpfs where there is one (after
    removing those that killed runs left there)."""
    parents = [os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0], *_TMPFS_CANDIDATES]
    for parent in parents:
        if parent and os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK):
            return str(make_run_dir(TAP_PREFIX, Path(parent)))
    return str(make_run_dir(TAP_PREFIX))


def remove_tap_dir(path: str) -> None:
    remove_run_dir(Path(path))


def tap_path(tap_dir: str, stream_id: str, *, substream: bool = False) -> str:
    """Where the newest key frame of a stream (or of its substream) is kept. Stream ids are plain
    ``[a-z0-9_-]`` (fields.STREAM_ID_PATTERN), so the name needs no escaping anywhere."""
    return str(Path(tap_dir) / f"{stream_id}.{'sub' if substream else 'main'}.keyframe")


def drop_expression(every_frame_is_key: bool, frames_per_key: int) -> str:
    """The ``noise`` bitstream filter's ``drop`` expression (evaluated per packet, true = drop).

    H.264: keep key frames only. MJPEG (every frame is a key frame): keep every ``frames_per_key``-th frame
    by its number ``n``, written without a comma (``n - k*floor(n/k)`` is ``mod(n, k)``) because commas
    separate bitstream filters in ffmpeg's list syntax."""
    if every_frame_is_key:
        k = max(1, frames_per_key)
        return f"n-{k}*floor(n/{k})" if k > 1 else "0"
    return "not(key)"


def remove_taps(tap_dir: str, stream_id: str) -> None:
    """Forget a stream's key frames (its publisher is starting again: the old frames are not its picture)."""
    for substream in (False, True):
        with contextlib.suppress(OSError):
            os.unlink(tap_path(tap_dir, stream_id, substream=substream))


@dataclass(frozen=True)
class KeyFrame:
    data: bytes
    codec: KeyFrameCodec
    captured_at: float  # time.time() when ffmpeg wrote it (the file's modification time)
    mtime_ns: int  # identifies this frame: the same file content as long as it does not change


def read_tap(path: str) -> KeyFrame | None:
    """The newest key frame at ``path``, or None when there is none (yet). Reads a renamed-into-place
    file through one open descriptor, so the bytes and their time belong to the same frame."""
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            data = handle.read()
    except OSError:
        return None
    if not data:
        return None
    codec: KeyFrameCodec = "mjpeg" if data.startswith(_JPEG_SOI) else "h264"
    return KeyFrame(data, codec, stat.st_mtime_ns / 1e9, stat.st_mtime_ns)


def tap_mtime_ns(path: str) -> int | None:
    """The modification time of the tap file (which frame is there now), None without one."""
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None
