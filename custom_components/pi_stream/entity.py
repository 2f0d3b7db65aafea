"""Base entities: one device per Pi, and one device per stream linked to its Pi; adding a stream's
entities when the stream appears (or, for what only some streams have, when it gains it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import AgentState, PiStreamConfigEntry, PiStreamCoordinator
from .device_info import pi_device_info, stream_device_identifier, stream_device_info


class PiStreamEntity(CoordinatorEntity[PiStreamCoordinator]):
    """An entity of the Pi itself."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: PiStreamCoordinator, key: str) -> None:
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.data.info.agent_id}_{key}"
        self._attr_device_info = pi_device_info(coordinator.data)


class PiStreamStreamEntity(PiStreamEntity):
    """An entity of one stream; unavailable while the agent no longer has that stream."""

    def __init__(self, coordinator: PiStreamCoordinator, stream_id: str, key: str) -> None:
        super().__init__(coordinator, f"{stream_id}_{key}")
        self.stream_id = stream_id
        self._attr_device_info = stream_device_info(coordinator.data, stream_id)

    @property
    def stream(self) -> dict[str, Any]:
        return self.coordinator.data.streams.get(self.stream_id, {})

    @property
    def available(self) -> bool:
        return super().available and self.stream_id in self.coordinator.data.streams


@callback
def async_add_stream_entities(
    entry: PiStreamConfigEntry,
    async_add_entities: AddEntitiesCallback,
    factory: Callable[[PiStreamCoordinator, str], Iterable[Entity]],
    when: Callable[[AgentState, str], bool] | None = None,
) -> None:
    """Add ``factory``'s entities for every stream now, and for each stream that appears later (a stream
    added from the options flow gets its entities without a reload). With ``when``, a stream gets them once
    ``when(state, stream_id)`` holds (motion entities once its camera can detect motion), and keeps them."""
    coordinator = entry.runtime_data
    known: set[str] = set()

    @callback
    def add_new() -> None:
        state = coordinator.data
        if gone := known.difference(state.streams):
            # A stream removed with its device (options flow) may come back under the same id: new entities.
            devices = dr.async_get(coordinator.hass)
            agent_id = state.info.agent_id
            known.difference_update(
                stream_id
                for stream_id in gone
                if not devices.async_get_device(identifiers={stream_device_identifier(agent_id, stream_id)})
            )
        new = [
            stream_id
            for stream_id in state.streams
            if stream_id not in known and (when is None or when(state, stream_id))
        ]
        if not new:
            return
        known.update(new)
        async_add_entities([entity for stream_id in new for entity in factory(coordinator, stream_id)])

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))
