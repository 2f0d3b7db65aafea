"""JPEG snapshots of the *published* stream, never from the camera (which only the publisher can open).

Two ways, the first preferred:

1. **From the key-frame tap** (:mod:`.keyframes`): the publisher leaves its newest key frame in a file;
   a snapshot decodes that one frame, handed over on stdin, with one short ffmpeg:

       ffmpeg -threads 1 -f h264|mjpeg -i pipe:0 -frames:v 1 -an [-vf scale=…] -f image2pipe -c:v mjpeg pipe:1

   No RTSP session and no wait for the next key frame: the answer takes one ffmpeg start and one decode
   (tens of ms), and the picture is at most one key-frame interval old. Its result is cached for as long
   as the tap holds the same frame (the file's modification time says which frame it is), so repeated
   requests within one key-frame interval cost nothing, and a newer key frame is never hidden by a cache.
   While snapshots are being asked for, the next decoder is started ahead of need and waits on its stdin
   (a "standby"; gone after ``STANDBY_IDLE_S`` without a request), so a request does not wait for ffmpeg
   to start, which is most of the time a one-frame decode takes.
   The tap is used while it is fresh (``tap_fresh_s``, from the stream's key-frame interval); a missing or
   stale tap (the tap could not be written, or an H.264 card whose frames carry no key flag) falls back to:

2. **Reading the stream over RTSP** like any other client. One short ffmpeg run per snapshot decodes a
   single key frame and encodes it as JPEG:

    ffmpeg -rtsp_transport <t> -timeout <µs> -probesize 32 -threads 1 -skip_frame nokey -i <url>
           -frames:v 1 -an [-vf scale=…] -f image2pipe -c:v mjpeg -q:v 4 pipe:1

Why each input option (measured with ffmpeg 5.1 against rtsp-server-perl, 320x240, GOP 1 s):

* ``-skip_frame nokey``: the decoder drops every non-key frame without decoding it (4 s of a 15 fps,
  GOP-15 stream decode to 4 frames instead of 51), so the picture is a clean key frame, never a
  half-reconstructed P-frame, and the Pi spends no CPU on frames it throws away. A snapshot therefore
  waits for the next key frame: its latency is bounded by the stream's key frame interval (1 s by default).
* ``-probesize 32``: stream probing stops after the first packet; the H.264 parameters come from the
  SDP (or from the key frame itself). Without it, probing with ``-skip_frame nokey`` never sees a decoded
  frame, so ffmpeg reads the full 5 s analyze duration and returns a key frame that is ~5 s old, after
  ~5.3 s instead of ~0.7 s.
* ``-threads 1``: frame threading only adds a frame of delay and a decoder context per thread when we
  decode a single frame.
* ``-timeout``: ffmpeg's own socket I/O timeout (microseconds; ffmpeg >= 5.0 meaning) a little longer than
  ours, so an ffmpeg orphaned by a SIGKILLed agent still gives up on a silent server by itself.

Concurrency: requests for one stream share one ffmpeg run (single flight) and a result younger than
``max_age_s`` is served from a cache, so ten dashboards asking at once cost one decode. A failure is
cached only briefly, so a stream that just came back yields a snapshot quickly. ffmpeg runs in its own
process group; a timeout or :meth:`SnapshotService.close` kills the group and reaps the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from pi_stream_agent.streams.keyframes import KeyFrame, read_tap, tap_mtime_ns
from pi_stream_agent.streams.urls import redact

_LOGGER = logging.getLogger(__name__)

SnapshotErrorCode = Literal[
    "stream_unavailable",  # the server refused, the path is not published, or no frame arrived
    "unauthorized",  # the RTSP server rejected the read credentials (401/403)
    "timeout",  # no key frame within timeout_s; ffmpeg was killed
    "decode_failed",  # ffmpeg failed otherwise or produced something that is not a JPEG
    "ffmpeg_missing",  # the ffmpeg executable is not installed / not executable
    "closed",  # the service was closed while the request waited
    "no_substream",  # a substream picture was asked for and the stream has none
]

# A failed decode is remembered this long (capped at the request's max age) so a burst of requests
# against a dead stream does not spawn one ffmpeg each, yet a stream that comes back is seen quickly.
FAILURE_TTL_S: Final = 1.0
# A key-frame decoder is started ahead of need (see SnapshotService: most of a tap snapshot is ffmpeg's own
# start, ~50-140 ms here and several times that on a Pi Zero 2 W) and kept this long after the last use.
STANDBY_IDLE_S: Final = 60.0
# Extra time ffmpeg's own I/O timeout gets beyond ours: ours should fire first and report "timeout".
_FFMPEG_TIMEOUT_MARGIN_S: Final = 1.0
_STDERR_KEEP: Final = 4000  # characters of ffmpeg's stderr kept for the error message
_MESSAGE_MAX: Final = 300

_SOI: Final = b"\xff\xd8"
_EOI: Final = b"\xff\xd9"
# Start-of-frame markers C0-CF carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field (ITU T.81 B.1.1.3): TEM, RST0-7, SOI, EOI.
_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xDA)})
_SOS: Final = 0xDA

# Substrings of ffmpeg's reason for failing (see _open_failure), or of its last error lines, checked in
# order. ffmpeg says e.g. "Server returned 404 Not Found", "Connection refused",
# "Server returned 401 Unauthorized (authorization failed)", "Output file #0 does not contain any stream".
_UNAUTHORIZED_HINTS: Final = ("401", "403", "Unauthorized", "Forbidden", "authorization failed")
_UNAVAILABLE_HINTS: Final = (
    "Server returned",
    "method DESCRIBE failed",
    "method SETUP failed",
    "method PLAY failed",
    "Connection refused",
    "Connection timed out",
    "Connection reset",
    "No route to host",
    "Network is unreachable",
    "Name or service not known",
    "Temporary failure in name resolution",
    "does not contain any stream",
    "End of file",
)
# How ffmpeg 7.1 (Debian 13) reports an input it could not open, in three lines where 5.1 (Debian 12)
# printed one "<url>: <reason>" (captures in tests/fixtures/ffmpeg/): "[in#0 @ 0x…] Error opening input:
# <reason>", "Error opening input file <url>." and "Error opening input files: <reason>".
_OPEN_FAILED_7: Final = "Error opening input files: "


class SnapshotError(Exception):
    """A snapshot could not be taken. ``code`` is machine-readable (see :data:`SnapshotErrorCode`),
    ``message`` is for people and never contains credentials."""

    def __init__(self, code: SnapshotErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: SnapshotErrorCode = code
        self.message = message

    def copy(self) -> SnapshotError:
        """A fresh exception with the same content (re-raising one cached instance would pile up
        tracebacks on it)."""
        return SnapshotError(self.code, self.message)


@dataclass(frozen=True)
class Snapshot:
    jpeg: bytes
    taken_at: float  # time.time() when the JPEG arrived
    width: int
    height: int
    # time.time() when the key frame in the picture left the encoder (the tap file's time); None when read
    # over RTSP, where the key frame arrives just before the JPEG (taken_at is as close as we know).
    captured_at: float | None = None
    from_tap: bool = False

    def age_s(self, now: float | None = None) -> float:
        """How old the picture is now (seconds)."""
        now = time.time() if now is None else now
        return max(0.0, now - (self.captured_at if self.captured_at is not None else self.taken_at))


# ------------------------------------------------------------------------------------------ pure helpers


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first start-of-frame marker of a JPEG, or None if ``data`` is not a
    JPEG, is truncated before the SOF, or declares a zero size. Never raises."""
    if not data.startswith(_SOI):
        return None
    pos = 2
    end = len(data)
    while pos < end:
        if data[pos] != 0xFF:
            return None  # every segment starts with 0xFF: this is not a JPEG (or it is corrupt)
        # Any number of 0xFF fill bytes may precede a marker (T.81 B.1.1.2).
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if pos + 2 > end:
            return None
        length = int.from_bytes(data[pos : pos + 2], "big")  # includes its own two bytes
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            # SOFn: length(2) precision(1) height(2) width(2) …
            if length < 7 or pos + 7 > end:
                return None
            height = int.from_bytes(data[pos + 3 : pos + 5], "big")
            width = int.from_bytes(data[pos + 5 : pos + 7], "big")
            # Height 0 means "defined later by a DNL marker"; no encoder we run does that.
            return (width, height) if width and height else None
        if marker == _SOS:
            return None  # entropy-coded data follows: no SOF came before the scan
        pos += length
    return None


