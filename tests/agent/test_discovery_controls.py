"""What each camera can do: the controls in real rpicam-hello -v and v4l2-ctl --list-ctrls-menus outputs,
read by the CSI reader, the V4L2 scan and DeviceRegistry.read_controls through stand-in tools."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pi_stream_agent.discovery.libcamera import CsiCameraReader, parse_control_line, parse_list_cameras
from pi_stream_agent.discovery.registry import DeviceRegistry
from pi_stream_agent.discovery.v4l2_controls import parse_list_ctrls_menus
from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Root
from tests.agent.helpers import FixtureTree, fixture_text
from tests.agent.pi_trees import build_pi4_with_card, build_pi5_with_card, install_standins
from tests.agent.test_cli import EXIT_OK, run_cli
from tests.agent.test_discovery_v4l2 import CARD_FORMATS, META_FORMATS

IMX708_V = "v4l2/list_cameras_v_pi5_imx708_af_indiallsky.txt"
IMX477_V = "v4l2/list_cameras_v_pi4_imx477_noaf_indiallsky.txt"
IMX296_V = "v4l2/list_cameras_v_imx296_libcamera020_allsky3632.txt"
ELGATO = "v4l2/list_ctrls_menus_uvc_elgato_facecam4k_linuxmedia2025.txt"
USB_VIDEO_CARD = "v4l2/list_ctrls_menus_usb_video_capture_card_virtio_linuxmedia2025.txt"
OLD_UVC = "v4l2/list_ctrls_menus_old_layout_uvc_creative_vf0610_linuxmedia2012.txt"
OLD_BCM2835 = "v4l2/list_ctrls_old_layout_bcm2835_v4l2_piriscope9.txt"


# --- CSI: rpicam-hello --list-cameras -v ------------------------------------------------------------------


def test_imx708_lists_autofocus_hdr_and_typed_ranges() -> None:
    (camera,) = parse_list_cameras(fixture_text(IMX708_V))
    assert len(camera.controls) == 35
    assert camera.controls["AfMode"] == {"min": 0, "max": 2}
    assert camera.controls["LensPosition"] == {"min": 0.0, "max": 15.0}
    assert camera.controls["HdrMode"] == {"min": 0, "max": 4}
    assert camera.controls["AwbEnable"] == {"min": False, "max": True}
    assert camera.controls["AnalogueGain"] == {"min": 1.122807, "max": 16.0}
    assert camera.controls["Brightness"] == {"min": -1.0, "max": 1.0}
    assert camera.controls["ExposureTime"] == {"min": 26, "max": 220416802}
    assert camera.controls["ScalerCrop"] == {"min": "(0, 0)/51x39", "max": "(0, 0)/4608x2592"}
    assert camera.controls["AfWindows"] == {"min": "(0, 0)/0x0", "max": "(65535, 65535)/65535x65535"}
    # Types survive JSON as the contract says: ints as ints, floats as floats, booleans as booleans.
    assert isinstance(camera.controls["AfMode"]["max"], int)
    assert isinstance(camera.controls["AeEnable"]["max"], bool)


def test_controls_block_is_never_read_as_modes() -> None:
    """The block's title (4608x2592) and ScalerCrop/AfWindows ranges carry sizes; none becomes a mode."""
    (camera,) = parse_list_cameras(fixture_text(IMX708_V))
    assert [(m.format, m.width, m.height, m.fps) for m in camera.modes] == [
        ("SRGGB10_CSI2P", 1536, 864, 120.13),
        ("SRGGB10_CSI2P", 2304, 1296, 56.03),
        ("SRGGB10_CSI2P", 4608, 2592, 14.35),
    ]
    (hq,) = parse_list_cameras(fixture_text(IMX477_V))
    assert [(m.width, m.height) for m in hq.modes] == [(1332, 990), (2028, 1080), (2028, 1520), (4056, 3040)]
    (gs,) = parse_list_cameras(fixture_text(IMX296_V))
    assert [(m.width, m.height) for m in gs.modes] == [(1456, 1088)]


