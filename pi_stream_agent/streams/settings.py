"""Picture settings of a stream: the one owner of their definitions.

A stream's ``settings:`` mapping holds values by setting id (``rotation: 180``, ``af_mode: continuous``);
absent means the camera's default. Each setting here says what a person reads (name, options, unit, icon),
which sources can have it, the libcamera control a CSI camera must list for it to be offered (``control``;
``rpicam-hello --list-cameras -v``), and the ONE rpicam-vid option it becomes (``rpicam_option``, checked
against rpicam-apps core/options.cpp @ 01fc37ec, quoted beside each entry). ``GET /api/v1/vocabulary``
publishes this list as ``stream_settings``; the per-stream controls document (``controls.py``) narrows
ranges to what the stream's camera reports.

Orientation (rotation, flips) is the only setting every source has: rpicam-vid's own transform for CSI,
the driver's flip/rotate controls for V4L2 cards that have them, else an ffmpeg filter where ffmpeg encodes
anyway (``pipelines.py``).

Motion detection's settings live here too (``motion_detection``, ``motion_sensitivity``,
``motion_min_duration_s``): every source has them, and they become no rpicam-vid option.

Pure: no I/O. The value checks here need no camera; ``controls.py`` checks against the camera.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pi_stream_agent.streams.model import SourceKind
from pi_stream_agent.streams.motion import (
    DEFAULT_MIN_DURATION_S,
    DEFAULT_SENSITIVITY,
    SENSITIVITY_MAX,
    SENSITIVITY_MIN,
)

SettingKind = Literal["select", "number", "switch", "button"]
ApplyMode = Literal["restart", "live"]

ALL_SOURCES: Final[tuple[SourceKind, ...]] = ("csi", "v4l2", "test")
CSI: Final[tuple[SourceKind, ...]] = ("csi",)


@dataclass(frozen=True)
class Choice:
    id: str
    name: str


@dataclass(frozen=True)
class SettingDef:
    """One picture setting."""

    id: str
    name: str
    kind: SettingKind
    sources: tuple[SourceKind, ...]
    control: str | None  # the libcamera control a CSI camera must list; None: every camera of the source
    rpicam_option: str | None  # the rpicam-vid option it becomes (without "--"); None: not an option
    options: tuple[Choice, ...] = ()
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: str | None = None
    enabled_by_default: bool = False
    icon: str | None = None
    apply: ApplyMode = "restart"  # CSI settings restart the pipeline (rpicam-vid reads them at start)
    # What the picture has while the setting is not set (rpicam-vid's own default_value in options.cpp), so a
    # client shows "0°" or "off" instead of "unknown"; None where it depends on the camera (autofocus mode).
    default: str | float | bool | None = None

    @property
    def option_ids(self) -> tuple[str, ...]:
        return tuple(choice.id for choice in self.options)

    def to_json(self) -> dict[str, Any]:
        """The vocabulary's form (docs/api.md, "Vocabulary", ``stream_settings``)."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "sources": list(self.sources),
            "control": self.control,
            "apply": self.apply,
            "enabled_by_default": self.enabled_by_default,
            "entity_category": "config",
            "unit": self.unit,
            "icon": self.icon,
        }
        if self.default is not None:
            data["default"] = self.default
        if self.kind == "select":
            data["options"] = [{"id": c.id, "name": c.name} for c in self.options]
        if self.kind == "number":
            data.update({"min": self.min, "max": self.max, "step": self.step})
        return data


def _choices(*pairs: tuple[str, str]) -> tuple[Choice, ...]:
    return tuple(Choice(id_, name) for id_, name in pairs)


# Every option name and value below is one rpicam-vid accepts (core/options.cpp Options::Options() and
# Options::Parse(), rpicam-apps @ 01fc37ec8b1fd713b79b72a6811058aadd9d2a80):
# Sound detection (streams/audio.py SoundDetector): the agent's own, no rpicam-vid option; every setting
# changes the detector live. Offered for streams with sound (controls.py).
SOUND_SETTINGS: Final[tuple[SettingDef, ...]] = (
    SettingDef(
        "sound_detection", "Sound detection", "switch", ALL_SOURCES, None, None,
        enabled_by_default=True, icon="mdi:ear-hearing", apply="live", default=False,
    ),
    SettingDef(
        "sound_threshold_dbfs", "Sound threshold", "number", ALL_SOURCES, None, None,
        min=-90.0, max=0.0, step=1.0, unit="dBFS", enabled_by_default=True, icon="mdi:volume-vibrate",
        apply="live", default=-30.0,
    ),
    SettingDef(
        "sound_min_duration_s", "Sound minimum duration", "number", ALL_SOURCES, None, None,
        min=0.0, max=30.0, step=0.5, unit="s", icon="mdi:timer-sand", apply="live", default=1.0,
    ),
)  # fmt: skip
SOUND_SETTING_IDS: Final = tuple(setting.id for setting in SOUND_SETTINGS)

