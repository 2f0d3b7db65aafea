"""Sensors against the real agent: the registry (snapshot), values read off the agent's own telemetry,
missing values as unknown, the agent going away and coming back, and interfaces that appear later."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.pi_stream.coordinator import AgentState, PiStreamCoordinator
from custom_components.pi_stream.sensor import (
    BOARD_SENSORS,
    INTERFACE_SENSORS,
    PI_SENSORS,
    STREAM_SENSORS,
    WIFI_SENSORS,
    PiStreamSensorEntityDescription,
    publisher_cpu_percent,
)
from custom_components.pi_stream.write_policy import IMMEDIATE
from tests.integration.stable_agent import StableAgentProcess, run_agent, wait_for
from tests.integration.vocabulary_source import agent_vocabulary

PI = "sensor.camera_pi"
MIB = 1024 * 1024

# Attributes that describe an entity rather than a moment: safe to snapshot from a live, moving agent.
STABLE_ATTRIBUTES = (
    "device_class",
    "friendly_name",
    "icon",
    "options",
    "state_class",
    "unit_of_measurement",
)

# Enabled by default: the Pi's health, Wi-Fi signal, errors on eth0/wlan0, and every stream sensor.
DISABLED_BY_DEFAULT = {
    f"{PI}_eth0_receive_drops",
    f"{PI}_eth0_transmit_drops",
    f"{PI}_wlan0_receive_drops",
    f"{PI}_wlan0_transmit_drops",
    f"{PI}_wlan0_link_quality",
}


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


@pytest.fixture(autouse=True)
def only_sensors() -> Iterator[None]:
    with patch("custom_components.pi_stream.PLATFORMS", [Platform.SENSOR]):
        yield


def number(hass: HomeAssistant, entity_id: str) -> float:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return float(state.state)


def wait_for_frame_rates(agent: StableAgentProcess, timeout_s: float = 20.0) -> None:
    """Block until the agent reports a frame rate for every stream."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all((s["fps"] or 0) > 1 for s in agent.request("GET", "/streams")["streams"]):
            return
        time.sleep(0.2)
    raise AssertionError("the agent measured no frame rate")


