"""Snapshots from the key-frame tap (streams/keyframes.py): the real agent, real ffmpeg publishers and
decoders, the real RTSP test server. The agent's read URL points at a listener that only counts
connections, so any snapshot that opened an RTSP session instead of using the tap is seen (and fails)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pi_stream_agent.agent import Agent
from pi_stream_agent.config import AgentConfig
from pi_stream_agent.streams import snapshot as snapshot_module
from pi_stream_agent.streams.keyframes import drop_expression, tap_path
from pi_stream_agent.streams.snapshot import SnapshotError, SnapshotService, jpeg_dimensions
from tests.agent.rtsp import RtspServer, free_port
from tests.agent.test_stream_snapshot import FfmpegSpy
from tests.agent.test_streams_e2e import AgentFactory, api, make_config, rtsp_settings, wait_state


@pytest.fixture
async def start_agent() -> AsyncIterator[AgentFactory]:
    agents: list[Agent] = []

    async def start(config: AgentConfig) -> Agent:
        agent = Agent(config)
        agents.append(agent)
        await agent.start()
        return agent

    yield start
    for agent in agents:
        await agent.stop()


class CountingListener:
    """A TCP listener that counts connections and closes them at once (no RTSP server behind it)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def counting_listener() -> Iterator[CountingListener]:
    listener = CountingListener()
    yield listener
    listener.close()


def _exists(path: str) -> bool:
    return os.path.exists(path)  # a tmpfs stat: never blocks


def _private_dir(path: str) -> bool:
    return os.path.isdir(path) and os.stat(path).st_mode & 0o077 == 0


def tapped_stream(stream_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": stream_id,
        "source": {"type": "test"},
        "width": 640,
        "height": 480,
        "fps": 15,
        "bitrate": "600k",
        "keyframe_interval_s": 1,
        **extra,
    }


async def start_tapped(
    tmp_path: Path, server: RtspServer, listener: CountingListener, start: AgentFactory, streams: list[Any]
) -> Agent:
    rtsp = replace(rtsp_settings(server), read_url=f"rtsp://127.0.0.1:{listener.port}")
    agent = await start(make_config(tmp_path, server, streams, rtsp=rtsp))
    assert agent.streams is not None
    return agent


async def wait_for_tap(
    agent: Agent, stream_id: str, *, substream: bool = False, timeout_s: float = 20.0
) -> None:
    assert agent.streams is not None and agent.streams.keyframe_dir is not None
    path = tap_path(agent.streams.keyframe_dir, stream_id, substream=substream)
    deadline = time.monotonic() + timeout_s
    while not _exists(path):
        assert time.monotonic() < deadline, f"no key frame appeared at {path}"
        await asyncio.sleep(0.05)


async def test_snapshot_comes_from_the_tap_without_an_rtsp_session(
    tmp_path: Path, rtsp_server: RtspServer, counting_listener: CountingListener, start_agent: AgentFactory
) -> None:
    agent = await start_tapped(
        tmp_path,
        rtsp_server,
        counting_listener,
        start_agent,
        [tapped_stream("cam1", substream={"width": 320, "height": 240, "fps": 15, "bitrate": "200k"})],
    )
    assert agent.streams is not None
    await wait_state(agent, "cam1", {"running"})
    await wait_for_tap(agent, "cam1")
    await wait_for_tap(agent, "cam1", substream=True)
    base, headers = api(agent)
    runs = agent.streams.snapshots.runs
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{base}/streams/cam1/snapshot") as response:
            assert response.status == 200, await response.text()
            main = await response.read()
            assert response.headers["X-Snapshot-Source"] == "keyframe"
            assert response.headers["X-Snapshot-Size"] == "640x480"
            age_ms = int(response.headers["X-Picture-Age-Ms"])
        async with session.get(f"{base}/streams/cam1/snapshot?substream=1") as response:
            assert response.status == 200, await response.text()
            sub = await response.read()
            assert response.headers["X-Snapshot-Source"] == "keyframe"
        async with session.get(f"{base}/streams/cam1/snapshot?substream=yes") as response:
            assert response.status == 400
            assert "substream must be 1" in (await response.json())["error"]["message"]
    assert jpeg_dimensions(main) == (640, 480)
    assert jpeg_dimensions(sub) == (320, 240)
    # The picture is a key frame the publisher wrote within the freshness window (3 s for a 1 s GOP).
    assert 0 <= age_ms <= 3000
    assert agent.streams.snapshots.runs - runs == 2
    assert agent.streams.snapshots.tap_runs == agent.streams.snapshots.runs
    assert counting_listener.connections == 0  # no RTSP session was opened


