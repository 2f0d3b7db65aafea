"""Throttle word: every real get_throttled sample decoded bit by bit, and the monitor's events."""

from __future__ import annotations

import pytest

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.rootfs import Gaps
from pi_stream_agent.telemetry.throttle import (
    THROTTLE_KEYS,
    ThrottleMonitor,
    decode_throttled,
    parse_get_throttled,
)
from tests.agent.helpers import fixture_files, fixture_text

# Every `throttled=` line in the vcgencmd captures, per file, as read off the files.
EXPECTED_WORDS = {
    "vcgencmd/get_throttled_samples_from_issues.txt": [0x50000, 0x50005, 0x0, 0x20002, 0xE0000, 0x50000],
    "vcgencmd/pi4_expected_values_caron_script.txt": [0x0],
    "vcgencmd/pi5_measure_clock_arm_temp_throttled_samples.txt": [0x0, 0x0, 0x50000],
    "vcgencmd/pi5_raspinfo_get_camera_not_registered.txt": [0x0],  # "Throttled flag  : throttled=0x0"
}

# Which flags each word sets (vcgencmd.1: bits 0-3 now, 16-19 has occurred).
SET_FLAGS = {
    0x0: set(),
    0x50000: {"under_voltage_occurred", "throttled_occurred"},
    0x50005: {"under_voltage", "throttled", "under_voltage_occurred", "throttled_occurred"},
    0x20002: {"freq_capped", "freq_capped_occurred"},
    0xE0000: {"freq_capped_occurred", "throttled_occurred", "soft_temp_limit_occurred"},
    0x80000: {"soft_temp_limit_occurred"},
    0x80008: {"soft_temp_limit", "soft_temp_limit_occurred"},
}


def _throttled_lines(relative: str) -> list[str]:
    return [
        line
        for line in fixture_text(relative).splitlines()
        if "throttled=" in line and not line.startswith("#")
    ]


@pytest.mark.parametrize("relative", fixture_files("vcgencmd"))
def test_every_vcgencmd_capture_parses_to_the_words_read_off_it(relative: str) -> None:
    words = []
    for line in _throttled_lines(relative):
        flags = parse_get_throttled(line)
        assert flags is not None, line
        words.append(flags.raw)
    assert words == EXPECTED_WORDS.get(relative, [])


@pytest.mark.parametrize("relative", sorted(EXPECTED_WORDS))
def test_captured_words_decode_bit_by_bit(relative: str) -> None:
    for line in _throttled_lines(relative):
        flags = parse_get_throttled(line)
        assert flags is not None
        on = {name for name, value in flags.flags().items() if value}
        assert on == SET_FLAGS[flags.raw], line


def test_legacy_sysfs_file_is_hex_without_prefix() -> None:
    # Two separate readings of /sys/devices/platform/soc/soc:firmware/get_throttled on a Pi 3B+.
    lines = fixture_text("sysfs/legacy_soc_firmware_get_throttled_pi3bplus.txt").splitlines()
    readings = [parse_get_throttled(line + "\n") for line in lines]
    assert [r.raw if r else None for r in readings] == [0x80000, 0x80008]
    assert readings[0] is not None and readings[1] is not None
    assert readings[0].soft_temp_limit_occurred and not readings[0].soft_temp_limit
    assert readings[1].soft_temp_limit and readings[1].soft_temp_limit_occurred
    assert not readings[1].under_voltage_occurred


def test_decode_each_bit_alone() -> None:
    names = ["under_voltage", "freq_capped", "throttled", "soft_temp_limit"]
    for bit, name in enumerate(names):
        assert {k for k, v in decode_throttled(1 << bit).flags().items() if v} == {name}
        assert {k for k, v in decode_throttled(1 << (bit + 16)).flags().items() if v} == {f"{name}_occurred"}
    # Bits outside 0-3 / 16-19 mean nothing documented: ignored, but kept in raw.
    other = decode_throttled(0x1000F0)
    assert not any(other.flags().values()) and other.raw == 0x1000F0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "throttled=",
        "throttled=0xZZ",
        "0x",
        "throttled=0x123456789",
        'error=1 error_msg="Command not registered"',
        "temp=54.0'C",
        "-5",
        "12 34",
    ],
)
def test_garbage_is_none(text: str) -> None:
    assert parse_get_throttled(text) is None


