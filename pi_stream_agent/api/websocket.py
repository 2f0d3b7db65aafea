"""WebSocket push: telemetry on an interval, events the moment they happen, to every connected client.

Each message is serialised once and shared by all clients. A client that cannot keep up never slows the
others, and never pins the agent's memory: its telemetry is coalesced (only the newest pending sample is
kept), everything else it has not read yet is counted in bytes, and a client whose backlog passes
``MAX_QUEUED_BYTES`` — or that has not taken a message for ``SEND_TIMEOUT_S`` — is closed with 1013 ("try
again later") so it can reconnect and resynchronise. A client that does not read even the close frame has
its connection cut. Whatever a client sends, it gets a JSON reply and the connection stays open (docs/api.md,
"WebSocket").
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from pi_stream_agent.api.errors import ApiError, parse_json
from pi_stream_agent.events import Event

_LOGGER = logging.getLogger(__name__)

# Limits; docs/api.md ("WebSocket: limits") states them for client authors.
MAX_CLIENTS = 32
MAX_CLIENT_MESSAGE_BYTES = 16 * 1024
MAX_QUEUED_BYTES = 512 * 1024  # per client: what it has not read yet (a telemetry sample is ~3 KiB)
MAX_PING_ID_CHARS = 64  # a ping's id is echoed back, so its size bounds the reply
SEND_TIMEOUT_S = 30.0  # a client that takes no message for this long is not reading
CLOSE_GRACE_S = 2.0  # for a close frame to reach a client being dropped; then the connection is cut
HEARTBEAT_S = 30.0
# WebSocket close codes: 1013 "try again later" (the client fell too far behind), 1001 "going away".
CLOSE_TOO_SLOW = 1013
CLOSE_GOING_AWAY = 1001


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON. A number that is not finite (JSON has no NaN) becomes null, as for any value the agent
    could not read, rather than failing the whole message."""
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


