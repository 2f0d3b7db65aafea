"""The Pi's health beyond CMA and throttling: root filesystem, Pi 5 supply, fan, boot, and the context and
contributing condition of a stream's exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.simulation.gencmd import NOT_REGISTERED
from pi_stream_agent.telemetry.boot import STATE_FILE, BootWatch
from pi_stream_agent.telemetry.exit_context import (
    CMA_EXHAUSTED,
    MEMORY_PRESSURE,
    NETWORK,
    OVERHEATING,
    STORAGE,
    UNDER_VOLTAGE,
    ExitContext,
    ExitContextBuilder,
    context_from_sample,
    contributing_condition,
)
from pi_stream_agent.telemetry.fan import FanReader
from pi_stream_agent.telemetry.firmware import FirmwareReader, GencmdError
from pi_stream_agent.telemetry.kernel_events import KernelEvents
from pi_stream_agent.telemetry.power import PowerWatch
from pi_stream_agent.telemetry.storage import StorageReader, parse_root_mount, usage_from_statvfs
from pi_stream_agent.telemetry.supply import SupplyReader, parse_device_tree_u32, parse_pmic_read_adc
from tests.agent.helpers import FixtureTree, fixture_text

PMIC_IDLE = fixture_text("vcgencmd/pi5_pmic_read_adc_idle_pidash_fixture.txt")
PMIC_LOADED = fixture_text("vcgencmd/pi5_pmic_read_adc_loaded_docstring.txt")
OOM_LINES = fixture_text("kernel_log/oom_kill_ffmpeg_syslog_biliup_1237.txt").splitlines()

# mountinfo as proc(5) documents it, in Raspberry Pi OS's shape (root shown as /dev/root, 179:2 = mmcblk0p2).
MOUNTINFO = (
    "21 27 0:20 / /proc rw,relatime shared:12 - proc proc rw\n"
    "27 1 179:2 / / rw,noatime shared:1 - ext4 /dev/root rw\n"
    "28 27 179:1 / /boot/firmware rw,relatime shared:2 - vfat /dev/mmcblk0p1 rw,fmask=0022\n"
)


class FakeStatvfs:
    """A 32 GB card: 4 KiB blocks, 7.8 M blocks, 5 M free, 4.6 M available to users."""

    f_frsize = 4096
    f_bsize = 4096
    f_blocks = 7_800_000
    f_bfree = 5_000_000
    f_bavail = 4_600_000


# ---- storage


def test_root_mount_and_read_only_flags() -> None:
    mount = parse_root_mount(MOUNTINFO)
    assert mount is not None and (mount.major_minor, mount.source, mount.read_only) == (
        "179:2",
        "/dev/root",
        False,
    )
    # ext4 errors=remount-ro flips the superblock options; the per-mount ones may still say rw.
    remounted = MOUNTINFO.replace("ext4 /dev/root rw", "ext4 /dev/root ro")
    assert parse_root_mount(remounted).read_only is True  # type: ignore[union-attr]
    assert parse_root_mount("no such line\n") is None


def test_usage_as_df_counts_it() -> None:
    usage = usage_from_statvfs(FakeStatvfs())  # type: ignore[arg-type]
    assert usage.total_bytes == 7_800_000 * 4096
    assert usage.used_bytes == 2_800_000 * 4096 and usage.free_bytes == 4_600_000 * 4096
    assert usage.used_percent == pytest.approx(37.8, abs=0.05)


def test_storage_section(tree: FixtureTree) -> None:
    tree.write("proc/self/mountinfo", MOUNTINFO)
    tree.write("sys/dev/block/179:2/uevent", "MAJOR=179\nMINOR=2\nDEVNAME=mmcblk0p2\nDEVTYPE=partition\n")
    events = KernelEvents()
    events.following = True
    reader = StorageReader(Root(tree.base), events, statvfs=lambda path: FakeStatvfs())  # type: ignore[arg-type,return-value]
    gaps = Gaps()
    storage = reader.sample(gaps, 0.0)["storage"]
    assert storage["root"]["device"] == "mmcblk0p2" and storage["root"]["read_only"] is False
    assert storage["root"]["used_percent"] == pytest.approx(37.8, abs=0.05)
    assert storage["errors_total"] == 0 and storage["last_error"] is None
    assert "no storage error" in gaps.reasons["storage.last_error"]


def test_storage_without_mountinfo_or_kernel_log(tree: FixtureTree) -> None:
    reader = StorageReader(Root(tree.base), KernelEvents())
    gaps = Gaps()
    storage = reader.sample(gaps, 0.0)["storage"]
    assert storage["root"]["device"] is None and storage["errors_total"] is None
    assert "mountinfo" in gaps.reasons["storage.root.read_only"]
    assert storage["root"]["total_bytes"] > 0  # statvfs of the tree's own filesystem


# ---- Pi 5 supply


def test_real_pmic_outputs() -> None:
    idle, loaded = parse_pmic_read_adc(PMIC_IDLE), parse_pmic_read_adc(PMIC_LOADED)
    assert len(idle.channels) == len(loaded.channels) == 26
    assert idle.input_voltage_v == pytest.approx(5.11478)
    assert loaded.input_voltage_v == pytest.approx(4.9245)
    # Under load VDD_CORE draws 5 A at 0.89 V: the board's power triples.
    assert idle.power_w == pytest.approx(1.90, abs=0.01)
    assert loaded.power_w == pytest.approx(5.92, abs=0.01)
    assert loaded.current_a == pytest.approx(1.20, abs=0.01)


def test_device_tree_cells() -> None:
    assert parse_device_tree_u32(b"\x00\x00\x00\x01") == 1
    assert parse_device_tree_u32(b"\x00\x00\x13\x88") == 5000
    assert parse_device_tree_u32(b"\x01") is None


class Pi5Firmware:
    name = "fake"
    needs_subprocess = False

    def __init__(self, reply: str | None) -> None:
        self.reply = reply
        self.asked = 0

    def query(self, command: str) -> str:
        self.asked += 1
        if self.reply is None:
            raise GencmdError(f"firmware refused {command!r}: {NOT_REGISTERED}")
        return self.reply


def test_supply_on_a_pi_5(tree: FixtureTree) -> None:
    tree.write("proc/device-tree/chosen/power/usb_max_current_enable", b"\x00\x00\x00\x00")
    reader = SupplyReader(
        Root(tree.base), FirmwareReader(Root(tree.base), transport=Pi5Firmware(PMIC_LOADED))
    )
    supply = reader.sample(Gaps(), 0.0)["supply"]
    assert supply == {
        "input_voltage_v": 4.925,
        "current_a": 1.202,
        "power_w": 5.922,
        "usb_max_current_5a": False,
    }


def test_supply_elsewhere_is_null_and_asked_once(tree: FixtureTree) -> None:
    firmware = Pi5Firmware(None)
    reader = SupplyReader(Root(tree.base), FirmwareReader(Root(tree.base), transport=firmware))
    for _ in range(3):
        gaps = Gaps()
        assert reader.sample(gaps, 0.0) == {"supply": None}
    assert firmware.asked == 1
    assert "Raspberry Pi 5" in gaps.reasons["supply"]


# ---- fan


def test_fan_from_hwmon(tree: FixtureTree) -> None:
    # Pi 5: hwmon2 -> devices/platform/cooling_fan/hwmon/hwmon2 (home-assistant.io#31586), pwm-fan's name.
    tree.write("sys/class/hwmon/hwmon0/name", "cpu_thermal\n")
    tree.write("sys/class/hwmon/hwmon2/name", "pwmfan\n")
    tree.write("sys/class/hwmon/hwmon2/fan1_input", "1468\n")
    tree.write("sys/class/hwmon/hwmon2/pwm1", "100\n")
    assert FanReader(Root(tree.base)).sample(Gaps(), 0.0) == {"fan": {"rpm": 1468, "pwm_percent": 39.2}}


def test_no_fan(tree: FixtureTree) -> None:
    gaps = Gaps()
    assert FanReader(Root(tree.base)).sample(gaps, 0.0) == {"fan": None}
    assert "pwmfan" in gaps.reasons["fan"]


# ---- boot


def boot_watch(tree: FixtureTree, state: Path, bus: EventBus, uptime: float, boot_id: str) -> BootWatch:
    tree.write("proc/uptime", f"{uptime:.2f} 10.00\n")
    tree.write("proc/sys/kernel/random/boot_id", boot_id + "\n")
    return BootWatch(Root(tree.base), state, bus, lambda: 1_800_000_000.0)


def test_a_boot_that_ended_without_a_clean_stop_is_unexpected(tree: FixtureTree, tmp_path: Path) -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    state = tmp_path / "state"
    first = boot_watch(tree, state, bus, 100.0, "boot-a")
    first.start()
    assert first.unexpected_reboot is False and first.last_boot == 1_799_999_900.0
    first.stop()  # clean
    second = boot_watch(tree, state, bus, 50.0, "boot-b")
    second.start()
    assert second.unexpected_reboot is False
    # Power cut: no stop(). The next boot knows.
    third = boot_watch(tree, state, bus, 30.0, "boot-c")
    third.start()
    assert third.unexpected_reboot is True
    assert [(e.type, e.data) for e in events] == [("unexpected_reboot", {"last_boot": 1_799_999_970.0})]
    # The agent restarts within that boot: the verdict stands, the event is not repeated.
    third.stop()
    again = boot_watch(tree, state, bus, 40.0, "boot-c")
    again.start()
    assert again.unexpected_reboot is True and len(events) == 1
    assert again.sample(Gaps(), 0.0) == {"boot": {"last_boot": 1_799_999_960.0, "unexpected_reboot": True}}
    assert (state / STATE_FILE).stat().st_size > 0


def test_a_damaged_boot_record_is_a_first_run(tree: FixtureTree, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / STATE_FILE).write_text("{not json", encoding="utf-8")
    watch = boot_watch(tree, state, EventBus(), 10.0, "boot-x")
    watch.start()
    assert watch.unexpected_reboot is False


# ---- exit context and contributing condition


@pytest.mark.parametrize(
    ("context", "cause", "condition"),
    [
        (ExitContext(oom_killed=True, under_voltage_now=True), "killed", MEMORY_PRESSURE),
        (ExitContext(cma_free_bytes=2 * 1024 * 1024), "buffer_allocation", CMA_EXHAUSTED),
        (ExitContext(cma_free_bytes=200 * 1024 * 1024), "buffer_allocation", None),
        (ExitContext(under_voltage_episodes_60s=1, throttled=True), "encoder_error", UNDER_VOLTAGE),
        (ExitContext(under_voltage_now=True), "stalled", UNDER_VOLTAGE),
        (ExitContext(soc_temperature_c=84.5), "stalled", OVERHEATING),
        (ExitContext(freq_capped=True, soc_temperature_c=70.0), "unknown", OVERHEATING),
        (ExitContext(soc_temperature_c=60.0, storage_errors=3), "unknown", STORAGE),
        (ExitContext(remote_publish=True, wifi_signal_dbm=-82), "rtsp_unreachable", NETWORK),
        (ExitContext(remote_publish=True, network_drops_per_s=0.5), "stalled", NETWORK),
        (ExitContext(remote_publish=False, wifi_signal_dbm=-82), "rtsp_unreachable", None),
        (ExitContext(remote_publish=True, wifi_signal_dbm=-82), "device_busy", None),
        (ExitContext(soc_temperature_c=55.0, under_voltage_episodes_60s=0), "encoder_error", None),
    ],
)
def test_contributing_condition(context: ExitContext, cause: str, condition: str | None) -> None:
    assert contributing_condition(context, cause) == condition


def test_context_from_a_real_shaped_sample() -> None:
    sample = {
        "throttle": {"throttled": False, "freq_capped": True},
        "soc_temperature_c": 61.2,
        "cma": {"free_bytes": 100},
        "memory": {"available_bytes": 200},
        "wifi": {"wlan0": {"signal_dbm": -67}},
        "network": {
            "lo": {"rx_errors_per_s": 9.0},
            "eth0": {
                "rx_errors_per_s": 0.0,
                "tx_errors_per_s": 0.5,
                "rx_drops_per_s": 1.0,
                "tx_drops_per_s": None,
            },
            "wlan0": {
                "rx_errors_per_s": 0.25,
                "tx_errors_per_s": 0.0,
                "rx_drops_per_s": 0.0,
                "tx_drops_per_s": 0.0,
            },
        },
    }
    assert context_from_sample(sample) == {
        "throttled": False,
        "freq_capped": True,
        "soc_temperature_c": 61.2,
        "cma_free_bytes": 100,
        "memory_available_bytes": 200,
        "wifi_signal_dbm": -67,
        "network_errors_per_s": 0.75,
        "network_drops_per_s": 1.0,
    }
    assert context_from_sample(None) == {}


async def test_builder_matches_the_kill_to_the_publishers_pid(tree: FixtureTree) -> None:
    counter = KernelEvents()
    power = PowerWatch(Root(tree.base), kernel_events=counter)
    await power.start()
    try:
        counter.feed_all(OOM_LINES, 1000.0, live=True)
        builder = ExitContextBuilder(
            power, counter, lambda: {"soc_temperature_c": 50.0}, clock=lambda: 1001.0
        )
        context, condition = builder.build((902280, 17), "killed")
        assert condition == MEMORY_PRESSURE
        assert context["kernel_messages"][1].startswith("Out of memory: Killed process 902280 (ffmpeg)")
        assert context["soc_temperature_c"] == 50.0 and context["under_voltage_now"] is None
        other, condition = builder.build((4242,), "killed")
        assert condition is None and other["kernel_messages"] == []
    finally:
        await power.stop()
