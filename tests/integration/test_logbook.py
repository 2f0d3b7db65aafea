"""Home Assistant's own logbook (with its recorder) finds the logbook platform and shows a stream's failure
in words, where an event entity's state change alone reads "detected an event"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.components.recorder.common import async_wait_recording_done

from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.event import EVENT_STREAM

GARAGE = "event.garage_stream_events"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: Any) -> Iterator[None]:
    """The recorder must be set up before ``hass`` (which custom integrations need)."""
    yield


async def test_the_logbook_describes_stream_events(hass: HomeAssistant, hass_client: Any) -> None:
    # The logbook depends on the frontend, whose package is not installed here: it only registers a panel.
    hass.config.components.add("frontend")
    assert await async_setup_component(hass, "logbook", {})
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    hass.bus.async_fire(
        EVENT_STREAM,
        {
            "entity_id": GARAGE,
            "stream_id": "garage",
            "stream": "Garage",
            "event_type": "failed",
            "cause": "killed",
            "cause_name": "Killed by a signal",
            "summary": "ffmpeg was killed by SIGKILL",
        },
    )
    await async_wait_recording_done(hass)
    client = await hass_client()
    response = await client.get("/api/logbook")
    assert response.status == 200
    entries = [entry for entry in await response.json() if entry.get("domain") == DOMAIN]
    assert entries == [
        {
            "name": "Garage",
            "message": "failed: Killed by a signal. ffmpeg was killed by SIGKILL",
            "entity_id": GARAGE,
            "domain": DOMAIN,
            "when": entries[0]["when"],
        }
    ]
