"""Recorder load (issue §2 and §7): how many state writes one Pi with two streams costs Home Assistant in
steady state, with the agent pushing telemetry every second (five times the default rate).

Home Assistant's recorder stores every ``state_changed`` event. The target is at most 30 per minute for the
whole integration, while flags still arrive at once: a triggered under-voltage must flip its binary sensor
on and off inside the same minute. This counts writes (a number, not a timing); the counts per entity are
printed (``pytest -s``) so a regression points at its entity.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from homeassistant.const import EVENT_STATE_CHANGED, STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.coordinator import PiStreamCoordinator
from tests.integration.agent_process import AgentProcess
from tests.integration.stable_agent import wait_for

BUDGET_PER_MINUTE = 30
WINDOW_S = 60.0


@pytest.fixture(params=["enabled_by_default", "all_enabled"])
def enabled(request: pytest.FixtureRequest) -> str:
    """Once with the entities a user gets, once with every niche entity enabled as well."""
    if request.param == "all_enabled":
        request.getfixturevalue("entity_registry_enabled_by_default")
    return str(request.param)


async def test_state_writes_per_minute_in_steady_state(
    hass: HomeAssistant,
    agent: AgentProcess,
    enabled: str,
    entity_registry: er.EntityRegistry,
    mock_config_entry: MockConfigEntry,
) -> None:
    await hass.async_add_executor_job(agent.wait_streams_running)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator: PiStreamCoordinator = mock_config_entry.runtime_data
    # The agent has its own random id here (not the fixed one of the snapshot tests: agents sharing an id
    # clean up each other's publishers as leftovers, so parallel test runs would disturb the streams).
    agent_id = mock_config_entry.unique_id
    under_voltage = entity_registry.async_get_entity_id("binary_sensor", DOMAIN, f"{agent_id}_under_voltage")
    push = entity_registry.async_get_entity_id("binary_sensor", DOMAIN, f"{agent_id}_push_connected")
    assert under_voltage is not None
    assert push is not None
    await wait_for(hass, lambda: hass.states.get(push).state == STATE_ON, "telemetry pushed")
    await wait_for(hass, lambda: hass.states.get(under_voltage).state == STATE_OFF, "no sag in progress")
    # Past start-up: one poll for fresh stream numbers (the first read may say 0 fps), a moment to settle.
    await coordinator.async_refresh()
    await asyncio.sleep(3)
    await hass.async_block_till_done()

    ours = {
        entry.entity_id
        for entry in er.async_entries_for_config_entry(entity_registry, mock_config_entry.entry_id)
        if not entry.disabled
    }
    writes: Counter[str] = Counter()
    flips: list[str] = []
    telemetry_samples = 0

    @callback
    def count(event: Event[Any]) -> None:
        entity_id = event.data["entity_id"]
        if entity_id in ours and event.data["old_state"] is not None:
            writes[entity_id] += 1
            if entity_id == under_voltage:
                flips.append(event.data["new_state"].state)

    @callback
    def count_samples() -> None:
        nonlocal telemetry_samples
        telemetry_samples += 1

    stream_events: list[str] = []

    @callback
    def note_stream_event(event: dict[str, Any]) -> None:
        data = event.get("data") or {}
        if str(event.get("type")).startswith("stream"):
            stream_events.append(f"{data.get('stream_id')}: {data.get('state')} {data.get('cause')}")

    unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, count)
    unlisten = coordinator.async_add_listener(count_samples)
    unlisten_events = coordinator.async_add_event_listener(note_stream_event)
    started = time.monotonic()
    try:
        await asyncio.sleep(WINDOW_S / 2)
        # A sag half-way: the flag must still go on and off at once, inside the window.
        await hass.async_add_executor_job(
            agent.request, "POST", "/simulation/under_voltage", {"duration_s": 2}
        )
        await asyncio.sleep(WINDOW_S - (time.monotonic() - started))
        await hass.async_block_till_done()
    finally:
        unsubscribe()
        unlisten()
        unlisten_events()

    total = sum(writes.values())
    print(  # the measurement, for the report (pytest -s)
        f"\n[{enabled}] {len(ours)} entities, {telemetry_samples} coordinator updates, "
        f"{total} state writes in {WINDOW_S:.0f} s: {dict(writes.most_common())}; "
        f"stream events: {stream_events}"
    )
    assert telemetry_samples >= WINDOW_S / 2  # the agent really pushed about every second
    assert flips[:2] == [STATE_ON, STATE_OFF], f"under-voltage flag: {flips}"
    assert total <= BUDGET_PER_MINUTE * WINDOW_S / 60, dict(writes.most_common())
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
