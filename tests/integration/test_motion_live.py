"""Real motion, end to end: the motion detection switch in Home Assistant turns the agent's detection on,
the garage's still colour bars are learnt, then its picture turns into the moving test pattern (testsrc2),
and the motion sensor, the stream's event entity and the motion snapshot follow the agent's pushed
``motion`` event; the picture is the agent's JPEG, and the diagnostics carry the stream's motion.

The test patterns carry a moving clock in their top-left corner: the region leaves it out, as a person does
with a timestamp overlay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_ON, STATE_ON, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.pi_stream.diagnostics import async_get_config_entry_diagnostics
from tests.integration.agent_process import AgentProcess
from tests.integration.stable_agent import StableAgentProcess, run_agent, wait_for

MOTION = "binary_sensor.garage_motion"
SNAPSHOT = "image.garage_motion_snapshot"
EVENTS = "event.garage_stream_events"
BELOW_THE_CLOCK = {"x": 0.0, "y": 0.3, "width": 1.0, "height": 0.7}
STILL_SAMPLES = 3  # telemetry samples (1 s each) in which the still scene is learnt


async def make_the_garage_move(hass: HomeAssistant, agent: AgentProcess) -> None:
    """Motion detection on (through its switch in Home Assistant) over the still bars, below the clock;
    once the scene is learnt, the picture starts moving."""
    garage = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    config = {**garage["config"], "motion_region": BELOW_THE_CLOCK}
    await hass.async_add_executor_job(agent.request, "PUT", "/streams/garage", config)
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: "switch.garage_motion_detection"}, blocking=True
    )
    await wait_for(hass, lambda: hass.states.get(MOTION).state != STATE_UNAVAILABLE, "motion detection on")
    await hass.async_add_executor_job(agent.wait_streams_running)
    coordinator = hass.config_entries.async_entries("pi_stream")[0].runtime_data
    since = coordinator.data.telemetry["timestamp"]
    await wait_for(
        hass,
        lambda: coordinator.data.telemetry["timestamp"] >= since + STILL_SAMPLES,
        "the still scene learnt",
    )
    assert hass.states.get(MOTION).state == "off"  # a still scene is no motion
    garage = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    moving = {**garage["config"], "source": {"type": "test", "pattern": "testsrc2"}}
    await hass.async_add_executor_job(agent.request, "PUT", "/streams/garage", moving)


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


@pytest.fixture(autouse=True)
def platforms() -> Iterator[None]:
    with patch(
        "custom_components.pi_stream.PLATFORMS",
        [Platform.BINARY_SENSOR, Platform.EVENT, Platform.IMAGE, Platform.SWITCH],
    ):
        yield


async def test_a_moving_picture_is_noticed(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: StableAgentProcess,
    init_integration: MockConfigEntry,
) -> None:
    assert hass.states.get(MOTION).state == STATE_UNAVAILABLE
    assert hass.states.get(SNAPSHOT).state == "unknown"
    await make_the_garage_move(hass, agent)
    await wait_for(hass, lambda: hass.states.get(MOTION).state == STATE_ON, "the motion", timeout_s=60)

    events = hass.states.get(EVENTS).attributes
    assert (events["event_type"], events["state"]) == ("motion", "start")
    assert events["score"] > 0
    started_at = events["started_at"]
    assert hass.states.get(SNAPSHOT).state == started_at

    client = await hass_client()
    response = await client.get(f"/api/image_proxy/{SNAPSHOT}")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert (await response.read()).startswith(b"\xff\xd8")

    diagnostics = await async_get_config_entry_diagnostics(hass, init_integration)
    motion = diagnostics["streams"]["garage"]["motion"]
    assert motion is not None and motion["started_at"] is not None
    assert diagnostics["streams"]["front_door"]["motion"] is None  # off there
