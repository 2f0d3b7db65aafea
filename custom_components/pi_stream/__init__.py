"""The pi_stream integration: Raspberry Pi cameras and hardware health from the pi_stream agent."""

from __future__ import annotations

from homeassistant.const import CONF_HOST, CONF_PORT, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import PiStreamClient
from .const import CONF_TOKEN, DOMAIN
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .device_info import pi_device_info, stream_id_from_identifier
from .repairs import async_remove_issues, async_setup_failed, async_setup_repairs
from .services import async_setup_services

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CAMERA,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
    Platform.UPDATE,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up the integration-wide parts (services are registered here, not per entry)."""
    async_setup_services(hass)
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
    try:
        await coordinator.async_config_entry_first_refresh()
    except ConfigEntryError as err:
        async_setup_failed(hass, entry, err)  # the incompatible-agent repair issue
        raise
    entry.runtime_data = coordinator
    # Repair issues follow every coordinator update (repairs.py); unloading withdraws them.
    entry.async_on_unload(async_setup_repairs(hass, entry))
    # The Pi's device first: stream devices name it as their via_device, whichever platform adds them.
    dr.async_get(hass).async_get_or_create(config_entry_id=entry.entry_id, **pi_device_info(coordinator.data))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PiStreamConfigEntry) -> bool:
    """Disconnect from the agent."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_shutdown()
    return unloaded


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: PiStreamConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """Let the user delete a stream's device once the agent no longer has that stream (removed on the Pi,
    not through the options flow, which removes the device itself). The Pi's own device stays."""
    state = entry.runtime_data.data
    for identifier in device_entry.identifiers:
        if identifier == (DOMAIN, state.info.agent_id):
            return False
        if stream_id_from_identifier(state.info.agent_id, identifier) in state.streams:
            return False
    return True


async def async_remove_entry(hass: HomeAssistant, entry: PiStreamConfigEntry) -> None:
    """The entry is deleted: so are its repair issues (an incompatible-agent issue outlives unloading)."""
    async_remove_issues(hass, entry.entry_id)
