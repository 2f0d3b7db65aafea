"""Network and Wi-Fi collector: every /proc/net/dev and /proc/net/wireless capture in fixtures/pi/net."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.network import (
    COUNTER_WENT_BACK,
    NEEDS_TWO_SAMPLES,
    NetworkReader,
    parse_net_dev,
    parse_wireless,
)
from tests.agent.helpers import PI_FIXTURES, FixtureTree, fixture_files, fixture_text

NET_DEV_FILES = [name for name in fixture_files("net") if name.startswith("net/proc_net_dev")]
WIRELESS_FILES = [name for name in fixture_files("net") if name.startswith("net/proc_net_wireless")]

WEECHAT = "net/proc_net_dev_raspberrypi_eth0_rxdrops_weechat229_partial.txt"
BRANDYWINE = "net/proc_net_wireless_brandywine.txt"
HANKB = "net/proc_net_wireless_hankb_testdata.txt"

# Read off the captures by eye. (The weechat wlan0 line was cut in the source and is not in the file.)
NET_DEV_EXPECTED: dict[str, dict[str, dict[str, int]]] = {
    WEECHAT: {
        "eth0": {
            "rx_bytes": 138076103,
            "rx_packets": 148526,
            "rx_errs": 0,
            "rx_drop": 15408,
            "rx_fifo": 0,
            "rx_frame": 0,
            "rx_compressed": 0,
            "rx_multicast": 0,
            "tx_bytes": 13329944,
            "tx_packets": 69603,
            "tx_errs": 0,
            "tx_drop": 0,
            "tx_fifo": 0,
            "tx_colls": 0,
            "tx_carrier": 0,
            "tx_compressed": 0,
        },
        "lo": dict.fromkeys(
            [
                *("rx_bytes", "rx_packets", "rx_errs", "rx_drop", "rx_fifo", "rx_frame"),
                *("rx_compressed", "rx_multicast", "tx_bytes", "tx_packets", "tx_errs", "tx_drop"),
                *("tx_fifo", "tx_colls", "tx_carrier", "tx_compressed"),
            ],
            0,
        ),
    },
}

# (status, link, level, noise, nwid, crypt, frag, retry, misc, missed beacon)
WIRELESS_EXPECTED: dict[str, dict[str, tuple[int, ...]]] = {
    BRANDYWINE: {"wlan0": (0, 51, -59, -256, 0, 0, 0, 189, 0, 0)},
    HANKB: {"wlan0": (0, 52, -58, -256, 0, 0, 0, 1122, 0, 0)},
}


def dev_line(name: str, c: dict[str, int]) -> str:
    """One /proc/net/dev line in the kernel's format (net/core/net-procfs.c, dev_seq_printf_stats)."""
    return (
        f"{name:>6}: {c['rx_bytes']:7d} {c['rx_packets']:7d} {c['rx_errs']:4d} {c['rx_drop']:4d} "
        f"{c['rx_fifo']:4d} {c['rx_frame']:5d} {c['rx_compressed']:10d} {c['rx_multicast']:9d} "
        f"{c['tx_bytes']:8d} {c['tx_packets']:7d} {c['tx_errs']:4d} {c['tx_drop']:4d} "
        f"{c['tx_fifo']:4d} {c['tx_colls']:5d} {c['tx_carrier']:7d} {c['tx_compressed']:10d}\n"
    )


def wireless_line(name: str, values: tuple[int, ...]) -> str:
    """One /proc/net/wireless line in the kernel's format (net/wireless/wext-proc.c).

    Link and level carry the "updated" '.'; noise does not, as brcmfmac never updates it (see the captures).
    """
    status, link, level, noise, nwid, crypt, frag, retry, misc, beacon = values
    return (
        f"{name:>6}: {status:04x}  {link:3d}.  {level:3d}.  {noise:3d}   "
        f"{nwid:6d} {crypt:6d} {frag:6d} {retry:6d} {misc:6d}   {beacon:6d}\n"
    )


def header(text: str) -> str:
    """The two header lines of a capture."""
    return "".join(text.splitlines(keepends=True)[:2])


# --------------------------------------------------------------------------------------------- parsers


def test_every_capture_has_expectations() -> None:
    # A new capture dropped into fixtures/pi/net must get its values read off here.
    assert sorted(NET_DEV_FILES) == sorted(NET_DEV_EXPECTED)
    assert sorted(WIRELESS_FILES) == sorted(WIRELESS_EXPECTED)


