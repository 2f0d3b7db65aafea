"""The stream fields: the vocabulary and limits a stream is written in, with human names, and the check of
each single value (YAML or JSON → a checked Python value, or ``vol.Invalid`` saying what is wrong and what
to write instead).

This module is the one owner of every word and number a stream configuration can hold: the limits, the
stream id and RTSP path patterns, source types, test patterns, input formats, encoders and the human name
of each field. The schema (``schema.py``), the checks against the Pi (``fit.py``) and the vocabulary the API
publishes (``api/vocabulary.py``, ``GET /api/v1/vocabulary``) all read them from here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

import voluptuous as vol

from pi_stream_agent.streams.model import EncoderChoice, SourceKind

# ------------------------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True)
class Word:
    """One word of the vocabulary: what the config file says (``id``) and what a person reads (``name``)."""

    id: str
    name: str


@dataclass(frozen=True)
class InputFormat(Word):
    """A capture format a card can be asked for: ffmpeg's ``-input_format`` name, the V4L2 fourccs a card
    lists for it (``v4l2-ctl --list-formats-ext``), and whether it is compressed (can be passed through)."""

    fourccs: tuple[str, ...] = ()
    compressed: bool = False


MIN_SIZE = 32  # bcm2835-codec's MIN_W/MIN_H; nothing smaller is worth streaming
MAX_SIZE = 4096
SIZE_STEP = 2  # H.264 and the cameras' YUV 4:2:0 output work in 2x2 blocks
MIN_FPS = 1.0
MAX_FPS = 120.0
MIN_BITRATE = 50_000
MAX_BITRATE = 50_000_000  # H.264 level 4.2 (high profile), the most the Pi's encoder is asked to do
MIN_KEYFRAME_INTERVAL_S = 0.2
MAX_KEYFRAME_INTERVAL_S = 10.0
MAX_NAME_LENGTH = 64
MAX_RTSP_PATH_LENGTH = 64
# bcm2835-codec (raspberrypi/linux drivers/staging/vc04_services/bcm2835-codec): MAX_W_CODEC/MAX_H_CODEC.
HARDWARE_ENCODER_MAX = 1920
# Frame rates a device lists (29.97, 120.05) are met by a request within 1 %: the camera/card then delivers
# its own rate, which is what the person meant.
FPS_TOLERANCE = 1.01

MAX_STREAM_ID_LENGTH = 32
STREAM_ID_PATTERN = f"[a-z0-9][a-z0-9_-]{{0,{MAX_STREAM_ID_LENGTH - 1}}}"
# URL path segments of unreserved characters (RFC 3986) separated by /; "." and ".." are refused apart.
RTSP_PATH_PATTERN = "[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*"

STREAM_KEYS = (
    "id",
    "name",
    "source",
    "width",
    "height",
    "fps",
    "bitrate",
    "keyframe_interval_s",
    "encoder",
    "rtsp_path",
    "enabled",
    "substream",
    "settings",
    "v4l2_controls",
    "audio",
    "motion_region",
)
SUBSTREAM_KEYS = ("width", "height", "fps", "bitrate", "rtsp_path", "audio")
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "csi": ("type", "camera"),
    "v4l2": ("type", "device", "input_format"),
    "test": ("type", "pattern"),
}
SOURCE_TYPE_NAMES: dict[SourceKind, str] = {
    "csi": "Camera module (ribbon cable)",
    "v4l2": "USB camera or capture card",
    "test": "Test pattern",
}
ENCODER_NAMES: dict[EncoderChoice, str] = {
    "auto": "Automatic (hardware H.264 where the Pi has it)",
    "hardware": "Hardware H.264 (Pi Zero to Pi 4)",
    "software": "Software H.264 (libx264, costs CPU)",
    "copy": "Pass the card's own stream through",
}
ENCODERS: tuple[EncoderChoice, ...] = tuple(ENCODER_NAMES)

# MJPEG cards list MJPG (or JPEG on a few); ffmpeg maps both to mjpeg.
INPUT_FORMATS: tuple[InputFormat, ...] = (
    InputFormat("mjpeg", "Motion-JPEG", ("MJPG", "JPEG"), compressed=True),
    InputFormat("h264", "H.264", ("H264",), compressed=True),
    InputFormat("yuyv422", "YUYV 4:2:2 (raw)", ("YUYV",)),
    InputFormat("uyvy422", "UYVY 4:2:2 (raw)", ("UYVY",)),
    InputFormat("nv12", "NV12 4:2:0 (raw)", ("NV12",)),
    InputFormat("yuv420p", "YUV 4:2:0 planar (raw)", ("YU12",)),
    InputFormat("rgb24", "RGB (raw)", ("RGB3",)),
    InputFormat("bgr24", "BGR (raw)", ("BGR3",)),
)
INPUT_FORMAT_FOURCCS: dict[str, tuple[str, ...]] = {fmt.id: fmt.fourccs for fmt in INPUT_FORMATS}
COMPRESSED_INPUT_FORMATS = frozenset(fmt.id for fmt in INPUT_FORMATS if fmt.compressed)
FOURCC_TO_INPUT = {fourcc: fmt.id for fmt in INPUT_FORMATS for fourcc in fmt.fourccs}

# ffmpeg 5.1 lavfi video sources that need no input (Debian 12 and Raspberry Pi OS Bookworm ship 5.1), and
# one scene made of them (PASSERBY, built in pipelines.pattern_graph). The first is the default of a test
# source. The one list: the publisher's command builder and the vocabulary read it from here.
PASSERBY = "passerby"
TEST_PATTERNS: tuple[Word, ...] = (
    Word("testsrc2", "Test card with a moving counter"),
    Word("testsrc", "Classic test card with a counter"),
    Word("smptebars", "SMPTE colour bars"),
    Word("smptehdbars", "SMPTE HD colour bars"),
    Word("pal75bars", "PAL 75% colour bars"),
    Word("pal100bars", "PAL 100% colour bars"),
    Word("rgbtestsrc", "RGB stripes"),
    Word("yuvtestsrc", "YUV stripes"),
    Word("mandelbrot", "Mandelbrot zoom"),
    Word("life", "Game of Life"),
    Word(PASSERBY, "Colour bars with a passer-by every 30 s (a motion test)"),
)
TEST_PATTERN_IDS: tuple[str, ...] = tuple(pattern.id for pattern in TEST_PATTERNS)
DEFAULT_TEST_PATTERN = TEST_PATTERN_IDS[0]

# The human name of each field, by its dotted key path: the label a form shows and a problem's ``label``.
FIELD_LABELS: dict[str, str] = {
    "id": "Stream id",
    "name": "Name",
    "source": "Source",
    "source.type": "Source type",
    "source.camera": "Camera",
    "source.device": "Capture device",
    "source.input_format": "Input format",
    "source.pattern": "Test pattern",
    "width": "Width",
    "height": "Height",
    "width/height": "Size",
    "fps": "Frame rate",
    "bitrate": "Bitrate",
    "keyframe_interval_s": "Keyframe interval",
    "encoder": "Encoder",
    "rtsp_path": "RTSP path",
    "enabled": "Enabled",
    "substream": "Substream",
    "substream.width": "Substream width",
    "substream.height": "Substream height",
    "substream.fps": "Substream frame rate",
    "substream.bitrate": "Substream bitrate",
    "substream.rtsp_path": "Substream RTSP path",
    "settings": "Picture settings",
    "v4l2_controls": "Camera controls",
    "substream.audio": "Substream sound",
    "audio": "Sound",
    "audio.device": "Sound device",
    "audio.codec": "Sound codec",
    "audio.bitrate": "Sound bitrate",
    "audio.channels": "Sound channels",
    "audio.sample_rate": "Sound sample rate",
    "motion_region": "Motion region",
}

_ID = re.compile(STREAM_ID_PATTERN)
_RTSP_PATH = re.compile(RTSP_PATH_PATTERN)
# udev's by-id names keep 0-9 A-Z a-z # + - . : = @ _ (util_replace_chars); device ids from GET /devices are
# made of the same characters.
_DEVICE_ID = re.compile(r"[0-9A-Za-z#+\-.:=@_]+")


def is_stream_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


# ----------------------------------------------------------------------------------------- field validators
# Our own validators rather than voluptuous' built-in types: their messages ("expected int", "not a valid
# value") differ between voluptuous versions and say neither what was found nor what to write instead.


def _not_number(value: Any) -> bool:
    # bool is an int in Python: `width: yes` must not quietly become 1 pixel.
    return isinstance(value, bool) or not isinstance(value, int | float)


def check_dimension(name: str) -> Callable[[Any], int]:
    example = 1280 if name == "width" else 720

    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"expected a whole number of pixels (e.g. {example}), got {value!r}")
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise vol.Invalid(f"must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {value}")
        if value % 2:
            # H.264 and the cameras' YUV 4:2:0 output work in 2x2 blocks.
            nearest = value - 1 if value - 1 >= MIN_SIZE else value + 1
            raise vol.Invalid(f"must be an even number of pixels (4:2:0 video), got {value}; use {nearest}")
        return value

    return validate


def check_fps(value: Any) -> float:
    if _not_number(value):
        raise vol.Invalid(f"expected a number of frames per second (e.g. 30), got {value!r}")
    # `not MIN_FPS <= value` also rejects NaN (YAML `.nan`), which compares false with everything.
    if not MIN_FPS <= value <= MAX_FPS:
        raise vol.Invalid(f"must be between {MIN_FPS:g} and {MAX_FPS:g} frames per second, got {value:g}")
    return float(value)


def format_bitrate(bits: int) -> str:
    """2000000 → ``2M``, 800000 → ``800k``, 1500000 → ``1500k``, 123 → ``123``."""
    if bits % 1_000_000 == 0:
        return f"{bits // 1_000_000}M"
    if bits % 1000 == 0:
        return f"{bits // 1000}k"
    return str(bits)


_BITRATE_UNITS = ("bits/s", "bit/s", "bps", "b/s", "bit", "b")


def parse_bitrate(value: Any) -> int:
    """Bit/s from ``2000000``, ``"2M"``, ``"2.5M"``, ``"800k"``, ``"800 kbit/s"``, ``"2Mbps"`` (k = 1000, M =
    1000000, as bitrates are counted). Raises ``vol.Invalid`` for anything else or out of range."""
    hint = 'give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"'
    if isinstance(value, bool):
        raise vol.Invalid(f"expected a bitrate ({hint}), got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        for unit in _BITRATE_UNITS:
            if text.endswith(unit):
                text = text[: -len(unit)]
                break
        multiplier = 1
        if text[-1:] == "k":
            multiplier, text = 1000, text[:-1]
        elif text[-1:] == "m":
            multiplier, text = 1_000_000, text[:-1]
        # float() would also take "1_000", "inf", "0x10" and other scripts' digits ("٢M"; str.isdigit()
        # says yes to them too): only plain ASCII decimals are bitrates.
        if not text or not all(ch in "0123456789." for ch in text) or text.count(".") > 1 or text == ".":
            raise vol.Invalid(f"expected a bitrate ({hint}), got {value!r}")
        number = float(text) * multiplier
    else:
        raise vol.Invalid(f"expected a bitrate ({hint}), got {value!r}")
    if not math.isfinite(number) or not MIN_BITRATE <= number <= MAX_BITRATE:
        shown = value if isinstance(value, str) else f"{number:g}"
        raise vol.Invalid(
            f"must be between {format_bitrate(MIN_BITRATE)} and {format_bitrate(MAX_BITRATE)} bit/s, "
            f"got {shown}"
        )
    return round(number)


def check_keyframe_interval(value: Any) -> float:
    if _not_number(value):
        raise vol.Invalid(f"expected a number of seconds (e.g. 1), got {value!r}")
    if not MIN_KEYFRAME_INTERVAL_S <= value <= MAX_KEYFRAME_INTERVAL_S:
        raise vol.Invalid(
            f"must be between {MIN_KEYFRAME_INTERVAL_S:g} and {MAX_KEYFRAME_INTERVAL_S:g} seconds, "
            f"got {value:g}"
        )
    return float(value)


def check_stream_id(value: Any) -> str:
    if not is_stream_id(value):
        raise vol.Invalid(
            f"must be 1 to {MAX_STREAM_ID_LENGTH} characters of lowercase letters, digits, _ and -, starting "
            f"with a letter or digit (e.g. garage or cam-1), got {value!r}"
        )
    return value


def check_name(value: Any) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_NAME_LENGTH
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    ):
        raise vol.Invalid(
            f"expected a name of 1 to {MAX_NAME_LENGTH} printable characters (or leave it out), got {value!r}"
        )
    return value


def rtsp_path_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable RTSP path (``garage``, ``cams/garage``), or None."""
    if not isinstance(value, str) or not value or len(value) > MAX_RTSP_PATH_LENGTH:
        return (
            f"expected a path of 1 to {MAX_RTSP_PATH_LENGTH} characters (e.g. garage or cams/garage), "
            f"got {value!r}"
        )
    if _RTSP_PATH.fullmatch(value) is None or any(part in (".", "..") for part in value.split("/")):
        return (
            "must be URL path segments of letters, digits, . _ ~ and - separated by / (no leading or "
            f"trailing /, no spaces), got {value!r}"
        )
    return None


