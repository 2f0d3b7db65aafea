"""V4L2 discovery: parsers on every v4l2-ctl capture, classification, and scanning fixture trees."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pi_stream_agent.discovery.v4l2 import (
    DriverInfo,
    Format,
    ListedDevice,
    Size,
    UsbIdentity,
    V4l2Scanner,
    VideoNode,
    bus_from_device_path,
    display_name,
    find_h264_encoder,
    is_pi_node,
    parse_list_devices,
    parse_list_formats_ext,
    parse_v4l2_info,
    run_tool,
)
from pi_stream_agent.rootfs import Root
from tests.agent.helpers import FixtureTree, fixture_text
from tests.agent.pi_trees import (
    PI3_DWC,
    PI3_FHD_ALL,
    PI4_CAPTURE,
    PI5_USB_CAPTURE,
    PIZERO_CAPTURE,
    UsbCard,
    add_node,
    add_usb_card,
    build_pi4_with_card,
    build_pi5_with_camera,
    build_pi5_with_card,
    build_pizero,
    install_standins,
)

# README "Gaps": no verbatim `v4l2-ctl --list-formats-ext` of an MS2109-class card captured on a Pi. These
# listings are built from v4l-utils' own printf formats (v4l2-ctl print_video_formats_ext, print_frmsize,
# print_frmival: "\tType: %s\n\n", "\t[%d]: '%s' (%s", ", %s" flags, ")", "\t\tSize: Discrete %dx%d",
# "\t\t\tInterval: Discrete %ss (%s fps)", fps = denominator/numerator with %.3f), with the shape the README
# gives for these cards: MJPG up to 1920x1080, YUYV only at low rates at high resolutions.
CARD_FORMATS = (
    "ioctl: VIDIOC_ENUM_FMT\n"
    "\tType: Video Capture\n"
    "\n"
    "\t[0]: 'MJPG' (Motion-JPEG, compressed)\n"
    "\t\tSize: Discrete 1920x1080\n"
    "\t\t\tInterval: Discrete 0.033s (30.000 fps)\n"
    "\t\t\tInterval: Discrete 0.040s (25.000 fps)\n"
    "\t\tSize: Discrete 1280x720\n"
    "\t\t\tInterval: Discrete 0.017s (60.000 fps)\n"
    "\t\t\tInterval: Discrete 0.033s (30.000 fps)\n"
    "\t[1]: 'YUYV' (YUYV 4:2:2)\n"
    "\t\tSize: Discrete 1920x1080\n"
    "\t\t\tInterval: Discrete 0.200s (5.000 fps)\n"
    "\t\tSize: Discrete 640x480\n"
    "\t\t\tInterval: Discrete 0.033s (30.000 fps)\n"
)
CARD_FORMATS_PARSED = [
    Format(
        "MJPG",
        "Motion-JPEG",
        True,
        [Size(1920, 1080, [30.0, 25.0]), Size(1280, 720, [60.0, 30.0])],
        "Video Capture",
    ),
    Format("YUYV", "YUYV 4:2:2", False, [Size(1920, 1080, [5.0]), Size(640, 480, [30.0])], "Video Capture"),
]

# The same listing in the layout older v4l-utils printed (print_video_formats_ext before the [N] rewrite:
# "\tIndex       : %d", "\tType        : %s", "\tPixel Format: '%s'" + " (%s)" flags, "\tName        : %s",
# a blank line after each format).
CARD_FORMATS_OLD = (
    "ioctl: VIDIOC_ENUM_FMT\n"
    "\tIndex       : 0\n"
    "\tType        : Video Capture\n"
    "\tPixel Format: 'MJPG' (compressed)\n"
    "\tName        : Motion-JPEG\n"
    "\t\tSize: Discrete 1920x1080\n"
    "\t\t\tInterval: Discrete 0.033s (30.000 fps)\n"
    "\t\t\tInterval: Discrete 0.040s (25.000 fps)\n"
    "\t\tSize: Discrete 1280x720\n"
    "\t\t\tInterval: Discrete 0.017s (60.000 fps)\n"
    "\t\t\tInterval: Discrete 0.033s (30.000 fps)\n"
    "\n"
    "\tIndex       : 1\n"
    "\tType        : Video Capture\n"
    "\tPixel Format: 'YUYV'\n"
    "\tName        : YUYV 4:2:2\n"
    "\t\tSize: Discrete 1920x1080\n"
    "\t\t\tInterval: Discrete 0.200s (5.000 fps)\n"
    "\t\tSize: Discrete 640x480\n"
    "\t\t\tInterval: Discrete 0.033s (30.000 fps)\n"
    "\n"
)

# A UVC metadata node: v4l2-ctl prints the Type line, then VIDIOC_ENUM_FMT for Video Capture fails at once
# (print_video_formats_ext returns), so no format follows.
META_FORMATS = "ioctl: VIDIOC_ENUM_FMT\n\tType: Video Capture\n\n"


def meta_info() -> str:
    """The captured FHD Capture --info with the metadata node's Device Caps (drivers/media/usb/uvc/
    uvc_metadata.c: device_caps = V4L2_CAP_META_CAPTURE | V4L2_CAP_STREAMING; the core adds Extended Pix
    Format), i.e. what the card's second node reports."""
    text = fixture_text(PI3_FHD_ALL)
    head, _, rest = text.partition("        Device Caps      : 0x04200001\n")
    tail = rest.split("Media Driver Info:", 1)[1]
    caps = (
        "        Device Caps      : 0x04a00000\n"
        "                Metadata Capture\n"
        "                Streaming\n"
        "                Extended Pix Format\n"
    )
    return head + caps + "Media Driver Info:" + tail


