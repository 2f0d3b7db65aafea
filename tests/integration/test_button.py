"""Restart buttons against the real agent: pressing one really restarts publishers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.button.const import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button.const import SERVICE_PRESS
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.pi_stream.const import DOMAIN
from tests.integration.stable_agent import (
    StableAgentProcess,
    publisher_pids,
    requested_restarts,
    run_agent,
    wait_for_pids_changed,
)

RESTART_ALL = "button.camera_pi_restart_all_streams"
RESTART_GARAGE = "button.garage_restart_stream"


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


@pytest.fixture(autouse=True)
def only_buttons() -> Iterator[None]:
    with patch("custom_components.pi_stream.PLATFORMS", [Platform.BUTTON]):
        yield


async def press(hass: HomeAssistant, entity_id: str) -> None:
    await hass.services.async_call(BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: entity_id}, blocking=True)


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_button_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Restart-all on the Pi's device, restart on each stream's device: restart buttons in the config
    category."""
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_restart_all_streams(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    before = await hass.async_add_executor_job(publisher_pids, agent)
    await press(hass, RESTART_ALL)
    await hass.async_add_executor_job(wait_for_pids_changed, agent, before, {"front_door", "garage"})
    assert await hass.async_add_executor_job(requested_restarts, agent, "garage") == 1
    assert await hass.async_add_executor_job(requested_restarts, agent, "front_door") == 1


@pytest.mark.usefixtures("init_integration")
async def test_restart_one_stream(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    before = await hass.async_add_executor_job(publisher_pids, agent)
    await press(hass, RESTART_GARAGE)
    await hass.async_add_executor_job(wait_for_pids_changed, agent, before, {"garage"})
    assert await hass.async_add_executor_job(requested_restarts, agent, "garage") == 1
    assert await hass.async_add_executor_job(requested_restarts, agent, "front_door") == 0  # left alone


@pytest.mark.usefixtures("init_integration")
@pytest.mark.parametrize(
    ("entity_id", "translation_key", "placeholder"),
    [
        (RESTART_ALL, "restart_all_streams_failed", ("name", "camera-pi")),
        (RESTART_GARAGE, "restart_stream_failed", ("stream", "Garage")),
    ],
)
async def test_press_while_the_agent_is_gone(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    entity_id: str,
    translation_key: str,
    placeholder: tuple[str, str],
) -> None:
    """The agent stopped; the buttons are still available (the next poll has not noticed yet), and a press
    is a translated error, not a raw connection error."""
    await hass.async_add_executor_job(agent.stop)
    with pytest.raises(HomeAssistantError) as err:
        await press(hass, entity_id)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == translation_key
    key, value = placeholder
    assert err.value.translation_placeholders[key] == value
    assert "Cannot connect" in err.value.translation_placeholders["error"]
