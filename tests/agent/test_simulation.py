"""Simulation mode: the generated Pi 4 tree, the simulated firmware, and the mover.

The tree is checked three ways: as plain text against the captures it comes from, byte for byte against
the kernel format strings (rendering a capture's own values must give the capture back), and through the
agent's real collectors, which read it exactly as they read ``/`` on a Pi.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pi_stream_agent.discovery.libcamera import parse_list_cameras
from pi_stream_agent.discovery.registry import DeviceRegistry
from pi_stream_agent.discovery.v4l2_controls import parse_list_ctrls_menus
from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Gaps
from pi_stream_agent.simulation import SimulatedPi, SimulationConfig, build_simulated_root, captures
from pi_stream_agent.simulation import pi as pi_module
from pi_stream_agent.simulation.model import (
    TEMP_MAX_C,
    TEMP_MIN_C,
    THROTTLED_AFTER_EPISODE,
    THROTTLED_DURING_EPISODE,
)
from pi_stream_agent.simulation.render import (
    NET_DEV_FIELDS,
    WirelessLine,
    adapt_pi4_cpuinfo,
    bufinfo_header,
    net_dev_line,
    parse_meminfo_kb,
    render_bufinfo,
    render_meminfo,
    under_voltage_detected,
    voltage_normalised,
    wireless_line,
)
from pi_stream_agent.simulation.tree import pi4_video_nodes, write_atomic
from pi_stream_agent.telemetry.firmware import GencmdError
from tests.agent.helpers import fixture_files, fixture_text

WALL_CLOCK = 1_750_000_000.0  # a fixed "now" so two builds are byte-identical
NO_EPISODES = SimulationConfig(under_voltage_mean_interval_s=None)

MEMINFO = "meminfo/pi4_4gb_rpicam598_cmafree303732.txt"
NET_DEV = "net/proc_net_dev_raspberrypi_eth0_rxdrops_weechat229_partial.txt"
V4L2_PI4 = "v4l2/pi4_list_devices_unicam_isp_codec_camera_streamer3.txt"


def build(base: Path, seed: int = 7, config: SimulationConfig = NO_EPISODES, **kwargs: Any) -> SimulatedPi:
    return build_simulated_root(base, seed, config=config, wall_clock=WALL_CLOCK, **kwargs)


@pytest.fixture
def pi(tmp_path: Path) -> SimulatedPi:
    return build(tmp_path / "pi")


def read(pi: SimulatedPi, relative: str) -> str:
    return (pi.base / relative).read_text(encoding="utf-8")


def tree_snapshot(base: Path) -> dict[str, bytes | str]:
    """Every file (content) and symlink (target) below ``base``."""
    snapshot: dict[str, bytes | str] = {}
    for path in sorted(base.rglob("*")):
        relative = str(path.relative_to(base))
        if path.is_symlink():
            snapshot[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            snapshot[relative] = path.read_bytes()
    return snapshot


# Functions rather than the properties themselves: the value changes between two asserts, and a type
# checker would otherwise take the first assert as holding for the rest of the test.
def active(pi: SimulatedPi) -> bool:
    return pi.under_voltage_active


def running(pi: SimulatedPi) -> bool:
    return pi.running


def collector(name: str) -> ModuleType:
    """A collector module, imported only when the test runs; skip if it has not been written yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            pytest.skip(f"{name} does not exist yet")
        raise


# ------------------------------------------------------------------------------------------- captures


@pytest.mark.parametrize("capture", captures.ALL_CAPTURES, ids=lambda c: c.relative)
def test_embedded_captures_equal_the_fixture_files(capture: captures.Capture) -> None:
    assert capture.text == fixture_text(capture.relative)


def test_build_without_the_fixtures_folder_gives_the_same_tree(tmp_path: Path) -> None:
    from_fixtures = build(tmp_path / "a", fixtures=captures.default_fixtures_dir())
    embedded = build(tmp_path / "b", fixtures=tmp_path / "no-such-folder")
    assert captures.default_fixtures_dir() is not None
    assert tree_snapshot(from_fixtures.base) == tree_snapshot(embedded.base)


def test_capture_text_prefers_the_fixtures_folder(tmp_path: Path) -> None:
    (tmp_path / "meminfo").mkdir()
    (tmp_path / MEMINFO).write_text("# source: x\nCmaFree:   1 kB\n", encoding="utf-8")
    assert captures.capture_text(captures.MEMINFO_PI4_4GB, tmp_path) == "CmaFree:   1 kB\n"
    assert captures.capture_text(captures.MEMINFO_PI4_4GB, None) == captures.MEMINFO_PI4_4GB.text


