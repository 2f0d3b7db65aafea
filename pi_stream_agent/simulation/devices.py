"""The simulated Pi's cameras: a Camera Module 3 on the CSI port and a USB HDMI capture card in a USB port,
each with the controls a real one lists, so the demo shows what the camera-controls features offer.

The agent's real discovery reads them: the card is in the simulated sysfs (:func:`write_usb_card`), and
:class:`SimulatedTools` answers the ``rpicam-hello`` and ``v4l2-ctl`` calls discovery makes from the
embedded captures (``captures.CSI_IMX708_VERBOSE``, ``captures.CARD_CONTROLS``), in-process — no tool runs,
nothing forks. The parsers then do the rest, as on a Pi.

Adapted, not captured: the camera's id path. The recorded ``--list-cameras -v`` is from a Pi 5; on the
simulated Pi 4 the camera sits on unicam's I2C bus, so its id becomes ``/base/soc/i2c0mux/i2c@1/imx708@1a``
(the Pi 0-4 id rpicam-apps issue #533 shows for an imx708). Modes and controls stay as recorded. No format
list of such a card is recorded (fixtures README, "Gaps"), so the simulated card lists controls but no
formats.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pi_stream_agent.discovery.v4l2 import ToolResult
from pi_stream_agent.simulation import captures
from pi_stream_agent.simulation.captures import capture_text
from pi_stream_agent.simulation.tree import write_atomic

PI5_CAMERA_ID = "/base/axi/pcie@1000120000/rp1/i2c@88000/imx708@1a"
PI4_CAMERA_ID = "/base/soc/i2c0mux/i2c@1/imx708@1a"


@dataclass(frozen=True)
class SimulatedUsbCard:
    """A UVC capture card as sysfs shows it: its USB device, the video node (interface index 0) and the
    UVC metadata node (index 1). The Pi 4's VL805 USB 3 controller is on PCIe at 0000:01:00.0, so a card in
    port 1.3 reports bus ``usb-0000:01:00.0-1.3`` (fixtures README §6)."""

    controller: str = "scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0"  # below sys/devices/platform
    usb_bus: int = 1
    port: str = "1.3"
    # MacroSilicon's ids and the card name such HDMI dongles report (README §6: "USB Video: USB Video").
    vendor_id: str = "534d"
    product_id: str = "2109"
    product: str = "USB Video"
    name: str = "USB Video: USB Video"
    video_node: str = "video2"  # UVC takes the first numbers the Pi's own nodes left free
    meta_node: str = "video3"

    @property
    def by_id(self) -> str:
        """udev's ``ID_SERIAL`` without a serial number: ``<idVendor>_<product>``."""
        return f"usb-{self.vendor_id}_{self.product.replace(' ', '_')}"


SIMULATED_CARD = SimulatedUsbCard()


def _relative_link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(target, link.parent))


def write_usb_card(base: Path, card: SimulatedUsbCard = SIMULATED_CARD) -> None:
    """The card in sysfs and /dev as the kernel and udev lay it out: the USB device's attributes, the
    interface ``<bus>-<port>:1.0`` bound to uvcvideo, its two video4linux nodes, ``dev/videoN`` (plain files:
    no mknod) and the ``dev/v4l/by-id`` links."""
    usb_dir = (
        base / "sys/devices/platform" / card.controller / f"usb{card.usb_bus}" / f"{card.usb_bus}-{card.port}"
    )
    usb_dir.mkdir(parents=True, exist_ok=True)
    for attr, value in (
        ("devpath", card.port),
        ("idVendor", card.vendor_id),
        ("idProduct", card.product_id),
        ("product", card.product),
    ):
        write_atomic(usb_dir / attr, value + "\n")
    interface = usb_dir / f"{card.usb_bus}-{card.port}:1.0"
    driver = base / "sys/bus/usb/drivers/uvcvideo"
    driver.mkdir(parents=True, exist_ok=True)
    interface.mkdir(parents=True, exist_ok=True)
    _relative_link(interface / "driver", driver)
    for index, node in enumerate((card.video_node, card.meta_node)):
        entry = interface / "video4linux" / node
        entry.mkdir(parents=True, exist_ok=True)
        write_atomic(entry / "name", card.name + "\n")
        write_atomic(entry / "index", f"{index}\n")
        _relative_link(entry / "device", interface)
        _relative_link(base / "sys/class/video4linux" / node, entry)
        (base / "dev" / node).touch()
        _relative_link(base / "dev/v4l/by-id" / f"{card.by_id}-video-index{index}", base / "dev" / node)
    write_usb_sound_card(base, usb_dir, card)


