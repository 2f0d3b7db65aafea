"""CPU use, load average and the CPU/memory cost of named processes (the agent and its publishers).

Everything is read from procfs below a :class:`~pi_stream_agent.rootfs.Root`, so fixture trees work, with one
exception: the agent's own process is always read from the real ``/proc`` (its numbers are real even when
the Root is a fixture tree). No psutil: its ``Process`` objects read several files per call, while one
``/proc/<pid>/stat`` read gives everything we report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error

NEEDS_TWO_SAMPLES = "needs two samples"

AGENT = "agent"

# Never change while the agent runs: ask once. Both describe the real machine the agent runs on.
CLOCK_TICKS: int = os.sysconf("SC_CLK_TCK")
PAGE_SIZE: int = os.sysconf("SC_PAGE_SIZE")

_REAL_ROOT = Root(Path("/"))
_RECENT_PIDS = 64


# --------------------------------------------------------------------------------------------- /proc/stat


@dataclass(frozen=True)
class CpuTimes:
    """The ``cpu`` line of /proc/stat, in clock ticks since boot (summed over all CPUs)."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @property
    def total(self) -> int:
        # guest/guest_nice are already counted inside user/nice, so they are left out.
        work = self.user + self.nice + self.system + self.irq + self.softirq + self.steal
        return work + self.idle + self.iowait

    @property
    def busy(self) -> int:
        # iowait is time the CPU had nothing to run, like idle.
        return self.total - self.idle - self.iowait


@dataclass(frozen=True)
class ProcStat:
    """What we use of /proc/stat: the aggregate line and how many CPUs are online (``cpuN`` lines)."""

    cpu: CpuTimes | None = None
    cpu_count: int | None = None


def _cpu_times(values: list[str]) -> CpuTimes | None:
    try:
        numbers = [int(value) for value in values[:8]]
    except ValueError:
        return None
    if len(numbers) < 4:
        return None
    # Kernels before 2.6.11 lacked iowait/irq/softirq/steal: they were simply not accounted, so 0 is right.
    numbers.extend([0] * (8 - len(numbers)))
    return CpuTimes(*numbers)


def parse_proc_stat(text: str) -> ProcStat:
    """Parse /proc/stat (``cpu  user nice system idle iowait irq softirq steal guest guest_nice``)."""
    cpu: CpuTimes | None = None
    count = 0
    for line in text.splitlines():
        if not line.startswith("cpu"):
            if cpu is not None or count:
                break  # the cpu lines come first; the long intr line after them is not needed
            continue
        name, _, rest = line.partition(" ")
        if name == "cpu":
            cpu = _cpu_times(rest.split())
        elif name[3:].isdigit():
            count += 1
    return ProcStat(cpu=cpu, cpu_count=count or None)


def cpu_percent(previous: CpuTimes, current: CpuTimes) -> float | None:
    """Busy share of all CPUs between two samples (0 to 100); None if no time passed or counters went back."""
    total = current.total - previous.total
    busy = current.busy - previous.busy
    if total <= 0 or busy < 0:
        return None
    return round(100.0 * busy / total, 1)


# ------------------------------------------------------------------------------------------ /proc/loadavg


@dataclass(frozen=True)
class LoadAvg:
    """/proc/loadavg: ``0.20 0.18 0.12 1/80 11206``."""

    load_1: float | None = None
    load_5: float | None = None
    load_15: float | None = None
    running: int | None = None
    total: int | None = None


def parse_loadavg(text: str) -> LoadAvg:
    parts = text.split()
    if len(parts) < 3:
        return LoadAvg()
    try:
        loads = [float(part) for part in parts[:3]]
    except ValueError:
        return LoadAvg()
    running: int | None = None
    total: int | None = None
    if len(parts) >= 4:
        left, slash, right = parts[3].partition("/")
        if slash and left.isdigit() and right.isdigit():
            running, total = int(left), int(right)
    return LoadAvg(loads[0], loads[1], loads[2], running, total)


# ------------------------------------------------------------------------------------- /proc/<pid>/stat


