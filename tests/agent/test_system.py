"""CPU, load and process collector.

The Pi captures hold no /proc/stat, /proc/loadavg or /proc/<pid>/stat sample, so fixture input here is built
from the kernel's documented formats (fs/proc/stat.c, fs/proc/loadavg.c, fs/proc/array.c, proc(5)) and the
real files of the machine running the tests are parsed too.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry import system
from pi_stream_agent.telemetry.system import (
    AGENT,
    NEEDS_TWO_SAMPLES,
    CpuTimes,
    ProcessWatch,
    SystemReader,
    cpu_percent,
    parse_loadavg,
    parse_pid_stat,
    parse_proc_stat,
)
from tests.agent.helpers import FixtureTree

CPU_KEYS = {"percent", "count", "load_1", "load_5", "load_15"}
PROCESS_KEYS = {"pid", "cpu_percent", "rss_bytes"}


def proc_stat(cpu: tuple[int, ...], per_cpu: list[tuple[int, ...]]) -> str:
    """/proc/stat as fs/proc/stat.c prints it: "cpu  " + 10 counters, then "cpuN " lines, then the rest."""
    lines = ["cpu  " + " ".join(map(str, cpu))]
    lines += [f"cpu{n} " + " ".join(map(str, values)) for n, values in enumerate(per_cpu)]
    lines += ["intr 211765 0 0 1 15 0", "ctxt 379863", "btime 1795255791", "processes 7018"]
    lines += ["procs_running 3", "procs_blocked 0", "softirq 150825 0 10186 6 39214 54106 0 240 22383"]
    return "\n".join(lines) + "\n"


def pid_stat(pid: int, comm: str, *, utime: int, stime: int, starttime: int, rss: int) -> str:
    """/proc/<pid>/stat per proc(5): 52 fields; we set utime(14) stime(15) starttime(22) rss(24)."""
    fields = ["0"] * 52
    fields[0], fields[1], fields[2] = str(pid), f"({comm})", "S"
    fields[13], fields[14], fields[21], fields[23] = str(utime), str(stime), str(starttime), str(rss)
    return " ".join(fields) + "\n"


# proc(5)'s example /proc/stat lines (user nice system idle iowait irq softirq steal guest guest_nice).
MAN_CPU = (10132153, 290696, 3084719, 46828483, 16683, 0, 25195, 0, 175628, 0)
MAN_CPU0 = (1393280, 32966, 572056, 13343292, 6130, 0, 17875, 0, 23933, 0)


# --------------------------------------------------------------------------------------------- parsers


def test_parse_proc_stat_documented_format() -> None:
    parsed = parse_proc_stat(proc_stat(MAN_CPU, [MAN_CPU0] * 4))
    assert parsed.cpu == CpuTimes(10132153, 290696, 3084719, 46828483, 16683, 0, 25195, 0)
    assert parsed.cpu_count == 4
    # guest is inside user already and must not be counted twice
    assert parsed.cpu.total == 10132153 + 290696 + 3084719 + 46828483 + 16683 + 25195


def test_parse_proc_stat_old_kernel_four_fields() -> None:
    parsed = parse_proc_stat("cpu  100 2 30 400\ncpu0 100 2 30 400\n")
    assert parsed.cpu == CpuTimes(100, 2, 30, 400, 0, 0, 0, 0)
    assert parsed.cpu_count == 1


def test_parse_proc_stat_real_machine() -> None:
    text = Path("/proc/stat").read_text()
    parsed = parse_proc_stat(text)
    assert parsed.cpu is not None
    assert parsed.cpu.total > 0
    online = sum(1 for line in text.splitlines() if line.startswith("cpu") and line[3].isdigit())
    assert parsed.cpu_count == online
    assert parsed.cpu_count == os.cpu_count()


@pytest.mark.parametrize("text", ["", "garbage", "cpu  a b c d e\n", "cpu  1 2\n", "\x00\x00cpu"])
def test_parse_proc_stat_garbage(text: str) -> None:
    parsed = parse_proc_stat(text)
    assert parsed.cpu is None
    assert parsed.cpu_count is None


def test_cpu_percent_from_delta() -> None:
    before = CpuTimes(1000, 0, 500, 8000, 500, 0, 0, 0)
    after = CpuTimes(1150, 0, 550, 8700, 600, 0, 0, 0)  # 1000 ticks passed, 200 busy (iowait counts as idle)
    assert cpu_percent(before, after) == 20.0
    assert cpu_percent(before, before) is None  # nothing elapsed
    assert cpu_percent(after, before) is None  # counters went back


def test_parse_loadavg() -> None:
    load = parse_loadavg("0.20 0.18 0.12 1/80 11206\n")  # proc(5)'s example
    assert (load.load_1, load.load_5, load.load_15, load.running, load.total) == (0.2, 0.18, 0.12, 1, 80)


def test_parse_loadavg_real_machine() -> None:
    load = parse_loadavg(Path("/proc/loadavg").read_text())
    assert load.load_1 is not None
    assert load.load_1 >= 0
    assert load.running is not None
    assert load.running >= 1  # at least this test is running


@pytest.mark.parametrize("text", ["", "x y z", "0.1 0.2", "\x00"])
def test_parse_loadavg_garbage(text: str) -> None:
    assert parse_loadavg(text).load_1 is None


def test_parse_pid_stat_comm_with_spaces_and_parens() -> None:
    text = pid_stat(4242, "rpicam (vid) x", utime=1200, stime=300, starttime=98765, rss=2048)
    stat = parse_pid_stat(text)
    assert stat is not None
    assert (stat.utime, stat.stime, stat.starttime, stat.rss_pages) == (1200, 300, 98765, 2048)
    assert stat.cpu_ticks == 1500


def test_parse_pid_stat_real_self() -> None:
    stat = parse_pid_stat(Path("/proc/self/stat").read_text())
    assert stat is not None
    # RSS field 24 of stat is the same counter as statm's second field.
    resident = int(Path("/proc/self/statm").read_text().split()[1])
    assert abs(stat.rss_pages - resident) < 256


@pytest.mark.parametrize("text", ["", "1234 (x) S 1 2", "no parens at all", "1 (x) S " + "z " * 60])
def test_parse_pid_stat_garbage(text: str) -> None:
    assert parse_pid_stat(text) is None


# ----------------------------------------------------------------------------------------- ProcessWatch


def test_agent_is_always_there_and_real(tree: FixtureTree) -> None:
    # The Root is an empty fixture tree, yet the agent's own numbers come from the real /proc.
    watch = ProcessWatch()
    gaps = Gaps()
    first = watch.sample(Root(tree.base), gaps, time.monotonic())
    assert list(first) == [AGENT]
    assert set(first[AGENT]) == PROCESS_KEYS
    assert first[AGENT]["pid"] == os.getpid()
    resident = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert abs(first[AGENT]["rss_bytes"] - resident) < 4 * 1024 * 1024
    assert first[AGENT]["cpu_percent"] is None
    assert gaps.reasons["processes.agent.cpu_percent"] == NEEDS_TWO_SAMPLES

    # Burn CPU for a while; the agent's CPU % must match what the process itself measured.
    start_cpu, start = time.process_time(), time.monotonic()
    while time.monotonic() - start < 0.3:
        pass
    now = time.monotonic()
    expected = 100.0 * (time.process_time() - start_cpu) / (now - start)
    second = watch.sample(Root(tree.base), Gaps(), now)
    assert second[AGENT]["cpu_percent"] == pytest.approx(expected, abs=10.0)
    assert second[AGENT]["cpu_percent"] > 30.0


def test_tracked_process_from_fixture_tree(tree: FixtureTree) -> None:
    watch = ProcessWatch(read_from_root=True, page_size=4096)
    watch.track("cam0", 1234)
    stat = pid_stat(1234, "rpicam-vid", utime=1000, stime=200, starttime=5000, rss=3000)
    tree.write("proc/1234/stat", stat)
    root = Root(tree.base)
    gaps = Gaps()
    first = watch.sample(root, gaps, now=50.0)
    assert list(first) == [AGENT, "cam0"]
    assert first["cam0"] == {"pid": 1234, "cpu_percent": None, "rss_bytes": 3000 * 4096}
    assert gaps.reasons["processes.cam0.cpu_percent"] == NEEDS_TWO_SAMPLES

    # 1.5 s of CPU (in clock ticks) over 2.0 s of real time = 75 % of one core.
    ticks = int(1.5 * system.CLOCK_TICKS)
    tree.write(
        "proc/1234/stat",
        pid_stat(1234, "rpicam-vid", utime=1000 + ticks - 10, stime=210, starttime=5000, rss=3100),
    )
    second = watch.sample(root, Gaps(), now=52.0)
    assert second["cam0"] == {"pid": 1234, "cpu_percent": 75.0, "rss_bytes": 3100 * 4096}


def test_vanished_process_is_not_an_error(tree: FixtureTree) -> None:
    watch = ProcessWatch()
    watch.track("cam0", 999999)
    gaps = Gaps()
    sample = watch.sample(Root(tree.base), gaps, now=1.0)
    assert sample["cam0"] == {"pid": 999999, "cpu_percent": None, "rss_bytes": None}
    assert gaps.reasons["processes.cam0.cpu_percent"] == "process 999999 is not running"
    assert gaps.reasons["processes.cam0.rss_bytes"] == "process 999999 is not running"


def test_process_exits_between_samples(tree: FixtureTree) -> None:
    watch = ProcessWatch(read_from_root=True)
    watch.track("cam0", 77)
    tree.write("proc/77/stat", pid_stat(77, "ffmpeg", utime=10, stime=0, starttime=1, rss=10))
    watch.sample(Root(tree.base), Gaps(), now=1.0)
    tree.remove("proc/77/stat")
    gaps = Gaps()
    assert watch.sample(Root(tree.base), gaps, now=2.0)["cam0"]["cpu_percent"] is None
    assert "not running" in gaps.reasons["processes.cam0.cpu_percent"]


def test_pid_reused_by_another_process(tree: FixtureTree) -> None:
    watch = ProcessWatch(read_from_root=True)
    watch.track("cam0", 77)
    tree.write("proc/77/stat", pid_stat(77, "ffmpeg", utime=500, stime=0, starttime=1000, rss=10))
    watch.sample(Root(tree.base), Gaps(), now=1.0)
    # Same pid, different start time: a new process; its ticks must not be compared with the old one's.
    tree.write("proc/77/stat", pid_stat(77, "bash", utime=3, stime=0, starttime=9000, rss=10))
    gaps = Gaps()
    assert watch.sample(Root(tree.base), gaps, now=2.0)["cam0"]["cpu_percent"] is None
    assert "new process" in gaps.reasons["processes.cam0.cpu_percent"]


def test_track_new_pid_restarts_baseline(tree: FixtureTree) -> None:
    watch = ProcessWatch(read_from_root=True)
    watch.track("cam0", 10)
    tree.write("proc/10/stat", pid_stat(10, "a", utime=100, stime=0, starttime=1, rss=1))
    tree.write("proc/11/stat", pid_stat(11, "a", utime=5, stime=0, starttime=2, rss=1))
    watch.sample(Root(tree.base), Gaps(), now=1.0)
    watch.track("cam0", 11)  # publisher restarted
    gaps = Gaps()
    sample = watch.sample(Root(tree.base), gaps, now=2.0)
    assert sample["cam0"]["pid"] == 11
    assert sample["cam0"]["cpu_percent"] is None
    assert gaps.reasons["processes.cam0.cpu_percent"] == NEEDS_TWO_SAMPLES


def test_untrack_and_reserved_name(tree: FixtureTree) -> None:
    watch = ProcessWatch()
    watch.track("cam0", 10)
    assert watch.tracked() == {AGENT: os.getpid(), "cam0": 10}
    watch.untrack("cam0")
    watch.untrack("never-tracked")
    assert list(watch.sample(Root(tree.base), Gaps(), now=1.0)) == [AGENT]
    with pytest.raises(ValueError, match="reserved"):
        watch.track(AGENT, 1)
    with pytest.raises(ValueError, match="always"):
        watch.untrack(AGENT)


def test_garbage_and_unreadable_pid_stat(tree: FixtureTree) -> None:
    watch = ProcessWatch(read_from_root=True)
    watch.track("bad", 5)
    watch.track("dir", 6)
    tree.write("proc/5/stat", "\x00\x01 garbage")
    (tree.base / "proc/6/stat").mkdir(parents=True)
    gaps = Gaps()
    sample = watch.sample(Root(tree.base), gaps, now=1.0)
    assert sample["bad"] == {"pid": 5, "cpu_percent": None, "rss_bytes": None}
    assert "unexpected format" in gaps.reasons["processes.bad.rss_bytes"]
    assert sample["dir"] == {"pid": 6, "cpu_percent": None, "rss_bytes": None}
    assert "/proc/6/stat" in gaps.reasons["processes.dir.rss_bytes"]


# ----------------------------------------------------------------------------------------- SystemReader


def test_system_reader_fixture_tree(tree: FixtureTree) -> None:
    before = (1000, 0, 500, 8000, 500, 0, 0, 0, 0, 0)
    after = (1150, 0, 550, 8700, 600, 0, 0, 0, 0, 0)
    tree.write("proc/stat", proc_stat(before, [before] * 4))
    tree.write("proc/loadavg", "0.20 0.18 0.12 1/80 11206\n")
    reader = SystemReader(Root(tree.base), ProcessWatch())
    gaps = Gaps()
    first = reader.sample(gaps, now=10.0)
    assert set(first) == {"cpu", "processes"}
    assert first["cpu"] == {"percent": None, "count": 4, "load_1": 0.2, "load_5": 0.18, "load_15": 0.12}
    assert gaps.reasons["cpu.percent"] == NEEDS_TWO_SAMPLES
    assert set(first["processes"][AGENT]) == PROCESS_KEYS

    tree.write("proc/stat", proc_stat(after, [after] * 4))
    tree.write("proc/loadavg", "1.50 0.40 0.20 3/81 11300\n")
    second = reader.sample(Gaps(), now=12.0)
    assert second["cpu"] == {"percent": 20.0, "count": 4, "load_1": 1.5, "load_5": 0.4, "load_15": 0.2}


def test_system_reader_missing_files(tree: FixtureTree) -> None:
    gaps = Gaps()
    sample = SystemReader(Root(tree.base), ProcessWatch()).sample(gaps, now=1.0)
    assert sample["cpu"] == dict.fromkeys(CPU_KEYS)
    for key in CPU_KEYS:
        assert "not found" in gaps.reasons[f"cpu.{key}"]
    assert sample["processes"][AGENT]["rss_bytes"] > 0  # real, whatever the Root


def test_system_reader_garbage(tree: FixtureTree) -> None:
    tree.write("proc/stat", "nonsense\n\x00\n")
    tree.write("proc/loadavg", "what\n")
    reader = SystemReader(Root(tree.base), ProcessWatch())
    for now in (1.0, 2.0):  # the second sample must not compute from a broken first one
        gaps = Gaps()
        sample = reader.sample(gaps, now)
        assert sample["cpu"] == dict.fromkeys(CPU_KEYS)
        assert "cpu" in gaps.reasons["cpu.percent"]
        assert "cpuN" in gaps.reasons["cpu.count"]
        assert "unexpected format" in gaps.reasons["cpu.load_15"]


def test_system_reader_permission_denied(tree: FixtureTree, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root here, so chmod cannot deny a read; raise what the kernel would return instead.
    real_read = Root.read_text

    def deny(self: Root, relative: str) -> str:
        if self.base == tree.base:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_read(self, relative)

    monkeypatch.setattr(Root, "read_text", deny)
    gaps = Gaps()
    sample = SystemReader(Root(tree.base), ProcessWatch()).sample(gaps, now=1.0)
    assert sample["cpu"] == dict.fromkeys(CPU_KEYS)
    assert "permission denied" in gaps.reasons["cpu.percent"]
    assert "permission denied" in gaps.reasons["cpu.load_1"]
    assert sample["processes"][AGENT]["rss_bytes"] > 0


def test_system_reader_counters_went_back(tree: FixtureTree) -> None:
    high = (5000, 0, 500, 8000, 500, 0, 0, 0, 0, 0)
    low = (10, 0, 5, 80, 5, 0, 0, 0, 0, 0)
    tree.write("proc/stat", proc_stat(high, [high]))
    tree.write("proc/loadavg", "0.00 0.00 0.00 1/1 1\n")
    reader = SystemReader(Root(tree.base), ProcessWatch())
    reader.sample(Gaps(), now=1.0)
    tree.write("proc/stat", proc_stat(low, [low]))
    gaps = Gaps()
    assert reader.sample(gaps, now=2.0)["cpu"]["percent"] is None
    assert "went back" in gaps.reasons["cpu.percent"]


def test_system_reader_real_machine() -> None:
    reader = SystemReader(Root(Path("/")), ProcessWatch())
    reader.sample(Gaps(), time.monotonic())
    deadline = time.monotonic() + 0.2
    while time.monotonic() < deadline:
        pass
    sample = reader.sample(Gaps(), time.monotonic())
    cpu = sample["cpu"]
    assert cpu["count"] == os.cpu_count()
    assert 0.0 < cpu["percent"] <= 100.0  # this test kept one CPU busy
    assert cpu["load_1"] >= 0.0


def test_publishers_are_read_from_the_real_proc_even_below_a_fixture_root(tree: FixtureTree) -> None:
    # The streams code tracks real child processes; the telemetry root may be the simulated Pi's tree.
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        child.stdout.readline()  # past exec: a process caught mid-exec can show no resident pages yet
        watch = ProcessWatch()
        watch.track("cam0/ffmpeg", child.pid)
        sample = watch.sample(Root(tree.base), Gaps(), now=1.0)["cam0/ffmpeg"]
        assert sample["pid"] == child.pid
        assert sample["rss_bytes"] is not None and sample["rss_bytes"] > 0  # below the tree it would be None
    finally:
        child.kill()
        child.wait()