# --- parse_list_devices ---------------------------------------------------------------------------------


def test_list_devices_pi4_codec_isp_unicam() -> None:
    assert parse_list_devices(fixture_text(PI4_CAPTURE)) == [
        ListedDevice(
            "bcm2835-codec-decode",
            "platform:bcm2835-codec",
            ["/dev/video10", "/dev/video11", "/dev/video12", "/dev/video18", "/dev/video31", "/dev/media0"],
        ),
        ListedDevice(
            "bcm2835-isp",
            "platform:bcm2835-isp",
            [
                "/dev/video13",
                "/dev/video14",
                "/dev/video15",
                "/dev/video16",
                "/dev/video20",
                "/dev/video21",
                "/dev/video22",
                "/dev/video23",
                "/dev/media1",
                "/dev/media2",
            ],
        ),
        ListedDevice("unicam", "platform:fe801000.csi", ["/dev/video0", "/dev/video1", "/dev/media3"]),
    ]


def test_list_devices_pizero_indented_with_spaces() -> None:
    assert parse_list_devices(fixture_text(PIZERO_CAPTURE)) == [
        ListedDevice("unicam", "platform:20801000.csi", ["/dev/video0", "/dev/video1", "/dev/media2"]),
        ListedDevice(
            "bcm2835-codec-decode",
            "platform:bcm2835-codec",
            ["/dev/video10", "/dev/video11", "/dev/video12", "/dev/video18", "/dev/media1"],
        ),
        ListedDevice(
            "bcm2835-isp",
            "platform:bcm2835-isp",
            ["/dev/video13", "/dev/video14", "/dev/video15", "/dev/video16", "/dev/media0"],
        ),
    ]


def test_list_devices_pi5_usb_card() -> None:
    assert parse_list_devices(fixture_text(PI5_USB_CAPTURE)) == [
        ListedDevice(
            "USB Video: USB Video", "usb-xhci-hcd.1-1", ["/dev/video0", "/dev/video1", "/dev/media2"]
        )
    ]


def test_list_devices_odd_input() -> None:
    assert parse_list_devices("") == []
    assert parse_list_devices("\t/dev/video0\n\n") == []  # a node without a header is dropped
    # A card name with its own parentheses: the bus is the last group.
    assert parse_list_devices("UVC Camera (046d:0825) (usb-3f980000.usb-1.2):\n\t/dev/video0\n") == [
        ListedDevice("UVC Camera (046d:0825)", "usb-3f980000.usb-1.2", ["/dev/video0"])
    ]
    assert parse_list_devices("garbage line\n") == [ListedDevice("garbage line", "", [])]


