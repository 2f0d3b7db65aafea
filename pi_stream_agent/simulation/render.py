"""Pure text renderers: the simulated Pi's state → the exact text the kernel prints in each file.

Each function names the kernel source whose format string it follows. Where a capture exists, the tests
render the capture's own values and compare with the capture byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# --------------------------------------------------------------------------------------------- /proc/stat


@dataclass
class CpuTicks:
    """One ``cpuN`` line of /proc/stat, in USER_HZ (100/s) ticks; steal/guest/guest_nice stay 0 on a Pi."""

    user: int = 0
    nice: int = 0
    system: int = 0
    idle: int = 0
    iowait: int = 0
    irq: int = 0
    softirq: int = 0

    def values(self) -> tuple[int, ...]:
        return (self.user, self.nice, self.system, self.idle, self.iowait, self.irq, self.softirq, 0, 0, 0)


def render_proc_stat(
    cpus: Sequence[CpuTicks],
    *,
    interrupts: Sequence[int],
    context_switches: int,
    boot_time: int,
    forks: int,
    running: int,
    blocked: int,
    softirqs: Sequence[int],
) -> str:
    """fs/proc/stat.c ``show_stat``: ``cpu  …`` (two spaces), ``cpuN …``, ``intr <sum> <per irq>…``,
    ``ctxt``, ``btime``, ``processes``, ``procs_running``, ``procs_blocked``, ``softirq <sum> <10 kinds>``.
    The real ``intr`` line lists every IRQ number (hundreds, mostly 0); a short list keeps the file small."""
    total = [sum(column) for column in zip(*(cpu.values() for cpu in cpus), strict=True)]
    lines = ["cpu  " + " ".join(map(str, total))]
    lines.extend(f"cpu{index} " + " ".join(map(str, cpu.values())) for index, cpu in enumerate(cpus))
    lines.append(f"intr {sum(interrupts)} " + " ".join(map(str, interrupts)))
    lines.append(f"ctxt {context_switches}")
    lines.append(f"btime {boot_time}")
    lines.append(f"processes {forks}")
    lines.append(f"procs_running {running}")
    lines.append(f"procs_blocked {blocked}")
    lines.append(f"softirq {sum(softirqs)} " + " ".join(map(str, softirqs)))
    return "\n".join(lines) + "\n"


def render_uptime(uptime_s: float, idle_s: float) -> str:
    """fs/proc/uptime.c: ``%lu.%02lu %lu.%02lu`` — seconds since boot, idle seconds summed over CPUs."""
    return f"{uptime_s:.2f} {idle_s:.2f}\n"


def render_loadavg(loads: Sequence[float], running: int, threads: int, last_pid: int) -> str:
    """fs/proc/loadavg.c: ``0.20 0.18 0.12 1/80 11206``."""
    one, five, fifteen = loads
    return f"{one:.2f} {five:.2f} {fifteen:.2f} {running}/{threads} {last_pid}\n"


# ------------------------------------------------------------------------------------------ /proc/meminfo


def meminfo_line(key: str, value_kb: int) -> str:
    """fs/proc/meminfo.c ``show_val_kb``: the label padded to 16 columns, the value right-aligned in 8."""
    return f"{key + ':':<16}{value_kb:>8} kB"


def render_meminfo(template: str, values: Mapping[str, int]) -> str:
    """The captured meminfo with the ``values`` (kB, by key) put in; every other line stays as captured."""
    out: list[str] = []
    for line in template.splitlines():
        key = line.partition(":")[0]
        out.append(meminfo_line(key, values[key]) if key in values else line)
    return "\n".join(out) + "\n"


def parse_meminfo_kb(text: str) -> dict[str, int]:
    """``Key: value kB`` lines → {key: kB}; for seeding the simulation from a capture. Lines without the
    ``kB`` unit (``HugePages_Total:       0``) are left out, so :func:`render_meminfo` never adds one."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        fields = rest.split()
        if sep and len(fields) == 2 and fields[0].isdigit() and fields[1] == "kB":
            values[key] = int(fields[0])
    return values


# ----------------------------------------------------------------------------------------- /proc/net/dev

NET_DEV_FIELDS = (
    "rx_bytes", "rx_packets", "rx_errs", "rx_drop", "rx_fifo", "rx_frame", "rx_compressed", "rx_multicast",
    "tx_bytes", "tx_packets", "tx_errs", "tx_drop", "tx_fifo", "tx_colls", "tx_carrier", "tx_compressed",
)  # fmt: skip