# ------------------------------------------------------------------- renderers against the captures


@pytest.mark.parametrize("name", fixture_files("meminfo"))
def test_meminfo_lines_render_exactly_as_captured(name: str) -> None:
    text = fixture_text(name)
    assert render_meminfo(text, parse_meminfo_kb(text)) == text.rstrip("\n") + "\n"


def test_meminfo_only_changes_the_values_given() -> None:
    text = fixture_text(MEMINFO)
    rendered = render_meminfo(text, {"CmaFree": 4, "MemFree": 123456})
    changed = [(a, b) for a, b in zip(text.splitlines(), rendered.splitlines(), strict=True) if a != b]
    assert changed == [
        ("MemFree:          750252 kB", "MemFree:          123456 kB"),
        ("CmaFree:          303732 kB", "CmaFree:               4 kB"),
    ]


def test_meminfo_lines_without_kb_are_not_values() -> None:
    assert parse_meminfo_kb("HugePages_Total:       0\nCmaFree:  8 kB\nbad line\n") == {"CmaFree": 8}


def test_net_dev_lines_render_exactly_as_captured() -> None:
    header, eth0, lo = fixture_text(NET_DEV).splitlines()[1:4]
    assert header.startswith(" face |bytes")
    values = dict(zip(NET_DEV_FIELDS, map(int, eth0.split(":")[1].split()), strict=True))
    assert values["rx_drop"] == 15408 and values["tx_bytes"] == 13329944
    assert net_dev_line("eth0", values) == eth0
    assert net_dev_line("lo", {}) == lo


@pytest.mark.parametrize(
    ("name", "level", "retries"),
    [
        ("net/proc_net_wireless_brandywine.txt", -59, 189),
        ("net/proc_net_wireless_hankb_testdata.txt", -58, 1122),
    ],
)
def test_wireless_lines_render_exactly_as_captured(name: str, level: int, retries: int) -> None:
    line = WirelessLine("wlan0", level_dbm=level, discard_retry=retries)
    assert wireless_line(line) == fixture_text(name).splitlines()[2]
    assert line.quality == level + 110  # 51 and 52 in the captures


def test_under_voltage_messages_match_the_kernel_log_capture() -> None:
    detected, normalised_format = fixture_text("sysfs/kernel_log_undervoltage_lines.txt").splitlines()
    assert under_voltage_detected(0x50005) == detected == "Under-voltage detected! (0x00050005)"
    assert voltage_normalised(0) == normalised_format % 0 == "Voltage normalised (0x00000000)"


def test_bufinfo_is_the_captured_rows_with_the_6x_header_and_totals() -> None:
    header = bufinfo_header(fixture_text("dmabuf/bufinfo_empty_6.1.21_rpicam573.txt"))
    assert header == "size    \tflags   \tmode    \tcount   \texp_name\tino     \tname"
    rows = fixture_text("dmabuf/bufinfo_pi4_6.x_vcsmcma_v3d_partial_rpicam598.txt")
    text = render_bufinfo(header, rows)
    assert text.startswith("\nDma-buf Objects:\n" + header + "\n00622592\t00000000\t00080005\t")
    # Six 622592-byte videobuf2 buffers and one 1048576-byte vc_sm_cma buffer in the capture.
    assert text.endswith("Total 0 devices attached\n\n\nTotal 7 objects, 4784128 bytes\n")
    assert rows.rstrip("\n") in text


def test_cpuinfo_is_the_pi4_capture_adapted_to_arm64() -> None:
    captured = fixture_text("cpuinfo/pi4b_rev1.1_a03111_armv7l_4.19.txt")
    text = adapt_pi4_cpuinfo(captured, revision="c03114", serial="1000000012345678", model="M")
    assert "model name" not in text and "Hardware" not in text
    assert text.count("CPU part\t: 0xd08\n") == 4 and text.count("CPU revision\t: 3\n") == 4
    assert text.count("BogoMIPS\t: 108.00\n") == 4
    assert text.count("CPU architecture: 8\n") == 4
    # The layout of the captured arm64 6.6 cpuinfo (Pi 3B+): same keys in the same order per CPU.
    arm64 = fixture_text("cpuinfo/pi3bplus_arm64_a020d3.txt")
    keys = [line.partition(":")[0].strip() for line in text.splitlines()]
    assert keys == [line.partition(":")[0].strip() for line in arm64.splitlines()]
    assert text.endswith("Revision\t: c03114\nSerial\t\t: 1000000012345678\nModel\t\t: M\n")


