"""Contract C1 (issue 13 §1): every stream's numbers in its status, in each telemetry sample and in its
events; null while the stream is not running (never a stale value, never 0.0 for "not measured yet");
failure restarts counted by cause, requested restarts counted apart.

The real agent, real ffmpeg publishers, the real test RTSP server, the real HTTP API.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp

from pi_stream_agent.agent import Agent
from pi_stream_agent.events import Event
from tests.agent.rtsp import RtspServer
from tests.agent.test_streams_e2e import AgentFactory, api, make_config, start_agent, test_stream, wait_state

__all__ = ["start_agent"]  # the fixture, imported for the tests below

STATS_KEYS = {
    "state", "fps", "bitrate_bps", "frames", "uptime_s", "restart_count", "requested_restart_count",
    "restarts_by_cause", "publishers", "sound_level_dbfs", "audio",
}  # fmt: skip
MEASURED = ("fps", "bitrate_bps", "frames", "uptime_s", "sound_level_dbfs")


async def get(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def running_with_fps(agent: Agent, session: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    """The stream's status once ffmpeg has measured a frame rate; every status on the way is checked."""
    for _ in range(200):
        status = await get(session, f"{base}/streams/cam1")
        if status["state"] == "running":
            assert status["fps"] != 0.0, "0.0 is not a measurement: null until there is one"
            if status["fps"] is not None:
                return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"no frame rate: {status}")


async def test_stats_are_in_status_telemetry_and_events_and_null_while_not_running(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    events: list[Event] = []
    agent.bus.subscribe(events.append)
    base, headers = api(agent)
    async with aiohttp.ClientSession(headers=headers) as session:
        status = await running_with_fps(agent, session, base)
        assert status["fps"] > 0 and status["frames"] > 0 and status["uptime_s"] is not None
        assert status["requested_restart_count"] == 0 and status["restarts_by_cause"] == {}
        # The telemetry sample carries the same numbers, publishers' CPU/RSS included.
        for _ in range(100):
            sample = await get(session, f"{base}/telemetry")
            stats = sample["streams"]["cam1"]
            if stats["publishers"].get("ffmpeg", {}).get("cpu_percent") is not None:
                break
            await asyncio.sleep(0.1)
        assert set(stats) == STATS_KEYS
        # Measured by the agent although ffmpeg prints bitrate=N/A for its RTSP output (300 kbit/s asked).
        for _ in range(100):
            status = await get(session, f"{base}/streams/cam1")
            if status["bitrate_bps"] is not None:
                break
            await asyncio.sleep(0.1)
        assert isinstance(status["bitrate_bps"], int)
        assert 30_000 < status["bitrate_bps"] < 3_000_000, status["bitrate_bps"]
        logs = [line["line"] for line in agent.streams.logs("cam1", 300)] if agent.streams else []
        assert not any(line.startswith("out=") for line in logs), "frame sizes are data, not log lines"
        assert stats["state"] == "running" and stats["fps"] > 0
        assert stats["publishers"]["ffmpeg"]["pid"] == status["pids"]["ffmpeg"]
        assert stats["publishers"]["ffmpeg"]["rss_bytes"] > 0

        # Stopped: no stale fps, frames, uptime or publisher CPU anywhere.
        async with session.post(f"{base}/streams/cam1/stop") as response:
            assert response.status == 202
        await wait_state(agent, "cam1", {"stopped"})
        stopped = await get(session, f"{base}/streams/cam1")
        for key in MEASURED:
            assert stopped[key] is None, (key, stopped)
        assert stopped["publishers"] == {}
        await asyncio.sleep(1.1)  # a fresh sample (one interval)
        stats = (await get(session, f"{base}/telemetry"))["streams"]["cam1"]
        assert stats["state"] == "stopped"
        assert all(stats[key] is None for key in MEASURED) and stats["publishers"] == {}
        state_events = [e for e in events if e.type == "stream_state" and e.data["state"] == "stopped"]
        assert state_events and set(state_events[-1].data["stats"]) == STATS_KEYS
        assert state_events[-1].data["stats"]["fps"] is None

        # Started again: fps is null until measured, never 0.0; then a real number.
        async with session.post(f"{base}/streams/cam1/start") as response:
            assert response.status == 202
        again = await running_with_fps(agent, session, base)
        assert again["fps"] > 0


async def test_restarts_are_counted_requested_apart_from_failures_by_cause(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    events: list[Event] = []
    agent.bus.subscribe(events.append)
    base, headers = api(agent)
    async with aiohttp.ClientSession(headers=headers) as session:
        first = await wait_state(agent, "cam1", {"running"})
        async with session.post(f"{base}/streams/cam1/restart") as response:
            assert response.status == 202
        await asyncio.sleep(0.3)
        second = await wait_state(agent, "cam1", {"running"})
        assert second["pids"]["ffmpeg"] != first["pids"]["ffmpeg"]
        status = await get(session, f"{base}/streams/cam1")
        assert status["requested_restart_count"] == 1
        assert status["restart_count"] == 0 and status["restarts_by_cause"] == {}

        os.kill(second["pids"]["ffmpeg"], signal.SIGKILL)  # a failure: killed by somebody else
        for _ in range(200):
            status = await get(session, f"{base}/streams/cam1")
            if status["restart_count"] == 1:
                break
            await asyncio.sleep(0.05)
        assert status["restarts_by_cause"] == {"killed": 1}
        assert status["requested_restart_count"] == 1
        exits = [e for e in events if e.type == "stream_exit"]
        assert exits and exits[-1].data["stats"]["restarts_by_cause"] == {"killed": 1}
        assert exits[-1].data["stats"]["fps"] is None  # the publisher is gone
