"""Real motion, end to end: the motion detection switch in Home Assistant turns the agent's detection on,
the moving test pattern (testsrc2) is seen to move, and the motion sensor, the stream's event entity and
the motion snapshot follow the agent's pushed ``motion`` event; the picture is the agent's JPEG, and the
diagnostics carry the stream's motion."""

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
from tests.integration.stable_agent import StableAgentProcess, run_agent, wait_for

MOTION = "binary_sensor.front_door_motion"
SNAPSHOT = "image.front_door_motion_snapshot"
EVENTS = "event.front_door_stream_events"


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
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: "switch.front_door_motion_detection"}, blocking=True
    )
    await wait_for(hass, lambda: hass.states.get(MOTION).state != STATE_UNAVAILABLE, "motion detection on")
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
    motion = diagnostics["streams"]["front_door"]["motion"]
    assert motion is not None and motion["started_at"] is not None
    assert diagnostics["streams"]["garage"]["motion"] is None  # off there
