"""Diagnostics: everything needed to understand a Pi's trouble from a bug report, without its secrets.

The entry, the agent's identity, its latest telemetry, every stream with the last lines its publishers
logged, the capture devices, and the open repair issues. The token and the RTSP credentials are redacted
by key, and every ``scheme://user:password@`` inside a string (stream URLs, log lines, causes) is scrubbed,
as is any literal occurrence of the token or of a credential.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant

from .api import PiStreamError
from .const import CONF_TOKEN
from .coordinator import PiStreamConfigEntry
from .repairs import entry_issue_ids

LOG_TAIL_LINES = 50

TO_REDACT = {CONF_TOKEN, "password", "username", "read_credentials", "publish_credentials"}

# scheme://user:password@host or scheme://user@host → scheme://**REDACTED**@host
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s\"']+@")


def scrub(value: Any, secrets: frozenset[str]) -> Any:
    """``value`` with credentials inside URLs and every literal secret replaced, at any depth."""
    if isinstance(value, str):
        value = _URL_USERINFO.sub(rf"\g<scheme>{REDACTED}@", value)
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item, secrets) for item in value]
    return value


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
    state = coordinator.data
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
        "agent": {key: value for key, value in asdict(state.info).items() if key != "raw"}
        | {"info": state.info.raw},
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