def check_rtsp_path(value: Any) -> str | None:
    if value is None:
        return None
    problem = rtsp_path_problem(value)
    if problem:
        raise vol.Invalid(problem)
    return str(value)


def check_encoder(value: Any) -> EncoderChoice:
    for choice in ENCODERS:
        if value == choice:
            return choice
    raise vol.Invalid(
        "expected auto (hardware H.264 where the Pi has it), hardware, software (libx264) or copy (pass a "
        f"capture card's MJPEG/H.264 through), got {value!r}"
    )


def check_camera(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 15:
        return value
    if isinstance(value, str) and value.startswith("/") and not any(ch.isspace() for ch in value):
        return value
    raise vol.Invalid(
        "expected a camera index (0, 1 … as rpicam-hello --list-cameras numbers them) or a libcamera id "
        f"path such as /base/soc/i2c0mux/i2c@1/imx708@1a, got {value!r}"
    )


def check_device(value: Any) -> str:
    if isinstance(value, str):
        if value.startswith("/dev/") and len(value) > 5 and not any(ch.isspace() for ch in value):
            if ".." not in value.split("/"):
                return value
        elif _DEVICE_ID.fullmatch(value):
            return value
    raise vol.Invalid(
        "expected a device path (/dev/v4l/by-id/…, which survives reboots, or /dev/videoN) or a device id "
        f"from GET /api/v1/devices, got {value!r}"
    )


def check_input_format(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in INPUT_FORMAT_FOURCCS:
            return text.lower()
        if text.upper() in FOURCC_TO_INPUT:  # a fourcc as v4l2-ctl prints it: MJPG, YUYV
            return FOURCC_TO_INPUT[text.upper()]
    raise vol.Invalid(
        f"expected one of {', '.join(INPUT_FORMAT_FOURCCS)} (ffmpeg's names; or leave it out), got {value!r}"
    )


def check_test_pattern(value: Any) -> str:
    if value in TEST_PATTERN_IDS:
        return str(value)
    raise vol.Invalid(f"expected one of {', '.join(TEST_PATTERN_IDS)}, got {value!r}")
