"""Base entities: one device per Pi, and one device per stream linked to its Pi."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN, MANUFACTURER
from .coordinator import AgentState, PiStreamConfigEntry, PiStreamCoordinator


def stream_device_identifier(agent_id: str, stream_id: str) -> tuple[str, str]:
    """The device registry identifier of one stream of a Pi (the Pi's own is ``(DOMAIN, agent_id)``).

    The one place that builds it; :func:`stream_id_from_identifier` is the one that reads it back.
    """
    return (DOMAIN, f"{agent_id}_{stream_id}")


def stream_id_from_identifier(agent_id: str, identifier: tuple[str, str]) -> str | None:
    """The stream id in a device identifier of this Pi's streams; None for the Pi itself or anything else."""
    domain, value = identifier
    prefix = f"{agent_id}_"
    if domain != DOMAIN or not value.startswith(prefix):
        return None
    return value.removeprefix(prefix) or None


def pi_device_info(state: AgentState) -> DeviceInfo:
    info = state.info
    board = info.board
    return DeviceInfo(
        identifiers={(DOMAIN, info.agent_id)},
        manufacturer=MANUFACTURER,
        model=board.get("model") or ("Simulated Raspberry Pi" if info.simulated else None),
        model_id=board.get("revision"),
        hw_version=board.get("pcb_revision"),
        sw_version=f"pi_stream agent {info.version}",
        name=info.name,
    )


def stream_device_info(state: AgentState, stream_id: str) -> DeviceInfo:
    stream = state.streams.get(stream_id, {})
    config = stream.get("config") or {}
    source = config.get("source") or {}
    return DeviceInfo(
        identifiers={stream_device_identifier(state.info.agent_id, stream_id)},
        via_device=(DOMAIN, state.info.agent_id),
        manufacturer=MANUFACTURER,
        model={"csi": "Camera module", "v4l2": "Capture device", "test": "Test pattern"}.get(
            str(source.get("type")), "Camera stream"
        ),
        name=stream.get("name") or stream_id,
    )


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
) -> None:
    """Add ``factory``'s entities for every stream now, and for each stream that appears later (a stream
    added from the options flow gets its entities without a reload)."""
    coordinator = entry.runtime_data
    known: set[str] = set()

    @callback
    def add_new() -> None:
        if gone := known.difference(coordinator.data.streams):
            # A stream removed with its device (options flow) may come back under the same id: new entities.
            devices = dr.async_get(coordinator.hass)
            agent_id = coordinator.data.info.agent_id
            known.difference_update(
                stream_id
                for stream_id in gone
                if not devices.async_get_device(identifiers={stream_device_identifier(agent_id, stream_id)})
            )
        new = [stream_id for stream_id in coordinator.data.streams if stream_id not in known]
        if not new:
            return
        known.update(new)
        async_add_entities([entity for stream_id in new for entity in factory(coordinator, stream_id)])

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))
