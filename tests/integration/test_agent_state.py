"""The pure reducer (agent_state.py): what each pushed message does to the state Home Assistant holds."""

from __future__ import annotations

import copy
from typing import Any

from custom_components.pi_stream.agent_state import (
    STREAM_STATS_FIELDS,
    AgentState,
    apply_event,
    apply_stored_stream,
    apply_stream_controls,
    apply_telemetry,
    streams_out_of_step,
)
from custom_components.pi_stream.api import AgentInfo
from tests.integration.vocabulary_source import agent_vocabulary

INFO = AgentInfo(agent_id="abc", name="pi", hostname="pi", version="0.1.0", api_version=1, simulated=True)

RUNNING_STATS: dict[str, Any] = {
    "state": "running",
    "fps": 15.0,
    "bitrate_bps": 1_000_000,
    "frames": 900,
    "uptime_s": 60.0,
    "restart_count": 1,
    "requested_restart_count": 2,
    "restarts_by_cause": {"killed": 1},
    "publishers": {"ffmpeg": {"pid": 10, "cpu_percent": 3.0, "rss_bytes": 1000}},
}
STOPPED_STATS: dict[str, Any] = {
    **dict.fromkeys(STREAM_STATS_FIELDS),
    "state": "disabled",
    "restart_count": 1,
    "requested_restart_count": 2,
    "restarts_by_cause": {"killed": 1},
}


def garage(**status: Any) -> dict[str, Any]:
    return {
        "id": "garage",
        "name": "Garage",
        "enabled": True,
        "config": {"id": "garage", "fps": 15},
        "urls": {"main": "rtsp://pi/garage"},
        **RUNNING_STATS,
        **status,
    }


def state(**streams: dict[str, Any]) -> AgentState:
    return AgentState(
        info=INFO,
        telemetry={"timestamp": 1.0, "power": {"under_voltage_episodes": 0}},
        streams=streams or {"garage": garage()},
        devices={},
        vocabulary=agent_vocabulary(),
    )


def test_telemetry_replaces_the_sample_and_each_streams_stats() -> None:
    before = state()
    frozen = copy.deepcopy(before)
    sample = {"timestamp": 2.0, "cpu": {"percent": 5.0}, "streams": {"garage": {**RUNNING_STATS, "fps": 9.5}}}
    after = apply_telemetry(before, sample)
    assert after.telemetry == sample
    assert after.pushed is True
    assert after.streams["garage"]["fps"] == 9.5
    # What the sample does not cover stays: the configuration, addresses, name.
    assert after.streams["garage"]["urls"] == {"main": "rtsp://pi/garage"}
    assert after.streams["garage"]["config"] == {"id": "garage", "fps": 15}
    assert before == frozen  # pure: the old state is untouched


def test_a_stats_fragment_is_taken_whole() -> None:
    """A field the agent leaves out of a stats fragment is not known any more: no stale value survives."""
    after = apply_telemetry(state(), {"streams": {"garage": {"state": "disabled"}}})
    stream = after.streams["garage"]
    assert stream["state"] == "disabled"
    assert [stream[key] for key in STREAM_STATS_FIELDS if key != "state"] == [None] * (
        len(STREAM_STATS_FIELDS) - 1
    )


def test_telemetry_without_stream_stats_leaves_the_streams() -> None:
    before = state()
    after = apply_telemetry(before, {"timestamp": 3.0})
    assert after.streams == before.streams
    assert not streams_out_of_step(before, {"timestamp": 3.0})


def test_streams_out_of_step_when_the_pi_has_another_set() -> None:
    before = state()
    assert not streams_out_of_step(before, {"streams": {"garage": RUNNING_STATS}})
    assert streams_out_of_step(before, {"streams": {"garage": RUNNING_STATS, "porch": RUNNING_STATS}})
    assert streams_out_of_step(before, {"streams": {}})
    # A stream HA does not know is not invented from its stats alone.
    after = apply_telemetry(before, {"streams": {"garage": RUNNING_STATS, "porch": RUNNING_STATS}})
    assert set(after.streams) == {"garage"}


def test_stream_state_event_brings_its_stats() -> None:
    event = {
        "type": "stream_state",
        "timestamp": 5.0,
        "data": {
            "stream_id": "garage",
            "state": "disabled",
            "previous": "running",
            "cause": None,
            "message": None,
            "restart_count": 1,
            "next_retry_at": None,
            "stats": STOPPED_STATS,
        },
    }
    after = apply_event(state(), event)
    stream = after.streams["garage"]
    assert stream["state"] == "disabled"
    assert stream["fps"] is None
    assert stream["publishers"] is None
    assert stream["requested_restart_count"] == 2
    assert after.last_events["stream_state"] == event


def test_stream_state_event_of_an_agent_without_stats_forgets_the_last_runs_numbers() -> None:
    event = {"type": "stream_state", "data": {"stream_id": "garage", "state": "backoff", "cause": "killed"}}
    stream = apply_event(state(), event).streams["garage"]
    assert (stream["state"], stream["cause"]) == ("backoff", "killed")
    assert stream["fps"] is None
    assert stream["bitrate_bps"] is None
    assert stream["restart_count"] == 1  # not in the event: kept


