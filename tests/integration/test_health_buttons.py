"""The Pi's housekeeping buttons against the real agent: absent unless the agent allows power control,
pressed for real (a simulated Pi records the action and pushes ``power_action``), a refusal shown in the
agent's own words, and buttons that appear when the agent, restarted, allows it (no reload)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.button.const import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button.const import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.coordinator import PiStreamCoordinator
from custom_components.pi_stream.power_buttons import POWER_BUTTONS
from tests.integration.stable_agent import StableAgentProcess, run_agent, wait_for

RESTART_AGENT = "button.camera_pi_restart_agent"
REBOOT = "button.camera_pi_reboot"
SHUTDOWN = "button.camera_pi_shut_down"
POWER_ENTITIES = (RESTART_AGENT, REBOOT, SHUTDOWN)


@pytest.fixture
def allow_power_control() -> bool:
    return True


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any, allow_power_control: bool) -> Iterator[StableAgentProcess]:
    yield from run_agent(
        StableAgentProcess(state_dir=tmp_path / "agent-state", allow_power_control=allow_power_control)
    )


@pytest.fixture(autouse=True)
def only_buttons() -> Iterator[None]:
    with patch("custom_components.pi_stream.PLATFORMS", [Platform.BUTTON]):
        yield


def coordinator_of(entry: MockConfigEntry) -> PiStreamCoordinator:
    coordinator: PiStreamCoordinator = entry.runtime_data
    return coordinator


async def press(hass: HomeAssistant, entity_id: str) -> None:
    await hass.services.async_call(BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: entity_id}, blocking=True)


@pytest.mark.usefixtures("init_integration")
async def test_buttons_when_the_agent_allows_power_control(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    for entity_id, device_class in ((RESTART_AGENT, "restart"), (REBOOT, "restart"), (SHUTDOWN, None)):
        entry = entity_registry.async_get(entity_id)
        assert entry is not None, entity_id
        assert entry.entity_category is er.EntityCategory.CONFIG
        assert entry.original_device_class == device_class
        assert entry.disabled_by is None
        assert hass.states.get(entity_id).state != STATE_UNAVAILABLE
    assert len(POWER_BUTTONS) == len(POWER_ENTITIES)


@pytest.mark.usefixtures("init_integration")
@pytest.mark.parametrize(
    ("entity_id", "action"),
    [(RESTART_AGENT, "agent_restart"), (REBOOT, "reboot"), (SHUTDOWN, "shutdown")],
)
async def test_a_press_is_performed_by_the_agent(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, entity_id: str, action: str
) -> None:
    """The simulated Pi records the action instead of performing it and pushes ``power_action``."""
    coordinator = coordinator_of(mock_config_entry)
    seen: list[dict[str, Any]] = []
    remove = coordinator.async_add_event_listener(
        lambda event: seen.append(event) if event.get("type") == "power_action" else None
    )
    await press(hass, entity_id)
    await wait_for(hass, lambda: bool(seen), "the agent's power_action event")
    remove()
    assert [event["data"]["action"] for event in seen] == [action]
    assert seen[0]["data"]["simulated"] is True


@pytest.mark.parametrize("allow_power_control", [False])
@pytest.mark.usefixtures("init_integration")
async def test_no_buttons_unless_allowed(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    entries = er.async_entries_for_config_entry(entity_registry, mock_config_entry.entry_id)
    assert {entry.entity_id for entry in entries} & set(POWER_ENTITIES) == set()
    assert entity_registry.async_get("button.camera_pi_restart_all_streams") is not None


@pytest.mark.parametrize("allow_power_control", [False])
@pytest.mark.usefixtures("init_integration")
async def test_a_refusal_shows_the_agents_words(
    hass: HomeAssistant, agent: StableAgentProcess, mock_config_entry: MockConfigEntry
) -> None:
    """Home Assistant believes power control is allowed (the agent's config changed since it last read
    who the agent is); the agent refuses, and the press fails with the agent's plain sentence."""
    coordinator = coordinator_of(mock_config_entry)
    state = coordinator.data
    capabilities = {**state.info.capabilities, "power_control": True}
    coordinator.async_set_updated_data(replace(state, info=replace(state.info, capabilities=capabilities)))
    await hass.async_block_till_done()
    assert hass.states.get(REBOOT) is not None
    with pytest.raises(HomeAssistantError) as err:
        await press(hass, REBOOT)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "power_action_failed"
    assert err.value.translation_placeholders["name"] == "camera-pi"
    message = err.value.translation_placeholders["error"]
    assert "allow_power_control: true" in message
    assert "{" not in message  # the agent's sentence, not its JSON


@pytest.mark.parametrize("allow_power_control", [False])
@pytest.mark.usefixtures("init_integration")
async def test_buttons_follow_the_agent_restarted_with_another_config(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The user allows power control and restarts the agent: the WebSocket reconnects, Home Assistant
    reads who the agent is again, and the buttons appear without a reload. Turned off again, they become
    unavailable."""
    coordinator = coordinator_of(mock_config_entry)
    assert hass.states.get(REBOOT) is None
    await hass.async_add_executor_job(agent.stop)
    agent.allow_power_control = True
    await hass.async_add_executor_job(agent.start)
    await wait_for(hass, lambda: hass.states.get(REBOOT) is not None, "the power buttons", timeout_s=40)
    assert coordinator.data.info.capabilities["power_control"] is True
    assert hass.states.get(REBOOT).state != STATE_UNAVAILABLE

    await hass.async_add_executor_job(agent.stop)
    agent.allow_power_control = False
    await hass.async_add_executor_job(agent.start)
    await wait_for(
        hass,
        lambda: coordinator.data.info.capabilities.get("power_control") is False,
        "the agent's new capabilities",
        timeout_s=40,
    )
    await hass.async_block_till_done()
    assert all(hass.states.get(entity_id).state == STATE_UNAVAILABLE for entity_id in POWER_ENTITIES)
