"""An event entity per stream: fires ``failed`` when its publisher exits (with the cause, the Pi's condition
at that moment and the condition that contributed to the exit where the agent found one, and the last log
lines) and ``recovered`` when frames flow again, so automations can react to both; and ``motion`` and
``sound`` when the stream notices either start (``state`` "start") and end ("end"), with the motion's score
or the sound's level and when it started and ended.

Each one is also fired on Home Assistant's bus as :data:`EVENT_STREAM` with the stream's name and the
agent's human name of the cause, which the logbook platform (logbook.py) turns into a readable line: the
logbook shows an event entity's own state change only as "detected an event".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.components.event import EventEntity
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from .agent_state import DETECTION_EVENTS, DETECTION_MEASURES, MOTION_EVENT, SOUND_EVENT
from .const import DOMAIN
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamStreamEntity, async_add_stream_entities
from .vocabulary import CAUSE_STOPPED, STATE_RUNNING

# Pushed by the coordinator; nothing to poll.
PARALLEL_UPDATES = 0

EVENT_FAILED = "failed"
EVENT_RECOVERED = "recovered"
# A motion or sound started or ended: the event types are the agent's event names.
EVENT_MOTION = MOTION_EVENT
EVENT_SOUND = SOUND_EVENT
# Fired on the bus with every failed/recovered, for the logbook (logbook.py describes it).
EVENT_STREAM = f"{DOMAIN}_stream_event"
LOG_TAIL_LINES = 10
FAILURE_ATTRIBUTES = (
    "cause",
    "summary",
    "evidence",
    "process",
    "exit_code",
    "signal",
    "runtime_s",
    "cma_free_bytes",
    "contributing_condition",  # under_voltage, overheating, memory_pressure… (the agent's vocabulary)
    "context",  # the Pi at the moment of the exit: under-voltage, temperature, memory, Wi-Fi, kernel lines
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    def events(coordinator: PiStreamCoordinator, stream_id: str) -> Iterable[Entity]:
        yield PiStreamStreamEventEntity(coordinator, stream_id)

    async_add_stream_entities(entry, async_add_entities, events)


class PiStreamStreamEventEntity(PiStreamStreamEntity, EventEntity):
    """Failures and recoveries of one stream, from the agent's ``stream_exit`` and ``stream_state``."""

    _attr_translation_key = "stream_events"

    def __init__(self, coordinator: PiStreamCoordinator, stream_id: str) -> None:
        super().__init__(coordinator, stream_id, "events")
        self._attr_event_types = [EVENT_FAILED, EVENT_RECOVERED, EVENT_MOTION, EVENT_SOUND]
        self._failure: dict[str, Any] | None = None  # the failure not yet recovered from

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self.async_on_remove(self.coordinator.async_add_event_listener(self._handle_agent_event))

    @callback
    def _handle_agent_event(self, event: dict[str, Any]) -> None:
        data = event.get("data")
        if not isinstance(data, dict) or data.get("stream_id") != self.stream_id:
            return
        kind = event.get("type")
        # A stop asked for through the API (or a disable) is not a failure.
        if kind == "stream_exit" and data.get("cause") != CAUSE_STOPPED:
            attributes = {key: data.get(key) for key in FAILURE_ATTRIBUTES}
            vocabulary = self.coordinator.data.vocabulary
            attributes["cause_name"] = vocabulary.cause_name(data.get("cause"))
            attributes["contributing_condition_name"] = vocabulary.contributing_condition_name(
                data.get("contributing_condition")
            )
            attributes["log_tail"] = [str(line) for line in (data.get("log_tail") or [])][-LOG_TAIL_LINES:]
            at = data.get("at") if data.get("at") is not None else event.get("timestamp")
            # One outage may take several failures (the retry fails too): it began with the first.
            outage = self._failure or {"since": at, "failures": 0}
            self._failure = {**outage, "cause": data.get("cause"), "failures": outage["failures"] + 1}
            self._fire(
                EVENT_FAILED,
                attributes,
                {
                    "summary": data.get("summary"),
                    "contributing_condition": attributes["contributing_condition"],
                    "contributing_condition_name": attributes["contributing_condition_name"],
                },
            )
        elif kind == "stream_state" and data.get("state") == STATE_RUNNING and self._failure is not None:
            failure, self._failure = self._failure, None
            downtime = None
            if isinstance(failure["since"], int | float) and isinstance(event.get("timestamp"), int | float):
                downtime = round(max(0.0, event["timestamp"] - failure["since"]), 3)
            attributes = {
                "cause": failure["cause"],  # of the last failure before it ran again
                "cause_name": self.coordinator.data.vocabulary.cause_name(failure["cause"]),
                "failures": failure["failures"],
                "downtime_s": downtime,  # since the first failure
                "restart_count": data.get("restart_count"),
            }
            self._fire(EVENT_RECOVERED, attributes, {"failures": failure["failures"], "downtime_s": downtime})
        elif kind in DETECTION_EVENTS:
            self._fire_detection(str(kind), data)

    @callback
    def _fire_detection(self, kind: str, data: dict[str, Any]) -> None:
        """A motion or sound started or ended: its measure (``score`` / ``level_dbfs``), its times as
        dates, and at the end how long it lasted."""
        measure = DETECTION_MEASURES[kind]
        started, ended = data.get("started_at"), data.get("ended_at")
        duration = None
        if isinstance(started, int | float) and isinstance(ended, int | float):
            duration = round(max(0.0, ended - started), 1)
        attributes = {
            "state": data.get("state"),
            measure: data.get(measure),
            "started_at": _iso(started),
            "ended_at": _iso(ended),
            "duration_s": duration,
        }
        self._fire(
            kind, attributes, {"state": data.get("state"), measure: data.get(measure), "duration_s": duration}
        )

    @callback
    def _fire(self, event_type: str, attributes: dict[str, Any], details: dict[str, Any]) -> None:
        """Trigger the entity's event and put its logbook line on the bus, in one context."""
        context = Context()
        self.hass.bus.async_fire(
            EVENT_STREAM,
            {
                "entity_id": self.entity_id,
                "stream_id": self.stream_id,
                "stream": self.stream.get("name") or self.stream_id,
                "event_type": event_type,
                "cause": attributes.get("cause"),
                "cause_name": attributes.get("cause_name"),  # the agent's words: old lines read the same
                **details,
            },
            context=context,
        )
        self._trigger_event(event_type, attributes)
        self.async_set_context(context)
        self.async_write_ha_state()


def _iso(timestamp: Any) -> str | None:
    """A Unix time from the agent as an ISO date (what templates compare with ``now()``)."""
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        return None
    return dt_util.utc_from_timestamp(timestamp).isoformat()