def _bus() -> tuple[EventBus, list[Event]]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    return bus, events


def test_monitor_publishes_on_change_only() -> None:
    bus, events = _bus()
    monitor = ThrottleMonitor(bus)

    assert monitor.update(0x50005, "mailbox") == [
        "under_voltage",
        "throttled",
        "under_voltage_occurred",
        "throttled_occurred",
    ]
    assert [e.type for e in events] == ["throttle_changed"]
    assert events[0].data["raw"] == 0x50005
    assert events[0].data["changed"] == [
        "under_voltage",
        "throttled",
        "under_voltage_occurred",
        "throttled_occurred",
    ]
    assert events[0].data["flags"]["under_voltage"] is True
    assert events[0].data["flags"]["freq_capped"] is False

    assert monitor.update(0x50005, "mailbox") == []
    assert len(events) == 1

    # The sag is over; the firmware still has the sticky bits.
    assert monitor.update(0x50000, "mailbox") == ["under_voltage", "throttled"]
    assert len(events) == 2 and events[1].data["flags"]["under_voltage_occurred"] is True


def test_occurred_survives_the_kernel_clearing_sticky_bits() -> None:
    bus, events = _bus()
    monitor = ThrottleMonitor(bus)
    monitor.update(0x50000, "vcgencmd")
    # raspberrypi-hwmon cleared bits 16-19 two seconds later: not a change of state, so no event.
    assert monitor.update(0x0, "vcgencmd") == []
    assert len(events) == 1
    gaps = Gaps()
    fragment = monitor.sample(gaps, 0.0)["throttle"]
    assert fragment["raw"] == 0
    assert fragment["under_voltage"] is False
    assert fragment["under_voltage_occurred"] is True  # the agent saw it
    assert fragment["throttled_occurred"] is True
    assert fragment["freq_capped_occurred"] is False
    assert monitor.firmware_flags is not None and monitor.firmware_flags.under_voltage_occurred is False
    # A now-bit seen by the agent counts as occurred even if the firmware's sticky bit was already cleared.
    assert monitor.update(0x2, "vcgencmd") == ["freq_capped", "freq_capped_occurred"]
    assert gaps.reasons == {}


def test_fragment_keys_and_values() -> None:
    monitor = ThrottleMonitor()
    monitor.update(0xE0000, "sysfs")
    fragment = monitor.sample(Gaps(), 0.0)
    assert list(fragment) == ["throttle"]
    assert list(fragment["throttle"]) == [
        "raw",
        "under_voltage",
        "freq_capped",
        "throttled",
        "soft_temp_limit",
        "under_voltage_occurred",
        "freq_capped_occurred",
        "throttled_occurred",
        "soft_temp_limit_occurred",
        "source",
    ]
    assert tuple(fragment["throttle"]) == THROTTLE_KEYS
    assert fragment["throttle"]["raw"] == 0xE0000
    assert fragment["throttle"]["source"] == "sysfs"
    assert fragment["throttle"]["soft_temp_limit_occurred"] is True
    assert fragment["throttle"]["under_voltage_occurred"] is False


def test_no_reading_gives_nulls_and_a_reason() -> None:
    gaps = Gaps()
    fragment = ThrottleMonitor().sample(gaps, 0.0)["throttle"]
    assert tuple(fragment) == THROTTLE_KEYS
    assert all(value is None for value in fragment.values())
    assert "no get_throttled reading" in gaps.reasons["throttle"]


def test_unavailable_hides_the_stale_word_and_fires_nothing_on_return() -> None:
    bus, events = _bus()
    monitor = ThrottleMonitor(bus)
    monitor.update(0x50005, "mailbox")
    monitor.unavailable("mailbox: ioctl failed")
    gaps = Gaps()
    assert monitor.sample(gaps, 1.0)["throttle"]["raw"] is None
    assert gaps.reasons["throttle"] == "mailbox: ioctl failed"
    assert monitor.flags is None
    assert monitor.update(0x50005, "mailbox") == []
    assert len(events) == 1
    assert monitor.sample(Gaps(), 2.0)["throttle"]["under_voltage"] is True
