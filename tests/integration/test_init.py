"""Setting up and unloading an entry against the real agent."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.coordinator import PiStreamCoordinator
from tests.integration.agent_process import AgentProcess


async def test_setup_reads_the_agent_and_unload_disconnects(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    assert entry.state is ConfigEntryState.LOADED
    coordinator: PiStreamCoordinator = entry.runtime_data
    state = coordinator.data
    assert state.info.agent_id == entry.unique_id
    assert state.info.board["type"] == "4B"
    assert set(state.streams) == {"front_door", "garage"}
    assert state.telemetry["cma"]["total_bytes"] == 512 * 1024**2
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert not coordinator.client.connected
