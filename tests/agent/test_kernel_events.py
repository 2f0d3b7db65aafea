"""Memory kills and storage errors from the kernel log: the parsers on real quoted lines
(fixtures/pi/kernel_log/), the counter, and the power watch handing them over from the one kmsg stream."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.kernel_events import (
    STORAGE_EVENT_INTERVAL_S,
    KernelEvents,
    parse_oom_kill,
    parse_storage_error,
    split_kernel_line,
)
from pi_stream_agent.telemetry.power import PowerWatch
from tests.agent.helpers import FixtureTree, fixture_text
from tests.agent.test_power import POLL, Clock, kmsg_record, wait_for

OOM_SYSLOG = fixture_text("kernel_log/oom_kill_ffmpeg_syslog_biliup_1237.txt").splitlines()
OOM_MEMCG = fixture_text("kernel_log/oom_kill_memcg_dmesg_T_frigate_6560.txt").splitlines()
OOM_INVOKED = fixture_text("kernel_log/oom_invoked_pi4_6.1_raspberrypi_linux_5395.txt").splitlines()
MMC_PI3 = fixture_text("kernel_log/storage_mmc_timeout_io_error_pi3_ws281x_61.txt").splitlines()
BUFFER_EXT4 = fixture_text("kernel_log/storage_buffer_io_ext4_error_raspberrypi_linux_280.txt").splitlines()
IO_6X = fixture_text("kernel_log/storage_io_error_6x_format_khadas_fenix_312.txt").splitlines()


def message(line: str) -> str:
    parsed = split_kernel_line(line)
    assert parsed is not None
    return parsed.message


# ---- parsers


def test_both_lines_of_a_real_oom_kill_name_the_process() -> None:
    oom_kill, killed = (parse_oom_kill(message(line)) for line in OOM_SYSLOG)
    assert oom_kill is not None and killed is not None
    assert (oom_kill.pid, oom_kill.process) == (killed.pid, killed.process) == (902280, "ffmpeg")


def test_a_memory_cgroup_kill_is_a_kill() -> None:
    kills = [parse_oom_kill(message(line)) for line in OOM_MEMCG]
    assert [(k.pid, k.process) for k in kills if k] == [(22344, "frigate.capture")] * 2


def test_the_report_header_of_an_oom_is_not_a_kill() -> None:
    assert [parse_oom_kill(message(line)) for line in OOM_INVOKED] == [None, None]


def test_real_storage_error_lines_by_kind() -> None:
    kinds = [parse_storage_error(message(line)) for line in MMC_PI3]
    # Each "error -110" line repeats the timeout just above it; the journal abort follows the I/O error.
    assert kinds == ["mmc_timeout", None] * 3 + ["io_error", None]
    kinds = [parse_storage_error(message(line)) for line in BUFFER_EXT4]
    # The EXT4-fs *warning* line is a consequence of the Buffer I/O errors above it, not counted twice.
    assert kinds == ["buffer_io_error", "buffer_io_error", None, "ext4_error", None, "mmc_timeout"]
    assert [parse_storage_error(message(line)) for line in IO_6X] == ["buffer_io_error", "io_error"]
    # Format of fs/ext4/super.c (no public Pi log quoting it was found).
    assert parse_storage_error("EXT4-fs (mmcblk0p2): Remounting filesystem read-only") == "read_only_remount"


def test_line_shapes_give_the_message_and_its_time() -> None:
    kmsg = split_kernel_line(kmsg_record(3, 812, 47_403_335, OOM_SYSLOG[1].split("kernel: ", 1)[1]))
    assert kmsg is not None and kmsg.seconds_since_boot == pytest.approx(47.403335)
    assert kmsg.message.startswith("Out of memory: Killed process 902280")
    dmesg = split_kernel_line(MMC_PI3[0])
    assert dmesg == split_kernel_line(MMC_PI3[0]) and dmesg is not None
    assert (dmesg.message, dmesg.seconds_since_boot) == (
        "mmc0: timeout waiting for hardware interrupt.",
        303.215569,
    )
    syslog = split_kernel_line(OOM_SYSLOG[0])
    assert syslog is not None and syslog.message.startswith("oom-kill:constraint=")


def test_a_kill_written_to_kmsg_from_user_space_is_not_believed() -> None:
    # Facility 1 (user): what `echo … > /dev/kmsg` produces.
    assert split_kernel_line(kmsg_record(12, 1, 1_000_000, "Out of memory: Killed process 1 (init)")) is None


# ---- the counter


def test_one_kill_counted_once_and_pushed_with_its_stream() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    counter = KernelEvents(bus, stream_of=lambda pid: "front_door" if pid == 902280 else None)
    counter.following = True
    for line in OOM_SYSLOG:
        counter.feed(line, 1000.0, live=True)
    assert counter.oom_total == 1
    assert [e.type for e in events] == ["oom_kill"]
    assert events[0].data == {
        "pid": 902280,
        "process": "ffmpeg",
        "stream_id": "front_door",
        "timestamp": 1000.0,
    }
    sample = counter.sample(Gaps(), 0.0)["oom_kills"]
    assert sample == {"total": 1, "last": events[0].data}
    # The same pid much later is another process with a reused pid: another kill.
    counter.feed(OOM_SYSLOG[1], 5000.0, live=True)
    assert counter.oom_total == 2


def test_history_is_counted_but_not_pushed() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    counter = KernelEvents(bus)
    counter.feed_all(OOM_MEMCG + MMC_PI3, None, live=False)
    assert (counter.oom_total, counter.storage_errors_total, events) == (1, 4, [])


def test_a_burst_of_storage_errors_is_counted_line_by_line_and_pushed_once_per_interval() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    counter = KernelEvents(bus)
    counter.following = True
    for offset, line in enumerate(BUFFER_EXT4):
        counter.feed(line, 100.0 + offset * 0.1, live=True)
    assert counter.storage_errors_total == 4
    assert [e.type for e in events] == ["storage_error"]
    assert events[0].data["errors_total"] == 1
    assert events[0].data["message"].startswith("Buffer I/O error on device mmcblk0p2")
    counter.feed(IO_6X[1], 100.0 + STORAGE_EVENT_INTERVAL_S + 1, live=True)
    assert [e.data["errors_total"] for e in events] == [1, 5]
    assert counter.last_storage_error is not None
    assert counter.last_storage_error["message"].startswith("I/O error, dev mmcblk0")


def test_not_following_the_log_says_why() -> None:
    counter = KernelEvents()
    counter.unavailable_reason = "/dev/kmsg: permission denied"
    gaps = Gaps()
    assert counter.sample(gaps, 0.0) == {"oom_kills": {"total": None, "last": None}}
    assert gaps.reasons["oom_kills"] == "/dev/kmsg: permission denied"


def test_lines_about_a_publisher_in_the_window() -> None:
    counter = KernelEvents()
    counter.feed_all(OOM_SYSLOG, 1000.0, live=True)
    counter.feed(MMC_PI3[0], 990.0, live=True)
    counter.feed(MMC_PI3[6], 800.0, live=True)  # an I/O error older than the window
    lines = counter.lines_about([902280], since=940.0)
    assert [line.split(":")[0] for line in lines] == ["oom-kill", "Out of memory", "mmc0"]
    assert counter.killed([902280], since=940.0) and not counter.killed([4242], since=940.0)
    assert not counter.killed([902280], since=1001.0)


# ---- handed over by the power watch from the one kernel log stream


async def test_the_power_watch_hands_kernel_lines_over_from_its_one_stream(tree: FixtureTree) -> None:
    tree.write("proc/uptime", "100.00 300.00\n")
    log = tree.write("dev/kmsg", kmsg_record(3, 1, 5_000_000, message(MMC_PI3[0])))
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    counter = KernelEvents(bus, stream_of={902280: "garage"}.get)
    clock = Clock(now=10_000.0)
    watch = PowerWatch(Root(tree.base), bus, poll_interval_s=POLL, clock=clock, kernel_events=counter)
    await watch.start()
    try:
        assert counter.following and counter.storage_errors_total == 1 and events == []
        # Its time: boot (10 000 - 100 s uptime) + 5 s.
        assert counter.last_storage_error == {"timestamp": 9905.0, "message": message(MMC_PI3[0])}
        with log.open("a") as handle:
            for sequence, line in enumerate(OOM_SYSLOG, 2):
                handle.write(kmsg_record(3, sequence, 99_000_000, message(line)))
        await wait_for(lambda: len(events) == 1)
        assert events[0].type == "oom_kill"
        assert events[0].data["stream_id"] == "garage" and events[0].data["timestamp"] == 9999.0
    finally:
        await watch.stop()


async def test_no_readable_log_leaves_the_counts_unknown(tree: FixtureTree) -> None:
    counter = KernelEvents()
    watch = PowerWatch(Root(tree.base), poll_interval_s=POLL, kernel_events=counter)
    await watch.start()
    try:
        assert not counter.following
        assert "dev/kmsg" in (counter.unavailable_reason or "")
    finally:
        await watch.stop()


@pytest.mark.skipif(not os.access("/dev/kmsg", os.R_OK | os.W_OK), reason="needs /dev/kmsg (root)")
async def test_a_fake_kill_written_to_the_real_kmsg_is_not_counted() -> None:
    counter = KernelEvents()
    watch = PowerWatch(Root(Path("/")), poll_interval_s=POLL, kernel_events=counter)
    await watch.start()
    try:
        before = counter.oom_total
        fd = os.open("/dev/kmsg", os.O_WRONLY)
        try:
            os.write(fd, b"Out of memory: Killed process 4242 (pi-stream-test) total-vm:1kB\n")
        finally:
            os.close(fd)
        await asyncio.sleep(0.2)
        watch.read_pending_kernel_log()
        assert counter.oom_total == before
    finally:
        await watch.stop()