def test_v4l2_nodes_follow_the_captured_list_devices() -> None:
    nodes = {node.number: (node.name, node.index) for node in pi4_video_nodes(fixture_text(V4L2_PI4))}
    assert nodes == {
        10: ("bcm2835-codec-decode", 0),
        11: ("bcm2835-codec-encode", 0),
        12: ("bcm2835-codec-isp", 0),
        18: ("bcm2835-codec-image_fx", 0),
        31: ("bcm2835-codec-encode_image", 0),
        13: ("bcm2835-isp0-output0", 0),
        14: ("bcm2835-isp0-capture1", 1),
        15: ("bcm2835-isp0-capture2", 2),
        16: ("bcm2835-isp0-capture3", 3),
        20: ("bcm2835-isp1-output0", 0),
        21: ("bcm2835-isp1-capture1", 1),
        22: ("bcm2835-isp1-capture2", 2),
        23: ("bcm2835-isp1-capture3", 3),
        0: ("unicam-image", 0),
        1: ("unicam-embedded", 1),
    }


# -------------------------------------------------------------------------------- the tree as text


def test_tree_board_files(pi: SimulatedPi) -> None:
    cpuinfo = read(pi, "proc/cpuinfo")
    assert cpuinfo.count("processor\t: ") == 4
    assert "Revision\t: c03114\n" in cpuinfo
    assert "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n" in cpuinfo
    serial = cpuinfo.split("Serial\t\t: ")[1].split("\n")[0]
    assert len(serial) == 16 and serial.startswith("10000000") and int(serial, 16)
    assert (pi.base / "proc/device-tree/model").read_bytes() == b"Raspberry Pi 4 Model B Rev 1.4\0"
    assert (pi.base / "proc/device-tree/compatible").read_bytes() == b"raspberrypi,4-model-b\0brcm,bcm2711\0"
    assert (pi.base / "proc/device-tree/serial-number").read_bytes() == serial.encode() + b"\0"
    assert read(pi, "proc/sys/kernel/osrelease") == "6.6.31+rpt-rpi-v8\n"


def test_tree_memory_is_the_pi4_capture(pi: SimulatedPi) -> None:
    # Freshly built: the capture itself.
    assert read(pi, "proc/meminfo") == fixture_text(MEMINFO)
    pi.step()
    values = parse_meminfo_kb(read(pi, "proc/meminfo"))
    assert values["MemTotal"] == 3884232 and values["CmaTotal"] == 524288
    assert 524288 * 45 // 100 <= values["CmaFree"] <= 524288 * 70 // 100
    assert values["CmaFree"] % 4 == 0


def test_tree_cpu_and_uptime_files(pi: SimulatedPi) -> None:
    stat = read(pi, "proc/stat").splitlines()
    assert stat[0].startswith("cpu  ")
    per_cpu = [list(map(int, line.split()[1:])) for line in stat[1:5]]
    assert [line.split()[0] for line in stat[1:5]] == ["cpu0", "cpu1", "cpu2", "cpu3"]
    assert list(map(int, stat[0].split()[1:])) == [sum(column) for column in zip(*per_cpu, strict=True)]
    assert [line.split()[0] for line in stat[5:]] == [
        "intr", "ctxt", "btime", "processes", "procs_running", "procs_blocked", "softirq",
    ]  # fmt: skip
    uptime, idle = map(float, read(pi, "proc/uptime").split())
    assert 86_400 <= uptime <= 4 * 86_400
    assert 0 < idle <= 4 * uptime
    # btime + uptime = now, to the second.
    assert abs(int(stat[7].split()[1]) + uptime - WALL_CLOCK) <= 1
    load = read(pi, "proc/loadavg").split()
    assert len(load) == 5 and load[3].split("/")[0].isdigit()


def test_tree_network_files(pi: SimulatedPi) -> None:
    net = read(pi, "proc/net/dev").splitlines()
    assert net[:2] == fixture_text(NET_DEV).splitlines()[:2]
    assert [line.split(":")[0].strip() for line in net[2:]] == ["lo", "eth0", "wlan0"]
    assert all(len(line.split(":")[1].split()) == 16 for line in net[2:])
    wireless = read(pi, "proc/net/wireless").splitlines()
    assert wireless[:2] == fixture_text("net/proc_net_wireless_hankb_testdata.txt").splitlines()[:2]
    assert wireless[2].split()[:4] == ["wlan0:", "0000", "55.", "-55."]


