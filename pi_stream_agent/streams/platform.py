"""The one view of this Pi the stream manager is given (the agent wires it): the discovered devices and the
board, CMA, where publishers are reported for CPU/RSS, and the answers derived from those that a publisher
needs — which device node a stream opens, whether its card is plugged in, which CSI camera index it means,
and the :class:`~.model.PublishEnvironment` its pipeline is built in.

Nothing here reads the kernel by itself: the devices document, the board facts and CMA come from the
discovery registry and the telemetry's readers through the callables the agent passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from pi_stream_agent.rootfs import Root
from pi_stream_agent.streams.audio import AudioInput, AudioStatus, resolve_audio
from pi_stream_agent.streams.fit import find_capture_device, find_csi_camera
from pi_stream_agent.streams.model import (
    CmaReader,
    ExitContextHook,
    PublishEnvironment,
    RtspSettings,
    StreamConfig,
    ToolPaths,
    no_exit_context,
)


class ProcessTracker(Protocol):
    """Where publishers are reported for CPU/RSS (the telemetry's process watch, wired by the agent)."""

    def track(self, name: str, pid: int) -> None: ...

    def untrack(self, name: str) -> None: ...


@dataclass(frozen=True)
class Platform:
    """This Pi as the streams see it."""

    devices: Callable[[], dict[str, Any]]  # GET /devices JSON (kept current by hot-plug)
    board: Callable[[], dict[str, Any]]  # hardware_h264_encoder, camera_buffers_from_cma, soc
    processes: ProcessTracker
    root: Root  # where device nodes are looked for (a fixture tree in tests)
    cma: CmaReader = lambda: (None, None)  # (CmaFree, CmaTotal): the telemetry's reader
    simulated: bool = False
    exit_context: ExitContextHook = no_exit_context  # the telemetry's view of an exit (exit_context.py)

    def device_path(self, config: StreamConfig) -> str | None:
        """The node a V4L2 stream opens, as the Pi sees it: the card's stable path when discovery knows
        it, else the configured path; None for other sources or an unknown device id."""
        if config.source.kind != "v4l2" or config.source.device is None:
            return None
        found = find_capture_device(self.devices(), config.source.device)
        if found is not None:
            return str(found.get("stable_path") or found["path"])
        return config.source.device if config.source.device.startswith("/") else None

    def device_present(self, config: StreamConfig) -> bool:
        """Whether the stream's source is there now (CSI cameras and test patterns do not come and go)."""
        if config.source.kind != "v4l2":
            return True
        if config.source.device and find_capture_device(self.devices(), config.source.device):
            return True
        path = self.device_path(config)
        return path is not None and self.root.path(path).exists()

    def with_camera_index(self, config: StreamConfig) -> StreamConfig:
        """rpicam-vid's --camera takes an index; the config may name the camera by its libcamera id
        (stable when a second camera is added), so look the index up in the current listing."""
        if config.source.kind != "csi" or not isinstance(config.source.camera, str):
            return config
        camera = find_csi_camera(self.devices(), config.source.camera)
        if camera is None:
            raise ValueError(
                f"camera {config.source.camera!r} is not connected (rpicam-hello --list-cameras)"
            )
        return replace(config, source=replace(config.source, camera=int(camera["index"])))

    def publish_environment(
        self, config: StreamConfig, rtsp: RtspSettings, tools: ToolPaths
    ) -> tuple[StreamConfig, PublishEnvironment]:
        """The stream with its camera index resolved, and what its pipeline is built in."""
        config = self.with_camera_index(config)
        board = self.board()
        device_path = self.device_path(config)
        device = (
            find_capture_device(self.devices(), config.source.device)
            if config.source.kind == "v4l2"
            else None
        )
        return config, PublishEnvironment(
            rtsp=rtsp,
            # A simulated Pi's encoder exists only on paper: the host encodes in software.
            hardware_h264_encoder=bool(board.get("hardware_h264_encoder")) and not self.simulated,
            soc=board.get("soc"),
            # The publisher opens the node below the root (a fixture tree in tests).
            device_path=str(self.root.path(device_path))
            if device_path and not self.root.is_real
            else device_path,
            tools=tools,
            device_controls=dict((device or {}).get("controls") or {}),
        )

    def audio_for(self, config: StreamConfig) -> tuple[AudioInput | None, AudioStatus]:
        """The stream's sound device as present now (``auto``: its capture card's own), or why none."""
        capture = (
            find_capture_device(self.devices(), config.source.device)
            if config.source.kind == "v4l2"
            else None
        )
        audio, status = resolve_audio(
            config.audio,
            list(self.devices().get("audio_devices") or []),
            str(capture["id"]) if capture else None,
        )
        if audio is not None and self.simulated:
            audio = replace(audio, simulated=True)  # a simulated card's sound: ffmpeg's test tone
        return audio, status
