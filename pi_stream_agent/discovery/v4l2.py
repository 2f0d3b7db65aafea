"""V4L2 video nodes: which ones are capture cards a user can stream from, and which belong to the Pi itself.

Three layers, as everywhere in the agent:

* **Pure parsers** (no I/O, never raise): ``parse_list_devices`` (``v4l2-ctl --list-devices``),
  ``parse_list_formats_ext`` (``v4l2-ctl --list-formats-ext``, the current ``[0]: 'MJPG' (…)`` layout and
  the old ``Index/Pixel Format/Name`` one) and ``parse_v4l2_info`` (the ``Driver Info:`` block of
  ``--info``/``--all``).
* **Classification** (pure): the Pi's own nodes (bcm2835-codec, bcm2835-isp, unicam, rp1-cfe, pispbe,
  rpivid/rpi-hevc-dec, anything on a ``platform:`` bus) are never offered as capture sources; USB capture
  cards and webcams are, one device per node that really captures video (a UVC device's second,
  metadata-only node is dropped).
* **Enumeration** from a :class:`~pi_stream_agent.rootfs.Root`: sysfs ``sys/class/video4linux/videoN``
  (``name``, ``index``, ``device`` link → bus, driver, USB identity) and ``dev/v4l/by-id`` symlinks, then
  ``v4l2-ctl`` (an argument list with a timeout) for formats and controls (one run per USB node:
  ``--info --list-ctrls-menus --list-formats-ext``; controls parsed by :mod:`.v4l2_controls`) and, only where
  sysfs says nothing, for bus info. Blocking: run :meth:`V4l2Scanner.scan` in an executor.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pi_stream_agent.discovery.v4l2_controls import parse_list_ctrls_menus
from pi_stream_agent.rootfs import Root, describe_os_error

# ---------------------------------------------------------------------------------------------------------
# Data


@dataclass
class Size:
    """One frame size. ``fps`` lists the discrete frame rates; for a stepwise/continuous interval range it
    holds the two ends (fastest first). Stepwise/continuous sizes carry their range: ``width``/``height``
    are the maximum, ``min_width``/``min_height`` the minimum (``None`` for a discrete size)."""

    width: int
    height: int
    fps: list[float] = field(default_factory=list)
    min_width: int | None = None
    min_height: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "fps": list(self.fps),
            "min_width": self.min_width,
            "min_height": self.min_height,
        }


@dataclass
class Format:
    """A pixel format a node offers: ``fourcc`` as v4l2-ctl prints it (``MJPG``, ``YUYV``)."""

    fourcc: str
    description: str
    compressed: bool = False
    sizes: list[Size] = field(default_factory=list)
    # "Video Capture", "Video Capture Multiplanar", "Video Output"…: only capture types make a source.
    buffer_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "fourcc": self.fourcc,
            "description": self.description,
            "compressed": self.compressed,
            "sizes": [size.to_json() for size in self.sizes],
        }


@dataclass
class ListedDevice:
    """One block of ``v4l2-ctl --list-devices``: card, bus info and every node (/dev/videoN, /dev/mediaN)."""

    card: str
    bus: str
    nodes: list[str] = field(default_factory=list)


@dataclass
class DriverInfo:
    """The ``Driver Info:`` block of ``v4l2-ctl --info`` / ``--all``."""

    driver: str | None = None
    card: str | None = None
    bus: str | None = None
    driver_version: str | None = None
    capabilities: list[str] = field(default_factory=list)
    device_caps: list[str] = field(default_factory=list)

    @property
    def captures_video(self) -> bool | None:
        """True when this node streams video (not only metadata); None when the block had no caps."""
        caps = self.device_caps or self.capabilities
        if not caps:
            return None
        return any(cap in CAPTURE_BUFFER_TYPES for cap in caps)


@dataclass(frozen=True)
class UsbIdentity:
    """The USB device's descriptor strings as sysfs shows them (``manufacturer``, ``product``, ``serial``)."""

    vendor_id: str | None = None
    product_id: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    serial: str | None = None

    def udev_serial(self) -> str:
        """What udev's ``usb_id`` builtin calls ``ID_SERIAL``: ``<vendor>_<model>[_<serial>]``, sanitised
        the same way, so ``usb-<ID_SERIAL>`` equals the ``/dev/v4l/by-id`` name minus ``-video-indexN``."""
        vendor = _udev_clean(self.manufacturer or "") or (self.vendor_id or "")
        model = _udev_clean(self.product or "") or (self.product_id or "")
        text = f"{vendor}_{model}"
        serial = self.usable_serial
        if serial:
            text += "_" + _udev_clean(serial)
        return text

    @property
    def usable_serial(self) -> str | None:
        # usb_id drops serials containing control, non-ASCII or ',' characters.
        serial = (self.serial or "").strip()
        if not serial or any(ord(ch) < 0x20 or ord(ch) > 0x7F or ch == "," for ch in serial):
            return None
        return serial


