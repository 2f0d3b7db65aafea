"""Sensors: the Pi's health (CMA, DMA-buf, temperature, clocks, CPU, memory, network, Wi-Fi, power, the root
filesystem, storage errors, out-of-memory kills; a Pi 5's supply and any board's fan) and each stream's
state, frame rate, bitrate, restarts and publisher CPU, and, for a stream with audio, its sound level.

Sensors of hardware that not every board has (the Pi 5's supply, a fan) exist only once the agent reports
that section (``requires``): a sensor that could never have a value is not created.

Every value is read from the coordinator's data (pushed telemetry, REST as the fallback). Numbers go through
a write policy (write_policy.py) so that jitter does not flood the recorder; the stream state (an enum) is
written the moment it changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    REVOLUTIONS_PER_MINUTE,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfDataRate,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfFrequency,
    UnitOfInformation,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from . import detection
from .coordinator import AgentState, PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamEntity, PiStreamStreamEntity, async_add_stream_entities
from .write_policy import IMMEDIATE, WriteGate, WritePolicy

PARALLEL_UPDATES = 0

MIB = 1024 * 1024
MHZ = 1_000_000

# Write policies. "Slow" numbers: a change past the deadband is written at most every 30 s; a smaller drift
# at most every 5 minutes (the anchors: rpi_power polls every 30 s, Glances every 60 s, MQTT Pi reporters
# every 2–5 minutes). Counters and timestamps change rarely and mean something each time: immediate.
SLOW_MIN_S = 30.0
SLOW_MAX_S = 300.0
PERCENT_POLICY = WritePolicy(step=1, deadband=5, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S)
# CPU % is the jumpiest number, and the agent needs two samples for it (null in between).
CPU_POLICY = WritePolicy(
    step=1, deadband=10, missing_grace_s=30.0, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S
)
PUBLISHER_CPU_POLICY = WritePolicy(
    step=1, deadband=5, missing_grace_s=30.0, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S
)
TEMPERATURE_POLICY = WritePolicy(step=0.5, deadband=1.0, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S)
VOLTAGE_POLICY = WritePolicy(step=0.01, deadband=0.05, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S)
# The ARM clock follows the cpufreq governor (600 ↔ 1500 MHz on a Pi 4, several times a minute).
CLOCK_POLICY = WritePolicy(step=1, deadband=50, min_interval_s=60.0, max_interval_s=600.0)
CMA_FREE_POLICY = WritePolicy(
    step=MIB, deadband=16 * MIB, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S
)
DMABUF_POLICY = WritePolicy(
    step=64 * 1024, deadband=MIB, deadband_ratio=0.1, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S
)
SIGNAL_POLICY = WritePolicy(step=1, deadband=5, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S)
LINK_QUALITY_POLICY = WritePolicy(step=1, deadband=10, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S)
# Errors and drops per second: 0 → anything is worth showing; afterwards a change by half is.
NETWORK_RATE_POLICY = WritePolicy(
    significant_digits=2,
    deadband=0.1,
    deadband_ratio=0.5,
    min_interval_s=SLOW_MIN_S,
    max_interval_s=SLOW_MAX_S,
)
FRAME_RATE_POLICY = WritePolicy(step=0.1, deadband=1.0, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S)
BITRATE_POLICY = WritePolicy(
    significant_digits=3, deadband_ratio=0.1, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S
)
# The root filesystem fills slowly (logs, recordings): a percent point, or 256 MiB free, is news; a drift is
# shown hourly. Its size and device are attributes that do not move.
STORAGE_USED_POLICY = WritePolicy(step=1, deadband=1, min_interval_s=60.0, max_interval_s=3600.0)
STORAGE_FREE_POLICY = WritePolicy(
    step=16 * MIB, deadband=256 * MIB, min_interval_s=60.0, max_interval_s=3600.0
)
# A Pi 5's supply: the PMIC reads the 5 V input to the millivolt and the board's current to the milliamp;
# both wobble with load. 0.05 V and 0.1 A are what a person would notice.
SUPPLY_VOLTAGE_POLICY = VOLTAGE_POLICY
CURRENT_POLICY = WritePolicy(step=0.01, deadband=0.1, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S)
# The fan's tachometer jitters by tens of rpm at a steady duty; its speed steps follow the PWM levels.
FAN_SPEED_POLICY = WritePolicy(
    step=10, deadband=200, deadband_ratio=0.1, min_interval_s=SLOW_MIN_S, max_interval_s=SLOW_MAX_S
)
FAN_DUTY_POLICY = PERCENT_POLICY
# The boot time is derived (sample time − uptime) and wobbles by a second or two; a reboot moves it by more.
BOOT_TIME_POLICY = WritePolicy(step=1, deadband=60.0)
# Episode start: the pushed event's time and the next sample's agree to well under a second.
EPISODE_TIME_POLICY = WritePolicy(step=1)
# The sound level moves with every word and door: whole dB, and 6 dB (twice or half the amplitude) is news,
# at most every 10 s; a drift every 5 minutes. The sound binary sensor carries the moment a sound starts.
SOUND_LEVEL_POLICY = WritePolicy(step=1, deadband=6, min_interval_s=10.0, max_interval_s=SLOW_MAX_S)
SOUND_LEVEL_UNIT = "dBFS"  # decibels below digital full scale (0 = the loudest the input can record)

# Network interfaces whose error rates are enabled by default (the Pi's own Ethernet and Wi-Fi); every other
# per-interface rate is there for whoever needs it, disabled.
DEFAULT_ENABLED_ERROR_INTERFACES = frozenset({"eth0", "wlan0"})


def _dig(data: Mapping[str, Any] | None, *path: str) -> Any:
    """``data[path[0]][path[1]]…``, or None where anything along the way is missing."""
    value: Any = data
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


@dataclass(frozen=True, kw_only=True)
class PiStreamSensorEntityDescription(SensorEntityDescription):
    """A pi_stream sensor. ``value_fn(state, subject)``: subject is "" for the Pi, the interface name for
    network and Wi-Fi sensors, the stream id for stream sensors. Timestamps are Unix seconds."""

    value_fn: Callable[[AgentState, str], Any]
    attributes_fn: Callable[[AgentState, str], dict[str, Any] | None] = lambda _state, _subject: None
    policy: WritePolicy = IMMEDIATE
    # The telemetry section whose hardware the sensor needs ("supply", "fan"): the sensor is created when
    # the agent first reports it (not null). None: every Pi has it.
    requires: str | None = None
    # Whether the value means anything now (the sound level: only while the stream has sound); None: always.
    available_fn: Callable[[AgentState, str], bool] | None = None


def _megahertz(hertz: Any) -> float | None:
    """Clocks are shown in MHz. (Home Assistant has no frequency unit converter, so no suggested unit.)"""
    return hertz / MHZ if isinstance(hertz, int | float) else None


def _boot_time(state: AgentState, _subject: str) -> float | None:
    """The agent's own figure (``boot.last_boot``) where it reports one; else sample time − uptime."""
    telemetry = state.telemetry
    if isinstance(last_boot := _dig(telemetry, "boot", "last_boot"), int | float):
        return float(last_boot)
    sampled_at = telemetry.get("timestamp")
    uptime = _dig(telemetry, "board", "uptime_s")
    if sampled_at is None or uptime is None:
        return None
    return float(sampled_at) - float(uptime)