def coordinator_of(entry: MockConfigEntry) -> PiStreamCoordinator:
    coordinator: PiStreamCoordinator = entry.runtime_data
    return coordinator


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_sensor_registry(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Unique ids, device classes, units, categories, translation keys and disabled-by-default flags of
    every sensor, plus the attributes that do not move (the values do: they are checked below)."""
    entries = sorted(
        er.async_entries_for_config_entry(entity_registry, mock_config_entry.entry_id),
        key=lambda entry: entry.entity_id,
    )
    assert len(entries) == len(PI_SENSORS) + 2 * len(INTERFACE_SENSORS) + len(WIFI_SENSORS) + 2 * len(
        STREAM_SENSORS
    )
    for entry in entries:
        assert entry == snapshot(name=f"{entry.entity_id}-entry")
        state = hass.states.get(entry.entity_id)
        assert state is not None
        stable = {key: state.attributes[key] for key in STABLE_ATTRIBUTES if key in state.attributes}
        assert stable == snapshot(name=f"{entry.entity_id}-attributes")


@pytest.mark.usefixtures("init_integration")
async def test_niche_sensors_are_disabled_by_default(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    entries = er.async_entries_for_config_entry(entity_registry, mock_config_entry.entry_id)
    disabled = {entry.entity_id for entry in entries if entry.disabled_by is not None}
    assert disabled == DISABLED_BY_DEFAULT
    assert all(
        entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION for entry in entries if entry.disabled
    )
    for entity_id in DISABLED_BY_DEFAULT:
        assert hass.states.get(entity_id) is None
    # The rest have states.
    assert hass.states.get(f"{PI}_eth0_receive_errors") is not None
    assert hass.states.get(f"{PI}_wlan0_signal_strength") is not None


async def test_values_follow_the_agents_telemetry(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """What HA shows is what the agent measures, within the write policy's deadband (values move)."""
    # Stream numbers (fps) come with REST reads (every 30 s, or when a stream starts); the first read
    # right after the streams started may say 0 fps. One poll after the agent measures the frame rate, the
    # first change after set-up is written at once (the policy does not hold back a settling value).
    await hass.async_add_executor_job(wait_for_frame_rates, agent)
    await coordinator_of(init_integration).async_refresh()
    await hass.async_block_till_done()
    telemetry = await hass.async_add_executor_job(agent.request, "GET", "/telemetry")
    listing = {
        s["id"]: s for s in (await hass.async_add_executor_job(agent.request, "GET", "/streams"))["streams"]
    }

    # CMA: the simulated Pi 4 has the captured 512 MiB; free is shown in MiB (stored in bytes).
    assert telemetry["cma"]["total_bytes"] == 512 * MIB
    cma_free = hass.states.get(f"{PI}_cma_free")
    assert cma_free.attributes["unit_of_measurement"] == "MiB"
    assert abs(float(cma_free.state) - telemetry["cma"]["free_bytes"] / MIB) <= 48
    assert 0 < float(cma_free.state) < 512
    assert abs(number(hass, f"{PI}_cma_used") - telemetry["cma"]["used_percent"]) <= 10
    # used % and free MiB describe the same 512 MiB.
    assert abs(number(hass, f"{PI}_cma_used") - (100 - float(cma_free.state) / 512 * 100)) <= 12

    dmabuf = hass.states.get(f"{PI}_dma_buffers")
    assert float(dmabuf.state) == pytest.approx(telemetry["dmabuf"]["total_bytes"] / MIB, abs=0.07)
    assert dmabuf.attributes["by_exporter"] == telemetry["dmabuf"]["by_exporter"]
    assert dmabuf.attributes["source"] == telemetry["dmabuf"]["source"]
    assert dmabuf.attributes["buffers"] == telemetry["dmabuf"]["buffers"]

    temperature = number(hass, f"{PI}_soc_temperature")
    assert 40 <= temperature <= 70
    assert temperature * 2 == int(temperature * 2)  # rounded to 0.5 °C
    assert abs(temperature - telemetry["soc_temperature_c"]) <= 4
    assert number(hass, f"{PI}_core_voltage") == telemetry["core_voltage_v"] == 0.87
    assert hass.states.get(f"{PI}_h264_encoder_clock").attributes["unit_of_measurement"] == "MHz"
    assert number(hass, f"{PI}_h264_encoder_clock") == round(telemetry["h264_clock_hz"] / 1e6) == 500
    assert number(hass, f"{PI}_arm_clock") == round(telemetry["arm_clock_hz"] / 1e6) == 1500
    assert abs(number(hass, f"{PI}_memory_used") - telemetry["memory"]["used_percent"]) <= 6
    assert number(hass, f"{PI}_swap_used") == telemetry["swap"]["used_percent"] == 0
    assert number(hass, f"{PI}_under_voltage_episodes") == telemetry["power"]["under_voltage_episodes"]
    signal = hass.states.get(f"{PI}_wlan0_signal_strength")
    assert signal.attributes["unit_of_measurement"] == "dBm"
    assert abs(float(signal.state) - telemetry["wifi"]["wlan0"]["signal_dbm"]) <= 10
    assert number(hass, f"{PI}_eth0_receive_errors") == telemetry["network"]["eth0"]["rx_errors_per_s"] == 0

    # Uptime as the boot time (a timestamp that stays put), not a ticking number.
    boot = dt_util.parse_datetime(hass.states.get(f"{PI}_last_boot").state)
    assert boot is not None
    assert abs(boot.timestamp() - (telemetry["timestamp"] - telemetry["board"]["uptime_s"])) <= 60

    for stream_id, name in (("front_door", "front_door"), ("garage", "garage")):
        stream = listing[stream_id]
        state = hass.states.get(f"sensor.{name}_state")
        assert state.state == stream["state"] == "running"
        # The enum's options are the states the agent publishes, in its order.
        vocabulary = await hass.async_add_executor_job(agent.request, "GET", "/vocabulary")
        assert state.attributes["options"] == [word["id"] for word in vocabulary["stream_states"]]
        assert abs(number(hass, f"sensor.{name}_frame_rate") - stream["config"]["fps"]) <= 2
        assert number(hass, f"sensor.{name}_restarts") == stream["restart_count"]
        processes = [p for key, p in telemetry["processes"].items() if key.startswith(f"{stream_id}/")]
        assert processes  # the agent reports the stream's publishers
        # CPU % needs two samples: unknown until the second one is pushed.
        cpu = f"sensor.{name}_publisher_cpu"
        await wait_for(hass, lambda cpu=cpu: hass.states.get(cpu).state != STATE_UNKNOWN, "publisher CPU")
        assert 0 <= number(hass, cpu) <= 100


@pytest.mark.usefixtures("init_integration")
async def test_missing_values_are_unknown_not_unavailable(
    hass: HomeAssistant, agent: StableAgentProcess, mock_config_entry: MockConfigEntry
) -> None:
    """A value the agent stops reporting turns unknown (after the grace period for values that need two
    samples), while the entity stays available. (The bitrate used to be the example of a value the agent
    never had; the agent now measures it, see tests/agent/test_stream_stats.py.)"""
    assert hass.states.get("sensor.garage_bitrate").attributes["unit_of_measurement"] == "kbit/s"

    coordinator = coordinator_of(mock_config_entry)
    data = coordinator.data
    telemetry = {**data.telemetry, "soc_temperature_c": None, "cma": {}, "wifi": None}
    coordinator.async_set_updated_data(replace(data, telemetry=telemetry))
    await hass.async_block_till_done()
    assert hass.states.get(f"{PI}_soc_temperature").state == STATE_UNKNOWN
    assert hass.states.get(f"{PI}_cma_free").state == STATE_UNKNOWN
    assert hass.states.get(f"{PI}_wlan0_signal_strength").state == STATE_UNKNOWN
    assert hass.states.get(f"{PI}_memory_used").state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)


