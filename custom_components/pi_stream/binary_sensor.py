"""Binary sensors: the Pi's throttle flags (under-voltage, frequency capped, throttled, soft temperature
limit, and their "has occurred" variants), its health flags (root filesystem read-only, an unexpected
reboot; on a Pi 5 a supply that did not negotiate 5 A), the push connection, and per stream a problem flag
and what the stream notices: motion (where its camera can detect motion; available while detection is on)
and sound (where it has audio; available while sound detection runs), from detection.py.

Flags are written the moment they change — pushed events update the coordinator at once — and only then:
an unchanged flag costs neither a state write nor a recorder row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from . import detection
from .coordinator import AgentState, PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamEntity, PiStreamStreamEntity, async_add_stream_entities

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PiStreamBinarySensorEntityDescription(BinarySensorEntityDescription):
    """``value_fn(state, subject)``: subject is "" for the Pi, the stream id for stream sensors."""

    value_fn: Callable[[AgentState, str], bool | None]
    attributes_fn: Callable[[AgentState, str], dict[str, Any] | None] = lambda _state, _subject: None
    # The telemetry section whose hardware the flag needs ("supply"): created when the agent first reports
    # it (not null). None: every Pi has it.
    requires: str | None = None
    # Whether the flag means anything now (motion: only while motion detection is on); None: always.
    available_fn: Callable[[AgentState, str], bool] | None = None


def _flag(section: str, name: str) -> Callable[[AgentState, str], bool | None]:
    def read(state: AgentState, _subject: str) -> bool | None:
        values = state.telemetry.get(section)
        value = values.get(name) if isinstance(values, Mapping) else None
        return value if isinstance(value, bool) else None

    return read


def under_voltage(state: AgentState, subject: str) -> bool | None:
    """On while either witness says so: the firmware's throttle bit 0, or the hwmon alarm / kernel log
    episode (which catches sags shorter than the firmware's 2 s poll). Off only when both say off, so the
    one that lags cannot make the flag flicker."""
    witnesses = [
        _flag("throttle", "under_voltage")(state, subject),
        _flag("power", "under_voltage_now")(state, subject),
    ]
    if any(witnesses):
        return True
    if all(witness is None for witness in witnesses):
        return None
    return False


def _path(*path: str) -> Callable[[AgentState, str], Any]:
    def read(state: AgentState, _subject: str) -> Any:
        value: Any = state.telemetry
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    return read


def _boolean(read: Callable[[AgentState, str], Any]) -> Callable[[AgentState, str], bool | None]:
    def value(state: AgentState, subject: str) -> bool | None:
        found = read(state, subject)
        return found if isinstance(found, bool) else None

    return value


def supply_limited(state: AgentState, subject: str) -> bool | None:
    """On when the Pi 5's supply did not negotiate 5 A: the firmware then limits its USB ports to 600 mA
    (and says "This power supply is not capable of supplying 5A" at boot)."""
    five_amps = _boolean(_path("supply", "usb_max_current_5a"))(state, subject)
    return None if five_amps is None else not five_amps


def _root_attributes(state: AgentState, subject: str) -> dict[str, Any] | None:
    device = _path("storage", "root", "device")(state, subject)
    return {"device": device} if device is not None else None


def _boot_attributes(state: AgentState, subject: str) -> dict[str, Any] | None:
    last_boot = _path("boot", "last_boot")(state, subject)
    if not isinstance(last_boot, int | float):
        return None
    return {"last_boot": dt_util.utc_from_timestamp(round(last_boot)).isoformat()}


def stream_problem(state: AgentState, stream_id: str) -> bool | None:
    stream = state.streams.get(stream_id)
    if stream is None or not isinstance(stream.get("state"), str):
        return None
    # Which states are problems (stalled, retrying, waiting for its device, given up on) is the agent's word.
    return state.vocabulary.is_problem(stream["state"])


def _stream_problem_attributes(state: AgentState, stream_id: str) -> dict[str, Any] | None:
    stream = state.streams.get(stream_id)
    if stream is None:
        return None
    return {"state": stream.get("state"), "cause": stream.get("cause")}


def _throttle_descriptions() -> tuple[PiStreamBinarySensorEntityDescription, ...]:
    descriptions: list[PiStreamBinarySensorEntityDescription] = []
    for flag in ("under_voltage", "freq_capped", "throttled", "soft_temp_limit"):
        descriptions.append(
            PiStreamBinarySensorEntityDescription(
                key=flag,
                translation_key=flag,
                device_class=BinarySensorDeviceClass.PROBLEM,
                value_fn=under_voltage if flag == "under_voltage" else _flag("throttle", flag),
            )
        )
    for flag in ("under_voltage", "freq_capped", "throttled", "soft_temp_limit"):
        descriptions.append(
            PiStreamBinarySensorEntityDescription(
                key=f"{flag}_occurred",
                translation_key=f"{flag}_occurred",
                device_class=BinarySensorDeviceClass.PROBLEM,
                entity_category=EntityCategory.DIAGNOSTIC,
                entity_registry_enabled_default=False,
                value_fn=_flag("throttle", f"{flag}_occurred"),
            )
        )
    return tuple(descriptions)


HEALTH_BINARY_SENSORS: tuple[PiStreamBinarySensorEntityDescription, ...] = (
    PiStreamBinarySensorEntityDescription(
        key="root_read_only",
        translation_key="root_read_only",
        device_class=BinarySensorDeviceClass.PROBLEM,
        value_fn=_boolean(_path("storage", "root", "read_only")),
        attributes_fn=_root_attributes,
    ),
    PiStreamBinarySensorEntityDescription(
        key="unexpected_reboot",
        translation_key="unexpected_reboot",
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_boolean(_path("boot", "unexpected_reboot")),
        attributes_fn=_boot_attributes,
    ),
    PiStreamBinarySensorEntityDescription(
        key="supply_limited",
        translation_key="supply_limited",
        device_class=BinarySensorDeviceClass.PROBLEM,
        value_fn=supply_limited,
        requires="supply",
    ),
)

PI_BINARY_SENSORS = _throttle_descriptions() + tuple(
    description for description in HEALTH_BINARY_SENSORS if description.requires is None
)
BOARD_BINARY_SENSORS = tuple(
    description for description in HEALTH_BINARY_SENSORS if description.requires is not None
)

PUSH_CONNECTED = PiStreamBinarySensorEntityDescription(
    key="push_connected",
    translation_key="push_connected",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
    value_fn=lambda state, _: state.pushed,
)

STREAM_PROBLEM = PiStreamBinarySensorEntityDescription(
    key="problem",
    translation_key="stream_problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
    value_fn=stream_problem,
    attributes_fn=_stream_problem_attributes,
)

MOTION = PiStreamBinarySensorEntityDescription(
    key="motion",
    translation_key="motion",
    device_class=BinarySensorDeviceClass.MOTION,
    value_fn=detection.motion_active,
    available_fn=lambda state, stream_id: detection.motion(state, stream_id) is not None,
)

SOUND = PiStreamBinarySensorEntityDescription(
    key="sound",
    translation_key="sound",
    device_class=BinarySensorDeviceClass.SOUND,
    value_fn=detection.sound_active,
    available_fn=detection.sound_detection_on,
)


class _ChangeOnlyBinarySensor(BinarySensorEntity):
    """Writes its state when what it shows (availability, on/off, attributes) changed, and only then."""

    entity_description: PiStreamBinarySensorEntityDescription
    coordinator: PiStreamCoordinator
    _subject: str
    _shown: tuple[bool, bool | None, dict[str, Any]] | None = None

    def _read(self) -> None:
        data = self.coordinator.data
        self._attr_is_on = self.entity_description.value_fn(data, self._subject)
        self._attr_extra_state_attributes = self.entity_description.attributes_fn(data, self._subject) or {}

    def _start(self) -> None:
        """Read the first state (written by the platform when the entity is added) and remember it."""
        self._read()
        self._shown = (self.available, self._attr_is_on, self._attr_extra_state_attributes)

    @callback
    def _handle_coordinator_update(self) -> None:
        self._read()
        shown = (self.available, self._attr_is_on, self._attr_extra_state_attributes)
        if shown != self._shown:
            self._shown = shown
            self.async_write_ha_state()


class PiStreamBinarySensor(_ChangeOnlyBinarySensor, PiStreamEntity):
    """A flag of the Pi."""

    def __init__(
        self, coordinator: PiStreamCoordinator, description: PiStreamBinarySensorEntityDescription
    ) -> None:
        super().__init__(coordinator, description.key)
        self.entity_description = description
        self._subject = ""
        self._start()


class PiStreamPushConnectedBinarySensor(PiStreamBinarySensor):
    """Whether the agent's WebSocket is up (values arrive as they change) or the integration is polling.
    It is about the link itself, so it stays available and shows "disconnected" while the agent is away."""

    @property
    def available(self) -> bool:
        return True

    def _read(self) -> None:
        self._attr_is_on = self.coordinator.last_update_success and self.coordinator.data.pushed
        self._attr_extra_state_attributes = {}


class PiStreamStreamBinarySensor(_ChangeOnlyBinarySensor, PiStreamStreamEntity):
    """A flag of one stream."""

    def __init__(
        self,
        coordinator: PiStreamCoordinator,
        stream_id: str,
        description: PiStreamBinarySensorEntityDescription,
    ) -> None:
        super().__init__(coordinator, stream_id, description.key)
        self.entity_description = description
        self._subject = stream_id
        self._start()

    @property
    def available(self) -> bool:
        available_fn = self.entity_description.available_fn
        return super().available and (
            available_fn is None or available_fn(self.coordinator.data, self._subject)
        )


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the Pi's flags and the push connection, its board's (when the agent reports that hardware),
    a problem flag for every stream, and motion and sound flags for the streams that can have them."""
    coordinator = entry.runtime_data
    async_add_entities(
        [
            *(PiStreamBinarySensor(coordinator, description) for description in PI_BINARY_SENSORS),
            PiStreamPushConnectedBinarySensor(coordinator, PUSH_CONNECTED),
        ]
    )
    added: set[str] = set()

    @callback
    def add_board_flags() -> None:
        telemetry = coordinator.data.telemetry
        new = [
            description
            for description in BOARD_BINARY_SENSORS
            if description.key not in added and isinstance(telemetry.get(description.requires or ""), Mapping)
        ]
        if new:
            added.update(description.key for description in new)
            async_add_entities(PiStreamBinarySensor(coordinator, description) for description in new)

    add_board_flags()
    entry.async_on_unload(coordinator.async_add_listener(add_board_flags))
    async_add_stream_entities(
        entry,
        async_add_entities,
        lambda coordinator, stream_id: [PiStreamStreamBinarySensor(coordinator, stream_id, STREAM_PROBLEM)],
    )
    async_add_stream_entities(
        entry,
        async_add_entities,
        lambda coordinator, stream_id: [PiStreamStreamBinarySensor(coordinator, stream_id, MOTION)],
        when=detection.can_detect_motion,
    )
    async_add_stream_entities(
        entry,
        async_add_entities,
        lambda coordinator, stream_id: [PiStreamStreamBinarySensor(coordinator, stream_id, SOUND)],
        when=detection.has_audio,
    )
