"""VideoCore firmware values (SoC temperature, core voltage, ARM/core/H.264 clocks, throttle word) without
a process per reading.

The firmware answers "gencmd" text commands. :class:`FirmwareReader` sends exactly these command strings
through a :class:`GencmdTransport`, and expects the firmware's reply text (what ``vcgencmd`` prints):

=======================  ==========================================================================
command                  reply (real samples)
=======================  ==========================================================================
``measure_temp``         ``temp=54.0'C``
``measure_volts core``   ``volt=1.2000V``
``measure_clock arm``    ``frequency(48)=1500398464`` (id 45 on BCM2835/6/7, 48 on BCM2711, 0 on Pi 5)
``measure_clock core``   ``frequency(1)=500000992``
``measure_clock h264``   ``frequency(28)=300000000``
``get_throttled``        ``throttled=0x50005``
=======================  ==========================================================================

A command the firmware refuses is answered with ``error=1 error_msg="Command not registered"`` (or
``error=2 error_msg="Invalid arguments"``); a transport may either return that text or raise
:class:`GencmdError`. The simulated Pi supplies its own transport answering the same strings.

Transports, chosen automatically when none is given:

1. :class:`MailboxTransport` — an ioctl on ``/dev/vcio_gencmd`` (kernels from 2026, gencmd tag only) or
   ``/dev/vcio``: one syscall per value, no fork. Only on the real root, and only if the device opens
   (Pi OS: group ``video``, or root) and answers.
2. :class:`VcgencmdTransport` — ``vcgencmd`` from PATH: a fork per value, so callers should run
   :meth:`FirmwareReader.sample` off the event loop when :attr:`FirmwareReader.needs_subprocess` is true.
3. None: the temperature still comes from ``/sys/class/thermal/thermal_zone0/temp``, the throttle word
   from the legacy ``/sys/devices/platform/soc/soc:firmware/get_throttled`` where the kernel has it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error
from pi_stream_agent.telemetry.throttle import parse_get_throttled


class GencmdError(Exception):
    """A gencmd query failed. ``transport_failed`` is True when the transport itself broke (device error,
    timeout, missing program), so further queries in the same sample are pointless; False when the
    firmware merely refused this one command."""

    def __init__(self, message: str, *, transport_failed: bool = False) -> None:
        super().__init__(message)
        self.transport_failed = transport_failed


class GencmdTransport(Protocol):
    """Sends one gencmd command and returns the firmware's reply text; raises :class:`GencmdError`."""

    name: str

    def query(self, command: str) -> str: ...


# --------------------------------------------------------------------------------------------------------
# Pure parsers


@dataclass(frozen=True)
class GencmdReply:
    """One gencmd reply. ``temp=39.2'C`` → name ``temp``, value ``39.2'C``; ``frequency(48)=1500398464`` →
    name ``frequency``, index 48; ``error=2 error_msg="Invalid arguments"`` → error_code 2, error_message."""

    name: str | None = None
    index: int | None = None
    value: str | None = None
    error_code: int | None = None
    error_message: str | None = None

    @property
    def is_error(self) -> bool:
        return self.error_code is not None


def _parse_error_line(line: str) -> GencmdReply:
    # error=1 error_msg="Command not registered"
    code_text, _, rest = line[len("error=") :].partition(" ")
    try:
        code = int(code_text)
    except ValueError:
        code = -1
    message: str | None = None
    _, sep, quoted = rest.partition("error_msg=")
    if sep:
        message = quoted.strip().strip('"')
    return GencmdReply(error_code=code, error_message=message)


def parse_gencmd_reply(text: str) -> GencmdReply:
    """Parse a reply as the firmware (or ``vcgencmd``) prints it. Tolerates the CLI's
    ``vc_gencmd_read_response returned -1`` line and a label before the key (``h264:\\tfrequency(28)=…``,
    ``Throttled flag  : throttled=0x0``). Never raises; an unrecognised text gives an empty reply."""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("vc_gencmd_read_response"):
            continue
        error_at = line.find("error=")
        if error_at == 0 or (error_at > 0 and line[error_at - 1] in " \t"):
            # Also after a label: raspinfo prints "Camera : vc_gencmd_read_response returned -1 error=1 …".
            return _parse_error_line(line[error_at:])
        key, sep, value = line.partition("=")
        if not sep or not key.split():
            continue
        key = key.split()[-1]
        index: int | None = None
        name, paren, rest = key.partition("(")
        if paren:
            with contextlib.suppress(ValueError):
                index = int(rest.rstrip(")"))
        return GencmdReply(name=name, index=index, value=value.strip())
    return GencmdReply()


