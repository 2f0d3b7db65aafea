"""CSI cameras, as ``rpicam-hello --list-cameras`` (``libcamera-hello`` before the 2023 rename) reports them.

The parser reads every layout rpicam-apps has printed (core/options.cpp):

* 2021: ``0 : imx477 [4056x3040] (/base/…/imx477@1a)`` and modes without rates, several sizes on a line;
* 2022: the same header, modes ``1332x990 [120.05 fps - (696, 528)/2664x1980 crop]``;
* current: header ``[4608x2592 10-bit RGGB]``; continuation lines aligned with spaces (or tabs in copies).

With ``-v`` (rpicam-apps since 2023) each camera also gets an ``Available controls for 4608x2592
SRGGB10_CSI2P mode:`` block, a dashed line, then one ``<Control> : [<min>..<max>]`` line per libcamera
control (``ControlInfo::toString()``). That block carries sizes too (its title, ``ScalerCrop : [(0, 0)/64x64..
(0, 0)/4608x2592]``), so once it starts no line is read as a mode. The controls become
``CsiCamera.controls``: ``{"AfMode": {"min": 0, "max": 2}, "AwbEnable": {"min": false, "max": true},
"ScalerCrop": {"min": "(0, 0)/64x64", "max": "(0, 0)/4608x2592"}}`` — ints and floats as numbers,
true/false as booleans, anything else as its text; ``"default"`` too where a later libcamera prints one
after the range. The reader always passes ``-v``: an older rpicam-hello/libcamera-hello accepts it and just
prints no block (the camera then has no controls listed).

CSI cameras do not hot-plug, so the reader runs at start and on an explicit refresh only (it takes about a
second and briefly opens every camera through libcamera).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pi_stream_agent.discovery.v4l2 import ToolRunner, resolve_tool, run_tool

# Regexes are fine here: this runs once at start, never in the telemetry path.
_HEADER = re.compile(r"^\s*(\d+)\s*:\s*(.+?)\s*\[([^\]]*)\]\s*(?:\((.*)\))?\s*$")
_FORMAT = re.compile(r"'([^']+)'\s*:")
_SIZE = re.compile(r"(\d+)x(\d+)(?:\s*\[([^\]]*)\])?")
_USB_ID_TAIL = re.compile(r"-[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$")
_CONTROL = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_]*) : \[(?P<range>.*)\](?P<tail>.*)$")
_CONTROLS_TITLE = "Available controls for "
_MODE_DETAIL = re.compile(r"([\d.]+)\s*fps(?:\s*-\s*\(\s*(\d+),\s*(\d+)\)/(\d+)x(\d+)\s*crop)?")

DEFAULT_TOOLS = ("rpicam-hello", "libcamera-hello")


@dataclass(frozen=True)
class Crop:
    """The sensor area a mode reads, in full-resolution pixels."""

    x: int
    y: int
    width: int
    height: int

    def to_json(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class Mode:
    """One sensor mode: raw format (``SRGGB10_CSI2P``), size, and (since 2022) its top rate and crop."""

    format: str
    width: int
    height: int
    fps: float | None = None
    crop: Crop | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "crop": self.crop.to_json() if self.crop else None,
        }


@dataclass
class CsiCamera:
    """A camera as rpicam lists it. ``index`` is what ``rpicam-vid --camera N`` takes."""

    index: int
    model: str
    sensor_size: tuple[int, int] | None = None
    bit_depth: int | None = None
    bayer: str | None = None
    id_path: str | None = None
    modes: list[Mode] = field(default_factory=list)
    # libcamera controls from ``--list-cameras -v``, in the API's JSON form:
    # ``{"AfMode": {"min": 0, "max": 2}, "HdrMode": {"min": 0, "max": 4}}`` (numbers as numbers,
    # true/false as booleans, raw text where a range is not numeric). Empty when not listed.
    controls: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def is_usb(self) -> bool:
        """libcamera's UVC pipeline also lists USB webcams, with an id ending ``<USB interface>-<vid>:<pid>``
        (e.g. ``…/usb1@1-1.2:1.0-32e4:9422``). Those are V4L2 capture devices, not CSI cameras."""
        path = self.id_path or ""
        return "/usb" in path or _USB_ID_TAIL.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "model": self.model,
            "sensor_width": self.sensor_size[0] if self.sensor_size else None,
            "sensor_height": self.sensor_size[1] if self.sensor_size else None,
            "bit_depth": self.bit_depth,
            "bayer": self.bayer,
            "id_path": self.id_path,
            "modes": [mode.to_json() for mode in self.modes],
            "controls": self.controls,
        }


def _parse_header_details(camera: CsiCamera, details: str) -> None:
    """``4056x3040`` / ``4608x2592 10-bit RGGB`` / ``3840x2160 16-bit RGGB``."""
    for token in details.split():
        width, sep, height = token.partition("x")
        if sep and width.isdigit() and height.isdigit():
            camera.sensor_size = (int(width), int(height))
        elif token.endswith("-bit") and token[:-4].isdigit():
            camera.bit_depth = int(token[:-4])
        elif token.isalpha():
            camera.bayer = token


def _parse_mode_sizes(camera: CsiCamera, fmt: str, text: str) -> None:
    for match in _SIZE.finditer(text):
        fps: float | None = None
        crop: Crop | None = None
        if match.group(3):
            detail = _MODE_DETAIL.search(match.group(3))
            if detail:
                try:
                    fps = float(detail.group(1))
                except ValueError:
                    fps = None
                if detail.group(2) is not None:
                    crop = Crop(*(int(detail.group(i)) for i in range(2, 6)))
        camera.modes.append(Mode(fmt, int(match.group(1)), int(match.group(2)), fps, crop))


def parse_control_value(text: str) -> int | float | bool | str:
    """One end of a libcamera range as printed by ``ControlValue::toString()``: ``0`` → 0, ``1.122807`` →
    1.122807, ``false`` → False, ``(0, 0)/64x64`` (a Rectangle) stays text."""
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_control_line(line: str) -> tuple[str, dict[str, Any]] | None:
    """``AfMode : [0..2]`` → ("AfMode", {"min": 0, "max": 2}); None when the line is no control line.
    A range without ``..`` (a shape this parser does not know) keeps the control with no bounds: the camera
    still has it."""
    match = _CONTROL.match(line.strip())
    if match is None:
        return None
    low, sep, high = match.group("range").partition("..")
    info: dict[str, Any] = {"min": parse_control_value(low), "max": parse_control_value(high)} if sep else {}
    # A default after the range ("[0..2] default 0", "[0..2] (default 0)") where a libcamera prints one.
    tail = match.group("tail").strip().strip("()").strip()
    for prefix in ("default", "def", "="):
        if tail.startswith(prefix):
            tail = tail[len(prefix) :].strip(" =:")
    if tail:
        info["default"] = parse_control_value(tail)
    return match.group("name"), info


def parse_list_cameras(text: str) -> list[CsiCamera]:
    """All cameras in ``--list-cameras`` output; ``[]`` for ``No cameras available!`` or anything odd.
    Never raises. Lines outside a camera block (titles, libcamera log lines) are ignored."""
    cameras: list[CsiCamera] = []
    camera: CsiCamera | None = None
    fmt: str | None = None
    in_controls = False  # inside the camera's "Available controls" block: no line is a mode there
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("["):
            continue  # blank, or a libcamera log line "[0:00:01.2] [123] INFO …"
        header = _HEADER.match(line)
        if header and not line[0].isspace():
            camera = CsiCamera(index=int(header.group(1)), model=header.group(2).strip())
            _parse_header_details(camera, header.group(3))
            camera.id_path = header.group(4).strip() if header.group(4) else None
            cameras.append(camera)
            fmt, in_controls = None, False
            continue
        if camera is None:
            continue
        if line.strip().startswith(_CONTROLS_TITLE) and line[0].isspace():
            in_controls = True
            continue
        if in_controls:
            control = parse_control_line(line)
            if control is not None:
                camera.controls[control[0]] = control[1]
            continue  # the dashed underline, or a line of a shape not known: never a mode
        if not line[0].isspace() and not line.lstrip().startswith("Modes:"):
            camera, fmt = None, None  # something else than this camera's mode list
            continue
        body = line.strip()
        if body.startswith("Modes:"):
            body = body[len("Modes:") :]
        format_match = _FORMAT.search(body)
        if format_match:
            fmt = format_match.group(1)
            body = body[format_match.end() :]
        if fmt is not None:
            _parse_mode_sizes(camera, fmt, body)
    return cameras


@dataclass
class CsiListing:
    """The cameras found, the tool that found them, and why the list may be incomplete (None = complete)."""

    cameras: list[CsiCamera] = field(default_factory=list)
    tool: str | None = None
    reason: str | None = None


class CsiCameraReader:
    """Runs ``rpicam-hello --list-cameras -v`` (falling back to ``libcamera-hello``) from PATH with a timeout.

    Blocking: call :meth:`read` from an executor. Never raises; an absent tool gives an empty list and a
    reason (rpicam-apps exist only on Raspberry Pi OS).
    """

    def __init__(
        self, tools: Sequence[str] = DEFAULT_TOOLS, timeout_s: float = 10.0, runner: ToolRunner | None = None
    ) -> None:
        self._tools = tuple(tools)
        self._timeout_s = timeout_s
        self._runner = runner  # the simulated Pi answers in-process; names are then not looked up on PATH

    def read(self) -> CsiListing:
        for tool in self._tools:
            path = tool if self._runner is not None else resolve_tool(tool)
            if path is None:
                continue
            # -v adds each camera's "Available controls" block: what it can do, in the same run.
            ran = (self._runner or run_tool)([path, "--list-cameras", "-v"], self._timeout_s)
            cameras = [camera for camera in parse_list_cameras(ran.stdout) if not camera.is_usb]
            # A non-zero exit with cameras listed still gives usable cameras; keep the reason for the user.
            return CsiListing(cameras, tool, ran.reason)
        if not self._tools:
            return CsiListing(reason="CSI camera listing is disabled (no rpicam tool configured)")
        names = " or ".join(self._tools)
        return CsiListing(reason=f"{names} not found on PATH (CSI cameras need rpicam-apps)")
