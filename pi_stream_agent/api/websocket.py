"""WebSocket push: telemetry on an interval, events the moment they happen, to every connected client.

Each message is serialised once and shared by all clients. A client that cannot keep up never slows the
others: its telemetry is coalesced (only the newest pending sample is kept) and, if even its event queue
overflows, it is disconnected with a reason so it can reconnect and resynchronise.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from pi_stream_agent.events import Event

_LOGGER = logging.getLogger(__name__)

MAX_CLIENT_MESSAGE_BYTES = 16 * 1024
MAX_PENDING_EVENTS = 512
HEARTBEAT_S = 30.0
# WebSocket close code 1013 "try again later": the client fell too far behind.
CLOSE_TOO_SLOW = 1013


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


class _Client:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._events: deque[str] = deque()
        self._telemetry: str | None = None
        self._wake = asyncio.Event()
        self.overflowed = False

    def push_event(self, text: str) -> None:
        if len(self._events) >= MAX_PENDING_EVENTS:
            self.overflowed = True
        else:
            self._events.append(text)
        self._wake.set()

    def push_telemetry(self, text: str) -> None:
        self._telemetry = text  # newer replaces older: a late client gets the freshest state only
        self._wake.set()

    async def pump(self) -> None:
        """Send queued messages until the socket closes."""
        while not self.ws.closed:
            await self._wake.wait()
            self._wake.clear()
            if self.overflowed:
                await self.ws.close(code=CLOSE_TOO_SLOW, message=b"client too slow; reconnect")
                return
            while self._events:
                await self.ws.send_str(self._events.popleft())
            if self._telemetry is not None:
                text, self._telemetry = self._telemetry, None
                await self.ws.send_str(text)


class WebSocketHub:
    """Fans messages out to the connected clients."""

    def __init__(
        self, hello: Callable[[], dict[str, Any]], snapshot: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> None:
        self._hello = hello
        self._snapshot = snapshot
        self._clients: set[_Client] = set()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def broadcast_telemetry(self, sample: dict[str, Any]) -> None:
        if not self._clients:
            return
        text = dumps({"type": "telemetry", "data": sample})
        for client in self._clients:
            client.push_telemetry(text)

    def broadcast_event(self, event: Event) -> None:
        if not self._clients:
            return
        text = dumps({"type": "event", "event": event.to_json()})
        for client in self._clients:
            client.push_event(text)

    async def close_all(self) -> None:
        for client in list(self._clients):
            await client.ws.close(code=1001, message=b"agent shutting down")

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_CLIENT_MESSAGE_BYTES)
        await ws.prepare(request)
        client = _Client(ws)
        # Registered before the snapshot is taken, so nothing that happens meanwhile is lost: events queue
        # behind the state they change, and the pump sends them after it.
        self._clients.add(client)
        pump: asyncio.Task[None] | None = None
        try:
            # The client gets the agent's identity and the current state first, then only changes.
            await ws.send_str(dumps({"type": "hello", **self._hello()}))
            current = await self._snapshot()
            if current is not None:
                await ws.send_str(dumps({"type": "telemetry", "data": current}))
            pump = asyncio.create_task(client.pump())
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    reply = self._answer(message.data)
                    if reply is not None:
                        client.push_event(dumps(reply))
                elif message.type == WSMsgType.BINARY:
                    client.push_event(dumps(_error("unsupported", "send JSON text messages")))
                elif message.type == WSMsgType.ERROR:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(client)
            if pump is not None:
                pump.cancel()
                try:
                    await pump
                except (asyncio.CancelledError, ConnectionResetError, RuntimeError):
                    pass  # the peer went away mid-send: nothing to tell it
                except Exception:
                    _LOGGER.debug("WebSocket sender ended with an error", exc_info=True)
        return ws

    def _answer(self, text: str) -> dict[str, Any] | None:
        try:
            message = json.loads(text)
        except ValueError:
            return _error("invalid_json", "message is not valid JSON")
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return _error("invalid_message", 'messages are JSON objects with a "type"')
        if message["type"] == "ping":
            reply: dict[str, Any] = {"type": "pong"}
            if "id" in message:
                reply["id"] = message["id"]
            return reply
        return _error("unknown_type", f"unknown message type {message['type']!r}; supported: ping")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message}}
