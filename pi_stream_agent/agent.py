"""The running agent: telemetry, discovery, the API server and the zeroconf announcement, started and
stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from pi_stream_agent import API_VERSION, __version__
from pi_stream_agent.api.connections import ApiListener
from pi_stream_agent.api.housekeeping import add_housekeeping_routes
from pi_stream_agent.api.server import create_app
from pi_stream_agent.api.streams import add_stream_routes
from pi_stream_agent.api.websocket import WebSocketHub
from pi_stream_agent.config import AgentConfig
from pi_stream_agent.credentials import load_or_create_token
from pi_stream_agent.discovery.registry import DeviceRegistry
from pi_stream_agent.events import EventBus
from pi_stream_agent.fsutil import remove_write_leftovers
from pi_stream_agent.housekeeping import PowerControl
from pi_stream_agent.identity import stable_agent_id
from pi_stream_agent.rootfs import Root
from pi_stream_agent.rundirs import remove_run_dir
from pi_stream_agent.soc import hardware_h264_encoder
from pi_stream_agent.streams.manager import StreamManager
from pi_stream_agent.streams.platform import Platform
from pi_stream_agent.streams.rtsp_server import RtspServerSupervisor
from pi_stream_agent.streams.store import StreamStore
from pi_stream_agent.telemetry.exit_context import ExitContextBuilder
from pi_stream_agent.telemetry.meminfo import read_cma
from pi_stream_agent.telemetry.sampler import TelemetryService
from pi_stream_agent.telemetry.stack import TelemetryStack, build_stack

if TYPE_CHECKING:  # imported when used: a real Pi never loads the simulation, nor zeroconf when it is off
    from pi_stream_agent.simulation import SimulatedPi
    from pi_stream_agent.zeroconf_ad import ZeroconfAnnouncer

_LOGGER = logging.getLogger(__name__)
_AIOHTTP_VERSION = tuple(int(part) for part in aiohttp.__version__.split(".")[:2])

# The simulated Pi's one sound card: its USB HDMI card's sound interface (simulation/devices.py), whose sound
# is a beep every 30 s (streams/audio.py simulated_source). The id is the one discovery gives it.
SIMULATED_SOUND_DEVICE = "alsa-usb-0000:01:00.0-1.3"

# What a simulated Pi publishes when no streams are configured: two test-pattern cameras, one with a
# substream and sound (sound detection on), the other with motion detection on a scene someone walks
# through every 30 s, so the whole product can be tried without a Pi and its sensors seen to work.
SIMULATED_STREAMS: tuple[dict[str, Any], ...] = (
    {
        "id": "front_door",
        "name": "Front door (simulated)",
        "source": {"type": "test", "pattern": "testsrc2"},
        "width": 1280,
        "height": 720,
        "fps": 15,
        "bitrate": "2M",
        "substream": {"width": 640, "height": 360, "fps": 10, "bitrate": "500k"},
        "audio": {"device": SIMULATED_SOUND_DEVICE},
        "settings": {"sound_detection": True},
    },
    {
        "id": "garage",
        "name": "Garage (simulated)",
        "source": {"type": "test", "pattern": "passerby"},
        "width": 640,
        "height": 480,
        "fps": 10,
        "bitrate": "800k",
        "settings": {"motion_detection": True},
    },
)


def is_loopback_url(url: str) -> bool:
    """Whether an RTSP URL points at this machine (the usual MediaMTX on the Pi itself)."""
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


class Agent:
    """Owns every long-running part. ``await start()``, then serve until ``await stop()``."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.bus = EventBus()
        self.hostname = socket.gethostname()
        self.started_at = time.time()
        self._token: str | None = None
        self.agent_id = ""
        self.simulation: SimulatedPi | None = None
        self._simulation_dir: Path | None = None
        self._simulation_task: asyncio.Task[None] | None = None
        self.stack: TelemetryStack | None = None
        self.registry: DeviceRegistry | None = None
        self.telemetry_service: TelemetryService | None = None
        self.streams: StreamManager | None = None
        self.rtsp_server: RtspServerSupervisor | None = None
        self.hub = WebSocketHub(self._hello, self._current_sample)
        self._runner: web.AppRunner | None = None
        self._listener: ApiListener | None = None
        self._zeroconf: ZeroconfAnnouncer | None = None
        self.port: int | None = None
        self._unsubscribe_hub = self.bus.subscribe(self.hub.broadcast_event)
        # Restart/reboot/shutdown from the API; the CLI's run loop sets ``request_restart``.
        self.power_control = PowerControl(
            allowed=config.allow_power_control, simulated=config.simulate, bus=self.bus
        )

    # -- Backend protocol (what the API serves) ----------------------------------------------------------

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("agent not started")
        return self._token

    def info(self) -> dict[str, Any]:
        assert self.stack is not None and self.registry is not None
        board = asdict(self.stack.board.board_info())
        board.pop("serial", None)  # identifies the hardware; the agent id stands in for it
        reasons = board.pop("reasons", {})
        power = self.stack.power
        return {
            "agent_id": self.agent_id,
            "name": self.config.zeroconf_name or self.hostname,
            "hostname": self.hostname,
            "version": __version__,
            "api_version": API_VERSION,
            "simulated": self.simulation is not None,
            "started_at": round(self.started_at, 3),
            "board": board,
            "capabilities": {
                "hardware_h264_encoder": self._hardware_h264_encoder(),
                "camera_buffers_from_cma": board["camera_buffers_from_cma"],
                "firmware_source": getattr(self.stack.firmware.transport, "name", None),
                "under_voltage_sources": power.sources,
                "hotplug": self.registry.hotplug_mode,
                "power_control": self.power_control.allowed,
            },
            "telemetry_interval_s": self.config.telemetry.interval_s,
            "rtsp_server": self.rtsp_server.status() if self.rtsp_server is not None else None,
            "unavailable": reasons,
        }

    async def telemetry(self) -> dict[str, Any]:
        assert self.telemetry_service is not None
        return await self.telemetry_service.current()

    def devices(self) -> dict[str, Any]:
        assert self.registry is not None
        return self.registry.to_json()

    async def refresh_devices(self) -> dict[str, Any]:
        assert self.registry is not None
        await self.registry.refresh()
        return self.registry.to_json()

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        remove_write_leftovers(config.state_dir)  # of atomic writes a kill interrupted
        self._token = load_or_create_token(config.state_dir)
        root = Root(config.root)
        gencmd = None
        if config.simulate:
            from pi_stream_agent.simulation import build_simulated_root, make_run_dir  # noqa: PLC0415

            self._simulation_dir = make_run_dir()  # and removes the trees of killed runs
            self.simulation = build_simulated_root(self._simulation_dir)
            root, gencmd = self.simulation.root, self.simulation.gencmd
        self.stack = build_stack(
            root,
            self.bus,
            dmabuf_process_scan_interval_s=config.telemetry.dmabuf_process_scan_interval_s,
            gencmd=gencmd,
            background_scans=True,
            state_dir=config.state_dir,
            **({"statvfs": self.simulation.statvfs} if self.simulation is not None else {}),
        )
        self.agent_id = stable_agent_id(
            root, config.state_dir, self.stack.board.serial, simulated=self.simulation is not None
        )
        # Below a fixture or simulated root, host tools would describe this machine, not that tree; a
        # simulated Pi answers for its own camera and capture card instead (simulation/devices.py).
        host_tools = root.is_real or self.simulation is not None
        self.registry = DeviceRegistry(
            root,
            self.bus,
            v4l2_ctl="v4l2-ctl" if host_tools else None,
            csi_tools=("rpicam-hello", "libcamera-hello") if host_tools else (),
            tool_runner=self.simulation.tools if self.simulation is not None else None,
        )
        seed = config.streams
        if seed is None:  # not configured: a simulated Pi shows its test cameras
            seed = SIMULATED_STREAMS if config.simulate else ()
        store = StreamStore(config.state_dir, seed, seed_origin=str(config.source or "the built-in defaults"))
        if config.rtsp_server_command:
            self.rtsp_server = RtspServerSupervisor(
                config.rtsp_server_command,
                self.bus,
                marker=f"{self.agent_id}:rtsp-server",
                publish_url=config.rtsp.publish_url,
            )
        self.streams = StreamManager(
            store=store,
            rtsp=config.rtsp,
            root=root,
            bus=self.bus,
            platform=Platform(
                devices=self.registry.to_json,
                board=self._board_facts,
                processes=self.stack.processes,
                root=root,
                cma=lambda: read_cma(root),  # the telemetry's one CMA reader
                simulated=config.simulate,
                exit_context=ExitContextBuilder(
                    self.stack.power,
                    self.stack.kernel_events,
                    self._sample_for_exit,
                    remote_publish=not is_loopback_url(config.rtsp.publish_url),
                ).build,
            ),
            agent_id=self.agent_id,
            latest_sample=self._latest_sample,
            # Publishers started before the server this agent runs listens would fail (rtsp_unreachable).
            server_ready=self.rtsp_server.wait_listening if self.rtsp_server is not None else None,
        )
        firmware_forks = self.stack.firmware.needs_subprocess
        self.telemetry_service = TelemetryService(
            self.stack.collectors,
            interval_s=config.telemetry.interval_s,
            flag_check_interval_s=config.telemetry.flag_check_interval_s
            if not firmware_forks
            else max(config.telemetry.flag_check_interval_s, 10.0),  # a fork per check: check less often
            check_flags=self.stack.throttle.check,
            listeners=lambda: self.hub.client_count,
            on_sample=self.hub.broadcast_telemetry,
            off_loop=firmware_forks,
            complete=self._add_stream_stats,
        )
        if self.simulation is not None:
            self._simulation_task = asyncio.create_task(self.simulation.run(), name="pi_stream simulation")
        await self.stack.start()
        await self.registry.start()
        await self.streams.start()  # kills leftovers of a previous run first, the server's included
        if self.rtsp_server is not None:
            self.rtsp_server.start()
        # Prime the rate counters (CPU, network) so the first sample a client sees has rates.
        if firmware_forks:
            await asyncio.get_running_loop().run_in_executor(None, self.telemetry_service.prime)
        else:
            self.telemetry_service.prime()
        self.telemetry_service.start()
        await self._start_server()
        if config.zeroconf_enabled:
            await self._start_zeroconf()

    async def _start_server(self) -> None:
        app = create_app(self, self.hub)
        assert self.streams is not None
        add_stream_routes(app, self.streams)
        add_housekeeping_routes(app, self.power_control)
        if self.simulation is not None:
            from pi_stream_agent.api.simulation import add_simulation_routes  # noqa: PLC0415

            assert self.stack is not None
            add_simulation_routes(app, self.simulation, self.stack.processes.tracked)
        # aiohttp >= 3.9 takes the shutdown timeout on the runner; aiohttp 3.8 (Debian 12) only on a site,
        # which the agent does not use (ApiListener closes idle connections itself).
        if _AIOHTTP_VERSION >= (3, 9):
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        else:
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        # Not aiohttp's TCPSite: the listener bounds connections and timeouts (api/connections.py).
        self._listener = ApiListener(self._runner)
        self.port = await self._listener.start(self.config.host, self.config.port)
        _LOGGER.info(
            "pi_stream agent %s listening on %s:%s (id %s)",
            __version__,
            self.config.host,
            self.port,
            self.agent_id,
        )

    async def _start_zeroconf(self) -> None:
        from pi_stream_agent.zeroconf_ad import Advert, ZeroconfAnnouncer, local_addresses  # noqa: PLC0415

        assert self.port is not None
        advert = Advert(
            instance=self.config.zeroconf_name or self.hostname,
            agent_id=self.agent_id,
            port=self.port,
            addresses=local_addresses(),
            hostname=self.hostname,
        )
        self._zeroconf = ZeroconfAnnouncer(advert)
        await self._zeroconf.start()

    async def stop(self) -> None:
        """Stop everything that was started, in reverse order; safe to call after a failed start."""
        if self._zeroconf is not None:
            await self._zeroconf.stop()
            self._zeroconf = None
        await self.hub.close_all()
        await self.power_control.close()
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.telemetry_service is not None:
            await self.telemetry_service.stop()
        if self.streams is not None:
            await self.streams.stop()
        if self.rtsp_server is not None:
            await self.rtsp_server.stop()
        if self.registry is not None:
            await self.registry.stop()
        if self.stack is not None:
            await self.stack.stop()
        if self.simulation is not None:
            self.simulation.stop()
        if self._simulation_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._simulation_task
            self._simulation_task = None
        if self._simulation_dir is not None:
            remove_run_dir(self._simulation_dir)
            self._simulation_dir = None

    def _board_facts(self) -> dict[str, Any]:
        assert self.stack is not None and self.registry is not None
        board = self.stack.board.board_info()
        return {
            "hardware_h264_encoder": self._hardware_h264_encoder(),
            "camera_buffers_from_cma": board.camera_buffers_from_cma,
            "soc": board.soc,
        }

    def _hardware_h264_encoder(self) -> bool | None:
        """The one answer /info publishes and the streams use (the rule is :func:`hardware_h264_encoder`)."""
        assert self.stack is not None and self.registry is not None
        return hardware_h264_encoder(self.registry.hardware_encoder.h264, self.stack.board.board_info().soc)

    # -- WebSocket hub callbacks -------------------------------------------------------------------------

    def _hello(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "version": __version__, "api_version": API_VERSION}

    async def _current_sample(self) -> dict[str, Any] | None:
        return await self.telemetry_service.current() if self.telemetry_service is not None else None

    def _add_stream_stats(self, sample: dict[str, Any]) -> None:
        """Each sample carries every stream's numbers (fps, bitrate, restarts, publishers' CPU/RSS), so a
        client that follows the telemetry push never needs to poll the streams for them."""
        if self.streams is not None:
            sample["streams"] = self.streams.stats(sample.get("processes") or {})

    def _sample_for_exit(self) -> dict[str, Any] | None:
        """The latest sample when it is recent; else a new one (no fork: only with the mailbox transport)."""
        service = self.telemetry_service
        if service is None:
            return None
        latest = service.latest
        if (
            latest is not None
            and time.time() - latest.get("timestamp", 0) < 2 * self.config.telemetry.interval_s
        ):
            return latest
        if self.stack is not None and self.stack.firmware.needs_subprocess:
            return latest  # a sample would fork vcgencmd on the event loop: make do with the last one
        return service.sample_blocking()

    def _latest_sample(self) -> dict[str, Any] | None:
        return self.telemetry_service.latest if self.telemetry_service is not None else None
