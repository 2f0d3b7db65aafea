"""Memory kills and storage errors from the kernel log, read from the ``/dev/kmsg`` stream the power watch
already follows (``power.py`` hands every record that passes :data:`MARKERS` to :meth:`KernelEvents.feed`;
nothing is read twice).

Pure parsers first — the line shapes, quoted from real logs in ``fixtures/pi/kernel_log/`` (the read-only
remount line is from fs/ext4/super.c; no public Pi log quoting it was found):

* OOM kills (mm/oom_kill.c): ``oom-kill:constraint=CONSTRAINT_NONE,…,task=ffmpeg,pid=902280,uid=0`` (since
  5.0, printed just before) and ``Out of memory: Killed process 902280 (ffmpeg) total-vm:…`` (also
  ``Memory cgroup out of memory: Killed process …``). Both describe one kill: counted once per pid.
* Storage errors: ``mmc0: timeout waiting for hardware interrupt.``, ``EXT4-fs error (device mmcblk0p2): …``,
  ``blk_update_request: I/O error, dev mmcblk0, sector …`` (``print_req_error:``/``end_request:`` on older
  kernels, no prefix on 6.x), ``Buffer I/O error on dev mmcblk0p2, logical block …``, and ext4's
  ``Remounting filesystem read-only``.

Then :class:`KernelEvents`: counts, pushes ``oom_kill`` and ``storage_error`` events while following live,
and keeps the last few relevant lines (with their pids) for the exit context of a stream.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Gaps

# Byte-level prefilter for /dev/kmsg records (most kernel messages concern none of this).
MARKERS: tuple[bytes, ...] = (
    b"Killed process",
    b"oom-kill:",
    b"imeout waiting for hardware interrupt",
    b"EXT4-fs error",
    b"I/O error, dev",
    b"Buffer I/O error",
    b"Remounting filesystem read-only",
)

# One OOM kill is printed as two lines (oom-kill: and Killed process); the same pid within this many seconds
# is the same kill.
_SAME_KILL_S = 10.0
# A burst of storage errors (hundreds of Buffer I/O lines a second) becomes one event per this many seconds;
# every line is still counted, and the telemetry carries the count.
STORAGE_EVENT_INTERVAL_S = 5.0
# Lines kept for exit contexts: enough for a minute of a failing card without growing.
RECENT_LINES = 64
_MESSAGE_MAX = 300

_KILLED = re.compile(r"Killed process (\d+) \(([^)]*)\)")
_OOM_KILL = re.compile(r"oom-kill:.*?(?:^|,)task=([^,]*),pid=(\d+)")
_STORAGE = (
    ("mmc_timeout", re.compile(r"\bmmc\d+: [Tt]imeout waiting for hardware interrupt")),
    ("ext4_error", re.compile(r"EXT4-fs error \(device ")),
    ("read_only_remount", re.compile(r"EXT4-fs \([^)]*\): Remounting filesystem read-only")),
    ("io_error", re.compile(r"I/O error, dev \w+, sector")),
    ("buffer_io_error", re.compile(r"Buffer I/O error on dev(?:ice)? \w+")),
)


# --------------------------------------------------------------------------------------------------------
# Pure parsers


@dataclass(frozen=True)
class KernelLine:
    """A kernel log line without its prefix: the message and its timestamp in seconds since boot."""

    message: str
    seconds_since_boot: float | None


_SYSLOG_KERNEL = re.compile(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ kernel: ")
_BRACKET = re.compile(r"^\[\s*(\d+\.\d+)\] ")


def split_kernel_line(line: str) -> KernelLine | None:
    """A ``/dev/kmsg`` record (``3,1234,5678901,-;message``, µs), a dmesg line (``[  12.345678] message``),
    a kern.log/journal line (``Mar 23 22:40:24 host kernel: [ 12.3] message``) or a bare message. None for a
    kmsg record not from the kernel facility: user space can write to /dev/kmsg, and must not fake a kill."""
    line = line.rstrip("\n")
    prefix, semicolon, rest = line.partition(";")
    if semicolon and prefix.count(",") >= 3:
        parts = prefix.split(",")
        try:
            priority, microseconds = int(parts[0]), int(parts[2])
        except ValueError:
            pass
        else:
            if priority >> 3 != 0:
                return None
            return KernelLine(rest, microseconds / 1_000_000)
    syslog = _SYSLOG_KERNEL.match(line)
    if syslog:
        line = line[syslog.end() :]
    bracket = _BRACKET.match(line)
    if bracket:
        return KernelLine(line[bracket.end() :], float(bracket.group(1)))
    return KernelLine(line, None)


@dataclass(frozen=True)
class OomKill:
    pid: int
    process: str


def parse_oom_kill(message: str) -> OomKill | None:
    """``Out of memory: Killed process 902280 (ffmpeg) …`` or ``oom-kill:…,task=ffmpeg,pid=902280,…``."""
    killed = _KILLED.search(message)
    if killed:
        return OomKill(int(killed.group(1)), killed.group(2))
    oom = _OOM_KILL.search(message)
    if oom:
        return OomKill(int(oom.group(2)), oom.group(1))
    return None


def parse_storage_error(message: str) -> str | None:
    """The kind of storage error a message reports (``mmc_timeout``, ``ext4_error``, ``read_only_remount``,
    ``io_error``, ``buffer_io_error``), or None."""
    for kind, pattern in _STORAGE:
        if pattern.search(message):
            return kind
    return None


# --------------------------------------------------------------------------------------------------------
# The counter


@dataclass(frozen=True)
class RecentLine:
    at: float | None  # Unix time
    message: str
    pid: int | None  # the process the line is about, when it names one
    kind: str  # "oom_kill" | "storage"


class KernelEvents:
    """Counts OOM kills and storage errors since boot (as far as the kernel's ring buffer went back at start,
    then live), publishes them as they happen, and remembers the last lines for exit contexts.

    ``stream_of`` maps a pid to the stream whose publisher it was (None for any other process); the agent
    wires the process watch's memory of publisher pids, which also knows pids that just exited.
    """

    def __init__(
        self,
        bus: EventBus | None = None,
        *,
        stream_of: Callable[[int], str | None] = lambda pid: None,
    ) -> None:
        self._bus = bus
        self.stream_of = stream_of
        self.following = False  # True once the power watch follows the kernel log
        self.unavailable_reason: str | None = "kernel log not read yet"
        self.oom_total = 0
        self.last_oom: dict[str, Any] | None = None
        self.storage_errors_total = 0
        self.last_storage_error: dict[str, Any] | None = None
        self._recent_kills: deque[tuple[int, float | None]] = deque(maxlen=16)
        self._last_storage_event_at: float | None = None
        self.recent: deque[RecentLine] = deque(maxlen=RECENT_LINES)

    def feed(self, line: str, at: float | None, *, live: bool) -> None:
        """One kernel log line (any of the shapes :func:`split_kernel_line` takes). ``at`` is its Unix time
        (None when unknown); ``live`` is False for the history read at start (counted, not pushed)."""
        parsed = split_kernel_line(line)
        if parsed is None:
            return
        message = parsed.message.strip()[:_MESSAGE_MAX]
        kill = parse_oom_kill(message)
        if kill is not None:
            self._oom(kill, message, at, live)
            return
        kind = parse_storage_error(message)
        if kind is not None:
            self._storage(message, at, live)

    def feed_all(self, lines: Iterable[str], at: float | None, *, live: bool) -> None:
        for line in lines:
            self.feed(line, at, live=live)

    def _oom(self, kill: OomKill, message: str, at: float | None, live: bool) -> None:
        self.recent.append(RecentLine(at, message, kill.pid, "oom_kill"))
        for pid, seen_at in self._recent_kills:
            if pid == kill.pid and (at is None or seen_at is None or abs(at - seen_at) <= _SAME_KILL_S):
                return  # the second line of a kill already counted
        self._recent_kills.append((kill.pid, at))
        self.oom_total += 1
        stream_id = self.stream_of(kill.pid)
        self.last_oom = {
            "timestamp": None if at is None else round(at, 3),
            "pid": kill.pid,
            "process": kill.process,
            "stream_id": stream_id,
        }
        if live and self._bus is not None:
            self._bus.publish("oom_kill", dict(self.last_oom))

    def _storage(self, message: str, at: float | None, live: bool) -> None:
        self.recent.append(RecentLine(at, message, None, "storage"))
        self.storage_errors_total += 1
        self.last_storage_error = {"timestamp": None if at is None else round(at, 3), "message": message}
        if not live or self._bus is None:
            return
        last = self._last_storage_event_at
        if last is not None and at is not None and 0 <= at - last < STORAGE_EVENT_INTERVAL_S:
            return
        self._last_storage_event_at = at
        self._bus.publish(
            "storage_error",
            {"message": message, "timestamp": self.last_storage_error["timestamp"],
             "errors_total": self.storage_errors_total},
        )  # fmt: skip

    def lines_about(self, pids: Iterable[int], since: float | None) -> list[str]:
        """Messages about these processes, and storage errors, no older than ``since`` (Unix time)."""
        wanted = set(pids)
        return [
            line.message
            for line in self.recent
            if (line.pid in wanted or line.kind == "storage")
            and (since is None or line.at is None or line.at >= since)
        ]

    def killed(self, pids: Iterable[int], since: float | None) -> bool:
        """Whether the OOM killer took one of these processes at or after ``since``."""
        wanted = set(pids)
        return any(
            line.kind == "oom_kill"
            and line.pid in wanted
            and (since is None or line.at is None or line.at >= since)
            for line in self.recent
        )

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        """``{"oom_kills": {"total", "last"}}``; the storage errors go into the storage reader's section."""
        if not self.following:
            reason = self.unavailable_reason or "kernel log not followed"
            gaps.note("oom_kills", reason)
            return {"oom_kills": {"total": None, "last": None}}
        if self.last_oom is None:
            gaps.note("oom_kills.last", "no process killed for want of memory since boot")
        return {"oom_kills": {"total": self.oom_total, "last": self.last_oom}}
