"""All streams of one agent: their supervisors, their configuration, snapshots and logs.

The API talks to this class only. It owns the supervisors (one per configured stream), applies config
changes (validated against the discovered devices, stored atomically, then only the changed streams are
restarted), routes hot-plug events to the streams that wait for a device, and reports each stream's state
with the URLs a reader should use.

Picture controls (``controls.py`` says what a stream's camera offers): a change is checked against the
camera, stored atomically, then applied — V4L2 controls live with ``v4l2-ctl`` (no restart), everything
rpicam-vid or ffmpeg reads at start by a fast restart of the pipeline (main and substream together). A
card's controls are set again whenever its stream (re)starts running, since cards forget them when
replugged. Every change is announced as a ``stream_controls`` event carrying the controls document.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.rootfs import Root
from pi_stream_agent.soc import camera_isp_is_pisp
from pi_stream_agent.streams import v4l2_controls as v4l2
from pi_stream_agent.streams.audio import audio_to_json
from pi_stream_agent.streams.controls import (
    Offer,
    build_offer,
    check_change,
    document,
    driver_orientation,
    tuning_files,
)
from pi_stream_agent.streams.fit import find_capture_device, find_csi_camera, validate_streams
from pi_stream_agent.streams.keyframes import (
    make_tap_dir,
    remove_tap_dir,
    remove_taps,
    tap_mtime_ns,
    tap_path,
)
from pi_stream_agent.streams.model import (
    PipelineSpec,
    PreflightResult,
    RtspSettings,
    StreamConfig,
    StreamState,
    ToolPaths,
)
from pi_stream_agent.streams.motion_service import MotionService, MotionSnapshot
from pi_stream_agent.streams.pipelines import build_pipeline
from pi_stream_agent.streams.platform import Platform
from pi_stream_agent.streams.preflight import check_rtsp, preflight
from pi_stream_agent.streams.problems import Problem, StreamConfigError, stream_label
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


class NoAutofocusError(Exception):
    """The stream's camera has no autofocus (the message says so plainly)."""


