"""Buttons: restart every stream of a Pi, or one stream; one autofocus cycle where a stream's camera has
autofocus (``controls.py``); the Pi's housekeeping (``power_buttons.py``)."""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.button import ButtonDeviceClass, ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .controls import async_add_control_entities, control_button
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamEntity, PiStreamStreamEntity, async_add_stream_entities
from .power_buttons import async_add_power_buttons
from .services import async_restart_all_streams, async_restart_stream

# One command at a time per platform: the agent answers at once (202) and the restarts follow as events.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_entities([PiStreamRestartAllButton(entry.runtime_data)])
    async_add_power_buttons(entry, async_add_entities)

    def stream_buttons(coordinator: PiStreamCoordinator, stream_id: str) -> Iterable[Entity]:
        yield PiStreamRestartStreamButton(coordinator, stream_id)

    async_add_stream_entities(entry, async_add_entities, stream_buttons)
    async_add_control_entities(entry, async_add_entities, "button", control_button)


class PiStreamRestartAllButton(PiStreamEntity, ButtonEntity):
    """Restart every stream of the Pi (the agent keeps running)."""

    _attr_device_class = ButtonDeviceClass.RESTART
    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "restart_all_streams"

    def __init__(self, coordinator: PiStreamCoordinator) -> None:
        super().__init__(coordinator, "restart_all_streams")

    async def async_press(self) -> None:
        await async_restart_all_streams(self.coordinator.config_entry)


class PiStreamRestartStreamButton(PiStreamStreamEntity, ButtonEntity):
    """Restart one stream's publisher."""

    _attr_device_class = ButtonDeviceClass.RESTART
    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "restart_stream"

    def __init__(self, coordinator: PiStreamCoordinator, stream_id: str) -> None:
        super().__init__(coordinator, stream_id, "restart")

    async def async_press(self) -> None:
        await async_restart_stream(self.coordinator.config_entry, self.stream_id)