def test_tree_thermal_hwmon_dmabuf_kmsg(pi: SimulatedPi) -> None:
    assert read(pi, "sys/class/thermal/thermal_zone0/type") == "cpu-thermal\n"
    millidegrees = int(read(pi, "sys/class/thermal/thermal_zone0/temp"))
    assert 40_000 <= millidegrees <= 70_000
    assert (410_040 - millidegrees) % 487 == 0  # BCM2711 sensor steps
    assert read(pi, "sys/class/hwmon/hwmon0/name") == "cpu_thermal\n"
    assert read(pi, "sys/class/hwmon/hwmon1/name") == "rpi_volt\n"
    assert read(pi, "sys/class/hwmon/hwmon1/in0_lcrit_alarm") == "0\n"
    assert read(pi, "sys/kernel/debug/dma_buf/bufinfo").endswith("\nTotal 7 objects, 4784128 bytes\n")
    assert read(pi, "dev/kmsg") == "6,0,0,-;Booting Linux on physical CPU 0x0000000000 [0x410fd083]\n"
    assert (pi.base / "dev/kmsg").is_file()


def test_tree_v4l2_sysfs(pi: SimulatedPi) -> None:
    v4l = pi.base / "sys/class/video4linux"
    numbers = sorted(int(p.name[5:]) for p in v4l.iterdir())
    # The Pi 4's own nodes, and video2/video3: the simulated USB capture card (simulation/devices.py).
    assert numbers == [0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 18, 20, 21, 22, 23, 31]
    assert (v4l / "video11/name").read_text() == "bcm2835-codec-encode\n"
    assert (v4l / "video0/name").read_text() == "unicam-image\n"
    assert (v4l / "video14/index").read_text() == "1\n"
    assert Path(os.path.realpath(v4l / "video0/device")).name == "fe801000.csi"
    assert Path(os.path.realpath(v4l / "video0/device/driver")).name == "unicam"
    assert Path(os.path.realpath(v4l / "video11/device")).name == "bcm2835-codec"
    assert all((pi.base / "dev" / p.name).is_file() for p in v4l.iterdir())
    assert pi.cameras == []  # the place for test-pattern cameras, empty until the streams code adds some


# ------------------------------------------------------------------------------------------ firmware


def test_gencmd_answers_the_firmware_readers_commands(pi: SimulatedPi) -> None:
    thermal = int(read(pi, "sys/class/thermal/thermal_zone0/temp"))
    assert pi.gencmd.query("measure_temp") == f"temp={thermal / 1000:.1f}'C"
    assert pi.gencmd.query("measure_volts core") == "volt=0.8700V"
    assert pi.gencmd.query("measure_volts") == "volt=0.8700V"
    assert pi.gencmd.query("measure_clock arm") == "frequency(48)=1500398464"
    assert pi.gencmd.query("measure_clock core") == "frequency(1)=500000992"
    assert pi.gencmd.query("measure_clock h264") == "frequency(28)=500000992"
    assert pi.gencmd.query("get_throttled") == "throttled=0x0"
    assert pi.gencmd.name == "simulated"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("get_camera", "Command not registered"),
        ("", "Command not registered"),
        ("measure_clock warp", "Invalid arguments"),
        ("measure_volts sdram_x", "Invalid arguments"),
    ],
)
def test_gencmd_refuses_other_commands(pi: SimulatedPi, command: str, message: str) -> None:
    with pytest.raises(GencmdError, match=message) as info:
        pi.gencmd.query(command)
    assert info.value.transport_failed is False


# ----------------------------------------------------------------------------------------- the mover


def test_mover_keeps_temperature_in_bounds_and_moving(tmp_path: Path) -> None:
    config = SimulationConfig(under_voltage_mean_interval_s=None, temperature_period_s=300)
    pi = build(tmp_path / "pi", config=config)
    seen: set[int] = set()
    for _ in range(400):
        pi.step()
        millidegrees = int(read(pi, "sys/class/thermal/thermal_zone0/temp"))
        assert TEMP_MIN_C * 1000 <= millidegrees <= TEMP_MAX_C * 1000
        assert pi.gencmd.query("measure_temp") == f"temp={millidegrees / 1000:.1f}'C"
        seen.add(millidegrees)
    assert len(seen) >= 15  # more than 7 °C of range visited
    assert read(pi, "sys/class/hwmon/hwmon0/temp1_input") == f"{millidegrees}\n"