STREAM_CONTROLS_EVENT = "stream_controls"


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
        self._autofocus_once: set[str] = set()  # streams whose next start runs one autofocus
        self._v4l2_values: dict[str, dict[str, int]] = {}  # the card's values read back after a set
        self._known_cards: dict[str, Mapping[str, Any]] = {}  # a stream's card as last seen
        self._background: set[asyncio.Task[None]] = set()
        # Where publishers leave their newest key frames for snapshots (streams/keyframes.py); made at
        # start, so a manager that never starts leaves nothing behind.
        self._keyframe_dir: str | None = None
        self.motion = MotionService(bus, self._motion_picture)

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
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        supervisors, self._supervisors = list(self._supervisors.values()), {}
        await asyncio.gather(*(supervisor.close() for supervisor in supervisors), return_exceptions=True)
        for stream_id in list(self._tracked):
            self._track(stream_id, {})
        await self.motion.close()
        await self.snapshots.close()
        if self._keyframe_dir is not None:
            await asyncio.to_thread(remove_tap_dir, self._keyframe_dir)
            self._keyframe_dir = None

    def _add(self, config: StreamConfig) -> None:
        supervisor = StreamSupervisor(config, self._hooks(), self._bus, self._settings)
        self._supervisors[config.id] = supervisor
        self.motion.configure(config)
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
            exit_context=self._platform.exit_context,
            pipeline_starting=self.motion.pipeline_starting,
            pipeline_ended=self.motion.pipeline_ended,
            sound_available=lambda config: self._platform.audio_for(config)[0] is not None,
        )

    # -- hooks -------------------------------------------------------------------------------------------

    def _build_spec(self, config: StreamConfig) -> PipelineSpec:
        if config.id in self._autofocus_once:
            # rpicam-vid takes no trigger while it runs: this one start focuses continuously (the lens
            # finds focus within the first frames); the configured mode returns with the next start.
            self._autofocus_once.discard(config.id)
            config = replace(config, settings={**config.settings, "af_mode": "continuous"})
        config, env = self._platform.publish_environment(config, self._rtsp, self._tools)
        audio, audio_status = self._platform.audio_for(config)
        # The motion FIFO lives beside the key frames: the agent's private runtime directory.
        env = replace(env, keyframe_dir=self._keyframe_dir, motion_dir=self._keyframe_dir, audio=audio)
        spec = build_pipeline(config, env)
        spec = replace(spec, audio_status=audio_status)
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
        if event.type in ("audio_device_added", "audio_device_removed"):
            for supervisor in self._supervisors.values():
                supervisor.audio_devices_changed()
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
        if event.type == "stream_state" and event.data.get("state") == StreamState.RUNNING:
            running = self._supervisors.get(str(event.data.get("stream_id")))
            if running is not None and self._live_values(running.config):
                # Cards forget their controls on replug or reset: set the stored ones again.
                self._spawn(self._reapply(running.config.id))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- picture controls --------------------------------------------------------------------------------

    def _offer(self, config: StreamConfig) -> Offer:
        devices = self._platform.devices()
        if config.source.kind == "csi":
            camera = find_csi_camera(devices, config.source.camera if config.source.camera is not None else 0)
            board = self._platform.board()
            pisp = camera_isp_is_pisp(board.get("soc"), board.get("hardware_h264_encoder"))
            model = camera.get("model") if camera is not None else None
            tuning = tuning_files(self._root, str(model) if model else None, pisp)
            return build_offer(config, camera=camera, tuning=tuning)
        if config.source.kind == "v4l2":
            # An unplugged card keeps the controls it last reported: its settings stay readable and
            # changeable, and are set when it is back.
            device = find_capture_device(devices, config.source.device)
            if device is not None:
                self._known_cards[config.id] = device
            return build_offer(config, device=device or self._known_cards.get(config.id))
        return build_offer(config)

    def _live_values(self, config: StreamConfig) -> dict[str, int | bool]:
        """What v4l2-ctl sets on the stream's card: its stored controls, and its flips where they turn the
        picture."""
        if config.source.kind != "v4l2":
            return {}
        values: dict[str, int | bool] = dict(config.v4l2_controls)
        if self._offer(config).orientation == "driver":
            values.update(driver_orientation(config))
        return values

    def _card_node(self, config: StreamConfig) -> str | None:
        """The node v4l2-ctl opens for the stream's card; None while it is unplugged (one stat: the
        registry may not have heard of the removal yet)."""
        path = self._platform.device_path(config)
        if path is None:
            return None
        node = path if self._root.is_real else str(self._root.path(path))
        return node if os.path.exists(node) else None

    async def _set_on_card(self, config: StreamConfig, values: Mapping[str, int | bool]) -> str | None:
        """Set ``values`` on the stream's card and read them back; the card's refusal, or None. A card that
        is unplugged now gets them when it is back (its stream sets them again once running)."""
        node = self._card_node(config)
        if node is None or not values:
            return None
        outcome = await v4l2.run(v4l2.set_argv(self._tools.v4l2_ctl, node, values))
        if not outcome.ok:
            return outcome.output
        readback = await v4l2.run(v4l2.get_argv(self._tools.v4l2_ctl, node, list(values)))
        if readback.ok:
            self._v4l2_values.setdefault(config.id, {}).update(v4l2.parse_get(readback.output))
        return None

    async def _reapply(self, stream_id: str) -> None:
        supervisor = self._supervisors.get(stream_id)
        if supervisor is None:
            return
        config = supervisor.config
        refusal = await self._set_on_card(config, self._live_values(config))
        if refusal:
            _LOGGER.warning("Stream %s: the card refused its stored controls: %s", stream_id, refusal)
        self._announce_controls(stream_id)

    def _announce_controls(self, stream_id: str) -> None:
        self._bus.publish(
            STREAM_CONTROLS_EVENT, {"stream_id": stream_id, "controls": self.controls(stream_id)}
        )

    def controls(self, stream_id: str) -> dict[str, Any]:
        """``GET /api/v1/streams/{id}/controls``: what the stream's camera offers, with values."""
        config = self._supervisor(stream_id).config
        return document(self._offer(config), self._v4l2_values.get(stream_id))

    async def set_controls(self, stream_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Check every change against the camera (nothing applied on any problem: StreamConfigError), store
        them atomically, apply (V4L2 live, the rest by a fast restart) and return the controls document."""
        async with self._lock:
            supervisor = self._supervisor(stream_id)
            old = supervisor.config
            change, problems = check_change(self._offer(old), changes)
            if change is None:
                raise StreamConfigError(problems, "invalid controls")
            new = replace(old, settings=change.settings, v4l2_controls=change.v4l2_controls)
            if change.live:
                refusal = await self._set_on_card(new, self._live_values(new))
                if refusal:
                    await self._set_on_card(old, self._live_values(old))  # put the card back as it was
                    refusal = refusal.rstrip(".")
                    problem = Problem(
                        stream_label(None, stream_id),
                        "",
                        f"the camera refused the change ({refusal}); nothing was changed",
                        stream_id=stream_id,
                        sentence=f"The camera refused the change: {refusal}. Nothing was changed.",
                    )
                    raise StreamConfigError([problem], "controls refused by the camera")
            try:
                stored = await asyncio.get_running_loop().run_in_executor(
                    None, self._store.upsert, to_json(new), self._validator
                )
            except BaseException:
                if change.live:
                    await self._set_on_card(old, self._live_values(old))
                raise
            supervisor.update_config(stored, restart=change.restart)
            self.motion.configure(stored)  # sensitivity, duration: live
            self._announce_controls(stream_id)
            return self.controls(stream_id)

    async def autofocus(self, stream_id: str) -> None:
        """One autofocus cycle: a fast restart in which rpicam-vid focuses (NoAutofocusError where the
        camera has none)."""
        supervisor = self._supervisor(stream_id)
        if not self._offer(supervisor.config).has_autofocus:
            raise NoAutofocusError(
                "This camera has no autofocus (its lens is fixed or focused by hand), so there is nothing "
                "to trigger."
            )
        self._autofocus_once.add(stream_id)
        supervisor.request_restart()

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
                "motion": self.motion.status(stream_id),
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

    async def motion_snapshot(self, stream_id: str) -> MotionSnapshot:
        """The picture taken at the stream's latest motion start (NoMotionSnapshotError: none, and why)."""
        config = self._supervisor(stream_id).config
        return await self.motion.snapshot(stream_id, config.display_name)

    async def _motion_picture(self, stream_id: str, since: float) -> Snapshot:
        """A JPEG of the first key frame captured at or after ``since`` (a motion's start): the tap's
        newest frame may still be from before the motion, so wait for the next one, at most one key-frame
        interval and a second (then the newest there is)."""
        config = self._supervisor(stream_id).config
        if self._keyframe_dir is not None:
            tap = tap_path(self._keyframe_dir, stream_id)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + config.keyframe_interval_s + 1.0
            while loop.time() < deadline:
                mtime_ns = tap_mtime_ns(tap)
                if mtime_ns is not None and mtime_ns / 1e9 >= since:
                    break
                await asyncio.sleep(0.1)
        return await self.snapshot(stream_id)

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
        """Create or replace a stream (validated with all the others, stored atomically, applied). A body
        without ``settings`` or ``v4l2_controls`` keeps the stream's current ones (a form that edits size
        and rate must not reset the picture); ``{}`` clears them. Likewise a body without ``audio`` keeps
        the stream's sound (a client that does not know it must not drop it); ``null`` or ``none`` ends it."""
        async with self._lock:
            current = self._supervisors.get(str(data.get("id")))
            if current is not None:
                kept = {"settings": current.config.settings, "v4l2_controls": current.config.v4l2_controls}
                data = {**{key: dict(value) for key, value in kept.items() if key not in data}, **data}
                if "audio" not in data and current.config.audio is not None:
                    data = {**data, "audio": audio_to_json(current.config.audio)}
                if "motion_region" not in data and current.config.motion_region is not None:
                    data["motion_region"] = dict(current.config.motion_region)
            config = await asyncio.get_running_loop().run_in_executor(
                None, self._store.upsert, dict(data), self._validator
            )
            warnings = list(self._store.warnings)
            existing = self._supervisors.get(config.id)
            if existing is not None:
                existing.update_config(config)
                self.motion.configure(config)
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
            self.motion.forget(stream_id)
            self._known_cards.pop(stream_id, None)
            self._v4l2_values.pop(stream_id, None)

    def validate(self, data: Mapping[str, Any]) -> list[Problem]:
        """Problems the stream would have with the current set, without storing anything."""
        try:
            candidate = parse_stream(dict(data))
        except StreamConfigError as exc:
            return list(exc.problems)
        others = [s.config for s in self._supervisors.values() if s.config.id != candidate.id]
        return self._validator([*others, candidate])
