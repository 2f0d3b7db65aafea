"""Under-voltage episodes: kernel log parsing, episode counting with two sources, and the watch itself on
fixture trees, on this machine's real /dev/kmsg and on a real sysfs file."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.power import (
    KernelVoltageRecord,
    PowerWatch,
    UnderVoltageEpisodes,
    find_rpi_volt_alarm,
    parse_kernel_log,
    parse_kernel_log_line,
    parse_lcrit_alarm,
)
from tests.agent.helpers import REPO_ROOT, FixtureTree, fixture_text

POWER_KEYS = [
    "under_voltage_now",
    "under_voltage_episodes",
    "last_under_voltage_start",
    "last_under_voltage_end",
    "longest_under_voltage_s",
    "sources",
]
ALARM = "sys/class/hwmon/hwmon0/in0_lcrit_alarm"
POLL = 0.02

# The captured kernel message (mschlenstedt/Loxberry#952), used to build the other shapes below.
CAPTURED_LINE = fixture_text("sysfs/kernel_log_undervoltage_lines.txt").splitlines()[0]
# No "Voltage normalised" line was captured; this one is built from the driver's format string
# "Voltage normalised (0x%08x)" with the word after the sag's sticky bits were cleared.
NORMALISED_LINE = "Voltage normalised (0x00000000)"


def kmsg_record(priority: int, sequence: int, microseconds: int, message: str) -> str:
    """A /dev/kmsg record as the kernel formats it (Documentation/ABI/testing/dev-kmsg):
    ``<priority>,<sequence>,<timestamp µs>,<flags>;<message>``."""
    return f"{priority},{sequence},{microseconds},-;{message}\n"


# ---- parsers


def test_captured_lines() -> None:
    detected, normalised_format = fixture_text("sysfs/kernel_log_undervoltage_lines.txt").splitlines()
    assert parse_kernel_log_line(detected) == KernelVoltageRecord(True, 0x50005, None)
    # The second fixture line is the format string itself: recognised, but it has no number.
    assert parse_kernel_log_line(normalised_format) == KernelVoltageRecord(False, None, None)


def test_kmsg_records() -> None:
    record = parse_kernel_log_line(kmsg_record(2, 1234, 5678901, CAPTURED_LINE))
    assert record == KernelVoltageRecord(True, 0x50005, 5.678901, 1234)
    record = parse_kernel_log_line(kmsg_record(6, 1240, 9678901, NORMALISED_LINE))
    assert record == KernelVoltageRecord(False, 0, 9.678901, 1240)


def test_kmsg_records_written_from_user_space_are_ignored() -> None:
    # Facility 1 (user): priority 12 = user.warning, what `echo … > /dev/kmsg` produces.
    assert parse_kernel_log_line(kmsg_record(12, 1300, 7000000, CAPTURED_LINE)) is None


def test_dmesg_and_syslog_lines() -> None:
    assert parse_kernel_log_line(f"[   12.345678] {CAPTURED_LINE}") == KernelVoltageRecord(
        True, 0x50005, 12.345678
    )
    syslog = f"Jan 18 10:00:00 raspberrypi kernel: [  412.500000] {NORMALISED_LINE}"
    assert parse_kernel_log_line(syslog) == KernelVoltageRecord(False, 0, 412.5)
    # dmesg -T prints dates: no usable timestamp, still a record.
    assert parse_kernel_log_line(f"[Sat Jan 18 10:00:00 2019] {CAPTURED_LINE}") == KernelVoltageRecord(
        True, 0x50005, None
    )


def test_real_kernel_log_lines_of_other_drivers_are_not_records() -> None:
    text = fixture_text("net/wifi_instability_log_lines_brcmfmac.txt")
    assert text.strip()
    assert parse_kernel_log(text) == []


def test_parse_kernel_log_keeps_order_and_skips_continuations() -> None:
    text = (
        kmsg_record(6, 1, 1000000, "usb 1-1: new high-speed USB device")
        + " SUBSYSTEM=usb\n DEVICE=c189:1\n"
        + kmsg_record(2, 2, 2000000, CAPTURED_LINE)
        + f" NOTE={CAPTURED_LINE}\n"
        + kmsg_record(6, 3, 4000000, NORMALISED_LINE)
    )
    assert [(r.active, r.sequence) for r in parse_kernel_log(text)] == [(True, 2), (False, 3)]


@pytest.mark.parametrize("text", ["Under-voltage", "voltage normalised (0x0)", "", "\x00"])
def test_near_misses(text: str) -> None:
    assert parse_kernel_log_line(text) is None


def test_lcrit_alarm_values() -> None:
    fixture = dict(
        line.split(" = ")
        for line in fixture_text("sysfs/hwmon_rpi_volt_and_thermal_fixture_values.txt").splitlines()
    )
    assert parse_lcrit_alarm(fixture[ALARM] + "\n") is False
    assert parse_lcrit_alarm("1\n") is True
    assert parse_lcrit_alarm("2\n") is None
    assert parse_lcrit_alarm("") is None


# ---- episodes


def test_one_source_start_and_end() -> None:
    episodes = UnderVoltageEpisodes()
    start = episodes.edge(True, "hwmon", 100.0)
    assert start is not None and start.episodes == 1 and episodes.active
    end = episodes.edge(False, "hwmon", 103.5)
    assert end is not None and end.duration_s == 3.5
    assert (episodes.episodes, episodes.last_start, episodes.last_end, episodes.longest_s) == (
        1,
        100.0,
        103.5,
        3.5,
    )
    episodes.edge(True, "hwmon", 200.0)
    episodes.edge(False, "hwmon", 202.0)
    assert (episodes.episodes, episodes.last_duration_s, episodes.longest_s) == (2, 2.0, 3.5)


def test_both_sources_report_one_sag_once() -> None:
    episodes = UnderVoltageEpisodes()
    assert episodes.edge(True, "kmsg", 100.0) is not None
    assert episodes.edge(True, "hwmon", 100.01) is None
    assert episodes.edge(False, "kmsg", 104.0) is not None
    assert episodes.edge(False, "hwmon", 104.01) is None
    assert episodes.episodes == 1 and episodes.last_duration_s == 4.0


def test_late_report_from_the_other_source_is_a_duplicate() -> None:
    episodes = UnderVoltageEpisodes(dedupe_window_s=1.0)
    episodes.edge(True, "hwmon", 100.0)
    episodes.edge(False, "hwmon", 102.0)
    assert episodes.edge(True, "kmsg", 102.5) is None
    assert episodes.edge(False, "kmsg", 102.6) is None
    assert episodes.episodes == 1
    # Outside the window it is a new sag.
    assert episodes.edge(True, "kmsg", 110.0) is not None
    assert episodes.episodes == 2


def test_same_source_starting_twice_means_a_dropped_end() -> None:
    # raspberrypi-hwmon rate-limits each message to 3 per 5 minutes: "normalised" can go missing.
    episodes = UnderVoltageEpisodes()
    episodes.edge(True, "kmsg", 100.0)
    edge = episodes.edge(True, "kmsg", 160.0)
    assert edge is not None and edge.active and edge.episodes == 2
    assert episodes.longest_s is None  # the first one's end is unknown
    episodes.edge(False, "kmsg", 161.0)
    assert episodes.longest_s == 1.0


def test_unknown_times_and_stray_ends() -> None:
    episodes = UnderVoltageEpisodes()
    assert episodes.edge(False, "kmsg", 5.0) is None
    episodes.edge(True, "kmsg", None)
    end = episodes.edge(False, "kmsg", 50.0)
    assert end is not None and end.duration_s is None
    assert episodes.episodes == 1 and episodes.last_start is None and episodes.longest_s is None


# ---- the watch on fixture trees


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def wait_for(predicate: Callable[[], bool], limit_s: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(POLL / 2)


def _sysfs_fixture(tree: FixtureTree) -> None:
    for line in fixture_text("sysfs/hwmon_rpi_volt_and_thermal_fixture_values.txt").splitlines():
        path, _, value = line.partition(" = ")
        tree.write(path, value + "\n")


MakeWatch = Callable[..., tuple[PowerWatch, list[Event]]]


@pytest.fixture
async def make_watch(tree: FixtureTree) -> AsyncIterator[MakeWatch]:
    """Builds watches on ``tree`` with an event list, and stops them even when a test fails midway."""
    watches: list[PowerWatch] = []

    def make(clock: Clock | None = None) -> tuple[PowerWatch, list[Event]]:
        bus = EventBus()
        events: list[Event] = []
        bus.subscribe(events.append)
        watch = PowerWatch(Root(tree.base), bus, poll_interval_s=POLL, clock=clock or Clock())
        watches.append(watch)
        return watch, events

    yield make
    for watch in watches:
        await watch.stop()


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def test_hwmon_alarm_one_then_zero_is_one_episode(tree: FixtureTree, make_watch: MakeWatch) -> None:
    _sysfs_fixture(tree)
    clock = Clock()
    fds, tasks = _open_fds(), asyncio.all_tasks()
    watch, events = make_watch(clock)
    await watch.start()
    assert watch.sources == ["hwmon"]
    assert watch.hwmon_mode == "poll"  # a regular file cannot be registered with epoll (EPERM)
    assert events == []

    clock.now = 1_700_000_100.0
    tree.write(ALARM, "1\n")
    await wait_for(lambda: len(events) == 1)
    assert events[0].type == "under_voltage"
    assert events[0].data == {"active": True, "episodes": 1, "source": "hwmon"}

    clock.now = 1_700_000_103.5
    tree.write(ALARM, "0\n")
    await wait_for(lambda: len(events) == 2)
    assert events[1].data == {"active": False, "episodes": 1, "source": "hwmon", "duration_s": 3.5}

    gaps = Gaps()
    fragment = watch.sample(gaps, 0.0)
    assert list(fragment) == ["power"] and list(fragment["power"]) == POWER_KEYS
    assert fragment["power"] == {
        "under_voltage_now": False,
        "under_voltage_episodes": 1,
        "last_under_voltage_start": 1_700_000_100.0,
        "last_under_voltage_end": 1_700_000_103.5,
        "longest_under_voltage_s": 3.5,
        "sources": ["hwmon"],
    }
    assert "kmsg" in gaps.reasons["power.sources.kmsg"]
    json.dumps(fragment)

    await watch.stop()
    assert _open_fds() == fds
    assert asyncio.all_tasks() == tasks
    assert watch.sources == []


async def test_garbage_in_the_alarm_file_is_ignored(tree: FixtureTree, make_watch: MakeWatch) -> None:
    _sysfs_fixture(tree)
    watch, events = make_watch()
    await watch.start()
    tree.write(ALARM, "")
    tree.write(ALARM, "yes\n")
    await asyncio.sleep(POLL * 5)
    assert events == [] and watch.episodes.episodes == 0
    await watch.stop()


async def test_kmsg_history_and_appended_lines(tree: FixtureTree, make_watch: MakeWatch) -> None:
    log = tree.write(
        "dev/kmsg",
        kmsg_record(6, 100, 1_000_000, "brcmfmac: brcmf_c_preinit_dcmds: Firmware: BCM4345/6")
        + kmsg_record(2, 101, 5_678_901, CAPTURED_LINE)
        + kmsg_record(6, 102, 9_678_901, NORMALISED_LINE),
    )
    clock = Clock()
    watch, events = make_watch(clock)
    await watch.start()
    assert watch.sources == ["kmsg"] and watch.kmsg_mode == "poll"
    assert watch.kmsg_history_records == 2
    # One past episode since boot, 4 s long, published as nothing: it is history.
    assert watch.episodes.episodes == 1 and not watch.episodes.active
    assert watch.episodes.longest_s == pytest.approx(4.0)
    assert events == []

    with log.open("a") as handle:
        handle.write(kmsg_record(2, 103, 60_000_000, CAPTURED_LINE))
    await wait_for(lambda: len(events) == 1)
    assert events[0].data == {"active": True, "episodes": 2, "source": "kmsg"}

    clock.now += 2.0
    with log.open("a") as handle:
        handle.write(kmsg_record(6, 104, 62_000_000, NORMALISED_LINE)[:20])  # half a line…
        handle.flush()
        await asyncio.sleep(POLL * 4)
        assert len(events) == 1  # …is not a record yet
        handle.write(kmsg_record(6, 104, 62_000_000, NORMALISED_LINE)[20:])
    await wait_for(lambda: len(events) == 2)
    assert events[1].data == {"active": False, "episodes": 2, "source": "kmsg", "duration_s": 2.0}

    gaps = Gaps()
    power = watch.sample(gaps, 0.0)["power"]
    assert power["under_voltage_episodes"] == 2 and power["sources"] == ["kmsg"]
    assert power["longest_under_voltage_s"] == pytest.approx(4.0)
    assert "rpi_volt" in gaps.reasons["power.sources.hwmon"]
    await watch.stop()


async def test_both_sources_for_one_sag_count_once(tree: FixtureTree, make_watch: MakeWatch) -> None:
    _sysfs_fixture(tree)
    log = tree.write("dev/kmsg", "")
    clock = Clock()
    watch, events = make_watch(clock)
    await watch.start()
    assert watch.sources == ["hwmon", "kmsg"]

    # raspberrypi-hwmon logs first, then calls sysfs_notify: both within one poll.
    with log.open("a") as handle:
        handle.write(kmsg_record(2, 7, 30_000_000, CAPTURED_LINE))
    tree.write(ALARM, "1\n")
    await wait_for(lambda: watch.episodes._source_state == {"kmsg": True, "hwmon": True})
    clock.now += 6.0
    with log.open("a") as handle:
        handle.write(kmsg_record(6, 8, 36_000_000, NORMALISED_LINE))
    tree.write(ALARM, "0\n")
    await wait_for(lambda: watch.episodes._source_state == {"kmsg": False, "hwmon": False})

    assert [e.data["active"] for e in events] == [True, False]
    assert events[1].data["duration_s"] == 6.0
    assert watch.sample(Gaps(), 0.0)["power"]["under_voltage_episodes"] == 1
    await watch.stop()


async def test_running_episode_in_the_log_and_alarm_set(tree: FixtureTree, make_watch: MakeWatch) -> None:
    _sysfs_fixture(tree)
    tree.write(ALARM, "1\n")
    tree.write("dev/kmsg", kmsg_record(2, 50, 20_000_000, CAPTURED_LINE))
    watch, events = make_watch()
    await watch.start()
    assert watch.episodes.episodes == 1 and watch.episodes.active
    assert events == []  # the log already had it; the alarm is the same episode
    assert watch.sample(Gaps(), 0.0)["power"]["under_voltage_now"] is True
    await watch.stop()


async def test_running_episode_in_the_log_but_alarm_clear(tree: FixtureTree, make_watch: MakeWatch) -> None:
    _sysfs_fixture(tree)  # alarm 0
    tree.write("dev/kmsg", kmsg_record(2, 50, 20_000_000, CAPTURED_LINE))
    watch, events = make_watch()
    await watch.start()
    assert watch.episodes.episodes == 1 and not watch.episodes.active
    gaps = Gaps()
    power = watch.sample(gaps, 0.0)["power"]
    assert power["last_under_voltage_end"] is None
    assert "rate-limited" in gaps.reasons["power.last_under_voltage_end"]
    assert events[0].data == {"active": False, "episodes": 1, "source": "hwmon", "duration_s": None}
    await watch.stop()


async def test_alarm_set_at_start_is_an_edge(tree: FixtureTree, make_watch: MakeWatch) -> None:
    _sysfs_fixture(tree)
    tree.write(ALARM, "1\n")
    watch, events = make_watch()
    await watch.start()
    assert [e.data for e in events] == [{"active": True, "episodes": 1, "source": "hwmon"}]
    await watch.stop()


async def test_nothing_to_watch(tree: FixtureTree, make_watch: MakeWatch) -> None:
    watch, events = make_watch()
    await watch.start()
    gaps = Gaps()
    fragment = watch.sample(gaps, 0.0)
    assert fragment == {"power": {**dict.fromkeys(POWER_KEYS), "sources": []}}
    assert "rpi_volt" in gaps.reasons["power.under_voltage_now"]
    assert "/dev/kmsg not found" in gaps.reasons["power.under_voltage_episodes"]
    assert events == []
    await watch.stop()


async def test_sample_before_start_and_no_episodes_reasons(tree: FixtureTree, make_watch: MakeWatch) -> None:
    watch, _ = make_watch()
    gaps = Gaps()
    assert watch.sample(gaps, 0.0)["power"]["under_voltage_now"] is None
    assert gaps.reasons["power.under_voltage_now"] == "power watch not started"
    _sysfs_fixture(tree)
    await watch.start()
    gaps = Gaps()
    power = watch.sample(gaps, 0.0)["power"]
    assert (power["under_voltage_now"], power["under_voltage_episodes"]) == (False, 0)
    assert gaps.reasons["power.longest_under_voltage_s"] == "no under-voltage since the agent started"
    await watch.stop()


def test_find_rpi_volt_among_other_hwmon_devices(tree: FixtureTree) -> None:
    tree.write("sys/class/hwmon/hwmon0/name", "cpu_thermal\n")
    tree.write("sys/class/hwmon/hwmon3/name", "rpi_volt\n")
    tree.write("sys/class/hwmon/hwmon3/in0_lcrit_alarm", "0\n")
    assert find_rpi_volt_alarm(Root(tree.base)) == tree.base / "sys/class/hwmon/hwmon3/in0_lcrit_alarm"
    assert find_rpi_volt_alarm(Root(tree.base / "nowhere")) is None


# ---- real kernel interfaces of this machine


def _kmsg_readable() -> bool:
    try:
        os.close(os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _kmsg_readable(), reason="/dev/kmsg not readable here")
async def test_real_dev_kmsg_is_followed_without_spinning() -> None:
    fds, tasks = _open_fds(), asyncio.all_tasks()
    watch = PowerWatch(Root(Path("/")), EventBus())
    await watch.start()
    assert watch.kmsg_mode == "follow"  # a character device: add_reader, no polling task
    assert "kmsg" in watch.sources
    assert asyncio.all_tasks() == tasks
    # This is not a Pi: its log holds no raspberrypi-hwmon lines.
    assert watch.kmsg_history_records == 0 and watch.episodes.episodes == 0
    gaps = Gaps()
    assert watch.sample(gaps, 0.0)["power"]["under_voltage_episodes"] == 0
    assert gaps.reasons["power.longest_under_voltage_s"] == "no under-voltage since boot"
    await watch.stop()
    assert _open_fds() == fds


def _real_sysfs_zero_file() -> Path | None:
    for candidate in ("/sys/kernel/profiling", "/sys/kernel/rcu_expedited", "/sys/kernel/mm/ksm/run"):
        path = Path(candidate)
        try:
            if path.read_text().strip() == "0":
                return path
        except OSError:
            continue
    return None


@pytest.mark.skipif(_real_sysfs_zero_file() is None, reason="no readable sysfs attribute holding 0")
async def test_real_sysfs_attribute_is_watched_with_epoll_without_spinning(
    tree: FixtureTree, make_watch: MakeWatch
) -> None:
    # A real sysfs attribute stands in for in0_lcrit_alarm: the same kernfs poll semantics.
    real = _real_sysfs_zero_file()
    assert real is not None
    tree.write("sys/class/hwmon/hwmon1/name", "rpi_volt\n")
    (tree.base / "sys/class/hwmon/hwmon1/in0_lcrit_alarm").symlink_to(real)
    fds = _open_fds()
    watch, events = make_watch()
    await watch.start()
    assert watch.hwmon_mode == "sysfs_notify"
    await asyncio.sleep(0.3)
    # sysfs always reports POLLIN; waiting for POLLPRI only, the loop never calls back without a notify.
    assert watch.hwmon_wakeups == 0
    assert events == [] and watch.sample(Gaps(), 0.0)["power"]["under_voltage_now"] is False
    await watch.stop()
    assert _open_fds() == fds


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_dev_kmsg_without_privileges_degrades_with_a_reason() -> None:
    restrict = Path("/proc/sys/kernel/dmesg_restrict")
    if not restrict.exists() or restrict.read_text().strip() != "1":
        pytest.skip("dmesg_restrict is off: unprivileged users may read the log here")
    script = (
        "import asyncio, json\n"
        "from pathlib import Path\n"
        "from pi_stream_agent.rootfs import Gaps, Root\n"
        "from pi_stream_agent.telemetry.power import PowerWatch\n"
        "async def main():\n"
        "    watch = PowerWatch(Root(Path('/')))\n"
        "    await watch.start()\n"
        "    gaps = Gaps()\n"
        "    sample = watch.sample(gaps, 0.0)\n"
        "    await watch.stop()\n"
        "    print(json.dumps([sample, gaps.reasons]))\n"
        "asyncio.run(main())\n"
    )
    done = None
    # `nobody` may not be able to read this checkout (a clone in a 0700 directory): give it its own copy
    # of the agent package in a directory it can read.
    readable = Path(tempfile.mkdtemp(prefix="pi-stream-nobody-"))
    shutil.copytree(REPO_ROOT / "pi_stream_agent", readable / "pi_stream_agent")
    for path in (readable, *readable.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    # This interpreter may live where `nobody` cannot reach it (a pyenv under /root): then Debian's.
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        try:
            done = subprocess.run(
                [python, "-c", script],
                cwd=readable,
                user="nobody",
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except PermissionError:
            continue
        break
    shutil.rmtree(readable, ignore_errors=True)
    if done is None:
        pytest.skip("no Python interpreter the nobody user may run")
    assert done.returncode == 0, done.stderr
    sample, reasons = json.loads(done.stdout)
    assert sample["power"]["sources"] == []
    assert "needs root or CAP_SYSLOG" in reasons["power.sources.kmsg"]


async def test_kmsg_history_below_another_root_is_dated_by_that_roots_uptime(
    tree: FixtureTree, make_watch: MakeWatch
) -> None:
    # A fixture or simulated Pi booted 1000 s before "now"; its log says the sag began 900 s after boot.
    tree.write("proc/uptime", "1000.00 3600.00\n")
    tree.write("dev/kmsg", kmsg_record(2, 101, 900_000_000, CAPTURED_LINE))
    clock = Clock()
    watch, _ = make_watch(clock)
    await watch.start()
    assert watch.episodes.active
    assert watch.episodes.last_start == pytest.approx(clock.now - 100.0)
