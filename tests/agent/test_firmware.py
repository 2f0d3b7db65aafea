"""Firmware values: reply parsers over every real capture, the mailbox buffer, and the reader's transports
(an in-process one like the simulation's, a stand-in ``vcgencmd`` on PATH, none)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.firmware import (
    FIRMWARE_KEYS,
    GENCMD_BUFFER_BYTES,
    GET_GENCMD_RESULT,
    FirmwareReader,
    GencmdError,
    MailboxTransport,
    ThrottleReading,
    VcgencmdTransport,
    mailbox_ioctl_request,
    pack_gencmd_request,
    parse_frequency_hz,
    parse_gencmd_reply,
    parse_temperature_c,
    parse_thermal_millidegrees,
    parse_volts,
    unpack_gencmd_response,
)
from tests.agent.helpers import FixtureTree, fixture_files, fixture_text

BIN_DIR = Path(__file__).parent / "bin"

# Values read off the captures by eye, per file, in file order.
EXPECTED_TEMPERATURES = {
    "vcgencmd/dphrpi100_version_temp_getmem.txt": [42.2],
    "vcgencmd/dphrpi901_version_temp_getmem.txt": [54.0],
    "vcgencmd/get_throttled_samples_from_issues.txt": [39.2, 38.6, 38.6, 38.6, 62.3],
    "vcgencmd/pi5_measure_clock_arm_temp_throttled_samples.txt": [70.3, 59.3],
    "vcgencmd/rpi3bp01_version_temp_getmem.txt": [50.5],
}
EXPECTED_VOLTS = {
    "vcgencmd/get_throttled_samples_from_issues.txt": [1.2],
    # The author wrote "volt=1.100V" (3 decimals); the parser does not care how many.
    "vcgencmd/pi4_expected_values_caron_script.txt": [0.87, 1.1],
}
EXPECTED_CLOCKS = {
    "vcgencmd/get_throttled_samples_from_issues.txt": [1_400_000_000],
    "vcgencmd/pi4_expected_values_caron_script.txt": [1_500_398_464, 500_000_992, 500_000_992],
    "vcgencmd/pi5_measure_clock_arm_temp_throttled_samples.txt": [
        2_400_004_352,
        2_400_023_808,
        2_400_023_808,
    ],
    # arm core h264 isp v3d uart pwm emmc pixel vec hdmi dpi, each printed after a "name:\t" label
    "vcgencmd/pi_1.1ghz_measure_clock_all_italian_transcript.txt": [
        1_100_000_000,
        400_000_000,
        300_000_000,
        300_000_000,
        300_000_000,
        0,
        0,
        200_000_000,
        74_250_000,
        0,
        163_683_000,
        0,
    ],
}
PMIC_FILES = {
    "vcgencmd/pi5_pmic_read_adc_idle_pidash_fixture.txt",
    "vcgencmd/pi5_pmic_read_adc_loaded_docstring.txt",
}


def _lines(relative: str) -> list[str]:
    return [line for line in fixture_text(relative).splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("relative", fixture_files("vcgencmd"))
def test_every_capture_line_parses_to_what_it_says(relative: str) -> None:
    temperatures, volts, clocks = [], [], []
    for line in _lines(relative):
        temperature, volt, clock = parse_temperature_c(line), parse_volts(line), parse_frequency_hz(line)
        if relative in PMIC_FILES:
            continue  # pmic_read_adc output is not read by the agent
        # A line is at most one kind of value: version/get_mem/commands lines are none of them.
        assert [temperature, volt, clock].count(None) >= 2, line
        if temperature is not None:
            temperatures.append(temperature)
        if volt is not None:
            volts.append(volt)
        if clock is not None:
            clocks.append(clock)
    if relative in PMIC_FILES:
        return
    assert temperatures == EXPECTED_TEMPERATURES.get(relative, [])
    assert volts == EXPECTED_VOLTS.get(relative, [])
    assert clocks == EXPECTED_CLOCKS.get(relative, [])


def test_pi5_arm_clock_id_is_not_relied_on() -> None:
    reply = parse_gencmd_reply("frequency(0)=2400023808")
    assert (reply.name, reply.index, reply.value) == ("frequency", 0, "2400023808")
    assert parse_gencmd_reply("frequency(48)=1500398464").index == 48
    assert parse_frequency_hz("frequency(0)=2400023808") == 2_400_023_808


def test_error_replies_from_the_pi5_capture() -> None:
    lines = _lines("vcgencmd/pi5_raspinfo_get_camera_not_registered.txt")
    camera = next(line for line in lines if line.startswith("Camera  "))
    reply = parse_gencmd_reply(camera)
    assert reply.is_error and reply.error_code == 1 and reply.error_message == "Command not registered"
    # The CLI's two-line form at the end of the capture.
    tail = "\n".join(lines[-2:])
    assert tail.startswith("vc_gencmd_read_response returned -1")
    reply = parse_gencmd_reply(tail)
    assert (reply.error_code, reply.error_message) == (1, "Command not registered")
    assert parse_temperature_c(tail) is None and parse_frequency_hz(tail) is None


def test_invalid_arguments_error_reply() -> None:
    # The error form named in the task brief for a bad argument (same shape as the captured error=1 line).
    reply = parse_gencmd_reply('error=2 error_msg="Invalid arguments"')
    assert (reply.error_code, reply.error_message) == (2, "Invalid arguments")
    assert parse_volts('error=2 error_msg="Invalid arguments"') is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "temp=",
        "temp=hot'C",
        "temp=nan'C",
        "volt=1.2",
        "volt=V",
        "frequency(48)=",
        "frequency(x)=-5",
        "frequency(1)=1.5e9",
        "=",
        "\x00\xff",
        "arm=948M",
    ],
)
def test_garbage_replies_are_none(text: str) -> None:
    assert parse_temperature_c(text) is None
    assert parse_volts(text) is None
    assert parse_frequency_hz(text) is None


def test_thermal_millidegrees() -> None:
    assert parse_thermal_millidegrees(fixture_text("sysfs/thermal_zone0_temp_brandywine.txt")) == 45.464
    assert parse_thermal_millidegrees("") is None
    assert parse_thermal_millidegrees("45.4\n") is None


# ---- mailbox buffer (pure)


def test_ioctl_numbers() -> None:
    assert mailbox_ioctl_request(8) == 0xC0086400
    assert mailbox_ioctl_request(4) == 0xC0046400


def test_pack_request_layout() -> None:
    buffer = pack_gencmd_request("measure_temp")
    assert len(buffer) == GENCMD_BUFFER_BYTES == 4124
    words = struct.unpack("<1031I", bytes(buffer))
    assert words[:6] == (4124, 0, 0x00030080, 4096, 0, 0)
    assert GET_GENCMD_RESULT == 0x00030080
    assert bytes(buffer[24:37]) == b"measure_temp\0"
    assert words[-1] == 0  # end tag
    assert not any(buffer[37:])


def test_pack_rejects_what_vcgencmd_rejects() -> None:
    with pytest.raises(ValueError):
        pack_gencmd_request("x" * 4095)  # length + NUL must stay below MAX_STRING
    pack_gencmd_request("x" * 4094)
    with pytest.raises(ValueError):
        pack_gencmd_request("measure_temp\u00b0")


def _firmware_answer(buffer: bytearray, text: bytes, error_code: int = 0) -> bytearray:
    """What the kernel hands back: status word set, response length with bit 31, the error code, the text
    written over the command at offset 24."""
    struct.pack_into("<I", buffer, 4, 0x80000000)
    struct.pack_into("<I", buffer, 16, 0x80000000 | (len(text) + 1))
    struct.pack_into("<I", buffer, 20, error_code & 0xFFFFFFFF)
    buffer[24 : 24 + len(text) + 1] = text + b"\0"
    return buffer


def test_unpack_reply_ignores_leftovers_of_a_longer_command() -> None:
    buffer = _firmware_answer(pack_gencmd_request("measure_volts core"), b"volt=1.2000V")
    reply = unpack_gencmd_response(buffer)
    assert reply is not None and reply.ok
    assert reply.text == "volt=1.2000V"
    assert parse_volts(reply.text) == 1.2


def test_unpack_error_code_is_signed() -> None:
    buffer = _firmware_answer(
        pack_gencmd_request("get_camera"), b'error=1 error_msg="Command not registered"', -1
    )
    reply = unpack_gencmd_response(buffer)
    assert reply is not None and not reply.ok
    assert reply.error_code == -1
    assert parse_gencmd_reply(reply.text).error_message == "Command not registered"


def test_unpack_unprocessed_and_short_buffers() -> None:
    reply = unpack_gencmd_response(pack_gencmd_request("measure_temp"))
    assert reply is not None and reply.status == 0 and not reply.ok
    assert unpack_gencmd_response(b"\0" * 10) is None


def test_mailbox_transport_reports_a_device_without_the_ioctl() -> None:
    # A real ioctl on a real device that does not implement it (ENOTTY): the transport error path.
    fd = os.open("/dev/null", os.O_RDONLY)
    transport = MailboxTransport(fd, "/dev/null")
    with pytest.raises(GencmdError) as caught:
        transport.query("measure_temp")
    assert caught.value.transport_failed
    assert "/dev/null ioctl" in str(caught.value)
    transport.close()
    with pytest.raises(GencmdError):
        transport.query("measure_temp")


def test_mailbox_open_names_both_devices(tree: FixtureTree) -> None:
    transport, reason = MailboxTransport.open(Root(tree.base))
    assert transport is None
    assert reason is not None and "/dev/vcio_gencmd" in reason and "/dev/vcio" in reason


# ---- the reader


class ReplayTransport:
    """An in-process transport, the way the simulation plugs in: answers by command string."""

    def __init__(self, answers: dict[str, str], name: str = "replay") -> None:
        self.name = name
        self.answers = answers
        self.asked: list[str] = []

    def query(self, command: str) -> str:
        self.asked.append(command)
        if command not in self.answers:
            raise GencmdError(f'error=1 error_msg="Command not registered" ({command})')
        return self.answers[command]


def _line(relative: str, startswith: str) -> str:
    return next(line for line in _lines(relative) if line.startswith(startswith))


def _pi3_answers() -> dict[str, str]:
    """Real replies, each to the command that produced it (the clock lines of the 1.1 GHz transcript
    lose their "name:\\t" label, which the loop in that transcript printed, not vcgencmd)."""
    clocks = _lines("vcgencmd/pi_1.1ghz_measure_clock_all_italian_transcript.txt")
    by_name = {line.split(":\t")[0]: line.split(":\t")[1] for line in clocks}
    issues = "vcgencmd/get_throttled_samples_from_issues.txt"
    return {
        "measure_temp": _line("vcgencmd/rpi3bp01_version_temp_getmem.txt", "temp="),
        "measure_volts core": _line(issues, "volt="),
        "measure_clock arm": by_name["arm"],
        "measure_clock core": by_name["core"],
        "measure_clock h264": by_name["h264"],
        "get_throttled": "throttled=0x50005",
    }


def test_sample_with_an_in_process_transport(tree: FixtureTree) -> None:
    transport = ReplayTransport(_pi3_answers())
    reader = FirmwareReader(Root(tree.base), transport)
    gaps = Gaps()
    sample = reader.sample(gaps, 0.0)
    assert sample == {
        "soc_temperature_c": 50.5,
        "core_voltage_v": 1.2,
        "h264_clock_hz": 300_000_000,
        "arm_clock_hz": 1_100_000_000,
        "core_clock_hz": 400_000_000,
        "firmware": {"source": "replay"},
    }
    assert tuple(sample) == FIRMWARE_KEYS
    assert gaps.reasons == {}
    assert transport.asked == [
        "measure_temp",
        "measure_volts core",
        "measure_clock h264",
        "measure_clock arm",
        "measure_clock core",
    ]
    assert reader.read_throttled(gaps) == ThrottleReading(0x50005, "replay")
    assert not reader.needs_subprocess


def test_refused_and_odd_replies_become_reasons(tree: FixtureTree) -> None:
    answers = _pi3_answers()
    del answers["measure_clock h264"]
    answers["measure_volts core"] = 'error=2 error_msg="Invalid arguments"'  # returned as text, not raised
    answers["measure_clock core"] = "frequency(1)=fast"
    reader = FirmwareReader(Root(tree.base), ReplayTransport(answers))
    gaps = Gaps()
    sample = reader.sample(gaps, 0.0)
    assert sample["h264_clock_hz"] is None and "Command not registered" in gaps.reasons["h264_clock_hz"]
    assert sample["core_voltage_v"] is None and "Invalid arguments" in gaps.reasons["core_voltage_v"]
    assert sample["core_clock_hz"] is None and "frequency(1)=fast" in gaps.reasons["core_clock_hz"]
    assert sample["arm_clock_hz"] == 1_100_000_000


class BrokenTransport:
    name = "broken"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def query(self, command: str) -> str:
        self.calls += 1
        raise self.error


def test_a_failed_transport_is_asked_once_per_sample(tree: FixtureTree) -> None:
    transport = BrokenTransport(GencmdError("/dev/vcio ioctl: Input/output error", transport_failed=True))
    reader = FirmwareReader(Root(tree.base), transport)
    gaps = Gaps()
    sample = reader.sample(gaps, 0.0)
    assert transport.calls == 1
    assert all(sample[key] is None for key in FIRMWARE_KEYS if key != "firmware")
    assert gaps.reasons["arm_clock_hz"] == "/dev/vcio ioctl: Input/output error"
    assert "thermal_zone0/temp not found" in gaps.reasons["soc_temperature_c"]


def test_a_transport_raising_anything_does_not_break_the_sample(tree: FixtureTree) -> None:
    reader = FirmwareReader(Root(tree.base), BrokenTransport(RuntimeError("simulated pi crashed")))
    gaps = Gaps()
    sample = reader.sample(gaps, 0.0)
    assert sample["core_voltage_v"] is None
    assert "RuntimeError: simulated pi crashed" in gaps.reasons["core_voltage_v"]
    assert reader.read_throttled(gaps) is None
    assert "simulated pi crashed" in gaps.reasons["throttle"]


def _write_sysfs_fixture(tree: FixtureTree) -> None:
    """The hwmon/thermal fixture lists `path = value` pairs of a Pi's sysfs."""
    for line in fixture_text("sysfs/hwmon_rpi_volt_and_thermal_fixture_values.txt").splitlines():
        path, _, value = line.partition(" = ")
        tree.write(path, value + "\n")