def test_mover_counters_grow(pi: SimulatedPi) -> None:
    def counters() -> tuple[float, int, dict[str, list[int]], int]:
        uptime = float(read(pi, "proc/uptime").split()[0])
        cpu_total = sum(map(int, read(pi, "proc/stat").splitlines()[0].split()[1:]))
        net = {
            line.split(":")[0].strip(): list(map(int, line.split(":")[1].split()))
            for line in read(pi, "proc/net/dev").splitlines()[2:]
        }
        retries = int(read(pi, "proc/net/wireless").splitlines()[2].split()[8])
        return uptime, cpu_total, net, retries

    uptime, cpu_total, net, retries = counters()
    levels = set()
    for _ in range(200):
        pi.step(2.0)
        levels.add(int(read(pi, "proc/net/wireless").splitlines()[2].split()[3].rstrip(".")))
    uptime2, cpu_total2, net2, retries2 = counters()
    assert uptime2 == pytest.approx(uptime + 400.0, abs=0.02)
    assert cpu_total2 - cpu_total == 4 * 100 * 400  # 4 CPUs x USER_HZ x seconds
    for name in ("lo", "eth0", "wlan0"):
        assert net2[name][0] > net[name][0] and net2[name][8] > net[name][8]  # rx/tx bytes
    assert net2["eth0"][3] > net["eth0"][3]  # an occasional rx drop in 400 s
    assert retries2 > retries
    assert len(levels) > 3 and all(-68 <= level <= -44 for level in levels)
    assert sum(levels) / len(levels) == pytest.approx(-55, abs=3)


def test_under_voltage_episode(pi: SimulatedPi) -> None:
    alarm = pi.base / "sys/class/hwmon/hwmon1/in0_lcrit_alarm"
    assert alarm.read_text() == "0\n"
    pi.step()
    pi.trigger_under_voltage(3.0)
    # At once: alarm up, crit line logged, firmware word with bits 0, 2, 16, 18.
    assert alarm.read_text() == "1\n"
    assert pi.gencmd.query("get_throttled") == "throttled=0x50005"
    assert active(pi) and pi.under_voltage_episodes == 1
    kmsg = read(pi, "dev/kmsg").splitlines()
    assert kmsg[-1].startswith("2,1,") and kmsg[-1].endswith(",-;Under-voltage detected! (0x00050005)")
    pi.trigger_under_voltage(1.0)  # during an episode: the same episode, no second line
    assert len(read(pi, "dev/kmsg").splitlines()) == 2
    pi.step(2.0)
    assert alarm.read_text() == "1\n"  # 2 s of 3 gone
    pi.step(2.0)
    assert alarm.read_text() == "0\n"
    assert pi.gencmd.query("get_throttled") == "throttled=0x50000"  # sticky bits 16 and 18 remain
    assert not active(pi) and pi.under_voltage_episodes == 1
    kmsg = read(pi, "dev/kmsg").splitlines()
    assert len(kmsg) == 3
    assert kmsg[-1].startswith("6,2,") and kmsg[-1].endswith(",-;Voltage normalised (0x00000000)")
    start_us, end_us = int(kmsg[1].split(",")[2]), int(kmsg[2].split(",")[2])
    assert end_us - start_us == 4_000_000  # seen on the second 2 s tick
    assert (start_us / 1e6) == pytest.approx(float(read(pi, "proc/uptime").split()[0]) - 4.0, abs=0.01)
    assert (THROTTLED_DURING_EPISODE, THROTTLED_AFTER_EPISODE) == (0x50005, 0x50000)


def test_under_voltage_episodes_come_by_themselves(tmp_path: Path) -> None:
    often = SimulationConfig(under_voltage_mean_interval_s=10.0, under_voltage_max_s=3.0)
    pi = build(tmp_path / "often", config=often)
    for _ in range(150):
        pi.step()
    lines = read(pi, "dev/kmsg").splitlines()[1:]
    detected = [line for line in lines if "Under-voltage detected!" in line]
    normalised = [line for line in lines if "Voltage normalised" in line]
    assert pi.under_voltage_episodes == len(detected) >= 10  # ~30 expected in 300 s
    assert len(normalised) in (len(detected), len(detected) - 1)
    assert [int(line.split(",")[1]) for line in lines] == list(range(1, len(lines) + 1))
    never = build(tmp_path / "never", config=NO_EPISODES)
    for _ in range(150):
        never.step()
    assert never.under_voltage_episodes == 0 and len(read(never, "dev/kmsg").splitlines()) == 1


# --------------------------------------------------------------------------------------------- atomic


