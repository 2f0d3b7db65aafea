"""What a stream notices — motion, its sound — read from the agent's state: which streams get the motion
and sound entities, and what those show. Pure: no I/O, no Home Assistant.

The agent's words (docs/api.md, "Streams"): a stream's status carries ``motion`` (``{"active", "score",
"started_at", "ended_at"}``, null while motion detection is off), ``audio`` (``{"state": "on" | "off" |
"unavailable", "device", "codec", "reason"}``) and, in its stats, ``sound_level_dbfs``; ``motion`` and
``sound`` events say when a motion or a sound starts and ends (agent_state.py folds them into the status,
as ``motion`` and ``sound``). Whether a stream *can* detect is its controls document's word: the agent
lists ``motion_detection`` / ``sound_detection`` for the streams that can (sound only where there is
audio), and their values say whether it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .agent_state import AgentState
from .vocabulary import AUDIO_OFF, AUDIO_ON, SETTING_MOTION_DETECTION, SETTING_SOUND_DETECTION


def _status(state: AgentState, stream_id: str) -> Mapping[str, Any]:
    return state.streams.get(stream_id) or {}


def _object(state: AgentState, stream_id: str, key: str) -> Mapping[str, Any] | None:
    value = _status(state, stream_id).get(key)
    return value if isinstance(value, Mapping) else None


def _setting(state: AgentState, stream_id: str, setting_id: str) -> Mapping[str, Any] | None:
    """The detection setting as the stream's controls document lists it (None: the stream cannot)."""
    control = state.controls.get(stream_id, {}).get(setting_id)
    return control if isinstance(control, Mapping) else None


def _setting_on(control: Mapping[str, Any]) -> bool:
    value = control.get("value")
    return bool(control.get("default") if value is None else value)


# -- motion --------------------------------------------------------------------------------------------------


def motion(state: AgentState, stream_id: str) -> Mapping[str, Any] | None:
    """The stream's motion now; None while motion detection is off."""
    return _object(state, stream_id, "motion")


def can_detect_motion(state: AgentState, stream_id: str) -> bool:
    """The stream's camera can detect motion (its controls list the switch), or it does already."""
    return (
        _setting(state, stream_id, SETTING_MOTION_DETECTION) is not None
        or motion(state, stream_id) is not None
    )


def motion_active(state: AgentState, stream_id: str) -> bool | None:
    found = motion(state, stream_id)
    return None if found is None else bool(found.get("active"))


def motion_started_at(state: AgentState, stream_id: str) -> float | None:
    """When the latest motion started (Unix seconds): the time of the agent's motion snapshot."""
    found = motion(state, stream_id)
    started = found.get("started_at") if found is not None else None
    return float(started) if isinstance(started, int | float) and not isinstance(started, bool) else None


# -- audio and sound -----------------------------------------------------------------------------------------


def audio(state: AgentState, stream_id: str) -> Mapping[str, Any] | None:
    """The stream's audio (``state``, ``device``, ``codec``, ``reason``); None from an agent without audio."""
    return _object(state, stream_id, "audio")


def audio_on(state: AgentState, stream_id: str) -> bool:
    """The stream publishes sound now."""
    found = audio(state, stream_id)
    return found is not None and found.get("state") == AUDIO_ON


def has_audio(state: AgentState, stream_id: str) -> bool:
    """The stream is configured with audio (on, or asked for but missing now), or can detect sound."""
    found = audio(state, stream_id)
    configured = found is not None and found.get("state") not in (None, AUDIO_OFF)
    return configured or _setting(state, stream_id, SETTING_SOUND_DETECTION) is not None


def sound_detection_on(state: AgentState, stream_id: str) -> bool:
    """Sound detection runs: the stream has sound and its detection switch is on."""
    control = _setting(state, stream_id, SETTING_SOUND_DETECTION)
    return audio_on(state, stream_id) and control is not None and _setting_on(control)


def sound_active(state: AgentState, stream_id: str) -> bool | None:
    """Whether a sound is going on; None while sound detection does not run. Until the agent reports a
    sound (a ``sound`` event, or a ``sound`` object in the status) there is none: the agent announces each
    one as it starts."""
    if not sound_detection_on(state, stream_id):
        return None
    found = _object(state, stream_id, "sound")
    return bool(found.get("active")) if found is not None else False


def sound_level_dbfs(state: AgentState, stream_id: str) -> float | None:
    level = _status(state, stream_id).get("sound_level_dbfs")
    return float(level) if isinstance(level, int | float) and not isinstance(level, bool) else None
