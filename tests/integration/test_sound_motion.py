"""Motion and sound in Home Assistant, against the real agent: the entities a stream gets where it can
detect motion or has sound, the settings that come from the agent's vocabulary, and what the pushed
``motion``/``sound`` events do — the binary sensors switch at once, the stream's event entity fires, the
logbook reads it, the motion snapshot's image moves to the new motion, the sound level follows its write
policy, and the camera says it carries sound.

Where these tests push messages themselves (``push_event``, ``push_sample``) they go through the
coordinator's own WebSocket handler, exactly as the agent's would; the agent's telemetry is slowed to once
an hour so that a sample of its own cannot replace the pushed one while a test looks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    EntityCategory,
    Platform,
)
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.agent_state import STREAM_STATS_FIELDS
from custom_components.pi_stream.coordinator import PiStreamCoordinator
from custom_components.pi_stream.event import EVENT_STREAM
from custom_components.pi_stream.logbook import describe_stream_event
from custom_components.pi_stream.sensor import SOUND_LEVEL, SOUND_LEVEL_POLICY
from custom_components.pi_stream.vocabulary import SETTING_SOUND_DETECTION
from tests.integration.stable_agent import StableAgentProcess, run_agent

GARAGE_MOTION = "binary_sensor.garage_motion"
GARAGE_SOUND = "binary_sensor.garage_sound"
GARAGE_SOUND_LEVEL = "sensor.garage_sound_level"
GARAGE_SNAPSHOT = "image.garage_motion_snapshot"
GARAGE_EVENTS = "event.garage_stream_events"
GARAGE_CAMERA = "camera.garage"
MOTION_SETTINGS = {
    "switch.garage_motion_detection": "motion_detection",
    "number.garage_motion_sensitivity": "motion_sensitivity",
    "number.garage_motion_minimum_duration": "motion_min_duration_s",
}


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state", telemetry_interval_s=3600))


@pytest.fixture(autouse=True)
def platforms() -> Iterator[None]:
    with patch(
        "custom_components.pi_stream.PLATFORMS",
        [
            Platform.BINARY_SENSOR,
            Platform.CAMERA,
            Platform.EVENT,
            Platform.IMAGE,
            Platform.NUMBER,
            Platform.SENSOR,
            Platform.SWITCH,
        ],
    ):
        yield


def coordinator_of(entry: MockConfigEntry) -> PiStreamCoordinator:
    coordinator: PiStreamCoordinator = entry.runtime_data
    return coordinator


async def push_event(hass: HomeAssistant, entry: MockConfigEntry, kind: str, data: dict[str, Any]) -> None:
    """One event, as the agent's WebSocket delivers it."""
    message = {"type": "event", "event": {"type": kind, "timestamp": time.time(), "data": data}}
    coordinator_of(entry)._on_message(message)
    await hass.async_block_till_done()


async def push_sample(hass: HomeAssistant, entry: MockConfigEntry, stream_id: str, **fields: Any) -> None:
    """A telemetry sample whose stats for ``stream_id`` carry ``fields`` (the others' as HA holds them)."""
    state = coordinator_of(entry).data
    streams = {
        sid: {key: status.get(key) for key in STREAM_STATS_FIELDS} for sid, status in state.streams.items()
    }
    streams[stream_id].update(fields)
    coordinator_of(entry)._on_message({"type": "telemetry", "data": {**state.telemetry, "streams": streams}})
    await hass.async_block_till_done()


async def give_garage_sound(hass: HomeAssistant, entry: MockConfigEntry, *, detection: bool) -> None:
    """The garage with sound, as an agent with audio reports it: ``audio`` on in its stats, and the sound
    detection switch in its controls document."""
    coordinator = coordinator_of(entry)
    controls = list(coordinator.data.controls["garage"].values())
    controls.append(
        {
            "id": SETTING_SOUND_DETECTION,
            "kind": "switch",
            "source": "setting",
            "value": detection,
            "default": False,
        }
    )
    coordinator.async_stream_controls("garage", {"stream_id": "garage", "controls": controls})
    # That re-reads the stream from the real agent (whose garage has no sound): let it land first.
    await hass.async_block_till_done()
    audio = {"state": "on", "device": "usb_mic", "codec": "aac", "reason": None}
    await push_sample(hass, entry, "garage", audio=audio, sound_level_dbfs=-40.2)


