"""What the Home Assistant benchmarks share: a real Home Assistant process, real agents, and the clients that
watch both.

* **Home Assistant**: ``.venv/bin/hass -c <temporary config dir>`` (2025.4.4 from requirements_test.txt),
  listening on a free loopback port, with the pi_stream integration linked into ``custom_components``. Its
  configuration is what the benchmarks need and what every installation has: ``http``, ``api``, ``config``
  (config-entry flows), ``websocket_api``, ``onboarding`` (to create the user) and ``recorder`` (SQLite,
  default commit interval: every state write lands in the database as on a real installation). Home
  Assistant also loads its always-on integrations (automation, person, …). No frontend; ``stream`` (HLS)
  only where a benchmark asks for it (``components``).
  A user is created through ``POST /api/onboarding/users``; a long-lived token is made over the WebSocket.
  Each Pi is added through the real config flow (``POST /api/config/config_entries/flow``).
* **Agents**: ``/usr/bin/python3 -m pi_stream_agent run`` (Debian's interpreter, as on a Pi) in simulation
  mode, or on a fixture tree (``root``) with stand-in programs first on PATH (``path_dirs``), each on a free
  port with its own state dir. With streams, each supervises its own RTSP server
  (scripts/rtsp-test-server, UDP) on free ports; with ``streams: []`` it runs none.
* **Watching**: one WebSocket client on Home Assistant subscribed to ``state_changed`` (Home Assistant's own
  ``time_fired`` of each write is kept), and one WebSocket client on each agent that records its events
  with the agent's own ``timestamp``. Everything runs on this machine, so the two clocks are one.

Every process is started in its own session and killed as a process group in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import DEBIAN_PYTHON, REPO_ROOT, ManagedProcess, agent_env

HASS = REPO_ROOT / ".venv" / "bin" / "hass"
RTSP_SERVER = REPO_ROOT / "scripts" / "rtsp-test-server"
DOMAIN = "pi_stream"
USERNAME = "bench"
PASSWORD = "bench-password"  # a throw-away user of a throw-away Home Assistant

# Small test-pattern streams with the demo's layout (one with a substream): the state writes do not depend
# on the picture size, and small streams leave the two cores to Home Assistant and the agent.
BENCH_STREAMS: list[dict[str, Any]] = [
    {"id": "front_door", "name": "Front door", "source": {"type": "test", "pattern": "testsrc2"},
     "width": 320, "height": 240, "fps": 10, "bitrate": "300k",
     "substream": {"width": 160, "height": 120, "fps": 5, "bitrate": "100k"}},
    {"id": "garage", "name": "Garage", "source": {"type": "test", "pattern": "smptebars"},
     "width": 320, "height": 240, "fps": 10, "bitrate": "300k"},
]  # fmt: skip


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def iso_to_ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


# --------------------------------------------------------------------------------------------------- agents


@dataclass
class BenchAgent:
    """One simulated Pi. ``streams``: None = the simulated Pi's own two cameras, [] = none, or a list."""

    workdir: Path
    name: str
    streams: list[dict[str, Any]] | None = field(default_factory=lambda: list(BENCH_STREAMS))
    telemetry: dict[str, float] = field(default_factory=dict)  # {} = the agent's defaults (5 s, 2 s)
    root: Path | None = None  # a fixture tree standing for a Pi's / instead of the simulated Pi
    path_dirs: tuple[Path, ...] = ()  # stand-in programs (e.g. rpicam-vid) found before the real ones
    port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    @property
    def token(self) -> str:
        return (self.workdir / "state" / "token").read_text(encoding="ascii").strip()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "listen": {"host": "127.0.0.1", "port": self.port},
            "state_dir": str(self.workdir / "state"),
            "zeroconf": {"enabled": False, "name": self.name},
            "simulate": self.root is None,
            "telemetry": self.telemetry,
        }
        if self.root is not None:
            config["root"] = str(self.root)
        if self.streams is not None:
            config["streams"] = self.streams
        if self.streams != []:
            read_port, publish_port = free_port(), free_port()
            config["rtsp"] = {
                "publish_url": f"rtsp://127.0.0.1:{publish_port}", "read_url": f"rtsp://127.0.0.1:{read_port}",
                "publish_transport": "udp", "read_transport": "udp",
            }  # fmt: skip
            config["rtsp_server"] = {
                "command": [str(RTSP_SERVER), "--clientport", str(read_port),
                            "--serverport", str(publish_port),
                            "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
                            "--rtp_start_port", str(random.Random().randrange(20000, 60000, 2))],
            }  # fmt: skip
        return config

    def start(self, timeout_s: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "config.yaml"
        config_path.write_text(json.dumps(self.config()) + "\n", encoding="utf-8")  # JSON is YAML
        env = agent_env()
        if self.path_dirs:
            env["PATH"] = os.pathsep.join([*map(str, self.path_dirs), env.get("PATH", os.defpath)])
        self.process = ManagedProcess(
            [DEBIAN_PYTHON, "-m", "pi_stream_agent", "run", "--config", str(config_path)],
            self.workdir / "agent.log",
            env=env,
            cwd=REPO_ROOT,
        )
        self.process.start()
        deadline = time.monotonic() + timeout_s
        while "listening on" not in self.process.log():
            if not self.process.running() or time.monotonic() > deadline:
                log = self.process.log()
                self.stop()
                raise RuntimeError(f"agent {self.name} did not start:\n{log[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout_s=15)
            self.process = None

    async def request(self, session: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> Any:
        async with session.request(method, self.base_url + path, json=body, headers=self.headers) as response:
            response.raise_for_status()
            text = await response.text()
            return json.loads(text) if text else None


@dataclass
class AgentEvent:
    timestamp: float  # the agent's time.time() when it published the event
    received: float  # ours, when it arrived
    type: str
    data: dict[str, Any]


class AgentEventLog:
    """Every event one agent pushes, from a WebSocket client of our own."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    async def start(self, session: aiohttp.ClientSession, agent: BenchAgent) -> None:
        self._task = asyncio.create_task(self._run(session, agent))
        await asyncio.wait_for(self._connected.wait(), 10)

    async def _run(self, session: aiohttp.ClientSession, agent: BenchAgent) -> None:
        async with session.ws_connect(agent.base_url + "/ws", headers=agent.headers, heartbeat=None) as ws:
            self._connected.set()
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                payload = json.loads(message.data)
                if payload.get("type") == "event":
                    event = payload["event"]
                    data = event.get("data") or {}
                    self.events.append(
                        AgentEvent(float(event["timestamp"]), time.time(), event["type"], data)
                    )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._task

    async def wait_for(self, predicate: Any, after: float, timeout_s: float) -> AgentEvent:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events:
                if event.received >= after and predicate(event):
                    return event
            await asyncio.sleep(0.01)
        raise TimeoutError("the agent sent no such event")


# --------------------------------------------------------------------------------------------- Home Assistant


@dataclass
class StateChange:
    entity_id: str
    fired: float  # Home Assistant's time_fired: when the state machine wrote it
    received: float
    old: str | None
    new: str | None


class HomeAssistantProcess:
    """A real Home Assistant in a temporary configuration directory, with a user and a long-lived token."""

    def __init__(
        self,
        workdir: Path,
        components: tuple[str, ...] = (),
        integration: Path | None = None,
        component_config: dict[str, str] | None = None,
        onboarded: bool = False,
    ) -> None:
        self.workdir = workdir
        self.components = components  # more integrations to load (e.g. "stream" for HLS)
        # YAML under a component's key, e.g. {"stream": "ll_hls: false"}; absent: the component's defaults
        self.component_config = component_config or {}
        # Every onboarding step but the user's marked done before the start, so that the frontend (when
        # loaded) opens dashboards instead of the onboarding pages; the user is still created as below.
        self.onboarded = onboarded
        self.integration = integration or REPO_ROOT / "custom_components" / DOMAIN
        self.config_dir = workdir / "ha-config"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = self.url + "/"
        self.process: ManagedProcess | None = None
        self.token = ""
        self.changes: list[StateChange] = []
        self._watch: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def write_config(self) -> None:
        (self.config_dir / "custom_components").mkdir(parents=True, exist_ok=True)
        link = self.config_dir / "custom_components" / DOMAIN
        if not link.exists():
            link.symlink_to(self.integration)
        (self.config_dir / "configuration.yaml").write_text(
            "homeassistant:\n  name: bench\n  latitude: 52.3731339\n  longitude: 4.8903147\n  elevation: 0\n"
            "  unit_system: metric\n  time_zone: UTC\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\n"
            "api:\nconfig:\nwebsocket_api:\nonboarding:\nrecorder:\n"
            + "".join(
                f"{component}:\n" + _indent(self.component_config.get(component, ""))
                for component in self.components
            )
            + "logger:\n  default: warning\n",
            encoding="utf-8",
        )
        if self.onboarded:
            storage = self.config_dir / ".storage"
            storage.mkdir(exist_ok=True)
            steps = {"done": ["core_config", "analytics", "integration"]}
            (storage / "onboarding").write_text(
                json.dumps({"version": 4, "minor_version": 1, "key": "onboarding", "data": steps}),
                encoding="utf-8",
            )

    async def start(self, session: aiohttp.ClientSession, timeout_s: float = 180.0) -> None:
        if not HASS.exists():
            raise RuntimeError(f"{HASS} is missing: run scripts/setup-dev")
        self.write_config()
        self.process = ManagedProcess(
            [str(HASS), "-c", str(self.config_dir), "--log-file", str(self.workdir / "home-assistant.log")],
            self.workdir / "hass.out",
            cwd=REPO_ROOT,
        )
        self.process.start()
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(self.url + "/api/onboarding") as response:
                    if response.status == 200:
                        break
            if not self.process.running() or time.monotonic() > deadline:
                raise RuntimeError(f"Home Assistant did not start:\n{self.process.log()[-3000:]}")
            await asyncio.sleep(0.5)
        await self._create_user(session)
        while (await self.rest(session, "GET", "/api/config")).get("state") != "RUNNING":
            if time.monotonic() > deadline:
                raise RuntimeError("Home Assistant did not finish starting")
            await asyncio.sleep(0.5)

    async def _create_user(self, session: aiohttp.ClientSession) -> None:
        body = {"client_id": self.client_id, "name": "Bench", "username": USERNAME, "password": PASSWORD,
                "language": "en"}  # fmt: skip
        async with session.post(self.url + "/api/onboarding/users", json=body) as response:
            response.raise_for_status()
            code = (await response.json())["auth_code"]
        form = {"grant_type": "authorization_code", "code": code, "client_id": self.client_id}
        async with session.post(self.url + "/auth/token", data=form) as response:
            response.raise_for_status()
            self.token = (await response.json())["access_token"]
        (self.token,) = await self.ws(
            session, [{"type": "auth/long_lived_access_token", "client_name": "bench", "lifespan": 1}]
        )

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._watch
        if self.process is not None:
            await asyncio.to_thread(self.process.stop, 30.0)
            self.process = None

    async def rest(self, session: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> Any:
        async with session.request(method, self.url + path, json=body, headers=self.headers) as response:
            text = await response.text()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {text[:300]}")
            return json.loads(text) if text else None

    async def ws(self, session: aiohttp.ClientSession, commands: list[dict[str, Any]]) -> list[Any]:
        results = []
        async with session.ws_connect(self.url + "/api/websocket", max_msg_size=0) as ws:
            await ws.receive_json()
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json()).get("type") != "auth_ok":
                raise RuntimeError("WebSocket authentication failed")
            for number, command in enumerate(commands, start=1):
                await ws.send_json({"id": number, **command})
                while (message := await ws.receive_json()).get("id") != number:
                    pass
                if not message.get("success"):
                    raise RuntimeError(f"{command['type']}: {message.get('error')}")
                results.append(message["result"])
        return results

    async def watch_states(self, session: aiohttp.ClientSession) -> None:
        """Record every state_changed from now on (in ``changes``)."""
        ready = asyncio.Event()

        async def run() -> None:
            async with session.ws_connect(self.url + "/api/websocket", max_msg_size=0) as ws:
                await ws.receive_json()
                await ws.send_json({"type": "auth", "access_token": self.token})
                await ws.receive_json()
                await ws.send_json({"id": 1, "type": "subscribe_events", "event_type": "state_changed"})
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    payload = json.loads(message.data)
                    if payload.get("type") == "result":
                        ready.set()
                    elif payload.get("type") == "event":
                        event = payload["event"]
                        data = event["data"]
                        self.changes.append(
                            StateChange(
                                data["entity_id"], iso_to_ts(event["time_fired"]), time.time(),
                                (data.get("old_state") or {}).get("state"),
                                (data.get("new_state") or {}).get("state"),
                            )
                        )  # fmt: skip

        self._watch = asyncio.create_task(run())
        await asyncio.wait_for(ready.wait(), 10)

    async def add_pi(self, session: aiohttp.ClientSession, agent: BenchAgent) -> str:
        """Through the real config flow; returns the entry id once the entry is loaded."""
        flow = await self.rest(session, "POST", "/api/config/config_entries/flow", {"handler": DOMAIN})
        result = await self.rest(
            session, "POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"host": "127.0.0.1", "port": agent.port, "token": agent.token},
        )  # fmt: skip
        if result.get("type") != "create_entry":
            raise RuntimeError(f"config flow for {agent.name}: {result}")
        entry_id = str(result["result"]["entry_id"])
        deadline = time.monotonic() + 60
        while True:
            entries = await self.rest(session, "GET", f"/api/config/config_entries/entry?domain={DOMAIN}")
            if any(e["entry_id"] == entry_id and e["state"] == "loaded" for e in entries):
                return entry_id
            if time.monotonic() > deadline:
                raise RuntimeError(f"entry for {agent.name} did not load: {entries}")
            await asyncio.sleep(0.2)

    async def entities(self, session: aiohttp.ClientSession, entry_id: str) -> dict[str, str]:
        """unique_id → entity_id of one entry's entities (enabled ones)."""
        (registry,) = await self.ws(session, [{"type": "config/entity_registry/list"}])
        return {
            e["unique_id"]: e["entity_id"]
            for e in registry
            if e.get("config_entry_id") == entry_id and not e.get("disabled_by")
        }


def _indent(yaml: str) -> str:
    return "".join(f"  {line}\n" for line in yaml.splitlines())


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def home_assistant(
    session: aiohttp.ClientSession,
    path: Path,
    components: tuple[str, ...] = (),
    integration: Path | None = None,
    component_config: dict[str, str] | None = None,
    onboarded: bool = False,
) -> AsyncIterator[HomeAssistantProcess]:
    ha = HomeAssistantProcess(path, components, integration, component_config, onboarded)
    try:
        await ha.start(session)
        yield ha
    finally:
        await ha.stop()


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]
    return float(one), float(five), float(fifteen)
