"""Fixture trees standing for whole Raspberry Pis (``/`` below a test directory), built from the real
captures in ``fixtures/pi/``, and the stand-in tools tests put on PATH.

Two families of builders live here:

* the **V4L2 side** of several boards (``build_pi4_with_card``, ``build_pi5_with_camera``, …), and
* **whole boards** for the telemetry collectors and the CLI (``build_pi3bplus_tree``), each file's source
  documented where it is written.

V4L2 side (from the captures in ``fixtures/pi/v4l2``)
----------------------------------------------------

sysfs is laid out as the kernel does it: the node's directory lives under its parent device
(``sys/devices/…/<device>/video4linux/videoN`` with ``name``, ``index`` and a ``device`` link back up),
``sys/class/video4linux/videoN`` links to it, the device has a ``driver`` link, and ``dev/videoN`` exists.
Where each name and number comes from:

* node numbers and bus info per board: the ``v4l2-ctl --list-devices`` captures (test_discovery_trees.py
  checks the trees reproduce them exactly);
* ``unicam-image`` / ``rp1-cfe-*`` / ``pispbe-*`` names: the ``media-ctl -p`` captures (entity name = video
  device name) and ``pi5_rp1cfe_video0_all`` (``Name : rp1-cfe-csi2_ch0``);
* ``bcm2835-codec-<role>``: raspberrypi/linux drivers/staging/vc04_services/bcm2835-codec/bcm2835-v4l2-codec.c
  (``snprintf(vfd->name, …, "%s-%s", "bcm2835-codec", roles[role])``, roles decode/encode/isp/image_fx/
  encode_image, default numbers 10/11/12/18/31);
* ``bcm2835-isp-<output0|capture0|capture1|stats2>``: bcm2835-isp/bcm2835-v4l2-isp.c (``"%s-%s%d"`` with
  node name and id);
* ``unicam-embedded``: drivers/media/platform/bcm2835/bcm2835-unicam.c (``"%s-%s", "unicam", "embedded"``);
* UVC: drivers/media/usb/uvc/uvc_driver.c names the device ``<product>: <iFunction>`` (the captured card
  ``USB Video: USB Video``); the metadata node (index 1) carries the same name;
* USB device directories: ``<controller>/usbN/<bus>-<port>/<bus>-<port>:1.0``, the controller being the part
  of the captured bus info after ``usb-`` (``xhci-hcd.1``, ``0000:01:00.0``, ``3f980000.usb``). Parent
  directories above the controller are representative only: nothing reads them.
* ``dev/v4l/by-id`` names follow systemd's 60-persistent-v4l.rules
  (``usb-$env{ID_SERIAL}-video-index$attr{index}``).

Whole boards
------------

See :func:`build_pi3bplus_tree`: every file it writes names the capture it comes from.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pi_stream_agent.discovery.v4l2 import parse_list_devices, read_sysfs_nodes
from pi_stream_agent.rootfs import Root
from tests.agent.helpers import FixtureTree, fixture_path, fixture_text

PI4_CAPTURE = "v4l2/pi4_list_devices_unicam_isp_codec_camera_streamer3.txt"
PIZERO_CAPTURE = "v4l2/pizerow_list_devices_unicam_5.10.63_hyperion1413.txt"
PI5_USB_CAPTURE = "v4l2/pi5_usb_hdmi_capture_ms21xx_list_devices_tail.txt"
PI4_MEDIA_CTL = "v4l2/pi4_media_ctl_unicam_ov5647_6.1.21_rpicam561.txt"
PI5_MEDIA_CTL = "v4l2/pi5_media_ctl_rp1cfe_pispbe_partial_rpicam723.txt"
PI5_CFE_ALL = "v4l2/pi5_rp1cfe_video0_all_6.8.12_moonmd.txt"
PI3_FHD_ALL = "v4l2/pi3bplus_usb_hdmi_grabber_fhd_capture_all_hyperion1083.txt"

CODEC_NAMES = {
    "video10": "bcm2835-codec-decode",
    "video11": "bcm2835-codec-encode",
    "video12": "bcm2835-codec-isp",
    "video18": "bcm2835-codec-image_fx",
    "video31": "bcm2835-codec-encode_image",
}
ISP_NAMES = ["bcm2835-isp-output0", "bcm2835-isp-capture0", "bcm2835-isp-capture1", "bcm2835-isp-stats2"]
# libcamera's PiSP pipeline matches these eight pispbe entity names (src/libcamera/pipeline/rpi/pisp).
PISPBE_NAMES = [
    "pispbe-input",
    "pispbe-tdn_input",
    "pispbe-stitch_input",
    "pispbe-output0",
    "pispbe-output1",
    "pispbe-tdn_output",
    "pispbe-stitch_output",
    "pispbe-config",
]


def parse_media_ctl_nodes(text: str) -> dict[str, str]:
    """``media-ctl -p``: device node → entity name (``/dev/video0`` → ``unicam-image``)."""
    found: dict[str, str] = {}
    entity: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("- entity ") and ":" in stripped:
            entity = stripped.split(":", 1)[1].rsplit(" (", 1)[0].strip()
        elif stripped.startswith("device node name ") and entity is not None:
            found[stripped.removeprefix("device node name ").strip()] = entity
    return found


def _link(tree: FixtureTree, link: str, target: str) -> None:
    """A relative symlink inside the tree, as sysfs has them."""
    path = tree.base / link
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path):
        return
    os.symlink(os.path.relpath(tree.base / target, path.parent), path)


def add_node(tree: FixtureTree, node: str, name: str, device_dir: str, driver: str, index: int) -> None:
    """One video node under its parent device ``device_dir`` (relative to the tree)."""
    entry = f"{device_dir}/video4linux/{node}"
    tree.write(f"{entry}/name", name + "\n")
    tree.write(f"{entry}/index", f"{index}\n")
    tree.write(f"{entry}/dev", f"81:{node[5:]}\n")
    _link(tree, f"{entry}/device", device_dir)
    bus_kind = "usb" if ":" in os.path.basename(device_dir) else "platform"
    tree.base.joinpath(f"sys/bus/{bus_kind}/drivers/{driver}").mkdir(parents=True, exist_ok=True)
    _link(tree, f"{device_dir}/driver", f"sys/bus/{bus_kind}/drivers/{driver}")
    _link(tree, f"sys/class/video4linux/{node}", entry)
    tree.write(f"dev/{node}", "")


def remove_node(tree: FixtureTree, node: str) -> None:
    """What the kernel does on unplug: the /dev node and the sysfs entries go."""
    (tree.base / "dev" / node).unlink()
    class_link = tree.base / "sys/class/video4linux" / node
    entry = os.path.realpath(class_link)
    class_link.unlink()
    for name in os.listdir(entry):
        os.unlink(os.path.join(entry, name))
    os.rmdir(entry)


@dataclass(frozen=True)
class UsbCard:
    """A UVC capture card plugged into one port."""

    controller_dir: str  # sysfs path of the USB host controller, relative to the tree
    usb_bus: int
    port: str  # "1", "1.3"
    name: str
    manufacturer: str | None = None
    product: str | None = None
    serial: str | None = None
    vendor_id: str = "534d"
    product_id: str = "2109"

    @property
    def usb_dir(self) -> str:
        return f"{self.controller_dir}/usb{self.usb_bus}/{self.usb_bus}-{self.port}"


def add_usb_card(
    tree: FixtureTree, card: UsbCard, video_node: str, meta_node: str, by_id: str | None
) -> None:
    """The card's USB device attributes, its video node (index 0) and UVC metadata node (index 1)."""
    tree.write(f"{card.usb_dir}/devpath", card.port + "\n")
    tree.write(f"{card.usb_dir}/idVendor", card.vendor_id + "\n")
    tree.write(f"{card.usb_dir}/idProduct", card.product_id + "\n")
    for attr, value in (
        ("manufacturer", card.manufacturer),
        ("product", card.product),
        ("serial", card.serial),
    ):
        if value is not None:
            tree.write(f"{card.usb_dir}/{attr}", value + "\n")
    interface = f"{card.usb_dir}/{card.usb_bus}-{card.port}:1.0"
    add_node(tree, video_node, card.name, interface, "uvcvideo", 0)
    add_node(tree, meta_node, card.name, interface, "uvcvideo", 1)
    if by_id is not None:
        for node, index in ((video_node, 0), (meta_node, 1)):
            _link(tree, f"dev/v4l/by-id/{by_id}-video-index{index}", f"dev/{node}")