async def test_concurrent_requests_share_one_decode_of_the_key_frame(
    tmp_path: Path, rtsp_server: RtspServer, counting_listener: CountingListener, start_agent: AgentFactory
) -> None:
    agent = await start_tapped(tmp_path, rtsp_server, counting_listener, start_agent, [tapped_stream("cam1")])
    assert agent.streams is not None
    await wait_state(agent, "cam1", {"running"})
    await wait_for_tap(agent, "cam1")
    base, headers = api(agent)
    service = agent.streams.snapshots
    before = service.runs
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one() -> bytes:
            async with session.get(f"{base}/streams/cam1/snapshot") as response:
                assert response.status == 200, await response.text()
                return await response.read()

        pictures = await asyncio.gather(*(one() for _ in range(10)))
    assert len(set(pictures)) == 1
    assert jpeg_dimensions(pictures[0]) == (640, 480)
    # One decode; a second only if a newer key frame landed while the ten requests came in.
    assert 1 <= service.runs - before <= 2
    assert service.tap_runs == service.runs
    assert counting_listener.connections == 0


async def test_no_picture_from_a_stopped_stream_or_a_missing_substream(
    tmp_path: Path, rtsp_server: RtspServer, counting_listener: CountingListener, start_agent: AgentFactory
) -> None:
    agent = await start_tapped(
        tmp_path, rtsp_server, counting_listener, start_agent, [tapped_stream("cam1", name="Porch")]
    )
    assert agent.streams is not None
    await wait_state(agent, "cam1", {"running"})
    await wait_for_tap(agent, "cam1")
    base, headers = api(agent)
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{base}/streams/cam1/snapshot?substream=1") as response:
            assert response.status == 404
            error = (await response.json())["error"]
            assert error["message"] == "Porch has no substream; ask for the main stream's picture"
        async with session.post(f"{base}/streams/cam1/stop") as response:
            assert response.status == 202
        await wait_state(agent, "cam1", {"stopped"})
        async with session.get(f"{base}/streams/cam1/snapshot") as response:
            assert response.status == 503
            error = (await response.json())["error"]
            assert error["message"] == "Porch is not running (stopped); start it to get a picture"
    assert agent.streams.snapshots.runs == 0
    assert counting_listener.connections == 0


async def test_a_restarted_publisher_never_shows_the_old_key_frame(
    tmp_path: Path, rtsp_server: RtspServer, counting_listener: CountingListener, start_agent: AgentFactory
) -> None:
    agent = await start_tapped(tmp_path, rtsp_server, counting_listener, start_agent, [tapped_stream("cam1")])
    assert agent.streams is not None and agent.streams.keyframe_dir is not None
    await wait_state(agent, "cam1", {"running"})
    await wait_for_tap(agent, "cam1")
    path = tap_path(agent.streams.keyframe_dir, "cam1")
    old = os.stat(path).st_mtime_ns
    agent.streams.restart_stream("cam1")
    await wait_state(agent, "cam1", {"starting"})
    assert not _exists(path) or os.stat(path).st_mtime_ns > old
    await wait_state(agent, "cam1", {"running"})


async def test_the_tap_directory_goes_with_the_agent(
    tmp_path: Path, rtsp_server: RtspServer, counting_listener: CountingListener, start_agent: AgentFactory
) -> None:
    agent = await start_tapped(tmp_path, rtsp_server, counting_listener, start_agent, [tapped_stream("cam1")])
    assert agent.streams is not None and agent.streams.keyframe_dir is not None
    directory = agent.streams.keyframe_dir
    assert _private_dir(directory)  # private to the agent
    await wait_state(agent, "cam1", {"running"})
    await wait_for_tap(agent, "cam1")
    await agent.stop()
    assert not _exists(directory)


