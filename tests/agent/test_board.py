"""Board identity: device-tree model, cpuinfo, revision codes, kernel and uptime. (What a SoC means for the
camera and the encoder is tested in test_soc.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.board import (
    BoardReader,
    CpuInfo,
    RevisionInfo,
    decode_revision,
    parse_cpuinfo,
    parse_device_tree_model,
    parse_device_tree_strings,
    parse_uptime,
)
from tests.agent.helpers import FixtureTree, deny_reads, fixture_files, fixture_text

MIB = 1024 * 1024
GIB = 1024 * MIB

SAMPLE_KEYS = {
    "model",
    "revision",
    "type",
    "soc",
    "memory_bytes",
    "manufacturer",
    "kernel",
    "uptime_s",
    "is_raspberry_pi",
}


def dt_model_bytes() -> bytes:
    """The real /proc/device-tree/model bytes of the captured 3B+. The capture is a `cat` whose shell
    prompt followed the file (no newline); the fixture note gives the file's bytes as the text + NUL."""
    text = fixture_text("sysfs/proc_device_tree_model_pi3bplus_no_newline.txt").rstrip("\n")
    assert text.endswith("pi@pibuttons:~ $")
    return text.removesuffix("pi@pibuttons:~ $").encode() + b"\0"


# --- device tree ---------------------------------------------------------------------------------------


def test_device_tree_model_from_capture() -> None:
    assert parse_device_tree_model(dt_model_bytes()) == "Raspberry Pi 3 Model B Plus Rev 1.3"


def test_device_tree_model_str_and_odd_input() -> None:
    assert parse_device_tree_model("Raspberry Pi 5 Model B Rev 1.0\0") == "Raspberry Pi 5 Model B Rev 1.0"
    assert parse_device_tree_model(b"") is None
    assert parse_device_tree_model(b"\0\0") is None
    assert parse_device_tree_model(b"\xff\xfe\0junk") == "\ufffd\ufffd"


def test_device_tree_compatible_list() -> None:
    # Format from the Raspberry Pi documentation (revision-codes.adoc, "check the device tree").
    assert parse_device_tree_strings(b"raspberrypi,5-model-b\0brcm,bcm2712\0") == [
        "raspberrypi,5-model-b",
        "brcm,bcm2712",
    ]


# --- cpuinfo -------------------------------------------------------------------------------------------

CPUINFO_EXPECTED = {
    "cpuinfo/pi3bplus_a020d3_armv7l_4.14.txt": CpuInfo("a020d3", "00000000c47ff376", None, "BCM2835"),
    "cpuinfo/pi3bplus_arm64_a020d3.txt": CpuInfo(
        "a020d3", "0000000056ee0f6d", "Raspberry Pi 3 Model B Plus Rev 1.3", None
    ),
    "cpuinfo/pi4b_rev1.1_a03111_armv7l_4.19.txt": CpuInfo(
        "a03111", "100000009f0f3244", "Raspberry Pi 4 Model B Rev 1.1", "BCM2835"
    ),
    "cpuinfo/pizerow_9000c1_armv6l_4.9.txt": CpuInfo("9000c1", "0000000068bd6366", None, "BCM2835"),
}


def test_every_cpuinfo_fixture_is_covered() -> None:
    assert set(fixture_files("cpuinfo")) == set(CPUINFO_EXPECTED)


@pytest.mark.parametrize("name", sorted(CPUINFO_EXPECTED))
def test_parse_cpuinfo_fixtures(name: str) -> None:
    assert parse_cpuinfo(fixture_text(name)) == CPUINFO_EXPECTED[name]


def test_parse_cpuinfo_of_this_x86_machine_has_no_board_lines() -> None:
    info = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    # "model name" lines must not be taken for the board's "Model" line.
    assert info.model is None or not info.model.startswith("Intel")
    assert info.revision is None


def test_parse_cpuinfo_garbage() -> None:
    assert parse_cpuinfo("") == CpuInfo()
    assert parse_cpuinfo("Revision\t:\nSerial\nModel : \x00\n::::") == CpuInfo(model="\x00")


