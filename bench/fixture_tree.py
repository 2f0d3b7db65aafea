"""A fixture tree standing for a Pi's ``/``, for the benchmarks: real captures where they exist.

* From ``shared/fixtures/pi`` (captured on real Pis; the boards differ, which does not matter for cost):
  cpuinfo and meminfo of a Pi 4, the thermal zone, the ``rpi_volt`` hwmon alarm, a 6.x debugfs bufinfo
  excerpt, ``/proc/net/dev``, ``/proc/net/wireless`` and the legacy ``get_throttled`` attribute.
* No Pi capture exists of ``/proc/stat``, ``/proc/uptime`` or ``/proc/loadavg``: this machine's own files
  are copied (real kernel output; 2 CPUs where a Pi 4 has 4, so ``/proc/stat`` is a little shorter).
* ``proc/<pid>/`` for the per-process DMA-buf scan: the fixtures have no dma-buf fdinfo capture (a
  documented gap), so the processes holding buffers get fdinfo files in the format of the kernel's
  ``dma_buf_show_fdinfo`` (``size``/``count``/``exp_name`` after the generic ``pos``/``flags``/``mnt_id``/
  ``ino`` lines), and fd links as ``dmabuffs_dname`` prints them (``/dmabuf:``). The other processes have
  ordinary fds (``/dev/null``, sockets, pipes), which the scan must read past.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pi_stream_agent.simulation.captures import default_fixtures_dir, strip_header

# Tree path → capture file below fixtures/pi.
CAPTURES: dict[str, str] = {
    "proc/cpuinfo": "cpuinfo/pi4b_rev1.1_a03111_armv7l_4.19.txt",
    "proc/meminfo": "meminfo/pi4_4gb_rpicam598_cmafree303732.txt",
    "sys/class/thermal/thermal_zone0/temp": "sysfs/thermal_zone0_temp_brandywine.txt",
    "sys/kernel/debug/dma_buf/bufinfo": "dmabuf/bufinfo_pi4_6.x_vcsmcma_v3d_partial_rpicam598.txt",
    "proc/net/dev": "net/proc_net_dev_raspberrypi_eth0_rxdrops_weechat229_partial.txt",
    "proc/net/wireless": "net/proc_net_wireless_brandywine.txt",
}
HWMON_VALUES = "sysfs/hwmon_rpi_volt_and_thermal_fixture_values.txt"
LEGACY_THROTTLED = "sysfs/legacy_soc_firmware_get_throttled_pi3bplus.txt"
HOST_COPIES = ("proc/stat", "proc/uptime", "proc/loadavg")

# Processes holding dma-bufs: (comm, [(size, exporter), …]). Sizes are buffer sizes seen in the bufinfo
# captures (622592 = a 640x480 YUV420 frame rounded to pages; 3112960 ≈ 1920x1080 YUV420).
HOLDERS: tuple[tuple[str, tuple[tuple[int, str], ...]], ...] = (
    ("rpicam-vid", tuple((3112960, "linux,cma") for _ in range(6))),
    ("ffmpeg", ((622592, "videobuf2_dma_contig"), (622592, "videobuf2_dma_contig"))),
    ("Xorg", ((8294400, "drm"),)),
)


@dataclass(frozen=True)
class FixtureTreeInfo:
    base: Path
    processes: int
    dmabuf_holders: int
    dmabuf_fds: int
    ordinary_fds: int


def _capture(fixtures: Path, relative: str) -> str:
    return strip_header((fixtures / relative).read_text(encoding="utf-8"))


def _write(base: Path, relative: str, content: str | bytes) -> None:
    path = base / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def _dmabuf_fdinfo(size: int, exporter: str, inode: int) -> str:
    # dma_buf_show_fdinfo (drivers/dma-buf/dma-buf.c) after fs/proc/fd.c's generic lines.
    return (
        f"pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t{inode}\n"
        f"size:\t{size}\ncount:\t1\nexp_name:\t{exporter}\n"
    )


def build_fixture_tree(
    base: Path, *, processes: int = 120, fds_per_process: int = 8, fixtures: Path | None = None
) -> FixtureTreeInfo:
    """Write the tree below ``base``. ``processes`` counts every ``proc/<pid>`` (the holders included)."""
    fixtures = fixtures or default_fixtures_dir()
    if fixtures is None:
        raise RuntimeError("shared/fixtures/pi not found beside the repository (set PI_STREAM_SHARED)")
    for relative, capture in CAPTURES.items():
        _write(base, relative, _capture(fixtures, capture))
    for line in _capture(fixtures, HWMON_VALUES).splitlines():
        path, sep, value = line.partition(" = ")
        if sep and (path.startswith("sys/class/hwmon/") or path.endswith("thermal_zone0/type")):
            _write(base, path.strip(), value.strip() + "\n")
    # Two readings in the capture, one per line; the attribute holds one.
    _write(
        base,
        "sys/devices/platform/soc/soc:firmware/get_throttled",
        _capture(fixtures, LEGACY_THROTTLED).splitlines()[0] + "\n",
    )
    for relative in HOST_COPIES:
        _write(base, relative, Path("/", relative).read_text(encoding="utf-8"))
    _write(base, "dev/kmsg", "")  # a log with nothing in it yet: followed by polling, as in any fixture tree

    inode = 40000
    dmabuf_fds = ordinary_fds = 0
    for index in range(processes):
        pid = 1000 + index
        comm, held = HOLDERS[index] if index < len(HOLDERS) else (f"proc{index}", ())
        proc = base / "proc" / str(pid)
        (proc / "fd").mkdir(parents=True)
        (proc / "fdinfo").mkdir()
        _write(base, f"proc/{pid}/comm", comm + "\n")
        ordinary = ("/dev/null", f"socket:[{20000 + index}]", f"pipe:[{30000 + index}]", "/var/log/x.log")
        for fd in range(fds_per_process):
            os.symlink(ordinary[fd % len(ordinary)], proc / "fd" / str(fd))
            ordinary_fds += 1
        for offset, (size, exporter) in enumerate(held):
            fd = fds_per_process + offset
            inode += 1
            os.symlink("/dmabuf:", proc / "fd" / str(fd))
            _write(base, f"proc/{pid}/fdinfo/{fd}", _dmabuf_fdinfo(size, exporter, inode))
            dmabuf_fds += 1
    return FixtureTreeInfo(base, processes, min(processes, len(HOLDERS)), dmabuf_fds, ordinary_fds)