@dataclass
class VideoNode:
    """One ``/dev/videoN`` as the kernel describes it."""

    node: str  # "video0"
    # sysfs name: the video_device name ("unicam-image", "bcm2835-codec-encode"; for UVC also the
    # VIDIOC_QUERYCAP card, "USB Video: USB Video"). Platform drivers report a shorter card ("unicam").
    name: str | None = None
    index: int | None = None  # sysfs index: 0 = first node of its driver instance
    bus: str | None = None  # VIDIOC_QUERYCAP bus_info: "usb-xhci-hcd.1-1", "platform:bcm2835-codec"
    driver: str | None = None  # "uvcvideo", "bcm2835-codec", "unicam"…
    usb: UsbIdentity | None = None
    # True when ``name`` is the card of a whole --list-devices group rather than this node's own name
    # (only when sysfs was unreadable): the codec group then shows "bcm2835-codec-decode" for every node.
    name_from_group: bool = False

    @property
    def path(self) -> str:
        return "/dev/" + self.node


@dataclass
class CaptureDevice:
    """A video source a user can stream from.

    ``id`` is stable across reboots and replugs: ``usb-<vendor>_<product>_<serial>`` (udev's by-id name) when
    the device has a usable serial number, otherwise its bus info (``usb-xhci-hcd.1-1``: the USB port), since
    two identical serial-less cards would otherwise share one id; ``-video-indexN`` is appended for a second
    capture node of the same device.
    """

    id: str
    name: str
    bus: str | None
    path: str
    stable_path: str | None
    driver: str | None
    formats: list[Format] = field(default_factory=list)
    # V4L2 controls from ``v4l2-ctl --list-ctrls-menus``, in the API's JSON form:
    # ``{"brightness": {"type": "int", "min": -64, "max": 64, "step": 1, "default": 0, "value": 0,
    # "flags": [], "menu": {}}}`` (keys absent when the tool did not print them). Empty when not read.
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "bus": self.bus,
            "path": self.path,
            "stable_path": self.stable_path,
            "driver": self.driver,
            "formats": [fmt.to_json() for fmt in self.formats],
            "controls": self.controls,
        }


@dataclass
class PlatformNode:
    """A node of the Pi's own media blocks: listed for diagnostics, never offered as a source."""

    path: str
    name: str | None
    bus: str | None
    driver: str | None
    # h264_encoder, h264_decoder, jpeg_encoder, isp, image_fx, csi_receiver, hevc_decoder, codec, other
    role: str

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "bus": self.bus,
            "driver": self.driver,
            "role": self.role,
        }


@dataclass
class HardwareEncoder:
    """Whether the VideoCore H.264 encoder (bcm2835-codec, Pi 0-4) is present. ``h264`` is None when no
    node list could be read at all; False on a Pi 5 (no encoder) or a machine without the codec."""

    h264: bool | None
    device: str | None = None
    name: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"h264": self.h264, "device": self.device, "name": self.name}


@dataclass
class V4l2Scan:
    """One enumeration: the sources, the Pi's own nodes, the encoder, and why anything is missing."""

    capture_devices: list[CaptureDevice] = field(default_factory=list)
    platform_nodes: list[PlatformNode] = field(default_factory=list)
    hardware_encoder: HardwareEncoder = field(default_factory=lambda: HardwareEncoder(None))
    reasons: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# Parsers