# --- parse_v4l2_info ------------------------------------------------------------------------------------


def test_info_pi3_fhd_capture_card() -> None:
    info = parse_v4l2_info(fixture_text(PI3_FHD_ALL))
    assert info == DriverInfo(
        driver="uvcvideo",
        card="FHD Capture: FHD Capture",
        bus="usb-3f980000.usb-1.5",
        driver_version="5.4.72",
        capabilities=[
            "Video Capture",
            "Metadata Capture",
            "Streaming",
            "Extended Pix Format",
            "Device Capabilities",
        ],
        device_caps=["Video Capture", "Streaming", "Extended Pix Format"],
    )
    assert info.captures_video is True


def test_info_pi5_rp1_cfe_node() -> None:
    info = parse_v4l2_info(fixture_text("v4l2/pi5_rp1cfe_video0_all_6.8.12_moonmd.txt"))
    assert (info.driver, info.card, info.bus, info.driver_version) == (
        "rp1-cfe",
        "rp1-cfe",
        "platform:1f00128000.csi",
        "6.8.12",
    )
    assert info.device_caps == [
        "Video Capture",
        "Metadata Capture",
        "I/O MC",
        "Streaming",
        "Extended Pix Format",
    ]
    assert "Metadata Output" in info.capabilities


def test_info_metadata_node_does_not_capture_video() -> None:
    info = parse_v4l2_info(meta_info())
    assert info.device_caps == ["Metadata Capture", "Streaming", "Extended Pix Format"]
    assert info.captures_video is False


def test_info_odd_input() -> None:
    assert parse_v4l2_info("") == DriverInfo()
    assert parse_v4l2_info("").captures_video is None
    assert parse_v4l2_info("Driver Info:\n\tno colon here\n\tCard type : \n") == DriverInfo()
    old = "Driver Info (not using libv4l2):\n\tDriver name   : uvcvideo\n\tBus info      : usb-1\n"
    assert (parse_v4l2_info(old).driver, parse_v4l2_info(old).bus) == ("uvcvideo", "usb-1")


# --- parse_list_formats_ext -----------------------------------------------------------------------------


def test_formats_current_layout() -> None:
    assert parse_list_formats_ext(CARD_FORMATS) == CARD_FORMATS_PARSED


def test_formats_old_layout() -> None:
    assert parse_list_formats_ext(CARD_FORMATS_OLD) == CARD_FORMATS_PARSED


def test_formats_stepwise_continuous_and_flags() -> None:
    # print_frmsize: "Stepwise %dx%d - %dx%d with step %d/%d"; print_frmival stepwise/continuous:
    # "%ss - %ss with step %ss (%s-%s fps)" / "%ss - %ss (%s-%s fps)" (max fps is 1/min interval).
    text = (
        "ioctl: VIDIOC_ENUM_FMT\n\tType: Video Capture Multiplanar\n\n"
        "\t[0]: 'NV12' (Y/UV 4:2:0, emulated)\n"
        "\t\tSize: Stepwise 32x32 - 1920x1920 with step 2/2\n"
        "\t[1]: 'H264' (H.264, compressed, continuous-bytestream)\n"
        "\t\tSize: Discrete 1280x720\n"
        "\t\t\tInterval: Stepwise 0.033s - 1.000s with step 0.033s (1.000-30.000 fps)\n"
        "\t\tSize: Discrete 640x480\n"
        "\t\t\tInterval: Continuous 0.017s - 0.500s (2.000-60.000 fps)\n"
    )
    assert parse_list_formats_ext(text) == [
        Format("NV12", "Y/UV 4:2:0", False, [Size(1920, 1920, [], 32, 32)], "Video Capture Multiplanar"),
        Format(
            "H264",
            "H.264",
            True,
            [Size(1280, 720, [30.0, 1.0]), Size(640, 480, [60.0, 2.0])],
            "Video Capture Multiplanar",
        ),
    ]


