"""HTTP requests that used to get a 500 (or a traceback per request in the log), against the real agent over
loopback (issue 13, §4.6). The disk-full case is injected at the OS boundary of the atomic write (fsync
reporting ENOSPC, as it does when delayed allocation finds no space): no tmpfs can be mounted here."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from pi_stream_agent import fsutil
from pi_stream_agent.agent import Agent
from pi_stream_agent.config import AgentConfig, TelemetrySettings

PORCH = {
    "id": "porch",
    "enabled": False,
    "source": {"type": "test", "pattern": "testsrc2"},
    "width": 640,
    "height": 480,
    "fps": 10,
    "bitrate": "800k",
}


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    running = Agent(
        AgentConfig(
            host="127.0.0.1",
            port=0,
            state_dir=tmp_path / "state",
            telemetry=TelemetrySettings(interval_s=1.0),
            zeroconf_enabled=False,
            simulate=True,
            streams=(PORCH,),  # disabled: no publisher runs, but the stream exists
        )
    )
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def url(agent: Agent, path: str) -> str:
    return f"http://127.0.0.1:{agent.port}{path}"


def auth(agent: Agent) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.token}"}


async def raw_request(agent: Agent, request: bytes) -> bytes:
    """Send bytes as they are (no client library would send them) and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", agent.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_a_deeply_nested_body_is_a_400_not_a_500(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        for body in ("[" * 5000 + "]" * 5000, '{"id": ' + "[" * 5000 + "]" * 5000 + "}"):
            async with session.put(url(agent, "/api/v1/streams/porch"), data=body) as response:
                assert response.status == 400
                error = (await response.json())["error"]
                # Python 3.11's parser runs out of recursion here (said plainly); 3.13's copes.
                assert error["code"] in ("invalid_json", "invalid_body", "id_mismatch")
                if error["code"] == "invalid_json":
                    assert "nested too deeply" in error["message"]
        async with session.put(url(agent, "/api/v1/streams/porch"), data='{"fps": NaN}') as response:
            assert response.status == 400
            assert "finite" in (await response.json())["error"]["message"]


async def test_a_host_header_that_is_no_host_still_gets_the_streams(agent: Agent) -> None:
    answer = await raw_request(
        agent,
        b"GET /api/v1/streams HTTP/1.1\r\nHost: [\r\nAuthorization: Bearer "
        + agent.token.encode()
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"porch"' in answer


async def test_delete_with_a_corrupt_store_is_a_503_that_says_what_to_do(agent: Agent) -> None:
    store = agent.config.state_dir / "streams.yaml"
    store.write_text("streams: [ {id: porch\n")
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.delete(url(agent, "/api/v1/streams/porch")) as response:
            assert response.status == 503
            error = (await response.json())["error"]
            assert error["code"] == "stored_config_unusable"
            assert "nothing was changed" in error["message"]
        async with session.put(url(agent, "/api/v1/streams/porch"), json=PORCH) as response:
            assert response.status == 503
    assert store.read_text() == "streams: [ {id: porch\n"  # kept for the person to fix


async def test_disk_full_on_put_and_delete_is_a_507_and_the_data_is_safe(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.put(url(agent, "/api/v1/streams/porch"), json={**PORCH, "name": "Porch"}) as r:
            assert r.status == 200  # streams.yaml now exists
        before = (agent.config.state_dir / "streams.yaml").read_bytes()

        def disk_full(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(fsutil.os, "fsync", disk_full)
        async with session.put(url(agent, "/api/v1/streams/porch"), json={**PORCH, "name": "Changed"}) as r:
            assert r.status == 507
            error = (await r.json())["error"]
            assert error["code"] == "insufficient_storage"
            assert "disk is full" in error["message"] and "unchanged" in error["message"]
        async with session.delete(url(agent, "/api/v1/streams/porch")) as r:
            assert r.status == 507
        monkeypatch.undo()
        assert (agent.config.state_dir / "streams.yaml").read_bytes() == before
        assert not list(agent.config.state_dir.glob(".streams.yaml*.tmp"))  # no leftovers
        async with session.get(url(agent, "/api/v1/streams/porch")) as r:
            assert r.status == 200


async def test_malformed_http_is_answered_in_json_and_logged_once_per_window(
    agent: Agent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(200):
        answer = await raw_request(agent, b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400")), answer[:200]
        assert b"application/json" in head
        assert b'"code": "bad_request"' in body
        assert b"Python" not in head and b"aiohttp" not in head
    lines = [r for r in caplog.records if "alformed" in r.getMessage() or "Error handling" in r.getMessage()]
    assert 1 <= len(lines) <= 2, [r.getMessage() for r in lines]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.ERROR)


async def test_the_server_header_names_no_versions(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        for path in ("/api/v1/info", "/api/v1/nowhere"):
            async with session.get(url(agent, path)) as response:
                assert response.headers["Server"] == "pi-stream-agent"
        async with session.get(url(agent, "/api/v1/info"), headers={"Authorization": "x"}) as response:
            assert response.status == 401
            assert response.headers["Server"] == "pi-stream-agent"