SETTINGS: Final[tuple[SettingDef, ...]] = (
    *SOUND_SETTINGS,
    # ("rotation", value<int>, "Request an image rotation, 0 or 180"); 90/270 need a transpose, refused
    # there with "transforms requiring transpose not supported".
    SettingDef(
        "rotation", "Rotation", "select", ALL_SOURCES, None, "rotation",
        options=_choices(("0", "0°"), ("180", "180°")), enabled_by_default=True,
        icon="mdi:rotate-right", default="0",
    ),
    # ("hflip"/"vflip", value<bool>->implicit_value(true), "Request a horizontal/vertical flip transform")
    SettingDef(
        "hflip", "Flip horizontally", "switch", ALL_SOURCES, None, "hflip",
        enabled_by_default=True, icon="mdi:flip-horizontal", default=False,
    ),
    SettingDef(
        "vflip", "Flip vertically", "switch", ALL_SOURCES, None, "vflip",
        enabled_by_default=True, icon="mdi:flip-vertical", default=False,
    ),
    # ("autofocus-mode", string, "(manual, auto, continuous)"): afMode_table in Parse()
    SettingDef(
        "af_mode", "Autofocus mode", "select", CSI, "AfMode", "autofocus-mode",
        options=_choices(("manual", "Manual"), ("auto", "Auto"), ("continuous", "Continuous")),
        enabled_by_default=True, icon="mdi:image-filter-center-focus",
    ),
    # ("autofocus-range", string, "(normal, macro, full)")
    SettingDef(
        "af_range", "Autofocus range", "select", CSI, "AfRange", "autofocus-range",
        options=_choices(("normal", "Normal"), ("macro", "Macro"), ("full", "Full")),
        icon="mdi:image-filter-center-focus-weak",
    ),
    # ("autofocus-speed", string, "(normal, fast)")
    SettingDef(
        "af_speed", "Autofocus speed", "select", CSI, "AfSpeed", "autofocus-speed",
        options=_choices(("normal", "Normal"), ("fast", "Fast")), icon="mdi:speedometer",
    ),
    # ("lens-position", string, "a reciprocal distance (0 moves the lens to infinity)"): parsed as a float
    SettingDef(
        "lens_position", "Lens position", "number", CSI, "LensPosition", "lens-position",
        min=0.0, max=32.0, step=0.1, unit="dioptres", icon="mdi:camera-iris",
    ),
    # ("hdr", string, default "off", implicit "auto"): written --hdr=auto (sensor HDR on a Camera Module 3)
    SettingDef("hdr", "HDR", "switch", CSI, "HdrMode", "hdr", icon="mdi:hdr", default=False),
    # ("exposure", string, "(normal, sport)"): exposure_table also takes short, long, custom
    SettingDef(
        "exposure", "Exposure mode", "select", CSI, "AeExposureMode", "exposure",
        options=_choices(("normal", "Normal"), ("sport", "Sport"), ("long", "Long")),
        enabled_by_default=True, icon="mdi:camera-timer", default="normal",
    ),
    # ("shutter", string time, "If no units are provided default to us"): written as whole microseconds
    SettingDef(
        "shutter_us", "Shutter time", "number", CSI, "ExposureTime", "shutter",
        min=1, max=1_000_000, step=1, unit="µs", icon="mdi:timer-outline",
    ),
    # ("gain", value<float>, "Set a fixed gain value")
    SettingDef(
        "gain", "Analogue gain", "number", CSI, "AnalogueGain", "gain",
        min=1.0, max=16.0, step=0.1, icon="mdi:brightness-auto",
    ),
    # ("ev", value<float>, "Set the EV exposure compensation, where 0 = no change")
    SettingDef(
        "ev", "Exposure compensation", "number", CSI, "ExposureValue", "ev",
        min=-10.0, max=10.0, step=0.1, unit="EV", icon="mdi:plus-minus-variant", default=0.0,
    ),
    # ("metering", string, "(centre, spot, average, custom)")
    SettingDef(
        "metering", "Metering", "select", CSI, "AeMeteringMode", "metering",
        options=_choices(("centre", "Centre-weighted"), ("spot", "Spot"), ("average", "Average")),
        icon="mdi:camera-metering-center", default="centre",
    ),
    # ("awb", string, "(auto, incandescent, tungsten, fluorescent, indoor, daylight, cloudy, custom)")
    SettingDef(
        "awb", "White balance", "select", CSI, "AwbMode", "awb",
        options=_choices(
            ("auto", "Auto"), ("incandescent", "Incandescent"), ("tungsten", "Tungsten"),
            ("fluorescent", "Fluorescent"), ("indoor", "Indoor"), ("daylight", "Daylight"),
            ("cloudy", "Cloudy"),
        ),
        icon="mdi:white-balance-auto", default="auto",
    ),
    # ("awbgains", string "r,b"): both gains in one option, so both settings are needed together
    SettingDef(
        "awb_red_gain", "White balance red gain", "number", CSI, "ColourGains", "awbgains",
        min=0.0, max=32.0, step=0.01, icon="mdi:palette",
    ),
    SettingDef(
        "awb_blue_gain", "White balance blue gain", "number", CSI, "ColourGains", "awbgains",
        min=0.0, max=32.0, step=0.01, icon="mdi:palette",
    ),
    # ("brightness", value<float>, "in the range -1.0 to 1.0")
    SettingDef(
        "brightness", "Brightness", "number", CSI, "Brightness", "brightness",
        min=-1.0, max=1.0, step=0.05, enabled_by_default=True, icon="mdi:brightness-6", default=0.0,
    ),
    # ("contrast"/"saturation"/"sharpness", value<float>): Parse() clamps them to 0..15.99
    SettingDef(
        "contrast", "Contrast", "number", CSI, "Contrast", "contrast",
        min=0.0, max=15.99, step=0.05, icon="mdi:contrast-box", default=1.0,
    ),
    SettingDef(
        "saturation", "Saturation", "number", CSI, "Saturation", "saturation",
        min=0.0, max=15.99, step=0.05, icon="mdi:palette-outline", default=1.0,
    ),
    SettingDef(
        "sharpness", "Sharpness", "number", CSI, "Sharpness", "sharpness",
        min=0.0, max=15.99, step=0.05, icon="mdi:image-filter-vintage", default=1.0,
    ),
    # ("denoise", string, "auto, off, cdn_off, cdn_fast, cdn_hq"): configureDenoise's table
    SettingDef(
        "denoise", "Noise reduction", "select", CSI, "NoiseReductionMode", "denoise",
        options=_choices(
            ("auto", "Auto"), ("off", "Off"), ("cdn_off", "Minimal"), ("cdn_fast", "Fast"),
            ("cdn_hq", "High quality"),
        ),
        icon="mdi:blur", default="auto",
    ),
    # ("flicker-period", string time, "Set to 10000us to cancel 50Hz flicker. Set to 8333us … 60Hz")
    SettingDef(
        "flicker_period", "Mains flicker", "select", CSI, "AeFlickerPeriod", "flicker-period",
        options=_choices(("off", "Off"), ("50hz", "50 Hz"), ("60hz", "60 Hz")), icon="mdi:sine-wave",
    ),
    # ("tuning-file", string): a path; offered among the files present for the camera's sensor
    SettingDef("tuning_file", "Tuning file", "select", CSI, None, "tuning-file", icon="mdi:tune"),
    # ("roi", string "x,y,w,h" in 0..1, "Set region of interest (digital zoom)"): a centred crop of 1/zoom
    SettingDef(
        "zoom", "Digital zoom", "number", CSI, "ScalerCrop", "roi",
        min=1.0, max=8.0, step=0.1, unit="x", icon="mdi:magnify-plus-outline",
    ),
    # No option: rpicam-vid takes no trigger while it runs; see POST /streams/{id}/autofocus (manager).
    SettingDef(
        "autofocus", "Autofocus", "button", CSI, "AfMode", None,
        enabled_by_default=True, icon="mdi:focus-auto",
    ),
    # Motion detection (streams/motion.py): the agent's own, no rpicam-vid option. Turning it on or off
    # adds or removes the publisher's small analysis output (a restart); the others change the detector
    # live. The region is config/API only (``motion_region``, streams/schema.py), not an entity.
    SettingDef(
        "motion_detection", "Motion detection", "switch", ALL_SOURCES, None, None,
        enabled_by_default=True, icon="mdi:motion-sensor", default=False,
    ),
    SettingDef(
        "motion_sensitivity", "Motion sensitivity", "number", ALL_SOURCES, None, None,
        min=SENSITIVITY_MIN, max=SENSITIVITY_MAX, step=1, enabled_by_default=True, icon="mdi:tune-vertical",
        apply="live", default=float(DEFAULT_SENSITIVITY),
    ),
    SettingDef(
        "motion_min_duration_s", "Motion minimum duration", "number", ALL_SOURCES, None, None,
        min=0.0, max=10.0, step=0.1, unit="s", icon="mdi:timer-sand", apply="live",
        default=DEFAULT_MIN_DURATION_S,
    ),
)  # fmt: skip
MOTION_SETTING_IDS: Final = ("motion_detection", "motion_sensitivity", "motion_min_duration_s")

