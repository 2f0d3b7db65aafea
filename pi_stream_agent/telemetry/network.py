"""Per-interface traffic, error and drop rates (/proc/net/dev) and Wi-Fi link health (/proc/net/wireless).

Rates divide counter deltas by the real time between two samples (``now`` is monotonic), never by the
nominal interval: a late sample must not inflate a rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error

NEEDS_TWO_SAMPLES = "needs two samples"
COUNTER_WENT_BACK = "counter went back (interface re-created or counter wrapped)"
NO_TIME_ELAPSED = "no time elapsed between samples"

# cfg80211's wireless-extensions shim (used by brcmfmac and every other cfg80211 driver) maps the signal
# onto link quality = clamp(dBm, -110, -40) + 110, i.e. 0..70.
LINK_QUALITY_MAX = 70

# With the dBm flag the kernel prints (value - 0x100); a driver that leaves a value at 0 (brcmfmac never
# reports noise) therefore shows -256, which means "not available".
NOT_AVAILABLE_DBM = -256

# The layout net/core/net-procfs.c has printed since Linux 2.6; used only if the header cannot be read.
_DEFAULT_RX = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
_DEFAULT_TX = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")
_DEFAULT_FIELDS = tuple(f"rx_{name}" for name in _DEFAULT_RX) + tuple(f"tx_{name}" for name in _DEFAULT_TX)

# JSON key → /proc/net/dev field, for the rates and totals we report.
_RATE_FIELDS = {
    "rx_bytes_per_s": "rx_bytes",
    "tx_bytes_per_s": "tx_bytes",
    "rx_errors_per_s": "rx_errs",
    "tx_errors_per_s": "tx_errs",
    "rx_drops_per_s": "rx_drop",
    "tx_drops_per_s": "tx_drop",
}
_TOTAL_FIELDS = {
    "rx_errors_total": "rx_errs",
    "tx_errors_total": "tx_errs",
    "rx_drops_total": "rx_drop",
    "tx_drops_total": "tx_drop",
}


# ----------------------------------------------------------------------------------------- /proc/net/dev


@dataclass(frozen=True)
class InterfaceCounters:
    """One /proc/net/dev line: counters by header name, prefixed rx_/tx_ (``rx_drop``, ``tx_errs``)."""

    name: str
    counters: dict[str, int]

    def get(self, field_name: str) -> int | None:
        return self.counters.get(field_name)


@dataclass(frozen=True)
class NetDev:
    interfaces: dict[str, InterfaceCounters] = field(default_factory=dict)


def _header_fields(line: str) -> tuple[str, ...] | None:
    """`` face |bytes packets …|bytes packets …`` → ``("rx_bytes", …, "tx_bytes", …)``."""
    parts = line.split("|")
    if len(parts) != 3:
        return None
    rx, tx = parts[1].split(), parts[2].split()
    # The first header line ("Inter-|   Receive   |  Transmit") also has two bars: only names count.
    if "bytes" not in rx or "bytes" not in tx:
        return None
    return tuple(f"rx_{name}" for name in rx) + tuple(f"tx_{name}" for name in tx)


def parse_net_dev(text: str) -> NetDev:
    """Parse /proc/net/dev, mapping each value by the field name in the header."""
    names: tuple[str, ...] | None = None
    interfaces: dict[str, InterfaceCounters] = {}
    for line in text.splitlines():
        # A name never contains ':' (dev_valid_name), but a big counter can touch it: "eth0:1234567".
        iface, colon, rest = line.partition(":")
        if not colon:
            if names is None and "|" in line:
                names = _header_fields(line)
            continue
        values = rest.split()
        fields = names or _DEFAULT_FIELDS
        if len(values) != len(fields):
            continue  # truncated or foreign line
        try:
            counters = dict(zip(fields, map(int, values), strict=True))
        except ValueError:
            continue
        iface = iface.strip()
        if iface:
            interfaces[iface] = InterfaceCounters(iface, counters)
    return NetDev(interfaces)


# ------------------------------------------------------------------------------------ /proc/net/wireless


@dataclass(frozen=True)
class WirelessInterface:
    """One /proc/net/wireless line (net/wireless/wext-proc.c)."""

    name: str
    status: int
    link_quality: int
    level: int
    noise: int
    discarded_nwid: int
    discarded_crypt: int
    discarded_frag: int
    discarded_retry: int
    discarded_misc: int
    missed_beacon: int
    # The '.' after link/level/noise: set when the driver filled the value for this read. cfg80211 (brcmfmac)
    # leaves link and level unset when it has no signal figure for the station.
    link_updated: bool = True
    level_updated: bool = True
    noise_updated: bool = True

    @property
    def signal_dbm(self) -> int | None:
        # cfg80211 drivers report dBm (negative); a positive level would be a driver's own relative scale.
        return self.level if NOT_AVAILABLE_DBM < self.level < 0 else None

    @property
    def noise_dbm(self) -> int | None:
        return self.noise if NOT_AVAILABLE_DBM < self.noise < 0 else None

    @property
    def link_quality_known(self) -> int | None:
        return self.link_quality if self.link_updated else None


@dataclass(frozen=True)
class Wireless:
    interfaces: dict[str, WirelessInterface] = field(default_factory=dict)


def _wireless_line(iface: str, rest: str) -> WirelessInterface | None:
    values = rest.split()
    if len(values) < 10:
        return None
    try:
        status = int(values[0], 16)
        # link/level/noise carry a trailing '.' when the driver updated them for this read.
        link, level, noise = (int(value.rstrip(".")) for value in values[1:4])
        nwid, crypt, frag, retry, misc, beacon = (int(value) for value in values[4:10])
    except ValueError:
        return None
    return WirelessInterface(
        iface,
        status,
        link,
        level,
        noise,
        discarded_nwid=nwid,
        discarded_crypt=crypt,
        discarded_frag=frag,
        discarded_retry=retry,
        discarded_misc=misc,
        missed_beacon=beacon,
        link_updated=values[1].endswith("."),
        level_updated=values[2].endswith("."),
        noise_updated=values[3].endswith("."),
    )


def parse_wireless(text: str) -> Wireless:
    """Parse /proc/net/wireless: ``wlan0: 0000   51.  -59.  -256   0 0 0 189 0   0``."""
    interfaces: dict[str, WirelessInterface] = {}
    for line in text.splitlines():
        iface, colon, rest = line.partition(":")
        iface = iface.strip()
        if not colon or not iface or "|" in iface:
            continue  # the two header lines
        parsed = _wireless_line(iface, rest)
        if parsed is not None:
            interfaces[iface] = parsed
    return Wireless(interfaces)


# ---------------------------------------------------------------------------------------- NetworkReader


def _rate(
    current: int | None, previous: int | None, elapsed: float | None, gaps: Gaps, key: str
) -> float | None:
    """Per-second rate of a counter, or None with a reason. Never negative."""
    if current is None:
        gaps.note(key, "/proc/net/dev has no such field")
        return None
    if previous is None or elapsed is None:
        gaps.note(key, NEEDS_TWO_SAMPLES)
        return None
    if elapsed <= 0:
        gaps.note(key, NO_TIME_ELAPSED)
        return None
    if current < previous:
        gaps.note(key, COUNTER_WENT_BACK)
        return None
    return round((current - previous) / elapsed, 3)


@dataclass
class _Previous:
    now: float
    counters: dict[str, dict[str, int]]


class NetworkReader:
    """``{"network": {iface: …}, "wifi": {iface: …}}`` from /proc/net/dev and /proc/net/wireless."""

    def __init__(self, root: Root, include_loopback: bool = False) -> None:
        self._root = root
        self._include_loopback = include_loopback
        self._previous_dev: _Previous | None = None
        self._previous_wifi: _Previous | None = None

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        return {"network": self._sample_dev(gaps, now), "wifi": self._sample_wifi(gaps, now)}

    def _read(self, relative: str, gaps: Gaps, key: str) -> str | None:
        try:
            return self._root.read_text(relative)
        except OSError as exc:
            gaps.note(key, describe_os_error(exc, "/" + relative))
            return None

    def _sample_dev(self, gaps: Gaps, now: float) -> dict[str, Any]:
        text = self._read("proc/net/dev", gaps, "network")
        if text is None:
            self._previous_dev = None
            return {}
        interfaces = parse_net_dev(text).interfaces
        if not interfaces:
            # Even a machine without network has "lo": nothing parsed means the file is not as expected.
            gaps.note("network", "/proc/net/dev: unexpected format")
        if not self._include_loopback:
            interfaces.pop("lo", None)
        previous = self._previous_dev
        self._previous_dev = _Previous(now, {name: dev.counters for name, dev in interfaces.items()})
        elapsed = now - previous.now if previous is not None else None

        result: dict[str, Any] = {}
        for name, dev in interfaces.items():
            before = previous.counters.get(name, {}) if previous is not None else {}
            entry: dict[str, Any] = {}
            for key, source in _RATE_FIELDS.items():
                entry[key] = _rate(
                    dev.get(source), before.get(source), elapsed, gaps, f"network.{name}.{key}"
                )
            for key, source in _TOTAL_FIELDS.items():
                entry[key] = dev.get(source)
                if entry[key] is None:
                    gaps.note(f"network.{name}.{key}", "/proc/net/dev has no such field")
            result[name] = entry
        return result

    def _sample_wifi(self, gaps: Gaps, now: float) -> dict[str, Any]:
        # Missing on kernels without wireless extensions (CONFIG_CFG80211_WEXT) or off-Pi: then no Wi-Fi data.
        text = self._read("proc/net/wireless", gaps, "wifi")
        if text is None:
            self._previous_wifi = None
            return {}
        interfaces = parse_wireless(text).interfaces
        previous = self._previous_wifi
        self._previous_wifi = _Previous(
            now,
            {name: {"retry": w.discarded_retry, "beacon": w.missed_beacon} for name, w in interfaces.items()},
        )
        elapsed = now - previous.now if previous is not None else None

        result: dict[str, Any] = {}
        for name, wifi in interfaces.items():
            before = previous.counters.get(name, {}) if previous is not None else {}
            key = f"wifi.{name}"
            link = wifi.link_quality_known
            if link is None:
                for field_name in ("link_quality", "link_quality_percent"):
                    gaps.note(f"{key}.{field_name}", "driver reported no link quality")
            if wifi.signal_dbm is None:
                gaps.note(f"{key}.signal_dbm", "driver reported no signal level in dBm")
            if wifi.noise_dbm is None:
                gaps.note(f"{key}.noise_dbm", "driver does not report noise (brcmfmac never does)")
            result[name] = {
                "signal_dbm": wifi.signal_dbm,
                "link_quality": link,
                "link_quality_percent": (
                    round(100.0 * min(max(link, 0), LINK_QUALITY_MAX) / LINK_QUALITY_MAX, 1)
                    if link is not None
                    else None
                ),
                "noise_dbm": wifi.noise_dbm,
                "retries_per_s": _rate(
                    wifi.discarded_retry, before.get("retry"), elapsed, gaps, f"{key}.retries_per_s"
                ),
                "missed_beacons_per_s": _rate(
                    wifi.missed_beacon, before.get("beacon"), elapsed, gaps, f"{key}.missed_beacons_per_s"
                ),
                "retries_total": wifi.discarded_retry,
                "missed_beacons_total": wifi.missed_beacon,
            }
        return result