def test_write_atomic_replaces_without_touching_open_readers(tmp_path: Path) -> None:
    target = tmp_path / "file"
    write_atomic(target, "old content\n")
    with open(target, encoding="utf-8") as reader:
        write_atomic(target, "new\n")
        assert reader.read() == "old content\n"  # the old inode, whole: a rename, not a rewrite
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_readers_never_see_a_partial_file(pi: SimulatedPi) -> None:
    failures: list[str] = []
    done = threading.Event()
    files = ["proc/stat", "proc/meminfo", "proc/net/dev", "sys/class/thermal/thermal_zone0/temp"]

    def reader() -> None:
        while not done.is_set():
            for relative in files:
                text = read(pi, relative)
                if not text.endswith("\n") or (relative == "proc/stat" and "softirq" not in text):
                    failures.append(f"{relative}: {text[-40:]!r}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(300):
            pi.step()
    finally:
        done.set()
        thread.join()
    assert failures == []
    assert not [p for p in pi.base.rglob(".*.tmp")]


def test_kmsg_grows_in_place_for_a_reader_holding_it_open(pi: SimulatedPi) -> None:
    with open(pi.base / "dev/kmsg", encoding="utf-8") as log:
        assert log.read().startswith("6,0,0,-;Booting Linux")
        pi.trigger_under_voltage(0.0)
        assert log.read().endswith("Under-voltage detected! (0x00050005)\n")
        pi.step()
        assert log.read().endswith("Voltage normalised (0x00000000)\n")


# -------------------------------------------------------------------------------------- determinism


def _history(pi: SimulatedPi) -> None:
    for index in range(40):
        pi.step(2.0 if index % 3 else 1.7)
        if index == 10:
            pi.trigger_under_voltage(5.0)


def test_same_seed_same_tree(tmp_path: Path) -> None:
    config = SimulationConfig(under_voltage_mean_interval_s=20.0)
    first = build(tmp_path / "a", seed=42, config=config)
    second = build(tmp_path / "b", seed=42, config=config)
    _history(first)
    _history(second)
    assert tree_snapshot(first.base) == tree_snapshot(second.base)
    other = build(tmp_path / "c", seed=43, config=config)
    _history(other)
    snapshot, other_snapshot = tree_snapshot(first.base), tree_snapshot(other.base)
    assert snapshot["proc/stat"] != other_snapshot["proc/stat"]
    assert snapshot["proc/cpuinfo"] != other_snapshot["proc/cpuinfo"]  # another serial


def test_random_seed_is_kept_and_reproduces(tmp_path: Path) -> None:
    first = build_simulated_root(tmp_path / "a", wall_clock=WALL_CLOCK)
    again = build_simulated_root(tmp_path / "b", first.seed, wall_clock=WALL_CLOCK)
    assert tree_snapshot(first.base) == tree_snapshot(again.base)


# ------------------------------------------------------------------------------------------ run/stop


async def test_run_moves_values_and_stop_ends_it(pi: SimulatedPi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pi_module, "MIN_INTERVAL_S", 0.02)
    pi.config = SimulationConfig(interval_s=0.02, under_voltage_mean_interval_s=None)
    before = float(read(pi, "proc/uptime").split()[0])
    task = asyncio.create_task(pi.run())
    await asyncio.sleep(0.3)
    assert running(pi)
    pi.stop()
    await asyncio.wait_for(task, 1.0)
    after = float(read(pi, "proc/uptime").split()[0])
    assert 0.1 < after - before < 2.0  # stepped by the real time elapsed
    assert not running(pi)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    await asyncio.sleep(0.1)
    assert float(read(pi, "proc/uptime").split()[0]) == after  # nothing moves after stop


async def test_run_never_wakes_more_than_every_two_seconds(pi: SimulatedPi) -> None:
    pi.config = SimulationConfig(interval_s=0.01, under_voltage_mean_interval_s=None)
    before = read(pi, "proc/uptime")
    task = asyncio.create_task(pi.run())
    await asyncio.sleep(0.5)
    assert read(pi, "proc/uptime") == before
    pi.stop()
    await asyncio.wait_for(task, 1.0)


async def test_stop_before_run_started_and_running_twice(pi: SimulatedPi) -> None:
    task = asyncio.create_task(pi.run())
    pi.stop()  # before the task got to run
    await asyncio.wait_for(task, 1.0)
    task = asyncio.create_task(pi.run())  # a new run after a stop works
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await pi.run()
    pi.stop()
    await asyncio.wait_for(task, 1.0)
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_run_survives_a_vanished_tree(
    pi: SimulatedPi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pi_module, "MIN_INTERVAL_S", 0.02)
    pi.config = SimulationConfig(interval_s=0.02, under_voltage_mean_interval_s=None)
    shutil.rmtree(pi.base / "proc/net")  # every step now fails at proc/net/dev
    uptime = pi.state.uptime_s
    task = asyncio.create_task(pi.run())
    await asyncio.sleep(0.2)
    assert not task.done()  # each step fails to write and the mover goes on
    assert pi.state.uptime_s > uptime + 0.1
    warnings = [record for record in caplog.records if "cannot update" in record.getMessage()]
    assert len(warnings) == 1  # said once, not every tick
    pi.stop()
    await asyncio.wait_for(task, 1.0)


# ------------------------------------------------------------------------- through the real collectors


def test_board_collector_reads_a_pi4(pi: SimulatedPi) -> None:
    board = collector("pi_stream_agent.telemetry.board")
    gaps = Gaps()
    fragment = board.BoardReader(pi.root).sample(gaps, time.monotonic())["board"]
    assert fragment == {
        "model": "Raspberry Pi 4 Model B Rev 1.4",
        "revision": "c03114",
        "type": "4B",
        "soc": "BCM2711",
        "memory_bytes": 4 * 1024**3,
        "manufacturer": "Sony UK",
        "kernel": "6.6.31+rpt-rpi-v8",
        "uptime_s": float(read(pi, "proc/uptime").split()[0]),
        "is_raspberry_pi": True,
    }
    assert gaps.reasons == {}


def test_memory_and_dmabuf_collectors(pi: SimulatedPi) -> None:
    meminfo = collector("pi_stream_agent.telemetry.meminfo")
    dmabuf = collector("pi_stream_agent.telemetry.dmabuf")
    gaps = Gaps()
    memory = meminfo.MemoryReader(pi.root).sample(gaps, time.monotonic())
    assert memory["cma"]["total_bytes"] == 524288 * 1024
    assert memory["cma"]["free_bytes"] == 303732 * 1024
    buffers = dmabuf.DmabufReader(pi.root).sample(gaps, time.monotonic())["dmabuf"]
    assert buffers["total_bytes"] == 4784128 and buffers["buffers"] == 7
    assert buffers["by_exporter"] == {"videobuf2_dma_contig": 6 * 622592, "vc_sm_cma": 1048576}


def test_network_and_system_collectors_see_the_mover(pi: SimulatedPi) -> None:
    network = collector("pi_stream_agent.telemetry.network")
    system = collector("pi_stream_agent.telemetry.system")
    net_reader = network.NetworkReader(pi.root)
    cpu_reader = system.SystemReader(pi.root, system.ProcessWatch())
    net_reader.sample(Gaps(), 100.0)
    cpu_reader.sample(Gaps(), 100.0)
    pi.step(2.0)
    gaps = Gaps()
    net = net_reader.sample(gaps, 102.0)
    cpu = cpu_reader.sample(gaps, 102.0)["cpu"]
    assert set(net["network"]) == {"eth0", "wlan0"}
    assert 0 < net["network"]["eth0"]["tx_bytes_per_s"] < 24_000 * 1.5
    assert -68 <= net["wifi"]["wlan0"]["signal_dbm"] <= -44
    assert cpu["count"] == 4 and 0 <= cpu["percent"] <= 100
    assert cpu["load_1"] is not None


def test_firmware_and_throttle_collectors(pi: SimulatedPi) -> None:
    firmware = collector("pi_stream_agent.telemetry.firmware")
    throttle = collector("pi_stream_agent.telemetry.throttle")
    reader = firmware.FirmwareReader(pi.root, transport=pi.gencmd)
    gaps = Gaps()
    values = reader.sample(gaps, time.monotonic())
    thermal = int(read(pi, "sys/class/thermal/thermal_zone0/temp")) / 1000
    assert values["soc_temperature_c"] == pytest.approx(thermal, abs=0.05)
    assert values["core_voltage_v"] == 0.87
    assert values["arm_clock_hz"] == 1500398464
    assert values["h264_clock_hz"] == 500000992
    assert values["firmware"] == {"source": "simulated"}
    assert gaps.reasons == {}
    monitor = throttle.ThrottleMonitor()
    pi.trigger_under_voltage(1.0)
    reading = reader.read_throttled(gaps)
    monitor.update(reading.raw, reading.source)
    flags = monitor.sample(gaps, 0.0)["throttle"]
    assert flags["raw"] == 0x50005 and flags["under_voltage"] and flags["throttled"]


async def test_power_watch_sees_both_edges(pi: SimulatedPi) -> None:
    power = collector("pi_stream_agent.telemetry.power")
    bus = EventBus()
    events: list[dict[str, Any]] = []
    bus.subscribe(lambda event: events.append(event.data))
    watch = power.PowerWatch(pi.root, bus, poll_interval_s=0.05)
    await watch.start()
    try:
        assert set(watch.sources) == {"hwmon", "kmsg"}
        pi.trigger_under_voltage(0.0)
        await asyncio.sleep(0.2)
        pi.step()
        await asyncio.sleep(0.2)
        fragment = watch.sample(Gaps(), time.monotonic())["power"]
    finally:
        await watch.stop()
    assert [event["active"] for event in events] == [True, False]
    assert fragment["under_voltage_now"] is False and fragment["under_voltage_episodes"] == 1


def test_v4l2_discovery_finds_the_pi4_blocks_and_the_usb_card(pi: SimulatedPi) -> None:
    v4l2 = collector("pi_stream_agent.discovery.v4l2")
    scan = v4l2.V4l2Scanner(pi.root, tool=None).scan()
    (card,) = scan.capture_devices  # from sysfs alone: video3 is its metadata node (index 1), not a source
    assert (card.id, card.name, card.path, card.driver) == (
        "usb-0000:01:00.0-1.3",
        "USB Video",
        "/dev/video2",
        "uvcvideo",
    )
    assert card.stable_path == "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"
    encoder = scan.hardware_encoder
    assert (encoder.h264, encoder.device, encoder.name) == (True, "/dev/video11", "bcm2835-codec-encode")
    roles = {node.path: node.role for node in scan.platform_nodes}
    assert len(roles) == 15
    assert roles["/dev/video0"] == "csi_receiver" and roles["/dev/video31"] == "jpeg_encoder"
    assert {node.bus for node in scan.platform_nodes} == {
        "platform:fe801000.csi",
        "platform:bcm2835-codec",
        "platform:bcm2835-isp",
    }


# ------------------------------------------------------------------------------ cameras and their controls


async def test_simulated_devices_carry_the_recorded_controls(pi: SimulatedPi) -> None:
    """The agent's real discovery, with the simulated Pi answering for rpicam-hello and v4l2-ctl: the camera
    and the card list exactly what the recorded outputs list."""
    registry = DeviceRegistry(pi.root, EventBus(), tool_runner=pi.tools, hotplug=False)
    await registry.start()
    try:
        document = registry.to_json()
        (card,) = document["capture_devices"]
        assert card["controls"] == parse_list_ctrls_menus(fixture_text(captures.CARD_CONTROLS.relative))
        assert card["controls"]["brightness"]["default"] == -11
        assert await registry.read_controls(card["id"]) == card["controls"]
    finally:
        await registry.stop()
    (camera,) = document["csi_cameras"]
    (recorded,) = parse_list_cameras(fixture_text(captures.CSI_IMX708_VERBOSE.relative))
    assert camera["controls"] == recorded.controls
    assert camera["controls"]["AfMode"] == {"min": 0, "max": 2}
    assert len(camera["modes"]) == 3
    # Adapted: the Pi 4's camera id (the capture is from a Pi 5).
    assert camera["id_path"] == "/base/soc/i2c0mux/i2c@1/imx708@1a"
    assert document["unavailable"] == {}
    # The card's sound: its audio device, matched to its video device through the USB port.
    (audio,) = document["audio_devices"]
    assert (audio["alsa"], audio["usb_id"], audio["video_device_id"]) == (
        "hw:CARD=MS2109,DEV=0",
        "534d:2109",
        card["id"],
    )


def test_simulated_tools_answer_like_the_real_ones(pi: SimulatedPi) -> None:
    plain = pi.tools(["rpicam-hello", "--list-cameras"], 1.0)
    assert "Modes:" in plain.stdout and "Available controls" not in plain.stdout
    assert "AfMode : [0..2]" in pi.tools(["rpicam-hello", "--list-cameras", "-v"], 1.0).stdout
    missing = pi.tools(["v4l2-ctl", "-d", "/dev/video9", "--list-ctrls-menus"], 1.0)
    assert (missing.stdout, missing.reason) == (
        "",
        "`v4l2-ctl -d /dev/video9 --list-ctrls-menus` exited with status 1: "
        "Cannot open device /dev/video9, exiting.",
    )