def test_camera_without_autofocus_lists_none() -> None:
    (hq,) = parse_list_cameras(fixture_text(IMX477_V))
    assert "AfMode" not in hq.controls and "LensPosition" not in hq.controls
    assert hq.controls["HdrMode"] == {"min": 0, "max": 4}
    assert hq.controls["ScalerCrop"] == {"min": "(0, 0)/64x64", "max": "(0, 0)/4056x3040"}
    (gs,) = parse_list_cameras(fixture_text(IMX296_V))
    assert (gs.model, len(gs.controls)) == ("imx296", 21)
    assert "AfMode" not in gs.controls
    assert gs.controls["ExposureTime"] == {"min": 29, "max": 0}  # printed so by libcamera 0.2
    assert gs.controls["AnalogueGain"] == {"min": 1.0, "max": 251.188644}


def test_two_cameras_keep_their_own_controls() -> None:
    """Real blocks of two cameras, one after the other as rpicam-hello prints several cameras."""
    text = fixture_text(IMX708_V) + "\n" + fixture_text(IMX477_V).replace("0 : imx477", "1 : imx477", 1)
    first, second = parse_list_cameras(text)
    assert (first.index, first.model, "AfMode" in first.controls) == (0, "imx708", True)
    assert (second.index, second.model, "AfMode" in second.controls) == (1, "imx477", False)
    assert len(second.modes) == 4 and len(second.controls) == 28


def test_control_line_shapes() -> None:
    assert parse_control_line("    AfMode : [0..2]") == ("AfMode", {"min": 0, "max": 2})
    assert parse_control_line("ExposureValue : [-8.000000..8.000000]") == (
        "ExposureValue",
        {"min": -8.0, "max": 8.0},
    )
    # libcamera's ControlInfo::toString() prints [min..max] only; a default printed after it is kept.
    assert parse_control_line("AfMode : [0..2] default 0") == ("AfMode", {"min": 0, "max": 2, "default": 0})
    assert parse_control_line("Brightness : [-1.0..1.0] (default 0.0)") == (
        "Brightness",
        {"min": -1.0, "max": 1.0, "default": 0.0},
    )
    assert parse_control_line("Odd : [something]") == ("Odd", {})  # listed, range unknown
    assert parse_control_line("----------------------") is None
    assert parse_control_line("Modes: 'SRGGB10_CSI2P' : 1536x864 [120.13 fps]") is None


def test_plain_listing_has_no_controls() -> None:
    (camera,) = parse_list_cameras(fixture_text("v4l2/list_cameras_pi4_imx477_hq_2022_rpicam336.txt"))
    assert camera.controls == {}


