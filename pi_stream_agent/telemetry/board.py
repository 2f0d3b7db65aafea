"""Which board this is: model, revision code, SoC, memory, kernel, uptime.

What a SoC means for cameras and encoding is :mod:`pi_stream_agent.soc`'s to say (whether this Pi has a
hardware H.264 encoder is decided there, from the SoC read here and the V4L2 node scan).

Everything except uptime is fixed for the life of the process, so :class:`BoardReader` reads it once and
replays the cached values (and the reasons for missing ones) into every sample. Revision codes are decoded
from the bit layout in the Raspberry Pi documentation (revision-codes.adoc); the table of old-style codes
(0002-0015, first-generation boards) is copied from the same page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error
from pi_stream_agent.soc import camera_buffers_from_cma

# New-style revision code fields (NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR).
_NEW_STYLE_FLAG = 1 << 23

_TYPES: dict[int, str] = {
    0x00: "A",
    0x01: "B",
    0x02: "A+",
    0x03: "B+",
    0x04: "2B",
    0x05: "Alpha",
    0x06: "CM1",
    0x08: "3B",
    0x09: "Zero",
    0x0A: "CM3",
    0x0C: "Zero W",
    0x0D: "3B+",
    0x0E: "3A+",
    0x10: "CM3+",
    0x11: "4B",
    0x12: "Zero 2 W",
    0x13: "400",
    0x14: "CM4",
    0x15: "CM4S",
    0x17: "5",
    0x18: "CM5",
    0x19: "500/500+",
    0x1A: "CM5 Lite",
    0x1B: "CM0",
}

_SOCS: dict[int, str] = {0: "BCM2835", 1: "BCM2836", 2: "BCM2837", 3: "BCM2711", 4: "BCM2712"}

_MANUFACTURERS: dict[int, str] = {
    0: "Sony UK",
    1: "Egoman",
    2: "Embest",
    3: "Sony Japan",
    4: "Embest",
    5: "Stadium",
}

_MIB = 1024 * 1024

# Old-style codes: type, PCB revision, memory (None where the docs list two sizes), manufacturer.
# Every one of these boards is a BCM2835.
_OLD_STYLE: dict[str, tuple[str, str, int | None, str]] = {
    "0002": ("B", "1.0", 256 * _MIB, "Egoman"),
    "0003": ("B", "1.0", 256 * _MIB, "Egoman"),
    "0004": ("B", "2.0", 256 * _MIB, "Sony UK"),
    "0005": ("B", "2.0", 256 * _MIB, "Qisda"),
    "0006": ("B", "2.0", 256 * _MIB, "Egoman"),
    "0007": ("A", "2.0", 256 * _MIB, "Egoman"),
    "0008": ("A", "2.0", 256 * _MIB, "Sony UK"),
    "0009": ("A", "2.0", 256 * _MIB, "Qisda"),
    "000d": ("B", "2.0", 512 * _MIB, "Egoman"),
    "000e": ("B", "2.0", 512 * _MIB, "Sony UK"),
    "000f": ("B", "2.0", 512 * _MIB, "Egoman"),
    "0010": ("B+", "1.2", 512 * _MIB, "Sony UK"),
    "0011": ("CM1", "1.0", 512 * _MIB, "Sony UK"),
    "0012": ("A+", "1.1", 256 * _MIB, "Sony UK"),
    "0013": ("B+", "1.2", 512 * _MIB, "Embest"),
    "0014": ("CM1", "1.0", 512 * _MIB, "Embest"),
    "0015": ("A+", "1.1", None, "Embest"),
}

# The keys of the sample fragment; BoardInfo.reasons may also explain fields only /info shows (serial).
_SAMPLE_KEYS = frozenset(
    {
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
)

_NOT_A_PI = "not a Raspberry Pi (no Raspberry Pi model in the device tree or /proc/cpuinfo)"


@dataclass(frozen=True)
class CpuInfo:
    """The board lines of ``/proc/cpuinfo`` (Raspberry Pi kernels print them after the per-CPU blocks)."""

    revision: str | None = None
    serial: str | None = None
    model: str | None = None
    hardware: str | None = None


@dataclass(frozen=True)
class RevisionInfo:
    """A decoded revision code; every field is None when the code is unknown or malformed."""

    code: str | None = None
    new_style: bool | None = None
    type: str | None = None
    soc: str | None = None
    memory_bytes: int | None = None
    manufacturer: str | None = None
    revision: str | None = None  # PCB revision as the docs write it, e.g. "1.3"


@dataclass(frozen=True)
class BoardInfo:
    """Static facts about the machine, for the API's ``/info`` endpoint. ``reasons`` explains each None."""

    is_raspberry_pi: bool
    model: str | None
    revision: str | None
    pcb_revision: str | None
    type: str | None
    soc: str | None
    memory_bytes: int | None
    manufacturer: str | None
    serial: str | None
    kernel: str | None
    camera_buffers_from_cma: bool | None
    reasons: dict[str, str] = field(default_factory=dict)