# Pi 4: VideoCore blocks hang off the VCHIQ mailbox device; unicam is the CSI-2 block at fe801000.
PI4_VCHIQ = "sys/devices/platform/soc/fe00b840.mailbox"
PI4_UNICAM = "sys/devices/platform/soc/fe801000.csi"
# The Pi 4's VL805 USB 3 controller sits on PCIe at 0000:01:00.0 (README §6: bus usb-0000:01:00.0-1.3).
PI4_XHCI = "sys/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0"
# Pi 5: RP1's second xHCI controller is xhci-hcd.1 (the captured card's bus usb-xhci-hcd.1-1).
PI5_XHCI = "sys/devices/platform/axi/1000120000.pcie/1f00300000.usb/xhci-hcd.1"
PI3_DWC = "sys/devices/platform/soc/3f980000.usb"

# The captured Pi 5 card (bus usb-xhci-hcd.1-1, card "USB Video: USB Video"). Its descriptor strings are not
# in the fixtures: "USB Video" as product follows from the card name; no serial, so udev's ID_SERIAL is
# <idVendor>_<product> and the id falls back to the port.
PI5_CARD = UsbCard(PI5_XHCI, 3, "1", "USB Video: USB Video", product="USB Video")
# The same kind of card in a Pi 4 USB 3 port (README §6 bus prefix for the VL805: usb-0000:01:00.0-1.3).
PI4_CARD = UsbCard(PI4_XHCI, 1, "1.3", "USB Video: USB Video", product="USB Video")