CAPTURE_BUFFER_TYPES = frozenset({"Video Capture", "Video Capture Multiplanar"})

# Every flag v4l2-ctl's fmtdesc2s() can print after a format description (v4l-utils v4l2-info.cpp).
_FORMAT_FLAGS = frozenset(
    {
        "compressed",
        "emulated",
        "continuous-bytestream",
        "dyn-resolution",
        "enc-cap-frame-interval",
        "csc-colorspace",
        "csc-ycbcr-enc",
        "csc-hsv-enc",
        "csc-quantization",
        "csc-xfer-func",
        "meta-line-based",
    }
)


def parse_list_devices(text: str) -> list[ListedDevice]:
    """``v4l2-ctl --list-devices``: ``<card> (<bus info>):`` then one indented node per line (tab or
    spaces: copies from terminals turn the tab into 8 spaces), blocks separated by blank lines."""
    devices: list[ListedDevice] = []
    current: ListedDevice | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            current = None
            continue
        if line[0].isspace():
            if current is not None:
                current.nodes.append(line.strip())
            continue
        header = line[:-1] if line.endswith(":") else line
        card, sep, bus = header.rpartition(" (")
        if sep and bus.endswith(")"):
            current = ListedDevice(card=card.strip(), bus=bus[:-1].strip())
        else:
            current = ListedDevice(card=header.strip(), bus="")
        devices.append(current)
    return devices


def _split_description(inner: str) -> tuple[str, set[str]]:
    """``Motion-JPEG, compressed`` → (``Motion-JPEG``, {``compressed``}). Descriptions may hold commas
    themselves, so only trailing known flag words are flags."""
    parts = inner.split(", ")
    flags: set[str] = set()
    while len(parts) > 1 and parts[-1].strip() in _FORMAT_FLAGS:
        flags.add(parts.pop().strip())
    return ", ".join(parts).strip(), flags


def _quoted(text: str) -> tuple[str, str] | None:
    """The text between the first pair of single quotes, and what follows it."""
    start = text.find("'")
    end = text.find("'", start + 1) if start >= 0 else -1
    if start < 0 or end < 0:
        return None
    return text[start + 1 : end], text[end + 1 :]


def _parse_size(value: str) -> Size | None:
    """``Discrete 1920x1080`` / ``Stepwise 16x16 - 1920x1080 with step 1/1`` / ``Continuous …``."""
    dims: list[tuple[int, int]] = []
    for token in value.split():
        width, sep, height = token.partition("x")
        if sep and width.isdigit() and height.isdigit():
            dims.append((int(width), int(height)))
    if not dims:
        return None
    if len(dims) == 1:
        return Size(dims[0][0], dims[0][1])
    return Size(dims[-1][0], dims[-1][1], min_width=dims[0][0], min_height=dims[0][1])


def _parse_interval(value: str) -> list[float]:
    """``Discrete 0.033s (30.000 fps)`` → [30.0]; ``Stepwise 0.033s - 1.000s with step … (1.000-30.000 fps)``
    → [30.0, 1.0] (fastest first)."""
    start = value.rfind("(")
    end = value.find(" fps)", start)
    if start < 0 or end < 0:
        return []
    rates: list[float] = []
    for part in value[start + 1 : end].split("-"):
        try:
            rate = float(part)
        except ValueError:
            return []
        if rate > 0:
            rates.append(rate)
    return sorted(rates, reverse=True)


