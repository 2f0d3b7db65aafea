"""The enable switch against the real agent: the change is stored by the agent and the stream follows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.pi_stream.const import DOMAIN
from tests.integration.stable_agent import StableAgentProcess, run_agent, wait_for

GARAGE = "switch.garage_enabled"


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


async def switch(hass: HomeAssistant, service: str, entity_id: str = GARAGE) -> None:
    await hass.services.async_call(SWITCH_DOMAIN, service, {ATTR_ENTITY_ID: entity_id}, blocking=True)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_switch_entities(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    with patch("custom_components.pi_stream.PLATFORMS", [Platform.SWITCH]):
        await hass.async_add_executor_job(agent.wait_streams_running)
        mock_config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)
        assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_disable_and_enable_a_stream(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    """Off stores ``enabled: false`` on the agent, which stops the stream (its camera goes unavailable);
    on stores ``enabled: true`` and the stream runs again. The other stream is untouched."""
    assert hass.states.get(GARAGE).state == STATE_ON

    await switch(hass, SERVICE_TURN_OFF)
    assert hass.states.get(GARAGE).state == STATE_OFF  # at once, from the agent's answer
    garage = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    assert garage["enabled"] is False
    assert garage["config"]["enabled"] is False
    await wait_for(
        hass, lambda: hass.states.get("camera.garage").state == STATE_UNAVAILABLE, "the camera to go"
    )
    garage = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    assert garage["state"] == "disabled"
    assert hass.states.get(GARAGE).state == STATE_OFF  # pushed state events did not undo it
    assert hass.states.get("switch.front_door_enabled").state == STATE_ON

    await switch(hass, SERVICE_TURN_ON)
    assert hass.states.get(GARAGE).state == STATE_ON
    await wait_for(hass, lambda: hass.states.get("camera.garage").state == "streaming", "the camera back")
    garage = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    assert garage["enabled"] is True
    assert garage["state"] == "running"


@pytest.mark.usefixtures("init_integration")
async def test_disabled_stream_stays_disabled_across_agent_restarts(
    hass: HomeAssistant, agent: StableAgentProcess
) -> None:
    """The agent persists the change: after it restarts, the stream is still disabled."""
    await switch(hass, SERVICE_TURN_OFF)
    await hass.async_add_executor_job(agent.stop)
    await hass.async_add_executor_job(agent.start)
    garage = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    assert garage["enabled"] is False


@pytest.mark.usefixtures("init_integration")
@pytest.mark.parametrize(
    ("service", "translation_key"),
    [(SERVICE_TURN_OFF, "disable_stream_failed"), (SERVICE_TURN_ON, "enable_stream_failed")],
)
async def test_switch_while_the_agent_is_gone(
    hass: HomeAssistant, agent: StableAgentProcess, service: str, translation_key: str
) -> None:
    await hass.async_add_executor_job(agent.stop)
    with pytest.raises(HomeAssistantError) as err:
        await switch(hass, service)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == translation_key
    assert err.value.translation_placeholders["stream"] == "Garage"
    assert hass.states.get(GARAGE).state == STATE_ON


@pytest.mark.usefixtures("init_integration")
async def test_refused_configuration_is_a_translated_error(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """The agent validates what it stores; a refusal (422) comes back with its reason. Here the stored
    configuration HA holds was made invalid, as a stale copy could be."""
    coordinator = init_integration.runtime_data
    stream = coordinator.data.streams["garage"]
    stream["config"] = {**stream["config"], "width": 7}
    with pytest.raises(HomeAssistantError) as err:
        await switch(hass, SERVICE_TURN_OFF)
    assert err.value.translation_key == "disable_stream_failed"
    assert "width" in err.value.translation_placeholders["error"]
    garage = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    assert garage["enabled"] is True
    assert garage["config"]["width"] == 320