# --- revision codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # The three codes in the captured cpuinfo files.
        ("a020d3", RevisionInfo("a020d3", True, "3B+", "BCM2837", 1 * GIB, "Sony UK", "1.3")),
        ("a03111", RevisionInfo("a03111", True, "4B", "BCM2711", 1 * GIB, "Sony UK", "1.1")),
        ("9000c1", RevisionInfo("9000c1", True, "Zero W", "BCM2835", 512 * MIB, "Sony UK", "1.1")),
        # Codes listed in the fixtures README §4 / revision-codes.adoc.
        ("902120", RevisionInfo("902120", True, "Zero 2 W", "BCM2837", 512 * MIB, "Sony UK", "1.0")),
        ("d03114", RevisionInfo("d03114", True, "4B", "BCM2711", 8 * GIB, "Sony UK", "1.4")),
        ("c04170", RevisionInfo("c04170", True, "5", "BCM2712", 4 * GIB, "Sony UK", "1.0")),
        ("D04170", RevisionInfo("d04170", True, "5", "BCM2712", 8 * GIB, "Sony UK", "1.0")),
        ("e04171", RevisionInfo("e04171", True, "5", "BCM2712", 16 * GIB, "Sony UK", "1.1")),
        ("a03140", RevisionInfo("a03140", True, "CM4", "BCM2711", 1 * GIB, "Sony UK", "1.0")),
        ("a22082", RevisionInfo("a22082", True, "3B", "BCM2837", 1 * GIB, "Embest", "1.2")),
        ("a01041", RevisionInfo("a01041", True, "2B", "BCM2836", 1 * GIB, "Sony UK", "1.1")),
        # Old style, and an over-volted old-style board ("1000" in front).
        ("000e", RevisionInfo("000e", False, "B", "BCM2835", 512 * MIB, "Sony UK", "2.0")),
        ("1000002", RevisionInfo("1000002", False, "B", "BCM2835", 256 * MIB, "Egoman", "1.0")),
        ("0015", RevisionInfo("0015", False, "A+", "BCM2835", None, "Embest", "1.1")),
    ],
)
def test_decode_revision(code: str, expected: RevisionInfo) -> None:
    assert decode_revision(code) == expected


def test_decode_revision_unknown_parts() -> None:
    assert decode_revision("") == RevisionInfo()
    assert decode_revision(None) == RevisionInfo()
    assert decode_revision("not-hex") == RevisionInfo()
    assert decode_revision("-a020d3") == RevisionInfo()
    # Old-style number outside the table (old ARM kernels print 0000 on any board).
    assert decode_revision("0000") == RevisionInfo(code="0000", new_style=False)
    # New-style with an unknown type (0xff), SoC 9 and memory "other" (7): those fields are None.
    assert decode_revision("f09ff0") == RevisionInfo("f09ff0", True, None, None, None, "Sony UK", "1.0")


# --- uptime --------------------------------------------------------------------------------------------


def test_parse_uptime() -> None:
    # proc(5): "two numbers: the uptime of the system (seconds) and the time spent in the idle process".
    assert parse_uptime("350735.47 234388.90\n") == 350735.47
    assert parse_uptime("") is None
    assert parse_uptime("abc def") is None
    assert parse_uptime("-5 0") is None


# --- reader --------------------------------------------------------------------------------------------


def write_pi(tree: FixtureTree, cpuinfo: str, kernel: str, uptime: str = "1234.56 4000.00\n") -> None:
    tree.write("proc/cpuinfo", fixture_text(cpuinfo))
    tree.write("proc/sys/kernel/osrelease", kernel + "\n")
    tree.write("proc/uptime", uptime)


