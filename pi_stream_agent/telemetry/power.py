"""Under-voltage episodes, including sags too short for any periodic sample to see.

The firmware sets throttle bit 16 ("under-voltage has occurred") on any sag, and the kernel's
raspberrypi-hwmon driver polls that word every 2 s and clears the sticky bits each time. On each change
of bit 16 the driver (drivers/hwmon/raspberrypi-hwmon.c)

* logs ``Under-voltage detected! (0x%08x)`` (crit) or ``Voltage normalised (0x%08x)`` (info), each
  rate-limited to 3 per 5 minutes, and
* calls ``sysfs_notify`` on ``/sys/class/hwmon/hwmonN/in0_lcrit_alarm`` (name ``rpi_volt``), which reads
  ``1`` while bit 16 was set at the last poll.

:class:`PowerWatch` follows both without polling on a real Pi: the alarm file through an epoll waiting for
EPOLLPRI (plain ``add_reader`` on a sysfs fd would spin: sysfs is always "readable"), and ``/dev/kmsg``
through ``add_reader`` (it is pollable). On start it reads the kernel log ring buffer to count the
episodes since boot. Both sources report the same sag; :class:`UnderVoltageEpisodes` counts it once.

The same kernel log stream feeds :class:`~.kernel_events.KernelEvents` (memory kills, storage errors): one
reader, one byte filter, every record read once.

In a fixture tree (or the simulation) both are regular files: the alarm file is re-read and the log file
followed for appended lines once per ``poll_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import select
import stat
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Gaps, Root, describe_os_error
from pi_stream_agent.telemetry.kernel_events import MARKERS as KERNEL_EVENT_MARKERS
from pi_stream_agent.telemetry.kernel_events import KernelEvents

HWMON_CLASS = "sys/class/hwmon"
HWMON_NAME = "rpi_volt"
ALARM_FILE = "in0_lcrit_alarm"
KMSG = "dev/kmsg"
UNDER_VOLTAGE_MESSAGE = "Under-voltage detected!"
NORMALISED_MESSAGE = "Voltage normalised"
# Cheap byte-level filter for /dev/kmsg records: every kernel message wakes the watch, few are ours.
_VOLTAGE_MARKERS = (UNDER_VOLTAGE_MESSAGE.encode(), NORMALISED_MESSAGE.encode())
_KMSG_RECORD_MAX = 8192  # one read() returns one record; the kernel caps a record well below this

SOURCE_HWMON = "hwmon"
SOURCE_KMSG = "kmsg"


# --------------------------------------------------------------------------------------------------------
# Pure parsers


@dataclass(frozen=True)
class KernelVoltageRecord:
    """One raspberrypi-hwmon log line: ``active`` for "Under-voltage detected!", False for "Voltage
    normalised"; ``raw`` the throttle word it printed; ``seconds_since_boot`` the kernel timestamp."""

    active: bool
    raw: int | None
    seconds_since_boot: float | None
    sequence: int | None = None


def _kmsg_prefix(prefix: str) -> tuple[int, int, float] | None:
    """``2,1234,5678901,-`` → (priority, sequence, seconds since boot), or None if not a kmsg prefix."""
    parts = prefix.split(",")
    if len(parts) < 4:
        return None
    try:
        return int(parts[0]), int(parts[1]), int(parts[2]) / 1_000_000
    except ValueError:
        return None


def _bracket_timestamp(before: str) -> float | None:
    """``[   12.345678] `` (dmesg, kern.log) → 12.345678; None for ``dmesg -T`` dates or no brackets."""
    start = before.rfind("[")
    end = before.find("]", start + 1)
    if start < 0 or end < 0:
        return None
    try:
        return float(before[start + 1 : end])
    except ValueError:
        return None


def _raw_word(after: str) -> int | None:
    """`` (0x00050005)`` → 0x50005."""
    start = after.find("(0x")
    end = after.find(")", start + 3)
    if start < 0 or end < 0:
        return None
    try:
        return int(after[start + 3 : end], 16)
    except ValueError:
        return None