@dataclass(frozen=True)
class PidStat:
    """What we use of /proc/<pid>/stat (see proc(5)): CPU ticks, start time and resident pages."""

    utime: int
    stime: int
    starttime: int
    rss_pages: int

    @property
    def cpu_ticks(self) -> int:
        return self.utime + self.stime


def parse_pid_stat(text: str) -> PidStat | None:
    """Parse ``pid (comm) state ppid …``; comm may hold spaces and ')' so split after the LAST ')'."""
    close = text.rfind(")")
    if close < 0:
        return None
    fields = text[close + 1 :].split()
    # fields[0] is field 3 (state) of proc(5): utime=14, stime=15, starttime=22, rss=24.
    if len(fields) < 22:
        return None
    try:
        return PidStat(int(fields[11]), int(fields[12]), int(fields[19]), int(fields[21]))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------- ProcessWatch


@dataclass
class _Baseline:
    pid: int
    starttime: int
    cpu_ticks: int
    now: float


@dataclass
class ProcessWatch:
    """Named processes to report: always ``"agent"`` (this process), plus publishers the streams code tracks.

    The agent and its publishers are processes of this machine, read from the real ``/proc`` even when the
    telemetry root is a fixture tree or the simulated Pi. ``read_from_root=True`` reads tracked pids below
    the root instead (tests of the parser against a fixture /proc).

    RSS comes from field 24 of /proc/<pid>/stat (the same counter as statm's ``resident``) so each process
    costs one file read per sample. ``page_size`` only matters for pids read from a fixture tree; the agent
    itself always uses the real page size.
    """

    page_size: int = PAGE_SIZE
    read_from_root: bool = False
    _pids: dict[str, int] = field(default_factory=dict)
    _baselines: dict[str, _Baseline] = field(default_factory=dict)
    # pid → name of the last publishers tracked, kept after they exit: the kernel's line about a killed
    # process may arrive after its supervisor has already let go of it.
    _recent: dict[int, str] = field(default_factory=dict)

    def track(self, name: str, pid: int) -> None:
        if name == AGENT:
            raise ValueError(f"{AGENT!r} is reserved for the agent's own process")
        if self._pids.get(name) != pid:
            self._baselines.pop(name, None)  # a new pid starts a new CPU baseline
        self._pids[name] = pid
        self._recent.pop(pid, None)
        self._recent[pid] = name
        while len(self._recent) > _RECENT_PIDS:
            del self._recent[next(iter(self._recent))]

    def name_of(self, pid: int) -> str | None:
        """The name a pid is (or was lately) tracked under; None for any other process."""
        return self._recent.get(pid)

    def untrack(self, name: str) -> None:
        if name == AGENT:
            raise ValueError(f"{AGENT!r} is always reported")
        self._pids.pop(name, None)
        self._baselines.pop(name, None)

    def tracked(self) -> dict[str, int]:
        """Name → pid, the agent first."""
        return {AGENT: os.getpid(), **self._pids}

    def sample(self, root: Root, gaps: Gaps, now: float) -> dict[str, dict[str, Any]]:
        # os.getpid() each time: cheap, and right even if the agent was forked after construction.
        agent = self._sample_one(AGENT, os.getpid(), _REAL_ROOT, page_size=PAGE_SIZE, gaps=gaps, now=now)
        result: dict[str, dict[str, Any]] = {AGENT: agent}
        where, page_size = (root, self.page_size) if self.read_from_root else (_REAL_ROOT, PAGE_SIZE)
        for name, pid in list(self._pids.items()):
            result[name] = self._sample_one(name, pid, where, page_size=page_size, gaps=gaps, now=now)
        return result

    def _sample_one(
        self, name: str, pid: int, root: Root, *, page_size: int, gaps: Gaps, now: float
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {"pid": pid, "cpu_percent": None, "rss_bytes": None}
        key = f"processes.{name}"
        try:
            text = root.read_text(f"proc/{pid}/stat")
        except OSError as exc:
            self._baselines.pop(name, None)
            # A publisher that exited is normal (the supervisor restarts it); say so plainly.
            reason = (
                f"process {pid} is not running"
                if isinstance(exc, FileNotFoundError | ProcessLookupError)
                else describe_os_error(exc, f"/proc/{pid}/stat")
            )
            gaps.note(f"{key}.cpu_percent", reason)
            gaps.note(f"{key}.rss_bytes", reason)
            return entry
        stat = parse_pid_stat(text)
        if stat is None:
            self._baselines.pop(name, None)
            gaps.note(f"{key}.cpu_percent", f"/proc/{pid}/stat: unexpected format")
            gaps.note(f"{key}.rss_bytes", f"/proc/{pid}/stat: unexpected format")
            return entry
        entry["rss_bytes"] = stat.rss_pages * page_size

        previous = self._baselines.get(name)
        self._baselines[name] = _Baseline(pid, stat.starttime, stat.cpu_ticks, now)
        if previous is None:
            gaps.note(f"{key}.cpu_percent", NEEDS_TWO_SAMPLES)
        elif previous.pid != pid or previous.starttime != stat.starttime:
            gaps.note(f"{key}.cpu_percent", f"pid {pid} is a new process since the last sample")
        elif now <= previous.now or stat.cpu_ticks < previous.cpu_ticks:
            gaps.note(f"{key}.cpu_percent", "no time elapsed between samples")
        else:
            seconds = (stat.cpu_ticks - previous.cpu_ticks) / CLOCK_TICKS
            # Percent of one core, like top: a busy multi-threaded process can exceed 100.
            entry["cpu_percent"] = round(100.0 * seconds / (now - previous.now), 1)
        return entry


# ---------------------------------------------------------------------------------------- SystemReader


class SystemReader:
    """``{"cpu": {...}, "processes": {...}}`` from /proc/stat, /proc/loadavg and the watched processes."""

    def __init__(self, root: Root, processes: ProcessWatch) -> None:
        self._root = root
        self._processes = processes
        self._previous_cpu: CpuTimes | None = None

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        return {"cpu": self._sample_cpu(gaps), "processes": self._processes.sample(self._root, gaps, now)}

    def _sample_cpu(self, gaps: Gaps) -> dict[str, Any]:
        cpu: dict[str, Any] = {
            "percent": None,
            "count": None,
            "load_1": None,
            "load_5": None,
            "load_15": None,
        }
        try:
            stat = parse_proc_stat(self._root.read_text("proc/stat"))
        except OSError as exc:
            for key in ("percent", "count"):
                gaps.note_os_error(f"cpu.{key}", exc, "/proc/stat")
        else:
            self._fill_stat(stat, cpu, gaps)

        try:
            load = parse_loadavg(self._root.read_text("proc/loadavg"))
        except OSError as exc:
            for key in ("load_1", "load_5", "load_15"):
                gaps.note_os_error(f"cpu.{key}", exc, "/proc/loadavg")
        else:
            cpu["load_1"], cpu["load_5"], cpu["load_15"] = load.load_1, load.load_5, load.load_15
            if load.load_1 is None:
                for key in ("load_1", "load_5", "load_15"):
                    gaps.note(f"cpu.{key}", "/proc/loadavg: unexpected format")
        return cpu

    def _fill_stat(self, stat: ProcStat, cpu: dict[str, Any], gaps: Gaps) -> None:
        cpu["count"] = stat.cpu_count
        if stat.cpu_count is None:
            gaps.note("cpu.count", "/proc/stat: no cpuN lines")
        previous, self._previous_cpu = self._previous_cpu, stat.cpu
        if stat.cpu is None:
            gaps.note("cpu.percent", "/proc/stat: no readable 'cpu' line")
        elif previous is None:
            gaps.note("cpu.percent", NEEDS_TWO_SAMPLES)
        else:
            cpu["percent"] = cpu_percent(previous, stat.cpu)
            if cpu["percent"] is None:
                gaps.note("cpu.percent", "no CPU time elapsed between samples (or counters went back)")
