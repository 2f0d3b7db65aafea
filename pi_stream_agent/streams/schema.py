"""The stream schema: one stream mapping (YAML or the API's JSON) → :class:`~.model.StreamConfig`, and a
``streams:`` list → StreamConfigs, with every problem named by stream and field.

One stream, as YAML (in the agent's config file under ``streams:``, or in ``<state_dir>/streams.yaml``)::

    - id: garage                   # required: 1-32 of a-z 0-9 _ -, starting with a letter or digit
      name: Garage                 # optional: shown in Home Assistant (the id when missing)
      source:                      # required, one of:
        type: csi                  #   a camera on the ribbon connector (rpicam-vid)
        camera: 0                  #     its index in rpicam-hello --list-cameras, or its id path
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
      motion_region: {x: 0.5, y: 0, width: 0.5, height: 1}
      #                            # optional: the part of the picture motion detection watches, each
      #                            #   0..1 of the picture (default: all of it; settings: motion_detection)
      substream:                   # optional: a smaller copy at its own path
        width: 640                 #   required, smaller than the main width
        height: 360                #   required, smaller than the main height
        fps: 15                    #   required, at most the main fps
        bitrate: 500k              #   required
        rtsp_path: garage_sub      #   default <id>_sub
        audio: false               #   true: the substream carries the sound too
      audio:                       # optional sound (streams/audio.py); absent = video only
        device: auto               #   none | auto (the capture card's own) | an audio device id
        codec: aac                 #   aac | opus
        bitrate: 64k               #   16k-320k
        channels: 1                #   1 | 2
        sample_rate: 48000         #   8000-48000 Hz

The words and limits come from ``fields.py``; what a stream says about itself that cannot work whatever
the Pi (:func:`own_problems`) is checked here, the list's rules in ``list_checks.py``, the fit to this Pi's
devices and board in ``fit.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import voluptuous as vol

from pi_stream_agent.streams.audio import parse_audio
from pi_stream_agent.streams.fields import (
    COMPRESSED_INPUT_FORMATS,
    DEFAULT_TEST_PATTERN,
    SOURCE_KEYS,
    STREAM_KEYS,
    SUBSTREAM_KEYS,
    check_camera,
    check_device,
    check_dimension,
    check_encoder,
    check_fps,
    check_input_format,
    check_keyframe_interval,
    check_name,
    check_rtsp_path,
    check_stream_id,
    check_test_pattern,
    parse_bitrate,
)
from pi_stream_agent.streams.list_checks import structure_problems
from pi_stream_agent.streams.model import SourceConfig, StreamConfig, SubstreamConfig
from pi_stream_agent.streams.motion import region_problem
from pi_stream_agent.streams.problems import Problem, StreamConfigError, raise_for_errors, stream_problem
from pi_stream_agent.streams.settings import SETTINGS_BY_ID, normalized, settings_problems
from pi_stream_agent.streams.v4l2_controls import control_name_problem
from pi_stream_agent.yamlfile import boolean, describe_path, name_unknown_keys

_SOURCE_SCHEMAS: dict[str, vol.Schema] = {
    "csi": vol.Schema({vol.Required("type"): str, vol.Optional("camera", default=0): check_camera}),
    "v4l2": vol.Schema(
        {
            vol.Required("type"): str,
            vol.Required(
                "device",
                msg="required: the card's stable path (stable_path in GET /api/v1/devices, e.g. "
                "/dev/v4l/by-id/usb-…-video-index0) or its device id",
            ): check_device,
            vol.Optional("input_format", default=None): check_input_format,
        }
    ),
    "test": vol.Schema(
        {vol.Required("type"): str, vol.Optional("pattern", default=DEFAULT_TEST_PATTERN): check_test_pattern}
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
        raise name_unknown_keys(exc, SOURCE_KEYS[kind], f"a {kind} source") from None
    if kind == "csi":
        return SourceConfig(kind="csi", camera=checked["camera"])
    if kind == "v4l2":
        return SourceConfig(kind="v4l2", device=checked["device"], input_format=checked["input_format"])
    return SourceConfig(kind="test", pattern=checked["pattern"])


_SUBSTREAM_SCHEMA = vol.Schema(
    {
        vol.Required("width", msg="required: the substream's width in pixels (e.g. 640)"): check_dimension(
            "width"
        ),
        vol.Required("height", msg="required: the substream's height in pixels (e.g. 360)"): check_dimension(
            "height"
        ),
        vol.Required("fps", msg="required: the substream's frame rate (e.g. 15)"): check_fps,
        vol.Required("bitrate", msg="required: the substream's bitrate (e.g. 500k)"): parse_bitrate,
        vol.Optional("rtsp_path", default=None): check_rtsp_path,
        vol.Optional("audio", default=False): boolean,
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
        raise name_unknown_keys(exc, SUBSTREAM_KEYS, "a substream") from None
    return checked


def _settings(value: Any) -> dict[str, Any]:
    """The mapping's shape; each setting's value is checked in :func:`own_problems` (one problem each)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise vol.Invalid(f"expected a mapping of picture settings such as {{rotation: 180}}, got {value!r}")
    return dict(value)


def _v4l2_controls(value: Any) -> dict[str, int | bool]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise vol.Invalid(
            f"expected a mapping of V4L2 control names to values such as {{brightness: 10}}, got {value!r}"
        )
    return dict(value)


def _motion_region(value: Any) -> dict[str, float] | None:
    """A rectangle in normalised coordinates (streams/motion.py says what is wrong with one)."""
    if value is None:
        return None
    problem = region_problem(value)
    if problem:
        raise vol.Invalid(problem)
    return {key: float(value[key]) for key in ("x", "y", "width", "height")}


