"""The data passed between the stream modules. No behaviour beyond small helpers."""

from __future__ import annotations

import enum
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .audio import AUDIO_OFF, AudioConfig, AudioInput, AudioStatus
from .fonts import clock_font

SourceKind = Literal["csi", "v4l2", "test"]
# auto: hardware H.264 where the board has it (Pi 0–4), software otherwise (Pi 5), MJPEG pass-through
# never chosen implicitly; hardware: insist on the VideoCore encoder; software: libx264; copy: pass the
# card's compressed stream through untouched (MJPEG or H.264 capture cards).
EncoderChoice = Literal["auto", "hardware", "software", "copy"]
Encoding = Literal["hardware", "software", "copy"]
Transport = Literal["tcp", "udp"]


class StreamState(enum.StrEnum):
    """What a user reads off a stream."""

    STARTING = "starting"  # spawned, no frame published yet
    RUNNING = "running"  # frames are flowing
    STALLED = "stalled"  # alive but no new frame for the stall timeout; about to be restarted
    BACKOFF = "backoff"  # exited or failed pre-flight; waiting before the next try
    WAITING_FOR_DEVICE = "waiting_for_device"  # the camera/card is absent; starts when it returns
    FAILED = "failed"  # cannot work without a person (e.g. rpicam-vid not installed); not retried
    STOPPED = "stopped"  # stopped on request (API); enabled in config
    DISABLED = "disabled"  # disabled in config


class ExitCause(enum.StrEnum):
    """Why a publisher exited (or was not started)."""

    DEVICE_BUSY = "device_busy"  # another program holds the camera/card
    DEVICE_GONE = "device_gone"  # the device vanished (unplugged)
    CAMERA_NOT_FOUND = "camera_not_found"  # libcamera sees no such camera
    BUFFER_ALLOCATION = "buffer_allocation"  # CMA / dma-heap exhausted
    RTSP_UNREACHABLE = "rtsp_unreachable"  # the RTSP server refused or is down
    ENCODER_ERROR = "encoder_error"  # the encoder failed to open or broke
    EXECUTABLE_MISSING = "executable_missing"  # rpicam-vid/ffmpeg not installed
    STALLED = "stalled"  # alive but frozen; restarted by the supervisor
    KILLED = "killed"  # killed by a signal the agent did not send (OOM killer, a person)
    STOPPED = "stopped"  # stopped on request
    UNKNOWN = "unknown"


# Human names, next to the words they name: published in GET /api/v1/vocabulary (api/vocabulary.py), so
# Home Assistant shows what the agent says instead of keeping its own copy. A new state or cause needs its
# name here (a test fails otherwise).
STATE_NAMES: dict[StreamState, str] = {
    StreamState.STARTING: "Starting",
    StreamState.RUNNING: "Running",
    StreamState.STALLED: "Stalled",
    StreamState.BACKOFF: "Waiting to retry",
    StreamState.WAITING_FOR_DEVICE: "Waiting for the camera",
    StreamState.FAILED: "Failed",
    StreamState.STOPPED: "Stopped",
    StreamState.DISABLED: "Disabled",
}
# States that need attention (a person may have to act, or the stream is not delivering as it should).
PROBLEM_STATES: frozenset[StreamState] = frozenset(
    {StreamState.STALLED, StreamState.BACKOFF, StreamState.FAILED, StreamState.WAITING_FOR_DEVICE}
)
CAUSE_NAMES: dict[ExitCause, str] = {
    ExitCause.DEVICE_BUSY: "Camera busy",
    ExitCause.DEVICE_GONE: "Camera disconnected",
    ExitCause.CAMERA_NOT_FOUND: "Camera not found",
    ExitCause.BUFFER_ALLOCATION: "Out of camera memory",
    ExitCause.RTSP_UNREACHABLE: "RTSP server unreachable",
    ExitCause.ENCODER_ERROR: "Encoder error",
    ExitCause.EXECUTABLE_MISSING: "Program not installed",
    ExitCause.STALLED: "Stalled",
    ExitCause.KILLED: "Killed",
    ExitCause.STOPPED: "Stopped",
    ExitCause.UNKNOWN: "Unknown",
}


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class SourceConfig:
    kind: SourceKind
    # csi: camera index (0, 1) or libcamera id path ("/base/soc/i2c0mux/i2c@1/imx708@1a")
    camera: int | str | None = None
    # v4l2: a stable path (/dev/v4l/by-id/…), a device id from GET /devices, or /dev/videoN
    device: str | None = None
    # v4l2: the capture format to ask the card for ("mjpeg", "yuyv422", "h264"); None = best available
    input_format: str | None = None
    # test: an ffmpeg lavfi test source ("testsrc2", "smptebars", "mandelbrot")
    pattern: str | None = None


@dataclass(frozen=True)
class SubstreamConfig:
    """A lower-resolution copy of the same camera, published at its own RTSP path."""

    width: int
    height: int
    fps: float
    bitrate: int  # bits per second
    rtsp_path: str
    audio: bool = False  # carries the main stream's sound too (when it has any)