def build_pi4_platform(tree: FixtureTree) -> None:
    """Pi 4 as captured (camera-streamer#3): codec video10-12/18/31, two ISP instances video13-16 and
    video20-23, unicam video0 (image) and video1 (embedded data)."""
    for node, name in CODEC_NAMES.items():
        add_node(tree, node, name, f"{PI4_VCHIQ}/bcm2835-codec", "bcm2835-codec", 0)
    for first in (13, 20):
        for offset, name in enumerate(ISP_NAMES):
            add_node(tree, f"video{first + offset}", name, f"{PI4_VCHIQ}/bcm2835-isp", "bcm2835-isp", offset)
    unicam = parse_media_ctl_nodes(fixture_text(PI4_MEDIA_CTL))["/dev/video0"]  # "unicam-image"
    add_node(tree, "video0", unicam, PI4_UNICAM, "unicam", 0)
    add_node(tree, "video1", "unicam-embedded", PI4_UNICAM, "unicam", 1)


def build_pi4_with_card(tree: FixtureTree) -> None:
    """The Pi 4 above plus a USB HDMI card: UVC takes the first free numbers, video2 and video3."""
    build_pi4_platform(tree)
    add_usb_card(tree, PI4_CARD, "video2", "video3", by_id="usb-534d_USB_Video")


def build_pizero(tree: FixtureTree) -> None:
    """Pi Zero W as captured (hyperion#1413): unicam 20801000.csi video0/1, codec 10/11/12/18, ISP 13-16."""
    for node, name in CODEC_NAMES.items():
        if node != "video31":  # the 5.10 kernel in that capture had no encode_image node
            add_node(
                tree,
                node,
                name,
                "sys/devices/platform/soc/2000b840.mailbox/bcm2835-codec",
                "bcm2835-codec",
                0,
            )
    for offset, name in enumerate(ISP_NAMES):
        add_node(
            tree,
            f"video{13 + offset}",
            name,
            "sys/devices/platform/soc/2000b840.mailbox/bcm2835-isp",
            "bcm2835-isp",
            offset,
        )
    add_node(tree, "video0", "unicam-image", "sys/devices/platform/soc/20801000.csi", "unicam", 0)
    add_node(tree, "video1", "unicam-embedded", "sys/devices/platform/soc/20801000.csi", "unicam", 1)


