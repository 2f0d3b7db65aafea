"""The pi_stream integration: Raspberry Pi cameras and hardware health from the pi_stream agent."""

from __future__ import annotations

from homeassistant.const import CONF_HOST, CONF_PORT, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import PiStreamClient
from .const import CONF_TOKEN, DOMAIN
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator

PLATFORMS: list[Platform] = []

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up the integration-wide parts (services are registered here, not per entry)."""
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PiStreamConfigEntry) -> bool:
    """Connect to one Pi's agent."""
    client = PiStreamClient(
        entry.data[CONF_HOST],
        entry.data[CONF_PORT],
        entry.data[CONF_TOKEN],
        async_get_clientsession(hass),
    )
    coordinator = PiStreamCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PiStreamConfigEntry) -> bool:
    """Disconnect from the agent."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_shutdown()
    return unloaded
