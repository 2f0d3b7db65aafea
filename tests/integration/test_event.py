"""Stream event entities against the real agent: a killed publisher fires ``failed`` with the cause and
log lines, then ``recovered`` once the agent has it running again; the logbook reads both in words."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.const import EVENT_STATE_CHANGED, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.pi_stream.event import EVENT_STREAM
from custom_components.pi_stream.logbook import describe_stream_event
from tests.integration.stable_agent import (
    StableAgentProcess,
    publisher_pids,
    run_agent,
    wait_for,
    wait_for_pids_changed,
)

GARAGE = "event.garage_stream_events"
FRONT_DOOR = "event.front_door_stream_events"


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


@pytest.fixture(autouse=True)
def only_events() -> Iterator[None]:
    with patch("custom_components.pi_stream.PLATFORMS", [Platform.EVENT]):
        yield


@pytest.fixture
def fired(hass: HomeAssistant) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every event the stream event entities fire: (entity id, state attributes)."""
    events: list[tuple[str, dict[str, Any]]] = []

    @callback
    def record(event: Event[Any]) -> None:
        new = event.data["new_state"]
        if (
            event.data["entity_id"] in (GARAGE, FRONT_DOOR)
            and new is not None
            and new.attributes.get("event_type")
        ):
            old = event.data["old_state"]
            if old is None or old.state != new.state:  # the state is the time it fired
                events.append((new.entity_id, dict(new.attributes)))

    unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    yield events
    unsubscribe()


@pytest.fixture
def logbook_events(hass: HomeAssistant) -> Iterator[list[Event[Any]]]:
    """Every :data:`EVENT_STREAM` put on the bus for the logbook."""
    events: list[Event[Any]] = []
    unsubscribe = hass.bus.async_listen(EVENT_STREAM, events.append)
    yield events
    unsubscribe()


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "init_integration")
async def test_event_entities(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_killed_publisher_fires_failed_then_recovered(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    fired: list[tuple[str, dict[str, Any]]],
    logbook_events: list[Event[Any]],
) -> None:
    restarts_before = (await hass.async_add_executor_job(agent.request, "GET", "/streams/garage"))[
        "restart_count"
    ]
    before = await hass.async_add_executor_job(publisher_pids, agent)
    os.kill(next(iter(before["garage"].values())), signal.SIGKILL)

    # On a loaded machine a publisher may also fail by itself meanwhile (the other stream's, or the garage's
    # again while it comes back): the garage's first event is the kill, and a recovery follows.
    def garage() -> list[dict[str, Any]]:
        return [attrs for entity_id, attrs in fired if entity_id == GARAGE]

    await wait_for(
        hass, lambda: any(a["event_type"] == "recovered" for a in garage()), "failed, then recovered"
    )
    events = garage()
    failed = events[0]
    assert failed["event_type"] == "failed"
    recovered_at = next(i for i, attrs in enumerate(events) if attrs["event_type"] == "recovered")
    assert all(attrs["event_type"] == "failed" for attrs in events[:recovered_at])
    recovered = events[recovered_at]
    assert failed["cause"] == "killed"
    assert failed["signal"] == "SIGKILL"
    assert failed["exit_code"] is None
    assert failed["process"] == "ffmpeg"
    assert "SIGKILL" in failed["summary"]
    assert isinstance(failed["log_tail"], list)
    assert failed["log_tail"]
    assert len(failed["log_tail"]) <= 10
    assert "cma_free_bytes" in failed

    assert recovered["cause"] == events[recovered_at - 1]["cause"]  # the last failure before it ran
    assert recovered["failures"] == recovered_at
    assert recovered["restart_count"] > restarts_before
    assert recovered["downtime_s"] > 0

    # The cause in the agent's words, for templates and the logbook.
    vocabulary = await hass.async_add_executor_job(agent.request, "GET", "/vocabulary")
    killed = next(word["name"] for word in vocabulary["exit_causes"] if word["id"] == "killed")
    assert failed["cause_name"] == killed
    # The logbook shows an event entity's state change only as "detected an event": each failure and
    # recovery is also on the bus, described by the logbook platform in words.
    lines = [
        describe_stream_event(dict(event.data))
        for event in logbook_events
        if event.data["entity_id"] == GARAGE
    ]
    assert lines[0] == {
        "name": "Garage",
        "message": f"failed: {killed}. {failed['summary']}",
        "entity_id": GARAGE,
    }
    assert lines[recovered_at]["name"] == "Garage"
    assert lines[recovered_at]["message"].startswith("recovered after ")
    assert len(lines) == len(events)


@pytest.mark.usefixtures("init_integration")
async def test_requested_stop_and_restart_are_not_failures(
    hass: HomeAssistant, agent: StableAgentProcess, fired: list[tuple[str, dict[str, Any]]]
) -> None:
    before = await hass.async_add_executor_job(publisher_pids, agent)
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/restart")
    await hass.async_add_executor_job(wait_for_pids_changed, agent, before, {"garage"})
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/stop")
    coordinator = hass.config_entries.async_entries("pi_stream")[0].runtime_data
    await wait_for(hass, lambda: coordinator.data.streams["garage"]["state"] == "stopped", "the stop")
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/start")
    await hass.async_add_executor_job(agent.wait_streams_running)
    await wait_for(hass, lambda: coordinator.data.streams["garage"]["state"] == "running", "the start")
    # Requests fire nothing. A loaded test machine may see publishers fail by themselves meanwhile; those
    # are real failures, each from the agent's stream_exit (with its summary), never a requested stop.
    assert all(
        attrs["cause"] not in (None, "stopped") and attrs["summary"]
        for entity_id, attrs in fired
        if attrs["event_type"] == "failed"
    )


async def test_listener_removed_on_unload(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    coordinator = init_integration.runtime_data
    assert len(coordinator._event_listeners) >= 2  # one per stream event entity
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert coordinator._event_listeners == []


def test_logbook_lines_read_as_sentences() -> None:
    failed = {
        "entity_id": GARAGE,
        "stream": "Garage",
        "event_type": "failed",
        "cause": "device_busy",
        "cause_name": "Camera busy",
        "summary": "another program holds /dev/video0",
    }
    assert describe_stream_event(failed) == {
        "name": "Garage",
        "message": "failed: Camera busy. another program holds /dev/video0",
        "entity_id": GARAGE,
    }
    recovered = {"stream": "Garage", "event_type": "recovered", "cause_name": "Camera busy"}
    assert describe_stream_event(recovered | {"downtime_s": 12.4, "failures": 1})["message"] == (
        "recovered after 12 s (it failed: Camera busy)"
    )
    assert describe_stream_event(recovered | {"downtime_s": 75, "failures": 3})["message"] == (
        "recovered after 1 min 15 s (3 failures, the last: Camera busy)"
    )
    assert describe_stream_event({"event_type": "recovered", "stream_id": "garage"}) == {
        "name": "garage",
        "message": "recovered",
    }