@dataclass(frozen=True)
class StreamConfig:
    id: str  # [a-z0-9_-], unique; also the default RTSP path
    source: SourceConfig
    width: int
    height: int
    fps: float
    bitrate: int  # bits per second
    rtsp_path: str
    name: str | None = None  # shown in Home Assistant; the id when None
    keyframe_interval_s: float = 1.0
    encoder: EncoderChoice = "auto"
    enabled: bool = True
    substream: SubstreamConfig | None = None
    # Picture settings by id (streams/settings.py), absent = the camera's default; select values are strings.
    settings: dict[str, Any] = field(default_factory=dict)
    # V4L2 control name → value (ints; booleans as true/false; menus by index), set live with v4l2-ctl and
    # set again after every (re)start and replug (cards forget them).
    v4l2_controls: dict[str, int | bool] = field(default_factory=dict)
    # The stream's sound (streams/audio.py); None = video only.
    audio: AudioConfig | None = None
    # The part of the picture motion detection looks at: {x, y, width, height}, normalised 0..1 (the whole
    # picture when None). Checked in streams/motion.py region_problem.
    motion_region: dict[str, float] | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class RtspSettings:
    """Where publishers push and where Home Assistant reads."""

    publish_url: str = "rtsp://127.0.0.1:8554"  # base URL; the stream's path is appended
    read_url: str | None = None  # base URL for readers; None = publish_url with this Pi's address
    publish_transport: Transport = "tcp"
    read_transport: Transport = "tcp"
    publish_username: str | None = None
    publish_password: str | None = None
    read_username: str | None = None
    read_password: str | None = None


@dataclass(frozen=True)
class ToolPaths:
    rpicam_vid: str = "rpicam-vid"
    ffmpeg: str = "ffmpeg"
    v4l2_ctl: str = "v4l2-ctl"  # sets V4L2 controls (streams/v4l2_controls.py)
    # The font the test patterns' clock is drawn with; None: a moving box instead (see fonts.py).
    clock_font: str | None = field(default_factory=clock_font)


@dataclass(frozen=True)
class PublishEnvironment:
    """What the command builder needs to know beyond the stream's own config."""

    rtsp: RtspSettings
    hardware_h264_encoder: bool  # the bcm2835-codec encoder node exists (Pi 0–4)
    soc: str | None = None  # "BCM2711", "BCM2712" (Pi 5: no hardware H.264 encoder)
    device_path: str | None = None  # v4l2 sources: the resolved device node to open
    tools: ToolPaths = ToolPaths()
    # v4l2 sources: the card's controls (GET /devices form): orientation goes to its flip/rotate controls
    # when it has them, else to an ffmpeg filter.
    device_controls: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Where the publisher leaves each stream's newest key frame for snapshots (streams/keyframes.py);
    # None = no key-frame tap (snapshots then read the stream over RTSP).
    keyframe_dir: str | None = None
    # The stream's sound, resolved to an ALSA device now present (streams/audio.py); None = video only.
    audio: AudioInput | None = None
    # Where the publisher writes the small grey picture motion detection reads (streams/motion_tap.py);
    # None = no motion output even where a stream asks for motion detection.
    motion_dir: str | None = None


# ---------------------------------------------------------------------------------------------- pipelines


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # short label for logs: "rpicam-vid", "ffmpeg"
    argv: tuple[str, ...]


