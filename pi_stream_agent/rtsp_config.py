"""The agent config's ``rtsp:`` section: where publishers push and where Home Assistant reads, with the
credentials for each. No message ever shows a user name, a password or a URL that holds one."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import voluptuous as vol

from pi_stream_agent.streams.model import RtspSettings
from pi_stream_agent.yamlfile import name_unknown_keys

RTSP_KEYS = (
    "publish_url",
    "read_url",
    "publish_transport",
    "read_transport",
    "publish_username",
    "publish_password",
    "read_username",
    "read_password",
)


def _rtsp_url(value: Any) -> str | None:
    if value is None:
        return None
    # Never echo a value that may hold credentials (rtsp://user:password@host): say what it was instead.
    shown = repr(value) if isinstance(value, str) and "@" not in value else "(value not shown)"
    if not isinstance(value, str):
        raise vol.Invalid(f"expected an rtsp:// URL such as rtsp://127.0.0.1:8554, got {value!r}")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise vol.Invalid(f"is not a valid URL (check the host and port), got {shown}") from None
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
        raise vol.Invalid(f"expected an rtsp:// URL with a host, such as rtsp://127.0.0.1:8554, got {shown}")
    if parts.username is not None or parts.password is not None:
        raise vol.Invalid(
            "must not contain a user name or password: put them in the *_username and *_password keys"
        )
    if parts.query or parts.fragment or any(ch.isspace() for ch in value):
        raise vol.Invalid(f"must be a base URL without spaces, ?query or #fragment, got {shown}")
    if port == 0:
        raise vol.Invalid(f"port must be between 1 and 65535, got {shown}")
    return value.rstrip("/")


def _transport(value: Any) -> str:
    if value in ("tcp", "udp"):
        return str(value)
    raise vol.Invalid(f"expected tcp or udp, got {value!r}")


def _credential(value: Any) -> str | None:
    # The value is a secret (or close to one): never part of a message.
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise vol.Invalid("expected non-empty text without control characters (value not shown)")
    return value


_FIELDS = vol.Schema(
    {
        vol.Optional("publish_url", default="rtsp://127.0.0.1:8554"): _rtsp_url,
        vol.Optional("read_url", default=None): _rtsp_url,
        vol.Optional("publish_transport", default="tcp"): _transport,
        vol.Optional("read_transport", default="tcp"): _transport,
        vol.Optional("publish_username", default=None): _credential,
        vol.Optional("publish_password", default=None): _credential,
        vol.Optional("read_username", default=None): _credential,
        vol.Optional("read_password", default=None): _credential,
    }
)


def rtsp_settings(data: Any) -> RtspSettings:
    """The ``rtsp:`` section → RtspSettings (``None`` or ``{}`` = defaults: MediaMTX on this Pi).

    A voluptuous validator for the config schema: raises ``vol.Invalid`` / ``vol.MultipleInvalid`` whose
    paths lead to the key at fault, so the config's one error conversion reports every problem (a user name
    without its password included) the same way."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise vol.Invalid(f"expected a mapping of keys such as publish_url:, got {type(data).__name__}")
    try:
        checked = _FIELDS(data)
    except vol.MultipleInvalid as exc:
        raise name_unknown_keys(exc, RTSP_KEYS, "rtsp") from None
    errors: list[vol.Invalid] = []
    for role in ("publish", "read"):
        user, password = checked[f"{role}_username"], checked[f"{role}_password"]
        if (user is None) != (password is None):
            missing = f"{role}_password" if password is None else f"{role}_username"
            given = f"{role}_username" if user is not None else f"{role}_password"
            errors.append(vol.Invalid(f"required when {given} is set", path=[missing]))
    if errors:
        raise vol.MultipleInvalid(errors)
    return RtspSettings(**checked)  # the schema's keys are the dataclass's fields
