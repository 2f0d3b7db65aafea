"""Switches per stream: enabled or disabled in the configuration the agent stores; and the picture
settings and camera controls that are on or off (flips, HDR, V4L2 booleans; see ``controls.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .controls import PiStreamControlEntity, async_add_control_entities
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamStreamEntity, async_add_stream_entities
from .services import agent_errors

# Each change rewrites the agent's stored configuration: one at a time.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    def switches(coordinator: PiStreamCoordinator, stream_id: str) -> Iterable[Entity]:
        yield PiStreamEnabledSwitch(coordinator, stream_id)

    async_add_stream_entities(entry, async_add_entities, switches)
    async_add_control_entities(entry, async_add_entities, "switch", PiStreamControlSwitch)


class PiStreamEnabledSwitch(PiStreamStreamEntity, SwitchEntity):
    """On: the agent runs the stream. Off: ``enabled: false`` in its stored configuration."""

    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "stream_enabled"

    def __init__(self, coordinator: PiStreamCoordinator, stream_id: str) -> None:
        super().__init__(coordinator, stream_id, "enabled")

    @property
    def is_on(self) -> bool | None:
        stream = self.stream
        enabled = stream.get("enabled", (stream.get("config") or {}).get("enabled"))
        return None if enabled is None else bool(enabled)

    async def async_turn_on(self, **kwargs: Any) -> None:
        await self._async_set_enabled(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        await self._async_set_enabled(False)

    async def _async_set_enabled(self, enabled: bool) -> None:
        name = str(self.stream.get("name") or self.stream_id)
        if not (config := self.stream.get("config")):
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="stream_config_unknown",
                translation_placeholders={"stream": name},
            )
        config = {**config, "enabled": enabled}
        with agent_errors("enable_stream_failed" if enabled else "disable_stream_failed", {"stream": name}):
            result = await self.coordinator.client.put_stream(self.stream_id, config)
        # The agent's answer is what it stored; the state changes it causes follow as pushed events.
        stored = {"enabled": enabled, "config": config, **(result.get("stream") or {})}
        self.coordinator.async_stream_stored(self.stream_id, stored)


class PiStreamControlSwitch(PiStreamControlEntity, SwitchEntity):
    """An on/off setting of a stream's camera; the state the agent confirmed."""

    @property
    def is_on(self) -> bool | None:
        value = self.control_value
        return None if value is None else bool(value)

    async def async_turn_on(self, **kwargs: Any) -> None:
        await self.async_set_control(True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        await self.async_set_control(False)