def _dmabuf_attributes(state: AgentState, _subject: str) -> dict[str, Any] | None:
    dmabuf = state.telemetry.get("dmabuf")
    if not isinstance(dmabuf, Mapping):
        return None
    return {
        "buffers": dmabuf.get("buffers"),
        "by_exporter": dict(dmabuf.get("by_exporter") or {}),
        "by_device": dict(dmabuf.get("by_device") or {}),
        "by_process": dict(dmabuf.get("by_process") or {}),
        "source": dmabuf.get("source"),
    }


def _episode_attributes(state: AgentState, _subject: str) -> dict[str, Any] | None:
    power = state.telemetry.get("power")
    if not isinstance(power, Mapping):
        return None
    end = power.get("last_under_voltage_end")
    longest = power.get("longest_under_voltage_s")
    return {
        "last_end": dt_util.utc_from_timestamp(round(end)) if isinstance(end, int | float) else None,
        "longest_duration_s": round(longest, 1) if isinstance(longest, int | float) else None,
    }


def _timestamp(value: Any) -> Any:
    return dt_util.utc_from_timestamp(round(value)) if isinstance(value, int | float) else None


def _root_attributes(state: AgentState, _subject: str) -> dict[str, Any] | None:
    root = _dig(state.telemetry, "storage", "root")
    if not isinstance(root, Mapping):
        return None
    return {"device": root.get("device"), "total_bytes": root.get("total_bytes")}


