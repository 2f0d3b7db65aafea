"""One coordinator per Pi: a WebSocket that pushes telemetry and events, REST polling as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import (
    AgentInfo,
    PiStreamApiVersionError,
    PiStreamAuthenticationError,
    PiStreamClient,
    PiStreamConnectionError,
    PiStreamError,
)
from .const import DOMAIN, LOGGER, POLL_INTERVAL, RECONNECT_MAX_S, RECONNECT_MIN_S
from .vocabulary import AgentVocabulary, VocabularyError

type PiStreamConfigEntry = ConfigEntry[PiStreamCoordinator]

EventListener = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class AgentState:
    """Everything known about one Pi. Replaced (never mutated) on every update, so entities compare safely."""

    info: AgentInfo
    telemetry: dict[str, Any]
    streams: dict[str, dict[str, Any]]  # stream id → status (GET /streams/{id})
    devices: dict[str, Any]
    vocabulary: AgentVocabulary  # the agent's words (states, causes, sources…), read once at setup
    read_credentials: dict[str, str] | None = None
    pushed: bool = False  # the WebSocket is up: values arrive as they change
    last_events: dict[str, dict[str, Any]] = field(default_factory=dict)  # event type → latest event


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

    # -- fetching ----------------------------------------------------------------------------------------

    async def _async_setup(self) -> None:
        """Once, before the first refresh: who the agent is, and what it can stream from."""
        try:
            self._info = await self.client.info()
            self._devices = await self.client.devices()
            self._vocabulary = AgentVocabulary.from_json(await self.client.vocabulary())
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

    async def _async_update_data(self) -> AgentState:
        try:
            telemetry = await self.client.telemetry()
            listing = await self.client.streams()
        except PiStreamAuthenticationError as err:
            raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="invalid_auth") from err
        except PiStreamError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err)},
            ) from err
        assert self._info is not None and self._vocabulary is not None
        previous = self.state
        state = AgentState(
            info=self._info,
            telemetry=telemetry,
            streams={stream["id"]: stream for stream in listing.get("streams", [])},
            devices=self._devices,
            vocabulary=self._vocabulary,
            read_credentials=listing.get("read_credentials"),
            pushed=self.client.connected,
            last_events=previous.last_events if previous is not None else {},
        )
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
        if (state := self.state) is not None:
            self.async_set_updated_data(replace(state, pushed=True))

    @callback
    def _on_message(self, message: dict[str, Any]) -> None:
        if (current := self.state) is None:
            return
        kind = message.get("type")
        if kind == "telemetry" and isinstance(message.get("data"), dict):
            self.async_set_updated_data(replace(current, telemetry=message["data"], pushed=True))
        elif kind == "event" and isinstance(message.get("event"), dict):
            self._apply_event(current, message["event"])

    @callback
    def _apply_event(self, current: AgentState, event: dict[str, Any]) -> None:
        kind = str(event.get("type"))
        data = event.get("data") or {}
        state = replace(current, last_events={**current.last_events, kind: event}, pushed=True)
        if kind == "throttle_changed" and isinstance(data.get("flags"), dict):
            throttle = {**state.telemetry.get("throttle", {}), **data["flags"], "raw": data.get("raw")}
            state = replace(state, telemetry={**state.telemetry, "throttle": throttle})
        elif kind == "under_voltage":
            power = dict(state.telemetry.get("power") or {})
            power["under_voltage_now"] = bool(data.get("active"))
            if data.get("episodes") is not None:
                power["under_voltage_episodes"] = data["episodes"]
            if data.get("active"):
                power["last_under_voltage_start"] = event.get("timestamp")
            state = replace(state, telemetry={**state.telemetry, "power": power})
        elif kind in ("stream_state", "stream_exit"):
            stream_id = str(data.get("stream_id"))
            if stream_id in state.streams:
                stream = dict(state.streams[stream_id])
                if kind == "stream_state":
                    stream.update(
                        {
                            key: data.get(key)
                            for key in ("state", "cause", "message", "restart_count", "next_retry_at")
                        }
                    )
                else:
                    stream["last_exit"] = {
                        k: v for k, v in data.items() if k not in ("stream_id", "log_tail")
                    }
                state = replace(state, streams={**state.streams, stream_id: stream})
            if kind == "stream_state" and data.get("state") in ("running", "starting"):
                # Fresh numbers (pids, fps, encoding) come with the next REST read; ask for it soon.
                self.hass.async_create_task(self.async_request_refresh())
        elif kind in ("device_added", "device_removed"):
            self.hass.async_create_task(self._refresh_devices())
        self.async_set_updated_data(state)
        for listener in list(self._event_listeners):
            listener(event)

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