def parse_list_formats_ext(text: str) -> list[Format]:
    """``v4l2-ctl --list-formats-ext``, both layouts v4l-utils has printed:

    current: ``\\tType: Video Capture`` / ``\\t[0]: 'MJPG' (Motion-JPEG, compressed)`` / ``\\t\\tSize: …`` /
    ``\\t\\t\\tInterval: …``; old: ``\\tIndex       : 0`` / ``\\tType        : Video Capture`` /
    ``\\tPixel Format: 'MJPG' (compressed)`` / ``\\tName        : Motion-JPEG`` / sizes as above.
    """
    formats: list[Format] = []
    buffer_type: str | None = None
    current: Format | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        value = value.strip()
        if key == "Type":
            buffer_type = value
            if current is not None and not current.fourcc:
                current.buffer_type = value  # old layout: Type follows Index
        elif key.startswith("[") and key.endswith("]"):
            quoted = _quoted(value)
            if quoted is None:
                current = None
                continue
            fourcc, rest = quoted
            rest = rest.strip()
            inner = rest[1:-1] if rest.startswith("(") and rest.endswith(")") else rest
            description, flags = _split_description(inner)
            current = Format(fourcc, description, "compressed" in flags, buffer_type=buffer_type)
            formats.append(current)
        elif key == "Index":
            current = Format("", "", buffer_type=buffer_type)
            formats.append(current)
        elif key == "Pixel Format" and current is not None:
            quoted = _quoted(value)
            if quoted is not None:
                current.fourcc = quoted[0]
                rest = quoted[1].strip()
                if rest.startswith("(") and rest.endswith(")"):
                    current.compressed = "compressed" in {flag.strip() for flag in rest[1:-1].split(",")}
        elif key == "Name" and current is not None:
            current.description = value
        elif key == "Size" and current is not None:
            size = _parse_size(value)
            if size is not None:
                current.sizes.append(size)
        elif key == "Interval" and current is not None and current.sizes:
            current.sizes[-1].fps.extend(_parse_interval(value))
    return [fmt for fmt in formats if fmt.fourcc]


def parse_v4l2_info(text: str) -> DriverInfo:
    """The ``Driver Info:`` block (``Driver Info (not using libv4l2):`` on old v4l-utils) of
    ``v4l2-ctl --info``/``--all``. Other blocks (``Media Driver Info:`` repeats driver and bus) are
    skipped."""
    info = DriverInfo()
    in_block = False
    field_indent: int | None = None
    caps_target: list[str] | None = None
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if not raw[0].isspace():
            in_block = raw.startswith("Driver Info")
            field_indent = None
            caps_target = None
            continue
        if not in_block:
            continue
        expanded = raw.expandtabs(8)
        indent = len(expanded) - len(expanded.lstrip())
        if field_indent is None:
            field_indent = indent
        if indent > field_indent:
            if caps_target is not None:
                caps_target.append(expanded.strip())
            continue
        key, _, value = expanded.strip().partition(":")
        key = key.strip()
        value = value.strip()
        caps_target = None
        if key == "Driver name":
            info.driver = value or None
        elif key == "Card type":
            info.card = value or None
        elif key == "Bus info":
            info.bus = value or None
        elif key == "Driver version":
            info.driver_version = value or None
        elif key == "Capabilities":
            caps_target = info.capabilities
        elif key == "Device Caps":
            caps_target = info.device_caps
    return info


# ---------------------------------------------------------------------------------------------------------
# Classification

# Name prefixes of the Pi's own V4L2 blocks (raspberrypi/linux drivers): the VideoCore codec
# ("bcm2835-codec-decode/encode/isp/image_fx/encode_image"), the VideoCore ISP ("bcm2835-isp-…"), the CSI-2
# receivers ("unicam-image/embedded" on Pi 0-4, "rp1-cfe-…" on Pi 5), the Pi 5 ISP back end ("pispbe-…") and
# the HEVC decoder ("rpivid", newer kernels "rpi-hevc-dec").
PI_NODE_PREFIXES = ("bcm2835-codec", "bcm2835-isp", "unicam", "rp1-cfe", "pispbe", "rpivid", "rpi-hevc-dec")

# The codec driver registers its H.264 encoder as video11 by default (module parameter encode_video_nr).
_DEFAULT_ENCODER_NODE = "video11"
_CODEC_BUS = "platform:bcm2835-codec"
_ENCODER_NAME = "bcm2835-codec-encode"


