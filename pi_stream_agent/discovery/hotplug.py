"""Notice video nodes appearing and disappearing under ``<root>/dev`` without spinning.

With inotify (Linux, ctypes ``inotify_init1``/``inotify_add_watch``) the watcher's file descriptor sits in
the event loop (``add_reader``): an idle agent gets **zero** wake-ups. devtmpfs creates ``/dev/videoN`` when
the kernel registers the node (and sysfs already has it by then), so a ``video*`` create/delete/move is the
signal. Events are debounced (~200 ms: a UVC card brings two nodes, then udev adds symlinks) before one
callback runs. Where inotify is unavailable (not Linux, no ``dev`` directory, out of watches) a 2 s loop
compares the set of ``video*`` names instead, one ``listdir`` per tick.

Sound cards (``/dev/snd/pcmC<card>D<device>c``, discovery/alsa.py) live one level down: ``dev/snd`` gets
its own watch when it exists (and is added when it appears), and the poll compares its names too. Its
going away (the last card unplugged) is only a change, not a reason to stop watching.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import struct
from collections.abc import Awaitable, Callable

from pi_stream_agent.rootfs import Root

_LOGGER = logging.getLogger(__name__)

# <sys/inotify.h>
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
WATCH_MASK = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR

_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name
_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED

OnChange = Callable[[], Awaitable[None]]


def parse_inotify_watch_events(data: bytes) -> list[tuple[int, int, str]]:
    """``(wd, mask, name)`` for each ``struct inotify_event`` in a read buffer. Pure; stops at a torn tail."""
    events: list[tuple[int, int, str]] = []
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
        start = offset + _EVENT.size
        raw_name = data[start : start + length].split(b"\0", 1)[0]
        events.append((wd, mask, raw_name.decode("utf-8", "replace")))
        offset = start + length
    return events


def parse_inotify_events(data: bytes) -> list[tuple[int, str]]:
    """``(mask, name)`` for each ``struct inotify_event`` in a read buffer. Pure; stops at a torn tail."""
    return [(mask, name) for _wd, mask, name in parse_inotify_watch_events(data)]


SOUND_DIR = "snd"  # below dev: ALSA's nodes


def is_relevant(mask: int, name: str) -> bool:
    """A video node or sound device came or went (``dev/snd`` itself, or a capture PCM in it), the kernel
    dropped events, or the watched directory itself went away."""
    return (
        bool(mask & (IN_Q_OVERFLOW | _GONE))
        or name.startswith("video")
        or name == SOUND_DIR
        or (name.startswith("pcmC") and name.endswith("c"))
    )


class _Inotify:
    """A non-blocking inotify descriptor watching one directory."""

    def __init__(self, directory: str) -> None:
        libc = ctypes.CDLL(None, use_errno=True)  # the interpreter's own libc: no ldconfig fork
        init1 = libc.inotify_init1
        init1.argtypes = [ctypes.c_int]
        init1.restype = ctypes.c_int
        add_watch = libc.inotify_add_watch
        add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        add_watch.restype = ctypes.c_int
        fd = init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self._add_watch = add_watch
        self.fd = fd
        self.wd = add_watch(fd, os.fsencode(directory), WATCH_MASK)
        if self.wd < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"{os.strerror(err)}: {directory}")

    def watch_more(self, directory: str) -> int:
        """Watch one more directory on the same descriptor; -1 when it cannot be (absent): not an error."""
        return int(self._add_watch(self.fd, os.fsencode(directory), WATCH_MASK))

    def read_all(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class HotplugWatcher:
    """Calls ``on_change`` (at most one at a time; once more if something changed meanwhile) after video
    nodes under ``<root>/dev`` change. ``mode`` is ``"inotify"``, ``"poll"`` or None when stopped."""

    def __init__(
        self,
        root: Root,
        on_change: OnChange,
        *,
        debounce_s: float = 0.2,
        poll_interval_s: float = 2.0,
        use_inotify: bool = True,
    ) -> None:
        self._dev = str(root.path("dev"))
        self._snd = str(root.path("dev") / SOUND_DIR)
        self._on_change = on_change
        self._debounce_s = debounce_s
        self._poll_interval_s = poll_interval_s
        self._use_inotify = use_inotify
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inotify: _Inotify | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._again = False
        self.mode: str | None = None
        self.reason: str | None = None  # why polling is used instead of inotify

    async def start(self) -> None:
        if self.mode is not None:
            return
        self._loop = asyncio.get_running_loop()
        if self._use_inotify:
            try:
                self._inotify = _Inotify(self._dev)
            except (OSError, AttributeError) as exc:  # AttributeError: libc without inotify (not Linux)
                self.reason = (
                    f"inotify unavailable ({exc}); checking {self._dev} every {self._poll_interval_s:g} s"
                )
            else:
                self._inotify.watch_more(self._snd)
                self._loop.add_reader(self._inotify.fd, self._on_readable)
                self.mode = "inotify"
                return
        else:
            self.reason = "inotify disabled"
        self._start_polling()

    async def stop(self) -> None:
        self.mode = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._close_inotify()
        for task in (self._poll_task, self._run_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._poll_task = None
        self._run_task = None

    # -- inotify -----------------------------------------------------------------------------------------

    def _close_inotify(self) -> None:
        if self._inotify is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._inotify.fd)
            self._inotify.close()
            self._inotify = None

    def _on_readable(self) -> None:
        if self._inotify is None:
            return
        try:
            events = parse_inotify_watch_events(self._inotify.read_all())
        except OSError as exc:
            self._fall_back(f"inotify read failed ({exc})")
            return
        if not any(is_relevant(mask, name) for _wd, mask, name in events):
            return
        if any(name == SOUND_DIR and mask & (IN_CREATE | IN_MOVED_TO) for _wd, mask, name in events):
            self._inotify.watch_more(self._snd)  # the first sound card arrived: watch its nodes
        self._schedule()
        main = self._inotify.wd
        if any(mask & _GONE and wd == main for wd, mask, _ in events):
            # The watched directory was removed or unmounted: nothing more will come from this watch.
            self._fall_back(f"{self._dev} went away")

    def _fall_back(self, reason: str) -> None:
        _LOGGER.warning("Hot-plug watch: %s; polling every %g s instead", reason, self._poll_interval_s)
        self._close_inotify()
        self.reason = reason
        self._start_polling()

    # -- polling -----------------------------------------------------------------------------------------

    def _start_polling(self) -> None:
        assert self._loop is not None
        self.mode = "poll"
        # The first snapshot is taken now, not when the task first runs: a node created in between
        # must count as a change.
        self._poll_task = self._loop.create_task(self._poll(self._video_names()))

    def _video_names(self) -> frozenset[str]:
        """The video nodes and the sound nodes (``snd/…``): what a poll compares."""
        try:
            names = {name for name in os.listdir(self._dev) if name.startswith("video")}
        except OSError:
            return frozenset()
        with contextlib.suppress(OSError):  # no sound card: no dev/snd
            names.update(f"{SOUND_DIR}/{name}" for name in os.listdir(self._snd) if name.startswith("pcmC"))
        return frozenset(names)

    async def _poll(self, seen: frozenset[str]) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            now = self._video_names()
            if now != seen:
                seen = now
                self._schedule()

    # -- debounce and callback ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        # The first event opens a debounce window; later ones inside it ride along (no postponing, so a
        # stream of events cannot starve the rescan).
        if self._timer is None and self._loop is not None:
            self._timer = self._loop.call_later(self._debounce_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._run_task is not None and not self._run_task.done():
            self._again = True  # a change during a running callback: run once more afterwards
            return
        assert self._loop is not None
        self._run_task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self._on_change()
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("Hot-plug rescan failed")
            if not self._again:
                return
