"""DMA-buf usage: who exported the buffers (camera, ISP, codec, GPU) and which processes hold them.

Two kernel interfaces, both optional:

* ``/sys/kernel/debug/dma_buf/bufinfo`` — every buffer with exporter and attached devices; needs root and a
  mounted debugfs. Three row layouts by kernel era (see :func:`parse_bufinfo`).
* ``/proc/<pid>/fdinfo/<fd>`` of each dma-buf fd — ``size``, ``exp_name`` and the buffer's inode; readable
  for the agent's own user's processes (its publishers) without root. Attached devices are not in it.

Walking every process's fds costs far more than the rest of a sample, so :class:`DmabufReader` repeats
the walk at most once per ``process_scan_interval_s`` and serves the cached result in between.

Without debugfs the totals cover only buffers some readable process holds an fd to: buffers held only by
drivers, by other users' processes (without root) or only through an mmap are not seen.
"""

from __future__ import annotations

import concurrent.futures
import os
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error

BUFINFO = "sys/kernel/debug/dma_buf/bufinfo"

# readlink() of a dma-buf fd: "/dmabuf:<name>" since the dma-buf pseudo-filesystem (5.3; dmabuffs_dname
# prints "/%s:%s"), "anon_inode:dmabuf" before it.
_LINK_PREFIX = "/dmabuf:"
_LINK_ANON = "anon_inode:dmabuf"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


@dataclass
class DmaBuffer:
    """One row of bufinfo. ``inode``/``name`` are None on kernels that do not print them (<= 4.19)."""

    size: int
    flags: int
    mode: int
    count: int
    exporter: str
    inode: int | None = None
    name: str | None = None
    devices: list[str] = field(default_factory=list)


@dataclass
class Bufinfo:
    """A parsed bufinfo table. ``total_*`` come from the footer and are None when it is missing (a cut
    excerpt); :meth:`bytes_total` then falls back to the rows."""

    buffers: list[DmaBuffer] = field(default_factory=list)
    columns: list[str] | None = None  # header names, e.g. ["size", "flags", "mode", "count", "exp_name"]
    total_objects: int | None = None
    total_bytes: int | None = None

    @property
    def recognised(self) -> bool:
        """False when the text held nothing of a bufinfo table (garbage or an unrelated file)."""
        return self.columns is not None or bool(self.buffers) or self.total_bytes is not None

    def bytes_total(self) -> int:
        return self.total_bytes if self.total_bytes is not None else sum(b.size for b in self.buffers)

    def buffer_count(self) -> int:
        return self.total_objects if self.total_objects is not None else len(self.buffers)

    def bytes_by_exporter(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for buffer in self.buffers:
            result[buffer.exporter] = result.get(buffer.exporter, 0) + buffer.size
        return result

    def bytes_by_device(self) -> dict[str, int]:
        """Bytes of the buffers each device has attached. A device attached twice to one buffer (seen with
        ``fec00000.v3d``) counts that buffer once."""
        result: dict[str, int] = {}
        for buffer in self.buffers:
            for device in set(buffer.devices):
                result[device] = result.get(device, 0) + buffer.size
        return result


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in _HEX_DIGITS for c in text)


def _parse_row(line: str) -> DmaBuffer | None:
    # The kernel separates columns with TABs; copies pasted from web pages may have spaces instead.
    if "\t" in line:
        fields = [f.strip() for f in line.split("\t")]
        name_field = fields[6] if len(fields) > 6 else ""
    else:
        fields = line.split()
        name_field = " ".join(fields[6:])
    if len(fields) < 5:
        return None
    size, flags, mode, count, exporter = fields[:5]
    if not (size.isdigit() and _is_hex(flags) and _is_hex(mode) and count.isdigit() and exporter):
        return None
    inode = int(fields[5]) if len(fields) > 5 and fields[5].isdigit() else None
    # 5.4-5.15 print an empty name for unnamed buffers, 5.19+ print "<none>".
    name = name_field if name_field and name_field != "<none>" else None
    return DmaBuffer(
        size=int(size),
        flags=int(flags, 16),
        mode=int(mode, 16),
        count=int(count),
        exporter=exporter,
        inode=inode,
        name=name,
    )