def write_usb_sound_card(base: Path, usb_dir: Path, card: SimulatedUsbCard = SIMULATED_CARD) -> None:
    """The card's audio interface as ALSA shows it (discovery/alsa.py reads it): card 1 beside the Pi 4's
    headphone card. Adapted, not captured (no citable /proc/asound listing of such a card was found,
    fixtures README "alsa/"; a real one's arecord -l agrees: card id MS2109, device 0 "USB Audio"): the
    names follow the kernel's snd-usb-audio quirk entry for 534d:2109 ("MacroSilicon", "MS2109"), the
    layout that of sound/core/init.c and pcm.c, the stream file's a 48 kHz stereo capture as USB audio
    cards list it."""
    bus = f"usb-{card.controller.rsplit('/', 1)[-1]}-{card.port}"
    asound = base / "proc/asound"
    (asound / "card1").mkdir(parents=True, exist_ok=True)
    write_atomic(
        asound / "cards",
        " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n"
        "                      bcm2835 Headphones\n"
        " 1 [MS2109         ]: USB-Audio - MS2109\n"
        f"                      MacroSilicon MS2109 at {bus}, high speed\n",
    )
    write_atomic(
        asound / "pcm",
        "00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n"
        "01-00: USB Audio : USB Audio : capture 1\n",
    )
    write_atomic(asound / "card1/usbid", f"{card.vendor_id}:{card.product_id}\n")
    write_atomic(
        asound / "card1/stream0",
        f"MacroSilicon MS2109 at {bus}, high speed : USB Audio\n\nCapture:\n  Status: Stop\n  Interface 3\n"
        "    Altset 1\n    Format: S16_LE\n    Channels: 2\n    Endpoint: 0x82 (2 IN) (ASYNC)\n"
        "    Rates: 48000\n    Bits: 16\n",
    )
    interface = usb_dir / f"{card.usb_bus}-{card.port}:1.2"
    interface.mkdir(parents=True, exist_ok=True)
    _relative_link(base / "sys/class/sound/card1/device", interface)
    (base / "dev/snd").mkdir(parents=True, exist_ok=True)
    (base / "dev/snd/pcmC1D0c").touch()


class SimulatedTools:
    """Answers discovery's tool calls for the simulated Pi (a discovery ``ToolRunner``).

    ``rpicam-hello``/``libcamera-hello --list-cameras [-v]`` prints the recorded camera listing (its
    controls block only with ``-v``, as rpicam-apps does); ``v4l2-ctl -d <node> …`` prints the card's
    recorded controls for ``--list-ctrls-menus`` (nothing for ``--info``/``--list-formats-ext``: not
    recorded) and fails like the real tool for a node that is not one of the card's.
    """

    def __init__(self, fixtures: Path | None, card: SimulatedUsbCard = SIMULATED_CARD) -> None:
        self._cameras = capture_text(captures.CSI_IMX708_VERBOSE, fixtures).replace(
            PI5_CAMERA_ID, PI4_CAMERA_ID
        )
        # The metadata node opens but has no controls (UVC puts them on the video node).
        self._controls = {card.video_node: capture_text(captures.CARD_CONTROLS, fixtures), card.meta_node: ""}

    def __call__(self, argv: Sequence[str], timeout_s: float) -> ToolResult:
        del timeout_s  # answered at once
        tool, args = os.path.basename(argv[0]), list(argv[1:])
        command = " ".join(argv)
        if tool in ("rpicam-hello", "libcamera-hello") and "--list-cameras" in args:
            return ToolResult(self._cameras if "-v" in args else _without_controls(self._cameras))
        if tool == "v4l2-ctl" and "-d" in args[:-1]:
            device = args[args.index("-d") + 1]
            controls = self._controls.get(os.path.basename(device))
            if controls is None:
                return ToolResult(
                    "", f"`{command}` exited with status 1: Cannot open device {device}, exiting."
                )
            return ToolResult(controls if "--list-ctrls-menus" in args else "")
        return ToolResult("", f"`{command}` is not simulated")


def _without_controls(listing: str) -> str:
    kept: list[str] = []
    in_block = False
    for line in listing.splitlines(keepends=True):
        if line.strip().startswith("Available controls for "):
            in_block = True
        elif in_block and (not line.strip() or not line[0].isspace()):
            in_block = False
        if not in_block:
            kept.append(line)
    return "".join(kept)