def test_reader_asks_for_the_verbose_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in, like rpicam-hello, prints the controls block only with -v."""
    bin_dir = install_standins(tmp_path / "bin", {"rpicam-hello": "rpicam-hello"})
    monkeypatch.setenv("PATH", str(bin_dir))
    output = tmp_path / "cameras.txt"
    output.write_text(fixture_text(IMX708_V), encoding="utf-8")
    monkeypatch.setenv("RPICAM_STANDIN_OUTPUT", str(output))
    listing = CsiCameraReader().read()
    (camera,) = listing.cameras
    assert listing.reason is None
    assert camera.controls["AfMode"] == {"min": 0, "max": 2}
    assert camera.to_json()["controls"]["LensPosition"] == {"min": 0.0, "max": 15.0}
    assert len(camera.modes) == 3


# --- V4L2: v4l2-ctl --list-ctrls-menus --------------------------------------------------------------------


def test_uvc_webcam_current_layout() -> None:
    controls = parse_list_ctrls_menus(fixture_text(ELGATO))
    assert list(controls) == [
        "brightness",
        "contrast",
        "saturation",
        "white_balance_automatic",
        "gain",
        "power_line_frequency",
        "white_balance_temperature",
        "sharpness",
        "backlight_compensation",
        "auto_exposure",
        "exposure_time_absolute",
        "pan_absolute",
        "tilt_absolute",
        "zoom_absolute",
    ]
    assert controls["brightness"] == {
        "type": "int",
        "min": -9,
        "max": 9,
        "step": 1,
        "default": 2,
        "value": 2,
        "flags": ["has-min-max"],
    }
    assert controls["white_balance_automatic"] == {"type": "bool", "default": 1, "value": 1}
    assert controls["power_line_frequency"] == {
        "type": "menu",
        "min": 0,
        "max": 2,
        "default": 2,
        "value": 2,
        "menu": {"0": "Disabled", "1": "50 Hz", "2": "60 Hz"},
    }
    # Menus with gaps keep the driver's indexes; the "(Aperture Priority Mode)" label is not the value.
    assert controls["auto_exposure"]["menu"] == {"1": "Manual Mode", "3": "Aperture Priority Mode"}
    assert controls["auto_exposure"]["value"] == 3
    assert controls["exposure_time_absolute"]["flags"] == ["inactive", "has-min-max"]
    assert controls["pan_absolute"]["min"] == -5184000


def test_capture_card_controls() -> None:
    controls = parse_list_ctrls_menus(fixture_text(USB_VIDEO_CARD))
    assert controls == {
        "brightness": {"type": "int", "min": -128, "max": 127, "step": 1, "default": -11, "value": -11},
        "contrast": {"type": "int", "min": 0, "max": 255, "step": 1, "default": 148, "value": 148},
        "saturation": {"type": "int", "min": 0, "max": 255, "step": 1, "default": 180, "value": 180},
        "hue": {"type": "int", "min": -128, "max": 127, "step": 1, "default": 0, "value": 0},
    }


def test_old_layout_without_ids_with_menus() -> None:
    controls = parse_list_ctrls_menus(fixture_text(OLD_UVC))
    assert len(controls) == 13
    assert controls["white_balance_temperature_auto"] == {"type": "bool", "default": 1, "value": 0}
    assert controls["exposure_auto"] == {
        "type": "menu",
        "min": 0,
        "max": 3,
        "default": 1,
        "value": 3,
        "menu": {"1": "Manual Mode", "3": "Aperture Priority Mode"},
    }
    assert controls["exposure_absolute"]["value"] == 16777372  # as the camera reported it


def test_old_layout_bcm2835_without_menu_items() -> None:
    controls = parse_list_ctrls_menus(fixture_text(OLD_BCM2835))
    assert controls["brightness"]["flags"] == ["slider"]
    assert controls["horizontal_flip"] == {"type": "bool", "default": 0, "value": 0}
    # A plain --list-ctrls prints no items: the menu has no "menu" key rather than an empty one.
    assert controls["color_effects"] == {"type": "menu", "min": 0, "max": 15, "default": 0, "value": 0}


def test_read_only_intmenu_and_other_types() -> None:
    # Lines as posted in public threads: motioneye-project/motioneyeos#2081 (bcm2835-codec, read-only; the
    # terminal's wrap inside "default=1" re-joined) and antmicro/pyvidctrl#11 (an integer menu).
    text = (
        "User Controls\n\n"
        "  min_number_of_capture_buffers 0x00980927 (int)    : min=1 max=1 step=1 default=1 value=1 "
        "flags=read-only\n\n"
        "Camera Controls\n\n"
        "             auto_exposure_bias 0x009a0913 (intmenu): min=0 max=24 default=12 value=12\n"
        "\t\t\t\t0: -4000 (0xfffffffffffff060)\n"
        "\t\t\t\t12: 0 (0x0)\n"
        "\t\t\t\t13: 333 (0x14d)\n"
    )
    controls = parse_list_ctrls_menus(text)
    assert controls["min_number_of_capture_buffers"]["flags"] == ["read-only"]
    assert controls["auto_exposure_bias"]["menu"] == {"0": "-4000", "12": "0", "13": "333"}
    # v4l2-ctl's other types (v4l2-ctl-common.cpp print_qctrl): str is the API's "string", bitmask in hex.
    other = parse_list_ctrls_menus(
        "  name 0x00a00001 (str)    : min=0 max=32 step=1 value='Front camera' flags=read-only\n"
        "  mask 0x00a00002 (bitmask): max=0x0000000f default=0x00000000 value=0x00000005\n"
        "  trigger 0x00a00003 (button) : value=0 flags=write-only, execute-on-write\n"
    )
    assert other["name"] == {
        "type": "string",
        "min": 0,
        "max": 32,
        "step": 1,
        "value": "Front camera",
        "flags": ["read-only"],
    }
    assert other["mask"] == {"type": "bitmask", "max": 15, "default": 0, "value": 5}
    assert other["trigger"]["flags"] == ["write-only", "execute-on-write"]


def test_combined_probe_output_and_foreign_text() -> None:
    """The scan's one v4l2-ctl run prints info, controls and formats together: only controls are taken."""
    combined = (
        fixture_text("v4l2/pi3bplus_usb_hdmi_grabber_fhd_capture_all_hyperion1083.txt")
        + fixture_text(USB_VIDEO_CARD)
        + CARD_FORMATS
    )
    assert list(parse_list_ctrls_menus(combined)) == ["brightness", "contrast", "saturation", "hue"]
    assert parse_list_ctrls_menus("") == {}
    assert parse_list_ctrls_menus(CARD_FORMATS) == {}
    assert parse_list_ctrls_menus(fixture_text(IMX708_V)) == {}


