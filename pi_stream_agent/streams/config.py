"""Stream configuration: the schema (YAML/JSON → :class:`~.model.StreamConfig`), the ``rtsp:`` settings, and
the checks against what this Pi has (devices, modes, encoder).

One stream, as YAML (in the agent's config file under ``streams:``, or in ``<state_dir>/streams.yaml``)::

    - id: garage                   # required: 1-32 of a-z 0-9 _ -, starting with a letter or digit
      name: Garage                 # optional: shown in Home Assistant (the id when missing)
      source:                      # required, one of:
        type: csi                  #   a camera on the ribbon connector (rpicam-vid)
        camera: 0                  #     its index in `rpicam-hello --list-cameras`, or its id path
      # source: {type: v4l2, device: /dev/v4l/by-id/usb-534d_USB_Video-video-index0, input_format: mjpeg}
      #                            #   a USB capture card/webcam (ffmpeg): device = stable path, device id
      #                            #   from GET /api/v1/devices, or /dev/videoN; input_format mjpeg|h264|…
      # source: {type: test, pattern: smptebars}
      #                            #   an ffmpeg test pattern: checks the RTSP path without a camera; allowed
      #                            #   everywhere, not only in simulation mode
      width: 1280                  # required: even, 32-4096 pixels
      height: 720                  # required: even, 32-4096 pixels
      fps: 30                      # required: 1-120
      bitrate: 2M                  # required: bit/s as a number (2000000) or with k/M (800k, 2.5M)
      keyframe_interval_s: 1       # 0.2-10 s, default 1 (a new viewer waits up to this long for a picture)
      encoder: auto                # auto | hardware | software | copy (copy: a card's MJPEG/H.264 as is)
      rtsp_path: garage            # default: the id; URL path segments of A-Z a-z 0-9 . _ ~ -
      enabled: true                # default true
      substream:                   # optional: a smaller copy at its own path
        width: 640                 #   required, smaller than the main width
        height: 360                #   required, smaller than the main height
        fps: 15                    #   required, at most the main fps
        bitrate: 500k              #   required
        rtsp_path: garage_sub      #   default <id>_sub

Every problem is reported as a :class:`Problem` whose text names the stream (by id, or by list index when
the id itself is bad), the field path, what is wrong and what to do::

    streams[1] (id "garage"): substream.width: must be smaller than the main width (1280), got 1280

Problems come in two layers:

* :func:`parse_stream` / :func:`parse_streams` — the schema and what a stream or the list says about itself
  (substream smaller than the main stream, ``copy`` only from a card's compressed format, unique ids and
  RTSP paths, one stream per source). Raise :class:`StreamConfigError` listing every problem.
* :func:`validate_streams` — against this Pi: the devices document (``GET /api/v1/devices``) and the board
  (``hardware_h264_encoder``, ``soc``). Returns errors *and* warnings; a card that is merely unplugged is a
  warning (the stream waits for it), never an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import voluptuous as vol

from pi_stream_agent.streams.model import (
    EncoderChoice,
    RtspSettings,
    SourceConfig,
    StreamConfig,
    SubstreamConfig,
)

Severity = Literal["error", "warning"]

# ---------------------------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong (``error``: the configuration is refused) or worth knowing (``warning``).

    ``where`` names the stream (``streams[1] (id "garage")``) or the section (``rtsp``); ``field`` is the
    dotted key path inside it (``substream.width``; empty for the whole stream)."""

    where: str
    field: str
    message: str
    severity: Severity = "error"
    stream_id: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.field}: {self.message}" if self.field else f"{self.where}: {self.message}"
        )

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


class StreamConfigError(Exception):
    """The stream configuration cannot be used. ``str()`` lists every error, one per line, for a person;
    ``problems`` holds them (errors only); ``warnings`` what was found besides."""

    def __init__(
        self,
        problems: Sequence[Problem],
        heading: str = "invalid stream configuration",
        warnings: Sequence[Problem] = (),
    ) -> None:
        self.problems = [problem for problem in problems if problem.is_error]
        self.warnings = [problem for problem in (*problems, *warnings) if not problem.is_error]
        self.heading = heading
        super().__init__(heading + ":\n  " + "\n  ".join(str(problem) for problem in self.problems))


def raise_for_errors(
    problems: Sequence[Problem], heading: str = "invalid stream configuration"
) -> list[Problem]:
    """Raise :class:`StreamConfigError` when any problem is an error; otherwise return the warnings."""
    if any(problem.is_error for problem in problems):
        raise StreamConfigError(problems, heading)
    return list(problems)


_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def stream_label(index: int | None, stream_id: Any) -> str:
    """``streams[1] (id "garage")``; ``streams[1]`` when the id is missing or bad; ``stream "garage"`` for a
    stream outside a list (a single API request)."""
    good_id = isinstance(stream_id, str) and _ID.fullmatch(stream_id) is not None
    if index is None:
        return f'stream "{stream_id}"' if good_id else "stream"
    return f'streams[{index}] (id "{stream_id}")' if good_id else f"streams[{index}]"


def _problem(
    index: int | None, stream_id: str | None, field: str, message: str, severity: Severity = "error"
) -> Problem:
    return Problem(stream_label(index, stream_id), field, message, severity, stream_id, index)


# ----------------------------------------------------------------------------------------- field validators
# Our own validators rather than voluptuous' built-in types: their messages ("expected int", "not a valid
# value") differ between voluptuous versions and say neither what was found nor what to write instead.