def test_reader_pi3bplus_arm64(tree: FixtureTree) -> None:
    # Kernel release as named on the fixture's board line.
    write_pi(tree, "cpuinfo/pi3bplus_arm64_a020d3.txt", "6.6.31+rpt-rpi-v8")
    gaps = Gaps()
    reader = BoardReader(Root(tree.base))
    assert reader.sample(gaps, 0.0) == {
        "board": {
            "model": "Raspberry Pi 3 Model B Plus Rev 1.3",
            "revision": "a020d3",
            "type": "3B+",
            "soc": "BCM2837",
            "memory_bytes": 1073741824,
            "manufacturer": "Sony UK",
            "kernel": "6.6.31+rpt-rpi-v8",
            "uptime_s": 1234.56,
            "is_raspberry_pi": True,
        }
    }
    assert gaps.reasons == {}
    assert reader.serial == "0000000056ee0f6d"
    info = reader.board_info()
    assert info.pcb_revision == "1.3"
    assert info.camera_buffers_from_cma is True


def test_reader_prefers_device_tree_model(tree: FixtureTree) -> None:
    # 4.14 kernels print no Model line in cpuinfo; the device tree has it.
    write_pi(tree, "cpuinfo/pi3bplus_a020d3_armv7l_4.14.txt", "4.14.30-v7+")
    tree.write("proc/device-tree/model", dt_model_bytes())
    sample = BoardReader(Root(tree.base)).sample(Gaps(), 0.0)["board"]
    assert sample["model"] == "Raspberry Pi 3 Model B Plus Rev 1.3"
    assert sample["type"] == "3B+"
    assert sample["kernel"] == "4.14.30-v7+"


def test_reader_pizerow_without_model_line(tree: FixtureTree) -> None:
    write_pi(tree, "cpuinfo/pizerow_9000c1_armv6l_4.9.txt", "4.9.41+")
    gaps = Gaps()
    reader = BoardReader(Root(tree.base))
    sample = reader.sample(gaps, 0.0)["board"]
    # Still recognised as a Pi: BCM2835 hardware line plus a decodable revision code.
    assert sample["is_raspberry_pi"] is True
    assert sample["model"] is None
    assert "board.model" in gaps.reasons
    assert (sample["type"], sample["soc"], sample["memory_bytes"]) == ("Zero W", "BCM2835", 512 * MIB)
    assert reader.board_info().camera_buffers_from_cma is True
    assert reader.serial == "0000000068bd6366"


def test_reader_pi4_32bit(tree: FixtureTree) -> None:
    write_pi(tree, "cpuinfo/pi4b_rev1.1_a03111_armv7l_4.19.txt", "4.19.118-v7l+")
    sample = BoardReader(Root(tree.base)).sample(Gaps(), 0.0)["board"]
    assert sample["model"] == "Raspberry Pi 4 Model B Rev 1.1"
    assert (sample["type"], sample["soc"], sample["memory_bytes"]) == ("4B", "BCM2711", GIB)


def test_reader_pi5_from_device_tree_only(tree: FixtureTree) -> None:
    # A mainline-style kernel (no Revision/Serial/Model lines in cpuinfo): model and SoC from the device
    # tree (strings from revision-codes.adoc), serial from serial-number.
    tree.write("proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 108.00\n")
    tree.write("proc/device-tree/model", b"Raspberry Pi 5 Model B Rev 1.0\0")
    tree.write("proc/device-tree/compatible", b"raspberrypi,5-model-b\0brcm,bcm2712\0")
    tree.write("proc/device-tree/serial-number", b"1234abcd5678ef90\0")
    gaps = Gaps()
    reader = BoardReader(Root(tree.base))
    sample = reader.sample(gaps, 0.0)["board"]
    assert sample["is_raspberry_pi"] is True
    assert sample["soc"] == "BCM2712"
    assert sample["type"] is None
    assert "Revision" in gaps.reasons["board.type"]
    assert reader.serial == "1234abcd5678ef90"
    assert reader.board_info().camera_buffers_from_cma is False


def test_reader_this_x86_machine() -> None:
    gaps = Gaps()
    reader = BoardReader(Root(Path("/")))
    sample = reader.sample(gaps, 0.0)["board"]
    assert set(sample) == SAMPLE_KEYS
    assert sample["is_raspberry_pi"] is False
    for key in ("revision", "type", "soc", "memory_bytes", "manufacturer"):
        assert sample[key] is None
        assert "not a Raspberry Pi" in gaps.reasons[f"board.{key}"]
    assert sample["kernel"] == os.uname().release
    assert isinstance(sample["uptime_s"], float)
    assert sample["uptime_s"] > 0