def parse_bufinfo(text: str) -> Bufinfo:
    """Parse ``/sys/kernel/debug/dma_buf/bufinfo`` of any kernel era.

    Rows: ``size flags mode count exp_name`` (<= 4.19), ``… exp_name ino name-or-empty`` (5.4-5.15),
    ``… exp_name ino name-or-<none>`` (5.19+). After each row: fence lines, ``\\tAttached Devices:``, one
    ``\\t<device>`` per importer, ``Total N devices attached``. Footer ``Total N objects, B bytes``; anything
    after the footer belongs to some other output and is ignored.
    """
    table = Bufinfo()
    current: DmaBuffer | None = None
    in_devices = False
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if line[0] in " \t":
            # Indented: a fence line, the "Attached Devices:" marker or one attached device.
            if stripped == "Attached Devices:":
                in_devices = current is not None
            elif in_devices and current is not None:
                current.devices.append(stripped)
            continue
        in_devices = False
        if stripped.startswith("Total "):
            parts = stripped.split()
            if len(parts) >= 5 and parts[2] == "objects," and parts[1].isdigit() and parts[3].isdigit():
                table.total_objects = int(parts[1])
                table.total_bytes = int(parts[3])
                break
            continue  # "Total N devices attached"
        first = stripped.split(None, 1)[0]
        if first == "size":
            table.columns = [c.strip() for c in stripped.split("\t" if "\t" in stripped else None)]
            continue
        row = _parse_row(line)
        current = row
        if row is not None:
            table.buffers.append(row)
    return table


@dataclass(frozen=True)
class DmabufFdinfo:
    """``/proc/<pid>/fdinfo/<fd>`` of a dma-buf fd: generic ``pos/flags/mnt_id/ino`` lines from
    fs/proc/fd.c, then ``size``, ``count``, ``exp_name`` and (when set) ``name`` from dma_buf_show_fdinfo."""

    size: int | None = None
    count: int | None = None
    exporter: str | None = None
    name: str | None = None
    inode: int | None = None
    flags: int | None = None
    pos: int | None = None
    mnt_id: int | None = None