MIN_SIZE = 32  # bcm2835-codec's MIN_W/MIN_H; nothing smaller is worth streaming
MAX_SIZE = 4096
MAX_FPS = 120.0
MIN_BITRATE = 50_000
MAX_BITRATE = 50_000_000  # H.264 level 4.2 (high profile), the most the Pi's encoder is asked to do
# bcm2835-codec (raspberrypi/linux drivers/staging/vc04_services/bcm2835-codec): MAX_W_CODEC/MAX_H_CODEC.
HARDWARE_ENCODER_MAX = 1920
# Frame rates a device lists (29.97, 120.05) are met by a request within 1 %: the camera/card then delivers
# its own rate, which is what the person meant.
FPS_TOLERANCE = 1.01

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
)
SUBSTREAM_KEYS = ("width", "height", "fps", "bitrate", "rtsp_path")
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "csi": ("type", "camera"),
    "v4l2": ("type", "device", "input_format"),
    "test": ("type", "pattern"),
}
ENCODERS: tuple[EncoderChoice, ...] = ("auto", "hardware", "software", "copy")

# ffmpeg's -input_format names for v4l2 → the V4L2 fourccs a card lists (v4l2-ctl --list-formats-ext).
# MJPEG cards list MJPG (or JPEG on a few); ffmpeg maps both to mjpeg.
INPUT_FORMATS: dict[str, tuple[str, ...]] = {
    "mjpeg": ("MJPG", "JPEG"),
    "h264": ("H264",),
    "yuyv422": ("YUYV",),
    "uyvy422": ("UYVY",),
    "nv12": ("NV12",),
    "yuv420p": ("YU12",),
    "rgb24": ("RGB3",),
    "bgr24": ("BGR3",),
}
COMPRESSED_INPUT_FORMATS = frozenset({"mjpeg", "h264"})
_FOURCC_TO_INPUT = {fourcc: name for name, fourccs in INPUT_FORMATS.items() for fourcc in fourccs}
# ffmpeg 5.1 lavfi video sources that need no input (Debian 12 and Raspberry Pi OS Bookworm ship 5.1).
TEST_PATTERNS = (
    "testsrc2",
    "testsrc",
    "smptebars",
    "smptehdbars",
    "pal75bars",
    "pal100bars",
    "rgbtestsrc",
    "yuvtestsrc",
    "mandelbrot",
    "life",
)
DEFAULT_TEST_PATTERN = TEST_PATTERNS[0]
_RTSP_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
# udev's by-id names keep 0-9 A-Z a-z # + - . : = @ _ (util_replace_chars); device ids from GET /devices are
# made of the same characters.
_DEVICE_ID = re.compile(r"[0-9A-Za-z#+\-.:=@_]+")


def _not_number(value: Any) -> bool:
    # bool is an int in Python: `width: yes` must not quietly become 1 pixel.
    return isinstance(value, bool) or not isinstance(value, int | float)


def _dimension(name: str) -> Callable[[Any], int]:
    example = 1280 if name == "width" else 720

    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"expected a whole number of pixels (e.g. {name}: {example}), got {value!r}")
        if not MIN_SIZE <= value <= MAX_SIZE:
            raise vol.Invalid(f"must be between {MIN_SIZE} and {MAX_SIZE} pixels, got {value}")
        if value % 2:
            # H.264 and the cameras' YUV 4:2:0 output work in 2x2 blocks.
            nearest = value - 1 if value - 1 >= MIN_SIZE else value + 1
            raise vol.Invalid(f"must be an even number of pixels (4:2:0 video), got {value}; use {nearest}")
        return value

    return validate


def _fps(value: Any) -> float:
    if _not_number(value):
        raise vol.Invalid(f"expected a number of frames per second (e.g. fps: 30), got {value!r}")
    # `not 1 <= value` also rejects NaN (YAML `.nan`), which compares false with everything.
    if not 1 <= value <= MAX_FPS:
        raise vol.Invalid(f"must be between 1 and {MAX_FPS:g} frames per second, got {value:g}")
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
        # float() would also take "1_000", "inf" and "0x10": only plain decimals are bitrates.
        if (
            not text
            or not all(ch.isdigit() or ch == "." for ch in text)
            or text.count(".") > 1
            or text == "."
        ):
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


def _keyframe_interval(value: Any) -> float:
    if _not_number(value):
        raise vol.Invalid(f"expected a number of seconds (e.g. keyframe_interval_s: 1), got {value!r}")
    if not 0.2 <= value <= 10:
        raise vol.Invalid(f"must be between 0.2 and 10 seconds, got {value:g}")
    return float(value)


def _stream_id(value: Any) -> str:
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise vol.Invalid(
            "must be 1 to 32 characters of lowercase letters, digits, _ and -, starting with a letter or "
            "digit "
            f"(e.g. garage or cam-1), got {value!r}"
        )
    return value


def _name(value: Any) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > 64
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    ):
        raise vol.Invalid(f"expected a name of 1 to 64 printable characters (or leave it out), got {value!r}")
    return value


def rtsp_path_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable RTSP path (``garage``, ``cams/garage``), or None."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return f"expected a path of 1 to 64 characters (e.g. garage or cams/garage), got {value!r}"
    segments = value.split("/")
    if any(_RTSP_SEGMENT.fullmatch(segment) is None or segment in (".", "..") for segment in segments):
        return (
            "must be URL path segments of letters, digits, . _ ~ and - separated by / (no leading or "
            f"trailing /, no spaces), got {value!r}"
        )
    return None


def _rtsp_path(value: Any) -> str | None:
    if value is None:
        return None
    problem = rtsp_path_problem(value)
    if problem:
        raise vol.Invalid(problem)
    return str(value)


def _encoder(value: Any) -> EncoderChoice:
    for choice in ENCODERS:
        if value == choice:
            return choice
    raise vol.Invalid(
        "expected auto (hardware H.264 where the Pi has it), hardware, software (libx264) or copy (pass a "
        f"capture card's MJPEG/H.264 through), got {value!r}"
    )


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"expected true or false, got {value!r}")
    return value


