"""The root filesystem: size, use, whether it was remounted read-only (the classic dying SD card), and the
storage errors the kernel logged (counted by :class:`~.kernel_events.KernelEvents`).

``/proc/self/mountinfo`` names the root mount's ``major:minor`` (``/dev/root`` in the source column on Pi OS
tells nothing) and both its per-mount and superblock options: ext4's ``errors=remount-ro`` flips the
superblock to ``ro``. The device name comes from ``/sys/dev/block/<major:minor>/uevent`` (``DEVNAME=``),
read once. Size and use: one ``statvfs`` of the root, as ``df`` does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error
from pi_stream_agent.telemetry.kernel_events import KernelEvents

MOUNTINFO = "proc/self/mountinfo"


@dataclass(frozen=True)
class RootMount:
    """The ``/`` line of mountinfo."""

    major_minor: str
    source: str
    fstype: str
    read_only: bool


def parse_root_mount(text: str) -> RootMount | None:
    """The last mount on ``/`` (an initramfs root may be listed before the real one). mountinfo(5):
    ``id parent major:minor root mountpoint options [optional…] - fstype source superoptions``."""
    found: RootMount | None = None
    for line in text.splitlines():
        left, separator, right = line.partition(" - ")
        fields = left.split()
        after = right.split()
        if not separator or len(fields) < 6 or len(after) < 3 or fields[4] != "/":
            continue
        options = fields[5].split(",")
        super_options = after[2].split(",")
        found = RootMount(fields[2], after[1], after[0], "ro" in options or "ro" in super_options)
    return found


def parse_uevent_devname(text: str) -> str | None:
    """``DEVNAME=mmcblk0p2`` from a block device's uevent file."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "DEVNAME" and value:
            return value.strip()
    return None


@dataclass(frozen=True)
class Usage:
    total_bytes: int
    used_bytes: int
    free_bytes: int
    used_percent: float


def usage_from_statvfs(result: os.statvfs_result) -> Usage:
    """As ``df``: used = blocks - free; free = what a normal user may still write (f_bavail); the percentage
    of used over used + available (the root-reserved blocks do not count as room)."""
    size = result.f_frsize or result.f_bsize
    total = result.f_blocks * size
    used = (result.f_blocks - result.f_bfree) * size
    free = result.f_bavail * size
    room = used + free
    return Usage(total, used, free, round(100.0 * used / room, 1) if room else 0.0)


_EMPTY_ROOT: dict[str, Any] = {
    "device": None,
    "total_bytes": None,
    "used_bytes": None,
    "free_bytes": None,
    "used_percent": None,
    "read_only": None,
}


class StorageReader:
    """``{"storage": {"root": {...}, "errors_total", "last_error"}}``."""

    def __init__(
        self,
        root: Root,
        kernel_events: KernelEvents,
        *,
        statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
    ) -> None:
        self._root = root
        self._kernel_events = kernel_events
        self._statvfs = statvfs
        self._devices: dict[str, str | None] = {}

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        section: dict[str, Any] = dict(_EMPTY_ROOT)
        try:
            mount = parse_root_mount(self._root.read_text(MOUNTINFO))
        except OSError as exc:
            gaps.note("storage.root.device", describe_os_error(exc, "/" + MOUNTINFO))
            gaps.note("storage.root.read_only", describe_os_error(exc, "/" + MOUNTINFO))
        else:
            if mount is None:
                gaps.note("storage.root.device", f"/{MOUNTINFO}: no mount on /")
                gaps.note("storage.root.read_only", f"/{MOUNTINFO}: no mount on /")
            else:
                section["device"] = self._device(mount)
                section["read_only"] = mount.read_only
        try:
            usage = usage_from_statvfs(self._statvfs(str(self._root.path("/"))))
        except OSError as exc:
            for key in ("total_bytes", "used_bytes", "free_bytes", "used_percent"):
                gaps.note(f"storage.root.{key}", describe_os_error(exc, "statvfs /"))
        else:
            section.update(
                total_bytes=usage.total_bytes,
                used_bytes=usage.used_bytes,
                free_bytes=usage.free_bytes,
                used_percent=usage.used_percent,
            )
        events = self._kernel_events
        errors_total: int | None = events.storage_errors_total if events.following else None
        if errors_total is None:
            gaps.note("storage.errors_total", events.unavailable_reason or "kernel log not followed")
        elif events.last_storage_error is None:
            gaps.note("storage.last_error", "no storage error logged since boot")
        return {
            "storage": {
                "root": section,
                "errors_total": errors_total,
                "last_error": events.last_storage_error,
            }
        }

    def _device(self, mount: RootMount) -> str | None:
        """The kernel's name of the root device, looked up once per major:minor."""
        if mount.major_minor not in self._devices:
            name: str | None = None
            with contextlib.suppress(OSError):
                uevent = self._root.read_text(f"sys/dev/block/{mount.major_minor}/uevent")
                name = parse_uevent_devname(uevent)
            if name is None and mount.source.startswith("/dev/") and mount.source != "/dev/root":
                name = mount.source.removeprefix("/dev/")
            self._devices[mount.major_minor] = name
        return self._devices[mount.major_minor]