def test_formats_odd_input() -> None:
    assert parse_list_formats_ext("") == []
    assert parse_list_formats_ext(META_FORMATS) == []
    junk = (
        "ioctl: VIDIOC_ENUM_FMT\n\tType: Video Capture\n\n"
        "\t\t\tInterval: Discrete 0.033s (30.000 fps)\n"  # before any format
        "\t[0]: no quotes at all\n"
        "\t\tSize: Discrete 1x1\n"  # belongs to no format
        "\t[1]: 'YUYV' (YUYV 4:2:2)\n"
        "\t\tSize: Discrete axb\n"
        "\t\t\tInterval: Discrete 0.033s (30.000 fps)\n"  # no size to attach to
        "\t\tSize: Discrete 640x480\n"
        "\t\t\tInterval: Discrete garbage (abc fps)\n"
        "\t\t\tInterval: Discrete 0.000s (inf fps\n"
    )
    assert parse_list_formats_ext(junk) == [
        Format("YUYV", "YUYV 4:2:2", False, [Size(640, 480)], "Video Capture")
    ]


# --- classification -------------------------------------------------------------------------------------


@pytest.mark.parametrize("capture", [PI4_CAPTURE, PIZERO_CAPTURE])
def test_every_captured_pi_group_is_a_platform_node(capture: str) -> None:
    groups = parse_list_devices(fixture_text(capture))
    assert groups and all(is_pi_node(group.card, group.bus) for group in groups)


def test_captured_usb_card_is_not_a_pi_node() -> None:
    (group,) = parse_list_devices(fixture_text(PI5_USB_CAPTURE))
    assert not is_pi_node(group.card, group.bus)
    # Names alone also mark the Pi's blocks (nodes whose bus sysfs could not give).
    for name in (
        "bcm2835-codec-encode",
        "bcm2835-isp-capture0",
        "unicam-image",
        "rp1-cfe-csi2_ch0",
        "pispbe-output0",
        "rpivid",
        "rpi-hevc-dec",
    ):
        assert is_pi_node(name, None), name
    assert not is_pi_node("FHD Capture: FHD Capture", "usb-3f980000.usb-1.5")


def test_encoder_from_list_devices_groups_only() -> None:
    # Without sysfs every codec node carries the group's card "bcm2835-codec-decode": video11 is the encoder.
    nodes = [
        VideoNode(os.path.basename(path), group.card, None, group.bus, name_from_group=True)
        for group in parse_list_devices(fixture_text(PIZERO_CAPTURE))
        for path in group.nodes
        if "/video" in path
    ]
    encoder = find_h264_encoder(nodes)
    assert (encoder.h264, encoder.device, encoder.name) == (True, "/dev/video11", "bcm2835-codec-encode")
    assert (
        find_h264_encoder([VideoNode("video0", "USB Video: USB Video", 0, "usb-xhci-hcd.1-1")]).h264 is False
    )


def test_display_name() -> None:
    assert display_name("USB Video: USB Video") == "USB Video"
    assert display_name("FHD Capture: FHD Capture") == "FHD Capture"
    assert display_name("HD Pro Webcam C920") == "HD Pro Webcam C920"
    assert display_name("Camera: Video Interface") == "Camera: Video Interface"
    assert display_name(None) is None


def test_udev_serial_matches_a_real_by_id_name() -> None:
    # linux-media, 2017-03-12 (Russell King): "usb-Sonix_Technology_Co.__Ltd._USB_2.0_Camera-video-index0".
    sonix = UsbIdentity("0c45", "6366", "Sonix Technology Co., Ltd.", "USB 2.0 Camera", None)
    assert "usb-" + sonix.udev_serial() == "usb-Sonix_Technology_Co.__Ltd._USB_2.0_Camera"
    # No descriptor strings: udev falls back to the hex ids; a serial with a comma is dropped.
    bare = UsbIdentity("534d", "2109", None, None, "12,34")
    assert bare.udev_serial() == "534d_2109"
    assert bare.usable_serial is None
    assert (
        UsbIdentity("534d", "2109", " ACME  Corp ", "Grab/ber", "A1").udev_serial() == "ACME_Corp_Grab_ber_A1"
    )


