"""Routes that exist only in simulation mode: make the simulated Pi misbehave on request, so automations and
the Home Assistant integration can be tried (and tested) against edges a real Pi produces by itself."""

from __future__ import annotations

from aiohttp import web

from pi_stream_agent.api.errors import ApiError, read_json_object
from pi_stream_agent.simulation import SimulatedPi

SIMULATION_KEY = "pi_stream_simulation"
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


def add_simulation_routes(app: web.Application, simulation: SimulatedPi) -> None:
    app[SIMULATION_KEY] = simulation
    app.router.add_post("/api/v1/simulation/under_voltage", under_voltage)