def build_pi5_platform(tree: FixtureTree) -> None:
    """Pi 5 nodes that exist without a camera: the PiSP back end (video20-27) and the HEVC decoder
    (video19; README §6 ``rpi-hevc-dec (platform:rpi-hevc-dec)``)."""
    for offset, name in enumerate(PISPBE_NAMES):
        add_node(
            tree, f"video{20 + offset}", name, "sys/devices/platform/axi/1000880000.pisp_be", "pispbe", offset
        )
    add_node(tree, "video19", "rpi-hevc-dec", "sys/devices/platform/axi/rpi-hevc-dec", "rpi-hevc-dec", 0)


def build_pi5_with_card(tree: FixtureTree) -> None:
    """Pi 5 with the captured USB card on video0/video1 (no CSI camera, so rp1-cfe registered no nodes)."""
    build_pi5_platform(tree)
    add_usb_card(tree, PI5_CARD, "video0", "video1", by_id="usb-534d_USB_Video")


def build_pi5_with_camera(tree: FixtureTree) -> None:
    """Pi 5 with a CSI camera: rp1-cfe video0-7 (names from the media-ctl and --all captures; csi2_ch1-3
    follow the driver's csi2_ch<N> pattern) plus the back end and HEVC decoder."""
    build_pi5_platform(tree)
    cfe = "sys/devices/platform/axi/1000120000.pcie/1f00128000.csi"
    names = parse_media_ctl_nodes(fixture_text(PI5_MEDIA_CTL))
    all_text = fixture_text(PI5_CFE_ALL)
    ch0 = next(
        line.split(":", 1)[1].strip() for line in all_text.splitlines() if line.strip().startswith("Name ")
    )
    nodes = {
        "video0": ch0,
        "video1": "rp1-cfe-csi2_ch1",
        "video2": "rp1-cfe-csi2_ch2",
        "video3": "rp1-cfe-csi2_ch3",
    }
    nodes.update(
        {path.removeprefix("/dev/"): name for path, name in names.items() if name.startswith("rp1-cfe")}
    )
    for index, (node, name) in enumerate(sorted(nodes.items(), key=lambda item: int(item[0][5:]))):
        add_node(tree, node, name, cfe, "rp1-cfe", index)


def groups_from_sysfs(tree: FixtureTree) -> dict[str, list[str]]:
    """bus info → /dev/videoN nodes, as the agent derives them from the tree."""
    nodes, reason = read_sysfs_nodes(Root(tree.base))
    assert reason is None
    groups: dict[str, list[str]] = {}
    for node in nodes:
        assert node.bus is not None, node
        groups.setdefault(node.bus, []).append(node.path)
    return {bus: sorted(paths) for bus, paths in groups.items()}


def groups_from_capture(relative: str) -> dict[str, list[str]]:
    return {
        group.bus: sorted(path for path in group.nodes if path.startswith("/dev/video"))
        for group in parse_list_devices(fixture_text(relative))
    }


# --- stand-in tools -----------------------------------------------------------------------------------------

BIN_DIR = Path(__file__).resolve().parent / "bin"
STANDIN_DIR = BIN_DIR / "discovery"


def install_standins(bin_dir: Path, names: dict[str, str]) -> Path:
    """Copy stand-in tools into ``bin_dir`` as ``{installed name: stand-in name}``, executable, with this
    interpreter in the shebang (tests put only ``bin_dir`` on PATH, where ``env python3`` would not
    resolve)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for installed, source in names.items():
        _install_script(STANDIN_DIR / source, bin_dir / installed)
    return bin_dir


def _install_script(source: Path, target: Path) -> None:
    body = source.read_text(encoding="utf-8").split("\n", 1)[1]
    target.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    target.chmod(0o755)


def install_vcgencmd(bin_dir: Path, answers: dict[str, str]) -> dict[str, str]:
    """Install the stand-in ``vcgencmd`` (tests/agent/bin/vcgencmd) replaying ``answers``; returns the
    environment variables a subprocess needs to find it: ``PATH`` (``bin_dir`` first) and
    ``VCGENCMD_ANSWERS``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    _install_script(BIN_DIR / "vcgencmd", bin_dir / "vcgencmd")
    answers_file = bin_dir / "vcgencmd-answers.json"
    answers_file.write_text(json.dumps(answers, indent=1), encoding="utf-8")
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VCGENCMD_ANSWERS": str(answers_file),
    }


# --- whole boards -------------------------------------------------------------------------------------------