def _finite(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_temperature_c(text: str) -> float | None:
    """``temp=39.2'C`` → 39.2."""
    reply = parse_gencmd_reply(text)
    if reply.name != "temp" or reply.value is None:
        return None
    return _finite(reply.value.removesuffix("C").removesuffix("'"))


def parse_volts(text: str) -> float | None:
    """``volt=1.2000V`` → 1.2."""
    reply = parse_gencmd_reply(text)
    if reply.name != "volt" or reply.value is None or not reply.value.endswith("V"):
        return None
    return _finite(reply.value[:-1])


def parse_frequency_hz(text: str) -> int | None:
    """``frequency(48)=1500398464`` → 1500398464. The clock id differs by SoC (Pi 5 prints
    ``frequency(0)=…`` for the ARM), so only the value after ``=`` is used."""
    reply = parse_gencmd_reply(text)
    if reply.name != "frequency" or reply.value is None:
        return None
    try:
        hz = int(reply.value)
    except ValueError:
        return None
    return hz if hz >= 0 else None


def parse_thermal_millidegrees(text: str) -> float | None:
    """``/sys/class/thermal/thermal_zone0/temp``: ``45464`` (m°C) → 45.464."""
    try:
        return int(text.strip()) / 1000.0
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------------
# The mailbox: buffer packing as pure functions, then the transport.
#
# Layout as built by gencmd() in raspberrypi/utils vcgencmd/vcgencmd.c (read at commit 1117a75, which has
# MAX_STRING 1024; utils commit 41d0d40 raised it to 4096 because `get_config int` overflowed 1024 bytes):
#   p[0] = total size in bytes, p[1] = 0 (process request; the kernel writes 0x80000000 on success),
#   p[2] = GET_GENCMD_RESULT (0x00030080), p[3] = MAX_STRING (value buffer size),
#   p[4] = 0 (request length; firmware puts the response length there), p[5] = 0 (firmware's error code),
#   p[6..] = NUL-terminated command, replaced by the NUL-terminated reply (byte offset 24),
#   then one end tag 0: (MAX_STRING/4 + 7) words = 4124 bytes. vcgencmd returns p[5] as its exit status.
# raspberrypi/linux drivers/char/broadcom/vcio.c copies p[0] bytes in, passes &p[2], size-12 to
# rpi_firmware_property_list, sets p[1] = RPI_FIRMWARE_STATUS_SUCCESS and copies the buffer back; its
# /dev/vcio_gencmd node rejects any tag but 0x00030080 (EPERM).

GET_GENCMD_RESULT = 0x00030080
GENCMD_MAX_STRING = 4096
GENCMD_TEXT_OFFSET = 24
GENCMD_BUFFER_BYTES = (GENCMD_MAX_STRING // 4 + 7) * 4
MAILBOX_STATUS_SUCCESS = 0x80000000
MAILBOX_DEVICES = ("dev/vcio_gencmd", "dev/vcio")
_VCIO_MAJOR = 100
_HEADER = struct.Struct("<6I")  # the Pi's ARM cores run little-endian; so does the VideoCore's ABI


def mailbox_ioctl_request(pointer_size: int) -> int:
    """``_IOWR(100, 0, char *)`` per asm-generic/ioctl.h: dir(read|write = 3) << 30 | size << 16 |
    type << 8 | nr. ``size`` is ``sizeof(char *)`` of the caller: 0xC0086400 for 64-bit userland,
    0xC0046400 for 32-bit (the kernel's compat handler takes the latter from 32-bit processes)."""
    return (3 << 30) | (pointer_size << 16) | (_VCIO_MAJOR << 8) | 0


def pack_gencmd_request(command: str, max_string: int = GENCMD_MAX_STRING) -> bytearray:
    """The property buffer carrying ``command``. Raises ValueError for a command that does not fit
    (vcgencmd's own limit: length + NUL < MAX_STRING) or is not ASCII."""
    encoded = command.encode("ascii")
    if len(encoded) + 1 >= max_string:
        raise ValueError(f"gencmd command too long ({len(encoded)} bytes)")
    size = (max_string // 4 + 7) * 4
    buffer = bytearray(size)
    _HEADER.pack_into(buffer, 0, size, 0, GET_GENCMD_RESULT, max_string, 0, 0)
    buffer[GENCMD_TEXT_OFFSET : GENCMD_TEXT_OFFSET + len(encoded)] = encoded
    # The NUL after the command and the end tag in the last word are already zero.
    return buffer


@dataclass(frozen=True)
class MailboxReply:
    """What came back: the kernel's request status, the firmware's gencmd error code, the reply text."""

    status: int
    error_code: int
    text: str

    @property
    def ok(self) -> bool:
        return self.status == MAILBOX_STATUS_SUCCESS and self.error_code == 0


def unpack_gencmd_response(
    buffer: bytes | bytearray, max_string: int = GENCMD_MAX_STRING
) -> MailboxReply | None:
    """Read a buffer returned by the ioctl; None if it is too short to be one."""
    if len(buffer) < GENCMD_TEXT_OFFSET:
        return None
    _, status, _, _, _, error_code = _HEADER.unpack_from(buffer, 0)
    end = GENCMD_TEXT_OFFSET + max_string
    nul = buffer.find(b"\0", GENCMD_TEXT_OFFSET, end)
    text = bytes(buffer[GENCMD_TEXT_OFFSET : end if nul < 0 else nul])
    # The firmware's error codes are small signed ints stored in a u32 (vcgencmd prints them with %d).
    if error_code >= 0x80000000:
        error_code -= 0x100000000
    return MailboxReply(status, error_code, text.decode("ascii", errors="replace").strip())


class MailboxTransport:
    """gencmd through the VideoCore mailbox ioctl. The device stays open between queries."""

    name = "mailbox"
    needs_subprocess = False

    def __init__(self, fd: int, device: str) -> None:
        self._fd: int | None = fd
        self.device = device
        self._request = mailbox_ioctl_request(struct.calcsize("P"))

    @classmethod
    def open(cls, root: Root) -> tuple[MailboxTransport | None, str | None]:
        """Open the first usable device below ``root``: (transport, None) or (None, why not)."""
        reasons: list[str] = []
        for relative in MAILBOX_DEVICES:
            try:
                fd = os.open(root.path(relative), os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                reasons.append(describe_os_error(exc, "/" + relative))
                continue
            return cls(fd, "/" + relative), None
        return None, "; ".join(reasons)

    def query(self, command: str) -> str:
        if self._fd is None:
            raise GencmdError("mailbox closed", transport_failed=True)
        try:
            buffer = pack_gencmd_request(command)
        except ValueError as exc:
            raise GencmdError(str(exc)) from exc
        try:
            fcntl.ioctl(self._fd, self._request, buffer, True)
        except OSError as exc:
            raise GencmdError(describe_os_error(exc, f"{self.device} ioctl"), transport_failed=True) from exc
        reply = unpack_gencmd_response(buffer)
        if reply is None or reply.status != MAILBOX_STATUS_SUCCESS:
            status = "short buffer" if reply is None else f"status 0x{reply.status:08x}"
            raise GencmdError(f"mailbox request failed ({status})", transport_failed=True)
        if reply.error_code != 0:
            raise GencmdError(f"firmware refused {command!r}: {reply.text or reply.error_code}")
        return reply.text

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class VcgencmdTransport:
    """``vcgencmd <args>``: a fork per query, the fallback when the mailbox cannot be opened."""

    name = "vcgencmd"
    needs_subprocess = True

    def __init__(self, executable: str, timeout_s: float = 3.0) -> None:
        self.executable = executable
        self.timeout_s = timeout_s

    @classmethod
    def find(cls) -> VcgencmdTransport | None:
        executable = shutil.which("vcgencmd")
        return None if executable is None else cls(executable)

    def query(self, command: str) -> str:
        try:
            done = subprocess.run(
                [self.executable, *command.split()],
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GencmdError(f"vcgencmd {command} timed out", transport_failed=True) from exc
        except OSError as exc:
            raise GencmdError(describe_os_error(exc, self.executable), transport_failed=True) from exc
        output = done.stdout.strip()
        if output.startswith("Can't open device file"):
            # vcgencmd prints this on stdout when /dev/vcio(_gencmd) is not accessible (no `video` group).
            raise GencmdError(output.splitlines()[0], transport_failed=True)
        if parse_gencmd_reply(output).is_error or done.returncode != 0:
            detail = output or done.stderr.strip() or f"exit status {done.returncode}"
            raise GencmdError(f"vcgencmd {command}: {detail.splitlines()[-1]}")
        return output

    def close(self) -> None:
        """Nothing held open."""


# --------------------------------------------------------------------------------------------------------
# The reader

THERMAL_ZONE = "sys/class/thermal/thermal_zone0"
LEGACY_GET_THROTTLED = "sys/devices/platform/soc/soc:firmware/get_throttled"
_SOC_THERMAL_TYPE = "cpu-thermal"

# (fragment key, gencmd command, parser) in the order they are asked.
_QUERIES: tuple[tuple[str, str, Callable[[str], float | int | None]], ...] = (
    ("soc_temperature_c", "measure_temp", parse_temperature_c),
    ("core_voltage_v", "measure_volts core", parse_volts),
    ("h264_clock_hz", "measure_clock h264", parse_frequency_hz),
    ("arm_clock_hz", "measure_clock arm", parse_frequency_hz),
    ("core_clock_hz", "measure_clock core", parse_frequency_hz),
)
FIRMWARE_KEYS: tuple[str, ...] = (*(key for key, _, _ in _QUERIES), "firmware")


def _ask(
    transport: GencmdTransport, command: str, parse: Callable[[str], float | int | None]
) -> tuple[float | int | None, str | None, bool]:
    """One query: (value, reason when None, whether the transport itself failed)."""
    try:
        text = transport.query(command)
    except GencmdError as exc:
        return None, str(exc), exc.transport_failed
    except Exception as exc:  # noqa: BLE001 - a foreign transport must not take the sample down
        return None, f"{transport.name} {command}: {exc.__class__.__name__}: {exc}", False
    value = parse(text)
    if value is not None:
        return value, None, False
    reply = parse_gencmd_reply(text)
    if reply.is_error:
        return None, f"firmware refused {command!r}: {reply.error_message or reply.error_code}", False
    return None, f"unexpected reply to {command!r}: {text.strip()[:80]!r}", False


@dataclass(frozen=True)
class ThrottleReading:
    """A raw throttle word and where it came from (``mailbox``, ``vcgencmd``, ``sysfs``, a simulation)."""

    raw: int
    source: str


class FirmwareReader:
    """Serves the firmware fragment and the raw throttle word for the ThrottleMonitor."""

    def __init__(self, root: Root, transport: GencmdTransport | None = None) -> None:
        self._root = root
        self._transport = transport
        self._owns_transport = False
        self._no_transport_reason: str | None = None
        self._selected = transport is not None
        self._thermal_is_soc: bool | None = None
        self._thermal_reason = ""

    @property
    def transport(self) -> GencmdTransport | None:
        self._select()
        return self._transport

    @property
    def needs_subprocess(self) -> bool:
        """True when a sample forks (``vcgencmd``): run :meth:`sample` in an executor then."""
        return bool(getattr(self.transport, "needs_subprocess", False))

    def _select(self) -> None:
        """Pick a transport once (the devices and PATH do not change while the agent runs)."""
        if self._selected:
            return
        self._selected = True
        reasons: list[str] = []
        if self._root.is_real:
            mailbox, why = MailboxTransport.open(self._root)
            if mailbox is not None:
                try:
                    # Probe once: a node may open but refuse the ioctl (old kernel, seccomp, wrong size).
                    mailbox.query("get_throttled")
                except GencmdError as exc:
                    if exc.transport_failed:
                        mailbox.close()
                        reasons.append(str(exc))
                        mailbox = None
                if mailbox is not None:
                    self._transport, self._owns_transport = mailbox, True
                    return
            elif why:
                reasons.append(why)
        else:
            reasons.append("VideoCore mailbox not used below a non-/ root")
        vcgencmd = VcgencmdTransport.find()
        if vcgencmd is not None:
            self._transport, self._owns_transport = vcgencmd, True
            return
        reasons.append("vcgencmd not found on PATH")
        self._no_transport_reason = "no VideoCore access: " + "; ".join(reasons)

    def close(self) -> None:
        """Release the mailbox device if this reader opened it."""
        if self._owns_transport and self._transport is not None:
            close = getattr(self._transport, "close", None)
            if close is not None:
                close()
            self._transport = None
            self._selected = False

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        """``{soc_temperature_c, core_voltage_v, h264_clock_hz, arm_clock_hz, core_clock_hz,
        firmware: {source}}``. Never raises."""
        self._select()
        transport = self._transport
        result: dict[str, Any] = {key: None for key, _, _ in _QUERIES}
        result["firmware"] = {"source": None if transport is None else transport.name}
        reasons: dict[str, str] = {}
        broken: str | None = self._no_transport_reason
        if transport is None:
            gaps.note("firmware.source", broken or "no VideoCore access")
        for key, command, parse in _QUERIES:
            if broken is not None or transport is None:
                reasons[key] = broken or "no VideoCore access"
                continue
            value, reason, transport_failed = _ask(transport, command, parse)
            result[key] = value
            if reason is not None:
                reasons[key] = reason
            if transport_failed:
                broken = reason
        if result["soc_temperature_c"] is None:
            result["soc_temperature_c"] = self._thermal_temperature(reasons)
        for key, reason in reasons.items():
            gaps.note(key, reason)
        return result

    def _thermal_temperature(self, reasons: dict[str, str]) -> float | None:
        """The SoC temperature from the thermal zone, if zone 0 is the CPU's (checked once: it never
        changes while running). On success the firmware's reason is dropped; on failure both are kept."""
        key = "soc_temperature_c"
        value, why_not = self._read_thermal()
        if value is not None:
            reasons.pop(key, None)
            return value
        reasons[key] = "; ".join(reason for reason in (reasons.get(key), why_not) if reason)
        return None

    def _read_thermal(self) -> tuple[float | None, str | None]:
        if self._thermal_is_soc is None:
            try:
                zone_type: str | None = self._root.read_text(f"{THERMAL_ZONE}/type").strip()
            except OSError:
                zone_type = None  # no type file: trust zone 0, where every Pi kernel puts the SoC
            self._thermal_is_soc = zone_type is None or zone_type == _SOC_THERMAL_TYPE
            if not self._thermal_is_soc:
                self._thermal_reason = f"/{THERMAL_ZONE} is {zone_type!r}, not the SoC ({_SOC_THERMAL_TYPE})"
        if not self._thermal_is_soc:
            return None, self._thermal_reason
        try:
            text = self._root.read_text(f"{THERMAL_ZONE}/temp")
        except OSError as exc:
            return None, describe_os_error(exc, f"/{THERMAL_ZONE}/temp")
        value = parse_thermal_millidegrees(text)
        if value is None:
            return None, f"unexpected /{THERMAL_ZONE}/temp: {text.strip()[:40]!r}"
        return value, None

    def read_throttled(self, gaps: Gaps) -> ThrottleReading | None:
        """The raw throttle word: gencmd ``get_throttled`` (no argument, so the sticky bits are not reset),
        else the legacy sysfs attribute of 4.14-era kernels. None with the reason under ``throttle``."""
        self._select()
        transport = self._transport
        reasons: list[str] = []
        if transport is None:
            reasons.append(self._no_transport_reason or "no VideoCore access")
        else:
            try:
                text = transport.query("get_throttled")
            except GencmdError as exc:
                reasons.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - a foreign transport must not take the sample down
                reasons.append(f"{transport.name} get_throttled: {exc.__class__.__name__}: {exc}")
            else:
                flags = parse_get_throttled(text)
                if flags is not None:
                    return ThrottleReading(flags.raw, transport.name)
                reasons.append(f"unexpected reply to 'get_throttled': {text.strip()[:80]!r}")
        try:
            text = self._root.read_text(LEGACY_GET_THROTTLED)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                reasons.append(describe_os_error(exc, "/" + LEGACY_GET_THROTTLED))
        else:
            flags = parse_get_throttled(text)
            if flags is not None:
                return ThrottleReading(flags.raw, "sysfs")
            reasons.append(f"unexpected /{LEGACY_GET_THROTTLED}: {text.strip()[:40]!r}")
        gaps.note("throttle", "; ".join(reasons))
        return None