@pytest.fixture
def stream_events(hass: HomeAssistant) -> Iterator[list[Event[Any]]]:
    events: list[Event[Any]] = []
    unsubscribe = hass.bus.async_listen(EVENT_STREAM, events.append)
    yield events
    unsubscribe()


# -- motion ------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_motion_entities_and_settings(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Every stream whose camera can detect motion (a test pattern can) gets a motion sensor and a motion
    snapshot, unavailable while motion detection is off; its settings are the agent's, set through it."""
    for stream_id in ("garage", "front_door"):
        motion = hass.states.get(f"binary_sensor.{stream_id}_motion")
        assert motion is not None
        assert motion.attributes["device_class"] == "motion"
        assert motion.state == STATE_UNAVAILABLE  # motion detection is off (the agent's default)
        assert hass.states.get(f"image.{stream_id}_motion_snapshot") is not None
    # No sound entities: the agent reports no audio for these streams.
    assert hass.states.get(GARAGE_SOUND) is None
    assert hass.states.get(GARAGE_SOUND_LEVEL) is None

    published = {
        setting["id"]: setting
        for setting in (await hass.async_add_executor_job(agent.request, "GET", "/vocabulary"))[
            "stream_settings"
        ]
    }
    for entity_id, setting_id in MOTION_SETTINGS.items():
        entry = entity_registry.async_get(entity_id)
        assert entry is not None, entity_id
        assert entry.entity_category is EntityCategory.CONFIG
        assert hass.states.get(entity_id).name == f"Garage {published[setting_id]['name']}"
    sensitivity = hass.states.get("number.garage_motion_sensitivity")
    assert (sensitivity.attributes["min"], sensitivity.attributes["max"]) == (
        published["motion_sensitivity"]["min"],
        published["motion_sensitivity"]["max"],
    )

    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: "number.garage_motion_sensitivity", ATTR_VALUE: 80},
        blocking=True,
    )
    assert float(hass.states.get("number.garage_motion_sensitivity").state) == 80
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: "switch.garage_motion_detection"}, blocking=True
    )
    assert hass.states.get("switch.garage_motion_detection").state == STATE_ON
    stored = await hass.async_add_executor_job(agent.request, "GET", "/streams/garage")
    assert stored["config"]["settings"]["motion_sensitivity"] == 80
    assert stored["config"]["settings"]["motion_detection"] is True


async def test_a_motion_switches_the_sensor_fires_the_event_and_moves_the_snapshot(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    stream_events: list[Event[Any]],
) -> None:
    started = time.time()
    await push_event(
        hass,
        init_integration,
        "motion",
        {
            "stream_id": "garage",
            "state": "start",
            "score": 12.5,
            "started_at": started,
            "ended_at": None,
            "snapshot": "/api/v1/streams/garage/motion/snapshot",
        },
    )
    assert hass.states.get(GARAGE_MOTION).state == STATE_ON
    events = hass.states.get(GARAGE_EVENTS)
    assert events.attributes["event_type"] == "motion"
    assert events.attributes["state"] == "start"
    assert events.attributes["score"] == 12.5
    assert events.attributes["started_at"] == dt_util.utc_from_timestamp(started).isoformat()
    assert events.attributes["ended_at"] is None
    snapshot = hass.states.get(GARAGE_SNAPSHOT)
    assert snapshot.state == dt_util.utc_from_timestamp(started).isoformat()
    # The other stream noticed nothing.
    assert hass.states.get("binary_sensor.front_door_motion").state == STATE_UNAVAILABLE

    await push_event(
        hass,
        init_integration,
        "motion",
        {"stream_id": "garage", "state": "end", "score": 0.4, "started_at": started, "ended_at": started + 8},
    )
    assert hass.states.get(GARAGE_MOTION).state == STATE_OFF
    events = hass.states.get(GARAGE_EVENTS)
    assert (events.attributes["state"], events.attributes["duration_s"]) == ("end", 8.0)
    # The end does not move the snapshot: it is the picture of the start.
    assert hass.states.get(GARAGE_SNAPSHOT).state == snapshot.state

    lines = [describe_stream_event(dict(event.data))["message"] for event in stream_events]
    assert lines == ["noticed motion (score 12.5)", "motion ended after 8 s"]

    # The next motion: a new picture.
    await push_event(
        hass,
        init_integration,
        "motion",
        {"stream_id": "garage", "state": "start", "score": 30, "started_at": started + 60, "ended_at": None},
    )
    assert hass.states.get(GARAGE_SNAPSHOT).state == dt_util.utc_from_timestamp(started + 60).isoformat()


