"""What the stream benchmarks share: a real RTSP server, the real agent with streams, its events, readers.

* **RTSP server**: the patched rtsp-server-perl of the tests (``tests/agent/rtsp.py``: it releases a path
  when its publisher's connection closes, like MediaMTX), on free loopback ports, UDP transport only.
* **Agent**: ``/usr/bin/python3 -m pi_stream_agent run`` as a subprocess (its own session), with a config
  file naming the RTSP server and the streams; ``--simulate`` or ``--root <fixture tree>``. Stopping it
  SIGTERMs its group, then SIGKILLs, by pid, any process it started that is still alive (publishers run in
  process groups of their own and also die with the agent through their death signal).
* **Events**: one authenticated WebSocket client records every ``event`` message. The agent stamps each
  event with ``time.time()`` when it publishes it, so event times and this process's ``time.time()`` are
  on one clock.
* **Readers**: "readable" means a new ffmpeg reader decoded one frame from the read URL
  (``ffmpeg -rtsp_transport udp [-probesize 32] -i URL -frames:v 1 -f null -``; see :data:`READERS`).
  ``describe()`` asks the server whether a path is published (one RTSP DESCRIBE on a raw socket: 200
  when announced, 404 when not).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import REPO_ROOT, ManagedProcess, agent_env, descendants, summarize
from tests.agent.rtsp import RtspServer, free_port

DEBIAN_PYTHON = "/usr/bin/python3"
# The stream the benchmarks publish (the brief: small test-pattern streams, 1 s keyframe interval).
STREAM_SIZE = {"width": 640, "height": 480, "fps": 15, "bitrate": "1M", "keyframe_interval_s": 1.0}
STANDIN_DIRS = (REPO_ROOT / "tests/agent/bin/capture", REPO_ROOT / "tests/agent/bin/streams")
READER_TIMEOUT_S = 10.0
_LISTENING = re.compile(r"listening on \S+:(\d+)")


def test_stream(stream_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": stream_id, "source": {"type": "test"}, **STREAM_SIZE, **extra}


test_stream.__test__ = False  # type: ignore[attr-defined]  # a builder, not a pytest test


# --------------------------------------------------------------------------------------------- RTSP server


@contextlib.contextmanager
def rtsp_server(workdir: Path) -> Iterator[RtspServer]:
    server = RtspServer(free_port(), free_port(), workdir / "rtsp-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def describe(url: str, timeout_s: float = 1.0) -> int | None:
    """The RTSP status code of one DESCRIBE of ``url`` (200: published, 404: not), None if no answer."""
    rest = url.split("://", 1)[1]
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    writer: asyncio.StreamWriter | None = None
    try:
        reader, opened = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout_s)
        writer = opened
        opened.write(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), timeout_s)
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None
    except (OSError, TimeoutError, ValueError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def wait_published(url: str, timeout_s: float, period_s: float = 0.02) -> float:
    """Poll DESCRIBE every ``period_s`` until the path is published; returns time.time() of the 200."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await describe(url) == 200:
            return time.time()
        await asyncio.sleep(period_s)
    raise TimeoutError(f"{url} not published within {timeout_s} s")


@dataclass
class ReadResult:
    ok: bool
    started: float  # time.time()
    ended: float
    attempts: int
    error: str = ""

    @property
    def duration_s(self) -> float:
        return self.ended - self.started


# Two readers. Both decode one frame; they differ in how long ffmpeg probes the stream before decoding:
# * "fast": -probesize 32 stops probing after the first packet (the codec parameters come from the SDP),
#   so the reader's time is connect + the wait for the next key frame + one decode. The agent's own
#   snapshots read this way; it shows what the publisher side delivers.
# * "default": ffmpeg's defaults, like ffprobe and most clients: probing goes on until ~20 frames have
#   given a frame rate (fpsprobesize), about 1.5-2 s more at 15 fps, on a healthy stream as much as after
#   a restart.
READERS: dict[str, list[str]] = {"fast": ["-probesize", "32"], "default": []}