@pytest.mark.usefixtures("init_integration")
async def test_sensors_unavailable_while_the_agent_is_away(
    hass: HomeAssistant, agent: StableAgentProcess, mock_config_entry: MockConfigEntry
) -> None:
    coordinator = coordinator_of(mock_config_entry)
    watched = [f"{PI}_cma_free", f"{PI}_soc_temperature", f"{PI}_last_boot", "sensor.garage_state"]
    assert all(hass.states.get(entity_id).state != STATE_UNAVAILABLE for entity_id in watched)

    await hass.async_add_executor_job(agent.stop)
    await coordinator.async_refresh()  # what the 30 s poll does while the socket is down
    await hass.async_block_till_done()
    assert [hass.states.get(entity_id).state for entity_id in watched] == [STATE_UNAVAILABLE] * len(watched)

    await hass.async_add_executor_job(agent.start)
    await hass.async_add_executor_job(agent.wait_streams_running)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert all(
        hass.states.get(entity_id).state not in (STATE_UNAVAILABLE, STATE_UNKNOWN) for entity_id in watched
    )
    assert float(hass.states.get(f"{PI}_cma_free").state) > 0
    assert hass.states.get("sensor.garage_state").state == "running"


@pytest.mark.usefixtures("init_integration")
async def test_interfaces_that_appear_later_get_sensors(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """A USB network adapter plugged in later shows up in telemetry["network"]: its rate sensors are added
    without a reload (disabled, like every interface's but the Pi's own eth0/wlan0 errors)."""
    coordinator = coordinator_of(mock_config_entry)
    data = coordinator.data
    eth1 = dict(data.telemetry["network"]["eth0"])
    telemetry = {**data.telemetry, "network": {**data.telemetry["network"], "eth1": eth1}}
    coordinator.async_set_updated_data(replace(data, telemetry=telemetry))
    await hass.async_block_till_done()
    entry = entity_registry.async_get(f"{PI}_eth1_receive_errors")
    assert entry is not None
    assert entry.unique_id.endswith("_eth1_rx_errors")
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_stream_state_is_written_at_once(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """Stopping a stream through the API: its state sensor says so as soon as the pushed event arrives."""
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/stop")
    await wait_for(hass, lambda: hass.states.get("sensor.garage_state").state == "stopped", "garage stopped")
    assert hass.states.get("sensor.front_door_state").state == "running"
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/start")
    await wait_for(hass, lambda: hass.states.get("sensor.garage_state").state == "running", "garage running")


# -- the descriptions themselves ------------------------------------------------------------------------


def test_every_moving_number_has_a_write_policy() -> None:
    """Measurements (numbers that move on their own) must not be written at every sample; counters,
    timestamps and the stream state are written as they change."""
    descriptions: list[PiStreamSensorEntityDescription] = [
        *PI_SENSORS,
        *BOARD_SENSORS,
        *INTERFACE_SENSORS,
        *WIFI_SENSORS,
        *STREAM_SENSORS,
    ]
    for description in descriptions:
        if description.state_class == "measurement":
            assert description.policy.has_deadband, description.key
            assert description.policy.min_interval_s >= 30, description.key
        else:
            assert description.policy.min_interval_s == 0, description.key
    immediate = {d.key for d in descriptions if d.policy == IMMEDIATE}
    # Counters of events (each one means something) are written as they change.
    assert immediate == {"under_voltage_episodes", "state", "restart_count", "storage_errors", "oom_kills"}


@pytest.mark.parametrize(
    "description",
    [*PI_SENSORS, *BOARD_SENSORS, *INTERFACE_SENSORS, *WIFI_SENSORS, *STREAM_SENSORS],
    ids=lambda description: description.key,
)
@pytest.mark.parametrize(
    "telemetry",
    [{}, {"cma": None, "dmabuf": None, "power": "?", "network": {"eth0": None}, "processes": None}],
    ids=["nothing", "malformed"],
)
def test_missing_telemetry_reads_as_none(
    description: PiStreamSensorEntityDescription, telemetry: dict[str, Any]
) -> None:
    """Whatever the agent could not read (null, or a section missing altogether) is None: unknown."""
    state = _state(telemetry)
    assert description.value_fn(state, "eth0") is None
    assert description.attributes_fn(state, "eth0") is None


def test_publisher_cpu_sums_a_streams_publishers() -> None:
    """From each stream's own stats (pushed with telemetry and events), not from another stream's."""
    publishers = {"rpicam-vid": {"cpu_percent": 3.5}, "ffmpeg": {"cpu_percent": 1.0}}
    state = _state(
        {"processes": {"garage/ffmpeg": {"cpu_percent": 50.0}}},
        garage={"publishers": publishers},
        garage_2={"publishers": {"ffmpeg": {"cpu_percent": 9.0}}},
        front_door={"publishers": {"ffmpeg": {"cpu_percent": None}}},
        porch={"publishers": None},  # not running
    )
    assert publisher_cpu_percent(state, "garage") == 4.5
    assert publisher_cpu_percent(state, "front_door") is None  # needs two samples
    assert publisher_cpu_percent(state, "porch") is None
    assert publisher_cpu_percent(state, "attic") is None


def _state(telemetry: dict[str, Any], **streams: dict[str, Any]) -> AgentState:
    return AgentState(
        info=None,  # type: ignore[arg-type]
        telemetry=telemetry,
        streams=streams,
        devices={},
        vocabulary=agent_vocabulary(),
    )


async def test_stream_numbers_arrive_by_push(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """Issue 13: after a stop and a start the frame rate came back only with a REST read that never ran
    while the WebSocket was up. Now the stream's numbers come with the pushed events and telemetry: unknown
    at once while the stream is stopped (not the last run's values), a real number again once the new
    run is measured, and no REST read of the streams is needed for either."""
    coordinator = coordinator_of(init_integration)
    rest_reads: list[str] = []
    original = coordinator.client.streams

    async def counted_streams() -> dict[str, Any]:
        rest_reads.append("streams")
        return await original()

    fps, cpu, bitrate = "sensor.garage_frame_rate", "sensor.garage_publisher_cpu", "sensor.garage_bitrate"
    with patch.object(coordinator.client, "streams", counted_streams):
        await wait_for(hass, lambda: hass.states.get(fps).state != STATE_UNKNOWN, "a frame rate")
        await wait_for(hass, lambda: hass.states.get(cpu).state != STATE_UNKNOWN, "publisher CPU")
        await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/stop")
        await wait_for(hass, lambda: hass.states.get("sensor.garage_state").state == "stopped", "stopped")
        assert hass.states.get(fps).state == STATE_UNKNOWN
        assert hass.states.get(cpu).state == STATE_UNKNOWN  # not held for the grace period
        assert hass.states.get(bitrate).state == STATE_UNKNOWN

        await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/start")
        await wait_for(hass, lambda: hass.states.get("sensor.garage_state").state == "running", "running")
        await wait_for(hass, lambda: hass.states.get(fps).state != STATE_UNKNOWN, "a new frame rate")
        assert 0 < number(hass, fps) <= 12
        # The agent measures the bitrate itself (ffmpeg says N/A when publishing over RTSP).
        await wait_for(hass, lambda: hass.states.get(bitrate).state != STATE_UNKNOWN, "a bitrate")
        assert number(hass, bitrate) > 0
    assert rest_reads == []


async def test_requested_restarts_are_counted(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """A restart someone asked for is not a failure: the Restarts sensor stays, its attributes count it."""
    restarts = "sensor.garage_restarts"
    before = hass.states.get(restarts)
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/restart")
    await wait_for(
        hass,
        lambda: (hass.states.get(restarts).attributes.get("requested_restarts") or 0) >= 1,
        "the requested restart counted",
    )
    after = hass.states.get(restarts)
    garage = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    assert after.state == before.state == str(garage["restart_count"])
    assert after.attributes["requested_restarts"] == garage["requested_restart_count"]
    assert after.attributes["restarts_by_cause"] == garage["restarts_by_cause"]


def test_a_passed_through_stream_has_no_bitrate_sensor() -> None:
    """The agent has no bitrate for a stream it passes through untouched (encoding copy): no sensor that
    could never have a value. Streams it encodes or relays get one."""
    from types import SimpleNamespace

    from custom_components.pi_stream.api import AgentInfo
    from custom_components.pi_stream.sensor import stream_sensors

    info = AgentInfo.from_json({"agent_id": "pi", "name": "Pi", "version": "0.1.0", "api_version": 1})
    state = replace(
        _state({}, card={"encoding": "copy", "name": "Card"}, cam={"encoding": "hardware", "name": "Cam"}),
        info=info,
    )
    coordinator = SimpleNamespace(data=state, last_update_success=True)
    keys = {
        stream_id: {sensor.entity_description.key for sensor in stream_sensors(coordinator, stream_id)}  # type: ignore[arg-type]
        for stream_id in ("card", "cam")
    }
    assert "bitrate" in keys["cam"]
    assert "bitrate" not in keys["card"]
    assert keys["cam"] - keys["card"] == {"bitrate"}