def _camera(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 15:
        return value
    if isinstance(value, str) and value.startswith("/") and not any(ch.isspace() for ch in value):
        return value
    raise vol.Invalid(
        "expected a camera index (0, 1 … as `rpicam-hello --list-cameras` numbers them) or a libcamera id "
        f"path such as /base/soc/i2c0mux/i2c@1/imx708@1a, got {value!r}"
    )


def _device(value: Any) -> str:
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


def _input_format(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in INPUT_FORMATS:
            return text.lower()
        if text.upper() in _FOURCC_TO_INPUT:  # a fourcc as v4l2-ctl prints it: MJPG, YUYV
            return _FOURCC_TO_INPUT[text.upper()]
    raise vol.Invalid(
        f"expected one of {', '.join(INPUT_FORMATS)} (ffmpeg's names; or leave it out), got {value!r}"
    )


def _pattern(value: Any) -> str:
    if value in TEST_PATTERNS:
        return str(value)
    raise vol.Invalid(f"expected one of {', '.join(TEST_PATTERNS)}, got {value!r}")


def _unknown_key_message(keys: Sequence[str], what: str) -> str:
    return f"unknown key for {what} (check the spelling; it takes {', '.join(keys)})"


def _rewrite_unknown_keys(exc: vol.MultipleInvalid, keys: Sequence[str], what: str) -> vol.MultipleInvalid:
    """voluptuous says "extra keys not allowed"; say which keys are allowed instead."""
    errors: list[vol.Invalid] = []
    for error in exc.errors:
        if error.error_message == "extra keys not allowed" and len(error.path) == 1:
            errors.append(vol.Invalid(_unknown_key_message(keys, what), path=list(error.path)))
        else:
            errors.append(error)
    return vol.MultipleInvalid(errors)


_SOURCE_SCHEMAS: dict[str, vol.Schema] = {
    "csi": vol.Schema({vol.Required("type"): str, vol.Optional("camera", default=0): _camera}),
    "v4l2": vol.Schema(
        {
            vol.Required("type"): str,
            vol.Required(
                "device",
                msg="required: the card's stable path (stable_path in GET /api/v1/devices, e.g. "
                "/dev/v4l/by-id/usb-…-video-index0) or its device id",
            ): _device,
            vol.Optional("input_format", default=None): _input_format,
        }
    ),
    "test": vol.Schema(
        {vol.Required("type"): str, vol.Optional("pattern", default=DEFAULT_TEST_PATTERN): _pattern}
    ),
}
_SOURCE_TYPES_HINT = (
    "csi (a camera on the ribbon connector), v4l2 (a USB capture card or webcam) or test (a generated test "
    "pattern)"
)


def _source(value: Any) -> SourceConfig:
    if not isinstance(value, dict):
        raise vol.Invalid(
            "expected a mapping such as {type: csi, camera: 0} or {type: v4l2, device: /dev/v4l/by-id/…}, "
            f"got {value!r}"
        )
    if "type" not in value:
        raise vol.Invalid(f"required: {_SOURCE_TYPES_HINT}", path=["type"])
    kind = value["type"]
    if not isinstance(kind, str) or kind not in _SOURCE_SCHEMAS:
        raise vol.Invalid(f"expected {_SOURCE_TYPES_HINT}, got {kind!r}", path=["type"])
    try:
        checked = _SOURCE_SCHEMAS[kind](value)
    except vol.MultipleInvalid as exc:
        raise _rewrite_unknown_keys(exc, SOURCE_KEYS[kind], f"a {kind} source") from None
    if kind == "csi":
        return SourceConfig(kind="csi", camera=checked["camera"])
    if kind == "v4l2":
        return SourceConfig(kind="v4l2", device=checked["device"], input_format=checked["input_format"])
    return SourceConfig(kind="test", pattern=checked["pattern"])


_SUBSTREAM_SCHEMA = vol.Schema(
    {
        vol.Required("width", msg="required: the substream's width in pixels (e.g. width: 640)"): _dimension(
            "width"
        ),
        vol.Required(
            "height", msg="required: the substream's height in pixels (e.g. height: 360)"
        ): _dimension("height"),
        vol.Required("fps", msg="required: the substream's frame rate (e.g. fps: 15)"): _fps,
        vol.Required(
            "bitrate", msg='required: the substream\'s bitrate (e.g. bitrate: "500k")'
        ): parse_bitrate,
        vol.Optional("rtsp_path", default=None): _rtsp_path,
    }
)


def _substream(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise vol.Invalid(
            f"expected a mapping such as {{width: 640, height: 360, fps: 15, bitrate: 500k}}, got {value!r}"
        )
    try:
        checked: dict[str, Any] = _SUBSTREAM_SCHEMA(value)
    except vol.MultipleInvalid as exc:
        raise _rewrite_unknown_keys(exc, SUBSTREAM_KEYS, "a substream") from None
    return checked


STREAM_SCHEMA = vol.Schema(
    {
        vol.Required(
            "id", msg="required: an id of lowercase letters, digits, _ and - (e.g. id: garage)"
        ): _stream_id,
        vol.Optional("name", default=None): _name,
        vol.Required(
            "source", msg=f"required: type {_SOURCE_TYPES_HINT}, e.g. {{type: csi, camera: 0}}"
        ): _source,
        vol.Required("width", msg="required: the width in pixels (e.g. width: 1280)"): _dimension("width"),
        vol.Required("height", msg="required: the height in pixels (e.g. height: 720)"): _dimension("height"),
        vol.Required("fps", msg="required: the frame rate (e.g. fps: 30)"): _fps,
        vol.Required("bitrate", msg='required: the bitrate in bit/s (e.g. bitrate: "2M")'): parse_bitrate,
        vol.Optional("keyframe_interval_s", default=1.0): _keyframe_interval,
        vol.Optional("encoder", default="auto"): _encoder,
        vol.Optional("rtsp_path", default=None): _rtsp_path,
        vol.Optional("enabled", default=True): _boolean,
        vol.Optional("substream", default=None): _substream,
    }
)
"""Validates one stream mapping; values come out checked (``source`` as a SourceConfig). Use
:func:`parse_stream` for a StreamConfig and messages that name the stream."""


def _describe_path(path: Sequence[Any]) -> str:
    parts: list[str] = []
    for element in path:
        if isinstance(element, int):
            parts.append(f"[{element}]")
        else:
            parts.append(("." if parts else "") + str(element))
    return "".join(parts)


# --------------------------------------------------------------------------------------------- parsing


def parse_stream(data: Any, index: int | None = None) -> StreamConfig:
    """One stream mapping (YAML or the API's JSON) → StreamConfig. ``index``: its position in a list, for
    messages. Raises :class:`StreamConfigError` listing every problem."""
    stream_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(data, dict):
        problem = _problem(
            index,
            None,
            "",
            f"expected a mapping of keys such as id:, source:, width: …, got {type(data).__name__}",
        )
        raise StreamConfigError([problem])
    try:
        checked = STREAM_SCHEMA(data)
    except vol.MultipleInvalid as exc:
        problems = []
        for error in exc.errors:
            message = error.msg
            if error.error_message == "extra keys not allowed" and len(error.path) == 1:
                message = _unknown_key_message(STREAM_KEYS, "a stream")
            problems.append(_problem(index, stream_id, _describe_path(error.path), message))
        raise StreamConfigError(sorted(problems, key=_problem_order)) from None
    sub = checked["substream"]
    stream = StreamConfig(
        id=checked["id"],
        name=checked["name"],
        source=checked["source"],
        width=checked["width"],
        height=checked["height"],
        fps=checked["fps"],
        bitrate=checked["bitrate"],
        keyframe_interval_s=checked["keyframe_interval_s"],
        encoder=checked["encoder"],
        rtsp_path=checked["rtsp_path"] or checked["id"],
        enabled=checked["enabled"],
        substream=SubstreamConfig(
            width=sub["width"],
            height=sub["height"],
            fps=sub["fps"],
            bitrate=sub["bitrate"],
            rtsp_path=sub["rtsp_path"] or f"{checked['id']}_sub",
        )
        if sub is not None
        else None,
    )
    raise_for_errors(own_problems(stream, index))
    return stream


_SOURCE_FIELD_ORDER = ("type", "camera", "device", "input_format", "pattern")


def _problem_order(problem: Problem) -> tuple[int, int, int, str]:
    """Problems in the order of the keys in the documentation (id first, unknown keys last), not in
    voluptuous' order, which differs between its versions."""
    parts = problem.field.split(".")
    head = parts[0].split("/")[0]
    first = STREAM_KEYS.index(head) if head in STREAM_KEYS else len(STREAM_KEYS)
    order = SUBSTREAM_KEYS if head == "substream" else _SOURCE_FIELD_ORDER if head == "source" else ()
    second = order.index(parts[1]) if len(parts) > 1 and parts[1] in order else len(order)
    unknown = problem.field if first == len(STREAM_KEYS) or second == len(order) else ""
    return (problem.index or 0, first, second, unknown)


def parse_streams(data: Any) -> list[StreamConfig]:
    """A ``streams:`` list → StreamConfigs, checking each stream and the list (unique ids and RTSP paths,
    one stream per source). Raises :class:`StreamConfigError` listing every problem of every stream."""
    if data is None:
        return []
    if not isinstance(data, list):
        problem = Problem(
            "streams",
            "",
            f"expected a list of streams (each starting with `- id: …`), got {type(data).__name__}",
        )
        raise StreamConfigError([problem])
    streams: list[StreamConfig | None] = []
    problems: list[Problem] = []
    for index, item in enumerate(data):
        try:
            streams.append(parse_stream(item, index))
        except StreamConfigError as exc:
            problems.extend(exc.problems)
            streams.append(None)
    problems.extend(structure_problems(streams))
    raise_for_errors(problems)
    return [stream for stream in streams if stream is not None]


def own_problems(stream: StreamConfig, index: int | None = None) -> list[Problem]:
    """What a stream says about itself that cannot work, whatever the Pi."""
    found: list[Problem] = []

    def add(field: str, message: str) -> None:
        found.append(_problem(index, stream.id, field, message))

    sub = stream.substream
    if sub is not None:
        if sub.width >= stream.width:
            add("substream.width", f"must be smaller than the main width ({stream.width}), got {sub.width}")
        if sub.height >= stream.height:
            add(
                "substream.height",
                f"must be smaller than the main height ({stream.height}), got {sub.height}",
            )
        if sub.fps > stream.fps:
            add("substream.fps", f"must be at most the main fps ({stream.fps:g}), got {sub.fps:g}")
    if stream.encoder == "copy":
        source = stream.source
        if source.kind != "v4l2":
            what = "a CSI camera" if source.kind == "csi" else "a test pattern"
            add(
                "encoder",
                f"copy passes a capture card's MJPEG/H.264 through, and {what} has none to pass; "
                "use auto, hardware or software",
            )
        elif source.input_format not in COMPRESSED_INPUT_FORMATS:
            got = f"{source.input_format} is raw video" if source.input_format else "no input_format is set"
            add(
                "encoder",
                f"copy needs the card's compressed stream, but {got}: set source.input_format to mjpeg or "
                "h264 (one the card offers), or use encoder auto",
            )
    return found


# ------------------------------------------------------------------------------------------ list checks


def _source_key(stream: StreamConfig) -> tuple[str, Any] | None:
    """Literal identity of a stream's source: two streams with the same key share a camera/card."""
    if stream.source.kind == "csi":
        return ("csi", stream.source.camera)
    if stream.source.kind == "v4l2":
        return ("v4l2", stream.source.device)
    return None  # test patterns can be generated any number of times


def _describe_source(key: tuple[str, Any]) -> str:
    kind, value = key
    return f"CSI camera {value}" if kind == "csi" else f"capture device {value}"


def _list_problems(
    streams: Sequence[StreamConfig | None],
    source_key: Callable[[StreamConfig], tuple[str, Any] | None],
    describe: Callable[[tuple[str, Any]], str],
) -> list[Problem]:
    found: list[Problem] = []
    ids: dict[str, int] = {}
    paths: dict[str, tuple[int, str]] = {}
    sources: dict[tuple[str, Any], int] = {}
    for index, stream in enumerate(streams):
        if stream is None:
            continue
        if stream.id in ids:
            found.append(
                _problem(
                    index,
                    stream.id,
                    "id",
                    f'"{stream.id}" is already the id of streams[{ids[stream.id]}]; '
                    "every stream needs its own id",
                )
            )
        else:
            ids[stream.id] = index
        own = [("rtsp_path", stream.rtsp_path, "main stream")]
        if stream.substream is not None:
            own.append(("substream.rtsp_path", stream.substream.rtsp_path, "substream"))
        for field, path, role in own:
            if path in paths:
                other_index, other_role = paths[path]
                other = streams[other_index]
                owner = (
                    f"this stream's {other_role}"
                    if other_index == index
                    else f"the {other_role} of {stream_label(other_index, other.id if other else None)}"
                )
                found.append(
                    _problem(
                        index, stream.id, field, f'"{path}" is already the path of {owner}; choose another'
                    )
                )
            else:
                paths[path] = (index, role)
        key = source_key(stream)
        if key is None:
            continue
        if key in sources:
            first = streams[sources[key]]
            first_id = first.id if first else None
            found.append(
                _problem(
                    index,
                    stream.id,
                    "source",
                    f"{describe(key)} already feeds {stream_label(sources[key], first_id)}; a camera or card "
                    f'can feed one stream only: give "{first_id}" a substream instead',
                )
            )
        else:
            sources[key] = index
    return found


def structure_problems(streams: Sequence[StreamConfig | None]) -> list[Problem]:
    """Duplicate ids, duplicate RTSP paths (substreams included) and a source named twice, without knowing
    the Pi. ``None`` entries (streams that did not parse) keep the others' list indexes right."""
    return _list_problems(streams, _source_key, _describe_source)


# ------------------------------------------------------------------------------------------- serializing


def source_to_json(source: SourceConfig) -> dict[str, Any]:
    if source.kind == "csi":
        return {"type": "csi", "camera": source.camera}
    if source.kind == "v4l2":
        return {"type": "v4l2", "device": source.device, "input_format": source.input_format}
    return {"type": "test", "pattern": source.pattern}


def to_json(stream: StreamConfig) -> dict[str, Any]:
    """The JSON form the API returns and accepts back: ``parse_stream(to_json(s)) == s``. Every key is
    present (None where unset); bitrates are ints in bit/s; keys in documentation order."""
    sub = stream.substream
    return {
        "id": stream.id,
        "name": stream.name,
        "source": source_to_json(stream.source),
        "width": stream.width,
        "height": stream.height,
        "fps": stream.fps,
        "bitrate": stream.bitrate,
        "keyframe_interval_s": stream.keyframe_interval_s,
        "encoder": stream.encoder,
        "rtsp_path": stream.rtsp_path,
        "enabled": stream.enabled,
        "substream": {
            "width": sub.width,
            "height": sub.height,
            "fps": sub.fps,
            "bitrate": sub.bitrate,
            "rtsp_path": sub.rtsp_path,
        }
        if sub is not None
        else None,
    }


# ------------------------------------------------------------------------- voluptuous for the config file


class StreamInvalid(vol.Invalid):
    """A stream problem as voluptuous reports it inside the agent's config schema: ``path`` is
    ``[index, *field keys]`` (so a plain formatter prints ``streams[1].substream.width: …``); ``problem``
    carries the full text that also names the stream's id."""

    def __init__(self, problem: Problem) -> None:
        path: list[Any] = [] if problem.index is None else [problem.index]
        if problem.field:
            path.extend(problem.field.split("."))
        super().__init__(problem.message, path=path)
        self.problem = problem


def _streams_validator(value: Any) -> list[dict[str, Any]]:
    try:
        streams = parse_streams(value)
    except StreamConfigError as exc:
        raise vol.MultipleInvalid([StreamInvalid(problem) for problem in exc.problems]) from None
    return [to_json(stream) for stream in streams]


STREAMS_SCHEMA = vol.Schema(_streams_validator)
"""For the agent config's ``streams:`` key: a list of streams → the same list normalised to :func:`to_json`
dicts (defaults filled, bitrates in bit/s), which ``StreamStore`` takes as its seed. ``null`` means no
streams. Errors are :class:`StreamInvalid` (``error.problem`` has the full message)."""


# ------------------------------------------------------------------------------------------------- rtsp:

RTSP_KEYS = (
    "publish_url",
    "read_url",
    "publish_transport",
    "read_transport",
    "publish_username",
    "publish_password",
    "read_username",
    "read_password",
)


def _rtsp_url(value: Any) -> str | None:
    if value is None:
        return None
    # Never echo a value that may hold credentials (rtsp://user:password@host): say what it was instead.
    shown = repr(value) if isinstance(value, str) and "@" not in value else "(value not shown)"
    if not isinstance(value, str):
        raise vol.Invalid(f"expected an rtsp:// URL such as rtsp://127.0.0.1:8554, got {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise vol.Invalid(f"is not a valid URL (check the host and port), got {shown}") from None
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
        raise vol.Invalid(f"expected an rtsp:// URL with a host, such as rtsp://127.0.0.1:8554, got {shown}")
    if parts.username is not None or parts.password is not None:
        raise vol.Invalid(
            "must not contain a user name or password: put them in the *_username and *_password keys"
        )
    if parts.query or parts.fragment or any(ch.isspace() for ch in value):
        raise vol.Invalid(f"must be a base URL without spaces, ?query or #fragment, got {shown}")
    if port == 0:
        raise vol.Invalid(f"port must be between 1 and 65535, got {shown}")
    return value.rstrip("/")


def _transport(value: Any) -> str:
    if value in ("tcp", "udp"):
        return str(value)
    raise vol.Invalid(f"expected tcp or udp, got {value!r}")


def _credential(value: Any) -> str | None:
    # The value is a secret (or close to one): never part of a message.
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise vol.Invalid("expected non-empty text without control characters (value not shown)")
    return value


RTSP_SCHEMA = vol.Schema(
    {
        vol.Optional("publish_url", default="rtsp://127.0.0.1:8554"): _rtsp_url,
        vol.Optional("read_url", default=None): _rtsp_url,
        vol.Optional("publish_transport", default="tcp"): _transport,
        vol.Optional("read_transport", default="tcp"): _transport,
        vol.Optional("publish_username", default=None): _credential,
        vol.Optional("publish_password", default=None): _credential,
        vol.Optional("read_username", default=None): _credential,
        vol.Optional("read_password", default=None): _credential,
    }
)
"""For the agent config's ``rtsp:`` key (field checks only; :func:`parse_rtsp_settings` also checks that
user names and passwords come in pairs)."""


def parse_rtsp_settings(data: Any) -> RtspSettings:
    """The agent config's ``rtsp:`` section → RtspSettings (``None`` or ``{}`` = defaults: MediaMTX on this
    Pi). Raises :class:`StreamConfigError`; no message ever contains a user name, password or a URL that
    holds one."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise StreamConfigError(
            [
                Problem(
                    "rtsp", "", f"expected a mapping of keys such as publish_url:, got {type(data).__name__}"
                )
            ],
            "invalid rtsp settings",
        )
    problems: list[Problem] = []
    try:
        checked = RTSP_SCHEMA(data)
    except vol.MultipleInvalid as exc:
        for error in exc.errors:
            message = error.msg
            if error.error_message == "extra keys not allowed":
                message = _unknown_key_message(RTSP_KEYS, "rtsp")
            problems.append(Problem(f"rtsp.{_describe_path(error.path)}", "", message))
        raise StreamConfigError(problems, "invalid rtsp settings") from None
    for role in ("publish", "read"):
        user, password = checked[f"{role}_username"], checked[f"{role}_password"]
        if (user is None) != (password is None):
            missing = f"{role}_password" if password is None else f"{role}_username"
            given = f"{role}_username" if user is not None else f"{role}_password"
            problems.append(Problem(f"rtsp.{missing}", "", f"required when {given} is set"))
    raise_for_errors(problems, "invalid rtsp settings")
    return RtspSettings(
        publish_url=checked["publish_url"],
        read_url=checked["read_url"],
        publish_transport=checked["publish_transport"],
        read_transport=checked["read_transport"],
        publish_username=checked["publish_username"],
        publish_password=checked["publish_password"],
        read_username=checked["read_username"],
        read_password=checked["read_password"],
    )


# ----------------------------------------------------------------------------------- checks against the Pi


def _csi_listing(devices: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str | None]:
    """The CSI cameras and, when the listing could not be made, why (then an absent camera proves
    nothing)."""
    unavailable = devices.get("unavailable") or {}
    reason = unavailable.get("csi_cameras") if isinstance(unavailable, Mapping) else None
    cameras = [c for c in devices.get("csi_cameras") or [] if isinstance(c, Mapping)]
    return cameras, reason


def find_csi_camera(devices: Mapping[str, Any], camera: int | str | None) -> Mapping[str, Any] | None:
    """The listed camera with this index or libcamera id path."""
    for entry in _csi_listing(devices)[0]:
        listed = entry.get("index") if isinstance(camera, int) else entry.get("id_path")
        if camera == listed:
            return entry
    return None


def find_capture_device(devices: Mapping[str, Any], device: str | None) -> Mapping[str, Any] | None:
    """The capture device named by its id, stable path or /dev/videoN path."""
    if device is None:
        return None
    for entry in devices.get("capture_devices") or []:
        if isinstance(entry, Mapping) and device in (
            entry.get("id"),
            entry.get("stable_path"),
            entry.get("path"),
        ):
            return entry
    return None


def _platform_node(devices: Mapping[str, Any], device: str) -> Mapping[str, Any] | None:
    for node in devices.get("platform_nodes") or []:
        if isinstance(node, Mapping) and node.get("path") == device:
            return node
    return None


def _fps_list(rates: Sequence[float]) -> str:
    return ", ".join(f"{rate:g}" for rate in rates)


def _check_csi_mode(stream: StreamConfig, camera: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Can this camera deliver the stream's size at its fps?

    rpicam-vid asks libcamera for the stream size; libcamera picks a sensor mode and the ISP scales (and
    crops, for another aspect ratio) its frames to that size. The ISP scales *down* well, so a request is
    met at full quality by any mode at least as large in both directions, and the fastest such mode bounds
    the frame rate. Some fast modes read a cropped window of the sensor (imx708 1536x864 reads the central
    3072x1728): still valid, with a narrower view. Nothing can exceed the sensor itself. Listings from 2021
    carry no rates: then only the size is checked.
    """
    found: list[tuple[str, str]] = []
    model = camera.get("model") or "the camera"
    sensor_w, sensor_h = camera.get("sensor_width"), camera.get("sensor_height")
    if isinstance(sensor_w, int) and isinstance(sensor_h, int):
        if stream.width > sensor_w:
            found.append(
                ("width", f"{model}'s sensor is {sensor_w}x{sensor_h}: use a width of at most {sensor_w}")
            )
        if stream.height > sensor_h:
            found.append(
                ("height", f"{model}'s sensor is {sensor_w}x{sensor_h}: use a height of at most {sensor_h}")
            )
        if found:
            return found
    modes = [m for m in camera.get("modes") or [] if isinstance(m, Mapping)]
    rated = [
        m
        for m in modes
        if isinstance(m.get("width"), int)
        and isinstance(m.get("height"), int)
        and isinstance(m.get("fps"), float | int)
    ]
    covering = [m for m in rated if m["width"] >= stream.width and m["height"] >= stream.height]
    if not covering:
        return found
    best = max(covering, key=lambda m: m["fps"])
    if stream.fps > best["fps"] * FPS_TOLERANCE:
        message = (
            f"{model} delivers {stream.width}x{stream.height} at up to {best['fps']:g} fps (sensor mode "
            f"{best['width']}x{best['height']}): lower fps to {math.floor(best['fps']):d}"
        )
        fast = [m for m in rated if stream.fps <= m["fps"] * FPS_TOLERANCE]
        if fast:
            largest = max(fast, key=lambda m: m["width"] * m["height"])
            message += (
                f", or use a size of at most {largest['width']}x{largest['height']} "
                f"(up to {largest['fps']:g} fps)"
            )
        found.append(("fps", message))
    return found


def _input_name(fourcc: str) -> str:
    name = _FOURCC_TO_INPUT.get(fourcc)
    return f"{name} ({fourcc})" if name else fourcc


def _size_matches(size: Mapping[str, Any], width: int, height: int) -> bool:
    max_w, max_h = size.get("width"), size.get("height")
    min_w, min_h = size.get("min_width"), size.get("min_height")
    if not isinstance(max_w, int) or not isinstance(max_h, int):
        return False
    if isinstance(min_w, int) and isinstance(min_h, int):  # stepwise/continuous range
        return min_w <= width <= max_w and min_h <= height <= max_h
    return width == max_w and height == max_h


def _rate_matches(size: Mapping[str, Any], fps: float) -> bool:
    rates = [r for r in size.get("fps") or [] if isinstance(r, int | float)]
    if not rates:
        return True  # the card lists no intervals for this size: nothing to hold it against
    if any(abs(fps - rate) <= rate * (FPS_TOLERANCE - 1) for rate in rates):
        return True
    # A stepwise size comes with a stepwise interval: the list holds the range's two ends, fastest first.
    stepwise = isinstance(size.get("min_width"), int)
    return stepwise and len(rates) == 2 and min(rates) / FPS_TOLERANCE <= fps <= max(rates) * FPS_TOLERANCE


def _format_matches(fmt: Mapping[str, Any], input_format: str | None) -> bool:
    return input_format is None or fmt.get("fourcc") in INPUT_FORMATS.get(input_format, ())


def choose_input_format(device: Mapping[str, Any], stream: StreamConfig) -> str | None:
    """The ffmpeg ``-input_format`` for a v4l2 stream: the configured one, else the first compressed format
    (less USB bandwidth) that offers the stream's size at its fps, else the first raw one; None when the card
    offers no match (or lists no formats)."""
    if stream.source.input_format is not None:
        return stream.source.input_format
    candidates = [
        fmt
        for fmt in device.get("formats") or []
        if isinstance(fmt, Mapping)
        and fmt.get("fourcc") in _FOURCC_TO_INPUT
        and any(
            _size_matches(size, stream.width, stream.height) and _rate_matches(size, stream.fps)
            for size in fmt.get("sizes") or []
            if isinstance(size, Mapping)
        )
    ]
    candidates.sort(key=lambda fmt: not fmt.get("compressed"))
    return _FOURCC_TO_INPUT[candidates[0]["fourcc"]] if candidates else None


def _check_v4l2_mode(stream: StreamConfig, device: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The card must list the stream's size at its fps in the chosen input format (any format when none is
    set): ffmpeg would otherwise get whatever the driver falls back to, or fail to start."""
    card = f"the card ({device.get('name') or device.get('id')})"
    formats = [f for f in device.get("formats") or [] if isinstance(f, Mapping)]
    input_format = stream.source.input_format
    offered = [f for f in formats if _format_matches(f, input_format)]
    if not offered:
        names = ", ".join(_input_name(str(f.get("fourcc"))) for f in formats)
        return [("source.input_format", f"{card} does not offer {input_format}; it offers {names}")]
    where = f"in {input_format}" if input_format else "in any format"
    sizes = [s for f in offered for s in f.get("sizes") or [] if isinstance(s, Mapping)]
    at_size = [s for s in sizes if _size_matches(s, stream.width, stream.height)]
    if not at_size:
        listed = list(dict.fromkeys(f"{s.get('width')}x{s.get('height')}" for s in sizes))
        return [
            (
                "width/height",
                f"{card} does not offer {stream.width}x{stream.height} {where}; "
                f"it offers {', '.join(listed[:12])}",
            )
        ]
    if not any(_rate_matches(s, stream.fps) for s in at_size):
        rates = sorted({float(r) for s in at_size for r in s.get("fps") or []}, reverse=True)
        return [
            (
                "fps",
                f"{card} offers {stream.width}x{stream.height} {where} at {_fps_list(rates)} fps only; "
                "use one of those",
            )
        ]
    return []


@dataclass
class _Resolved:
    """A stream's source matched against the devices document."""

    key: tuple[str, Any] | None  # device identity, for "two streams on one camera"
    description: str


def validate_streams(
    streams: Sequence[StreamConfig],
    devices: Mapping[str, Any],
    board: Mapping[str, Any],
    *,
    simulated: bool,
) -> list[Problem]:
    """Everything that would make these streams fail on this Pi, before anything is started.

    ``devices``: the ``GET /api/v1/devices`` document (``DeviceRegistry.to_json()``); ``board``: at least
    ``hardware_h264_encoder`` (the agent's one answer) and ``soc``. Returns errors and warnings
    (see :func:`raise_for_errors`). The rules:

    * each stream's own rules (:func:`own_problems`); unique ids and RTSP paths;
    * **v4l2 devices**: a device not connected right now is a *warning* — the stream waits for it (a card
      can be unplugged at 3 a.m.); a ``/dev/videoN`` that is one of the Pi's own codec/ISP/CSI nodes is an
      error. A connected card must offer the size at the fps in the input format.
    * **CSI cameras**: an index or id path libcamera does not list is an error, but only when the listing
      could be made (``unavailable["csi_cameras"]`` absent): CSI cameras do not hot-plug. Size and fps must
      fit the sensor's modes (see :func:`_check_csi_mode`).
    * one camera or card feeds one stream (resolved through the devices document, so a card named by id in
      one stream and by path in another is caught);
    * ``encoder: hardware`` where there is no hardware H.264 encoder (Pi 5) is an error, as is a size beyond
      the encoder's 1920x1920 when it would be used (hardware, or auto on Pi 0-4); ``auto`` on a Pi 5 warns
      that libx264 costs CPU.
    * test sources are accepted everywhere (useful to check the RTSP path without a camera).

    ``simulated``: the devices describe a simulated Pi, not real hardware, so device and mode problems are
    reported as warnings only.
    """
    found: list[Problem] = []
    device_severity: Severity = "warning" if simulated else "error"
    simulation_note = " (simulation mode: not enforced)" if simulated else ""
    hardware = board.get("hardware_h264_encoder")  # the agent's one answer (pi_stream_agent.soc)
    soc = board.get("soc")
    resolved: list[_Resolved] = []

    for index, stream in enumerate(streams):

        def add(field: str, message: str, severity: Severity = "error", i: int = index) -> None:
            found.append(_problem(i, streams[i].id, field, message, severity))

        found.extend(own_problems(stream, index))
        source = stream.source
        key = _source_key(stream)
        description = _describe_source(key) if key else "test pattern"
        if source.kind == "csi":
            cameras, reason = _csi_listing(devices)
            camera = find_csi_camera(devices, source.camera)
            if camera is not None:
                key = ("csi", camera.get("index"))
                description = f"CSI camera {camera.get('index')} ({camera.get('model')})"
                for field, message in _check_csi_mode(stream, camera):
                    add(field, message + simulation_note, device_severity)
            elif reason:
                add("source.camera", f"not checked: CSI cameras could not be listed ({reason})", "warning")
            else:
                listed = ", ".join(f"{c.get('index')} ({c.get('model')})" for c in cameras) or "none"
                add(
                    "source.camera",
                    f"libcamera lists no camera {source.camera!r} (cameras: {listed}); "
                    "check the ribbon cable "
                    f"and `rpicam-hello --list-cameras`, or use a listed camera{simulation_note}",
                    device_severity,
                )
        elif source.kind == "v4l2":
            device_name = source.device or ""
            device = find_capture_device(devices, device_name)
            unavailable = devices.get("unavailable") or {}
            if device is not None:
                key = ("v4l2", device.get("id"))
                description = f"capture device {device.get('id')} ({device.get('name')})"
                if device.get("formats"):
                    for field, message in _check_v4l2_mode(stream, device):
                        add(field, message + simulation_note, device_severity)
                elif isinstance(unavailable, Mapping) and unavailable.get("formats"):
                    add(
                        "width/height",
                        f"not checked: formats unavailable ({unavailable['formats']})",
                        "warning",
                    )
                stable = device.get("stable_path")
                if device_name == device.get("path") and stable:
                    add(
                        "source.device",
                        f"{device_name} may be renumbered after a reboot or replug; use {stable}",
                        "warning",
                    )
            elif (node := _platform_node(devices, device_name)) is not None:
                add(
                    "source.device",
                    f"{device_name} is the Pi's own {node.get('name')} ({node.get('role')}), "
                    "not a capture card; "
                    "a camera on the ribbon connector is source type csi",
                    device_severity,
                )
            elif isinstance(unavailable, Mapping) and unavailable.get("capture_devices"):
                add(
                    "source.device",
                    f"not checked: capture devices could not be listed ({unavailable['capture_devices']})",
                    "warning",
                )
            else:
                hint = (
                    "; /dev/videoN numbers change between boots: use its stable path from GET /api/v1/devices"
                    if device_name.startswith("/dev/video")
                    else ""
                )
                add(
                    "source.device",
                    f"{device_name} is not connected right now; the stream waits for it and starts when it "
                    f"appears{hint}",
                    "warning",
                )
        resolved.append(_Resolved(key, description))

        # What encodes the main stream: copy passes through; auto means hardware where the board has it.
        if stream.encoder == "hardware" or (stream.encoder == "auto" and hardware):
            if stream.encoder == "hardware" and hardware is False:
                board_text = f"this board ({soc})" if soc else "this board"
                add(
                    "encoder",
                    f"{board_text} has no hardware H.264 encoder (a Pi 5 encodes in software): use auto or "
                    "software",
                )
            elif stream.encoder == "hardware" and hardware is None:
                add("encoder", "cannot tell whether this board has a hardware H.264 encoder", "warning")
            elif stream.width > HARDWARE_ENCODER_MAX or stream.height > HARDWARE_ENCODER_MAX:
                chosen = "" if stream.encoder == "hardware" else " (auto picks it on this board)"
                add(
                    "width/height",
                    f"the Pi's hardware H.264 encoder{chosen} takes at most {HARDWARE_ENCODER_MAX}x"
                    f"{HARDWARE_ENCODER_MAX}, got {stream.width}x{stream.height}: lower the size, or use "
                    "encoder software",
                )
        elif stream.encoder == "auto" and hardware is False:
            add(
                "encoder",
                "this board has no hardware H.264 encoder: "
                f"{stream.width}x{stream.height} at {stream.fps:g} fps "
                "is encoded in software (libx264), which costs much CPU; keep the size and fps modest",
                "warning",
            )

    # Duplicate ids/paths, and one source per stream after resolving ids and paths to devices.
    keys = {id(stream): r.key for stream, r in zip(streams, resolved, strict=True)}
    descriptions = {r.key: r.description for r in resolved if r.key is not None}
    found.extend(
        _list_problems(
            streams,
            lambda stream: keys[id(stream)],
            lambda key: descriptions.get(key, _describe_source(key)),
        )
    )
    return sorted(found, key=lambda p: (p.index if p.index is not None else -1, p.severity != "error"))