def test_mjpeg_pass_through_keeps_one_frame_per_interval() -> None:
    assert drop_expression(False, 30) == "not(key)"
    assert drop_expression(True, 30) == "n-30*floor(n/30)"
    assert "," not in drop_expression(True, 30)  # commas separate bitstream filters
    assert drop_expression(True, 1) == "0"


# ---------------------------------------------------------------------- the service with a tap file alone


@pytest.fixture
def spy_ffmpeg(tmp_path: Path) -> Iterator[FfmpegSpy]:
    log = tmp_path / "ffmpeg-runs.log"
    script = tmp_path / "ffmpeg-spy"
    script.write_text(f'#!/bin/sh\necho "$$ $*" >> "{log}"\nexec ffmpeg "$@"\n')
    script.chmod(0o755)
    found = FfmpegSpy(script, log)
    yield found
    left = found.live_pids()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"ffmpeg processes left running: {left}"


def write_key_frame(path: Path, size: str, mtime_s: float) -> None:
    """One H.264 key frame (with SPS/PPS) at ``path``, stamped as written at ``mtime_s``."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=15",
         "-frames:v", "1", "-c:v", "libx264", "-preset", "ultrafast", "-f", "h264", str(path)],
        check=True, timeout=30,
    )  # fmt: skip
    os.utime(path, (mtime_s, mtime_s))


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_standby_decoder_waits_for_the_next_key_frame_and_goes_when_idle(
    tmp_path: Path, spy_ffmpeg: FfmpegSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    tap = tmp_path / "cam.main.keyframe"
    write_key_frame(tap, "320x240", time.time())
    service = SnapshotService(ffmpeg=str(spy_ffmpeg.path), transport="udp")
    try:
        first = await service.get("cam", "rtsp://127.0.0.1:1/none", tap=str(tap))
        assert first.from_tap and (first.width, first.height) == (320, 240)
        # A second ffmpeg is started at once and waits on its stdin for the next key frame.
        await wait_until(lambda: len(spy_ffmpeg.live_pids()) == 1)
        standby = spy_ffmpeg.live_pids()[0]
        # The same key frame again: the cached picture, no decode.
        assert await service.get("cam", "rtsp://127.0.0.1:1/none", tap=str(tap)) is first
        write_key_frame(tap, "320x240", time.time())
        second = await service.get("cam", "rtsp://127.0.0.1:1/none", tap=str(tap))
        assert second.from_tap and second.jpeg[:2] == b"\xff\xd8"
        assert standby not in spy_ffmpeg.live_pids()  # the standby did that decode and was reaped
        assert service.runs == service.tap_runs == 2
        assert spy_ffmpeg.runs == 3  # cold start, the standby used, the next standby
        await wait_until(lambda: len(spy_ffmpeg.live_pids()) == 1)
        # Nobody asks for a while: the standby goes.
        monkeypatch.setattr(snapshot_module, "STANDBY_IDLE_S", 0.1)
        write_key_frame(tap, "320x240", time.time())
        await service.get("cam", "rtsp://127.0.0.1:1/none", tap=str(tap))
        await wait_until(lambda: spy_ffmpeg.runs == 4)
        await wait_until(lambda: spy_ffmpeg.live_pids() == [])
    finally:
        await service.close()


async def test_a_stale_key_frame_is_not_served(tmp_path: Path, spy_ffmpeg: FfmpegSpy) -> None:
    """A tap older than the freshness window (a publisher that stopped writing): the RTSP way is taken."""
    tap = tmp_path / "cam.main.keyframe"
    write_key_frame(tap, "320x240", time.time() - 10)
    service = SnapshotService(ffmpeg=str(spy_ffmpeg.path), transport="udp", timeout_s=2.0)
    try:
        with pytest.raises(SnapshotError) as caught:
            await service.get("cam", f"rtsp://127.0.0.1:{free_port()}/none", tap=str(tap), tap_fresh_s=3.0)
        assert caught.value.code == "stream_unavailable"  # nothing listens there
        assert service.tap_runs == 0 and service.runs == 1
    finally:
        await service.close()