def reader_argv(url: str, reader: str = "fast") -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-rtsp_transport", "udp", *READERS[reader], "-i", url,
        "-frames:v", "1", "-f", "null", "-",
    ]  # fmt: skip


async def read_one_frame(url: str, reader: str = "fast", timeout_s: float = READER_TIMEOUT_S) -> ReadResult:
    """One new reader: decode one frame of ``url``. Killed (its own session) after ``timeout_s``."""
    started = time.time()
    proc = await asyncio.create_subprocess_exec(
        *reader_argv(url, reader),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        return ReadResult(False, started, time.time(), 1, f"no frame within {timeout_s:g} s")
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    ended = time.time()
    error = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] if proc.returncode else []
    return ReadResult(proc.returncode == 0, started, ended, 1, error[0] if error else "")


async def wait_readable(
    url: str, reader: str = "fast", timeout_s: float = 20.0, pause_s: float = 0.05
) -> ReadResult:
    """New readers, one after another, until one decodes a frame. ``started`` is the first attempt's."""
    deadline = time.monotonic() + timeout_s
    first: float | None = None
    attempts = 0
    last = ""
    while time.monotonic() < deadline:
        left = max(deadline - time.monotonic(), 1.0)
        result = await read_one_frame(url, reader, min(READER_TIMEOUT_S, left))
        attempts += 1
        first = result.started if first is None else first
        if result.ok:
            return ReadResult(True, first, result.ended, attempts)
        last = result.error
        await asyncio.sleep(pause_s)
    raise TimeoutError(f"{url} not readable within {timeout_s} s ({attempts} attempts; last: {last})")


# --------------------------------------------------------------------------------------------------- agent


@dataclass
class StreamAgentSpec:
    """One agent: its streams, where it reads the kernel (``--simulate`` or a fixture ``root``)."""

    streams: list[dict[str, Any]]
    simulate: bool = True
    root: Path | None = None
    standins: bool = False  # the capture-card ffmpeg and rpicam-vid stand-ins first on PATH
    telemetry: dict[str, float] = field(default_factory=dict)


@dataclass
class StreamAgent:
    process: ManagedProcess
    port: int
    token: str
    server: RtspServer

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def read_url(self, path: str) -> str:
        return f"{self.server.read_base}/{path}"


def _agent_argv(spec: StreamAgentSpec, server: RtspServer, workdir: Path) -> list[str]:
    config = {
        "telemetry": spec.telemetry,
        "rtsp": {
            "publish_url": server.publish_base,
            "read_url": server.read_base,
            # rtsp-server-perl speaks UDP only.
            "publish_transport": "udp",
            "read_transport": "udp",
        },
        "streams": spec.streams,
    }
    path = workdir / "config.yaml"
    path.write_text(json.dumps(config) + "\n", encoding="utf-8")  # JSON is YAML
    argv = [
        DEBIAN_PYTHON, "-m", "pi_stream_agent", "run", "--config", str(path),
        "--listen", "127.0.0.1", "--port", "0", "--state-dir", str(workdir / "state"),
        "--no-zeroconf", "--log-level", "INFO",
    ]  # fmt: skip
    if spec.simulate:
        argv.append("--simulate")
    if spec.root is not None:
        argv += ["--root", str(spec.root)]
    return argv


def _stop_agent(process: ManagedProcess) -> list[int]:
    """SIGTERM the agent (it stops its publishers), then SIGKILL by pid whatever it started that is left.
    Returns the pids that had to be killed."""
    family = descendants(process.pid) if process.running() else []
    started = {pid: _start_time(pid) for pid in family}
    process.stop()
    killed = []
    for pid, when in started.items():
        if when is not None and _start_time(pid) == when:  # the same process, not a reused pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def _start_time(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return fields[19] if fields[0] != "Z" else None  # field 22: starttime


