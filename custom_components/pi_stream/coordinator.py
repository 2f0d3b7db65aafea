"""One coordinator per Pi: a WebSocket that pushes telemetry and events, REST polling as the fallback.

What a pushed message means for the state is decided by the pure functions of agent_state.py; this module
does the I/O around them (the socket, REST reads when a message says HA's copy is incomplete, listeners).
Each stream's controls document (``GET /streams/{id}/controls``, for the setting entities of controls.py)
is read once per stream, then follows the pushed ``stream_controls`` events and the answers to changes; it
is read again after a reconnect and on every poll while the socket is down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.loader import async_get_integration

from .agent_state import (
    STREAM_CONTROLS_EVENT,
    AgentState,
    apply_event,
    apply_stored_stream,
    apply_stream_controls,
    apply_telemetry,
    controls_by_id,
    streams_out_of_step,
)
from .api import (
    AgentInfo,
    PiStreamApiVersionError,
    PiStreamAuthenticationError,
    PiStreamClient,
    PiStreamConnectionError,
    PiStreamError,
    PiStreamResponseError,
)
from .const import DOMAIN, LOGGER, POLL_INTERVAL, RECONNECT_MAX_S, RECONNECT_MIN_S
from .vocabulary import AgentVocabulary, VocabularyError

type PiStreamConfigEntry = ConfigEntry[PiStreamCoordinator]

__all__ = ["AgentState", "PiStreamConfigEntry", "PiStreamCoordinator"]

EventListener = Callable[[dict[str, Any]], None]


class PiStreamCoordinator(DataUpdateCoordinator[AgentState]):
    config_entry: PiStreamConfigEntry

    @property
    def state(self) -> AgentState | None:
        """``data``, honestly typed: None until the first refresh has succeeded."""
        data: AgentState | None = self.data
        return data

    def __init__(self, hass: HomeAssistant, entry: PiStreamConfigEntry, client: PiStreamClient) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=POLL_INTERVAL,
        )
        self.client = client
        self._info: AgentInfo | None = None
        self._devices: dict[str, Any] = {}
        self._vocabulary: AgentVocabulary | None = None
        self._listener: asyncio.Task[None] | None = None
        self._event_listeners: list[EventListener] = []
        self._connections = 0  # WebSocket connections made: after the first, the agent may have restarted
        # This integration's release (its manifest): the agent version it expects (update.py, repairs.py).
        self.integration_version: str | None = None

    # -- fetching ----------------------------------------------------------------------------------------

    async def _async_setup(self) -> None:
        """Once, before the first refresh: who the agent is, and what it can stream from."""
        try:
            self._info = await self.client.info()
            self._devices = await self.client.devices()
            self._vocabulary = AgentVocabulary.from_json(await self.client.vocabulary())
            integration = await async_get_integration(self.hass, DOMAIN)
            self.integration_version = str(integration.version) if integration.version else None
        except PiStreamAuthenticationError as err:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="invalid_auth") from err
        except PiStreamApiVersionError as err:
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="incompatible_agent",
                translation_placeholders={"agent_api": str(err.agent_version)},
            ) from err
        except (PiStreamError, VocabularyError) as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err)},
            ) from err

    async def async_fetch_state(self) -> AgentState:
        """A full read of the agent (telemetry and every stream's status) over REST, as a new state.
        Raises :class:`PiStreamError`; stores nothing (the poll and the diagnostics both use it)."""
        assert self._info is not None and self._vocabulary is not None
        telemetry = await self.client.telemetry()
        listing = await self.client.streams()
        previous = self.state
        streams = {stream["id"]: stream for stream in listing.get("streams", [])}
        return AgentState(
            info=self._info,
            telemetry=telemetry,
            streams=streams,
            devices=self._devices,
            vocabulary=self._vocabulary,
            read_credentials=listing.get("read_credentials"),
            pushed=self.client.connected,
            last_events=previous.last_events if previous is not None else {},
            controls=await self._fetch_controls(previous, streams),
        )

    async def _fetch_controls(
        self, previous: AgentState | None, streams: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Each stream's controls document. While the WebSocket is up, every change arrives pushed
        (``stream_controls``): only a stream HA has no document for, or whose configuration changed (a new
        source has other controls), is read again; without the socket, all of them are."""
        held = previous.controls if previous is not None and previous.pushed and self.client.connected else {}
        controls: dict[str, dict[str, dict[str, Any]]] = {}
        for stream_id, stream in streams.items():
            known = previous.streams.get(stream_id) if previous is not None else None
            if stream_id in held and known is not None and known.get("config") == stream.get("config"):
                controls[stream_id] = held[stream_id]
            else:
                controls[stream_id] = await self._read_controls(stream_id)
        return controls

    async def _read_controls(self, stream_id: str) -> dict[str, dict[str, Any]]:
        try:
            return controls_by_id(await self.client.stream_controls(stream_id))
        except PiStreamResponseError as err:
            if err.status == 404:  # an agent without picture settings, or the stream went meanwhile
                return {}
            raise

    async def _async_update_data(self) -> AgentState:
        try:
            state = await self.async_fetch_state()
        except PiStreamAuthenticationError as err:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="invalid_auth") from err
        except PiStreamError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err)},
            ) from err
        self._ensure_listener()
        return state

    # -- push --------------------------------------------------------------------------------------------

    @callback
    def _ensure_listener(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = self.config_entry.async_create_background_task(
                self.hass, self._listen(), f"{DOMAIN} websocket {self.config_entry.title}"
            )

    async def _listen(self) -> None:
        """Keep the WebSocket open; reconnect with backoff; never raise."""
        delay = RECONNECT_MIN_S
        while True:
            try:
                await self.client.listen(self._on_message, on_connected=self._on_connected)
                delay = RECONNECT_MIN_S
                LOGGER.debug("Agent %s closed the WebSocket; reconnecting", self.config_entry.title)
            except PiStreamAuthenticationError:
                self.config_entry.async_start_reauth(self.hass)
                return
            except PiStreamConnectionError as err:
                if self.data is not None and self.data.pushed:
                    LOGGER.info(
                        "Lost the push connection to %s (%s); polling meanwhile", self.config_entry.title, err
                    )
                    self.async_set_updated_data(replace(self.data, pushed=False))
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    def _on_connected(self) -> None:
        self._connections += 1
        if (state := self.state) is not None:
            self.async_set_updated_data(replace(state, pushed=True))
            # Changes made while the socket was down were not pushed: read every controls document again.
            self.hass.async_create_task(self._refresh_controls())
        if self._connections > 1:
            # The socket came back: the agent may have restarted in between (updated, or its config changed
            # what it allows), so who it is is read again.
            self.hass.async_create_task(self._refresh_info())

    async def _refresh_info(self) -> None:
        with contextlib.suppress(PiStreamError):
            info = await self.client.info()
            self._info = info
            if (state := self.state) is not None and state.info != info:
                self.async_set_updated_data(replace(state, info=info))

    @callback
    def _on_message(self, message: dict[str, Any]) -> None:
        if (current := self.state) is None:
            return
        kind = message.get("type")
        if kind == "telemetry" and isinstance(sample := message.get("data"), dict):
            self.async_set_updated_data(apply_telemetry(current, sample))
            if streams_out_of_step(current, sample):
                # A stream was added or removed on the Pi: its configuration and addresses come by REST.
                self.hass.async_create_task(self.async_request_refresh())
        elif kind == "event" and isinstance(event := message.get("event"), dict):
            self._on_event(current, event)

    @callback
    def _on_event(self, current: AgentState, event: dict[str, Any]) -> None:
        self.async_set_updated_data(apply_event(current, event))
        kind = event.get("type")
        data = event.get("data")
        if kind in ("device_added", "device_removed"):
            self.hass.async_create_task(self._refresh_devices())
        elif kind == STREAM_CONTROLS_EVENT and isinstance(data, Mapping):
            self.hass.async_create_task(self._refresh_stream_config(str(data.get("stream_id"))))
        elif kind == "stream_state" and isinstance(data, Mapping) and "stats" not in data:
            # An agent that does not push stream stats yet: the new run's numbers come by REST.
            self.hass.async_create_task(self.async_request_refresh())
        for listener in list(self._event_listeners):
            listener(event)

    @callback
    def async_stream_stored(self, stream_id: str, stored: Mapping[str, Any]) -> None:
        """The agent stored a stream's configuration (its answer to PUT /streams/{id})."""
        if (state := self.state) is not None:
            self.async_set_updated_data(apply_stored_stream(state, stream_id, stored))

    @callback
    def async_stream_controls(self, stream_id: str, document: Mapping[str, Any]) -> None:
        """The agent confirmed a stream's controls (its answer to PUT /streams/{id}/controls)."""
        if (state := self.state) is not None and stream_id in state.streams:
            self.async_set_updated_data(apply_stream_controls(state, stream_id, document))
            self.hass.async_create_task(self._refresh_stream_config(stream_id))

    async def _refresh_stream_config(self, stream_id: str) -> None:
        """A change of controls is stored in the stream's configuration (``settings``,
        ``v4l2_controls``): HA's copy follows, or the next change sent from it (the enable switch, the
        options flow) would put the old values back. So does its ``motion`` (null while motion detection
        is off), which the agent reports in the stream's status only."""
        if (state := self.state) is None or stream_id not in state.streams:
            return
        with contextlib.suppress(PiStreamError):
            stored = await self.client.stream(stream_id)
            self.async_stream_stored(stream_id, stored)

    async def _refresh_controls(self) -> None:
        for stream_id in list(self.state.streams if self.state is not None else ()):
            with contextlib.suppress(PiStreamError):
                document = await self.client.stream_controls(stream_id)
                self.async_stream_controls(stream_id, document)

    async def _refresh_devices(self) -> None:
        with contextlib.suppress(PiStreamError):
            self._devices = await self.client.devices()
            if (state := self.state) is not None:
                self.async_set_updated_data(replace(state, devices=self._devices))

    @callback
    def async_add_event_listener(self, listener: EventListener) -> CALLBACK_TYPE:
        """Every pushed agent event, raw (``{"type", "timestamp", "data"}``); returns the remover."""
        self._event_listeners.append(listener)

        @callback
        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._event_listeners.remove(listener)

        return remove

    async def async_shutdown(self) -> None:
        await super().async_shutdown()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self.client.disconnect()