@pytest.mark.parametrize("name", NET_DEV_FILES)
def test_parse_net_dev_captures(name: str) -> None:
    parsed = parse_net_dev(fixture_text(name))
    expected = NET_DEV_EXPECTED[name]
    assert list(parsed.interfaces) == list(expected)
    for iface, counters in expected.items():
        assert parsed.interfaces[iface].counters == counters


@pytest.mark.parametrize("name", WIRELESS_FILES)
def test_parse_wireless_captures(name: str) -> None:
    parsed = parse_wireless(fixture_text(name))
    expected = WIRELESS_EXPECTED[name]
    assert list(parsed.interfaces) == list(expected)
    for iface, values in expected.items():
        w = parsed.interfaces[iface]
        got = (
            w.status,
            w.link_quality,
            w.level,
            w.noise,
            w.discarded_nwid,
            w.discarded_crypt,
            w.discarded_frag,
            w.discarded_retry,
            w.discarded_misc,
            w.missed_beacon,
        )
        assert got == values
        assert w.signal_dbm == values[2]
        assert w.noise_dbm is None  # -256: brcmfmac reports no noise
        assert (w.link_updated, w.level_updated, w.noise_updated) == (True, True, False)


@pytest.mark.parametrize("name", WIRELESS_FILES)
def test_wireless_line_builder_matches_capture(name: str) -> None:
    # Guards the format helper used for the rate tests below: it must reproduce the real line exactly.
    text = fixture_text(name)
    assert wireless_line("wlan0", WIRELESS_EXPECTED[name]["wlan0"]) == text.splitlines(keepends=True)[2]


def test_dev_line_builder_matches_capture() -> None:
    lines = fixture_text(WEECHAT).splitlines(keepends=True)
    assert dev_line("eth0", NET_DEV_EXPECTED[WEECHAT]["eth0"]) == lines[2]
    assert dev_line("lo", NET_DEV_EXPECTED[WEECHAT]["lo"]) == lines[3]


def test_net_dev_maps_by_header_name_not_position() -> None:
    # A header with the receive columns in another order: values must follow the names.
    text = (
        "Inter-|   Receive   |  Transmit\n"
        " face |packets bytes drop errs|bytes packets errs drop\n"
        "  eth0: 10 2000 3 4 5000 60 7 8\n"
    )
    eth0 = parse_net_dev(text).interfaces["eth0"]
    assert eth0.counters == {
        "rx_packets": 10,
        "rx_bytes": 2000,
        "rx_drop": 3,
        "rx_errs": 4,
        "tx_bytes": 5000,
        "tx_packets": 60,
        "tx_errs": 7,
        "tx_drop": 8,
    }


def test_net_dev_value_running_into_name() -> None:
    # Kernels of the 2.4/2.6 era printed "%6s:%8lu" with no space: a 9-digit counter touches the colon.
    line = "  eth0:138076103  148526  0 15408  0  0  0  0 13329944   69603  0  0  0  0  0  0\n"
    text = header(fixture_text(WEECHAT)) + line
    eth0 = parse_net_dev(text).interfaces["eth0"]
    assert eth0.get("rx_bytes") == 138076103
    assert eth0.get("rx_drop") == 15408
    assert eth0.get("tx_bytes") == 13329944


def test_net_dev_real_machine() -> None:
    # The machine running the tests has /proc/net/dev in the same format; lo is always there.
    text = Path("/proc/net/dev").read_text()
    parsed = parse_net_dev(text)
    assert "lo" in parsed.interfaces
    assert len(parsed.interfaces["lo"].counters) == 16


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage\n\x00\x01:::\n",
        "Inter-|\n face |\n eth0: a b c\n",
        # the weechat wlan0 line as the source cut it: three fields only
        " face |bytes    packets errs drop|bytes packets errs drop\n  wlan0: 1 2 3\n",
    ],
)
def test_net_dev_garbage(text: str) -> None:
    assert parse_net_dev(text).interfaces == {}


@pytest.mark.parametrize(
    "text", ["", "wlan0: zzzz 51. -59. -256 0 0 0 189 0 0\n", " wlan0: 0000 51. -59.\n", "\x00:\n"]
)
def test_wireless_garbage(text: str) -> None:
    assert parse_wireless(text).interfaces == {}


def test_wireless_value_not_updated_has_no_dot() -> None:
    # wext-proc.c prints ' ' instead of '.' when the driver did not update a value.
    line = " wlan0: 0000   52   -58   -256        0      0      0   1122      0        0\n"
    text = header(fixture_text(HANKB)) + line
    w = parse_wireless(text).interfaces["wlan0"]
    assert (w.link_quality, w.level, w.noise) == (52, -58, -256)
    assert (w.link_updated, w.level_updated, w.noise_updated) == (False, False, False)
    assert w.link_quality_known is None


