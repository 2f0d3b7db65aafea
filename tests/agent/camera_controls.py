"""Camera controls in the devices document's form (contract K1 of issue 8), for the settings tests.

Until discovery parses them from ``rpicam-hello --list-cameras -v`` and ``v4l2-ctl --list-ctrls-menus``,
tests give cameras these. The ranges are those libcamera reports for a Camera Module 3 (imx708) on a Pi 4
(Picamera2's ``camera_controls``: ``LensPosition`` 0..15, ``ExposureValue`` -8..8, ``AnalogueGain``
1.12..16, ``ExposureTime`` 26..112015096 µs) and a typical UVC HDMI/USB card (uvcvideo's names and menus).
"""

from __future__ import annotations

from typing import Any

IMX708_CONTROLS: dict[str, dict[str, Any]] = {
    "AeExposureMode": {"min": 0, "max": 3},
    "AeFlickerPeriod": {"min": 100, "max": 1000000},
    "AeMeteringMode": {"min": 0, "max": 3},
    "AfMode": {"min": 0, "max": 2},
    "AfRange": {"min": 0, "max": 2},
    "AfSpeed": {"min": 0, "max": 1},
    "AnalogueGain": {"min": 1.122807, "max": 16.0},
    "AwbEnable": {"min": False, "max": True},
    "AwbMode": {"min": 0, "max": 7},
    "Brightness": {"min": -1.0, "max": 1.0},
    "ColourGains": {"min": 0.0, "max": 32.0},
    "Contrast": {"min": 0.0, "max": 32.0},
    "ExposureTime": {"min": 26, "max": 112015096},
    "ExposureValue": {"min": -8.0, "max": 8.0},
    "LensPosition": {"min": 0.0, "max": 15.0},
    "NoiseReductionMode": {"min": 0, "max": 4},
    "Saturation": {"min": 0.0, "max": 32.0},
    "ScalerCrop": {"min": "(0, 0)/64x64", "max": "(0, 0)/4608x2592"},
    "Sharpness": {"min": 0.0, "max": 16.0},
}
# A Camera Module 1 (ov5647): fixed focus, no HDR.
OV5647_CONTROLS: dict[str, dict[str, Any]] = {
    key: value
    for key, value in IMX708_CONTROLS.items()
    if not key.startswith("Af") and key not in ("LensPosition",)
}


def csi_camera(model: str, controls: dict[str, dict[str, Any]], index: int = 0) -> dict[str, Any]:
    return {
        "index": index,
        "model": model,
        "sensor_width": 4608 if model.startswith("imx708") else 2592,
        "sensor_height": 2592 if model.startswith("imx708") else 1944,
        "bit_depth": 10,
        "bayer": "RGGB",
        "id_path": f"/base/soc/i2c0mux/i2c@1/{model}@1a",
        "modes": [],
        "controls": controls,
    }


CARD_CONTROLS: dict[str, dict[str, Any]] = {
    "brightness": {"type": "int", "min": -64, "max": 64, "step": 1, "default": 0, "value": 0},
    "contrast": {"type": "int", "min": 0, "max": 95, "step": 5, "default": 30, "value": 30},
    "white_balance_automatic": {"type": "bool", "default": 1, "value": 1},
    "white_balance_temperature": {
        "type": "int",
        "min": 2800,
        "max": 6500,
        "step": 10,
        "default": 4600,
        "value": 4600,
        "flags": ["inactive"],
    },
    "power_line_frequency": {
        "type": "menu",
        "min": 0,
        "max": 2,
        "default": 1,
        "value": 1,
        "menu": {"0": "Disabled", "1": "50 Hz", "2": "60 Hz"},
    },
    "exposure_time_absolute": {
        "type": "int",
        "min": 1,
        "max": 5000,
        "step": 1,
        "default": 157,
        "value": 157,
        "flags": ["read-only"],
    },
}
FLIP_CONTROLS: dict[str, dict[str, Any]] = {
    "horizontal_flip": {"type": "bool", "default": 0, "value": 0},
    "vertical_flip": {"type": "bool", "default": 0, "value": 0},
}
