"""Housekeeping routes (POST, authenticated): ``/api/v1/agent/restart``, ``/api/v1/system/reboot``,
``/api/v1/system/shutdown``. 202 ``{"accepted": true, "action": …}`` and then the action, or 403
``power_control_disabled`` with what to change when the agent's config does not allow it. What each action
does, and how a simulated Pi only records it: :mod:`pi_stream_agent.housekeeping`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from pi_stream_agent.api.errors import ApiError
from pi_stream_agent.housekeeping import (
    AGENT_RESTART,
    DISABLED_MESSAGE,
    REBOOT,
    SHUTDOWN,
    PowerControl,
)

POWER_CONTROL_KEY = "pi_stream_power_control"

ROUTES: dict[str, str] = {
    "/api/v1/agent/restart": AGENT_RESTART,
    "/api/v1/system/reboot": REBOOT,
    "/api/v1/system/shutdown": SHUTDOWN,
}


def _handler(action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        control: PowerControl = request.app[POWER_CONTROL_KEY]
        if not control.allowed:
            raise ApiError(403, "power_control_disabled", DISABLED_MESSAGE)
        return web.json_response(control.accept(action), status=202)

    return handle


def add_housekeeping_routes(app: web.Application, control: PowerControl) -> None:
    app[POWER_CONTROL_KEY] = control
    for path, action in ROUTES.items():
        app.router.add_post(path, _handler(action))