def test_no_signal_from_driver(tree: FixtureTree) -> None:
    # cfg80211 without a signal figure for the station: no dBm flag, nothing updated, so the kernel prints
    # raw zeros without dots (wext-proc.c format, net/wireless/wext-compat.c cfg80211_wireless_stats).
    line = " wlan0: 0000    0     0     0        0      0      0     12      0        0\n"
    tree.write("proc/net/wireless", header(fixture_text(HANKB)) + line)
    gaps = Gaps()
    wlan0 = NetworkReader(Root(tree.base)).sample(gaps, now=1.0)["wifi"]["wlan0"]
    assert wlan0["signal_dbm"] is None
    assert wlan0["link_quality"] is None
    assert wlan0["link_quality_percent"] is None
    assert wlan0["noise_dbm"] is None
    assert wlan0["retries_total"] == 12
    assert gaps.reasons["wifi.wlan0.link_quality"] == "driver reported no link quality"
    assert "signal" in gaps.reasons["wifi.wlan0.signal_dbm"]


def test_level_minus_256_is_not_a_signal() -> None:
    text = header(fixture_text(HANKB)) + wireless_line("wlan0", (0, 0, -256, -256, 0, 0, 0, 0, 0, 0))
    assert parse_wireless(text).interfaces["wlan0"].signal_dbm is None


def test_ifconfig_capture_agrees_with_proc_net_dev() -> None:
    # ifconfig's counters come from /proc/net/dev; compare only with a capture from the same source.
    ifconfig = PI_FIXTURES / "net" / "ifconfig_wlan0_rx_dropped_pi_sjoner.txt"
    source = ifconfig.read_text().splitlines()[0]
    matching = [n for n in NET_DEV_FILES if (PI_FIXTURES / n).read_text().splitlines()[0] == source]
    if not matching:
        pytest.skip("no /proc/net/dev capture from the host of the ifconfig capture")
    wlan0 = parse_net_dev(fixture_text(matching[0])).interfaces["wlan0"]
    assert (wlan0.get("rx_packets"), wlan0.get("rx_drop"), wlan0.get("rx_bytes")) == (65, 44, 11960)


# ---------------------------------------------------------------------------------------- NetworkReader


RATE_KEYS = (
    "rx_bytes_per_s",
    "tx_bytes_per_s",
    "rx_errors_per_s",
    "tx_errors_per_s",
    "rx_drops_per_s",
    "tx_drops_per_s",
)
TOTAL_KEYS = ("rx_errors_total", "tx_errors_total", "rx_drops_total", "tx_drops_total")
WIFI_KEYS = {
    "signal_dbm",
    "link_quality",
    "link_quality_percent",
    "noise_dbm",
    "retries_per_s",
    "missed_beacons_per_s",
    "retries_total",
    "missed_beacons_total",
}


def write_dev(tree: FixtureTree, counters: dict[str, dict[str, int]]) -> None:
    lines = "".join(dev_line(name, c) for name, c in counters.items())
    tree.write("proc/net/dev", header(fixture_text(WEECHAT)) + lines)


def write_wireless(tree: FixtureTree, values: dict[str, tuple[int, ...]]) -> None:
    lines = "".join(wireless_line(name, v) for name, v in values.items())
    tree.write("proc/net/wireless", header(fixture_text(BRANDYWINE)) + lines)


def bumped(base: dict[str, int], **delta: int) -> dict[str, int]:
    return {name: value + delta.get(name, 0) for name, value in base.items()}


@pytest.fixture
def pi_tree(tree: FixtureTree) -> FixtureTree:
    """The real captures as they would sit in /proc/net."""
    tree.write("proc/net/dev", fixture_text(WEECHAT))
    tree.write("proc/net/wireless", fixture_text(BRANDYWINE))
    return tree


