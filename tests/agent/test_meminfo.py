"""/proc/meminfo: RAM, swap and CMA from every captured Pi sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.meminfo import MemoryReader, parse_meminfo
from tests.agent.helpers import FixtureTree, deny_reads, fixture_files, fixture_text

KB = 1024

# Read off each sample (kB): MemTotal, MemAvailable, SwapTotal, SwapFree, CmaTotal, CmaFree,
# then used_percent of memory / swap / cma worked out by hand (None: no swap configured or no lines).
# fmt: off
EXPECTED: dict[str, tuple[Any, ...]] = {
    "meminfo/pi3bplus_4.14_armv7l_cma8M_rpi3bp01.txt":
        (949476, 542096, 102396, 102396, 8192, 6792, 42.9, 0.0, 17.1),
    "meminfo/pi3bplus_6.6.31_gfons.txt":
        (929100, 525648, 204796, 203772, 262144, 194896, 43.4, 0.5, 25.7),
    "meminfo/pi4_4gb_rpicam598_cmafree303732.txt":
        (3884232, 1569004, 102396, 102396, 524288, 303732, 59.6, 0.0, 42.1),
    "meminfo/pi4b_1gb_rev1.1_4.19_armv7l_dphrpi901.txt":
        (946624, 556484, 102396, 92156, 262144, 231544, 41.2, 10.0, 11.7),
    "meminfo/pi4b_grep_cma_picamera2_972.txt":
        (None, None, None, None, 524288, 441276, None, None, 15.8),
    "meminfo/pi5_8gb_rpicam723_cmafree311200.txt":
        (8241456, 6764528, 204784, 204784, 327680, 311200, 17.9, 0.0, 5.0),
    "meminfo/pi_1gb_arm64_rpicam384_cmafree62052.txt":
        (878588, 365324, 0, 0, 262144, 62052, 58.4, None, 76.3),
    "meminfo/pi_512mb_32bit_brandywine.txt":
        (437796, 338956, 524284, 505004, 262144, 94736, 22.6, 3.7, 63.9),
    "meminfo/pi_512mb_32bit_overlayfs_puyallup.txt":
        (437804, 293232, 0, 0, 262144, 107392, 33.0, None, 59.0),
    "meminfo/pi_512mb_hqcam_picamera2_46_cmafree39252.txt":
        (372896, 157176, 2097148, 2041340, 262144, 39252, 57.8, 2.7, 85.0),
    "meminfo/pizerow_4.9_armv6l_cma8M_nearly_full_dphrpi100.txt":
        (444524, 302000, 102396, 102396, 8192, 108, 32.1, 0.0, 98.7),
}
# fmt: on


MEMORY_KEYS = ("total_bytes", "available_bytes", "used_bytes", "used_percent")


def kib(value: int | None) -> int | None:
    return None if value is None else value * KB


def test_every_meminfo_fixture_is_covered() -> None:
    assert set(fixture_files("meminfo")) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_meminfo_fixtures(name: str) -> None:
    mem_total, available, swap_total, swap_free, cma_total, cma_free, *_ = EXPECTED[name]
    values = parse_meminfo(fixture_text(name))
    assert values.get("MemTotal") == kib(mem_total)
    assert values.get("MemAvailable") == kib(available)
    assert values.get("SwapTotal") == kib(swap_total)
    assert values.get("SwapFree") == kib(swap_free)
    assert values["CmaTotal"] == cma_total * KB
    assert values["CmaFree"] == cma_free * KB


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reader_fixtures(tree: FixtureTree, name: str) -> None:
    mem_total, available, swap_total, swap_free, cma_total, cma_free, mem_pct, swap_pct, cma_pct = EXPECTED[
        name
    ]
    tree.write("proc/meminfo", fixture_text(name))
    gaps = Gaps()
    sample = MemoryReader(Root(tree.base)).sample(gaps, 0.0)
    assert sample["cma"] == {
        "total_bytes": cma_total * KB,
        "free_bytes": cma_free * KB,
        "used_bytes": (cma_total - cma_free) * KB,
        "used_percent": cma_pct,
    }
    if mem_total is None:
        assert sample["memory"] == dict.fromkeys(MEMORY_KEYS)
        assert gaps.reasons["memory.total_bytes"] == "no MemTotal/MemFree in /proc/meminfo"
    else:
        assert sample["memory"] == {
            "total_bytes": mem_total * KB,
            "available_bytes": available * KB,
            "used_bytes": (mem_total - available) * KB,
            "used_percent": mem_pct,
        }
    if swap_total is None:
        assert sample["swap"]["total_bytes"] is None
        assert "swap.total_bytes" in gaps.reasons
    else:
        assert sample["swap"] == {
            "total_bytes": swap_total * KB,
            "free_bytes": swap_free * KB,
            "used_bytes": (swap_total - swap_free) * KB,
            "used_percent": swap_pct,
        }
        if swap_total == 0:
            assert gaps.reasons["swap.used_percent"] == "swap total is 0 (none configured)"


def test_field_sets_differ_between_kernels() -> None:
    old = parse_meminfo(fixture_text("meminfo/pizerow_4.9_armv6l_cma8M_nearly_full_dphrpi100.txt"))
    new = parse_meminfo(fixture_text("meminfo/pi5_8gb_rpicam723_cmafree311200.txt"))
    highmem = parse_meminfo(fixture_text("meminfo/pi4b_1gb_rev1.1_4.19_armv7l_dphrpi901.txt"))
    assert "KReclaimable" not in old
    assert new["KReclaimable"] == 36864 * KB
    assert new["Zswap"] == 0
    assert highmem["HighTotal"] == 184320 * KB
    # Parenthesised keys are kept whole.
    assert new["Active(file)"] == 820336 * KB
    # 16K-page Pi 5 kernel: a 11-digit VmallocTotal.
    assert new["VmallocTotal"] == 68180246528 * KB


def test_parse_meminfo_counts_and_garbage() -> None:
    # HugePages lines have no unit (proc(5)): kept as plain counts.
    text = "HugePages_Total:       0\nHugePages_Free:        7\nHugepagesize:       2048 kB\n"
    text += "garbage\nMemTotal: lots kB\nFoo: 1 GB\nBar: 1 2 3\n: 5 kB\n\x00\n"
    assert parse_meminfo(text) == {
        "HugePages_Total": 0,
        "HugePages_Free": 7,
        "Hugepagesize": 2048 * KB,
        "": 5 * KB,
    }
    assert parse_meminfo("") == {}


def test_no_mem_available_is_estimated(tree: FixtureTree) -> None:
    # The 4.9 Zero W sample with its MemAvailable line removed, as a pre-3.14 kernel would print it.
    text = fixture_text("meminfo/pizerow_4.9_armv6l_cma8M_nearly_full_dphrpi100.txt")
    tree.write("proc/meminfo", "".join(line for line in text.splitlines(True) if "MemAvailable" not in line))
    sample = MemoryReader(Root(tree.base)).sample(Gaps(), 0.0)
    # MemFree 156548 + Buffers 2552 + Cached 187112 + SReclaimable 9268 - Shmem 3796 = 351684 kB.
    assert sample["memory"]["available_bytes"] == 351684 * KB
    assert sample["memory"]["used_bytes"] == (444524 - 351684) * KB
    assert sample["memory"]["used_percent"] == 20.9


def test_no_cma_lines_on_this_x86_machine() -> None:
    # This machine's kernel has no CONFIG_CMA: the real /proc/meminfo has no Cma lines.
    gaps = Gaps()
    sample = MemoryReader(Root(Path("/"))).sample(gaps, 0.0)
    assert sample["cma"] == dict.fromkeys(("total_bytes", "free_bytes", "used_bytes", "used_percent"))
    assert "CONFIG_CMA" in gaps.reasons["cma.total_bytes"]
    assert "CONFIG_CMA" in gaps.reasons["cma.used_percent"]
    assert sample["memory"]["total_bytes"] > 0
    assert 0.0 <= sample["memory"]["used_percent"] <= 100.0


def test_missing_meminfo(tree: FixtureTree) -> None:
    gaps = Gaps()
    sample = MemoryReader(Root(tree.base)).sample(gaps, 0.0)
    for section in ("cma", "memory", "swap"):
        assert all(value is None for value in sample[section].values())
    assert "/proc/meminfo not found" in gaps.reasons["memory.total_bytes"]
    assert "/proc/meminfo not found" in gaps.reasons["cma.free_bytes"]


def test_permission_denied(tree: FixtureTree, monkeypatch: pytest.MonkeyPatch) -> None:
    tree.write("proc/meminfo", fixture_text("meminfo/pi5_8gb_rpicam723_cmafree311200.txt"))
    deny_reads(monkeypatch, tree.base / "proc/meminfo")
    gaps = Gaps()
    sample = MemoryReader(Root(tree.base)).sample(gaps, 0.0)
    assert sample["cma"]["total_bytes"] is None
    assert "permission denied" in gaps.reasons["cma.total_bytes"]


def test_garbage_meminfo(tree: FixtureTree) -> None:
    tree.write("proc/meminfo", b"\xff\xfe\x00 not meminfo at all\nMemTotal: -\n")
    gaps = Gaps()
    sample = MemoryReader(Root(tree.base)).sample(gaps, 0.0)
    assert sample["memory"]["total_bytes"] is None
    assert "memory.used_percent" in gaps.reasons


def test_free_above_total_does_not_go_negative(tree: FixtureTree) -> None:
    # Inconsistent input (free above total) must never give negative usage.
    tree.write("proc/meminfo", "CmaTotal:  8192 kB\nCmaFree:  8200 kB\n")
    sample = MemoryReader(Root(tree.base)).sample(Gaps(), 0.0)
    assert sample["cma"]["used_bytes"] == 0
    assert sample["cma"]["used_percent"] == 0.0