PI3BPLUS_CPUINFO = "cpuinfo/pi3bplus_arm64_a020d3.txt"
PI3BPLUS_MEMINFO = "meminfo/pi3bplus_6.6.31_gfons.txt"  # same board, kernel and source as the cpuinfo
PI3BPLUS_DT_MODEL = "sysfs/proc_device_tree_model_pi3bplus_no_newline.txt"
PI3BPLUS_VCGENCMD = "vcgencmd/rpi3bp01_version_temp_getmem.txt"
BUFINFO_OLD_FORMAT = "dmabuf/bufinfo_pi4_2020_kernel_old_format_firmware1345.txt"
NET_DEV = "net/proc_net_dev_raspberrypi_eth0_rxdrops_weechat229_partial.txt"
NET_WIRELESS = "net/proc_net_wireless_hankb_testdata.txt"
THERMAL_TEMP = "sysfs/thermal_zone0_temp_brandywine.txt"
HWMON_FIXTURE = "sysfs/hwmon_rpi_volt_and_thermal_fixture_values.txt"
KERNEL_LOG = "sysfs/kernel_log_undervoltage_lines.txt"
THROTTLED_ISSUES = "vcgencmd/get_throttled_samples_from_issues.txt"
VC4_CLOCKS = "vcgencmd/pi_1.1ghz_measure_clock_all_italian_transcript.txt"


def capture_lines(relative: str) -> list[str]:
    """The capture's lines without the ``## …`` annotations the fixture files add between outputs."""
    return [line for line in fixture_text(relative).splitlines() if not line.startswith("#")]


def capture_line(relative: str, startswith: str, after: str | None = None) -> str:
    """The first capture line starting with ``startswith`` (after the annotation containing ``after``)."""
    lines = fixture_text(relative).splitlines()
    if after is not None:
        lines = lines[next(i for i, line in enumerate(lines) if line.startswith("#") and after in line) :]
    return next(line for line in lines if line.startswith(startswith))


def _header_kernel(relative: str) -> str:
    """The kernel release named on a capture's ``# board:`` line (``… kernel 6.6.31+rpt-rpi-v8 (arm64)``)."""
    raw = fixture_path(relative).read_text(encoding="utf-8")
    board = next(line for line in raw.splitlines() if line.startswith("# board:"))
    return board.split(" kernel ", 1)[1].split()[0]


def _sysfs_fixture_values(relative: str) -> dict[str, str]:
    """``path = value`` lines of the hwmon/thermal fixture file."""
    values: dict[str, str] = {}
    for line in capture_lines(relative):
        path, sep, value = line.partition(" = ")
        if sep:
            values[path.strip()] = value.strip()
    return values


def pi3bplus_vcgencmd_answers() -> dict[str, str]:
    """Replies for the stand-in ``vcgencmd`` of the 3B+ tree, each the real reply to that command.

    * ``measure_temp`` → ``temp=50.5'C``: a 3B+ (Revision a020d3), rpi3bp01 capture;
    * ``measure_clock arm`` → ``frequency(45)=1400000000``: duckietown#358 (Pi 3 class at 1.4 GHz = 3B+);
    * ``measure_volts core`` → ``volt=1.2000V``: tldr#6309, the only measure_volts capture (board not
      stated; ``measure_volts`` without argument is ``core``);
    * ``measure_clock h264`` / ``core`` → 300 MHz / 400 MHz: the VC4-family clock transcript (ids 28 and 1
      are the BCM2835/6/7 ids the 3B+ shares; its label ``h264:\\t`` was printed by the loop, not vcgencmd);
    * ``get_throttled`` → ``throttled=0x50005``: firmware#615 on a Pi 3 (no 3B+ capture shows a non-zero
      word), the same word the captured kernel line ``Under-voltage detected! (0x00050005)`` printed.
    """
    clocks = {line.split(":\t")[0]: line.split(":\t")[1] for line in capture_lines(VC4_CLOCKS)}
    return {
        "measure_temp": capture_line(PI3BPLUS_VCGENCMD, "temp="),
        "measure_volts core": capture_line(THROTTLED_ISSUES, "volt="),
        "measure_clock h264": clocks["h264"],
        "measure_clock arm": capture_line(THROTTLED_ISSUES, "frequency(45)=", after="duckietown"),
        "measure_clock core": clocks["core"],
        "get_throttled": capture_line(THROTTLED_ISSUES, "throttled=0x50005", after="firmware/issues/615"),
    }