def _int_or_none(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def parse_fdinfo(text: str) -> DmabufFdinfo:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values.setdefault(key.strip(), value.strip())
    # Some vendor kernels print the inode as "dmabuf_inode_no" instead of (or before) the generic "ino".
    inode = values.get("ino", values.get("dmabuf_inode_no"))
    return DmabufFdinfo(
        size=_int_or_none(values.get("size")),
        count=_int_or_none(values.get("count")),
        exporter=values.get("exp_name") or None,
        name=values.get("name") or None,
        inode=_int_or_none(inode),
        flags=_int_or_none(values.get("flags"), 8),  # printed as "0%o"
        pos=_int_or_none(values.get("pos")),
        mnt_id=_int_or_none(values.get("mnt_id")),
    )


@dataclass(frozen=True)
class HeldBuffer:
    """A buffer seen through a process's fd."""

    size: int
    exporter: str | None


# An inode when the kernel gives one; otherwise (pid, fd), which dedupes nothing but counts the buffer.
BufferKey: TypeAlias = int | tuple[str, str]


@dataclass
class ProcessScan:
    """Result of one walk over ``/proc/*/fd``. ``buffers`` is deduplicated across all processes."""

    buffers: dict[BufferKey, HeldBuffer] = field(default_factory=dict)
    by_process: dict[str, int] = field(default_factory=dict)
    processes: int = 0
    processes_denied: int = 0  # fd directory not readable (another user's process without root)
    processes_vanished: int = 0  # exited while we looked
    fds_unreadable: int = 0  # dma-buf fd whose fdinfo could not be read or has no size

    def bytes_total(self) -> int:
        return sum(b.size for b in self.buffers.values())

    def bytes_by_exporter(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for buffer in self.buffers.values():
            exporter = buffer.exporter or "unknown"
            result[exporter] = result.get(exporter, 0) + buffer.size
        return result


def _read_small(path: str) -> str:
    # One open/read/close: cheaper than a buffered text file for the tiny procfs files read per fd.
    handle = os.open(path, os.O_RDONLY)
    try:
        return os.read(handle, 8192).decode("utf-8", errors="replace")
    finally:
        os.close(handle)


def _scan_process(proc: str, pid: str, scan: ProcessScan) -> None:
    fd_dir = f"{proc}/{pid}/fd"
    try:
        with os.scandir(fd_dir) as entries:
            fds = [entry.name for entry in entries]
    except FileNotFoundError:
        scan.processes_vanished += 1
        return
    except PermissionError:
        scan.processes_denied += 1
        return
    except OSError:  # ESRCH and friends: the process is going away
        scan.processes_vanished += 1
        return
    scan.processes += 1
    held: dict[BufferKey, HeldBuffer] = {}
    for fd in fds:
        link = f"{fd_dir}/{fd}"
        try:
            target = os.readlink(link)
        except OSError:  # fd closed since the listing, or not ours to read
            continue
        if not target.startswith(_LINK_PREFIX) and target != _LINK_ANON:
            continue
        try:
            info = parse_fdinfo(_read_small(f"{proc}/{pid}/fdinfo/{fd}"))
        except OSError:
            scan.fds_unreadable += 1
            continue
        if info.size is None:  # pre-5.3 kernels have no dma-buf fdinfo: size unknown
            scan.fds_unreadable += 1
            continue
        key: BufferKey | None = info.inode
        if key is None and target != _LINK_ANON:
            # Kernels without "ino:" in fdinfo: the link resolves to the buffer's own inode.
            try:
                key = os.stat(link).st_ino
            except OSError:
                key = None
        if key is None:
            # anon_inode dma-bufs all share one inode; without an id every fd counts separately.
            key = (pid, fd)
        held[key] = HeldBuffer(info.size, info.exporter)
    if not held:
        return
    try:
        comm = _read_small(f"{proc}/{pid}/comm").strip() or pid
    except OSError:
        scan.processes_vanished += 1
        return
    scan.by_process[comm] = scan.by_process.get(comm, 0) + sum(b.size for b in held.values())
    scan.buffers.update(held)


def scan_processes(root: Root) -> ProcessScan:
    """Walk every ``/proc/<pid>/fd`` and total the dma-bufs each process holds (each buffer once per
    process; processes with the same ``comm`` are summed). Raises OSError only when ``/proc`` itself
    cannot be listed; unreadable or vanishing processes are counted in the result."""
    proc = str(root.path("proc"))
    with os.scandir(proc) as entries:
        pids = [entry.name for entry in entries if entry.name.isdigit()]
    scan = ProcessScan()
    for pid in pids:
        _scan_process(proc, pid, scan)
    return scan


_NO_DEVICES_WITHOUT_DEBUGFS = "attached devices are only listed in debugfs bufinfo (needs root and debugfs)"


class DmabufReader:
    """Reads bufinfo every sample when it is readable; walks the processes at most once per interval."""

    def __init__(
        self, root: Root, process_scan_interval_s: float = 30.0, *, background: bool = False
    ) -> None:
        """``background``: rescans after the first run in a worker thread and the sample serves the previous
        result meanwhile. The scan walks every process (~100 ms on a Zero 2 W at 400 processes): in the
        running agent it must not hold up the event loop."""
        self._root = root
        self._interval = process_scan_interval_s
        self._background = background
        self._scan: ProcessScan | None = None
        self._scan_error: str | None = None
        self._scanned_at: float | None = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: concurrent.futures.Future[ProcessScan] | None = None

    def process_scan(self, now: float) -> ProcessScan | None:
        """The cached scan, refreshed when older than the interval. None (reason in :attr:`scan_error`)
        when ``/proc`` cannot be listed."""
        if self._pending is not None and self._pending.done():
            self._take(self._pending)
            self._pending = None
        due = self._scanned_at is None or now - self._scanned_at >= self._interval or now < self._scanned_at
        if due and self._pending is None:
            first = self._scanned_at is None
            self._scanned_at = now
            if self._background and not first:
                if self._worker is None:
                    self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dmabuf-scan")
                self._pending = self._worker.submit(scan_processes, self._root)
            else:
                future: concurrent.futures.Future[ProcessScan] = concurrent.futures.Future()
                try:
                    future.set_result(scan_processes(self._root))
                except OSError as exc:
                    future.set_exception(exc)
                self._take(future)
        return self._scan

    def _take(self, future: concurrent.futures.Future[ProcessScan]) -> None:
        try:
            self._scan = future.result()
            self._scan_error = None
        except OSError as exc:
            self._scan = None
            self._scan_error = describe_os_error(exc, "/proc")

    def close(self) -> None:
        """Stop the worker thread (waits for a scan in progress)."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None
            self._pending = None

    @property
    def scan_error(self) -> str | None:
        return self._scan_error

    def _read_bufinfo(self) -> tuple[Bufinfo | None, str]:
        try:
            table = parse_bufinfo(self._root.read_text(BUFINFO))
        except OSError as exc:
            return None, describe_os_error(exc, "/" + BUFINFO)
        if not table.recognised:
            return None, f"/{BUFINFO}: unexpected format"
        return table, ""

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        table, debugfs_reason = self._read_bufinfo()
        scan = self.process_scan(now)
        result: dict[str, Any] = {
            "total_bytes": None,
            "buffers": None,
            "by_exporter": None,
            "by_device": None,
            "by_process": scan.by_process if scan is not None else None,
            "source": None,
        }
        if scan is None:
            gaps.note("dmabuf.by_process", self._scan_error or "process scan unavailable")
        if table is not None:
            result.update(
                total_bytes=table.bytes_total(),
                buffers=table.buffer_count(),
                by_exporter=table.bytes_by_exporter(),
                by_device=table.bytes_by_device(),
                source="debugfs",
            )
            return {"dmabuf": result}
        gaps.note("dmabuf.by_device", f"{debugfs_reason}; {_NO_DEVICES_WITHOUT_DEBUGFS}")
        if scan is not None:
            result.update(
                total_bytes=scan.bytes_total(),
                buffers=len(scan.buffers),
                by_exporter=scan.bytes_by_exporter(),
                source="fdinfo",
            )
            return {"dmabuf": result}
        reason = f"{debugfs_reason}; process scan: {self._scan_error}"
        for key in ("total_bytes", "buffers", "by_exporter", "source"):
            gaps.note(f"dmabuf.{key}", reason)
        return {"dmabuf": result}
