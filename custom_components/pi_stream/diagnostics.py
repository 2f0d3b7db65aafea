"""Diagnostics: everything needed to understand a Pi's trouble from a bug report, without its secrets.

The entry, the agent's identity and its version against the one this integration release expects, its
telemetry (with the Pi's health: storage, out-of-memory kills, supply, fan, boot) and every stream (each
exit with the Pi's condition at that moment) as the agent reports them *now* (read afresh when the
diagnostics are downloaded; when the agent cannot be reached, the last state Home Assistant holds, marked
as such with the reason), each stream with the last lines its publishers logged, the capture
devices, and the open repair issues.

Secrets: the token and the RTSP credentials are redacted by key; every value that is a URL loses its login
(urls.py, the integration's one URL helper); and any literal occurrence of the token or of the read
password is replaced. Log lines and exit evidence arrive from the agent with credentials already removed.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant

from .agent_version import is_outdated
from .api import PiStreamError
from .const import CONF_TOKEN
from .coordinator import AgentState, PiStreamConfigEntry
from .repairs import entry_issue_ids
from .urls import without_credentials

LOG_TAIL_LINES = 50

TO_REDACT = {CONF_TOKEN, "password", "username", "read_credentials", "publish_credentials"}


def scrub(value: Any, secrets: frozenset[str]) -> Any:
    """``value`` with the login of every URL and every literal secret replaced, at any depth."""
    if isinstance(value, str):
        value = without_credentials(value, REDACTED)
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item, secrets) for item in value]
    return value


async def _current_state(entry: PiStreamConfigEntry) -> tuple[AgentState, dict[str, Any]]:
    """The agent's state read now, or the last one held when the agent cannot be reached (and why)."""
    coordinator = entry.runtime_data
    try:
        return await coordinator.async_fetch_state(), {"fresh": True}
    except PiStreamError as err:
        return coordinator.data, {"fresh": False, "reason": f"the agent could not be reached: {err}"}


async def _log_tail(entry: PiStreamConfigEntry, stream_id: str) -> list[dict[str, Any]] | str:
    try:
        return await entry.runtime_data.client.logs(stream_id, LOG_TAIL_LINES)
    except PiStreamError as err:
        return f"unavailable: {err}"


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PiStreamConfigEntry
) -> dict[str, Any]:
    """Diagnostics for one Pi."""
    coordinator = entry.runtime_data
    state, state_source = await _current_state(entry)
    stream_ids = list(state.streams)
    tails = await asyncio.gather(*(_log_tail(entry, stream_id) for stream_id in stream_ids))
    streams = {
        stream_id: {**state.streams[stream_id], "log_tail": tail}
        for stream_id, tail in zip(stream_ids, tails, strict=True)
    }
    secrets = {str(entry.data.get(CONF_TOKEN) or "")}
    if (password := (state.read_credentials or {}).get("password")) is not None:
        secrets.add(str(password))
    data = {
        "entry": {
            "title": entry.title,
            "unique_id": entry.unique_id,
            "version": entry.version,
            "data": dict(entry.data),
            "options": dict(entry.options),
        },
        "coordinator": {
            "last_update_success": coordinator.last_update_success,
            "pushed": state.pushed,
            "websocket_connected": coordinator.client.connected,
            "update_interval_s": (
                coordinator.update_interval.total_seconds() if coordinator.update_interval else None
            ),
        },
        "state_source": state_source,
        "agent": {key: value for key, value in asdict(state.info).items() if key != "raw"}
        | {"info": state.info.raw},
        "versions": {
            "agent": state.info.version,
            "expected_agent": coordinator.integration_version,
            "agent_outdated": is_outdated(state.info.version, coordinator.integration_version),
        },
        "telemetry": state.telemetry,
        "streams": streams,
        "read_credentials": state.read_credentials,
        "devices": state.devices,
        "last_events": state.last_events,
        "repair_issues": list(entry_issue_ids(hass, entry.entry_id)),
    }
    redacted: dict[str, Any] = scrub(
        async_redact_data(data, TO_REDACT), frozenset(secret for secret in secrets if len(secret) >= 4)
    )
    return redacted