SETTINGS_BY_ID: Final[dict[str, SettingDef]] = {setting.id: setting for setting in SETTINGS}
ORIENTATION_IDS: Final = ("rotation", "hflip", "vflip")
FLICKER_PERIOD_US: Final = {"50hz": 10000, "60hz": 8333}  # the values core/options.cpp's help names
AWB_GAIN_IDS: Final = ("awb_red_gain", "awb_blue_gain")
# The camera tuning files (libcamera IPA data) on Raspberry Pi OS, by ISP: VC4 (Pi 0-4), PiSP (Pi 5).
TUNING_DIRS: Final = {"vc4": "/usr/share/libcamera/ipa/rpi/vc4", "pisp": "/usr/share/libcamera/ipa/rpi/pisp"}


def stored_settings() -> tuple[SettingDef, ...]:
    """The settings a stream's ``settings:`` can hold (buttons are actions, not values)."""
    return tuple(setting for setting in SETTINGS if setting.kind != "button")


def vocabulary_json() -> list[dict[str, Any]]:
    return [setting.to_json() for setting in SETTINGS]


def _number_text(value: float) -> str:
    return f"{value:g}"


def check_value(setting: SettingDef, value: Any) -> tuple[Any, str | None]:
    """A value for ``setting`` as the config file or API gives it → (the value as stored, None), or
    (None, what is wrong: a predicate that reads after the setting's name). Ranges here are the
    vocabulary's; the camera's narrower ones are checked in ``controls.py``. Select values are strings
    (``180`` is read as ``"180"``)."""
    if setting.kind == "switch":
        if not isinstance(value, bool):
            return None, "must be true or false"
        return value, None
    if setting.kind == "select":
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if setting.id == "tuning_file":
            # One of the files present for the camera (checked against the camera); a plain file name.
            if not isinstance(text, str) or not text or "/" in text or text.startswith("."):
                return None, "must be the name of a tuning file, such as imx708_noir"
            return text, None
        if not isinstance(text, str) or text not in setting.option_ids:
            return None, f"must be one of {', '.join(setting.option_ids)}"
        return text, None
    if setting.kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None, "must be a number"
        assert setting.min is not None and setting.max is not None
        if not setting.min <= value <= setting.max:
            return None, f"must be between {_number_text(setting.min)} and {_number_text(setting.max)}"
        number = int(value) if setting.step is not None and float(setting.step).is_integer() else float(value)
        if isinstance(number, int) and value != number:
            return None, "must be a whole number"
        return number, None
    return None, "is an action, not a value to store"