def test_thermal_zone_is_the_temperature_fallback(tree: FixtureTree) -> None:
    _write_sysfs_fixture(tree)  # type cpu-thermal, temp 43800
    transport = BrokenTransport(GencmdError("no mailbox", transport_failed=True))
    gaps = Gaps()
    sample = FirmwareReader(Root(tree.base), transport).sample(gaps, 0.0)
    assert sample["soc_temperature_c"] == 43.8
    assert "soc_temperature_c" not in gaps.reasons
    assert gaps.reasons["core_voltage_v"] == "no mailbox"


def test_thermal_zone_of_another_kind_is_not_used(tree: FixtureTree) -> None:
    tree.write("sys/class/thermal/thermal_zone0/type", "acpitz\n")  # a PC's zone 0
    tree.write("sys/class/thermal/thermal_zone0/temp", "27800\n")
    gaps = Gaps()
    sample = FirmwareReader(Root(tree.base), BrokenTransport(GencmdError("x", transport_failed=True))).sample(
        gaps, 0
    )
    assert sample["soc_temperature_c"] is None
    assert "'acpitz', not the SoC" in gaps.reasons["soc_temperature_c"]


def test_thermal_zone_without_type_and_with_garbage(tree: FixtureTree) -> None:
    tree.write(
        "sys/class/thermal/thermal_zone0/temp", fixture_text("sysfs/thermal_zone0_temp_brandywine.txt")
    )
    reader = FirmwareReader(Root(tree.base), BrokenTransport(GencmdError("x", transport_failed=True)))
    assert reader.sample(Gaps(), 0.0)["soc_temperature_c"] == 45.464
    tree.write("sys/class/thermal/thermal_zone0/temp", "garbage\n")
    gaps = Gaps()
    assert reader.sample(gaps, 1.0)["soc_temperature_c"] is None
    assert "garbage" in gaps.reasons["soc_temperature_c"]