def test_first_sample_totals_and_no_rates(pi_tree: FixtureTree) -> None:
    gaps = Gaps()
    sample = NetworkReader(Root(pi_tree.base)).sample(gaps, now=100.0)
    assert set(sample) == {"network", "wifi"}
    assert list(sample["network"]) == ["eth0"]  # lo skipped by default
    eth0 = sample["network"]["eth0"]
    assert set(eth0) == set(RATE_KEYS) | set(TOTAL_KEYS)
    assert eth0["rx_drops_total"] == 15408
    assert eth0["tx_drops_total"] == 0
    assert eth0["rx_errors_total"] == 0
    assert eth0["tx_errors_total"] == 0
    for key in RATE_KEYS:
        assert eth0[key] is None
        assert gaps.reasons[f"network.eth0.{key}"] == NEEDS_TWO_SAMPLES

    wlan0 = sample["wifi"]["wlan0"]
    assert set(wlan0) == WIFI_KEYS
    assert wlan0["signal_dbm"] == -59
    assert wlan0["link_quality"] == 51
    assert wlan0["link_quality_percent"] == 72.9  # 51 of 70
    assert wlan0["noise_dbm"] is None
    assert "noise" in gaps.reasons["wifi.wlan0.noise_dbm"]
    assert wlan0["retries_total"] == 189
    assert wlan0["missed_beacons_total"] == 0
    assert wlan0["retries_per_s"] is None
    assert gaps.reasons["wifi.wlan0.retries_per_s"] == NEEDS_TWO_SAMPLES
    assert wlan0["missed_beacons_per_s"] is None


def test_include_loopback(pi_tree: FixtureTree) -> None:
    sample = NetworkReader(Root(pi_tree.base), include_loopback=True).sample(Gaps(), now=1.0)
    assert list(sample["network"]) == ["eth0", "lo"]
    assert sample["network"]["lo"]["rx_drops_total"] == 0


def test_rates_divide_by_real_elapsed_time(pi_tree: FixtureTree) -> None:
    reader = NetworkReader(Root(pi_tree.base))
    reader.sample(Gaps(), now=100.0)
    eth0 = NET_DEV_EXPECTED[WEECHAT]["eth0"]
    # 2.5 s really elapsed (a late sample): rates must use 2.5, not a nominal interval.
    write_dev(
        pi_tree,
        {
            "eth0": bumped(
                eth0, rx_bytes=2_500_000, tx_bytes=250_000, rx_drop=30, rx_errs=5, tx_errs=1, tx_drop=10
            ),
            "lo": NET_DEV_EXPECTED[WEECHAT]["lo"],
        },
    )
    write_wireless(pi_tree, {"wlan0": (0, 51, -59, -256, 0, 0, 0, 189 + 20, 0, 3)})
    gaps = Gaps()
    sample = reader.sample(gaps, now=102.5)
    got = sample["network"]["eth0"]
    assert got["rx_bytes_per_s"] == 1_000_000.0
    assert got["tx_bytes_per_s"] == 100_000.0
    assert got["rx_drops_per_s"] == 12.0
    assert got["rx_errors_per_s"] == 2.0
    assert got["tx_errors_per_s"] == 0.4
    assert got["tx_drops_per_s"] == 4.0
    assert got["rx_drops_total"] == 15438
    assert sample["wifi"]["wlan0"]["retries_per_s"] == 8.0
    assert sample["wifi"]["wlan0"]["missed_beacons_per_s"] == 1.2
    assert sample["wifi"]["wlan0"]["retries_total"] == 209
    assert not any(key.startswith("network.eth0") for key in gaps.reasons)


def test_counter_reset_gives_no_negative_rate(pi_tree: FixtureTree) -> None:
    reader = NetworkReader(Root(pi_tree.base))
    reader.sample(Gaps(), now=10.0)
    # Interface re-created: every counter restarts near zero.
    small = dict.fromkeys(NET_DEV_EXPECTED[WEECHAT]["eth0"], 0) | {"rx_bytes": 1000, "rx_packets": 5}
    write_dev(pi_tree, {"eth0": small})
    write_wireless(pi_tree, {"wlan0": (0, 51, -59, -256, 0, 0, 0, 4, 0, 0)})
    gaps = Gaps()
    sample = reader.sample(gaps, now=12.0)
    eth0 = sample["network"]["eth0"]
    assert eth0["rx_bytes_per_s"] is None
    assert gaps.reasons["network.eth0.rx_bytes_per_s"] == COUNTER_WENT_BACK
    assert eth0["rx_drops_per_s"] is None
    assert eth0["tx_errors_per_s"] == 0.0  # 0 → 0 did not go back
    assert sample["wifi"]["wlan0"]["retries_per_s"] is None
    assert gaps.reasons["wifi.wlan0.retries_per_s"] == COUNTER_WENT_BACK
    # The next sample measures from the new baseline again.
    write_dev(pi_tree, {"eth0": small | {"rx_bytes": 3000}})
    assert reader.sample(Gaps(), now=14.0)["network"]["eth0"]["rx_bytes_per_s"] == 1000.0