def _storage_error_attributes(state: AgentState, _subject: str) -> dict[str, Any] | None:
    storage = state.telemetry.get("storage")
    if not isinstance(storage, Mapping):
        return None
    last = storage.get("last_error")
    last = last if isinstance(last, Mapping) else {}
    return {"last_error": last.get("message"), "last_error_at": _timestamp(last.get("timestamp"))}


def _oom_kill_attributes(state: AgentState, _subject: str) -> dict[str, Any] | None:
    """The newest kill: which process, and the stream it published for (None: not a publisher)."""
    oom_kills = state.telemetry.get("oom_kills")
    if not isinstance(oom_kills, Mapping):
        return None
    last = oom_kills.get("last")
    last = last if isinstance(last, Mapping) else {}
    stream_id = last.get("stream_id")
    stream = state.streams.get(stream_id) if isinstance(stream_id, str) else None
    return {
        "last_process": last.get("process"),
        "last_pid": last.get("pid"),
        "last_stream": (stream or {}).get("name") or stream_id,
        "last_at": _timestamp(last.get("timestamp")),
    }


PI_SENSORS: tuple[PiStreamSensorEntityDescription, ...] = (
    PiStreamSensorEntityDescription(
        key="cma_used",
        translation_key="cma_used",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda state, _: _dig(state.telemetry, "cma", "used_percent"),
        policy=PERCENT_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="cma_free",
        translation_key="cma_free",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "cma", "free_bytes"),
        policy=CMA_FREE_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="dmabuf_total",
        translation_key="dmabuf_total",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "dmabuf", "total_bytes"),
        attributes_fn=_dmabuf_attributes,
        policy=DMABUF_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="soc_temperature",
        translation_key="soc_temperature",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: state.telemetry.get("soc_temperature_c"),
        policy=TEMPERATURE_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="core_voltage",
        translation_key="core_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state, _: state.telemetry.get("core_voltage_v"),
        policy=VOLTAGE_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="h264_clock",
        translation_key="h264_clock",
        device_class=SensorDeviceClass.FREQUENCY,
        native_unit_of_measurement=UnitOfFrequency.MEGAHERTZ,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state, _: _megahertz(state.telemetry.get("h264_clock_hz")),
        policy=CLOCK_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="arm_clock",
        translation_key="arm_clock",
        device_class=SensorDeviceClass.FREQUENCY,
        native_unit_of_measurement=UnitOfFrequency.MEGAHERTZ,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state, _: _megahertz(state.telemetry.get("arm_clock_hz")),
        policy=CLOCK_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="cpu_usage",
        translation_key="cpu_usage",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "cpu", "percent"),
        policy=CPU_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="memory_used",
        translation_key="memory_used",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "memory", "used_percent"),
        policy=PERCENT_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="swap_used",
        translation_key="swap_used",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "swap", "used_percent"),
        policy=PERCENT_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="under_voltage_episodes",
        translation_key="under_voltage_episodes",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda state, _: _dig(state.telemetry, "power", "under_voltage_episodes"),
    ),
    PiStreamSensorEntityDescription(
        key="last_under_voltage",
        translation_key="last_under_voltage",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda state, _: _dig(state.telemetry, "power", "last_under_voltage_start"),
        attributes_fn=_episode_attributes,
        policy=EPISODE_TIME_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="last_boot",
        translation_key="last_boot",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_boot_time,
        policy=BOOT_TIME_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="storage_used",
        translation_key="storage_used",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "storage", "root", "used_percent"),
        attributes_fn=_root_attributes,
        policy=STORAGE_USED_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="storage_free",
        translation_key="storage_free",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "storage", "root", "free_bytes"),
        policy=STORAGE_FREE_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="storage_errors",
        translation_key="storage_errors",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda state, _: _dig(state.telemetry, "storage", "errors_total"),
        attributes_fn=_storage_error_attributes,
    ),
    PiStreamSensorEntityDescription(
        key="oom_kills",
        translation_key="oom_kills",
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda state, _: _dig(state.telemetry, "oom_kills", "total"),
        attributes_fn=_oom_kill_attributes,
    ),
)