# -- sound ---------------------------------------------------------------------------------------------------


async def test_sound_entities_appear_with_sound(
    hass: HomeAssistant, init_integration: MockConfigEntry, stream_events: list[Event[Any]]
) -> None:
    assert hass.states.get(GARAGE_SOUND) is None
    assert "audio" not in hass.states.get(GARAGE_CAMERA).attributes
    await give_garage_sound(hass, init_integration, detection=False)

    # The stream has sound: its level and sound flag exist; the flag waits for sound detection.
    assert hass.states.get(GARAGE_SOUND).state == STATE_UNAVAILABLE
    assert hass.states.get(GARAGE_SOUND).attributes["device_class"] == "sound"
    level = hass.states.get(GARAGE_SOUND_LEVEL)
    assert (level.state, level.attributes["unit_of_measurement"]) == ("-40", "dBFS")
    assert level.attributes["state_class"] == "measurement"
    camera = hass.states.get(GARAGE_CAMERA).attributes
    assert (camera["audio"], camera["audio_codec"], camera["audio_problem"]) == (True, "aac", None)
    assert hass.states.get("binary_sensor.front_door_sound") is None

    await give_garage_sound(hass, init_integration, detection=True)
    assert hass.states.get(GARAGE_SOUND).state == STATE_OFF
    started = time.time()
    await push_event(
        hass,
        init_integration,
        "sound",
        {
            "stream_id": "garage",
            "state": "start",
            "level_dbfs": -12.3,
            "started_at": started,
            "ended_at": None,
        },
    )
    assert hass.states.get(GARAGE_SOUND).state == STATE_ON
    events = hass.states.get(GARAGE_EVENTS).attributes
    assert (events["event_type"], events["state"], events["level_dbfs"]) == ("sound", "start", -12.3)
    await push_event(
        hass,
        init_integration,
        "sound",
        {
            "stream_id": "garage",
            "state": "end",
            "level_dbfs": -45.0,
            "started_at": started,
            "ended_at": started + 3,
        },
    )
    assert hass.states.get(GARAGE_SOUND).state == STATE_OFF
    lines = [describe_stream_event(dict(event.data))["message"] for event in stream_events]
    assert lines == ["heard a sound (-12.3 dBFS)", "sound ended after 3 s"]

    # The audio device goes away: the stream runs on without sound, and says so.
    gone = {"state": "unavailable", "device": "usb_mic", "codec": None, "reason": "The microphone is gone."}
    await push_sample(hass, init_integration, "garage", audio=gone, sound_level_dbfs=None)
    assert hass.states.get(GARAGE_SOUND).state == STATE_UNAVAILABLE
    assert hass.states.get(GARAGE_SOUND_LEVEL).state == STATE_UNAVAILABLE
    camera = hass.states.get(GARAGE_CAMERA).attributes
    assert (camera["audio"], camera["audio_problem"]) == (False, "The microphone is gone.")


async def test_the_sound_level_is_not_written_at_every_sample(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Its write policy: whole dB, and a move smaller than its deadband is not a state write (the recorder
    would store every sample otherwise)."""
    assert SOUND_LEVEL.policy is SOUND_LEVEL_POLICY
    assert SOUND_LEVEL_POLICY.deadband > 0 and SOUND_LEVEL_POLICY.min_interval_s > 0
    await give_garage_sound(hass, init_integration, detection=False)
    written = hass.states.get(GARAGE_SOUND_LEVEL)
    assert written.state == "-40"
    for level in (-39.0, -41.4, -37.6, -42.0):  # within 6 dB of what was written
        await push_sample(hass, init_integration, "garage", sound_level_dbfs=level)
    assert hass.states.get(GARAGE_SOUND_LEVEL).last_updated == written.last_updated