def parse_kernel_log_line(line: str) -> KernelVoltageRecord | None:
    """A raspberrypi-hwmon voltage line in any of the shapes it reaches us: a ``/dev/kmsg`` record
    (``2,1234,5678901,-;Under-voltage detected! (0x00050005)``, timestamp in µs), a dmesg line
    (``[   12.345678] Voltage normalised (0x00000000)``), a syslog line, or the bare message.
    None for every other line. ``/dev/kmsg`` records not from the kernel facility (written by user space
    through /dev/kmsg) are ignored, so they cannot fake an episode."""
    active = True
    message = UNDER_VOLTAGE_MESSAGE
    position = line.find(message)
    if position < 0:
        active = False
        message = NORMALISED_MESSAGE
        position = line.find(message)
        if position < 0:
            return None
    before = line[:position]
    raw = _raw_word(line[position + len(message) :])
    prefix, semicolon, _ = before.partition(";")
    kmsg = _kmsg_prefix(prefix) if semicolon else None
    if kmsg is not None:
        priority, sequence, seconds = kmsg
        if priority >> 3 != 0:  # facility 0 = kernel
            return None
        return KernelVoltageRecord(active, raw, seconds, sequence)
    return KernelVoltageRecord(active, raw, _bracket_timestamp(before))


def parse_kernel_log(text: str) -> list[KernelVoltageRecord]:
    """Every voltage record in a log text (kmsg records, dmesg output, kern.log), in order. Continuation
    lines of kmsg records (starting with a space: ``" SUBSYSTEM=…"``) are skipped."""
    records: list[KernelVoltageRecord] = []
    for line in text.splitlines():
        if line.startswith(" "):
            continue
        record = parse_kernel_log_line(line)
        if record is not None:
            records.append(record)
    return records


def parse_lcrit_alarm(text: str) -> bool | None:
    """``in0_lcrit_alarm``: ``0`` or ``1`` (hwmon prints %ld and a newline)."""
    value = text.strip()
    if value == "1":
        return True
    if value == "0":
        return False
    return None


# --------------------------------------------------------------------------------------------------------
# Episodes (pure: the time is passed in)


@dataclass(frozen=True)
class EpisodeEdge:
    """An accepted edge: the state it leads to, its source and time, the episode count after it, and the
    episode's duration on an end (None when the start or end time is unknown)."""

    active: bool
    source: str
    at: float | None
    episodes: int
    duration_s: float | None = None


@dataclass
class UnderVoltageEpisodes:
    """Counts under-voltage episodes from start/end edges reported by one or more sources.

    Deduplication: both sources describe the same firmware bit, so a start while an episode is already
    running is the second report of that episode, an end while none runs likewise, and a start from
    another source within ``dedupe_window_s`` after an end is the late report of the episode just ended.
    One exception: the kernel log rate-limits each message to 3 per 5 minutes, so the *same* source
    reporting a start twice means its end in between was dropped: the running episode is closed (end time
    unknown) and a new one begins.

    Times are Unix seconds; None where unknown (log lines without timestamps).
    """

    dedupe_window_s: float = 1.0
    active: bool = False
    episodes: int = 0
    last_start: float | None = None
    last_end: float | None = None
    last_duration_s: float | None = None
    longest_s: float | None = None
    _source_state: dict[str, bool] = field(default_factory=dict)
    _episode_sources: set[str] = field(default_factory=set)
    # Start times of the latest episodes (for "episodes in the last minute" in a stream's exit context).
    _recent_starts: deque[float] = field(default_factory=lambda: deque(maxlen=32))

    def starts_since(self, since: float) -> int:
        """Episodes that began at or after ``since`` (Unix time; those with no known start are left out)."""
        return sum(1 for start in self._recent_starts if start >= since)

    def edge(self, active: bool, source: str, at: float | None) -> EpisodeEdge | None:
        """Feed one observed edge; returns the accepted edge, or None when it was a duplicate."""
        previous = self._source_state.get(source)
        self._source_state[source] = active
        if active:
            if self.active:
                if previous is True and source in self._episode_sources:
                    self._finish(None)
                    return self._begin(source, at)
                self._episode_sources.add(source)
                return None
            if self._late_report_of_last(source, at):
                return None
            return self._begin(source, at)
        if not self.active:
            return None
        return self._finish(at, source)

    def _late_report_of_last(self, source: str, at: float | None) -> bool:
        if at is None or self.last_end is None or source in self._episode_sources:
            return False
        return 0.0 <= at - self.last_end <= self.dedupe_window_s

    def _begin(self, source: str, at: float | None) -> EpisodeEdge:
        self.active = True
        self.episodes += 1
        self.last_start = at
        if at is not None:
            self._recent_starts.append(at)
        self.last_end = None
        self.last_duration_s = None
        self._episode_sources = {source}
        return EpisodeEdge(True, source, at, self.episodes)

    def _finish(self, at: float | None, source: str = "") -> EpisodeEdge:
        self.active = False
        self.last_end = at
        duration: float | None = None
        if at is not None and self.last_start is not None:
            duration = max(at - self.last_start, 0.0)
            if self.longest_s is None or duration > self.longest_s:
                self.longest_s = duration
        self.last_duration_s = duration
        return EpisodeEdge(False, source, at, self.episodes, duration)