# Hardware only some boards have: created when the agent first reports the section (``requires``).
BOARD_SENSORS: tuple[PiStreamSensorEntityDescription, ...] = (
    PiStreamSensorEntityDescription(
        key="input_voltage",
        translation_key="input_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "supply", "input_voltage_v"),
        policy=SUPPLY_VOLTAGE_POLICY,
        requires="supply",
    ),
    PiStreamSensorEntityDescription(
        key="supply_current",
        translation_key="supply_current",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "supply", "current_a"),
        policy=CURRENT_POLICY,
        requires="supply",
    ),
    PiStreamSensorEntityDescription(
        key="fan_speed",
        translation_key="fan_speed",
        native_unit_of_measurement=REVOLUTIONS_PER_MINUTE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state, _: _dig(state.telemetry, "fan", "rpm"),
        policy=FAN_SPEED_POLICY,
        requires="fan",
    ),
    PiStreamSensorEntityDescription(
        key="fan_duty",
        translation_key="fan_duty",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state, _: _dig(state.telemetry, "fan", "pwm_percent"),
        policy=FAN_DUTY_POLICY,
        requires="fan",
    ),
)


def _interface_metric(metric: str) -> Callable[[AgentState, str], Any]:
    return lambda state, interface: _dig(state.telemetry, "network", interface, metric)


def _wifi_metric(metric: str) -> Callable[[AgentState, str], Any]:
    return lambda state, interface: _dig(state.telemetry, "wifi", interface, metric)


# One of each per interface in telemetry["network"]; names carry the interface ("eth0 receive errors").
INTERFACE_SENSORS: tuple[PiStreamSensorEntityDescription, ...] = tuple(
    PiStreamSensorEntityDescription(
        key=f"{direction}_{kind}",
        translation_key=f"{direction}_{kind}",
        native_unit_of_measurement=f"{kind}/s",
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_interface_metric(f"{direction}_{kind}_per_s"),
        policy=NETWORK_RATE_POLICY,
    )
    for kind in ("errors", "drops")
    for direction in ("rx", "tx")
)

# One of each per interface in telemetry["wifi"].
WIFI_SENSORS: tuple[PiStreamSensorEntityDescription, ...] = (
    PiStreamSensorEntityDescription(
        key="wifi_signal",
        translation_key="wifi_signal",
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_wifi_metric("signal_dbm"),
        policy=SIGNAL_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="wifi_link_quality",
        translation_key="wifi_link_quality",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_wifi_metric("link_quality_percent"),
        policy=LINK_QUALITY_POLICY,
    ),
)


def _stream_value(field: str) -> Callable[[AgentState, str], Any]:
    return lambda state, stream_id: _dig(state.streams, stream_id, field)


def _stream_state(state: AgentState, stream_id: str) -> str | None:
    """A state the agent's vocabulary lists (the enum's options), else unknown."""
    value = _dig(state.streams, stream_id, "state")
    return value if value in state.vocabulary.stream_states else None


def _stream_state_attributes(state: AgentState, stream_id: str) -> dict[str, Any] | None:
    stream = state.streams.get(stream_id)
    if stream is None:
        return None
    return {"cause": stream.get("cause"), "message": stream.get("message")}


def publisher_cpu_percent(state: AgentState, stream_id: str) -> float | None:
    """The CPU % of all of a stream's publisher processes (its stats' ``publishers``); None while none of
    them has a reading (the stream is not running, or the agent has only one sample of a new process)."""
    publishers = _dig(state.streams, stream_id, "publishers")
    if not isinstance(publishers, Mapping):
        return None
    values = [
        float(value)
        for publisher in publishers.values()
        if isinstance(publisher, Mapping) and isinstance(value := publisher.get("cpu_percent"), int | float)
    ]
    return sum(values) if values else None