# --- scan and read_controls through the v4l2-ctl stand-in -------------------------------------------------


@pytest.fixture
def v4l2_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = install_standins(tmp_path / "bin", {"v4l2-ctl": "v4l2-ctl"})
    data = tmp_path / "v4l2-ctl-data"
    data.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("V4L2_CTL_STANDIN_DIR", str(data))
    return data


def _calls(data: Path) -> list[str]:
    log = data / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


async def test_scan_reads_controls_in_the_same_run(tree: FixtureTree, v4l2_data: Path) -> None:
    build_pi5_with_card(tree)
    (v4l2_data / "video0.formats.txt").write_text(CARD_FORMATS)
    (v4l2_data / "video0.controls.txt").write_text(fixture_text(USB_VIDEO_CARD))
    (v4l2_data / "video1.formats.txt").write_text(META_FORMATS)
    registry = DeviceRegistry(Root(tree.base), EventBus(), csi_tools=(), hotplug=False)
    await registry.start()
    try:
        (card,) = registry.to_json()["capture_devices"]
    finally:
        await registry.stop()
    assert card["controls"]["brightness"] == {
        "type": "int",
        "min": -128,
        "max": 127,
        "step": 1,
        "default": -11,
        "value": -11,
    }
    assert len(card["formats"]) == 2
    # One process per node: no extra fork for the controls.
    assert _calls(v4l2_data) == [
        f"-d {tree.base}/dev/video0 --info --list-ctrls-menus --list-formats-ext",
        f"-d {tree.base}/dev/video1 --info --list-ctrls-menus --list-formats-ext",
    ]


