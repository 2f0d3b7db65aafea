"""Logbook lines for the streams' failures and recoveries, and for the motion and sound they notice.

The logbook shows an event entity's state change only as "detected an event" (its event type is not part of
the recorded row). event.py therefore also fires :data:`~.event.EVENT_STREAM` on the bus; this platform
describes it: "Garage failed: Camera busy. …", "Garage failed: Killed by a signal (contributing condition:
Memory pressure). …", "Garage recovered after 12 s (2 failures, the last: Camera
busy)". The cause's name is the agent's, put into the event when it
fired, so old lines read the same after the Pi is gone. Motion and sound read "Garage noticed motion
(score 12.5)", "Garage: motion ended after 8 s", "Garage heard a sound (-21 dBFS)".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback

from .agent_state import DETECTION_START
from .const import DOMAIN
from .event import EVENT_FAILED, EVENT_MOTION, EVENT_SOUND, EVENT_STREAM


def _seconds(value: Any) -> str | None:
    if not isinstance(value, int | float):
        return None
    value = round(value)
    minutes, seconds = divmod(value, 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _number(value: Any, unit: str = "") -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return f"{value:.3g}{unit}"


def _detection(data: dict[str, Any]) -> str:
    """A motion or a sound: its start with the measure, or its end with how long it lasted."""
    motion = data.get("event_type") == EVENT_MOTION
    if data.get("state") == DETECTION_START:
        if motion:
            score = _number(data.get("score"))
            return f"noticed motion (score {score})" if score else "noticed motion"
        level = _number(data.get("level_dbfs"), " dBFS")
        return f"heard a sound ({level})" if level else "heard a sound"
    duration = _seconds(data.get("duration_s"))
    message = "motion ended" if motion else "sound ended"
    return f"{message} after {duration}" if duration else message


def describe_stream_event(data: dict[str, Any]) -> dict[str, str]:
    """The logbook line of one :data:`EVENT_STREAM` (pure)."""
    cause = data.get("cause_name") or data.get("cause")
    if data.get("event_type") in (EVENT_MOTION, EVENT_SOUND):
        message = _detection(data)
    elif data.get("event_type") == EVENT_FAILED:
        message = f"failed: {cause}" if cause else "failed"
        condition = data.get("contributing_condition_name") or data.get("contributing_condition")
        if condition:
            message = f"{message} (contributing condition: {condition})"
        if summary := data.get("summary"):
            message = f"{message}. {summary}"
    else:
        downtime = _seconds(data.get("downtime_s"))
        message = f"recovered after {downtime}" if downtime else "recovered"
        failures = data.get("failures")
        if isinstance(failures, int) and failures > 1:
            message += f" ({failures} failures, the last: {cause})" if cause else f" ({failures} failures)"
        elif cause:
            message += f" (it failed: {cause})"
    description = {
        LOGBOOK_ENTRY_NAME: str(data.get("stream") or data.get("stream_id") or "Stream"),
        LOGBOOK_ENTRY_MESSAGE: message,
    }
    if entity_id := data.get("entity_id"):
        description[LOGBOOK_ENTRY_ENTITY_ID] = str(entity_id)
    return description


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Called by the logbook integration for every integration with a logbook platform."""

    @callback
    def describe(event: Event) -> dict[str, str]:
        return describe_stream_event(dict(event.data))

    async_describe_event(DOMAIN, EVENT_STREAM, describe)