@contextlib.contextmanager
def stream_agent(spec: StreamAgentSpec, server: RtspServer, workdir: Path) -> Iterator[StreamAgent]:
    """Start the agent and wait until it listens; stop it (and everything it started) on the way out."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = agent_env()
    if spec.standins:
        env["PATH"] = os.pathsep.join([*(str(d) for d in STANDIN_DIRS), env.get("PATH", os.defpath)])
    process = ManagedProcess(
        _agent_argv(spec, server, workdir), workdir / "agent.log", env=env, cwd=REPO_ROOT
    )
    process.start()
    try:
        deadline = time.monotonic() + 30
        while not (match := _LISTENING.search(process.log())):
            if not process.running() or time.monotonic() > deadline:
                raise RuntimeError(f"the agent did not start:\n{process.log()[-3000:]}")
            time.sleep(0.05)
        token = (workdir / "state" / "token").read_text(encoding="ascii").strip()
        yield StreamAgent(process, int(match.group(1)), token, server)
    finally:
        leftovers = _stop_agent(process)
        if leftovers:
            print(f"warning: killed {len(leftovers)} process(es) the agent left: {leftovers}")


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A temporary directory for one run. SIGTERM becomes SystemExit inside it, so the ``finally`` blocks
    that stop the agent, the RTSP server and the readers run on SIGTERM as on Ctrl-C or an error."""

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield Path(tmp)
    finally:
        signal.signal(signal.SIGTERM, previous)


# -------------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class AgentEvent:
    type: str
    at: float  # the agent's time.time() when it published the event
    received: float  # ours, when the WebSocket delivered it
    data: dict[str, Any]


