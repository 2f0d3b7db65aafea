"""Routes that exist only in simulation mode: make the simulated Pi misbehave on request, so automations and
the Home Assistant integration can be tried (and tested) against edges a real Pi produces by itself."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

from aiohttp import web

from pi_stream_agent.api.errors import ApiError, read_json_object
from pi_stream_agent.simulation import SimulatedPi

SIMULATION_KEY = "pi_stream_simulation"
PUBLISHERS_KEY = "pi_stream_simulation_publishers"
# The process a kill without a stream id takes: a browser on the Pi, the usual memory hog (made up).
OTHER_PROCESS = "chromium"
OTHER_PROCESS_PID = 31337
MAX_EPISODE_S = 600.0


async def under_voltage(request: web.Request) -> web.Response:
    """``POST /api/v1/simulation/under_voltage {"duration_s": 3}``: a supply sag on the simulated Pi."""
    simulation: SimulatedPi = request.app[SIMULATION_KEY]
    duration = (await read_json_object(request, 'e.g. {"duration_s": 3}', empty={})).get("duration_s", 3.0)
    if (
        isinstance(duration, bool)
        or not isinstance(duration, int | float)
        or not 0 < duration <= MAX_EPISODE_S
    ):
        raise ApiError(
            400, "invalid_parameter", f"duration_s must be a number of seconds in (0, {MAX_EPISODE_S:g}]"
        )
    simulation.trigger_under_voltage(float(duration))
    return web.json_response({"under_voltage": True, "duration_s": float(duration)}, status=202)


async def oom_kill(request: web.Request) -> web.Response:
    """``POST /api/v1/simulation/oom_kill {"stream_id": "front_door"}``: the kernel's OOM killer takes that
    stream's publisher (its lines are logged, then the real process gets SIGKILL, as the kernel does), so the
    exit carries ``memory_pressure``. Without a stream id another (made-up) process is killed: counted and
    pushed with ``stream_id`` null, nothing stops."""
    simulation: SimulatedPi = request.app[SIMULATION_KEY]
    body = await read_json_object(request, 'e.g. {"stream_id": "front_door"}', empty={})
    stream_id = body.get("stream_id")
    if stream_id is None:
        simulation.trigger_oom_kill(OTHER_PROCESS_PID, OTHER_PROCESS)
        return web.json_response({"oom_kill": True, "pid": OTHER_PROCESS_PID, "stream_id": None}, status=202)
    if not isinstance(stream_id, str):
        raise ApiError(400, "invalid_parameter", "stream_id must be the id of a running stream, as text")
    publishers: Callable[[], dict[str, int]] = request.app[PUBLISHERS_KEY]
    found = [(name, pid) for name, pid in publishers().items() if name.startswith(f"{stream_id}/")]
    if not found:
        raise ApiError(
            409, "not_running", f"stream {stream_id!r} has no running publisher to kill; start it first"
        )
    name, pid = found[-1]
    simulation.trigger_oom_kill(pid, name.partition("/")[2][:15])  # comm is 15 characters at most
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return web.json_response({"oom_kill": True, "pid": pid, "stream_id": stream_id}, status=202)


async def storage_error(request: web.Request) -> web.Response:
    """``POST /api/v1/simulation/storage_error {"read_only": false}``: the SD card fails a write; with
    ``read_only`` true, ext4 gives up and the root filesystem is remounted read-only."""
    simulation: SimulatedPi = request.app[SIMULATION_KEY]
    read_only = (await read_json_object(request, 'e.g. {"read_only": true}', empty={})).get(
        "read_only", False
    )
    if not isinstance(read_only, bool):
        raise ApiError(400, "invalid_parameter", "read_only must be true or false")
    simulation.trigger_storage_error(read_only)
    return web.json_response({"storage_error": True, "read_only": read_only}, status=202)


def add_simulation_routes(
    app: web.Application, simulation: SimulatedPi, publishers: Callable[[], dict[str, int]]
) -> None:
    """``publishers``: tracked process name (``<stream>/<program>``) → pid, the telemetry's process watch."""
    app[SIMULATION_KEY] = simulation
    app[PUBLISHERS_KEY] = publishers
    app.router.add_post("/api/v1/simulation/under_voltage", under_voltage)
    app.router.add_post("/api/v1/simulation/oom_kill", oom_kill)
    app.router.add_post("/api/v1/simulation/storage_error", storage_error)