def settings_problems(settings: Mapping[str, Any], source: SourceKind) -> list[tuple[str, str]]:
    """(setting id, predicate) for what a ``settings:`` mapping says that cannot work on any camera."""
    found: list[tuple[str, str]] = []
    for key, value in settings.items():
        setting = SETTINGS_BY_ID.get(key)
        if setting is None or setting.kind == "button":
            known = ", ".join(s.id for s in stored_settings())
            found.append((key, f"is not a picture setting; the settings are {known}"))
            continue
        if source not in setting.sources:
            found.append((key, "applies to cameras on the ribbon connector (CSI) only"))
            continue
        _, problem = check_value(setting, value)
        if problem:
            found.append((key, problem))
    gains = [key for key in AWB_GAIN_IDS if key in settings]
    if len(gains) == 1:
        other = AWB_GAIN_IDS[1 - AWB_GAIN_IDS.index(gains[0])]
        found.append((gains[0], f"needs {SETTINGS_BY_ID[other].name.lower()} too (rpicam-vid takes both)"))
    return found


def normalized(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Checked values in their stored form (select values as strings), in the vocabulary's order."""
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.id in settings:
            value, problem = check_value(setting, settings[setting.id])
            out[setting.id] = settings[setting.id] if problem else value
    # Unknown keys stay, for own_problems to name them.
    out.update({key: value for key, value in settings.items() if key not in out})
    return out


def effective_orientation(settings: Mapping[str, Any]) -> tuple[bool, bool]:
    """(horizontal flip, vertical flip) of the whole transform: a 180° rotation is both flips."""
    turned = str(settings.get("rotation", "0")) == "180"
    return bool(settings.get("hflip", False)) != turned, bool(settings.get("vflip", False)) != turned