def is_complete_jpeg(data: bytes) -> bool:
    """Starts with SOI and ends with EOI: ffmpeg was not cut off half-way through the image."""
    return len(data) >= 4 and data.startswith(_SOI) and data.endswith(_EOI)


def snapshot_argv(
    ffmpeg: str, url: str, *, transport: str, timeout_s: float, max_width: int | None
) -> list[str]:
    """The ffmpeg command line for one snapshot (an argument list; never a shell)."""
    io_timeout_us = int((timeout_s + _FFMPEG_TIMEOUT_MARGIN_S) * 1_000_000)
    argv = [
        ffmpeg,
        "-hide_banner", "-nostdin", "-loglevel", "error",
        "-rtsp_transport", transport,
        "-timeout", str(io_timeout_us),
        "-probesize", "32",
        "-threads", "1",
        "-skip_frame", "nokey",
        "-i", url,
        "-frames:v", "1",
        "-an",
    ]  # fmt: skip
    argv += _jpeg_output(max_width)
    return argv


def _jpeg_output(max_width: int | None) -> list[str]:
    argv = []
    if max_width is not None:
        # Only ever shrink; -2 keeps the aspect ratio with an even height. Bilinear is plenty for a
        # still and cheaper than the default bicubic on a Pi Zero.
        argv += ["-vf", f"scale=w=min(iw\\,{int(max_width)}):h=-2:flags=bilinear"]
    return [*argv, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4", "pipe:1"]


def tap_decode_argv(ffmpeg: str, codec: str, *, max_width: int | None) -> list[str]:
    """The ffmpeg command line that turns one key frame given on stdin into a JPEG on stdout."""
    return [
        ffmpeg,
        "-hide_banner", "-loglevel", "error",
        "-threads", "1",  # one frame: threads would only add decoder contexts
        "-f", codec,
        "-i", "pipe:0",
        "-frames:v", "1",
        "-an",
        *_jpeg_output(max_width),
    ]  # fmt: skip


def _last_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1][:_MESSAGE_MAX] if lines else ""