def is_pi_node(name: str | None, bus: str | None) -> bool:
    """A node of the Pi itself (or of any platform device): never offered as a capture source."""
    if bus and bus.startswith("platform:"):
        return True
    return name is not None and name.startswith(PI_NODE_PREFIXES)


def is_usb_candidate(node: VideoNode) -> bool:
    """A node on a USB bus that is not one of the Pi's: a capture card or webcam, if it captures video."""
    return bool(node.bus and node.bus.startswith("usb-")) and not is_pi_node(node.name, node.bus)


_ROLES = {
    "bcm2835-codec-encode": "h264_encoder",
    "bcm2835-codec-decode": "h264_decoder",
    "bcm2835-codec-isp": "isp",
    "bcm2835-codec-image_fx": "image_fx",
    "bcm2835-codec-encode_image": "jpeg_encoder",
    "rpivid": "hevc_decoder",
    "rpi-hevc-dec": "hevc_decoder",
}


def platform_role(node: VideoNode) -> str:
    """What a Pi node is for, from its name (listed in ``platform_nodes`` for diagnostics)."""
    name = node.name or ""
    if node.name_from_group and node.bus == _CODEC_BUS:
        # Only the group's card is known: every codec node shows "bcm2835-codec-decode".
        return "h264_encoder" if node.node == _DEFAULT_ENCODER_NODE else "codec"
    if name in _ROLES:
        return _ROLES[name]
    if name.startswith(("bcm2835-isp", "pispbe")):
        return "isp"
    if name.startswith(("unicam", "rp1-cfe")):
        return "csi_receiver"
    return "other"


def find_h264_encoder(nodes: Sequence[VideoNode]) -> HardwareEncoder:
    """The VideoCore H.264 encoder node (sysfs name ``bcm2835-codec-encode``); when only --list-devices
    groups are known, the codec group's video11."""
    for node in nodes:
        if node.name == _ENCODER_NAME:
            return HardwareEncoder(True, node.path, node.name)
    for node in nodes:
        if node.name_from_group and node.bus == _CODEC_BUS and node.node == _DEFAULT_ENCODER_NODE:
            return HardwareEncoder(True, node.path, _ENCODER_NAME)
    return HardwareEncoder(False)


def display_name(card: str | None) -> str | None:
    """UVC names are ``<product>: <function>``; MacroSilicon cards repeat it (``USB Video: USB Video``)."""
    if not card:
        return card
    first, sep, second = card.partition(": ")
    if sep and first.strip() == second.strip():
        return first.strip()
    return card


def _udev_clean(text: str) -> str:
    """udev's replace_whitespace (runs → one ``_``, ends trimmed) then replace_chars (keep alphanumerics,
    ``#+-.:=@_`` and non-ASCII letters; anything else → ``_``)."""
    collapsed = "_".join(text.split())
    return "".join(ch if ch.isalnum() or ch in "#+-.:=@_" else "_" for ch in collapsed)


def device_id(node: VideoNode) -> str:
    """Stable id for a capture node (see :class:`CaptureDevice`)."""
    if node.usb is not None and node.usb.usable_serial:
        base = "usb-" + node.usb.udev_serial()
    elif node.bus:
        base = node.bus
    else:
        base = node.node
    if node.index:
        base += f"-video-index{node.index}"
    return base


# ---------------------------------------------------------------------------------------------------------
# Running v4l2-ctl (and rpicam-hello, see libcamera.py)


@dataclass(frozen=True)
class ToolResult:
    """What a tool printed; ``reason`` says why it did not run or failed (None = ran and exited 0).
    ``stdout`` is kept on failure too: v4l2-ctl prints what it could before failing one ioctl."""

    stdout: str
    reason: str | None = None


# How discovery runs a tool: ``run_tool`` on a Pi; a simulated Pi answers in-process (simulation/devices.py)
ToolRunner = Callable[[Sequence[str], float], ToolResult]


def resolve_tool(tool: str) -> str | None:
    """An absolute path is used as it is; a bare name is looked up on PATH (each time: installing
    v4l-utils later must not need an agent restart)."""
    if os.sep in tool:
        return tool if os.access(tool, os.X_OK) else None
    return shutil.which(tool)


