"""Stale devices: a stream removed on the Pi leaves a device the user can delete; live ones cannot be."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.coordinator import PiStreamCoordinator
from tests.integration.agent_process import AgentProcess


async def remove_device(hass: HomeAssistant, ws: WebSocketGenerator, device_id: str, entry_id: str) -> Any:
    """What the device page's Delete does."""
    client = await ws(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": entry_id,
            "device_id": device_id,
        }
    )
    return await client.receive_json()


async def test_only_a_vanished_stream_device_can_be_deleted(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    entry = init_integration
    agent_id = entry.unique_id
    assert await async_setup_component(hass, "config", {})
    pi = device_registry.async_get_device(identifiers={(DOMAIN, agent_id)})
    garage = device_registry.async_get_device(identifiers={(DOMAIN, f"{agent_id}_garage")})
    assert pi is not None
    assert garage is not None

    # While the agent has them, neither the Pi nor a stream can be deleted.
    for device in (pi, garage):
        response = await remove_device(hass, hass_ws_client, device.id, entry.entry_id)
        assert not response["success"]
        assert device_registry.async_get(device.id) is not None

    # The stream is removed on the Pi itself (not through the options flow): its device is now stale.
    await hass.async_add_executor_job(agent.request, "DELETE", "/streams/garage")
    coordinator: PiStreamCoordinator = entry.runtime_data
    await coordinator.async_refresh()
    assert "garage" not in coordinator.data.streams
    response = await remove_device(hass, hass_ws_client, garage.id, entry.entry_id)
    assert response["success"]
    assert device_registry.async_get(garage.id) is None
    # The Pi still cannot be.
    response = await remove_device(hass, hass_ws_client, pi.id, entry.entry_id)
    assert not response["success"]