def _open_failure(last: str, url: str) -> str | None:
    """Why ffmpeg could not open the input ``url`` at all ("Server returned 404 Not Found"), from its last
    line, in the words of ffmpeg 5.1 ("<url>: <reason>") or 7.1 ("Error opening input files: <reason>");
    None if that line says something else."""
    for prefix in (f"{url}: ", _OPEN_FAILED_7):
        if last.startswith(prefix):
            return last[len(prefix) :]
    return None


def classify_failure(returncode: int | None, stdout: bytes, stderr: str, url: str) -> SnapshotError:
    """Why an ffmpeg snapshot run that produced no valid JPEG failed. ``stderr`` and ``url`` must already
    be redacted (the URL as it appears in ``stderr``). Every ffmpeg says an unreadable input the same way
    here: "<url>: <reason>"."""
    last = _last_line(stderr)
    if returncode == 0:
        if not stdout:
            return SnapshotError("stream_unavailable", last or "the stream ended before a key frame arrived")
        return SnapshotError("decode_failed", f"ffmpeg output is not a complete JPEG ({len(stdout)} bytes)")
    if returncode is not None and returncode < 0:
        return SnapshotError("decode_failed", f"ffmpeg was killed by signal {-returncode}")
    reason = _open_failure(last, url)
    if reason is not None:
        # The input could not be opened (e.g. a server that accepted the connection but answered nonsense:
        # "Invalid data found when processing input"). Only the reason is searched: the URL's port or path
        # may hold "401" as well.
        message = f"{url}: {reason}"[:_MESSAGE_MAX]
        if any(hint in reason for hint in _UNAUTHORIZED_HINTS):
            return SnapshotError("unauthorized", message)
        return SnapshotError("stream_unavailable", message)
    # Only the last few lines: an early warning must not decide the class of the final error.
    tail = "\n".join(stderr.splitlines()[-3:])
    if any(hint in tail for hint in _UNAUTHORIZED_HINTS):
        return SnapshotError("unauthorized", last)
    if any(hint in tail for hint in _UNAVAILABLE_HINTS):
        return SnapshotError("stream_unavailable", last)
    return SnapshotError("decode_failed", last or f"ffmpeg exited with status {returncode}")