def test_reader_non_pi_arm_with_revision_0000(tree: FixtureTree) -> None:
    # 32-bit ARM kernels print Hardware/Revision/Serial for every board; a non-Pi must not decode.
    tree.write("proc/cpuinfo", "Hardware\t: Allwinner sun8i Family\nRevision\t: 0010\nSerial\t\t: 0\n")
    sample = BoardReader(Root(tree.base)).sample(Gaps(), 0.0)["board"]
    assert sample["is_raspberry_pi"] is False
    assert sample["type"] is None
    assert BoardReader(Root(tree.base)).serial is None


def test_reader_empty_tree(tree: FixtureTree) -> None:
    gaps = Gaps()
    sample = BoardReader(Root(tree.base)).sample(gaps, 0.0)["board"]
    assert set(sample) == SAMPLE_KEYS
    assert sample["is_raspberry_pi"] is False
    assert all(sample[key] is None for key in SAMPLE_KEYS - {"is_raspberry_pi"})
    assert "not found" in gaps.reasons["board.kernel"]
    assert "not found" in gaps.reasons["board.uptime_s"]
    assert "board.model" in gaps.reasons


def test_reader_garbage_files(tree: FixtureTree) -> None:
    tree.write("proc/cpuinfo", b"\x00\xff\xfe garbage\nRevision : zzzz\n")
    tree.write("proc/device-tree/model", b"\xff\xff")
    tree.write("proc/sys/kernel/osrelease", "")
    tree.write("proc/uptime", "garbage\n")
    gaps = Gaps()
    sample = BoardReader(Root(tree.base)).sample(gaps, 0.0)["board"]
    assert sample["is_raspberry_pi"] is False
    assert sample["kernel"] is None
    assert sample["uptime_s"] is None
    assert gaps.reasons["board.uptime_s"] == "/proc/uptime: unexpected format"
    assert "empty" in gaps.reasons["board.kernel"]


def test_reader_permission_denied(tree: FixtureTree, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pi(tree, "cpuinfo/pi3bplus_arm64_a020d3.txt", "6.6.31+rpt-rpi-v8")
    deny_reads(monkeypatch, tree.base / "proc/uptime")
    gaps = Gaps()
    sample = BoardReader(Root(tree.base)).sample(gaps, 0.0)["board"]
    assert sample["uptime_s"] is None
    assert "permission denied" in gaps.reasons["board.uptime_s"]
    assert sample["type"] == "3B+"


def test_static_facts_read_once_uptime_every_sample(tree: FixtureTree) -> None:
    write_pi(tree, "cpuinfo/pi3bplus_arm64_a020d3.txt", "6.6.31+rpt-rpi-v8", "10.00 5.00\n")
    reader = BoardReader(Root(tree.base))
    first = reader.sample(Gaps(), 0.0)["board"]
    tree.write("proc/cpuinfo", fixture_text("cpuinfo/pizerow_9000c1_armv6l_4.9.txt"))
    tree.write("proc/sys/kernel/osrelease", "9.9.9\n")
    tree.write("proc/uptime", "20.50 6.00\n")
    gaps = Gaps()
    second = reader.sample(gaps, 1.0)["board"]
    assert second["type"] == first["type"] == "3B+"
    assert second["kernel"] == "6.6.31+rpt-rpi-v8"
    assert (first["uptime_s"], second["uptime_s"]) == (10.0, 20.5)
    assert reader.board_info() is reader.board_info()


def test_cached_reasons_replayed_into_every_sample(tree: FixtureTree) -> None:
    write_pi(tree, "cpuinfo/pizerow_9000c1_armv6l_4.9.txt", "4.9.41+")
    reader = BoardReader(Root(tree.base))
    reader.sample(Gaps(), 0.0)
    gaps = Gaps()
    reader.sample(gaps, 1.0)
    assert "board.model" in gaps.reasons
    # Reasons for fields outside the sample (serial) stay in board_info() only.
    assert not any(key == "board.serial" for key in gaps.reasons)
