"""The aiohttp application for API v1: token check, JSON errors, routes. See docs/api.md."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from pi_stream_agent.api.errors import ApiError, from_http_exception, json_error
from pi_stream_agent.api.vocabulary import add_vocabulary_route
from pi_stream_agent.api.websocket import WebSocketHub
from pi_stream_agent.credentials import tokens_match

_LOGGER = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# No request to API v1 needs more than this; anything larger is refused before it is read.
MAX_REQUEST_BODY_BYTES = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Backend(Protocol):
    """What the API serves; implemented by the running agent (and by stand-ins in tests)."""

    @property
    def token(self) -> str: ...

    def info(self) -> dict[str, Any]: ...

    async def telemetry(self) -> dict[str, Any]: ...

    def devices(self) -> dict[str, Any]: ...

    async def refresh_devices(self) -> dict[str, Any]: ...


BACKEND_KEY = "pi_stream_backend"
HUB_KEY = "pi_stream_hub"


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON error; an unexpected one is logged here, not shown to the client."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_http_exception(exc)
    except Exception:
        _LOGGER.exception("Unhandled error serving %s %s", request.method, request.path)
        return json_error(500, "internal_error", "the agent failed to handle this request; see its log")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Checked before routing, so without the token nothing is revealed, not even which routes exist.
    backend: Backend = request.app[BACKEND_KEY]
    presented = _bearer_token(request)
    if presented is None:
        return json_error(401, "unauthorized", "missing token: send 'Authorization: Bearer <token>'")
    if not tokens_match(presented, backend.token):
        return json_error(401, "unauthorized", "invalid token (see 'pi-stream-agent token' on the Pi)")
    return await handler(request)


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # aiohttp enforces client_max_size only when a handler reads the body; read it here, once, so an
    # oversized request is refused (413) even by handlers that ignore bodies. Handlers reuse the cache.
    if request.body_exists:
        await request.read()
    return await handler(request)


async def _info(request: web.Request) -> web.Response:
    backend: Backend = request.app[BACKEND_KEY]
    return web.json_response(backend.info())


async def _telemetry(request: web.Request) -> web.Response:
    backend: Backend = request.app[BACKEND_KEY]
    return web.json_response(await backend.telemetry())


async def _devices(request: web.Request) -> web.Response:
    backend: Backend = request.app[BACKEND_KEY]
    return web.json_response(backend.devices())


async def _refresh_devices(request: web.Request) -> web.Response:
    backend: Backend = request.app[BACKEND_KEY]
    return web.json_response(await backend.refresh_devices())


async def _websocket(request: web.Request) -> web.StreamResponse:
    hub: WebSocketHub = request.app[HUB_KEY]
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError(
            400, "websocket_required", "this endpoint speaks WebSocket only (send an Upgrade request)"
        )
    return await hub.handle(request)


def create_app(backend: Backend, hub: WebSocketHub) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware, body_limit_middleware],
        client_max_size=MAX_REQUEST_BODY_BYTES,
    )
    app[BACKEND_KEY] = backend
    app[HUB_KEY] = hub
    app.router.add_get(f"{API_PREFIX}/info", _info)
    app.router.add_get(f"{API_PREFIX}/telemetry", _telemetry)
    app.router.add_get(f"{API_PREFIX}/devices", _devices)
    app.router.add_post(f"{API_PREFIX}/devices/refresh", _refresh_devices)
    app.router.add_get(f"{API_PREFIX}/ws", _websocket)
    add_vocabulary_route(app)
    return app
