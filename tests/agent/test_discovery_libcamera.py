"""CSI cameras: every rpicam --list-cameras capture parsed, and the reader with stand-in tools."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pi_stream_agent.discovery.libcamera import Crop, CsiCameraReader, Mode, parse_list_cameras
from tests.agent.helpers import fixture_text
from tests.agent.pi_trees import install_standins

PI5_TWO = "v4l2/list_cameras_pi5_imx708_plus_imx219_tabs.txt"


def test_2021_initial_format_without_rates() -> None:
    (camera,) = parse_list_cameras(fixture_text("v4l2/list_cameras_2021_initial_format_rpicam215.txt"))
    assert (camera.index, camera.model, camera.sensor_size, camera.bit_depth, camera.bayer) == (
        0,
        "imx477",
        (4056, 3040),
        None,
        None,
    )
    assert camera.id_path == "/base/soc/i2c0mux/i2c@1/imx477@1a"
    assert camera.modes == [
        Mode("SRGGB10_CSI2P", 1332, 990),
        Mode("SRGGB12_CSI2P", 2028, 1080),
        Mode("SRGGB12_CSI2P", 2028, 1520),
        Mode("SRGGB12_CSI2P", 4056, 3040),
    ]


def test_2022_format_with_rates_without_bits() -> None:
    (camera,) = parse_list_cameras(fixture_text("v4l2/list_cameras_pi4_imx477_hq_2022_rpicam336.txt"))
    assert (camera.model, camera.sensor_size, camera.bit_depth, camera.bayer) == (
        "imx477",
        (4056, 3040),
        None,
        None,
    )
    assert camera.modes == [
        Mode("SRGGB10_CSI2P", 1332, 990, 120.05, Crop(696, 528, 2664, 1980)),
        Mode("SRGGB12_CSI2P", 2028, 1080, 50.03, Crop(0, 440, 4056, 2160)),
        Mode("SRGGB12_CSI2P", 2028, 1520, 40.01, Crop(0, 0, 4056, 3040)),
        Mode("SRGGB12_CSI2P", 4056, 3040, 10.00, Crop(0, 0, 4056, 3040)),
    ]


def test_current_format_pi5_imx477() -> None:
    (camera,) = parse_list_cameras(fixture_text("v4l2/list_cameras_pi5_imx477_linkfreq750_linux6208.txt"))
    assert (camera.model, camera.sensor_size, camera.bit_depth, camera.bayer) == (
        "imx477",
        (4056, 3040),
        12,
        "RGGB",
    )
    assert camera.id_path == "/base/axi/pcie@1000120000/rp1/i2c@80000/imx477@1a"
    assert [(m.width, m.height, m.fps) for m in camera.modes] == [
        (1332, 990, 169.87),
        (2028, 1080, 105.95),
        (2028, 1520, 75.36),
        (4056, 2160, 27.48),
        (4056, 3040, 19.53),
    ]
    assert camera.modes[3].crop == Crop(0, 440, 4056, 3040)


def test_third_party_imx585_16_bit() -> None:
    (camera,) = parse_list_cameras(fixture_text("v4l2/list_cameras_pi5_imx585_3rdparty_rpicam_vid.txt"))
    assert (camera.model, camera.sensor_size, camera.bit_depth, camera.bayer) == (
        "imx585",
        (3840, 2160),
        16,
        "RGGB",
    )
    assert camera.id_path == "/base/axi/pcie@120000/rp1/i2c@80000/imx585@1A"
    assert camera.modes == [
        Mode("SRGGB12_CSI2P", 1928, 1090, 87.60, Crop(0, 0, 3840, 2160)),
        Mode("SRGGB12_CSI2P", 3856, 2180, 43.80, Crop(0, 0, 3840, 2160)),
        Mode("SRGGB16", 1928, 1090, 30.00, Crop(0, 0, 3840, 2160)),
        Mode("SRGGB16", 3856, 2180, 21.90, Crop(0, 0, 3840, 2160)),
    ]


def test_two_cameras_tab_indented() -> None:
    first, second = parse_list_cameras(fixture_text(PI5_TWO))
    assert (first.index, first.model, first.sensor_size, first.bit_depth, first.bayer) == (
        0,
        "imx708",
        (4608, 2592),
        10,
        "RGGB",
    )
    assert [(m.width, m.height, m.fps) for m in first.modes] == [
        (1536, 864, 120.13),
        (2304, 1296, 56.03),
        (4608, 2592, 14.35),
    ]
    assert first.modes[0].crop == Crop(768, 432, 3072, 1728)
    assert (second.index, second.model, second.id_path) == (
        1,
        "imx219",
        "/base/axi/pcie@1000120000/rp1/i2c@70000/imx219@10",
    )
    assert len(second.modes) == 8
    assert second.modes[0] == Mode("SRGGB10_CSI2P", 640, 480, 206.65, Crop(1000, 752, 1280, 960))
    assert second.modes[5] == Mode("SRGGB8", 1640, 1232, 83.70, Crop(0, 0, 3280, 2464))
    assert second.modes[7] == Mode("SRGGB8", 3280, 2464, 21.19, Crop(0, 0, 3280, 2464))


def test_json_shape() -> None:
    first = parse_list_cameras(fixture_text(PI5_TWO))[0]
    assert first.to_json() == {
        "index": 0,
        "model": "imx708",
        "sensor_width": 4608,
        "sensor_height": 2592,
        "bit_depth": 10,
        "bayer": "RGGB",
        "id_path": "/base/axi/pcie@1000120000/rp1/i2c@88000/imx708@1a",
        "modes": [
            {
                "format": "SRGGB10_CSI2P",
                "width": 1536,
                "height": 864,
                "fps": 120.13,
                "crop": {"x": 768, "y": 432, "width": 3072, "height": 1728},
            },
            {
                "format": "SRGGB10_CSI2P",
                "width": 2304,
                "height": 1296,
                "fps": 56.03,
                "crop": {"x": 0, "y": 0, "width": 4608, "height": 2592},
            },
            {
                "format": "SRGGB10_CSI2P",
                "width": 4608,
                "height": 2592,
                "fps": 14.35,
                "crop": {"x": 0, "y": 0, "width": 4608, "height": 2592},
            },
        ],
        # Plain --list-cameras (without -v) lists no controls.
        "controls": {},
    }


def test_no_cameras_and_odd_input() -> None:
    assert parse_list_cameras("No cameras available!\n") == []
    assert parse_list_cameras("") == []
    assert parse_list_cameras("Available cameras\n-----------------\n0 : broken\n") == []
    # A camera whose details are garbage keeps what can be read.
    (camera,) = parse_list_cameras(
        "0 : ov5647 [garbage] (/x)\n    Modes: 'SGBRG10_CSI2P' : 640xZ [abc fps]\n"
    )
    assert (camera.model, camera.sensor_size, camera.modes) == ("ov5647", None, [])


def test_log_lines_and_usb_entries() -> None:
    # libcamera log lines interleaved (2>&1), and a USB webcam that libcamera's UVC pipeline also lists. The
    # USB id shape "<interface path>-<vid>:<pid>" is the one seen in mavlink-camera-manager#66; this input is
    # written in rpicam's format (core/options.cpp), not copied.
    text = (
        "[0:00:01.000000000] [100]  INFO Camera camera_manager.cpp:293 libcamera v0.0.5\n"
        "Available cameras\n"
        "-----------------\n"
        "0 : ov5647 [2592x1944 10-bit GBRG] (/base/soc/i2c0mux/i2c@1/ov5647@36)\n"
        "    Modes: 'SGBRG10_CSI2P' : 640x480 [58.92 fps - (16, 0)/2560x1920 crop]\n"
        "[0:00:01.100000000] [101]  WARN RPI vc4.cpp:383 Mismatch between Unicam and CamHelper\n"
        "1 : USB Video: USB Video [1920x1080] (/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1.3:1.0-534d:2109)\n"
        "    Modes: 'MJPEG' : 1280x720 1920x1080\n"
    )
    ov5647, usb = parse_list_cameras(text)
    assert (ov5647.model, ov5647.bayer, ov5647.modes) == (
        "ov5647",
        "GBRG",
        [Mode("SGBRG10_CSI2P", 640, 480, 58.92, Crop(16, 0, 2560, 1920))],
    )
    assert not ov5647.is_usb
    assert (usb.model, usb.sensor_size, [(m.format, m.width) for m in usb.modes]) == (
        "USB Video: USB Video",
        (1920, 1080),
        [("MJPEG", 1280), ("MJPEG", 1920)],
    )
    assert usb.is_usb


# --- the reader -----------------------------------------------------------------------------------------


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def write_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    output = tmp_path / "list.txt"
    output.write_text(text, encoding="utf-8")
    monkeypatch.setenv("RPICAM_STANDIN_OUTPUT", str(output))


def test_reader_runs_rpicam_hello(bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_standins(bin_dir, {"rpicam-hello": "rpicam-hello"})
    write_output(tmp_path, monkeypatch, fixture_text(PI5_TWO))
    listing = CsiCameraReader().read()
    assert listing.tool == "rpicam-hello"
    assert listing.reason is None
    assert [(c.index, c.model) for c in listing.cameras] == [(0, "imx708"), (1, "imx219")]


def test_reader_falls_back_to_libcamera_hello(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_standins(bin_dir, {"libcamera-hello": "rpicam-hello"})
    write_output(tmp_path, monkeypatch, fixture_text("v4l2/list_cameras_2021_initial_format_rpicam215.txt"))
    listing = CsiCameraReader().read()
    assert listing.tool == "libcamera-hello"
    assert [c.model for c in listing.cameras] == ["imx477"]


def test_reader_drops_usb_cameras(bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_standins(bin_dir, {"rpicam-hello": "rpicam-hello"})
    write_output(
        tmp_path,
        monkeypatch,
        "Available cameras\n-----------------\n"
        "0 : USB Video: USB Video [1920x1080] (/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1.3:1.0-534d:2109)\n"
        "    Modes: 'MJPEG' : 1920x1080\n",
    )
    listing = CsiCameraReader().read()
    assert listing.cameras == []
    assert listing.reason is None


def test_reader_no_cameras(bin_dir: Path) -> None:
    install_standins(bin_dir, {"rpicam-hello": "rpicam-hello"})  # prints "No cameras available!"
    listing = CsiCameraReader().read()
    assert (listing.cameras, listing.tool, listing.reason) == ([], "rpicam-hello", None)


def test_reader_tool_missing(bin_dir: Path) -> None:
    listing = CsiCameraReader().read()
    assert listing.cameras == []
    assert listing.tool is None
    assert listing.reason == (
        "rpicam-hello or libcamera-hello not found on PATH (CSI cameras need rpicam-apps)"
    )


def test_reader_disabled() -> None:
    listing = CsiCameraReader(tools=()).read()
    assert listing.cameras == []
    assert listing.reason == "CSI camera listing is disabled (no rpicam tool configured)"


def test_reader_timeout(bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_standins(bin_dir, {"rpicam-hello": "rpicam-hello"})
    write_output(tmp_path, monkeypatch, fixture_text(PI5_TWO))
    monkeypatch.setenv("RPICAM_STANDIN_SLEEP", "5")
    started = time.monotonic()
    listing = CsiCameraReader(timeout_s=0.5).read()
    assert time.monotonic() - started < 3.0
    assert listing.cameras == []
    assert listing.reason == f"`{bin_dir}/rpicam-hello --list-cameras -v` timed out after 0.5 s"


def test_reader_failing_tool(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_standins(bin_dir, {"rpicam-hello": "rpicam-hello"})
    monkeypatch.setenv("RPICAM_STANDIN_EXIT", "255")
    listing = CsiCameraReader().read()
    assert listing.reason == f"`{bin_dir}/rpicam-hello --list-cameras -v` exited with status 255"