STREAM_SCHEMA = vol.Schema(
    {
        vol.Required(
            "id", msg="required: an id of lowercase letters, digits, _ and - (e.g. garage)"
        ): check_stream_id,
        vol.Optional("name", default=None): check_name,
        vol.Required(
            "source", msg=f"required: type {_SOURCE_TYPES_HINT}, e.g. {{type: csi, camera: 0}}"
        ): _source,
        vol.Required("width", msg="required: the width in pixels (e.g. 1280)"): check_dimension("width"),
        vol.Required("height", msg="required: the height in pixels (e.g. 720)"): check_dimension("height"),
        vol.Required("fps", msg="required: the frame rate (e.g. 30)"): check_fps,
        vol.Required("bitrate", msg="required: the bitrate in bit/s (e.g. 2M)"): parse_bitrate,
        vol.Optional("keyframe_interval_s", default=1.0): check_keyframe_interval,
        vol.Optional("encoder", default="auto"): check_encoder,
        vol.Optional("rtsp_path", default=None): check_rtsp_path,
        vol.Optional("enabled", default=True): boolean,
        vol.Optional("substream", default=None): _substream,
        vol.Optional("settings", default=None): _settings,
        vol.Optional("v4l2_controls", default=None): _v4l2_controls,
        vol.Optional("audio", default=None): parse_audio,
        vol.Optional("motion_region", default=None): _motion_region,
    }
)
"""Validates one stream mapping; values come out checked (``source`` as a SourceConfig). Use
:func:`parse_stream` for a StreamConfig and messages that name the stream."""


# --------------------------------------------------------------------------------------------- parsing


def parse_stream(data: Any, index: int | None = None) -> StreamConfig:
    """One stream mapping (YAML or the API's JSON) → StreamConfig. ``index``: its position in a list, for
    messages. Raises :class:`StreamConfigError` listing every problem."""
    stream_id = data.get("id") if isinstance(data, dict) else None
    if not isinstance(data, dict):
        problem = stream_problem(
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
        for error in name_unknown_keys(exc, STREAM_KEYS, "a stream").errors:
            message = error.msg
            field = describe_path(error.path)
            # An unknown key has no label: name the key itself, without the path to it.
            sentence = (
                f'The setting "{error.path[-1]}" is unknown{message.removeprefix("unknown key")}.'
                if message.startswith("unknown key")
                else None
            )
            problems.append(stream_problem(index, stream_id, field, message, sentence=sentence))
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
            audio=sub["audio"],
        )
        if sub is not None
        else None,
        settings=normalized(checked["settings"]),
        v4l2_controls=checked["v4l2_controls"],
        audio=checked["audio"],
        motion_region=checked["motion_region"],
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
            f"expected a list of streams (each starting with - id: …), got {type(data).__name__}",
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

    def add(field: str, detail: str, sentence: str | None = None, name: str | None = None) -> None:
        problem = stream_problem(index, stream.id, field, detail, sentence=sentence)
        found.append(replace(problem, name=name) if name else problem)

    sub = stream.substream
    if sub is not None:
        if sub.width >= stream.width:
            add(
                "substream.width",
                f"must be smaller than the main width ({stream.width}), got {sub.width}",
                f"Substream width must be smaller than the main stream's width ({stream.width}).",
            )
        if sub.height >= stream.height:
            add(
                "substream.height",
                f"must be smaller than the main height ({stream.height}), got {sub.height}",
                f"Substream height must be smaller than the main stream's height ({stream.height}).",
            )
        if sub.fps > stream.fps:
            add(
                "substream.fps",
                f"must be at most the main fps ({stream.fps:g}), got {sub.fps:g}",
                f"Substream frame rate must be at most the main stream's frame rate ({stream.fps:g} fps).",
            )
    for key, predicate in settings_problems(stream.settings, stream.source.kind):
        setting = SETTINGS_BY_ID.get(key)
        label = setting.name if setting is not None else f'The setting "{key}"'
        add(f"settings.{key}", predicate, f"{label} {predicate}.", setting.name if setting else None)
    if stream.v4l2_controls and stream.source.kind != "v4l2":
        add(
            "v4l2_controls",
            "apply to USB cameras and capture cards (v4l2 sources) only",
            "Camera controls apply to USB cameras and capture cards only; use the picture settings instead.",
        )
    for name, value in stream.v4l2_controls.items():
        problem = control_name_problem(name, value)
        if problem:
            add(f"v4l2_controls.{name}", problem, f'The camera control "{name}" {problem}.', name)
    if stream.encoder == "copy":
        source = stream.source
        if source.kind != "v4l2":
            what = "a CSI camera" if source.kind == "csi" else "a test pattern"
            add(
                "encoder",
                f"copy passes a capture card's MJPEG/H.264 through, and {what} has none to pass; "
                "use auto, hardware or software",
                f"Pass-through works with a capture card's MJPEG or H.264 only, and {what} has none to pass; "
                "choose another encoder.",
            )
        elif source.input_format not in COMPRESSED_INPUT_FORMATS:
            got = f"{source.input_format} is raw video" if source.input_format else "no input_format is set"
            add(
                "encoder",
                f"copy needs the card's compressed stream, but {got}: set source.input_format to mjpeg or "
                "h264 (one the card offers), or use encoder auto",
                "Pass-through needs the card's compressed stream: set the input format to Motion-JPEG or "
                "H.264 (one the card offers), or choose another encoder.",
            )
    return found