def test_no_time_elapsed(pi_tree: FixtureTree) -> None:
    reader = NetworkReader(Root(pi_tree.base))
    reader.sample(Gaps(), now=5.0)
    gaps = Gaps()
    sample = reader.sample(gaps, now=5.0)
    assert sample["network"]["eth0"]["rx_bytes_per_s"] is None
    assert "no time" in gaps.reasons["network.eth0.rx_bytes_per_s"]


def test_interfaces_appear_and_disappear(pi_tree: FixtureTree) -> None:
    reader = NetworkReader(Root(pi_tree.base))
    reader.sample(Gaps(), now=1.0)
    eth0 = NET_DEV_EXPECTED[WEECHAT]["eth0"]
    usb0 = dict.fromkeys(eth0, 0) | {"rx_bytes": 500}
    write_dev(pi_tree, {"usb0": usb0})  # eth0 gone, usb0 new
    write_wireless(pi_tree, {})
    gaps = Gaps()
    sample = reader.sample(gaps, now=2.0)
    assert list(sample["network"]) == ["usb0"]
    assert sample["network"]["usb0"]["rx_bytes_per_s"] is None
    assert gaps.reasons["network.usb0.rx_bytes_per_s"] == NEEDS_TWO_SAMPLES
    assert sample["wifi"] == {}
    # eth0 comes back: it is new again, not compared with the counters from two samples ago.
    write_dev(pi_tree, {"eth0": eth0, "usb0": usb0 | {"rx_bytes": 1500}})
    gaps = Gaps()
    sample = reader.sample(gaps, now=4.0)
    assert sample["network"]["eth0"]["rx_bytes_per_s"] is None
    assert gaps.reasons["network.eth0.rx_bytes_per_s"] == NEEDS_TWO_SAMPLES
    assert sample["network"]["usb0"]["rx_bytes_per_s"] == 500.0


def test_missing_files(tree: FixtureTree) -> None:
    gaps = Gaps()
    sample = NetworkReader(Root(tree.base)).sample(gaps, now=1.0)
    assert sample == {"network": {}, "wifi": {}}
    assert "/proc/net/dev not found" in gaps.reasons["network"]
    assert "/proc/net/wireless not found" in gaps.reasons["wifi"]


def test_permission_denied(pi_tree: FixtureTree, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root here, so chmod cannot deny a read; raise what the kernel would return instead.
    def deny(self: Root, relative: str) -> str:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Root, "read_text", deny)
    gaps = Gaps()
    sample = NetworkReader(Root(pi_tree.base)).sample(gaps, now=1.0)
    assert sample == {"network": {}, "wifi": {}}
    assert "permission denied" in gaps.reasons["network"]


def test_garbage_files(tree: FixtureTree) -> None:
    tree.write("proc/net/dev", "\x00\x01 nonsense: 1 2\n")
    tree.write("proc/net/wireless", "wlan0: ??\n")
    gaps = Gaps()
    assert NetworkReader(Root(tree.base)).sample(gaps, now=1.0) == {"network": {}, "wifi": {}}
    assert gaps.reasons["network"] == "/proc/net/dev: unexpected format"


def test_directory_instead_of_file(tree: FixtureTree) -> None:
    (tree.base / "proc/net/dev").mkdir(parents=True)
    gaps = Gaps()
    assert NetworkReader(Root(tree.base)).sample(gaps, now=1.0)["network"] == {}
    assert "/proc/net/dev" in gaps.reasons["network"]


def test_positive_level_is_not_dbm(tree: FixtureTree) -> None:
    # A non-cfg80211 driver on a relative scale: the level is not a dBm value.
    write_wireless(tree, {"wlan0": (0, 40, 80, 0, 0, 0, 0, 0, 0, 0)})
    gaps = Gaps()
    wlan0 = NetworkReader(Root(tree.base)).sample(gaps, now=1.0)["wifi"]["wlan0"]
    assert wlan0["signal_dbm"] is None
    assert "dBm" in gaps.reasons["wifi.wlan0.signal_dbm"]
    assert wlan0["link_quality_percent"] == 57.1


def test_real_machine_two_samples() -> None:
    reader = NetworkReader(Root(Path("/")), include_loopback=True)
    reader.sample(Gaps(), now=1.0)
    sample = reader.sample(Gaps(), now=2.0)
    lo = sample["network"]["lo"]
    assert lo["rx_bytes_per_s"] is not None
    assert lo["rx_bytes_per_s"] >= 0