# ---------------------------------------------------------------------------------------------- service


@dataclass(frozen=True)
class _Cached:
    source: str  # the RTSP URL, or "tap:<path>@<mtime_ns>" (which key frame)
    result: Snapshot | SnapshotError
    at: float  # loop.time() when the result was produced


@dataclass(frozen=True)
class _Flight:
    source: str
    task: asyncio.Task[Snapshot | SnapshotError]


_Key = tuple[str, bool]  # (stream id, substream)


class SnapshotService:
    """Snapshots for all streams: one ffmpeg run per stream (and substream) at a time; results from the
    tap are cached while the tap holds the same key frame, results read over RTSP for ``max_age_s``."""

    def __init__(
        self,
        *,
        ffmpeg: str = "ffmpeg",
        max_age_s: float = 2.0,
        timeout_s: float = 8.0,
        transport: str = "tcp",
        max_width: int | None = None,
    ) -> None:
        self._ffmpeg = ffmpeg
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._transport = transport
        self._max_width = max_width
        self._cache: dict[_Key, _Cached] = {}
        self._flights: dict[_Key, _Flight] = {}
        # Every decode task still running, including ones detached by invalidate(): close() waits for all.
        self._tasks: set[asyncio.Task[Snapshot | SnapshotError]] = set()
        self._closed = False
        self._runs = 0
        self._tap_runs = 0
        # One ffmpeg already started for the next key-frame decode, waiting on its stdin, with its argv.
        self._standby: tuple[tuple[str, ...], asyncio.subprocess.Process] | None = None
        self._standby_timer: asyncio.TimerHandle | None = None
        self._housekeeping: set[asyncio.Task[None]] = set()

    @property
    def runs(self) -> int:
        """How many ffmpeg processes this service has started (for metrics and tests)."""
        return self._runs

    @property
    def tap_runs(self) -> int:
        """How many of those decoded a key frame from the tap (the others read the stream over RTSP)."""
        return self._tap_runs

    async def get(
        self,
        stream_id: str,
        read_url: str,
        *,
        max_age_s: float | None = None,
        substream: bool = False,
        tap: str | None = None,
        tap_fresh_s: float = 3.0,
    ) -> Snapshot:
        """A JPEG of ``stream_id`` (its substream with ``substream``).

        From the key-frame file ``tap`` when it holds a frame younger than ``tap_fresh_s`` (the newest key
        frame; a cached JPEG of that same frame is reused), else read over RTSP from ``read_url``, no older
        than ``max_age_s`` (the service default when None). Joins a decode already under way for the same
        source instead of starting another. Cancelling the caller does not cancel the shared decode.
        Raises :class:`SnapshotError`."""
        if self._closed:
            raise SnapshotError("closed", "the snapshot service is closed")
        key: _Key = (stream_id, substream)
        if tap is not None:
            mtime_ns = tap_mtime_ns(tap)
            if mtime_ns is not None and time.time() - mtime_ns / 1e9 <= tap_fresh_s:
                try:
                    snapshot = await self._from_tap(key, f"tap:{tap}@{mtime_ns}", tap)
                except SnapshotError as err:
                    if err.code == "closed":
                        raise
                    # A frame ffmpeg could not decode (should not happen): the RTSP way still works.
                    _LOGGER.debug("Key frame of %s not usable (%s); reading the stream", stream_id, err)
                else:
                    if snapshot is not None:
                        return snapshot
        return await self._from_rtsp(key, read_url, max_age_s)

    async def _from_tap(self, key: _Key, source: str, tap: str) -> Snapshot | None:
        """The JPEG of the key frame ``source`` names (cached, joined or decoded now); None when the file
        vanished since it was looked at (the stream stopped)."""
        cached = self._cache.get(key)
        if cached is not None and cached.source == source:
            return _result(cached.result)  # the same key frame: nothing newer to show
        flight = self._flights.get(key)
        if flight is None or flight.source != source:
            frame = read_tap(tap)
            if frame is None:
                return None
            # Named by the frame actually read (a newer one may have replaced the one looked at).
            flight = self._start(key, f"tap:{tap}@{frame.mtime_ns}", self._decode_tap(frame))
        return await self._join(flight)

    async def _from_rtsp(self, key: _Key, read_url: str, max_age_s: float | None) -> Snapshot:
        loop = asyncio.get_running_loop()
        max_age = self._max_age_s if max_age_s is None else max_age_s
        cached = self._cache.get(key)
        if cached is not None and cached.source == read_url:
            age = loop.time() - cached.at
            if isinstance(cached.result, Snapshot):
                if age <= max_age:
                    return cached.result
            elif age < min(FAILURE_TTL_S, max_age):
                raise cached.result.copy()
        flight = self._flights.get(key)
        if flight is None or flight.source != read_url:
            flight = self._start(key, read_url, self._decode(read_url))
        return await self._join(flight)

    async def _join(self, flight: _Flight) -> Snapshot:
        # asyncio.wait (unlike awaiting the task) leaves the task running when this caller is cancelled.
        await asyncio.wait((flight.task,))
        if flight.task.cancelled():
            raise SnapshotError("closed", "the snapshot service was closed")
        return _result(flight.task.result())

    def invalidate(self, stream_id: str) -> None:
        """Forget the cached snapshots of ``stream_id`` and its substream (its publisher restarted). A
        decode under way keeps serving the callers already waiting on it but its result is not cached; the
        next caller starts a new decode."""
        for key in ((stream_id, False), (stream_id, True)):
            self._cache.pop(key, None)
            self._flights.pop(key, None)

    async def close(self) -> None:
        """Cancel every decode, kill and reap its ffmpeg, and refuse further requests."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._standby_timer is not None:
            self._standby_timer.cancel()
        if self._housekeeping:
            await asyncio.gather(*list(self._housekeeping), return_exceptions=True)
        await self._drop_standby()
        self._flights.clear()
        self._cache.clear()

    # ------------------------------------------------------------------------------------------ internal

    def _start(self, key: _Key, source: str, work: Coroutine[Any, Any, Snapshot | SnapshotError]) -> _Flight:
        name = f"snapshot {key[0]}{' substream' if key[1] else ''}"
        task = asyncio.get_running_loop().create_task(work, name=name)
        flight = _Flight(source, task)
        self._flights[key] = flight
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(key, flight, done))
        return flight

    def _finished(self, key: _Key, flight: _Flight, task: asyncio.Task[Snapshot | SnapshotError]) -> None:
        self._tasks.discard(task)
        if self._flights.get(key) is not flight:
            return  # invalidated (or superseded by another source) while running: do not cache
        del self._flights[key]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug, not a stream problem: log it rather than cache it
            _LOGGER.error("Snapshot of %s failed unexpectedly", key[0], exc_info=exc)
            return
        self._cache[key] = _Cached(flight.source, task.result(), task.get_loop().time())

    async def _decode_tap(self, frame: KeyFrame) -> Snapshot | SnapshotError:
        """Decode one key frame from the tap. Returns (not raises) a SnapshotError, as :meth:`_decode`."""
        argv = tap_decode_argv(self._ffmpeg, frame.codec, max_width=self._max_width)
        result = await self._run(argv, frame.data, "the stream's newest key frame")
        if isinstance(result, Snapshot):
            return replace(result, captured_at=frame.captured_at, from_tap=True)
        return result

    async def _decode(self, url: str) -> Snapshot | SnapshotError:
        """One ffmpeg run reading the stream over RTSP."""
        argv = snapshot_argv(
            self._ffmpeg, url, transport=self._transport, timeout_s=self._timeout_s, max_width=self._max_width
        )
        return await self._run(argv, None, url)

    async def _spawn(self, argv: Sequence[str], piped: bool) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if piped else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Own process group: a timeout kills whatever ffmpeg may have become, and a Ctrl-C meant
            # for the agent's terminal does not hit it half-way.
            start_new_session=True,
        )

    # Standby decoder. A key-frame snapshot is one short ffmpeg run, and most of its time is ffmpeg
    # starting (loading its libraries), not decoding. So after each key-frame decode one more ffmpeg with
    # the same command line is started and left waiting on its stdin; the next key-frame request feeds it
    # and answers without that start. Only after a first snapshot, and gone after STANDBY_IDLE_S without
    # one: an agent nobody asks for pictures keeps no extra process. (An orphaned standby sees EOF on its
    # stdin when the agent dies and exits.)

    def _take_standby(self, argv: Sequence[str]) -> asyncio.subprocess.Process | None:
        standby, self._standby = self._standby, None
        if standby is None:
            return None
        standby_argv, proc = standby
        if tuple(argv) == standby_argv and proc.returncode is None:
            return proc
        self._in_background(_kill_and_reap(proc))  # another size or codec: not usable
        return None

    def _refill_standby(self, argv: Sequence[str]) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        if self._standby_timer is not None:
            self._standby_timer.cancel()
        self._standby_timer = loop.call_later(
            STANDBY_IDLE_S, lambda: self._in_background(self._drop_standby())
        )
        if self._standby is None:
            self._in_background(self._start_standby(tuple(argv)))

    async def _start_standby(self, argv: tuple[str, ...]) -> None:
        try:
            proc = await self._spawn(argv, piped=True)
        except OSError:
            return  # the request that needs it will report why ffmpeg cannot start
        if self._closed or self._standby is not None:
            await _kill_and_reap(proc)
            return
        self._standby = (argv, proc)

    async def _drop_standby(self) -> None:
        standby, self._standby = self._standby, None
        if standby is not None:
            await _kill_and_reap(standby[1])

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._housekeeping.add(task)
        task.add_done_callback(self._housekeeping.discard)

    async def _run(self, argv: list[str], stdin: bytes | None, url: str) -> Snapshot | SnapshotError:
        """Run one snapshot ffmpeg (``stdin`` fed to it, or none). Returns (not raises) a SnapshotError so
        every waiter can get its own copy. ``url`` is the input as ffmpeg names it in its errors."""
        started = time.monotonic()
        try:
            proc = self._take_standby(argv) if stdin is not None else None
            if proc is None:
                proc = await self._spawn(argv, piped=stdin is not None)
            if stdin is not None:
                self._refill_standby(argv)
        except (FileNotFoundError, PermissionError) as err:
            return SnapshotError("ffmpeg_missing", f"cannot run {self._ffmpeg}: {err.strerror}")
        except OSError as err:
            return SnapshotError("decode_failed", f"cannot start {self._ffmpeg}: {err.strerror or err}")
        self._runs += 1
        if stdin is not None:
            self._tap_runs += 1
        try:
            try:
                stdout, stderr_bytes = await asyncio.wait_for(proc.communicate(stdin), self._timeout_s)
            except TimeoutError:
                return SnapshotError("timeout", f"no key frame within {self._timeout_s:g} s")
        finally:
            await _kill_and_reap(proc)
        stderr = stderr_bytes[-_STDERR_KEEP:].decode("utf-8", "replace")
        # ffmpeg quotes the URL it was given: redacted alike, so classify_failure still finds it.
        stderr, safe_url = redact(stderr), redact(url)
        elapsed = time.monotonic() - started
        if proc.returncode == 0 and is_complete_jpeg(stdout):
            size = jpeg_dimensions(stdout)
            if size is not None:
                _LOGGER.debug("Snapshot of %s: %d bytes in %.2f s", safe_url, len(stdout), elapsed)
                return Snapshot(stdout, time.time(), size[0], size[1])
            return SnapshotError("decode_failed", "ffmpeg output has no JPEG frame header")
        error = classify_failure(proc.returncode, stdout, stderr, safe_url)
        _LOGGER.debug("Snapshot of %s failed after %.2f s: %s", safe_url, elapsed, error)
        return error


def _result(result: Snapshot | SnapshotError) -> Snapshot:
    if isinstance(result, SnapshotError):
        raise result.copy()
    return result


async def _kill_and_reap(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL ffmpeg's process group if it still runs, then wait for it. A snapshot run has nothing to
    flush, so there is no point in a polite SIGTERM first."""
    if proc.returncode is None:
        # Not reaped yet, so the pid (= process group id) cannot have been reused.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    # Reap even while our task is being cancelled (close()): shield the wait so no cancel can leave a
    # zombie behind, then let the cancellation through.
    waiter = asyncio.ensure_future(proc.wait())
    cancelled = False
    while not waiter.done():
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