async def test_read_controls_rereads_one_device(tree: FixtureTree, v4l2_data: Path) -> None:
    build_pi5_with_card(tree)
    (v4l2_data / "video0.formats.txt").write_text(CARD_FORMATS)
    (v4l2_data / "video0.controls.txt").write_text(fixture_text(USB_VIDEO_CARD))
    (v4l2_data / "video1.formats.txt").write_text(META_FORMATS)
    registry = DeviceRegistry(Root(tree.base), EventBus(), csi_tools=(), hotplug=False)
    await registry.start()
    try:
        (device_id,) = [d["id"] for d in registry.to_json()["capture_devices"]]
        # The card's brightness changed (as after v4l2-ctl -c brightness=10): the re-read sees it.
        changed = fixture_text(USB_VIDEO_CARD).replace("default=-11 value=-11", "default=-11 value=10")
        (v4l2_data / "video0.controls.txt").write_text(changed)
        controls = await registry.read_controls(device_id)
        assert controls["brightness"]["value"] == 10
        assert registry.to_json()["capture_devices"][0]["controls"]["brightness"]["value"] == 10
        assert _calls(v4l2_data)[-1] == f"-d {tree.base}/dev/video0 --list-ctrls-menus"
        with pytest.raises(KeyError):
            await registry.read_controls("usb-no-such-card")
        # The card stops answering: the last values stay, and the reason is said.
        for name in ("video0.controls.txt", "video0.formats.txt"):
            (v4l2_data / name).unlink()
        kept = await registry.read_controls(device_id)
        assert kept["brightness"]["value"] == 10
        reason = registry.unavailable()["controls"]
        assert reason.endswith(f"exited with status 1: Cannot open device {tree.base}/dev/video0, exiting.")
    finally:
        await registry.stop()


# --- the devices command with tools from PATH (the contract checks use) ------------------------------------


def test_devices_command_runs_tools_from_path_below_a_root(tree: FixtureTree, tmp_path: Path) -> None:
    """``devices --root DIR --tools-from-path``: recorded outputs stand in for rpicam-hello and v4l2-ctl; the
    JSON carries each camera's controls. Without the flag the tools are not run below a root."""
    build_pi4_with_card(tree)
    bin_dir = install_standins(tmp_path / "bin", {"v4l2-ctl": "v4l2-ctl", "rpicam-hello": "rpicam-hello"})
    v4l2_data = tmp_path / "v4l2-ctl-data"
    v4l2_data.mkdir()
    (v4l2_data / "video2.formats.txt").write_text(CARD_FORMATS)
    (v4l2_data / "video2.controls.txt").write_text(fixture_text(ELGATO))
    (v4l2_data / "video3.formats.txt").write_text(META_FORMATS)
    cameras = tmp_path / "cameras.txt"
    cameras.write_text(fixture_text(IMX708_V))
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "V4L2_CTL_STANDIN_DIR": str(v4l2_data),
        "RPICAM_STANDIN_OUTPUT": str(cameras),
    }
    done = run_cli("devices", "--root", tree.base, "--tools-from-path", env=env)
    assert done.returncode == EXIT_OK, done.stderr
    devices = json.loads(done.stdout)
    (camera,) = devices["csi_cameras"]
    assert camera["controls"]["AfMode"] == {"min": 0, "max": 2}
    assert camera["controls"]["AwbEnable"] == {"min": False, "max": True}
    assert camera["controls"]["ScalerCrop"] == {"min": "(0, 0)/51x39", "max": "(0, 0)/4608x2592"}
    (card,) = devices["capture_devices"]
    assert card["path"] == "/dev/video2"
    assert card["controls"]["power_line_frequency"]["menu"] == {"0": "Disabled", "1": "50 Hz", "2": "60 Hz"}
    assert card["controls"]["exposure_time_absolute"]["flags"] == ["inactive", "has-min-max"]
    assert "unavailable" in devices and "csi_cameras" not in devices["unavailable"]

    (v4l2_data / "calls.log").unlink()
    done = run_cli("devices", "--root", tree.base, env=env)
    assert done.returncode == EXIT_OK, done.stderr
    plain = json.loads(done.stdout)
    assert plain["csi_cameras"] == []
    assert plain["capture_devices"][0]["controls"] == {}
    assert not (v4l2_data / "calls.log").exists()
