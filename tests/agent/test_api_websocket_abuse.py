"""The WebSocket under abuse, against the real agent over loopback: messages no reply can carry, and slow
consumers that never read (issue 13, §4.3 and §4.4)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from pi_stream_agent.agent import Agent
from pi_stream_agent.api import websocket
from pi_stream_agent.config import AgentConfig, TelemetrySettings


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
            streams=(),
        )
    )
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def ws_url(agent: Agent) -> str:
    return f"http://127.0.0.1:{agent.port}/api/v1/ws"


def auth(agent: Agent) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.token}"}


async def next_reply(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    """The next pong or error (telemetry and events are skipped); fails on anything that is not JSON."""
    while True:
        message = await asyncio.wait_for(ws.receive(), 10)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        data = json.loads(message.data)
        if data["type"] in ("pong", "error"):
            return data  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "ping", "id": NaN}',
        '{"type": "ping", "id": -Infinity}',
        '{"type": "ping", "id": Infinity}',
        "[" * 5000,
        '{"type": "ping", "id": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"type": "ping", "id": "' + "x" * 10000 + '"}',
        '{"type": "ping", "id": {"nested": [1, 2]}}',
        '{"type": "' + "y" * 10000 + '"}',
    ],
    ids=["nan", "-infinity", "infinity", "deep-array", "deep-id", "long-id", "object-id", "long-type"],
)
async def test_a_message_no_reply_can_carry_gets_an_error_and_the_connection_stays_open(
    agent: Agent, text: str
) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.ws_connect(ws_url(agent)) as ws:
            await ws.send_str(text)
            reply = await next_reply(ws)
            assert reply["type"] == "error"
            error = reply["error"]
            assert isinstance(error, dict)
            assert error["code"] in ("invalid_json", "invalid_message", "unknown_type")
            assert len(json.dumps(reply)) < 400  # the reply does not echo what was sent
            await ws.send_str(json.dumps({"type": "ping", "id": "still-here"}))
            assert await next_reply(ws) == {"type": "pong", "id": "still-here"}


async def test_a_sample_with_a_number_json_cannot_carry_is_still_pushed(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.ws_connect(ws_url(agent)) as ws:
            agent.hub.broadcast_telemetry({"soc_temperature_c": float("nan"), "marker": 1})
            while True:
                message = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
                if message["type"] == "telemetry" and message["data"].get("marker") == 1:
                    break
            assert message["data"]["soc_temperature_c"] is None


# -- slow consumers ---------------------------------------------------------------------------------------


def masked_text_frame(text: str) -> bytes:
    """One client→server text frame (clients must mask; a zero key keeps the payload as it is)."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
    return header + b"\x00\x00\x00\x00" + payload


class NeverReadingClient:
    """A WebSocket client with a tiny receive buffer that reads the handshake answer and nothing after."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(1)  # byte by byte: nothing after the headers is taken off the socket
            assert chunk, "connection closed during the handshake"
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 101"), answer
        self.sock.setblocking(False)

    def send(self, data: bytes) -> bool:
        """Send what the socket takes now; False once the agent has closed or cut the connection."""
        try:
            self.sock.send(data)
        except BlockingIOError:
            pass
        except OSError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


async def test_slow_consumers_are_bounded_in_bytes_and_closed(agent: Agent) -> None:
    pings = masked_text_frame(json.dumps({"type": "ping", "id": "p" * websocket.MAX_PING_ID_CHARS})) * 200
    assert agent.port is not None
    clients = [await asyncio.to_thread(NeverReadingClient, agent.port, agent.token) for _ in range(20)]
    try:
        for _ in range(50):
            if agent.hub.client_count == 20:
                break
            await asyncio.sleep(0.1)
        assert agent.hub.client_count == 20
        peak = 0
        for _ in range(400):  # bounded: each round offers every client more pings and one big event
            for client in clients:
                client.send(pings)
            agent.bus.publish("test_padding", {"padding": "e" * 16000})
            await asyncio.sleep(0.02)
            peak = max(peak, agent.hub.queued_bytes)
            assert agent.hub.queued_bytes <= 20 * websocket.MAX_QUEUED_BYTES
            if agent.hub.client_count == 0:
                break
        # Every one of them fell behind and was dropped; nothing of theirs is held any more.
        assert agent.hub.client_count == 0
        assert agent.hub.queued_bytes == 0
        assert peak > 0
        # And the agent still serves others.
        async with aiohttp.ClientSession(headers=auth(agent)) as session:
            async with session.ws_connect(ws_url(agent)) as ws:
                await ws.send_str(json.dumps({"type": "ping", "id": 1}))
                assert await next_reply(ws) == {"type": "pong", "id": 1}
    finally:
        for client in clients:
            client.close()


async def test_the_server_cuts_a_dropped_client_that_does_not_read_the_close_frame(agent: Agent) -> None:
    assert agent.port is not None
    client = await asyncio.to_thread(NeverReadingClient, agent.port, agent.token)
    try:
        frame = masked_text_frame(json.dumps({"type": "ping", "id": "p" * 64})) * 200
        for _ in range(500):
            agent.bus.publish("test_padding", {"padding": "e" * 16000})
            if not client.send(frame):
                break
            await asyncio.sleep(0.02)
            if agent.hub.client_count == 0:
                break
        assert agent.hub.client_count == 0
        # The server end is gone too: the socket ends (reset, or EOF after the unread data).
        client.sock.settimeout(5)
        closed = False
        for _ in range(100_000):  # bounded: drains what the agent had sent before cutting
            try:
                data = await asyncio.to_thread(client.sock.recv, 65536)
            except ConnectionResetError:
                closed = True
                break
            except TimeoutError:
                break  # still open: the agent left the connection hanging
            if not data:
                closed = True
                break
        assert closed
    finally:
        client.close()


async def test_too_many_websocket_clients_are_refused_with_a_json_error(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(websocket, "MAX_CLIENTS", 2)
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.ws_connect(ws_url(agent)), session.ws_connect(ws_url(agent)):
            async with session.get(
                ws_url(agent),
                headers={
                    "Upgrade": "websocket",
                    "Connection": "Upgrade",
                    "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                    "Sec-WebSocket-Version": "13",
                },
            ) as response:
                assert response.status == 503
                assert (await response.json())["error"]["code"] == "too_many_clients"