def run_tool(argv: Sequence[str], timeout_s: float) -> ToolResult:
    """Run an argument list (never a shell) with a timeout; never raises."""
    command = " ".join(argv)
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout
        text = out.decode(errors="replace") if isinstance(out, bytes) else (out or "")
        return ToolResult(text, f"`{command}` timed out after {timeout_s:g} s")
    except OSError as exc:
        return ToolResult("", describe_os_error(exc, argv[0]))
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or "").splitlines() if line.strip()]
        detail = f": {lines[-1].strip()}" if lines else ""
        return ToolResult(proc.stdout or "", f"`{command}` exited with status {proc.returncode}{detail}")
    return ToolResult(proc.stdout or "")


# ---------------------------------------------------------------------------------------------------------
# Enumeration


def _node_number(node: str) -> int:
    return int(node[5:]) if node[5:].isdigit() else 1 << 30


def _is_video_node(name: str) -> bool:
    return name.startswith("video") and name[5:].isdigit()


def _read_attr(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _usb_identity(usb_dir: Path) -> UsbIdentity:
    return UsbIdentity(
        vendor_id=_read_attr(usb_dir / "idVendor"),
        product_id=_read_attr(usb_dir / "idProduct"),
        manufacturer=_read_attr(usb_dir / "manufacturer"),
        product=_read_attr(usb_dir / "product"),
        serial=_read_attr(usb_dir / "serial"),
    )


def bus_from_device_path(device: Path) -> tuple[str | None, Path | None]:
    """Bus info as the kernel reports it, from the resolved ``device`` link of a video4linux entry.

    USB: ``…/<controller>/usbN/…/<busnum>-<port path>/<busnum>-<port path>:<config>.<iface>`` → the UVC
    driver's ``usb-<controller>-<port path>`` (usb_make_path), e.g. ``usb-xhci-hcd.1-1`` on a Pi 5,
    ``usb-0000:01:00.0-1.3`` on a Pi 4; also returns the USB device directory. Platform devices report
    ``platform:<device name>`` (``platform:fe801000.csi``, ``platform:bcm2835-codec``).
    """
    parts = device.parts
    for i, part in enumerate(parts):
        if i > 0 and part.startswith("usb") and part[3:].isdigit():
            usb_dir = device.parent if ":" in device.name else device
            devpath = _read_attr(usb_dir / "devpath") or usb_dir.name.partition("-")[2]
            if not devpath:
                return None, None
            return f"usb-{parts[i - 1]}-{devpath}", usb_dir
    if "platform" in parts:
        return f"platform:{device.name}", None
    return None, None


def read_sysfs_nodes(root: Root) -> tuple[list[VideoNode], str | None]:
    """Every ``videoN`` in ``sys/class/video4linux`` whose ``dev/videoN`` exists, with what sysfs knows.
    Returns the nodes and, when the class directory cannot be read, why."""
    base = root.path("sys/class/video4linux")
    try:
        entries = sorted((e for e in os.listdir(base) if _is_video_node(e)), key=_node_number)
    except OSError as exc:
        return [], describe_os_error(exc, "/sys/class/video4linux")
    nodes: list[VideoNode] = []
    for entry in entries:
        # A sysfs entry without its /dev node is a device going away (or not yet created by devtmpfs).
        if not os.path.lexists(root.path("dev/" + entry)):
            continue
        directory = base / entry
        index_text = _read_attr(directory / "index")
        node = VideoNode(
            node=entry,
            name=_read_attr(directory / "name"),
            index=int(index_text) if index_text and index_text.isdigit() else None,
        )
        device_link = directory / "device"
        if os.path.lexists(device_link):
            node.bus, usb_dir = bus_from_device_path(Path(os.path.realpath(device_link)))
            if usb_dir is not None:
                node.usb = _usb_identity(usb_dir)
            try:
                node.driver = os.path.basename(os.readlink(device_link / "driver")) or None
            except OSError:
                node.driver = None
        nodes.append(node)
    return nodes, None


def read_stable_paths(root: Root) -> dict[str, str]:
    """``videoN`` → ``/dev/v4l/by-id/<name>`` (udev's persistent name), else ``/dev/v4l/by-path/<name>``."""
    found: dict[str, str] = {}
    for folder in ("by-path", "by-id"):  # by-id last: it wins
        directory = root.path("dev/v4l/" + folder)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            try:
                target = os.path.basename(os.readlink(directory / name))
            except OSError:
                continue
            if _is_video_node(target):
                found[target] = f"/dev/v4l/{folder}/{name}"
    return found


def nodes_from_listing(root: Root, listing: Sequence[ListedDevice]) -> list[VideoNode]:
    """Video nodes from ``--list-devices`` when sysfs is unreadable: the group's card and bus for each."""
    nodes: list[VideoNode] = []
    for group in listing:
        for path in group.nodes:
            name = os.path.basename(path)
            if path.startswith("/dev/") and _is_video_node(name) and os.path.lexists(root.path(path)):
                nodes.append(
                    VideoNode(node=name, name=group.card, bus=group.bus or None, name_from_group=True)
                )
    return sorted(nodes, key=lambda n: _node_number(n.node))


@dataclass
class _Probe:
    """What ``v4l2-ctl -d <node> --info --list-ctrls-menus --list-formats-ext`` said about one node."""

    info: DriverInfo
    formats: list[Format] | None  # None: the tool did not run or printed no format list
    reason: str | None
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)


