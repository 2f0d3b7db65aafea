"""Actions: restart one stream, or every stream of a Pi. Registered once in ``async_setup``, not per entry.

Also home of :func:`agent_errors`, which turns agent failures into translated ``HomeAssistantError``s for
these actions and for the entity actions (buttons, switch, camera stills).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID, ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.selector import ConfigEntrySelector

from .api import PiStreamAuthenticationError, PiStreamError, PiStreamResponseError
from .const import DOMAIN
from .coordinator import PiStreamConfigEntry
from .entity import stream_id_from_identifier

SERVICE_RESTART_STREAM = "restart_stream"
SERVICE_RESTART_ALL_STREAMS = "restart_all_streams"
ATTR_CONFIG_ENTRY_ID = "config_entry_id"

_DEVICE_IDS = vol.All(cv.ensure_list, [cv.string])

RESTART_STREAM_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_ENTITY_ID): cv.entity_ids,
        vol.Optional(ATTR_DEVICE_ID): _DEVICE_IDS,
    }
)
RESTART_ALL_STREAMS_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): ConfigEntrySelector({"integration": DOMAIN}),
        vol.Optional(ATTR_DEVICE_ID): _DEVICE_IDS,
    }
)


@contextmanager
def agent_errors(translation_key: str, placeholders: Mapping[str, str]) -> Iterator[None]:
    """Run an agent call; a failure becomes ``HomeAssistantError(translation_key)`` with the agent's
    reason in the ``error`` placeholder (a refused token becomes ``invalid_auth``)."""
    try:
        yield
    except PiStreamAuthenticationError as err:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth") from err
    except PiStreamError as err:
        reason = err.message if isinstance(err, PiStreamResponseError) else str(err)
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=translation_key,
            translation_placeholders={**placeholders, "error": reason},
        ) from err


def _invalid(translation_key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=translation_key, translation_placeholders=placeholders
    )


def _loaded_entry(hass: HomeAssistant, entry_id: str) -> PiStreamConfigEntry:
    entry = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise _invalid("entry_not_found", entry_id=entry_id)
    if entry.state is not ConfigEntryState.LOADED:
        raise _invalid("entry_not_loaded", name=entry.title)
    loaded: PiStreamConfigEntry = entry
    return loaded


def _device_entry(hass: HomeAssistant, device_id: str) -> tuple[dr.DeviceEntry, PiStreamConfigEntry]:
    """The device and the (loaded) entry of the Pi it belongs to."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        raise _invalid("device_not_found", device_id=device_id)
    ours = [
        entry_id
        for entry_id in device.config_entries
        if (entry := hass.config_entries.async_get_entry(entry_id)) is not None and entry.domain == DOMAIN
    ]
    if not ours:
        raise _invalid("device_not_found", device_id=device_id)
    return device, _loaded_entry(hass, ours[0])


def _stream_of_device(hass: HomeAssistant, device_id: str, target: str) -> tuple[PiStreamConfigEntry, str]:
    """A stream device → (its Pi's entry, the stream id); a Pi device or a vanished stream is refused."""
    device, entry = _device_entry(hass, device_id)
    state = entry.runtime_data.data
    for identifier in device.identifiers:
        if (stream_id := stream_id_from_identifier(state.info.agent_id, identifier)) is not None:
            if stream_id not in state.streams:
                raise _invalid("stream_not_found", stream=device.name_by_user or device.name or stream_id)
            return entry, stream_id
    raise _invalid("not_a_stream", target=target)


def _stream_of_entity(hass: HomeAssistant, entity_id: str) -> tuple[PiStreamConfigEntry, str]:
    registry_entry = er.async_get(hass).async_get(entity_id)
    if registry_entry is None or registry_entry.platform != DOMAIN:
        raise _invalid("entity_not_found", entity_id=entity_id)
    if registry_entry.device_id is None:
        raise _invalid("not_a_stream", target=entity_id)
    return _stream_of_device(hass, registry_entry.device_id, entity_id)


def _stream_name(entry: PiStreamConfigEntry, stream_id: str) -> str:
    return str(entry.runtime_data.data.streams.get(stream_id, {}).get("name") or stream_id)


async def async_restart_stream(entry: PiStreamConfigEntry, stream_id: str) -> None:
    with agent_errors("restart_stream_failed", {"stream": _stream_name(entry, stream_id)}):
        await entry.runtime_data.client.restart_stream(stream_id)


async def async_restart_all_streams(entry: PiStreamConfigEntry) -> None:
    with agent_errors("restart_all_streams_failed", {"name": entry.title}):
        await entry.runtime_data.client.restart_all_streams()


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, from ``async_setup``)."""

    async def restart_stream(call: ServiceCall) -> None:
        targets: dict[tuple[str, str], tuple[PiStreamConfigEntry, str]] = {}
        for entity_id in call.data.get(ATTR_ENTITY_ID, []):
            entry, stream_id = _stream_of_entity(hass, entity_id)
            targets[(entry.entry_id, stream_id)] = (entry, stream_id)
        for device_id in call.data.get(ATTR_DEVICE_ID, []):
            entry, stream_id = _stream_of_device(hass, device_id, device_id)
            targets[(entry.entry_id, stream_id)] = (entry, stream_id)
        if not targets:
            raise _invalid("no_stream_target")
        # Every target is checked before the first restart: a bad one restarts nothing.
        for entry, stream_id in targets.values():
            await async_restart_stream(entry, stream_id)

    async def restart_all_streams(call: ServiceCall) -> None:
        entries: dict[str, PiStreamConfigEntry] = {}
        if entry_id := call.data.get(ATTR_CONFIG_ENTRY_ID):
            entry = _loaded_entry(hass, entry_id)
            entries[entry.entry_id] = entry
        for device_id in call.data.get(ATTR_DEVICE_ID, []):
            _, entry = _device_entry(hass, device_id)
            entries[entry.entry_id] = entry
        if not entries:
            raise _invalid("no_pi_target")
        for entry in entries.values():
            await async_restart_all_streams(entry)

    hass.services.async_register(DOMAIN, SERVICE_RESTART_STREAM, restart_stream, RESTART_STREAM_SCHEMA)
    hass.services.async_register(
        DOMAIN, SERVICE_RESTART_ALL_STREAMS, restart_all_streams, RESTART_ALL_STREAMS_SCHEMA
    )
