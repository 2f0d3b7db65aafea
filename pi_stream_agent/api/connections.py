"""The API's listening socket and the connections on it, bounded so no client can starve the agent.

Without bounds, idle or trickling connections (slowloris) each hold a file descriptor forever: a few
thousand exhaust the agent's descriptors, after which authenticated requests wait, a publisher that died
cannot be restarted (``Too many open files``) and asyncio logs every failed accept. So:

- **Header/idle timeout.** A connection must deliver a request's headers within ``header_timeout_s`` of its
  first byte (and a new connection its first request within that time); an authenticated keep-alive
  connection may then sit idle for ``idle_timeout_s``. A request in progress (a WebSocket included) is never
  timed out here. A timed-out request gets a JSON 408.
- **Caps.** At most ``max_unauthenticated`` connections that have not yet presented the token, and at most
  ``max_connections`` in all. A new connection over a cap pushes out the oldest idle one (of the address
  holding the most, so one flooding client only pushes out its own); if none is idle it is refused (503).
- **A reserve of descriptors.** ``max_connections`` is derived from ``RLIMIT_NOFILE`` so that a reserve stays
  free for the supervisor (pipes of publishers, /proc reads), whatever clients do.
- **Malformed HTTP** gets a JSON error like every other error, and is logged once per window with a count
  (as is asyncio's accept error, should descriptors still run out).

Connection state is kept on the aiohttp request handler (``GuardedRequestHandler``); the app's
``connection_middleware`` marks requests in progress and ``mark_authenticated`` the token check.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pi_stream_agent.api.errors import error_body
from pi_stream_agent.api.logfilter import OncePerWindow

_LOGGER = logging.getLogger(__name__)

SERVER_NAME = "pi-stream-agent"  # the Server header: no Python or aiohttp version for anyone to aim at
# Kept free for the supervisor and telemetry, whatever the clients do: at least this many, or 1/8 of all.
MIN_RESERVED_DESCRIPTORS = 64
# A Pi serves Home Assistant and a few tools; more than this many connections is abuse, not use.
MAX_CONNECTIONS_CEILING = 256
MAX_UNAUTHENTICATED_CEILING = 64
# asyncio accepts up to the listen backlog in one go, before any new connection can be judged: keep it
# small, and count it against the budget, so a burst cannot overshoot the caps into the reserve.
LISTEN_BACKLOG = 16
# Loggers a client can make repeat one message without end: asyncio (failed accepts), aiohttp's server.
_FLOODABLE_LOGGERS = ("asyncio", "aiohttp.server")


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    max_unauthenticated: int
    header_timeout_s: float = 5.0
    idle_timeout_s: float = 60.0

    @classmethod
    def from_rlimit(cls) -> ConnectionLimits:
        """Caps that leave a reserve of the process's file descriptors (RLIMIT_NOFILE) unused."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            soft = 1 << 20
        try:
            in_use = len(os.listdir("/proc/self/fd"))
        except OSError:
            in_use = 64
        reserve = max(MIN_RESERVED_DESCRIPTORS, soft // 8)
        total = max(4, min(MAX_CONNECTIONS_CEILING, soft - in_use - reserve - 2 * LISTEN_BACKLOG))
        return cls(
            max_connections=total, max_unauthenticated=max(2, min(MAX_UNAUTHENTICATED_CEILING, total // 2))
        )


@dataclass
class ConnectionState:
    peer: str
    waiting_since: float  # since the connection is waiting for its next request
    first_byte_at: float | None = None  # of the request now arriving (headers not complete yet)
    busy: bool = False  # a request is being handled (a WebSocket, for its whole life)
    authenticated: bool = False
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    import json  # noqa: PLC0415 - only for these few constants

    body = json.dumps(error_body(code, message)).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nServer: {SERVER_NAME}\r\nContent-Type: application/json; "
        f"charset=utf-8\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


_TIMED_OUT = _raw_response(
    408, "Request Timeout", "request_timeout", "the request did not arrive in time; send it again"
)
_REFUSED = _raw_response(
    503,
    "Service Unavailable",
    "too_many_connections",
    "the agent has too many open connections; try again in a moment",
)


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, reporting to the guard and answering malformed HTTP in JSON."""

    def __init__(self, guard: ConnectionGuard, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.guard = guard
        self.guard_state: ConnectionState | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.guard.admit(self, transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        state = self.guard_state
        if state is not None and not state.busy and state.first_byte_at is None and data:
            state.first_byte_at = self.guard.now()
            self.guard.arm(self)
        super().data_received(data)

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # part of a response is out: no second one can follow
            raise ConnectionError("response already partly sent; cannot send an error response")
        if status >= 500:
            _LOGGER.error("Error handling a request", exc_info=exc)
            code, text = "internal_error", "the agent failed to handle this request; see its log"
        else:
            peer = self.guard_state.peer if self.guard_state is not None else "?"
            self.guard.malformed_log.log(
                _LOGGER, logging.WARNING, "Malformed HTTP request from %s refused: %s", peer, exc or message
            )
            code = "headers_too_large" if status == 431 else "bad_request"
            text = f"malformed HTTP request ({message or exc or 'unreadable'}); check the client"
            text = text.replace("\r", " ").replace("\n", " ")[:300]
        response = web.json_response(error_body(code, text), status=status)
        response.headers["Server"] = SERVER_NAME
        response.force_close()
        return response


class ConnectionGuard:
    """Tracks every connection of one listener and enforces ``limits`` (see the module docstring)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._loop = asyncio.get_running_loop()
        self._connections: dict[GuardedRequestHandler, ConnectionState] = {}  # in order of arrival
        self.malformed_log = OncePerWindow()
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    def now(self) -> float:
        return self._loop.time()

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def admit(self, handler: GuardedRequestHandler, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        state = ConnectionState(
            peer=str(peer[0]) if isinstance(peer, tuple) else "?", waiting_since=self.now()
        )
        handler.guard_state = state
        self._connections[handler] = state
        self.arm(handler)
        self._enforce_caps()

    def forget(self, handler: GuardedRequestHandler) -> None:
        state = self._connections.pop(handler, None)
        if state is not None and state.timer is not None:
            state.timer.cancel()

    def request_started(self, handler: GuardedRequestHandler) -> None:
        state = self._connections.get(handler)
        if state is not None:
            state.busy = True
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None

    def request_finished(self, handler: GuardedRequestHandler) -> None:
        state = self._connections.get(handler)
        if state is not None:
            state.busy = False
            state.first_byte_at = None
            state.waiting_since = self.now()
            self.arm(handler)

    def mark_authenticated(self, handler: GuardedRequestHandler) -> None:
        state = self._connections.get(handler)
        if state is not None:
            state.authenticated = True

    def close_all(self) -> None:
        for handler in list(self._connections):
            self._close(handler, None)

    # -- timeouts -----------------------------------------------------------------------------------------

    def _deadline(self, state: ConnectionState) -> float:
        if state.first_byte_at is not None:
            return state.first_byte_at + self.limits.header_timeout_s
        if state.authenticated:
            return state.waiting_since + self.limits.idle_timeout_s
        return state.waiting_since + self.limits.header_timeout_s

    def arm(self, handler: GuardedRequestHandler) -> None:
        state = self._connections.get(handler)
        if state is None or state.busy:
            return
        if state.timer is not None:
            state.timer.cancel()
        state.timer = self._loop.call_at(self._deadline(state), self._check, handler)

    def _check(self, handler: GuardedRequestHandler) -> None:
        state = self._connections.get(handler)
        if state is None or state.busy:
            return
        state.timer = None
        if self.now() < self._deadline(state):
            self.arm(handler)
            return
        self.timed_out += 1
        # A request half sent is told why; an idle connection is simply closed (the client reconnects).
        self._close(handler, _TIMED_OUT if state.first_byte_at is not None else None)

    # -- caps ---------------------------------------------------------------------------------------------

    def _enforce_caps(self) -> None:
        unauthenticated = [h for h, s in self._connections.items() if not s.authenticated]
        while len(unauthenticated) > self.limits.max_unauthenticated:
            victim = self._victim(unauthenticated)
            unauthenticated.remove(victim)
            self._push_out(victim)
        while len(self._connections) > self.limits.max_connections:
            unauthenticated = [h for h, s in self._connections.items() if not s.authenticated]
            self._push_out(self._victim(unauthenticated or list(self._connections)))

    def _victim(self, candidates: list[GuardedRequestHandler]) -> GuardedRequestHandler:
        """The oldest idle connection of the address holding the most; the newest when none is idle."""
        idle = [h for h in candidates if not self._connections[h].busy]
        if not idle:
            return candidates[-1]
        counts = Counter(self._connections[h].peer for h in idle)
        crowded = max(counts, key=lambda peer: counts[peer])
        return next(h for h in idle if self._connections[h].peer == crowded)

    def _push_out(self, handler: GuardedRequestHandler) -> None:
        state = self._connections[handler]
        if state.busy:
            self.refused += 1  # everything is in use: the newcomer is turned away
        else:
            self.evicted += 1
        self._close(handler, _REFUSED)

    def _close(self, handler: GuardedRequestHandler, answer: bytes | None) -> None:
        self.forget(handler)
        transport = handler.transport
        if transport is not None and answer is not None and not transport.is_closing():
            transport.write(answer)
        handler.force_close()


class ApiListener:
    """The API's TCP listener: aiohttp's request handling behind a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, limits: ConnectionLimits | None = None) -> None:
        self._runner = runner
        self._limits = limits
        self._server: asyncio.AbstractServer | None = None
        self.guard: ConnectionGuard | None = None
        self._accept_log = OncePerWindow()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with port 0)."""
        loop = asyncio.get_running_loop()
        guard = self.guard = ConnectionGuard(self._limits or ConnectionLimits.from_rlimit())
        manager = self._runner.server
        assert manager is not None, "runner.setup() first"
        idle = guard.limits.idle_timeout_s

        def protocol() -> GuardedRequestHandler:
            return GuardedRequestHandler(guard, manager, loop=loop, keepalive_timeout=idle, access_log=None)

        # asyncio logs every failed accept (EMFILE) with a traceback: once per window is enough.
        for name in _FLOODABLE_LOGGERS:
            logging.getLogger(name).addFilter(self._accept_log)
        self._server = await loop.create_server(
            protocol, host, port, reuse_address=True, backlog=LISTEN_BACKLOG
        )
        sockets: list[socket.socket] = list(self._server.sockets or [])
        _LOGGER.debug("connection limits: %s", guard.limits)
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.guard is not None:
            self.guard.close_all()
        for name in _FLOODABLE_LOGGERS:
            logging.getLogger(name).removeFilter(self._accept_log)