class V4l2Scanner:
    """Enumerates video nodes under a :class:`Root` and decides which are capture sources.

    ``tool`` is ``v4l2-ctl`` by name (looked up on PATH at each scan), an absolute path, or None to use sysfs
    alone. The tool is run only for USB nodes (one process each, for formats and device caps) and, when some
    node's bus is unknown to sysfs, once for ``--list-devices``: a Pi 4 with ~20 codec/ISP nodes costs no fork
    for them. ``runner`` replaces running the tool (the simulated Pi answers in-process; the name is then
    not looked up on PATH).
    """

    def __init__(
        self,
        root: Root,
        tool: str | None = "v4l2-ctl",
        timeout_s: float = 5.0,
        runner: ToolRunner | None = None,
    ) -> None:
        self._root = root
        self._tool = tool
        self._timeout_s = timeout_s
        self._runner = runner

    def _tool_path(self) -> str | None:
        if not self._tool:
            return None
        return self._tool if self._runner is not None else resolve_tool(self._tool)

    def _run(self, argv: Sequence[str]) -> ToolResult:
        return (self._runner or run_tool)(argv, self._timeout_s)

    def scan(self) -> V4l2Scan:
        """Blocking (sysfs reads, subprocesses): call from an executor. Never raises."""
        result = V4l2Scan()
        tool_path = self._tool_path()
        tool_reason = None if tool_path else self._missing_tool_reason()

        nodes, sysfs_reason = read_sysfs_nodes(self._root)
        if sysfs_reason is not None or any(node.bus is None for node in nodes):
            nodes, listing_reason = self._fill_from_listing(nodes, sysfs_reason is not None, tool_path)
            if sysfs_reason is not None and not nodes:
                result.reasons["capture_devices"] = sysfs_reason + (
                    f"; {listing_reason}" if listing_reason else ""
                )
                return result
            unknown = [node.path for node in nodes if node.bus is None]
            if unknown:
                # Without a bus we cannot tell a USB card from anything else, so such nodes are not offered.
                result.reasons["bus_info"] = f"bus unknown for {', '.join(unknown)}" + (
                    f": {listing_reason}" if listing_reason else ""
                )

        result.hardware_encoder = find_h264_encoder(nodes)
        stable = read_stable_paths(self._root)
        format_reasons: list[str] = []
        for node in nodes:
            if is_pi_node(node.name, node.bus):
                result.platform_nodes.append(
                    PlatformNode(node.path, node.name, node.bus, node.driver, platform_role(node))
                )
                continue
            if not is_usb_candidate(node):
                continue
            probe = self._probe(node, tool_path) if tool_path else _Probe(DriverInfo(), None, tool_reason)
            if probe.reason:
                format_reasons.append(probe.reason)
            if not self._captures_video(node, probe):
                continue  # e.g. the UVC metadata node next to the video node
            result.capture_devices.append(
                CaptureDevice(
                    id=device_id(node),
                    name=display_name(node.name or probe.info.card) or node.node,
                    bus=node.bus,
                    path=node.path,
                    stable_path=stable.get(node.node),
                    driver=node.driver or probe.info.driver,
                    formats=[f for f in probe.formats or [] if f.buffer_type in CAPTURE_BUFFER_TYPES],
                    controls=probe.controls,
                )
            )
        if format_reasons:
            result.reasons["formats"] = format_reasons[0]
        _dedupe_ids(result.capture_devices)
        return result

    def _missing_tool_reason(self) -> str:
        if not self._tool:
            return "formats not read: v4l2-ctl use is disabled"
        return f"{self._tool} not found on PATH (install v4l-utils for formats, controls and bus info)"

    def _fill_from_listing(
        self, nodes: list[VideoNode], sysfs_missing: bool, tool_path: str | None
    ) -> tuple[list[VideoNode], str | None]:
        """Bus info (and, without sysfs, the nodes themselves) from ``v4l2-ctl --list-devices``."""
        if tool_path is None:
            return nodes, self._missing_tool_reason()
        listed = self._run([tool_path, "--list-devices"])
        listing = parse_list_devices(listed.stdout)
        if sysfs_missing:
            return nodes_from_listing(self._root, listing), listed.reason
        by_path = {path: group for group in listing for path in group.nodes}
        for node in nodes:
            group = by_path.get(node.path)
            if node.bus is None and group is not None and group.bus:
                node.bus = group.bus
        return nodes, listed.reason

    def _probe(self, node: VideoNode, tool_path: str) -> _Probe:
        # One process answers all three (a Pi Zero pays one fork per card, not three); v4l2-ctl prints
        # them in this order: driver info, controls, formats.
        device = str(self._root.path(node.path))
        argv = [tool_path, "-d", device, "--info", "--list-ctrls-menus", "--list-formats-ext"]
        ran = self._run(argv)
        formats = parse_list_formats_ext(ran.stdout) if "VIDIOC_ENUM_FMT" in ran.stdout else None
        return _Probe(parse_v4l2_info(ran.stdout), formats, ran.reason, parse_list_ctrls_menus(ran.stdout))

    def read_controls(self, path: str) -> tuple[dict[str, dict[str, Any]] | None, str | None]:
        """One device's controls now (``v4l2-ctl -d <path> --list-ctrls-menus``, one process), for
        re-reading current values after a change. ``(None, reason)`` when the tool is missing or failed
        without printing any control. Blocking: call from an executor."""
        tool_path = self._tool_path()
        if tool_path is None:
            return None, self._missing_tool_reason()
        device = str(self._root.path(path))
        ran = self._run([tool_path, "-d", device, "--list-ctrls-menus"])
        controls = parse_list_ctrls_menus(ran.stdout)
        if ran.reason is not None and not controls:
            return None, ran.reason
        return controls, ran.reason

    @staticmethod
    def _captures_video(node: VideoNode, probe: _Probe) -> bool:
        """Device caps decide when known; then the format list (a metadata node lists no video capture
        format); without either, sysfs ``index`` 0 (the UVC driver registers the video node first)."""
        caps = probe.info.captures_video
        if caps is not None:
            return caps
        if probe.formats is not None:
            return any(fmt.buffer_type in CAPTURE_BUFFER_TYPES for fmt in probe.formats)
        return node.index in (0, None)


def _dedupe_ids(devices: list[CaptureDevice]) -> None:
    # Two capture nodes that still share an id (two interfaces of one device) keep them apart by node.
    seen: dict[str, int] = {}
    for device in devices:
        seen[device.id] = seen.get(device.id, 0) + 1
    for device in devices:
        if seen[device.id] > 1:
            device.id = f"{device.id}@{os.path.basename(device.path)}"