def _restart_attributes(state: AgentState, stream_id: str) -> dict[str, Any] | None:
    """Beside the restarts after failures (the state): those people asked for, and failures by cause."""
    stream = state.streams.get(stream_id)
    if stream is None:
        return None
    by_cause = stream.get("restarts_by_cause")
    return {
        "requested_restarts": stream.get("requested_restart_count"),
        "restarts_by_cause": dict(by_cause) if isinstance(by_cause, Mapping) else None,
    }


STREAM_SENSORS: tuple[PiStreamSensorEntityDescription, ...] = (
    PiStreamSensorEntityDescription(
        key="state",
        translation_key="stream_state",
        device_class=SensorDeviceClass.ENUM,  # options: the agent's stream states (stream_sensors)
        value_fn=_stream_state,
        attributes_fn=_stream_state_attributes,
    ),
    PiStreamSensorEntityDescription(
        key="frame_rate",
        translation_key="frame_rate",
        native_unit_of_measurement="fps",
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_stream_value("fps"),
        policy=FRAME_RATE_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="bitrate",
        translation_key="bitrate",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.BITS_PER_SECOND,
        suggested_unit_of_measurement=UnitOfDataRate.KILOBITS_PER_SECOND,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_stream_value("bitrate_bps"),
        policy=BITRATE_POLICY,
    ),
    PiStreamSensorEntityDescription(
        key="restart_count",
        translation_key="restart_count",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_stream_value("restart_count"),
        attributes_fn=_restart_attributes,
    ),
    PiStreamSensorEntityDescription(
        key="publisher_cpu",
        translation_key="publisher_cpu",
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=publisher_cpu_percent,
        policy=PUBLISHER_CPU_POLICY,
    ),
)

SOUND_LEVEL = PiStreamSensorEntityDescription(
    key="sound_level",
    translation_key="sound_level",
    native_unit_of_measurement=SOUND_LEVEL_UNIT,
    suggested_display_precision=0,
    state_class=SensorStateClass.MEASUREMENT,
    value_fn=detection.sound_level_dbfs,
    available_fn=detection.audio_on,
    policy=SOUND_LEVEL_POLICY,
)


class _GatedSensor(SensorEntity):
    """A sensor that writes its state only when its write policy allows (see write_policy.py).

    What it shows is what it last wrote: ``_attr_native_value`` and ``_attr_extra_state_attributes`` are
    set only when the gate accepts a reading, so a write caused by anything else shows the same numbers.
    Going unavailable and coming back are written at once.
    """

    entity_description: PiStreamSensorEntityDescription
    coordinator: PiStreamCoordinator
    _subject: str
    _gate: WriteGate
    _shown_available: bool

    def _start_gate(self) -> None:
        self._gate = WriteGate(self.entity_description.policy)
        self._shown_available = self.available
        self._offer(force=True)

    def _offer(self, *, force: bool) -> bool:
        data = self.coordinator.data
        description = self.entity_description
        value = description.value_fn(data, self._subject)
        extra = description.attributes_fn(data, self._subject)
        if not self._gate.offer(value, time.monotonic(), extra, force=force):
            return False
        shown = self._gate.value
        if shown is not None and description.device_class is SensorDeviceClass.TIMESTAMP:
            shown = dt_util.utc_from_timestamp(shown)
        self._attr_native_value = shown
        self._attr_extra_state_attributes = self._gate.extra
        return True

    @callback
    def _handle_coordinator_update(self) -> None:
        available = self.available
        if not available:
            if self._shown_available:
                self._shown_available = False
                self.async_write_ha_state()
            return
        came_back = not self._shown_available
        self._shown_available = True
        if self._offer(force=came_back) or came_back:
            self.async_write_ha_state()


class PiStreamSensor(_GatedSensor, PiStreamEntity):
    """A sensor of the Pi (``subject`` "") or of one of its network interfaces (``subject`` its name)."""

    def __init__(
        self,
        coordinator: PiStreamCoordinator,
        description: PiStreamSensorEntityDescription,
        subject: str = "",
    ) -> None:
        super().__init__(coordinator, f"{subject}_{description.key}" if subject else description.key)
        self.entity_description = description
        self._subject = subject
        self._start_gate()