def test_stream_exit_event_is_the_last_exit() -> None:
    data = {"stream_id": "garage", "cause": "killed", "summary": "killed by SIGKILL", "log_tail": ["x"]}
    stream = apply_event(state(), {"type": "stream_exit", "data": {**data, "stats": STOPPED_STATS}}).streams[
        "garage"
    ]
    assert stream["last_exit"] == {"cause": "killed", "summary": "killed by SIGKILL"}
    assert stream["state"] == "disabled"


def test_events_of_unknown_streams_change_nothing_but_the_last_event() -> None:
    before = state()
    after = apply_event(before, {"type": "stream_state", "data": {"stream_id": "porch", "state": "running"}})
    assert after.streams == before.streams
    assert after.last_events["stream_state"]["data"]["stream_id"] == "porch"


def test_under_voltage_and_throttle_events() -> None:
    after = apply_event(
        state(), {"type": "under_voltage", "timestamp": 7.0, "data": {"active": True, "episodes": 3}}
    )
    assert after.telemetry["power"] == {
        "under_voltage_episodes": 3,
        "under_voltage_now": True,
        "last_under_voltage_start": 7.0,
    }
    after = apply_event(
        after, {"type": "throttle_changed", "data": {"raw": 5, "flags": {"under_voltage": True}}}
    )
    assert after.telemetry["throttle"] == {"under_voltage": True, "raw": 5}
    # A malformed event is remembered, and changes nothing else.
    again = apply_event(after, {"type": "throttle_changed", "data": "?"})
    assert again.telemetry == after.telemetry


def test_stored_stream_takes_the_configuration_only() -> None:
    stored = {"enabled": False, "config": {"id": "garage", "enabled": False}, "state": "running", "fps": 1.0}
    stream = apply_stored_stream(state(), "garage", stored).streams["garage"]
    assert stream["enabled"] is False
    assert stream["config"] == {"id": "garage", "enabled": False}
    assert stream["fps"] == 15.0  # the answer's numbers may be older than the events pushed since
    before = state()
    assert apply_stored_stream(before, "porch", stored) == before


def test_a_pushed_controls_document_replaces_the_streams_controls() -> None:
    """``stream_controls`` carries the whole document: it replaces what HA held for that stream only; a
    document for a stream HA does not know is left to the next full read."""
    rotation = {"id": "rotation", "kind": "select", "value": None}
    before = apply_stream_controls(state(), "garage", {"stream_id": "garage", "controls": [rotation]})
    assert before.controls == {"garage": {"rotation": rotation}}
    confirmed = {**rotation, "value": "180"}
    event = {
        "type": "stream_controls",
        "data": {"stream_id": "garage", "controls": {"stream_id": "garage", "controls": [confirmed]}},
    }
    after = apply_event(before, event)
    assert after.controls == {"garage": {"rotation": confirmed}}
    assert before.controls["garage"]["rotation"]["value"] is None  # never mutated
    unknown = {"type": "stream_controls", "data": {"stream_id": "porch", "controls": {"controls": []}}}
    assert apply_event(after, unknown).controls == after.controls


def test_motion_and_sound_events_set_what_the_stream_notices() -> None:
    before = state(
        garage=garage(motion={"active": False, "score": 0.1, "started_at": None, "ended_at": None})
    )
    motion = {"stream_id": "garage", "state": "start", "score": 12.0, "started_at": 5.0, "ended_at": None}
    after = apply_event(before, {"type": "motion", "timestamp": 5.0, "data": motion})
    assert after.streams["garage"]["motion"] == {
        "active": True,
        "score": 12.0,
        "started_at": 5.0,
        "ended_at": None,
    }
    sound = {"stream_id": "garage", "state": "end", "level_dbfs": -50.0, "started_at": 1.0, "ended_at": 4.0}
    after = apply_event(after, {"type": "sound", "timestamp": 4.0, "data": sound})
    assert after.streams["garage"]["sound"] == {
        "active": False,
        "level_dbfs": -50.0,
        "started_at": 1.0,
        "ended_at": 4.0,
    }
    # Another stream's, or an unknown one's, changes nothing here.
    assert (
        apply_event(before, {"type": "motion", "data": {**motion, "stream_id": "porch"}}).streams
        == before.streams
    )


def test_a_sample_without_the_motion_keeps_it() -> None:
    """The agent reports a stream's motion in its status only: a pushed sample's stats do not erase it; a
    sample that carries it (and the sound level, a stats field) replaces it."""
    motion = {"active": True, "score": 9.0, "started_at": 3.0, "ended_at": None}
    before = state(garage=garage(motion=motion, sound_level_dbfs=-30.0))
    after = apply_telemetry(before, {"streams": {"garage": RUNNING_STATS}})
    assert after.streams["garage"]["motion"] == motion
    assert after.streams["garage"]["sound_level_dbfs"] is None  # not in the sample: not measured
    after = apply_telemetry(before, {"streams": {"garage": {**RUNNING_STATS, "motion": None}}})
    assert after.streams["garage"]["motion"] is None