@pytest.mark.parametrize(
    ("device", "bus", "usb_dir"),
    [
        (
            "/sys/devices/platform/axi/1000120000.pcie/1f00300000.usb/xhci-hcd.1/usb3/3-1/3-1:1.0",
            "usb-xhci-hcd.1-1",
            "/sys/devices/platform/axi/1000120000.pcie/1f00300000.usb/xhci-hcd.1/usb3/3-1",
        ),
        (
            "/sys/devices/platform/soc/3f980000.usb/usb1/1-1/1-1.5/1-1.5:1.0",
            "usb-3f980000.usb-1.5",
            "/sys/devices/platform/soc/3f980000.usb/usb1/1-1/1-1.5",
        ),
        ("/sys/devices/platform/soc/fe801000.csi", "platform:fe801000.csi", None),
        ("/sys/devices/virtual/misc/something", None, None),
        ("/sys/devices/pci0000:00/usb1", None, None),  # a root hub itself: no port path
    ],
)
def test_bus_from_device_path(device: str, bus: str | None, usb_dir: str | None) -> None:
    got_bus, got_dir = bus_from_device_path(Path(device))
    assert got_bus == bus
    assert (str(got_dir) if got_dir else None) == usb_dir


# --- scanning fixture trees (sysfs only) ------------------------------------------------------------------


def scan(tree: FixtureTree, tool: str | None = None, timeout_s: float = 5.0) -> V4l2Scanner:
    return V4l2Scanner(Root(tree.base), tool, timeout_s)


def test_pi4_tree_offers_only_the_usb_card(tree: FixtureTree) -> None:
    build_pi4_with_card(tree)
    result = scan(tree).scan()
    assert [device.to_json() for device in result.capture_devices] == [
        {
            "id": "usb-0000:01:00.0-1.3",  # no serial number: the USB port
            "name": "USB Video",
            "bus": "usb-0000:01:00.0-1.3",
            "path": "/dev/video2",  # video3 is the card's metadata node (sysfs index 1)
            "stable_path": "/dev/v4l/by-id/usb-534d_USB_Video-video-index0",
            "driver": "uvcvideo",
            "formats": [],
            "controls": {},
        }
    ]
    assert result.hardware_encoder.to_json() == {
        "h264": True,
        "device": "/dev/video11",
        "name": "bcm2835-codec-encode",
    }
    roles = {node.path: node.role for node in result.platform_nodes}
    assert roles == {
        "/dev/video0": "csi_receiver",
        "/dev/video1": "csi_receiver",
        "/dev/video10": "h264_decoder",
        "/dev/video11": "h264_encoder",
        "/dev/video12": "isp",
        "/dev/video13": "isp",
        "/dev/video14": "isp",
        "/dev/video15": "isp",
        "/dev/video16": "isp",
        "/dev/video18": "image_fx",
        "/dev/video20": "isp",
        "/dev/video21": "isp",
        "/dev/video22": "isp",
        "/dev/video23": "isp",
        "/dev/video31": "jpeg_encoder",
    }
    unicam = next(node for node in result.platform_nodes if node.path == "/dev/video0")
    assert (unicam.name, unicam.bus, unicam.driver) == ("unicam-image", "platform:fe801000.csi", "unicam")
    assert result.reasons == {"formats": "formats not read: v4l2-ctl use is disabled"}


def test_pi5_tree_has_no_hardware_encoder(tree: FixtureTree) -> None:
    build_pi5_with_card(tree)
    result = scan(tree).scan()
    assert result.hardware_encoder.to_json() == {"h264": False, "device": None, "name": None}
    assert [(d.id, d.name, d.path, d.bus) for d in result.capture_devices] == [
        ("usb-xhci-hcd.1-1", "USB Video", "/dev/video0", "usb-xhci-hcd.1-1")
    ]
    assert {node.role for node in result.platform_nodes} == {"isp", "hevc_decoder"}
    assert len(result.platform_nodes) == 9


