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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.rootfs import Root
from pi_stream_agent.streams.fit import validate_streams
from pi_stream_agent.streams.keyframes import make_tap_dir, remove_tap_dir, remove_taps, tap_path
from pi_stream_agent.streams.model import (
    PipelineSpec,
    PreflightResult,
    RtspSettings,
    StreamConfig,
    StreamState,
    ToolPaths,
)
from pi_stream_agent.streams.pipelines import build_pipeline
from pi_stream_agent.streams.platform import Platform
from pi_stream_agent.streams.preflight import check_rtsp, preflight
from pi_stream_agent.streams.problems import Problem, StreamConfigError
from pi_stream_agent.streams.process import kill_leftovers
from pi_stream_agent.streams.schema import parse_stream
from pi_stream_agent.streams.serialize import to_json
from pi_stream_agent.streams.snapshot import Snapshot, SnapshotError, SnapshotService
from pi_stream_agent.streams.store import StreamNotFoundError, StreamStore
from pi_stream_agent.streams.supervisor import StreamSupervisor, SupervisorHooks, SupervisorSettings
from pi_stream_agent.streams.urls import local_read_url, read_urls

_LOGGER = logging.getLogger(__name__)


class UnknownStreamError(KeyError):
    """No stream with that id."""


class StreamManager:
    def __init__(
        self,
        *,
        store: StreamStore,
        rtsp: RtspSettings,
        root: Root,
        bus: EventBus,
        platform: Platform,
        agent_id: str,
        settings: SupervisorSettings | None = None,
        tools: ToolPaths | None = None,
        snapshots: SnapshotService | None = None,
        latest_sample: Callable[[], dict[str, Any] | None] = lambda: None,
        server_ready: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._rtsp = rtsp
        self._root = root
        self._bus = bus
        self._platform = platform
        self._processes = platform.processes
        self._agent_id = agent_id
        self._settings = settings or SupervisorSettings()
        self._tools = tools or ToolPaths()
        self.snapshots = snapshots or SnapshotService(transport=rtsp.read_transport)
        self._latest_sample = latest_sample
        self._server_ready = server_ready
        self._supervisors: dict[str, StreamSupervisor] = {}
        self._tracked: dict[str, list[str]] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = asyncio.Lock()
        # Where publishers leave their newest key frames for snapshots (streams/keyframes.py); made at
        # start, so a manager that never starts leaves nothing behind.
        self._keyframe_dir: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._keyframe_dir = await asyncio.to_thread(make_tap_dir)
        except OSError as err:  # snapshots still work, over RTSP
            _LOGGER.warning("No key-frame tap for snapshots (%s); they will read the streams over RTSP", err)
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
        if self._keyframe_dir is not None:
            await asyncio.to_thread(remove_tap_dir, self._keyframe_dir)
            self._keyframe_dir = None

    def _add(self, config: StreamConfig) -> None:
        supervisor = StreamSupervisor(config, self._hooks(), self._bus, self._settings)
        self._supervisors[config.id] = supervisor
        supervisor.start()

    def _hooks(self) -> SupervisorHooks:
        return SupervisorHooks(
            build_spec=self._build_spec,
            preflight=self._preflight,
            device_present=self._platform.device_present,
            rtsp_reachable=self._rtsp_reachable,
            cma_free_bytes=self._cma_free_bytes,
            on_pids=self._track,
            process_usage=self._process_usage,
            server_ready=self._server_ready,
            marker=lambda stream_id: f"{self._agent_id}:{stream_id}",
        )

    # -- hooks -------------------------------------------------------------------------------------------

    def _build_spec(self, config: StreamConfig) -> PipelineSpec:
        config, env = self._platform.publish_environment(config, self._rtsp, self._tools)
        spec = build_pipeline(config, replace(env, keyframe_dir=self._keyframe_dir))
        # The spec keeps the device path as the Pi sees it, for pre-flight checks and messages.
        device_path = self._platform.device_path(config)
        return replace(spec, device_path=device_path) if spec.device_path else spec

    async def _preflight(self, config: StreamConfig, spec: PipelineSpec) -> PreflightResult:
        return await preflight(
            spec,
            rtsp_publish_url=self._rtsp.publish_url,
            root=self._root,
            cma=self._platform.cma,
            board=self._platform.board(),
            width=config.width,
            height=config.height,
            check_device=config.source.kind == "v4l2",
        )

    async def _rtsp_reachable(self) -> bool:
        return await check_rtsp(self._rtsp.publish_url, 1.0) is None

    def _cma_free_bytes(self) -> int | None:
        return self._platform.cma()[0]

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
            stream_id = str(event.data.get("stream_id"))
            self.snapshots.invalidate(stream_id)
            if event.data.get("state") == StreamState.STARTING and self._keyframe_dir is not None:
                remove_taps(self._keyframe_dir, stream_id)  # nor may the old publisher's key frame show

    # -- reading -----------------------------------------------------------------------------------------

    def _supervisor(self, stream_id: str) -> StreamSupervisor:
        try:
            return self._supervisors[stream_id]
        except KeyError:
            raise UnknownStreamError(stream_id) from None

    @property
    def keyframe_dir(self) -> str | None:
        """Where the publishers leave their newest key frames (None: no tap, snapshots read RTSP)."""
        return self._keyframe_dir

    def ids(self) -> list[str]:
        return list(self._supervisors)

    def status(self, stream_id: str, *, reader_host: str) -> dict[str, Any]:
        """One stream's state, config and the URLs a reader at ``reader_host``'s side should use."""
        supervisor = self._supervisor(stream_id)
        config = supervisor.config
        status = supervisor.status()
        spec = supervisor.spec
        urls = read_urls(config, self._rtsp, reader_host)
        status.update(
            {
                "config": to_json(config),
                "urls": urls,
                "read_transport": self._rtsp.read_transport,  # what a reader of ``urls`` should use
                "software_encoded": spec.encoding == "software" if spec is not None else None,
            }
        )
        return status

    def statuses(self, *, reader_host: str) -> list[dict[str, Any]]:
        return [self.status(stream_id, reader_host=reader_host) for stream_id in self._supervisors]

    def read_credentials(self) -> dict[str, str] | None:
        if self._rtsp.read_username is None:
            return None
        return {"username": self._rtsp.read_username, "password": self._rtsp.read_password or ""}

    def _process_usage(self) -> Mapping[str, Mapping[str, Any]]:
        sample = self._latest_sample() or {}
        processes: Mapping[str, Mapping[str, Any]] = sample.get("processes") or {}
        return processes

    def stats(self, processes: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Every stream's numbers for a telemetry sample, its publishers' CPU/RSS from that sample's
        ``processes`` (so a pushed sample never mixes two readings)."""
        return {stream_id: s.stats(processes) for stream_id, s in self._supervisors.items()}

    def logs(self, stream_id: str, lines: int) -> list[dict[str, Any]]:
        ring = self._supervisor(stream_id).log
        return [
            {"at": round(at, 3), "process": process, "line": line} for at, process, line in ring.tail(lines)
        ]

    async def snapshot(
        self, stream_id: str, *, substream: bool = False, max_age_s: float | None = None
    ) -> Snapshot:
        """A JPEG of the stream (or its substream): from its key-frame tap when fresh, else read over RTSP.
        Raises :class:`SnapshotError` at once, with a plain reason, when no publisher is running."""
        supervisor = self._supervisor(stream_id)
        config = supervisor.config
        if substream and config.substream is None:
            raise SnapshotError(
                "no_substream", f"{config.display_name} has no substream; ask for the main stream's picture"
            )
        if supervisor.state not in (StreamState.RUNNING, StreamState.STALLED, StreamState.STARTING):
            raise SnapshotError(
                "stream_unavailable",
                f"{config.display_name} is not running ({supervisor.state.value.replace('_', ' ')}); "
                "start it to get a picture",
            )
        tap = tap_path(self._keyframe_dir, stream_id, substream=substream) if self._keyframe_dir else None
        return await self.snapshots.get(
            stream_id,
            local_read_url(config, self._rtsp, substream=substream),
            substream=substream,
            max_age_s=max_age_s,
            tap=tap,
            # Two key frames may be missed (a busy moment) before the tap counts as stale.
            tap_fresh_s=2 * config.keyframe_interval_s + 1.0,
        )

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

    async def upsert(self, data: Mapping[str, Any]) -> tuple[StreamConfig, list[Problem]]:
        """Create or replace a stream (validated with all the others, stored atomically, applied)."""
        async with self._lock:
            config = await asyncio.get_running_loop().run_in_executor(
                None, self._store.upsert, dict(data), self._validator
            )
            warnings = list(self._store.warnings)
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
