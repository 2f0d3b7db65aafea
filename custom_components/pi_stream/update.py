"""An update entity for the Pi's agent: the version it runs against the one this integration release
expects (agent_version.py), with the release notes. Installing is not done from Home Assistant — the agent
is a Debian package on the Pi — so the entity offers no install; its summary says how."""

from __future__ import annotations

from homeassistant.components.update import UpdateEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .agent_version import PACKAGE_NAME, install_command, release_notes_url
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamEntity

# Nothing to poll: the versions change with a reconnect (the agent's) or a reload (the integration's).
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_entities([PiStreamAgentUpdate(entry.runtime_data)])


class PiStreamAgentUpdate(PiStreamEntity, UpdateEntity):
    """The agent's version; "update available" when it is older than this integration's release."""

    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "agent"
    _attr_title = PACKAGE_NAME

    def __init__(self, coordinator: PiStreamCoordinator) -> None:
        super().__init__(coordinator, "agent_update")
        self._read()

    def _read(self) -> None:
        expected = self.coordinator.integration_version
        self._attr_installed_version = self.coordinator.data.info.version or None
        self._attr_latest_version = expected
        self._attr_release_url = release_notes_url(expected) if expected else None
        # Plain words, shown in the update dialog (the entity has no install button).
        self._attr_release_summary = (
            f"Install it on the Pi from the release's package: {install_command(expected)}"
            if expected
            else None
        )

    @callback
    def _handle_coordinator_update(self) -> None:
        """Written when what it shows changed (a reconnect found another version), not on every sample."""
        shown = (self.available, self._attr_installed_version, self._attr_latest_version)
        self._read()
        if (self.available, self._attr_installed_version, self._attr_latest_version) != shown:
            self.async_write_ha_state()