@dataclass(frozen=True)
class MotionOutput:
    """The publisher's extra output for motion detection: raw grey frames of ``width`` x ``height`` into
    the FIFO at ``path`` (streams/motion_tap.py), ``fps`` of them a second (the key-frame rate where only
    key frames are decoded)."""

    path: str
    width: int
    height: int
    fps: float
    key_frames_only: bool = False

    @property
    def frame_bytes(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class PipelineSpec:
    stream_id: str
    processes: tuple[ProcessSpec, ...]  # stdout of each feeds stdin of the next
    encoding: Encoding  # what encodes the main stream: hardware, software (libx264) or copy
    main_url: str  # publish URL (may hold credentials: never log it, see redacted_argv)
    sub_url: str | None = None
    device_path: str | None = None  # the device node the pipeline opens, if any
    # The last process is an ffmpeg writing ``-progress pipe:1`` key=value blocks to its stdout.
    progress_process: int = -1
    # The last process's stdin carries the main stream already encoded, and it passes it through (the
    # camera's hardware H.264 into ``-c:v copy``): the bytes it reads are the main stream's, which is how
    # the bitrate is measured where ffmpeg encodes nothing itself (no -vstats frame sizes).
    main_stream_on_stdin: bool = False
    # Whether the stream's sound is in this pipeline, and if not, why (streams/audio.py).
    audio_status: AudioStatus = AUDIO_OFF
    # The grey picture for motion detection, when the stream has motion detection on (streams/motion.py).
    motion: MotionOutput | None = None


@dataclass
class Progress:
    """What the publisher's ffmpeg reports about itself (``-progress``), updated about once a second."""

    frames: int | None = None
    fps: float | None = None
    bitrate_bps: float | None = None
    out_time_s: float | None = None
    speed: float | None = None
    updated_at: float | None = None  # time.monotonic() of the last block that advanced ``frames``
    blocks: int = 0  # progress blocks received
    # Measured by the agent from the bytes ffmpeg reports written (``-progress`` total_size, or the
    # per-frame ``-vstats`` sizes where the output is RTSP and total_size is N/A), over media time.
    measured_bitrate_bps: float | None = None
    size_mark: tuple[float, int] | None = None  # (media time s, bytes) the bitrate is measured from
    # The sound's loudness (streams/audio.py: the publisher's own level meter, two values a second).
    sound_level_dbfs: float | None = None
    # Levels not yet given to the sound detector, (time.time(), dBFS); drained by the supervisor.
    sound_levels: list[tuple[float, float]] = field(default_factory=list)
    # Why the publisher's sound input stopped while it runs (audio.sound_lost), for the supervisor.
    sound_lost: str | None = None


class LogRing:
    """The last ``capacity`` stderr lines of a pipeline, each tagged with the process that wrote it."""

    def __init__(self, capacity: int = 300) -> None:
        self._lines: deque[tuple[float, str, str]] = deque(maxlen=capacity)

    def append(self, process: str, line: str) -> None:
        self._lines.append((time.time(), process, line))

    def tail(self, count: int | None = None) -> list[tuple[float, str, str]]:
        lines = list(self._lines)
        return lines if count is None else lines[-count:] if count > 0 else []

    def text_tail(self, count: int = 20) -> list[str]:
        return [f"{process}: {line}" for _, process, line in self.tail(count)]

    def clear(self) -> None:
        self._lines.clear()

    def __len__(self) -> int:
        return len(self._lines)


@dataclass(frozen=True)
class ProcessExit:
    name: str
    pid: int
    returncode: int | None  # None: still running when reaped (should not happen)
    signal: int | None  # the signal that ended it, if any (returncode < 0)


@dataclass(frozen=True)
class ExitInfo:
    """How a pipeline ended."""

    processes: tuple[ProcessExit, ...]
    first: str | None  # the process that exited first (the likely culprit)
    runtime_s: float
    requested: bool  # the agent stopped it (stop/restart/stall), as opposed to it dying
    log_tail: tuple[str, ...] = field(default_factory=tuple)


# An exit's context: (publisher pids, exit cause) → (the context JSON, the contributing condition or None).
# The agent wires the telemetry's builder here (telemetry/exit_context.py).
ExitContextHook = Callable[[tuple[int, ...], str], tuple[dict[str, Any] | None, str | None]]


def no_exit_context(pids: tuple[int, ...], cause: str) -> tuple[dict[str, Any] | None, str | None]:
    return None, None


# (CmaFree, CmaTotal) in bytes now, None where unknown: the agent wires the telemetry's reader here, so
# streams never read /proc/meminfo themselves.
CmaReader = Callable[[], tuple[int | None, int | None]]


@dataclass(frozen=True)
class PreflightResult:
    ok: bool
    cause: ExitCause | None = None
    message: str | None = None
    cma_free_bytes: int | None = None


@dataclass
class LastExit:
    """Why a supervised process last ended: a stream's publisher or the RTSP server."""

    at: float
    cause: ExitCause
    summary: str
    evidence: str | None
    process: str | None
    exit_code: int | None
    signal: str | None
    runtime_s: float
    log_tail: list[str]
    cma_free_bytes: int | None = None
    # The Pi's condition at the exit and what it points to (telemetry/exit_context.py); None for the RTSP
    # server's exits and where the agent gives no context hook.
    context: dict[str, Any] | None = None
    contributing_condition: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 3),
            "cause": str(self.cause),
            "summary": self.summary,
            "evidence": self.evidence,
            "process": self.process,
            "exit_code": self.exit_code,
            "signal": self.signal,
            "runtime_s": round(self.runtime_s, 3),
            "cma_free_bytes": self.cma_free_bytes,
            "context": self.context,
            "contributing_condition": self.contributing_condition,
        }

    @classmethod
    def of(
        cls,
        info: ExitInfo,
        *,
        cause: ExitCause,
        summary: str,
        evidence: str | None,
        at: float,
        cma_free_bytes: int | None = None,
    ) -> LastExit:
        """How a pipeline ended, told by the process that exited first (the likely culprit)."""
        culprit = next((p for p in info.processes if p.name == info.first), None)
        return cls(
            at=at,
            cause=cause,
            summary=summary,
            evidence=evidence,
            process=info.first,
            exit_code=culprit.returncode if culprit is not None and culprit.signal is None else None,
            signal=signal.Signals(culprit.signal).name if culprit is not None and culprit.signal else None,
            runtime_s=info.runtime_s,
            log_tail=list(info.log_tail),
            cma_free_bytes=cma_free_bytes,
        )
