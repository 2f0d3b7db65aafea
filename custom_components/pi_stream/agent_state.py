"""What Home Assistant knows about one Pi (:class:`AgentState`), and the pure functions that fold what
the agent pushes into it.

Every function here takes a state and a message from the agent and returns a new state; none of them does
I/O, schedules work or touches Home Assistant (the coordinator does that with what they return). The agent
sends whole fragments — a telemetry sample with every stream's numbers (``streams``), and each stream event
with that stream's numbers at that moment (``stats``) — so a fragment replaces what it covers instead of
being re-derived here; so does a stream's controls document (``stream_controls``: its picture settings and
camera controls with their confirmed values). What a stream notices (issue 11) is folded into its status the
same way: a ``motion`` or ``sound`` event sets the stream's ``motion``/``sound`` object (``active``, when it
started and ended), so the entities read one place whether the news came by event or by REST. See
docs/api.md ("WebSocket", "Stream stats").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .api import AgentInfo
from .vocabulary import AgentVocabulary

# The fields of a stream's status that the agent reports as its "stats" (GET /streams, telemetry
# ``streams``, event ``stats``). A stats fragment replaces all of them: a field it leaves out is not known.
STREAM_STATS_FIELDS = (
    "state",
    "fps",
    "bitrate_bps",
    "frames",
    "uptime_s",
    "restart_count",
    "requested_restart_count",
    "restarts_by_cause",
    "publishers",
    "sound_level_dbfs",  # null unless the stream runs with audio (and from agents without audio)
)
# What a stream notices (motion, its audio, sound), in its status. A stats fragment replaces each of these
# only when it carries it: an agent that reports them in GET /streams only must not lose them to every
# pushed sample.
STREAM_DETECTION_FIELDS = ("motion", "audio", "sound")

STREAM_EVENTS = frozenset({"stream_state", "stream_exit"})
# Pushed after every change of a stream's picture settings or camera controls, with the whole document.
STREAM_CONTROLS_EVENT = "stream_controls"
# A stream noticed motion or sound (``state`` "start"), or it ended ("end"): docs/api.md, "WebSocket".
MOTION_EVENT = "motion"
SOUND_EVENT = "sound"
DETECTION_EVENTS = frozenset({MOTION_EVENT, SOUND_EVENT})
DETECTION_START = "start"
# The event's field with its measure: the motion's score, the sound's level.
DETECTION_MEASURES = {MOTION_EVENT: "score", SOUND_EVENT: "level_dbfs"}


@dataclass(frozen=True)
class AgentState:
    """Everything known about one Pi. Replaced (never mutated) on every update, so entities compare safely."""

    info: AgentInfo
    telemetry: dict[str, Any]
    streams: dict[str, dict[str, Any]]  # stream id → status (GET /streams/{id})
    devices: dict[str, Any]
    vocabulary: AgentVocabulary  # the agent's words (states, causes, sources…), read once at setup
    read_credentials: dict[str, str] | None = None
    pushed: bool = False  # the WebSocket is up: values arrive as they change
    last_events: dict[str, dict[str, Any]] = field(default_factory=dict)  # event type → latest event
    # stream id → control id → control (GET /streams/{id}/controls, in the agent's order): what the
    # stream's camera can be set to, and the values the agent confirmed.
    controls: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


def with_stream_stats(status: Mapping[str, Any], stats: Mapping[str, Any]) -> dict[str, Any]:
    """``status`` with its stats fields replaced by ``stats`` (the agent's own fragment, whole), and the
    detection fields the fragment carries."""
    return {
        **status,
        **{key: stats.get(key) for key in STREAM_STATS_FIELDS},
        **{key: stats[key] for key in STREAM_DETECTION_FIELDS if key in stats},
    }


def apply_telemetry(state: AgentState, sample: Mapping[str, Any]) -> AgentState:
    """A pushed telemetry sample: the Pi's numbers, and each known stream's stats (``sample["streams"]``).

    Streams the sample names but HA does not know yet (added on the Pi) are left to a full read; see
    :func:`streams_out_of_step`.
    """
    streams = state.streams
    pushed_stats = sample.get("streams")
    if isinstance(pushed_stats, Mapping):
        streams = {
            stream_id: (
                with_stream_stats(status, stats)
                if isinstance(stats := pushed_stats.get(stream_id), Mapping)
                else status
            )
            for stream_id, status in streams.items()
        }
    return replace(state, telemetry=dict(sample), streams=streams, pushed=True)


def streams_out_of_step(state: AgentState, sample: Mapping[str, Any]) -> bool:
    """Whether a telemetry sample names another set of streams than HA holds (one was added or removed on
    the Pi): then only a full read (GET /streams) brings the missing configuration and addresses."""
    pushed_stats = sample.get("streams")
    return isinstance(pushed_stats, Mapping) and set(pushed_stats) != set(state.streams)


def apply_event(state: AgentState, event: Mapping[str, Any]) -> AgentState:
    """One pushed event (``{"type", "timestamp", "data"}``), remembered as the latest of its type."""
    kind = str(event.get("type"))
    raw_data = event.get("data")
    data: Mapping[str, Any] = raw_data if isinstance(raw_data, Mapping) else {}
    state = replace(state, last_events={**state.last_events, kind: dict(event)}, pushed=True)
    if kind == "throttle_changed":
        return _apply_throttle(state, data)
    if kind == "under_voltage":
        return _apply_under_voltage(state, data, event.get("timestamp"))
    if kind in STREAM_EVENTS:
        return _apply_stream_event(state, kind, data)
    if kind in DETECTION_EVENTS:
        return _apply_detection_event(state, kind, data)
    if kind == "oom_kill":
        return _apply_oom_kill(state, data)
    if kind == "storage_error":
        return _apply_storage_error(state, data)
    if kind == "unexpected_reboot":
        return _apply_unexpected_reboot(state, data)
    if (
        kind == STREAM_CONTROLS_EVENT
        and isinstance(document := data.get("controls"), Mapping)
        and (stream_id := str(data.get("stream_id"))) in state.streams
    ):
        return apply_stream_controls(state, stream_id, document)
    return state


def controls_by_id(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A controls document (``{"stream_id", "controls": [...]}``) as control id → control."""
    listed = document.get("controls")
    if not isinstance(listed, list):
        return {}
    return {
        str(control["id"]): dict(control)
        for control in listed
        if isinstance(control, Mapping) and isinstance(control.get("id"), str)
    }


def apply_stream_controls(state: AgentState, stream_id: str, document: Mapping[str, Any]) -> AgentState:
    """A stream's controls document, whole (a GET, the answer to a PUT, or a ``stream_controls`` event):
    it replaces what HA held for that stream."""
    return replace(state, controls={**state.controls, stream_id: controls_by_id(document)})


def apply_stored_stream(state: AgentState, stream_id: str, stored: Mapping[str, Any]) -> AgentState:
    """The agent's answer to a stored configuration (PUT /streams/{id}): its configuration and ``enabled``.

    Only those, and what the stream notices (``motion``, ``audio``: turning detection on or off changes
    them, and the agent reports them in the stream's status only): the state and numbers in the same answer
    may already be older than the events pushed since (the restart the change caused), and those events
    carry their own.
    """
    if stream_id not in state.streams:
        return state
    status = dict(state.streams[stream_id])
    for key in ("enabled", "config", *STREAM_DETECTION_FIELDS):
        if key in stored:
            status[key] = stored[key]
    return replace(state, streams={**state.streams, stream_id: status})


def _apply_throttle(state: AgentState, data: Mapping[str, Any]) -> AgentState:
    flags = data.get("flags")
    if not isinstance(flags, Mapping):
        return state
    throttle = {**(state.telemetry.get("throttle") or {}), **flags, "raw": data.get("raw")}
    return replace(state, telemetry={**state.telemetry, "throttle": throttle})


def _apply_under_voltage(state: AgentState, data: Mapping[str, Any], timestamp: Any) -> AgentState:
    power = dict(state.telemetry.get("power") or {})
    power["under_voltage_now"] = bool(data.get("active"))
    if data.get("episodes") is not None:
        power["under_voltage_episodes"] = data["episodes"]
    if data.get("active"):
        power["last_under_voltage_start"] = timestamp
    return replace(state, telemetry={**state.telemetry, "power": power})


def _apply_oom_kill(state: AgentState, data: Mapping[str, Any]) -> AgentState:
    """The newest kill, shown at once. The count is left to the next sample: whether that sample counts
    this kill already is not known here, and a counter must never step back (statistics read that as a
    reset)."""
    oom_kills = dict(state.telemetry.get("oom_kills") or {})
    oom_kills["last"] = {key: data.get(key) for key in ("timestamp", "pid", "process", "stream_id")}
    return replace(state, telemetry={**state.telemetry, "oom_kills": oom_kills})


def _apply_storage_error(state: AgentState, data: Mapping[str, Any]) -> AgentState:
    """The event carries the agent's own count (``errors_total``): it replaces HA's."""
    storage = dict(state.telemetry.get("storage") or {})
    if isinstance(data.get("errors_total"), int):
        storage["errors_total"] = data["errors_total"]
    storage["last_error"] = {"timestamp": data.get("timestamp"), "message": data.get("message")}
    return replace(state, telemetry={**state.telemetry, "storage": storage})


def _apply_unexpected_reboot(state: AgentState, data: Mapping[str, Any]) -> AgentState:
    boot = {**(state.telemetry.get("boot") or {}), "unexpected_reboot": True}
    if data.get("last_boot") is not None:
        boot["last_boot"] = data["last_boot"]
    return replace(state, telemetry={**state.telemetry, "boot": boot})


# What a stream_state event says beyond its stats; a stream_exit event's data (less these) is the last exit.
_STATE_EVENT_FIELDS = ("state", "cause", "message", "next_retry_at")
_NOT_PART_OF_EXIT = frozenset({"stream_id", "log_tail", "stats"})


def _apply_stream_event(state: AgentState, kind: str, data: Mapping[str, Any]) -> AgentState:
    stream_id = str(data.get("stream_id"))
    if stream_id not in state.streams:
        return state
    status = dict(state.streams[stream_id])
    if kind == "stream_state":
        status.update({key: data.get(key) for key in _STATE_EVENT_FIELDS})
        if "restart_count" in data:
            status["restart_count"] = data["restart_count"]
    else:
        status["last_exit"] = {key: value for key, value in data.items() if key not in _NOT_PART_OF_EXIT}
    if isinstance(stats := data.get("stats"), Mapping):
        status = with_stream_stats(status, stats)
    elif kind == "stream_state" and data.get("state") != "running":
        # An agent without pushed stats: what was measured belonged to the run that just ended.
        status.update(dict.fromkeys(("fps", "bitrate_bps", "frames", "uptime_s", "publishers")))
    return replace(state, streams={**state.streams, stream_id: status})


def _apply_detection_event(state: AgentState, kind: str, data: Mapping[str, Any]) -> AgentState:
    """A ``motion`` or ``sound`` event: the stream's ``motion``/``sound`` object as the event says it is
    now (``active`` from start to end; the measure and times of this motion or sound)."""
    stream_id = str(data.get("stream_id"))
    if stream_id not in state.streams:
        return state
    status = dict(state.streams[stream_id])
    held = status.get(kind)
    measure = DETECTION_MEASURES[kind]
    status[kind] = {
        **(held if isinstance(held, Mapping) else {}),
        "active": data.get("state") == DETECTION_START,
        measure: data.get(measure),
        "started_at": data.get("started_at"),
        "ended_at": data.get("ended_at"),
    }
    return replace(state, streams={**state.streams, stream_id: status})