# net/core/net-procfs.c dev_seq_printf_stats: the name right-aligned in 6, then the 16 counters.
_NET_DEV_WIDTHS = (7, 7, 4, 4, 4, 5, 10, 9, 8, 7, 4, 4, 4, 5, 7, 10)


def net_dev_line(name: str, counters: Mapping[str, int]) -> str:
    pairs = zip(NET_DEV_FIELDS, _NET_DEV_WIDTHS, strict=True)
    values = " ".join(f"{counters.get(key, 0):>{width}}" for key, width in pairs)
    return f"{name:>6}: {values}"


def render_net_dev(header: Sequence[str], interfaces: Iterable[tuple[str, Mapping[str, int]]]) -> str:
    """The two captured header lines, then one line per interface (the kernel lists them by ifindex)."""
    return "\n".join([*header, *(net_dev_line(name, counters) for name, counters in interfaces)]) + "\n"


# ------------------------------------------------------------------------------------ /proc/net/wireless


@dataclass
class WirelessLine:
    """One /proc/net/wireless line. ``level_dbm`` is what cfg80211 reports for brcmfmac; the link quality is
    derived from it the way cfg80211's wext shim does (``clamp(dBm, -110, -40) + 110``); brcmfmac reports
    no noise, which the kernel prints as -256."""

    name: str
    level_dbm: int
    status: int = 0
    noise: int = -256
    discard_nwid: int = 0
    discard_crypt: int = 0
    discard_frag: int = 0
    discard_retry: int = 0
    discard_misc: int = 0
    missed_beacon: int = 0

    @property
    def quality(self) -> int:
        return min(max(self.level_dbm, -110), -40) + 110


def wireless_line(line: WirelessLine) -> str:
    """net/wireless/wext-proc.c: ``%6s: %04x  %3d%c  %3d%c  %3d%c  %6d %6d %6d %6d %6d   %6d``; the ``.``
    after quality and level marks them updated, noise (never updated by brcmfmac) gets a space."""
    return (
        f"{line.name:>6}: {line.status:04x}  {line.quality:>3}.  {line.level_dbm:>3}.  {line.noise:>3}   "
        f"{line.discard_nwid:>6} {line.discard_crypt:>6} {line.discard_frag:>6} {line.discard_retry:>6} "
        f"{line.discard_misc:>6}   {line.missed_beacon:>6}"
    )


def render_wireless(header: Sequence[str], lines: Iterable[WirelessLine]) -> str:
    return "\n".join([*header, *(wireless_line(line) for line in lines)]) + "\n"


# ------------------------------------------------------------------------------------------------ /dev/kmsg

KMSG_CRIT = 2  # facility 0 (kernel) << 3 | LOGLEVEL_CRIT
KMSG_INFO = 6  # facility 0 (kernel) << 3 | LOGLEVEL_INFO


@dataclass(frozen=True)
class KmsgRecord:
    priority: int
    seq: int
    usec: int
    text: str


def render_kmsg(record: KmsgRecord) -> str:
    """Documentation/ABI/testing/dev-kmsg: ``<prio>,<seq>,<usec since boot>,<flags>;<text>``; flags ``-``
    (not a continuation line)."""
    return f"{record.priority},{record.seq},{record.usec},-;{record.text}\n"


# drivers/hwmon/raspberrypi-hwmon.c (downstream): pr_crit_ratelimited_local / pr_info_ratelimited_local
# with these formats and the word the driver read (sticky bits asked to be cleared, 0xffff).
def under_voltage_detected(word: int) -> str:
    return f"Under-voltage detected! (0x{word:08x})"


def voltage_normalised(word: int) -> str:
    return f"Voltage normalised (0x{word:08x})"


KMSG_ERR = 3  # facility 0 (kernel) << 3 | LOGLEVEL_ERR


# mm/oom_kill.c: dump_oom_summary() (pr_info) and __oom_kill_process() (pr_err), as in the real lines quoted
# in fixtures/pi/kernel_log/oom_kill_*.txt; the memcg is the agent's systemd unit, where publishers run.
def oom_kill_summary(pid: int, process: str) -> str:
    return (
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
        f"task_memcg=/system.slice/pi-stream-agent.service,task={process},pid={pid},uid=0"
    )


