"""The Pi's health over loopback, served by the real agent on the simulated Pi: a real publisher (ffmpeg into
the real RTSP test server) taken by the OOM killer, storage errors and a read-only remount, pushed at once
and in the telemetry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.agent.rtsp import RtspServer
from tests.agent.test_api import auth, base_url, receive_until
from tests.agent.test_streams_e2e import (  # noqa: F401 - start_agent is a fixture
    AgentFactory,
    make_config,
    start_agent,
    test_stream,
    wait_state,
)


def is_event(kind: str) -> Any:
    return lambda m: m["type"] == "event" and m["event"]["type"] == kind


async def test_a_publisher_taken_by_the_oom_killer_exits_with_memory_pressure(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    status = await wait_state(agent, "cam1", {"running"})
    pid = status["pids"]["ffmpeg"]
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
            url = base_url(agent) + "/api/v1/simulation/oom_kill"
            async with session.post(url, json={"stream_id": "nope"}) as response:
                assert response.status == 409
            async with session.post(url, json={"stream_id": "cam1"}) as response:
                assert response.status == 202
            kill = await receive_until(ws, is_event("oom_kill"), 5)
            assert kill["event"]["data"]["pid"] == pid
            assert kill["event"]["data"]["stream_id"] == "cam1"
            assert kill["event"]["data"]["process"] == "ffmpeg"
            exit_event = await receive_until(ws, is_event("stream_exit"), 10)
        data = exit_event["event"]["data"]
        assert data["cause"] == "killed" and data["signal"] == "SIGKILL"
        assert data["contributing_condition"] == "memory_pressure"
        assert any(f"Killed process {pid} (ffmpeg)" in line for line in data["context"]["kernel_messages"])
        assert data["context"]["memory_available_bytes"] > 0
        assert data["context"]["under_voltage_now"] is False
        await asyncio.sleep(1.1)  # past the telemetry interval: the next read is a new sample
        async with session.get(base_url(agent) + "/api/v1/telemetry") as response:
            sample = await response.json()
    assert sample["oom_kills"]["total"] == 1
    assert sample["oom_kills"]["last"]["stream_id"] == "cam1"
    status = agent.streams.status("cam1", reader_host="127.0.0.1")  # type: ignore[union-attr]
    assert status["last_exit"]["contributing_condition"] == "memory_pressure"


async def test_storage_errors_and_a_read_only_root_are_pushed_and_sampled(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, []))
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.get(base_url(agent) + "/api/v1/telemetry") as response:
            before = await response.json()
        assert before["storage"]["root"]["device"] == "mmcblk0p2"
        assert before["storage"]["root"]["read_only"] is False
        assert before["storage"]["errors_total"] == 0
        assert 0 < before["storage"]["root"]["used_percent"] < 100
        assert before["boot"]["unexpected_reboot"] is False
        async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
            url = base_url(agent) + "/api/v1/simulation/storage_error"
            async with session.post(url, json={"read_only": "yes"}) as response:
                assert response.status == 400
            async with session.post(url, json={"read_only": True}) as response:
                assert response.status == 202
            event = await receive_until(ws, is_event("storage_error"), 5)
        assert event["event"]["data"]["message"] == "mmc0: timeout waiting for hardware interrupt."
        await asyncio.sleep(1.1)  # past the telemetry interval: the next read is a new sample
        async with session.get(base_url(agent) + "/api/v1/telemetry") as response:
            after = await response.json()
    assert after["storage"]["root"]["read_only"] is True
    assert after["storage"]["errors_total"] == 4
    assert "Remounting filesystem read-only" in after["storage"]["last_error"]["message"]


async def test_an_agent_that_did_not_stop_cleanly_reports_an_unexpected_reboot(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
) -> None:
    # The previous run's record: another boot, still running (a power cut never let it stop).
    state = tmp_path / "state"
    state.mkdir()
    (state / "boot.json").write_text(
        '{"boot_id": "an-earlier-boot", "last_boot": 1.0, "running": true, "unexpected_reboot": false}\n'
    )
    agent = await start_agent(make_config(tmp_path, rtsp_server, []))
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.get(base_url(agent) + "/api/v1/telemetry") as response:
            sample = await response.json()
    assert sample["boot"]["unexpected_reboot"] is True
    assert sample["boot"]["last_boot"] > 1_600_000_000
