"""The Pi 5's power supply: the PMIC's input voltage and the board's current draw, and whether the supply
negotiated 5 A (which lifts the USB ports' limit from 600 mA to 1.6 A).

* ``pmic_read_adc`` over the same gencmd transport as the other firmware values (mailbox, ``vcgencmd``
  fallback). One line per PMIC channel (real outputs: ``fixtures/pi/vcgencmd/pi5_pmic_read_adc_*``)::

       VDD_CORE_A current(7)=0.94657990A
       VDD_CORE_V volt(15)=0.72097620V
          EXT5V_V volt(24)=5.11478000V

  ``EXT5V_V`` is the 5 V input. The PMIC has no channel for the input current: ``current_a`` is the power
  of the rails it measures (the sum of volts x amps over each ``<rail>_V``/``<rail>_A`` pair, ``power_w``)
  divided by the input voltage — the board's own draw, without USB devices and the converters' losses.
  Boards before the Pi 5 have no such command; the firmware refuses it once and it is not asked again.
* ``/proc/device-tree/chosen/power/usb_max_current_enable`` (a big-endian u32 the firmware writes at boot):
  non-zero when the USB current limiter was set high, which the firmware does when the supply claims 5 A
  (or config.txt forces it); zero is the boot log's "This power supply is not capable of supplying 5A".
  Read once: it cannot change before the next boot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error
from pi_stream_agent.telemetry.firmware import FirmwareReader, GencmdError, parse_gencmd_reply

PMIC_COMMAND = "pmic_read_adc"
INPUT_CHANNEL = "EXT5V_V"
USB_MAX_CURRENT = "proc/device-tree/chosen/power/usb_max_current_enable"

_CHANNEL = re.compile(r"^\s*(\S+)\s+(?:current|volt)\(\d+\)=([-0-9.]+)([AV])\s*$")


@dataclass(frozen=True)
class PmicReadings:
    """Channel name → value, e.g. ``{"EXT5V_V": 5.11478, "VDD_CORE_A": 0.9466, …}``."""

    channels: dict[str, float]

    @property
    def input_voltage_v(self) -> float | None:
        return self.channels.get(INPUT_CHANNEL)

    @property
    def power_w(self) -> float | None:
        """Volts x amps summed over every rail measured both ways; None without any such pair."""
        total = 0.0
        pairs = 0
        for name, amps in self.channels.items():
            if not name.endswith("_A"):
                continue
            volts = self.channels.get(name[:-2] + "_V")
            if volts is not None:
                total += volts * amps
                pairs += 1
        return total if pairs else None

    @property
    def current_a(self) -> float | None:
        power, volts = self.power_w, self.input_voltage_v
        if power is None or not volts or volts <= 0:
            return None
        return power / volts


def parse_pmic_read_adc(text: str) -> PmicReadings:
    """Every ``NAME current(N)=X.XA`` / ``NAME volt(N)=X.XV`` line; other lines are skipped."""
    channels: dict[str, float] = {}
    for line in text.splitlines():
        match = _CHANNEL.match(line)
        if match is None:
            continue
        try:
            channels[match.group(1)] = float(match.group(2))
        except ValueError:
            continue
    return PmicReadings(channels)


def parse_device_tree_u32(data: bytes) -> int | None:
    """A device-tree cell: 4 bytes, big-endian."""
    if len(data) != 4:
        return None
    return int.from_bytes(data, "big")


class SupplyReader:
    """``{"supply": {"input_voltage_v", "current_a", "power_w", "usb_max_current_5a"}}`` on a Pi 5, or
    ``{"supply": null}`` with the reason on boards without a PMIC ADC."""

    def __init__(self, root: Root, firmware: FirmwareReader) -> None:
        self._root = root
        self._firmware = firmware
        self._refused: str | None = None  # why pmic_read_adc is not asked any more
        self._usb_5a: bool | None = None
        self._usb_5a_reason: str | None = None
        self._usb_read = False

    def _usb_max_current_5a(self) -> tuple[bool | None, str | None]:
        if not self._usb_read:
            self._usb_read = True
            try:
                value = parse_device_tree_u32(self._root.read_bytes(USB_MAX_CURRENT))
            except OSError as exc:
                self._usb_5a_reason = describe_os_error(exc, "/" + USB_MAX_CURRENT)
            else:
                if value is None:
                    self._usb_5a_reason = f"/{USB_MAX_CURRENT}: unexpected format"
                else:
                    self._usb_5a = value != 0
        return self._usb_5a, self._usb_5a_reason

    def _pmic(self) -> tuple[PmicReadings | None, str | None]:
        if self._refused is not None:
            return None, self._refused
        transport = self._firmware.transport
        if transport is None:
            return None, "no VideoCore access"
        try:
            text = transport.query(PMIC_COMMAND)
        except GencmdError as exc:
            if not exc.transport_failed:
                self._refused = f"no PMIC readings (a Raspberry Pi 5 feature): {exc}"
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a foreign transport must not take the sample down
            return None, f"{transport.name} {PMIC_COMMAND}: {exc.__class__.__name__}: {exc}"
        readings = parse_pmic_read_adc(text)
        if not readings.channels:
            reply = parse_gencmd_reply(text)
            if reply.is_error:
                self._refused = f"no PMIC readings (a Raspberry Pi 5 feature): {reply.error_message}"
                return None, self._refused
            return None, f"unexpected reply to {PMIC_COMMAND!r}: {text.strip()[:80]!r}"
        return readings, None

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        readings, why_not = self._pmic()
        usb_5a, usb_reason = self._usb_max_current_5a()
        if readings is None and usb_5a is None:
            gaps.note("supply", why_not or "no PMIC readings")
            return {"supply": None}
        supply: dict[str, Any] = {
            "input_voltage_v": None,
            "current_a": None,
            "power_w": None,
            "usb_max_current_5a": usb_5a,
        }
        if usb_5a is None:
            gaps.note("supply.usb_max_current_5a", usb_reason or "unknown")
        if readings is None:
            for key in ("input_voltage_v", "current_a", "power_w"):
                gaps.note(f"supply.{key}", why_not or "no PMIC readings")
            return {"supply": supply}
        for key, value in (
            ("input_voltage_v", readings.input_voltage_v),
            ("current_a", readings.current_a),
            ("power_w", readings.power_w),
        ):
            if value is None:
                missing = "rail pair" if key == "power_w" else INPUT_CHANNEL
                gaps.note(f"supply.{key}", f"{PMIC_COMMAND}: no {missing} reading")
            else:
                supply[key] = round(value, 3)
        return {"supply": supply}
