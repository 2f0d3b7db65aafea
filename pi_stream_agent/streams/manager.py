"""All streams of one agent: their supervisors, their configuration, snapshots and logs.

The API talks to this class only. It owns the supervisors (one per configured stream), applies config
changes (validated against the discovered devices, stored atomically, then only the changed streams are
restarted), routes hot-plug events to the streams that wait for a device, and reports each stream's state
with the URLs a reader should use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.rootfs import Root
from pi_stream_agent.streams.commands import build_pipeline, read_url
from pi_stream_agent.streams.fit import find_capture_device, find_csi_camera, validate_streams
from pi_stream_agent.streams.model import (
    PipelineSpec,
    PreflightResult,
    PublishEnvironment,
    RtspSettings,
    StreamConfig,
    StreamState,
    ToolPaths,
)
from pi_stream_agent.streams.preflight import check_rtsp, preflight
from pi_stream_agent.streams.problems import Problem, StreamConfigError
from pi_stream_agent.streams.process import kill_leftovers
from pi_stream_agent.streams.schema import parse_stream
from pi_stream_agent.streams.serialize import to_json
from pi_stream_agent.streams.snapshot import Snapshot, SnapshotService
from pi_stream_agent.streams.store import StreamNotFoundError, StreamStore
from pi_stream_agent.streams.supervisor import StreamSupervisor, SupervisorHooks, SupervisorSettings
from pi_stream_agent.telemetry.meminfo import parse_meminfo
from pi_stream_agent.telemetry.system import ProcessWatch

_LOGGER = logging.getLogger(__name__)


class UnknownStreamError(KeyError):
    """No stream with that id."""


@dataclass(frozen=True)
class Platform:
    """What the manager needs to know about the board and its devices, refreshed on demand."""

    devices: Callable[[], dict[str, Any]]  # GET /devices JSON (kept current by hot-plug)
    board: Callable[[], dict[str, Any]]  # hardware_h264_encoder, camera_buffers_from_cma, soc
    simulated: bool = False


class StreamManager:
    def __init__(
        self,
        *,
        store: StreamStore,
        rtsp: RtspSettings,
        root: Root,
        bus: EventBus,
        platform: Platform,
        processes: ProcessWatch,
        agent_id: str,
        settings: SupervisorSettings | None = None,
        tools: ToolPaths | None = None,
        snapshots: SnapshotService | None = None,
        latest_sample: Callable[[], dict[str, Any] | None] = lambda: None,
    ) -> None:
        self._store = store
        self._rtsp = rtsp
        self._root = root
        self._bus = bus
        self._platform = platform
        self._processes = processes
        self._agent_id = agent_id
        self._settings = settings or SupervisorSettings()
        self._tools = tools or ToolPaths()
        self.snapshots = snapshots or SnapshotService(transport=rtsp.read_transport)
        self._latest_sample = latest_sample
        self._supervisors: dict[str, StreamSupervisor] = {}
        self._tracked: dict[str, list[str]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        killed = await asyncio.to_thread(kill_leftovers, self._agent_id)
        if killed:
            _LOGGER.warning(
                "Stopped %d publisher process(es) left over from a previous run: %s", len(killed), killed
            )
        self._unsubscribe = self._bus.subscribe(self._on_event)
        for config in self._store.load():
            self._add(config)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        supervisors, self._supervisors = list(self._supervisors.values()), {}
        await asyncio.gather(*(supervisor.close() for supervisor in supervisors), return_exceptions=True)
        for stream_id in list(self._tracked):
            self._track(stream_id, {})
        await self.snapshots.close()

    def _add(self, config: StreamConfig) -> None:
        supervisor = StreamSupervisor(config, self._hooks(), self._bus, self._settings)
        self._supervisors[config.id] = supervisor
        supervisor.start()

    def _hooks(self) -> SupervisorHooks:
        return SupervisorHooks(
            build_spec=self._build_spec,
            preflight=self._preflight,
            device_present=self._device_present,
            rtsp_reachable=self._rtsp_reachable,
            cma_free_bytes=self._cma_free_bytes,
            on_pids=self._track,
            marker=lambda stream_id: f"{self._agent_id}:{stream_id}",
        )

    # -- hooks -------------------------------------------------------------------------------------------

    def _device_path(self, config: StreamConfig) -> str | None:
        if config.source.kind != "v4l2" or config.source.device is None:
            return None
        found = find_capture_device(self._platform.devices(), config.source.device)
        if found is not None:
            return str(found.get("stable_path") or found["path"])
        return config.source.device if config.source.device.startswith("/") else None

    def _device_present(self, config: StreamConfig) -> bool:
        if config.source.kind != "v4l2":
            return True  # CSI cameras and test patterns do not come and go
        if config.source.device and find_capture_device(self._platform.devices(), config.source.device):
            return True
        path = self._device_path(config)
        return path is not None and self._root.path(path).exists()

    def _build_spec(self, config: StreamConfig) -> PipelineSpec:
        board = self._platform.board()
        if config.source.kind == "csi" and isinstance(config.source.camera, str):
            # rpicam-vid's --camera takes an index; the config may name the camera by its libcamera id
            # (stable when a second camera is added), so look the index up in the current listing.
            camera = find_csi_camera(self._platform.devices(), config.source.camera)
            if camera is None:
                raise ValueError(
                    f"camera {config.source.camera!r} is not connected (rpicam-hello --list-cameras)"
                )
            config = replace(config, source=replace(config.source, camera=int(camera["index"])))
        device_path = self._device_path(config)
        env = PublishEnvironment(
            rtsp=self._rtsp,
            # A simulated Pi's encoder exists only on paper: the host encodes in software.
            hardware_h264_encoder=bool(board.get("hardware_h264_encoder")) and not self._platform.simulated,
            soc=board.get("soc"),
            # The publisher opens the node below the root (a fixture tree in tests); the spec keeps the
            # path as the Pi sees it, for pre-flight checks and messages.
            device_path=str(self._root.path(device_path))
            if device_path and not self._root.is_real
            else device_path,
            tools=self._tools,
        )
        spec = build_pipeline(config, env)
        return replace(spec, device_path=device_path) if spec.device_path else spec

    async def _preflight(self, config: StreamConfig, spec: PipelineSpec) -> PreflightResult:
        return await preflight(
            spec,
            rtsp_publish_url=self._rtsp.publish_url,
            root=self._root,
            board=self._platform.board(),
            width=config.width,
            height=config.height,
            check_device=config.source.kind == "v4l2",
        )

    async def _rtsp_reachable(self) -> bool:
        return await check_rtsp(self._rtsp.publish_url, 1.0) is None

    def _cma_free_bytes(self) -> int | None:
        try:
            return parse_meminfo(self._root.read_text("proc/meminfo")).get("CmaFree")
        except OSError:
            return None

    def _track(self, stream_id: str, pids: Mapping[str, int]) -> None:
        """Publishers join the telemetry's per-process CPU and RSS as ``<stream>/<program>``."""
        for name in self._tracked.pop(stream_id, []):
            self._processes.untrack(name)
        names = []
        for program, pid in pids.items():
            name = f"{stream_id}/{program}"
            self._processes.track(name, pid)
            names.append(name)
        if names:
            self._tracked[stream_id] = names

    def _on_event(self, event: Event) -> None:
        if event.type in ("device_added", "device_removed"):
            for supervisor in self._supervisors.values():
                if supervisor.config.source.kind == "v4l2":
                    supervisor.device_changed()
        elif event.type == "stream_state" and event.data.get("state") in (
            StreamState.STARTING,
            StreamState.STALLED,
        ):
            # A new publisher: a cached picture would be from the old one.
            self.snapshots.invalidate(str(event.data.get("stream_id")))

    # -- reading -----------------------------------------------------------------------------------------

    def _supervisor(self, stream_id: str) -> StreamSupervisor:
        try:
            return self._supervisors[stream_id]
        except KeyError:
            raise UnknownStreamError(stream_id) from None

    def ids(self) -> list[str]:
        return list(self._supervisors)

    def status(self, stream_id: str, *, reader_host: str) -> dict[str, Any]:
        """One stream's state, config and the URLs a reader at ``reader_host``'s side should use."""
        supervisor = self._supervisor(stream_id)
        config = supervisor.config
        status = supervisor.status()
        spec = supervisor.spec
        urls = {"main": read_url(config, self._rtsp, reader_host)}
        if config.substream is not None:
            urls["sub"] = read_url(config, self._rtsp, reader_host, substream=True)
        status.update(
            {
                "config": to_json(config),
                "urls": urls,
                "read_transport": self._rtsp.read_transport,  # what a reader of ``urls`` should use
                "software_encoded": spec.encoding == "software" if spec is not None else None,
                "publishers": self._publisher_usage(stream_id),
            }
        )
        return status

    def statuses(self, *, reader_host: str) -> list[dict[str, Any]]:
        return [self.status(stream_id, reader_host=reader_host) for stream_id in self._supervisors]

    def read_credentials(self) -> dict[str, str] | None:
        if self._rtsp.read_username is None:
            return None
        return {"username": self._rtsp.read_username, "password": self._rtsp.read_password or ""}

    def _publisher_usage(self, stream_id: str) -> dict[str, Any]:
        sample = self._latest_sample() or {}
        processes = sample.get("processes") or {}
        prefix = f"{stream_id}/"
        return {name[len(prefix) :]: usage for name, usage in processes.items() if name.startswith(prefix)}

    def logs(self, stream_id: str, lines: int) -> list[dict[str, Any]]:
        ring = self._supervisor(stream_id).log
        return [
            {"at": round(at, 3), "process": process, "line": line} for at, process, line in ring.tail(lines)
        ]

    async def snapshot(self, stream_id: str, *, max_age_s: float | None = None) -> Snapshot:
        config = self._supervisor(stream_id).config
        # The agent reads its own RTSP server locally: the read base if one is set, else the publish base.
        local = self._rtsp.read_url or self._rtsp.publish_url
        host = urlsplit(local).hostname
        url = read_url(config, self._rtsp, host or "127.0.0.1")
        return await self.snapshots.get(stream_id, url, max_age_s=max_age_s)

    # -- commands ----------------------------------------------------------------------------------------

    def start_stream(self, stream_id: str) -> None:
        self._supervisor(stream_id).request_start()

    def stop_stream(self, stream_id: str) -> None:
        self._supervisor(stream_id).request_stop()

    def restart_stream(self, stream_id: str) -> None:
        self._supervisor(stream_id).request_restart()

    def restart_all(self) -> list[str]:
        for supervisor in self._supervisors.values():
            supervisor.request_restart()
        return list(self._supervisors)

    # -- configuration -----------------------------------------------------------------------------------

    def _validator(self, streams: Sequence[StreamConfig]) -> list[Problem]:
        return validate_streams(
            streams, self._platform.devices(), self._platform.board(), simulated=self._platform.simulated
        )

    async def upsert(self, data: Mapping[str, Any]) -> tuple[StreamConfig, list[str]]:
        """Create or replace a stream (validated with all the others, stored atomically, applied)."""
        async with self._lock:
            config = await asyncio.get_running_loop().run_in_executor(
                None, self._store.upsert, dict(data), self._validator
            )
            warnings = [str(problem) for problem in self._store.warnings]
            existing = self._supervisors.get(config.id)
            if existing is not None:
                existing.update_config(config)
            else:
                self._add(config)
            return config, warnings

    async def remove(self, stream_id: str) -> None:
        async with self._lock:
            if stream_id not in self._supervisors:
                raise UnknownStreamError(stream_id)
            with contextlib.suppress(
                StreamNotFoundError
            ):  # in memory only (should not happen): remove anyway
                await asyncio.get_running_loop().run_in_executor(None, self._store.remove, stream_id)
            supervisor = self._supervisors.pop(stream_id)
            await supervisor.close()
            self._track(stream_id, {})
            self.snapshots.invalidate(stream_id)

    def validate(self, data: Mapping[str, Any]) -> list[Problem]:
        """Problems the stream would have with the current set, without storing anything."""
        try:
            candidate = parse_stream(dict(data))
        except StreamConfigError as exc:
            return list(exc.problems)
        others = [s.config for s in self._supervisors.values() if s.config.id != candidate.id]
        return self._validator([*others, candidate])