# --------------------------------------------------------------------------------------------------------
# The watch


def find_rpi_volt_alarm(root: Root) -> Path | None:
    """``sys/class/hwmon/hwmonN/in0_lcrit_alarm`` of the device named ``rpi_volt`` (N varies by board)."""
    try:
        entries = sorted(root.path(HWMON_CLASS).iterdir())
    except OSError:
        return None
    for entry in entries:
        try:
            name = (entry / "name").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            continue
        if name == HWMON_NAME:
            return entry / ALARM_FILE
    return None


_EMPTY_FRAGMENT: dict[str, Any] = {
    "under_voltage_now": None,
    "under_voltage_episodes": None,
    "last_under_voltage_start": None,
    "last_under_voltage_end": None,
    "longest_under_voltage_s": None,
    "sources": [],
}


class PowerWatch:
    """Follows the hwmon alarm and the kernel log; publishes ``under_voltage`` events at each edge.

    ``clock`` gives Unix time (injectable for tests); kernel log timestamps (seconds since boot) are
    converted with the boot time derived from it and ``time.monotonic()``, which on Linux counts from boot
    just as printk's clock does.
    """

    def __init__(
        self,
        root: Root,
        bus: EventBus | None = None,
        *,
        poll_interval_s: float = 1.0,
        dedupe_window_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        kernel_events: KernelEvents | None = None,
    ) -> None:
        self._root = root
        # Other readers of the same kernel log stream (memory kills, storage errors).
        self.kernel_events = kernel_events
        self._markers = _VOLTAGE_MARKERS + (KERNEL_EVENT_MARKERS if kernel_events is not None else ())
        self._kernel_lines: list[tuple[str, float | None]] = []
        self._boot_time: float | None = None
        self._bus = bus
        self._poll_interval_s = poll_interval_s
        self._clock = clock
        self.episodes = UnderVoltageEpisodes(dedupe_window_s)
        self._reasons: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        # hwmon
        self.hwmon_mode: str | None = None  # "sysfs_notify" | "poll"
        self._alarm_path: Path | None = None
        self._alarm_fd: int | None = None
        self._epoll: select.epoll | None = None
        self._alarm_state: bool | None = None
        self.hwmon_wakeups = 0
        # kmsg
        self.kmsg_mode: str | None = None  # "follow" (character device) | "poll" (regular file)
        self._kmsg_fd: int | None = None
        self._kmsg_partial = b""
        self.kmsg_history_records = 0

    @property
    def sources(self) -> list[str]:
        """The sources being followed."""
        modes = ((SOURCE_HWMON, self.hwmon_mode), (SOURCE_KMSG, self.kmsg_mode))
        return [name for name, mode in modes if mode]

    # ---- lifecycle

    async def start(self) -> None:
        """Read the log history, then the alarm's current state, then follow both. Never raises for a
        missing or forbidden source: the reason goes to the sample's gaps."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._start_kmsg()
        self._start_hwmon()

    async def stop(self) -> None:
        """Stop following: cancel the poll tasks, remove the readers, close every fd."""
        loop, self._loop = self._loop, None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._epoll is not None:
            if loop is not None:
                loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None
        if self._kmsg_fd is not None:
            if loop is not None:
                loop.remove_reader(self._kmsg_fd)  # no-op when it was never added (regular file)
            os.close(self._kmsg_fd)
        if self._alarm_fd is not None:
            os.close(self._alarm_fd)
        self._alarm_fd = self._kmsg_fd = None
        self.hwmon_mode = self.kmsg_mode = None

    def _spawn(self, poll: Callable[[], None]) -> None:
        async def run() -> None:
            while True:
                await asyncio.sleep(self._poll_interval_s)
                poll()

        self._tasks.append(asyncio.get_running_loop().create_task(run()))

    def _edge(self, active: bool, source: str, at: float | None, publish: bool = True) -> None:
        accepted = self.episodes.edge(active, source, at)
        if accepted is None or not publish or self._bus is None:
            return
        data: dict[str, Any] = {"active": active, "episodes": accepted.episodes, "source": source}
        if not active:
            data["duration_s"] = accepted.duration_s
        self._bus.publish("under_voltage", data)

    # ---- hwmon in0_lcrit_alarm

    def _start_hwmon(self) -> None:
        path = find_rpi_volt_alarm(self._root)
        if path is None:
            self._reasons[SOURCE_HWMON] = (
                f"no hwmon device named {HWMON_NAME} (not a Pi, or a kernel without raspberrypi-hwmon)"
            )
            return
        what = "/" + str(path.relative_to(self._root.base))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._reasons[SOURCE_HWMON] = describe_os_error(exc, what)
            return
        try:
            text = os.pread(fd, 64, 0).decode("ascii", errors="replace")
        except OSError as exc:
            os.close(fd)
            self._reasons[SOURCE_HWMON] = describe_os_error(exc, what)
            return
        self._alarm_path = path
        epoll = select.epoll()
        try:
            # sysfs_notify wakes EPOLLPRI|EPOLLERR waiters; reading the file from offset 0 re-arms it.
            epoll.register(fd, select.EPOLLPRI | select.EPOLLERR)
        except OSError:
            # EPERM: a regular file (fixture tree, simulation) cannot be watched this way: poll it.
            epoll.close()
            os.close(fd)
            self.hwmon_mode = "poll"
            self._spawn(self._poll_hwmon)
        else:
            self._epoll, self._alarm_fd = epoll, fd
            self.hwmon_mode = "sysfs_notify"
            assert self._loop is not None
            self._loop.add_reader(epoll.fileno(), self._on_hwmon_wake)
        self._alarm_changed(parse_lcrit_alarm(text), initial=True)

    def _on_hwmon_wake(self) -> None:
        self.hwmon_wakeups += 1
        if self._alarm_fd is None or self._epoll is None:
            return
        try:
            # Reading from offset 0 is what re-arms sysfs_notify for this open file.
            text = os.pread(self._alarm_fd, 64, 0).decode("ascii", errors="replace")
        except OSError as exc:
            # Unread, the file would stay "notified" and the loop would call us forever: stop watching.
            self._reasons[SOURCE_HWMON] = describe_os_error(exc, str(self._alarm_path))
            self._stop_hwmon_notify()
            return
        self._epoll.poll(0)  # let epoll drop the readiness the read just cleared
        self._alarm_changed(parse_lcrit_alarm(text))

    def _stop_hwmon_notify(self) -> None:
        if self._epoll is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None
        if self._alarm_fd is not None:
            os.close(self._alarm_fd)
            self._alarm_fd = None
        self.hwmon_mode = None

    def _poll_hwmon(self) -> None:
        if self._alarm_path is None:
            return
        try:
            text = self._alarm_path.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            self._reasons[SOURCE_HWMON] = describe_os_error(exc, str(self._alarm_path))
            return
        self._alarm_changed(parse_lcrit_alarm(text))

    def _alarm_changed(self, state: bool | None, initial: bool = False) -> None:
        if state is None or state == self._alarm_state:
            return
        self._alarm_state = state
        if initial and not state:
            if self.episodes.active:
                # The log says an episode is running but the alarm is clear: its "normalised" line was
                # rate-limited away. It is over; when it ended is unknown.
                self._edge(False, SOURCE_HWMON, None)
            return
        self._edge(state, SOURCE_HWMON, self._clock())

    # ---- kernel log

    def _start_kmsg(self) -> None:
        path = self._root.path(KMSG)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            reason = describe_os_error(exc, "/" + KMSG)
            if exc.errno in (errno.EPERM, errno.EACCES):
                reason = "/dev/kmsg: permission denied (needs root or CAP_SYSLOG; dmesg_restrict is set)"
            self._reasons[SOURCE_KMSG] = reason
            if self.kernel_events is not None:
                self.kernel_events.unavailable_reason = reason
            return
        self._kmsg_fd = fd
        self._kmsg_partial = b""
        boot_time = self._boot_time = self._clock() - self._seconds_since_boot()
        if stat.S_ISCHR(os.fstat(fd).st_mode):
            self.kmsg_mode = "follow"
            history = self._read_kmsg_records()
        else:
            self.kmsg_mode = "poll"
            history = self._read_appended_lines()
        for record in history:
            at = None if record.seconds_since_boot is None else boot_time + record.seconds_since_boot
            self._edge(record.active, SOURCE_KMSG, at, publish=False)
        self.kmsg_history_records = len(history)
        self._hand_over_kernel_lines(live=False)
        if self.kernel_events is not None:
            self.kernel_events.following = True
            self.kernel_events.unavailable_reason = None
        if self.kmsg_mode == "follow":
            assert self._loop is not None
            self._loop.add_reader(fd, self._on_kmsg_readable)
        else:
            self._spawn(self._on_kmsg_readable)

    def _seconds_since_boot(self) -> float:
        """Kernel log timestamps count from boot. On the real machine the monotonic clock does too; below
        another root (a fixture tree, the simulated Pi) that root's own /proc/uptime is the truth."""
        if not self._root.is_real:
            try:
                fields = self._root.read_text("proc/uptime").split()
                return float(fields[0])
            except (OSError, ValueError, IndexError):
                pass
        return time.monotonic()

    def _read_kmsg_records(self) -> list[KernelVoltageRecord]:
        """Read /dev/kmsg records until EAGAIN (each read returns exactly one record)."""
        records: list[KernelVoltageRecord] = []
        assert self._kmsg_fd is not None
        while True:
            try:
                chunk = os.read(self._kmsg_fd, _KMSG_RECORD_MAX)
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue  # the ring buffer overwrote records before we read them; go on with the next
            except OSError as exc:
                self._fail_kmsg(describe_os_error(exc, "/" + KMSG))
                break
            if not chunk:
                break
            if not any(marker in chunk for marker in self._markers):
                continue
            line = chunk.decode("utf-8", errors="replace").partition("\n")[0]
            record = parse_kernel_log_line(line)
            if record is not None:
                records.append(record)
            elif self.kernel_events is not None:
                self._kernel_lines.append((line, self._kmsg_seconds(line)))
        return records

    def _read_appended_lines(self) -> list[KernelVoltageRecord]:
        """A regular file standing for the log: read what was appended since last time, whole lines only."""
        assert self._kmsg_fd is not None
        chunks = [self._kmsg_partial]
        while True:
            try:
                chunk = os.read(self._kmsg_fd, 65536)
            except OSError as exc:
                self._fail_kmsg(describe_os_error(exc, "/" + KMSG))
                break
            if not chunk:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
        complete, _, self._kmsg_partial = data.rpartition(b"\n")
        if not complete:
            return []
        text = complete.decode("utf-8", errors="replace")
        if self.kernel_events is not None:
            wanted = tuple(marker.decode() for marker in KERNEL_EVENT_MARKERS)
            for line in text.splitlines():
                if not line.startswith(" ") and any(marker in line for marker in wanted):
                    self._kernel_lines.append((line, self._kmsg_seconds(line)))
        return parse_kernel_log(text)

    def _on_kmsg_readable(self) -> None:
        if self._kmsg_fd is None:
            return
        records = self._read_kmsg_records() if self.kmsg_mode == "follow" else self._read_appended_lines()
        for record in records:
            # Followed live: observed now (to within the loop's latency), the same clock as the hwmon edges.
            self._edge(record.active, SOURCE_KMSG, self._clock())
        self._hand_over_kernel_lines(live=True)

    def read_pending_kernel_log(self) -> None:
        """Read what the kernel logged since the last wake-up, now (a stream's exit wants the lines the
        OOM killer printed a moment ago, which the loop may not have delivered yet)."""
        self._on_kmsg_readable()

    @staticmethod
    def _kmsg_seconds(line: str) -> float | None:
        prefix, semicolon, _ = line.partition(";")
        parsed = _kmsg_prefix(prefix) if semicolon else None
        if parsed is not None:
            return parsed[2]
        return _bracket_timestamp(line[: line.find("] ") + 1]) if line.startswith("[") else None

    def _hand_over_kernel_lines(self, *, live: bool) -> None:
        lines, self._kernel_lines = self._kernel_lines, []
        if self.kernel_events is None:
            return
        for line, seconds in lines:
            if seconds is not None and self._boot_time is not None:
                at: float | None = self._boot_time + seconds
            else:
                at = self._clock() if live else None
            self.kernel_events.feed(line, at, live=live)

    def _fail_kmsg(self, reason: str) -> None:
        self._reasons[SOURCE_KMSG] = reason
        if self._kmsg_fd is not None and self.kmsg_mode == "follow" and self._loop is not None:
            self._loop.remove_reader(self._kmsg_fd)
        self.kmsg_mode = None

    # ---- sample

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        """``{"power": {under_voltage_now, under_voltage_episodes, last_under_voltage_start,
        last_under_voltage_end, longest_under_voltage_s, sources}}``. Episodes count since boot when the
        kernel log was readable, else since the agent started. Times are Unix seconds."""
        sources = self.sources
        for source, reason in self._reasons.items():
            gaps.note(f"power.sources.{source}", reason)
        if not sources:
            reason = "; ".join(self._reasons.values()) or "power watch not started"
            for key in _EMPTY_FRAGMENT:
                if key != "sources":
                    gaps.note(f"power.{key}", reason)
            return {"power": {**_EMPTY_FRAGMENT, "sources": []}}
        episodes = self.episodes
        fragment: dict[str, Any] = {
            "under_voltage_now": episodes.active,
            "under_voltage_episodes": episodes.episodes,
            "last_under_voltage_start": episodes.last_start,
            "last_under_voltage_end": episodes.last_end,
            "longest_under_voltage_s": episodes.longest_s,
            "sources": sources,
        }
        since = "boot" if SOURCE_KMSG in sources else "the agent started"
        if episodes.episodes == 0:
            for key in ("last_under_voltage_start", "last_under_voltage_end", "longest_under_voltage_s"):
                gaps.note(f"power.{key}", f"no under-voltage since {since}")
            return {"power": fragment}
        if episodes.active:
            gaps.note("power.last_under_voltage_end", "under-voltage now")
        if episodes.last_start is None:
            gaps.note("power.last_under_voltage_start", "start time not logged")
        if not episodes.active and episodes.last_end is None:
            gaps.note("power.last_under_voltage_end", "end time not observed (kernel log rate-limited)")
        if episodes.longest_s is None:
            gaps.note("power.longest_under_voltage_s", "no episode with a known start and end")
        return {"power": fragment}