class _Client:
    """One connected client: what it has not been sent yet, and the task that sends it."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self._transport = request.transport
        self._events: deque[str] = deque()
        self._telemetry: str | None = None
        self.queued_bytes = 0
        self._wake = asyncio.Event()
        self.pump_task: asyncio.Task[None] | None = None
        self.dropping: asyncio.Task[None] | None = None

    def push_event(self, text: str) -> None:
        if self.dropping is not None:
            return
        self._events.append(text)
        self.queued_bytes += len(text)
        self._check_backlog()
        self._wake.set()

    def push_telemetry(self, text: str) -> None:
        if self.dropping is not None:
            return
        # Newer replaces older: a late client gets the freshest state only.
        if self._telemetry is not None:
            self.queued_bytes -= len(self._telemetry)
        self._telemetry = text
        self.queued_bytes += len(text)
        self._check_backlog()
        self._wake.set()

    def _check_backlog(self) -> None:
        if self.queued_bytes > MAX_QUEUED_BYTES:
            self.drop(CLOSE_TOO_SLOW, "client too slow; reconnect")

    def _next(self) -> str | None:
        if self._events:
            text = self._events.popleft()
        elif self._telemetry is not None:
            text, self._telemetry = self._telemetry, None
        else:
            return None
        self.queued_bytes -= len(text)
        return text

    async def pump(self) -> None:
        """Send queued messages until the socket closes; a send that does not complete in time means the
        client has stopped reading."""
        while not self.ws.closed:
            await self._wake.wait()
            self._wake.clear()
            while (text := self._next()) is not None:
                try:
                    await asyncio.wait_for(self.ws.send_str(text), SEND_TIMEOUT_S)
                except TimeoutError:
                    self.drop(CLOSE_TOO_SLOW, "client not reading; reconnect")
                    return

    def drop(self, code: int, reason: str) -> None:
        """Close this client (once), without waiting for it; its backlog is released at once."""
        if self.dropping is not None:
            return
        self._events.clear()
        self._telemetry = None
        self.queued_bytes = 0
        self.dropping = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if self.pump_task is not None and self.pump_task is not asyncio.current_task():
            self.pump_task.cancel()
        delivered = True
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), CLOSE_GRACE_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            delivered = False
        # A client that does not read cannot take the close frame either: the socket would never drain,
        # so the connection (and its buffers) would stay. Cut it.
        transport = self._transport
        if transport is not None and (not delivered or transport.get_write_buffer_size() > 0):
            transport.abort()


class WebSocketHub:
    """Fans messages out to the connected clients."""

    def __init__(
        self, hello: Callable[[], dict[str, Any]], snapshot: Callable[[], Awaitable[dict[str, Any] | None]]
    ) -> None:
        self._hello = hello
        self._snapshot = snapshot
        self._clients: set[_Client] = set()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @property
    def queued_bytes(self) -> int:
        """What all clients together have not been sent yet (bounded by MAX_CLIENTS × MAX_QUEUED_BYTES)."""
        return sum(client.queued_bytes for client in self._clients)

    def broadcast_telemetry(self, sample: dict[str, Any]) -> None:
        if not self._clients:
            return
        text = dumps({"type": "telemetry", "data": sample})
        for client in list(self._clients):
            client.push_telemetry(text)

    def broadcast_event(self, event: Event) -> None:
        if not self._clients:
            return
        text = dumps({"type": "event", "event": event.to_json()})
        for client in list(self._clients):
            client.push_event(text)

    async def close_all(self) -> None:
        for client in list(self._clients):
            client.drop(CLOSE_GOING_AWAY, "agent shutting down")
        closing = [client.dropping for client in self._clients if client.dropping is not None]
        closing += list(self._closing)
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        if len(self._clients) >= MAX_CLIENTS:
            raise ApiError(
                503,
                "too_many_clients",
                f"the agent already serves {MAX_CLIENTS} WebSocket clients; close one and try again",
            )
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_CLIENT_MESSAGE_BYTES)
        await ws.prepare(request)
        client = _Client(ws, request)
        # Registered before the snapshot is taken, so nothing that happens meanwhile is lost: events queue
        # behind the state they change, and the pump sends them after it.
        self._clients.add(client)
        try:
            # The client gets the agent's identity and the current state first, then only changes.
            await ws.send_str(dumps({"type": "hello", **self._hello()}))
            current = await self._snapshot()
            if current is not None:
                await ws.send_str(dumps({"type": "telemetry", "data": current}))
            client.pump_task = asyncio.create_task(client.pump())
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    client.push_event(dumps(_answer(message.data)))
                elif message.type == WSMsgType.BINARY:
                    client.push_event(dumps(_error("unsupported", "send JSON text messages")))
                elif message.type == WSMsgType.ERROR:
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._clients.discard(client)
            await self._finish(client)
        return ws

    async def _finish(self, client: _Client) -> None:
        if client.pump_task is not None:
            client.pump_task.cancel()
            try:
                await client.pump_task
            except (asyncio.CancelledError, ConnectionResetError, RuntimeError):
                pass  # the peer went away mid-send: nothing to tell it
            except Exception:
                _LOGGER.debug("WebSocket sender ended with an error", exc_info=True)
        if client.dropping is not None:
            # Keep the close going after this handler returns (the hub holds the task until it ends).
            self._closing.add(client.dropping)
            client.dropping.add_done_callback(self._closing.discard)


def _answer(text: str) -> dict[str, Any]:
    """The reply to one client message; never raises, whatever the text holds."""
    try:
        message = parse_json(text, "the message")
    except ApiError as exc:
        return _error(exc.code, exc.message)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return _error("invalid_message", 'messages are JSON objects with a "type"')
    if message["type"] == "ping":
        reply: dict[str, Any] = {"type": "pong"}
        if "id" in message:
            ping_id = message["id"]
            if not _echoable(ping_id):
                return _error(
                    "invalid_message",
                    f"a ping's id must be a number or a string of at most {MAX_PING_ID_CHARS} characters",
                )
            reply["id"] = ping_id
        return reply
    kind = message["type"]
    shown = kind if len(kind) <= MAX_PING_ID_CHARS else kind[:MAX_PING_ID_CHARS] + "…"
    return _error("unknown_type", f"unknown message type {shown!r}; supported: ping")


def _echoable(value: Any) -> bool:
    if value is None or isinstance(value, bool | int):
        return not isinstance(value, int) or abs(value) < 10**18
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= MAX_PING_ID_CHARS


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message}}
