"""Writing the simulated root: atomic file replacement and the parts of the tree that never change.

Atomic: every rewritten file goes to a hidden temporary in the same directory and is renamed over the old
one, so a reader sees the old or the new file, never half of one. ``dev/kmsg`` is the exception by design:
like the real device it only ever grows, by one ``write`` of whole records, so a reader holding it open
keeps reading where it was (a rename would leave such a reader on the old file forever).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pi_stream_agent.simulation.render import KmsgRecord, render_kmsg


def write_atomic(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data`` in one rename (same directory, so the same filesystem)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(payload)
    os.replace(temporary, path)


def append_kmsg(path: Path, records: list[KmsgRecord]) -> None:
    """Append records to the simulated ``/dev/kmsg`` in a single write."""
    if records:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(render_kmsg(record) for record in records))


# ------------------------------------------------------------------------------------------------- V4L2


@dataclass(frozen=True)
class PlatformVideoNode:
    """One of the Pi 4's own video nodes: ``videoN``, its sysfs ``name`` and ``index``, and the platform
    device (and driver) it hangs off."""

    number: int
    name: str
    index: int
    device_path: str  # below sys/devices/platform/, e.g. "soc/fe801000.csi"
    driver: str


# Platform device and driver per ``--list-devices`` bus (the capture's ``platform:…`` bus info). The
# codec and ISP are children of the VideoCore mailbox device (vchiq) at 0xfe00b840 on the BCM2711.
_PLATFORM_DEVICES: dict[str, tuple[str, str]] = {
    "platform:bcm2835-codec": ("soc/fe00b840.mailbox/bcm2835-codec", "bcm2835-codec"),
    "platform:bcm2835-isp": ("soc/fe00b840.mailbox/bcm2835-isp", "bcm2835-isp"),
    "platform:fe801000.csi": ("soc/fe801000.csi", "unicam"),
}

# Node names in registration order (raspberrypi/linux): bcm2835-v4l2-codec.c registers decode, encode, isp,
# image_fx, encode_image, each with its own v4l2_device (so each has index 0); bcm2835-isp.c names nodes
# "bcm2835-isp<instance>-<output0|capture1|capture2|capture3>" (libcamera's VC4 pipeline matches these),
# four per instance on one v4l2_device; unicam registers "unicam-image" then "unicam-embedded".
_CODEC_ROLES = ("decode", "encode", "isp", "image_fx", "encode_image")
_ISP_NODES = ("output0", "capture1", "capture2", "capture3")
_UNICAM_NODES = ("unicam-image", "unicam-embedded")
_VIDEO = "/dev/video"


def parse_list_devices_groups(text: str) -> list[tuple[str, str, list[str]]]:
    """``v4l2-ctl --list-devices`` → [(card, bus, [/dev/… nodes])]."""
    groups: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            if groups:
                groups[-1][2].append(line.strip())
            continue
        card, _, bus = line.rstrip(":").rpartition(" (")
        groups.append((card, bus.rstrip(")"), []))
    return groups


def pi4_video_nodes(list_devices: str) -> list[PlatformVideoNode]:
    """The Pi 4's platform video nodes, numbered as in the captured ``--list-devices``."""
    nodes: list[PlatformVideoNode] = []
    for _card, bus, paths in parse_list_devices_groups(list_devices):
        suffixes = [path[len(_VIDEO) :] for path in paths if path.startswith(_VIDEO)]
        numbers = [int(suffix) for suffix in suffixes if suffix.isdigit()]
        device = _PLATFORM_DEVICES.get(bus)
        if device is None:
            continue
        device_path, driver = device
        for position, number in enumerate(numbers):
            if bus == "platform:bcm2835-codec" and position < len(_CODEC_ROLES):
                name, index = f"bcm2835-codec-{_CODEC_ROLES[position]}", 0
            elif bus == "platform:bcm2835-isp":
                instance, slot = divmod(position, len(_ISP_NODES))
                name, index = f"bcm2835-isp{instance}-{_ISP_NODES[slot]}", slot
            elif bus.endswith(".csi") and position < len(_UNICAM_NODES):
                name, index = _UNICAM_NODES[position], position
            else:
                continue
            nodes.append(PlatformVideoNode(number, name, index, device_path, driver))
    return nodes


def _relative_link(link: Path, target: Path) -> None:
    """A relative symlink (the tree can be moved) replacing whatever is at ``link``."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(target, link.parent))


def write_video_nodes(base: Path, nodes: list[PlatformVideoNode], media_nodes: list[str]) -> None:
    """sysfs as the kernel lays it out: ``sys/devices/platform/<dev>/video4linux/videoN/{name,index}``,
    ``sys/class/video4linux/videoN`` → that directory, its ``device`` → the platform device, whose
    ``driver`` → ``sys/bus/platform/drivers/<driver>``; plus ``dev/videoN`` (plain files: no mknod)."""
    for node in nodes:
        device_dir = base / "sys/devices/platform" / node.device_path
        driver_dir = base / "sys/bus/platform/drivers" / node.driver
        driver_dir.mkdir(parents=True, exist_ok=True)
        if not (device_dir / "driver").is_symlink():
            _relative_link(device_dir / "driver", driver_dir)
        node_dir = device_dir / "video4linux" / f"video{node.number}"
        node_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(node_dir / "name", node.name + "\n")
        write_atomic(node_dir / "index", f"{node.index}\n")
        _relative_link(node_dir / "device", device_dir)
        _relative_link(base / "sys/class/video4linux" / f"video{node.number}", node_dir)
        (base / "dev").mkdir(parents=True, exist_ok=True)
        (base / "dev" / f"video{node.number}").touch()
    for media in media_nodes:
        (base / "dev" / media).touch()