def test_pi5_camera_tree_offers_nothing(tree: FixtureTree) -> None:
    build_pi5_with_camera(tree)
    result = scan(tree).scan()
    assert result.capture_devices == []
    assert result.hardware_encoder.h264 is False
    cfe = [node for node in result.platform_nodes if node.role == "csi_receiver"]
    assert [node.path for node in cfe] == [f"/dev/video{n}" for n in range(8)]
    assert all(node.bus == "platform:1f00128000.csi" and node.driver == "rp1-cfe" for node in cfe)


def test_pizero_tree_has_encoder_and_no_source(tree: FixtureTree) -> None:
    build_pizero(tree)
    result = scan(tree).scan()
    assert result.capture_devices == []
    assert result.hardware_encoder.device == "/dev/video11"
    assert len(result.platform_nodes) == 10


def test_card_with_serial_gets_its_by_id_name_as_id(tree: FixtureTree) -> None:
    card = UsbCard(PI3_DWC, 1, "1.5", "FHD Capture: FHD Capture", "ACME", "FHD Capture", "20200101")
    add_usb_card(tree, card, "video0", "video1", by_id="usb-ACME_FHD_Capture_20200101")
    (device,) = scan(tree).scan().capture_devices
    assert device.id == "usb-ACME_FHD_Capture_20200101"
    assert device.stable_path == "/dev/v4l/by-id/usb-ACME_FHD_Capture_20200101-video-index0"
    assert device.bus == "usb-3f980000.usb-1.5"


def test_sysfs_entry_without_dev_node_is_ignored(tree: FixtureTree) -> None:
    build_pi5_with_card(tree)
    tree.remove("dev/video0")
    assert scan(tree).scan().capture_devices == []


def test_odd_sysfs_never_raises(tree: FixtureTree) -> None:
    build_pi5_with_card(tree)
    tree.write("sys/class/video4linux/video0/index", "garbage\n")  # through the link into the node dir
    (tree.base / "sys/class/video4linux/video1/name").unlink()
    tree.write("sys/class/video4linux/notavideo", "")
    tree.write("dev/video9", "")  # /dev node without sysfs entry: not enumerated from sysfs
    result = scan(tree).scan()
    # index unreadable → treated as a first node; the nameless metadata node (index 1) is still dropped.
    assert [(d.path, d.name) for d in result.capture_devices] == [("/dev/video0", "USB Video")]


def test_unreadable_class_directory_gives_reason_and_no_crash(tree: FixtureTree) -> None:
    tree.write("sys/class/video4linux", "not a directory")
    result = scan(tree).scan()
    assert result.capture_devices == []
    assert result.hardware_encoder.h264 is None
    assert "/sys/class/video4linux" in result.reasons["capture_devices"]
    assert "v4l2-ctl use is disabled" in result.reasons["capture_devices"]


def test_no_video4linux_at_all(tree: FixtureTree) -> None:
    result = scan(tree).scan()
    assert result.capture_devices == []
    assert result.hardware_encoder.h264 is None
    assert result.reasons["capture_devices"].startswith("/sys/class/video4linux not found")