# ---- vcgencmd on PATH (a stand-in replaying the captures)


@pytest.fixture
def fake_vcgencmd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    answers = tmp_path / "answers.json"
    log = tmp_path / "vcgencmd.log"
    monkeypatch.setenv("PATH", f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("VCGENCMD_ANSWERS", str(answers))
    monkeypatch.setenv("VCGENCMD_LOG", str(log))
    monkeypatch.delenv("VCGENCMD_NO_DEVICE", raising=False)
    return {"answers": answers, "log": log}


def test_vcgencmd_on_path_pi3(tree: FixtureTree, fake_vcgencmd: dict[str, Path]) -> None:
    fake_vcgencmd["answers"].write_text(json.dumps(_pi3_answers()))
    reader = FirmwareReader(Root(tree.base))
    assert isinstance(reader.transport, VcgencmdTransport)
    assert reader.needs_subprocess
    gaps = Gaps()
    sample = reader.sample(gaps, 0.0)
    assert sample["firmware"] == {"source": "vcgencmd"}
    assert (sample["soc_temperature_c"], sample["core_voltage_v"]) == (50.5, 1.2)
    assert (sample["arm_clock_hz"], sample["core_clock_hz"], sample["h264_clock_hz"]) == (
        1_100_000_000,
        400_000_000,
        300_000_000,
    )
    assert gaps.reasons == {}
    assert reader.read_throttled(gaps) == ThrottleReading(0x50005, "vcgencmd")
    # Each command went as separate arguments, the way vcgencmd expects them.
    assert fake_vcgencmd["log"].read_text().splitlines() == [
        "measure_temp",
        "measure_volts core",
        "measure_clock h264",
        "measure_clock arm",
        "measure_clock core",
        "get_throttled",
    ]


def test_vcgencmd_on_path_pi5_replies(tree: FixtureTree, fake_vcgencmd: dict[str, Path]) -> None:
    pi5 = "vcgencmd/pi5_measure_clock_arm_temp_throttled_samples.txt"
    fake_vcgencmd["answers"].write_text(
        json.dumps(
            {
                "measure_temp": _line(pi5, "temp="),
                "measure_clock arm": _line(pi5, "frequency("),
                "get_throttled": _lines(pi5)[-2],
            }
        )
    )
    gaps = Gaps()
    reader = FirmwareReader(Root(tree.base))
    sample = reader.sample(gaps, 0.0)
    assert sample["soc_temperature_c"] == 70.3
    assert sample["arm_clock_hz"] == 2_400_004_352
    # The stand-in answers commands it has no capture for with the captured "not registered" error.
    assert sample["core_voltage_v"] is None
    assert "Command not registered" in gaps.reasons["core_voltage_v"]
    assert reader.read_throttled(gaps) == ThrottleReading(0x50000, "vcgencmd")


def test_vcgencmd_without_device_access(
    tree: FixtureTree, fake_vcgencmd: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCGENCMD_NO_DEVICE", "1")
    _write_sysfs_fixture(tree)
    gaps = Gaps()
    reader = FirmwareReader(Root(tree.base))
    sample = reader.sample(gaps, 0.0)
    assert sample["core_voltage_v"] is None
    assert gaps.reasons["core_voltage_v"] == "Can't open device file: /dev/vcio_gencmd"
    assert sample["soc_temperature_c"] == 43.8  # thermal zone fallback
    # One fork, not five: the transport failure stops the sample's other queries.
    assert fake_vcgencmd["log"].read_text().splitlines() == ["measure_temp"]


def test_vcgencmd_timeout(tmp_path: Path) -> None:
    slow = tmp_path / "vcgencmd"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    with pytest.raises(GencmdError) as caught:
        VcgencmdTransport(str(slow), timeout_s=0.2).query("measure_temp")
    assert caught.value.transport_failed and "timed out" in str(caught.value)


def test_no_transport_at_all(tree: FixtureTree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tree.base))  # no vcgencmd anywhere
    tree.write("sys/class/thermal/thermal_zone0/temp", "45464\n")
    reader = FirmwareReader(Root(tree.base))
    gaps = Gaps()
    sample = reader.sample(gaps, 0.0)
    assert sample["firmware"] == {"source": None}
    assert sample["soc_temperature_c"] == 45.464
    assert sample["arm_clock_hz"] is None
    assert "vcgencmd not found on PATH" in gaps.reasons["firmware.source"]
    assert "mailbox not used below a non-/ root" in gaps.reasons["arm_clock_hz"]
    assert reader.read_throttled(gaps) is None
    assert "vcgencmd not found" in gaps.reasons["throttle"]


@pytest.mark.parametrize(
    "line", fixture_text("sysfs/legacy_soc_firmware_get_throttled_pi3bplus.txt").splitlines()
)
def test_legacy_sysfs_throttled_without_firmware_access(
    tree: FixtureTree, monkeypatch: pytest.MonkeyPatch, line: str
) -> None:
    monkeypatch.setenv("PATH", str(tree.base))
    tree.write("sys/devices/platform/soc/soc:firmware/get_throttled", line + "\n")
    assert FirmwareReader(Root(tree.base)).read_throttled(Gaps()) == ThrottleReading(int(line, 16), "sysfs")


def test_legacy_sysfs_garbage(tree: FixtureTree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tree.base))
    tree.write("sys/devices/platform/soc/soc:firmware/get_throttled", "what\n")
    gaps = Gaps()
    assert FirmwareReader(Root(tree.base)).read_throttled(gaps) is None
    assert (
        "unexpected /sys/devices/platform/soc/soc:firmware/get_throttled: 'what'" in gaps.reasons["throttle"]
    )


@pytest.mark.skipif(os.path.exists("/dev/vcio") or os.path.exists("/dev/vcio_gencmd"), reason="a real Pi")
def test_real_root_without_mailbox_falls_back_to_vcgencmd(fake_vcgencmd: dict[str, Path]) -> None:
    fake_vcgencmd["answers"].write_text(json.dumps(_pi3_answers()))
    reader = FirmwareReader(Root(Path("/")))
    assert reader.transport is not None and reader.transport.name == "vcgencmd"
    reader.close()