class PiStreamStreamSensor(_GatedSensor, PiStreamStreamEntity):
    """A sensor of one stream. When the stream changes state its numbers are written at once, whatever
    the write policy: they belong to another run now (unknown while it is not running, not the last run's
    value held for a grace period; fresh as soon as a new run is measured)."""

    def __init__(
        self, coordinator: PiStreamCoordinator, stream_id: str, description: PiStreamSensorEntityDescription
    ) -> None:
        super().__init__(coordinator, stream_id, description.key)
        self.entity_description = description
        self._subject = stream_id
        self._stream_state = self.stream.get("state")
        self._start_gate()

    @property
    def available(self) -> bool:
        available_fn = self.entity_description.available_fn
        return super().available and (
            available_fn is None or available_fn(self.coordinator.data, self._subject)
        )

    def _offer(self, *, force: bool) -> bool:
        stream_state = self.stream.get("state")
        if stream_state != self._stream_state:
            self._stream_state = stream_state
            force = True
        return super()._offer(force=force)


def interface_sensors(coordinator: PiStreamCoordinator, interface: str) -> list[PiStreamSensor]:
    """The per-interface rate sensors; errors on the Pi's own Ethernet and Wi-Fi are enabled by default."""
    sensors = []
    for description in INTERFACE_SENSORS:
        enabled = description.key.endswith("errors") and interface in DEFAULT_ENABLED_ERROR_INTERFACES
        sensors.append(
            PiStreamSensor(
                coordinator,
                replace(
                    description,
                    translation_placeholders={"interface": interface},
                    entity_registry_enabled_default=enabled,
                ),
                interface,
            )
        )
    return sensors


def wifi_sensors(coordinator: PiStreamCoordinator, interface: str) -> list[PiStreamSensor]:
    return [
        PiStreamSensor(
            coordinator, replace(description, translation_placeholders={"interface": interface}), interface
        )
        for description in WIFI_SENSORS
    ]


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the Pi's sensors, those of its board's extra hardware and its interfaces (now and as they
    appear) and every stream's."""
    coordinator = entry.runtime_data
    async_add_entities(PiStreamSensor(coordinator, description) for description in PI_SENSORS)

    known: set[tuple[str, str]] = set()

    @callback
    def add_interfaces() -> None:
        telemetry = coordinator.data.telemetry
        new: list[Entity] = []
        for description in BOARD_SENSORS:
            section = description.requires
            if isinstance(telemetry.get(section or ""), Mapping) and ("board", description.key) not in known:
                known.add(("board", description.key))
                new.append(PiStreamSensor(coordinator, description))
        for section, factory in (("network", interface_sensors), ("wifi", wifi_sensors)):
            interfaces = telemetry.get(section)
            if not isinstance(interfaces, Mapping):
                continue
            for interface in interfaces:
                if (section, interface) not in known:
                    known.add((section, interface))
                    new.extend(factory(coordinator, str(interface)))
        if new:
            async_add_entities(new)

    add_interfaces()
    entry.async_on_unload(coordinator.async_add_listener(add_interfaces))

    async_add_stream_entities(entry, async_add_entities, stream_sensors)
    async_add_stream_entities(
        entry,
        async_add_entities,
        lambda coordinator, stream_id: [PiStreamStreamSensor(coordinator, stream_id, SOUND_LEVEL)],
        when=detection.has_audio,
    )


def stream_sensors(coordinator: PiStreamCoordinator, stream_id: str) -> list[PiStreamStreamSensor]:
    """A stream's sensors; the state enum's options are the stream states the agent publishes.

    A stream passed through untouched (``encoding: copy``) gets no Bitrate sensor: the agent measures the
    bitrate of what it encodes or relays from a camera, and has no figure for a pass-through (docs/api.md),
    so that sensor could never have a value."""
    states = list(coordinator.data.vocabulary.stream_states)
    passed_through = coordinator.data.streams.get(stream_id, {}).get("encoding") == "copy"
    return [
        PiStreamStreamSensor(
            coordinator,
            stream_id,
            replace(description, options=states)
            if description.device_class is SensorDeviceClass.ENUM
            else description,
        )
        for description in STREAM_SENSORS
        if not (passed_through and description.key == "bitrate")
    ]