def build_pi3bplus_tree(tree: FixtureTree) -> dict[str, str]:
    """A Raspberry Pi 3 Model B+ (Revision a020d3, arm64 Bookworm kernel 6.6.31) below ``tree``.

    Returns the answers for the stand-in ``vcgencmd`` (:func:`pi3bplus_vcgencmd_answers`); install them
    with :func:`install_vcgencmd`. Files and where each comes from:

    ==================================  =====================================================================
    proc/cpuinfo                        cpuinfo/pi3bplus_arm64_a020d3.txt (gfons99, the board itself)
    proc/device-tree/model              sysfs/proc_device_tree_model_pi3bplus_no_newline.txt: the model text
                                        without the shell prompt that followed it, NUL-terminated as the
                                        capture's note gives the real bytes
    proc/sys/kernel/osrelease           the kernel release named in the cpuinfo capture's ``# board:`` line
    proc/meminfo                        meminfo/pi3bplus_6.6.31_gfons.txt (same board, same source)
    sys/kernel/debug/dma_buf/bufinfo    dmabuf/bufinfo_pi4_2020_kernel_old_format_firmware1345.txt — no
                                        3B+ bufinfo was captured; this complete dump (4 drm buffers,
                                        33177600 bytes) is from a Pi 4
    proc/net/dev                        net/proc_net_dev_raspberrypi_eth0_rxdrops_weechat229_partial.txt
                                        (eth0 and lo; the cut-off wlan0 line is not in the capture)
    proc/net/wireless                   net/proc_net_wireless_hankb_testdata.txt (brcmfmac wlan0, as on a 3B+)
    sys/class/thermal/thermal_zone0     ``type`` from the hwmon/thermal fixture file (cpu-thermal), ``temp``
                                        from sysfs/thermal_zone0_temp_brandywine.txt (45464)
    sys/class/hwmon/hwmon0              ``name`` rpi_volt and ``in0_lcrit_alarm`` 0 from
                                        sysfs/hwmon_rpi_volt_and_thermal_fixture_values.txt (a unit-test
                                        fixture mirroring the real files; the README has no capture of them)
    dev/kmsg                            the captured line of sysfs/kernel_log_undervoltage_lines.txt
                                        (``Under-voltage detected! (0x00050005)``; the file's second line
                                        is the driver's format string, not a capture, so it is left out).
                                        A regular file: the power watch polls it like a log
    proc/                               no pid directories: the per-process DMA-buf scan finds nothing
    ==================================  =====================================================================
    """
    tree.write("proc/cpuinfo", fixture_text(PI3BPLUS_CPUINFO))
    model = fixture_text(PI3BPLUS_DT_MODEL).partition("pi@pibuttons")[0]
    tree.write("proc/device-tree/model", model.encode("ascii") + b"\0")
    tree.write("proc/sys/kernel/osrelease", _header_kernel(PI3BPLUS_CPUINFO) + "\n")
    tree.write("proc/meminfo", fixture_text(PI3BPLUS_MEMINFO))
    tree.write("sys/kernel/debug/dma_buf/bufinfo", fixture_text(BUFINFO_OLD_FORMAT))
    tree.write("proc/net/dev", fixture_text(NET_DEV))
    tree.write("proc/net/wireless", fixture_text(NET_WIRELESS))
    sysfs = _sysfs_fixture_values(HWMON_FIXTURE)
    zone = "sys/class/thermal/thermal_zone0"
    tree.write(f"{zone}/type", sysfs[f"{zone}/type"] + "\n")
    tree.write(f"{zone}/temp", fixture_text(THERMAL_TEMP))
    hwmon = "sys/class/hwmon/hwmon0"
    tree.write(f"{hwmon}/name", sysfs[f"{hwmon}/name"] + "\n")
    tree.write(f"{hwmon}/in0_lcrit_alarm", sysfs[f"{hwmon}/in0_lcrit_alarm"] + "\n")
    tree.write("dev/kmsg", capture_line(KERNEL_LOG, "Under-voltage detected!") + "\n")
    return pi3bplus_vcgencmd_answers()