class EventLog:
    """Every event the agent pushes over one WebSocket, with a way to wait for a matching one."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self.messages = 0
        self._changed = asyncio.Event()

    def add(self, event: AgentEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def find(self, match: Callable[[AgentEvent], bool], after: float) -> AgentEvent | None:
        return next((e for e in self.events if e.at >= after and match(e)), None)

    async def wait(
        self, match: Callable[[AgentEvent], bool], after: float, timeout_s: float = 30.0
    ) -> AgentEvent:
        deadline = time.monotonic() + timeout_s
        while (found := self.find(match, after)) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching event within the timeout")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return found


def state_is(stream_id: str, *states: str) -> Callable[[AgentEvent], bool]:
    return lambda e: (
        e.type == "stream_state" and e.data.get("stream_id") == stream_id and e.data.get("state") in states
    )


def exit_of(stream_id: str) -> Callable[[AgentEvent], bool]:
    return lambda e: e.type == "stream_exit" and e.data.get("stream_id") == stream_id


def event_is(kind: str) -> Callable[[AgentEvent], bool]:
    return lambda e: e.type == kind


@contextlib.asynccontextmanager
async def connected(agent: StreamAgent) -> AsyncIterator[tuple[aiohttp.ClientSession, EventLog]]:
    """An API session and an event log fed by one WebSocket client, for the length of the block."""
    log = EventLog()
    async with aiohttp.ClientSession(headers=agent.headers) as session:
        ws = await session.ws_connect(f"{agent.api}/ws")

        async def pump() -> None:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                log.messages += 1
                data = json.loads(message.data)
                if data.get("type") == "event":
                    event = data["event"]
                    log.add(AgentEvent(event["type"], event["timestamp"], time.time(), event["data"]))

        task = asyncio.create_task(pump())
        try:
            yield session, log
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task
            await ws.close()


async def status(session: aiohttp.ClientSession, agent: StreamAgent, stream_id: str) -> dict[str, Any]:
    async with session.get(f"{agent.api}/streams/{stream_id}") as response:
        response.raise_for_status()
        result: dict[str, Any] = await response.json()
        return result


async def wait_status(
    session: aiohttp.ClientSession,
    agent: StreamAgent,
    stream_id: str,
    states: set[str],
    timeout_s: float = 30,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    current: dict[str, Any] = {}
    while time.monotonic() < deadline:
        current = await status(session, agent, stream_id)
        if current["state"] in states:
            return current
        await asyncio.sleep(0.05)
    raise TimeoutError(
        f"{stream_id} never reached {states}; last {current.get('state')}: {current.get('message')}"
    )


async def command(session: aiohttp.ClientSession, agent: StreamAgent, stream_id: str, action: str) -> None:
    async with session.post(f"{agent.api}/streams/{stream_id}/{action}") as response:
        if response.status != 202:
            raise RuntimeError(f"{action}: HTTP {response.status} {await response.text()}")


async def steady(
    session: aiohttp.ClientSession,
    agent: StreamAgent,
    events: EventLog,
    stream_id: str,
    *,
    reset: bool,
    pause_s: float,
    program: str = "ffmpeg",
) -> int:
    """Until ``stream_id`` runs and a new reader decodes it, then ``pause_s``; returns the pid of its
    ``program``. With ``reset``, first ``POST …/restart``: it resets the backoff, as 30 s of stable
    running would, so the next failure is a first failure again."""
    url = agent.read_url(stream_id)
    if reset:
        asked = time.time()
        await command(session, agent, stream_id, "restart")
        await events.wait(state_is(stream_id, "starting"), asked, 30)
    await wait_published(url, 30)
    _, current = await asyncio.gather(
        wait_readable(url, "fast"), wait_status(session, agent, stream_id, {"running"})
    )
    await asyncio.sleep(pause_s)
    return int(current["pids"][program])


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` (R, S, T, Z …), None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()[0]


# ----------------------------------------------------------------------------------------------- children


class ChildWatcher:
    """A thread that lists the agent's live descendants every ``period_s`` and remembers each one (pid →
    argv) it saw: short-lived ffmpeg snapshot runs (≥ 0.3 s) are all caught at 10 ms."""

    def __init__(self, pid: int, period_s: float = 0.01) -> None:
        self._pid = pid
        self._period_s = period_s
        self.seen: dict[int, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        parent = self._cmdline(self._pid)
        while not self._stop.is_set():
            for pid in descendants(self._pid):
                if pid not in self.seen:
                    with contextlib.suppress(OSError):
                        argv = self._cmdline(pid)
                        # Between fork and exec a child still shows its parent's argv: look again later.
                        if argv and argv != parent:
                            self.seen[pid] = argv
            self._stop.wait(self._period_s)

    @staticmethod
    def _cmdline(pid: int) -> list[str]:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]

    def count(self, match: Callable[[list[str]], bool]) -> int:
        return sum(1 for argv in list(self.seen.values()) if match(argv))


def is_snapshot_ffmpeg(argv: list[str]) -> bool:
    return bool(argv) and os.path.basename(argv[0]) == "ffmpeg" and "-skip_frame" in argv


# ---------------------------------------------------------------------------------------------- reporting


def load_average() -> list[float]:
    """The 1/5/15-minute load averages: other work on the machine skews every timing here."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text(encoding="ascii").split()[:3]]
    except (OSError, ValueError):
        return []


def seconds(values: list[float]) -> dict[str, Any]:
    """Median, p95, worst (and the rest) of a series in seconds, rounded to the millisecond."""
    s = summarize(values)
    return {
        "n": s.n,
        "median": round(s.median, 3),
        "p95": round(s.p95, 3),
        "worst": round(s.max, 3),
        "best": round(s.min, 3),
        "mean": round(s.mean, 3),
    }


def line(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<38} (no values)"
    s = seconds(values)
    return (
        f"  {label:<38} median {s['median']:6.3f} s  p95 {s['p95']:6.3f} s  "
        f"worst {s['worst']:6.3f} s  best {s['best']:6.3f} s  (n={s['n']})"
    )