def oom_killed_process(pid: int, process: str, anon_rss_kb: int) -> str:
    return (
        f"Out of memory: Killed process {pid} ({process}) total-vm:{anon_rss_kb * 3}kB, "
        f"anon-rss:{anon_rss_kb}kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:{anon_rss_kb // 200}kB "
        "oom_score_adj:0"
    )


# A failing SD card, in the shapes of fixtures/pi/kernel_log/storage_*.txt (drivers/mmc/host/bcm2835.c,
# block/blk-core.c on 6.x kernels, fs/ext4/super.c).
def mmc_timeout() -> str:
    return "mmc0: timeout waiting for hardware interrupt."


def block_io_error(sector: int) -> str:
    return f"I/O error, dev mmcblk0, sector {sector} op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2"


def ext4_error(inode: int) -> str:
    return (
        f"EXT4-fs error (device mmcblk0p2): ext4_find_entry:1683: inode #{inode}: comm systemd-journal: "
        "reading directory lblock 0"
    )


def ext4_remount_read_only() -> str:
    return "EXT4-fs (mmcblk0p2): Remounting filesystem read-only"


# ------------------------------------------------------------------------ /sys/kernel/debug/dma_buf/bufinfo


def bufinfo_header(capture: str) -> str | None:
    """The column header line (``size    \\tflags   \\t…\\tname``) from a captured 5.19+ bufinfo."""
    for line in capture.splitlines():
        if line.startswith("size") and line.rstrip().endswith("name"):
            return line
    return None


def render_bufinfo(header: str, rows: str) -> str:
    """drivers/dma-buf/dma-buf.c ``dma_buf_debug_show``: ``\\nDma-buf Objects:\\n``, the header, each buffer
    block ending ``Total N devices attached\\n\\n``, then ``\\nTotal <n> objects, <bytes> bytes\\n``.
    ``rows`` are captured buffer blocks; the totals are counted from them."""
    blocks = [block.strip("\n") for block in rows.split("\n\n") if block.strip("\n")]
    count = 0
    size = 0
    for block in blocks:
        first = block.split("\t", 1)[0]
        if first.isdigit():
            count += 1
            size += int(first)
    body = "".join(block + "\n\n" for block in blocks)
    return f"\nDma-buf Objects:\n{header}\n{body}\nTotal {count} objects, {size} bytes\n"


# ---------------------------------------------------------------------------------------------- /proc/cpuinfo

# BogoMIPS on arm64 is twice the architected timer frequency in MHz: the Pi 3's 19.2 MHz timer prints
# 38.40 (cpuinfo/pi3bplus_arm64_a020d3.txt, kernel 6.6.31+rpt-rpi-v8); the Pi 4's is 54 MHz.
PI4_ARM64_BOGOMIPS = "108.00"
# Feature list the 6.6 arm64 kernel prints for an ARMv8.0 core with CRC (same capture: Cortex-A53; the
# Pi 4's Cortex-A72 has the same v8.0 + CRC feature set).
ARM64_V8_CRC_FEATURES = "fp asimd evtstrm crc32 cpuid"


def adapt_pi4_cpuinfo(captured: str, *, revision: str, serial: str, model: str) -> str:
    """Turn the captured 32-bit Pi 4 cpuinfo (4.19.118-v7l+, Revision a03111) into what the 64-bit 6.x kernel
    prints on a 4 GB Pi 4: arm64 drops ``model name`` and ``Hardware``, reports architecture 8, its own
    BogoMIPS and feature names; CPU implementer/part/variant/revision (Cortex-A72 r0p3) stay as captured,
    and the board lines get the new revision code, serial and model."""
    replacements = {
        "BogoMIPS": f"BogoMIPS\t: {PI4_ARM64_BOGOMIPS}",
        "Features": f"Features\t: {ARM64_V8_CRC_FEATURES}",
        "CPU architecture": "CPU architecture: 8",
        "Revision": f"Revision\t: {revision}",
        "Serial": f"Serial\t\t: {serial}",
        "Model": f"Model\t\t: {model}",
    }
    out: list[str] = []
    for line in captured.splitlines():
        key = line.partition(":")[0].strip()
        if key in ("model name", "Hardware"):
            continue
        out.append(replacements.get(key, line))
    return "\n".join(out) + "\n"
