"""The firmware's throttle word (``vcgencmd get_throttled``): decoding, and pushing its changes as events.

Bits (vcgencmd.1, raspberrypi/utils; the same on BCM2712):

====  ===================================  ====  ==================================
bit   now                                  bit   has occurred (sticky)
====  ===================================  ====  ==================================
0     under-voltage                        16    under-voltage
1     ARM frequency capped                 17    ARM frequency capping
2     currently throttled                  18    throttling
3     soft temperature limit active        19    soft temperature limit
====  ===================================  ====  ==================================

The word arrives as ``throttled=0x50005`` from gencmd (mailbox or ``vcgencmd``) or, on 4.14-era
downstream kernels, as bare hex without ``0x`` (``80008``) from
``/sys/devices/platform/soc/soc:firmware/get_throttled``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Gaps

# Flag name → bit. Order is the order of the fragment's keys.
FLAG_BITS: dict[str, int] = {
    "under_voltage": 0,
    "freq_capped": 1,
    "throttled": 2,
    "soft_temp_limit": 3,
    "under_voltage_occurred": 16,
    "freq_capped_occurred": 17,
    "throttled_occurred": 18,
    "soft_temp_limit_occurred": 19,
}
_NOW_FLAGS = ("under_voltage", "freq_capped", "throttled", "soft_temp_limit")
_MAX_WORD = 0xFFFFFFFF
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class ThrottleFlags:
    """One decoded throttle word. ``raw`` is kept so nothing the firmware said is lost."""

    raw: int
    under_voltage: bool
    freq_capped: bool
    throttled: bool
    soft_temp_limit: bool
    under_voltage_occurred: bool
    freq_capped_occurred: bool
    throttled_occurred: bool
    soft_temp_limit_occurred: bool

    def flags(self) -> dict[str, bool]:
        """The eight flags by name (without ``raw``)."""
        return {name: getattr(self, name) for name in FLAG_BITS}


def decode_throttled(raw: int) -> ThrottleFlags:
    """Split a throttle word into its eight flags. Bits outside 0-3 and 16-19 are ignored."""
    return ThrottleFlags(raw, **{name: bool(raw >> bit & 1) for name, bit in FLAG_BITS.items()})


def _parse_hex(text: str) -> int | None:
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if not digits or len(digits) > 8 or not _HEX_DIGITS.issuperset(digits):
        return None
    return int(digits, 16)


def parse_get_throttled(text: str) -> ThrottleFlags | None:
    """``throttled=0x50005`` (gencmd), ``0x50005``, or the legacy sysfs file's bare hex ``80008``.

    The text may carry a prefix before ``throttled=`` (raspinfo prints ``Throttled flag  : throttled=0x0``).
    Returns None for anything else, including error replies and numbers wider than 32 bits.
    """
    stripped = text.strip()
    _, sep, value = stripped.rpartition("throttled=")
    if not sep:
        # The legacy sysfs attribute has no key and no 0x: the whole file is one hex number.
        value = stripped
    raw = _parse_hex(value.strip())
    if raw is None or raw > _MAX_WORD:
        return None
    return decode_throttled(raw)


_EMPTY_FRAGMENT: dict[str, Any] = {"raw": None, **dict.fromkeys(FLAG_BITS), "source": None}


class ThrottleMonitor:
    """Keeps the latest throttle word, publishes ``throttle_changed`` the moment a flag changes, and serves
    the ``throttle`` fragment.

    Why the ``*_occurred`` flags are ORed with what the agent itself saw: the kernel's raspberrypi-hwmon
    driver asks the firmware to clear the sticky bits 16-19 every 2 s (GET_THROTTLED with 0xffff), so a
    firmware "has occurred" bit read at any moment only covers the last ~2 s. Each reported ``*_occurred``
    flag is therefore "the firmware says so now, or the agent has seen this condition (now bit or sticky
    bit) since it started". The firmware's own view stays available in ``raw`` (and ``firmware_flags``).

    ``throttle_changed`` fires when a reported flag changes, not on every change of ``raw``: the kernel
    clearing a sticky bit every 2 s is not a change of state, and would otherwise fire an event per poll.
    """

    def __init__(self, bus: EventBus | None = None) -> None:
        self._bus = bus
        self._firmware: ThrottleFlags | None = None
        self._source: str | None = None
        self._seen: set[str] = set()
        self._reported: dict[str, bool] | None = None
        self._unavailable: str | None = "no get_throttled reading yet"

    @property
    def firmware_flags(self) -> ThrottleFlags | None:
        """The current word as the firmware reported it (its sticky bits possibly cleared by the kernel)."""
        return None if self._unavailable is not None else self._firmware

    @property
    def flags(self) -> dict[str, bool] | None:
        """The reported flags: now bits as read, ``*_occurred`` including what the agent saw since start."""
        if self._unavailable is not None or self._reported is None:
            return None
        return dict(self._reported)

    def update(self, raw: int, source: str) -> list[str]:
        """Take a new reading; returns the names of the reported flags that changed (all of those that are
        set, for the very first reading). Publishes ``throttle_changed`` when that list is not empty."""
        if self._firmware is not None and raw == self._firmware.raw and self._unavailable is None:
            # The usual case, once per sample: nothing changed, nothing new was seen.
            self._source = source
            return []
        firmware = decode_throttled(raw)
        current = firmware.flags()
        for name in _NOW_FLAGS:
            if current[name] or current[f"{name}_occurred"]:
                self._seen.add(name)
        reported = {name: value for name, value in current.items() if not name.endswith("_occurred")}
        for name in _NOW_FLAGS:
            reported[f"{name}_occurred"] = name in self._seen
        # Keep FLAG_BITS order so events and fragments list flags the same way every time.
        reported = {name: reported[name] for name in FLAG_BITS}
        previous = self._reported
        if previous is None:
            changed = [name for name, value in reported.items() if value]
        else:
            changed = [name for name, value in reported.items() if previous[name] != value]
        self._firmware = firmware
        self._source = source
        self._reported = reported
        self._unavailable = None
        if changed and self._bus is not None:
            self._bus.publish("throttle_changed", {"raw": raw, "flags": dict(reported), "changed": changed})
        return changed

    def unavailable(self, reason: str) -> None:
        """No reading could be taken: stop serving the stale word. What was seen since start is kept, and
        the next reading is compared with the last one, so a gap alone fires no event."""
        self._unavailable = reason

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        """``{"throttle": {"raw", <eight flags>, "source"}}``; all None (reason in gaps) without a reading."""
        if self._unavailable is not None or self._firmware is None or self._reported is None:
            gaps.note("throttle", self._unavailable or "no get_throttled reading")
            return {"throttle": dict(_EMPTY_FRAGMENT)}
        return {"throttle": {"raw": self._firmware.raw, **self._reported, "source": self._source}}


# The fragment's keys, for documentation and tests.
THROTTLE_KEYS: tuple[str, ...] = (
    "raw",
    *(f.name for f in fields(ThrottleFlags) if f.name != "raw"),
    "source",
)