def parse_device_tree_model(raw: bytes | str) -> str | None:
    """``/proc/device-tree/model``: NUL-terminated, no newline (``Raspberry Pi 5 Model B Rev 1.0\\0``)."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    model = text.split("\0", 1)[0].strip()
    return model or None


def parse_device_tree_strings(raw: bytes | str) -> list[str]:
    """A NUL-separated device-tree string list, e.g. ``raspberrypi,5-model-b\\0brcm,bcm2712\\0``."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    return [part.strip() for part in text.split("\0") if part.strip()]


def parse_cpuinfo(text: str) -> CpuInfo:
    """Pick the Revision/Serial/Model/Hardware lines (``Key<TABs>: value``) out of ``/proc/cpuinfo``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        # Only the board lines; per-CPU keys ("model name", "processor"…) repeat and are of no use here.
        if key in ("Revision", "Serial", "Model", "Hardware"):
            value = value.strip()
            if value:
                values[key] = value
    revision = values.get("Revision")
    serial = values.get("Serial")
    return CpuInfo(
        revision=revision.lower() if revision else None,
        serial=serial.lower() if serial else None,
        model=values.get("Model"),
        hardware=values.get("Hardware"),
    )


def decode_revision(code: str | None) -> RevisionInfo:
    """Decode a ``/proc/cpuinfo`` Revision code (``a020d3``, ``902120``, ``d04170``, old-style ``000e``)."""
    if not code:
        return RevisionInfo()
    normalised = code.strip().lower()
    try:
        value = int(normalised, 16)
    except ValueError:
        return RevisionInfo()
    if value < 0:
        return RevisionInfo()
    if value & _NEW_STYLE_FLAG:
        memory_index = (value >> 20) & 0x7
        # 7 means "other": the size is only in a firmware parameter, not in the code.
        memory = 256 * _MIB << memory_index if memory_index <= 6 else None
        return RevisionInfo(
            code=normalised,
            new_style=True,
            type=_TYPES.get((value >> 4) & 0xFF),
            soc=_SOCS.get((value >> 12) & 0xF),
            memory_bytes=memory,
            manufacturer=_MANUFACTURERS.get((value >> 16) & 0xF),
            revision=f"1.{value & 0xF}",
        )
    # Old style: a sequential number; over-volted boards carry a leading "1000" (bit 24) on top of it.
    old = _OLD_STYLE.get(f"{value & 0xFFFF:04x}")
    if old is None:
        return RevisionInfo(code=normalised, new_style=False)
    board_type, pcb_revision, memory_bytes, manufacturer = old
    return RevisionInfo(
        code=normalised,
        new_style=False,
        type=board_type,
        soc="BCM2835",
        memory_bytes=memory_bytes,
        manufacturer=manufacturer,
        revision=pcb_revision,
    )


def soc_from_compatible(compatible: list[str]) -> str | None:
    """``brcm,bcm2712`` in the device-tree ``compatible`` list → ``BCM2712`` (if cpuinfo has no Revision)."""
    for entry in compatible:
        vendor, _, chip = entry.partition(",")
        if vendor == "brcm" and chip.startswith("bcm27"):
            return chip.upper()
    return None


def parse_uptime(text: str) -> float | None:
    """``/proc/uptime``: ``<seconds since boot> <idle seconds summed over CPUs>``."""
    fields = text.split()
    if not fields:
        return None
    try:
        seconds = float(fields[0])
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def parse_osrelease(text: str) -> str | None:
    """``/proc/sys/kernel/osrelease``: one line such as ``6.6.31+rpt-rpi-v8``."""
    release = text.strip()
    return release or None


def _meaningful_serial(serial: str | None) -> str | None:
    # Some ARM kernels print an all-zero Serial for boards without one: useless as an identity.
    if not serial or not serial.strip("0"):
        return None
    return serial


class BoardReader:
    """Reads the static board facts once (lazily) and uptime on every sample."""

    def __init__(self, root: Root) -> None:
        self._root = root
        self._info: BoardInfo | None = None

    @property
    def serial(self) -> str | None:
        """Board serial (cpuinfo ``Serial``, else device-tree ``serial-number``): the agent's stable id."""
        return self.board_info().serial

    def board_info(self) -> BoardInfo:
        if self._info is None:
            self._info = self._read_static()
        return self._info

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        info = self.board_info()
        for key, reason in info.reasons.items():
            if key in _SAMPLE_KEYS:
                gaps.note(f"board.{key}", reason)
        uptime: float | None = None
        try:
            uptime = parse_uptime(self._root.read_text("proc/uptime"))
            if uptime is None:
                gaps.note("board.uptime_s", "/proc/uptime: unexpected format")
        except OSError as exc:
            gaps.note_os_error("board.uptime_s", exc, "/proc/uptime")
        return {
            "board": {
                "model": info.model,
                "revision": info.revision,
                "type": info.type,
                "soc": info.soc,
                "memory_bytes": info.memory_bytes,
                "manufacturer": info.manufacturer,
                "kernel": info.kernel,
                "uptime_s": uptime,
                "is_raspberry_pi": info.is_raspberry_pi,
            }
        }

    def _read_bytes(self, relative: str, reasons: dict[str, str], key: str | None) -> bytes | None:
        try:
            return self._root.read_bytes(relative)
        except OSError as exc:
            if key is not None:
                reasons.setdefault(key, describe_os_error(exc, "/" + relative))
            return None

    def _read_static(self) -> BoardInfo:
        reasons: dict[str, str] = {}

        raw_model = self._read_bytes("proc/device-tree/model", reasons, None)
        dt_model = parse_device_tree_model(raw_model) if raw_model is not None else None
        raw_compatible = self._read_bytes("proc/device-tree/compatible", reasons, None)
        compatible = parse_device_tree_strings(raw_compatible) if raw_compatible is not None else []

        raw_cpuinfo = self._read_bytes("proc/cpuinfo", reasons, "revision")
        cpuinfo = parse_cpuinfo(raw_cpuinfo.decode("utf-8", errors="replace")) if raw_cpuinfo else CpuInfo()

        model = dt_model or cpuinfo.model
        revision = decode_revision(cpuinfo.revision)
        hardware = cpuinfo.hardware or ""
        is_pi = bool(
            (model and model.startswith("Raspberry Pi"))
            or any(entry.startswith("raspberrypi,") for entry in compatible)
            # Old kernels without a device tree model: a BCM27xx/BCM28xx SoC plus a code we could decode.
            or (hardware.startswith(("BCM27", "BCM28")) and revision.type is not None)
        )

        serial = _meaningful_serial(cpuinfo.serial)
        if serial is None:
            raw_serial = self._read_bytes("proc/device-tree/serial-number", reasons, None)
            serial = _meaningful_serial(parse_device_tree_model(raw_serial) if raw_serial else None)

        raw_release = self._read_bytes("proc/sys/kernel/osrelease", reasons, "kernel")
        kernel = parse_osrelease(raw_release.decode("utf-8", errors="replace")) if raw_release else None
        if kernel is None:
            reasons.setdefault("kernel", "/proc/sys/kernel/osrelease is empty")

        if model is None:
            reasons["model"] = "no model in /proc/device-tree/model or the Model line of /proc/cpuinfo"
        if serial is None:
            reasons["serial"] = "no Serial line in /proc/cpuinfo and no /proc/device-tree/serial-number"

        if not is_pi:
            # A decoded Revision on a non-Pi ARM board (old ARM kernels print "Revision : 0000" or a
            # vendor number) would be a lie, so every Pi-specific fact is withheld.
            for key in ("revision", "type", "soc", "memory_bytes", "manufacturer"):
                reasons[key] = _NOT_A_PI
            return BoardInfo(
                is_raspberry_pi=False,
                model=model,
                revision=None,
                pcb_revision=None,
                type=None,
                soc=None,
                memory_bytes=None,
                manufacturer=None,
                serial=serial,
                kernel=kernel,
                camera_buffers_from_cma=None,
                reasons=reasons,
            )

        soc = revision.soc or soc_from_compatible(compatible)
        if cpuinfo.revision is None:
            unknown = "no Revision line in /proc/cpuinfo (not a Raspberry Pi OS kernel)"
            reasons.setdefault("revision", unknown)
        elif revision.type is None:
            unknown = f"revision code {cpuinfo.revision!r} is not a known Raspberry Pi code"
        else:
            unknown = ""
        for key, value in (
            ("type", revision.type),
            ("memory_bytes", revision.memory_bytes),
            ("manufacturer", revision.manufacturer),
            ("soc", soc),
        ):
            if value is None:
                reasons.setdefault(key, unknown or f"revision code {cpuinfo.revision!r} does not say")
        return BoardInfo(
            is_raspberry_pi=True,
            model=model,
            revision=cpuinfo.revision,
            pcb_revision=revision.revision,
            type=revision.type,
            soc=soc,
            memory_bytes=revision.memory_bytes,
            manufacturer=revision.manufacturer,
            serial=serial,
            kernel=kernel,
            camera_buffers_from_cma=camera_buffers_from_cma(soc),
            reasons=reasons,
        )
