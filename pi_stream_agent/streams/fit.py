"""The fit of streams to this Pi: checked against its devices document (``GET /api/v1/devices``) and its
board (``hardware_h264_encoder``, ``soc``) before anything starts, and the device lookups the stream
manager shares with these checks.

:func:`validate_streams` returns errors *and* warnings; a card that is merely unplugged is a warning (the
stream waits for it), never an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pi_stream_agent.streams.controls import build_offer, camera_problems
from pi_stream_agent.streams.fields import (
    FOURCC_TO_INPUT,
    FPS_TOLERANCE,
    HARDWARE_ENCODER_MAX,
    INPUT_FORMAT_FOURCCS,
)
from pi_stream_agent.streams.list_checks import describe_source, list_problems, source_key
from pi_stream_agent.streams.model import StreamConfig
from pi_stream_agent.streams.problems import Problem, Severity, stream_problem
from pi_stream_agent.streams.schema import own_problems


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
    name = FOURCC_TO_INPUT.get(fourcc)
    return f"{name} ({fourcc})" if name else fourcc


def size_matches(size: Mapping[str, Any], width: int, height: int) -> bool:
    max_w, max_h = size.get("width"), size.get("height")
    min_w, min_h = size.get("min_width"), size.get("min_height")
    if not isinstance(max_w, int) or not isinstance(max_h, int):
        return False
    if isinstance(min_w, int) and isinstance(min_h, int):  # stepwise/continuous range
        return min_w <= width <= max_w and min_h <= height <= max_h
    return width == max_w and height == max_h


def rate_matches(size: Mapping[str, Any], fps: float) -> bool:
    rates = [r for r in size.get("fps") or [] if isinstance(r, int | float)]
    if not rates:
        return True  # the card lists no intervals for this size: nothing to hold it against
    if any(abs(fps - rate) <= rate * (FPS_TOLERANCE - 1) for rate in rates):
        return True
    # A stepwise size comes with a stepwise interval: the list holds the range's two ends, fastest first.
    stepwise = isinstance(size.get("min_width"), int)
    return stepwise and len(rates) == 2 and min(rates) / FPS_TOLERANCE <= fps <= max(rates) * FPS_TOLERANCE


def _format_matches(fmt: Mapping[str, Any], input_format: str | None) -> bool:
    return input_format is None or fmt.get("fourcc") in INPUT_FORMAT_FOURCCS.get(input_format, ())


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
    at_size = [s for s in sizes if size_matches(s, stream.width, stream.height)]
    if not at_size:
        listed = list(dict.fromkeys(f"{s.get('width')}x{s.get('height')}" for s in sizes))
        return [
            (
                "width/height",
                f"{card} does not offer {stream.width}x{stream.height} {where}; "
                f"it offers {', '.join(listed[:12])}",
            )
        ]
    if not any(rate_matches(s, stream.fps) for s in at_size):
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


def _with_severity(problem: Problem, severity: Severity) -> Problem:
    return problem if problem.severity == severity else replace(problem, severity=severity)


def validate_streams(
    streams: Sequence[StreamConfig],
    devices: Mapping[str, Any],
    board: Mapping[str, Any],
    *,
    simulated: bool,
) -> list[Problem]:
    """Everything that would make these streams fail on this Pi, before anything is started.

    ``devices``: the ``GET /api/v1/devices`` document (``DeviceRegistry.to_json()``); ``board``: at least
    ``hardware_h264_encoder`` and ``soc`` (the telemetry ``board`` fragment). Returns errors and warnings
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
            found.append(stream_problem(i, streams[i].id, field, message, severity))

        found.extend(own_problems(stream, index))
        source = stream.source
        key = source_key(stream)
        description = describe_source(key) if key else "test pattern"
        if source.kind == "csi":
            cameras, reason = _csi_listing(devices)
            camera = find_csi_camera(devices, source.camera)
            if camera is not None:
                key = ("csi", camera.get("index"))
                description = f"CSI camera {camera.get('index')} ({camera.get('model')})"
                for field, message in _check_csi_mode(stream, camera):
                    add(field, message + simulation_note, device_severity)
                found.extend(
                    _with_severity(problem, device_severity)
                    for problem in camera_problems(
                        build_offer(stream, camera=camera), index, camera_listed=bool(camera.get("controls"))
                    )
                )
            elif reason:
                add("source.camera", f"not checked: CSI cameras could not be listed ({reason})", "warning")
            else:
                listed = ", ".join(f"{c.get('index')} ({c.get('model')})" for c in cameras) or "none"
                add(
                    "source.camera",
                    f"libcamera lists no camera {source.camera!r} (cameras: {listed}); "
                    "check the ribbon cable "
                    f"and rpicam-hello --list-cameras, or use a listed camera{simulation_note}",
                    device_severity,
                )
        elif source.kind == "v4l2":
            device_name = source.device or ""
            device = find_capture_device(devices, device_name)
            unavailable = devices.get("unavailable") or {}
            if device is not None:
                key = ("v4l2", device.get("id"))
                description = f"capture device {device.get('id')} ({device.get('name')})"
                found.extend(
                    _with_severity(problem, device_severity)
                    for problem in camera_problems(build_offer(stream, device=device), index)
                )
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
        list_problems(
            streams,
            lambda stream: keys[id(stream)],
            lambda key: descriptions.get(key, describe_source(key)),
        )
    )
    return sorted(found, key=lambda p: (p.index if p.index is not None else -1, p.severity != "error"))