# --- scanning with the v4l2-ctl stand-in ------------------------------------------------------------------


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the v4l2-ctl stand-in; returns the directory it answers from."""
    bin_dir = install_standins(tmp_path / "bin", {"v4l2-ctl": "v4l2-ctl"})
    data = tmp_path / "v4l2-ctl-data"
    data.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("V4L2_CTL_STANDIN_DIR", str(data))
    return data


def calls(data: Path) -> list[str]:
    log = data / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def add_pi3_card(tree: FixtureTree) -> None:
    card = UsbCard(PI3_DWC, 1, "1.5", "FHD Capture: FHD Capture", product="FHD Capture")
    add_usb_card(tree, card, "video0", "video1", by_id=None)


def test_formats_and_caps_from_v4l2_ctl(tree: FixtureTree, standin: Path) -> None:
    add_pi3_card(tree)
    (standin / "video0.info.txt").write_text(fixture_text(PI3_FHD_ALL))
    (standin / "video0.formats.txt").write_text(CARD_FORMATS)
    (standin / "video1.info.txt").write_text(meta_info())
    (standin / "video1.formats.txt").write_text(META_FORMATS)
    result = scan(tree, "v4l2-ctl").scan()
    (device,) = result.capture_devices
    assert (device.id, device.name, device.path, device.driver) == (
        "usb-3f980000.usb-1.5",
        "FHD Capture",
        "/dev/video0",
        "uvcvideo",
    )
    assert device.formats == CARD_FORMATS_PARSED
    assert device.to_json()["formats"][0] == {
        "fourcc": "MJPG",
        "description": "Motion-JPEG",
        "compressed": True,
        "sizes": [
            {"width": 1920, "height": 1080, "fps": [30.0, 25.0], "min_width": None, "min_height": None},
            {"width": 1280, "height": 720, "fps": [60.0, 30.0], "min_width": None, "min_height": None},
        ],
    }
    assert result.reasons == {}
    root = tree.base
    assert calls(standin) == [
        f"-d {root}/dev/video0 --info --list-ctrls-menus --list-formats-ext",
        f"-d {root}/dev/video1 --info --list-ctrls-menus --list-formats-ext",
    ]


def test_caps_decide_over_sysfs_index(tree: FixtureTree, standin: Path) -> None:
    # Device caps say which node streams video even when sysfs index would say otherwise.
    add_pi3_card(tree)
    (standin / "video0.info.txt").write_text(meta_info())
    (standin / "video1.info.txt").write_text(fixture_text(PI3_FHD_ALL))
    (device,) = scan(tree, "v4l2-ctl").scan().capture_devices
    assert device.path == "/dev/video1"
    assert device.id == "usb-3f980000.usb-1.5-video-index1"


def test_format_list_decides_without_info(tree: FixtureTree, standin: Path) -> None:
    add_pi3_card(tree)
    (standin / "video0.formats.txt").write_text(META_FORMATS)
    (standin / "video1.formats.txt").write_text(CARD_FORMATS_OLD)
    (device,) = scan(tree, "v4l2-ctl").scan().capture_devices
    assert device.path == "/dev/video1"
    assert [fmt.fourcc for fmt in device.formats] == ["MJPG", "YUYV"]


def test_tool_runs_only_for_usb_nodes(tree: FixtureTree, standin: Path) -> None:
    build_pi4_with_card(tree)
    (standin / "video2.formats.txt").write_text(CARD_FORMATS)
    (standin / "video3.formats.txt").write_text(META_FORMATS)
    result = scan(tree, "v4l2-ctl").scan()
    assert [d.path for d in result.capture_devices] == ["/dev/video2"]
    # 15 Pi nodes cost no process; sysfs gave every bus, so no --list-devices either.
    assert [line.split()[1] for line in calls(standin)] == [
        f"{tree.base}/dev/video2",
        f"{tree.base}/dev/video3",
    ]


def test_list_devices_when_sysfs_is_missing(tree: FixtureTree, standin: Path) -> None:
    # A container with /dev nodes but no sysfs: nodes and bus info come from --list-devices.
    for node in ("video0", "video1", "video19", "video20"):
        tree.write(f"dev/{node}", "")
    (standin / "list-devices.txt").write_text(fixture_text(PI5_USB_CAPTURE))
    (standin / "video0.formats.txt").write_text(CARD_FORMATS)
    (standin / "video1.formats.txt").write_text(META_FORMATS)
    result = scan(tree, "v4l2-ctl").scan()
    assert [(d.id, d.name, d.path, d.bus) for d in result.capture_devices] == [
        ("usb-xhci-hcd.1-1", "USB Video", "/dev/video0", "usb-xhci-hcd.1-1")
    ]
    assert result.capture_devices[0].formats == CARD_FORMATS_PARSED
    assert result.hardware_encoder.h264 is False
    assert calls(standin)[0] == "--list-devices"


def test_encoder_from_list_devices_when_sysfs_is_missing(tree: FixtureTree, standin: Path) -> None:
    for node in ("video0", "video1", "video10", "video11", "video12", "video18", "video13"):
        tree.write(f"dev/{node}", "")
    (standin / "list-devices.txt").write_text(fixture_text(PIZERO_CAPTURE))
    result = scan(tree, "v4l2-ctl").scan()
    assert result.capture_devices == []
    assert result.hardware_encoder.to_json() == {
        "h264": True,
        "device": "/dev/video11",
        "name": "bcm2835-codec-encode",
    }
    assert {n.path: n.role for n in result.platform_nodes}["/dev/video10"] == "codec"


def test_bus_from_list_devices_for_a_node_without_device_link(tree: FixtureTree, standin: Path) -> None:
    add_node(tree, "video0", "USB Video: USB Video", "sys/devices/virtual/unknown", "uvcvideo", 0)
    (tree.base / "sys/devices/virtual/unknown/video4linux/video0/device").unlink()
    (standin / "list-devices.txt").write_text(fixture_text(PI5_USB_CAPTURE))
    (device,) = scan(tree, "v4l2-ctl").scan().capture_devices
    assert device.bus == "usb-xhci-hcd.1-1"


def test_bus_unknown_without_tool_is_explained(tree: FixtureTree) -> None:
    add_node(tree, "video0", "USB Video: USB Video", "sys/devices/virtual/unknown", "uvcvideo", 0)
    (tree.base / "sys/devices/virtual/unknown/video4linux/video0/device").unlink()
    result = scan(tree).scan()
    assert result.capture_devices == []
    assert (
        result.reasons["bus_info"]
        == "bus unknown for /dev/video0: formats not read: v4l2-ctl use is disabled"
    )


def test_tool_missing_falls_back_to_sysfs(
    tree: FixtureTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    build_pi5_with_card(tree)
    result = scan(tree, "v4l2-ctl").scan()
    assert [d.path for d in result.capture_devices] == ["/dev/video0"]
    assert (
        result.reasons["formats"]
        == "v4l2-ctl not found on PATH (install v4l-utils for formats, controls and bus info)"
    )


def test_tool_timing_out_gives_reason(tree: FixtureTree, standin: Path) -> None:
    build_pi5_with_card(tree)
    (standin / "sleep").write_text("5")
    started = time.monotonic()
    result = scan(tree, "v4l2-ctl", timeout_s=0.5).scan()
    assert time.monotonic() - started < 4.0  # two probes of 0.5 s, not two sleeps of 5 s
    assert [d.path for d in result.capture_devices] == ["/dev/video0"]  # sysfs index decides
    options = "--info --list-ctrls-menus --list-formats-ext"
    command = f"{standin.parent}/bin/v4l2-ctl -d {tree.base}/dev/video0 {options}"
    assert result.reasons["formats"] == f"`{command}` timed out after 0.5 s"


def test_tool_failing_gives_reason(tree: FixtureTree, standin: Path) -> None:
    build_pi5_with_card(tree)  # the stand-in has no answers: "Cannot open device …"
    result = scan(tree, "v4l2-ctl").scan()
    assert [d.path for d in result.capture_devices] == ["/dev/video0"]
    assert result.reasons["formats"].endswith(
        f"exited with status 1: Cannot open device {tree.base}/dev/video0, exiting."
    )


def test_run_tool_never_raises(tmp_path: Path) -> None:
    assert run_tool([str(tmp_path / "nope")], 1.0).reason is not None
    not_executable = tmp_path / "plain"
    not_executable.write_text("")
    result = run_tool([str(not_executable)], 1.0)
    assert result.stdout == ""
    assert "permission denied" in (result.reason or "")
