"""A MediaMTX configuration that matches the agent's ``rtsp:`` settings (``pi-stream-agent mediamtx-config``).

The agent cannot ship MediaMTX, so it says what MediaMTX needs to accept its publishers and serve Home
Assistant: the RTSP port and transports of ``rtsp.publish_url`` / ``*_transport``, one user per role
(``publish_username``/``read_username``, or anonymous ones: anonymous publishing only from this Pi), any
path (streams are added from Home Assistant at any time), and the other servers off (they cost memory on a
Pi Zero 2 W). Pure: settings in, YAML text out. Written for MediaMTX 1.11 and later (``rtspTransports``,
``rtspEncryption``; older releases named them ``protocols`` and ``encryption``).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import yaml

from pi_stream_agent.streams.model import RtspSettings

DEFAULT_RTSP_PORT = 554  # RTSP's registered port, what an rtsp:// URL without a port means
DEFAULT_RTSPS_PORT = 322
LOOPBACK_IPS = ["127.0.0.1", "::1"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _user(name: str | None, password: str | None, action: str, ips: list[str]) -> dict[str, Any]:
    # 'any' is MediaMTX's name for "any user, including anonymous ones" (then no password).
    return {
        "user": name if name is not None else "any",
        "pass": password if name is not None else "",
        "ips": ips,
        "permissions": [{"action": action}],
    }


def mediamtx_config(rtsp: RtspSettings) -> tuple[dict[str, Any], list[str]]:
    """The MediaMTX settings for ``rtsp`` (a mapping for mediamtx.yml), and notes for the person."""
    notes: list[str] = []
    url = urlsplit(rtsp.publish_url)
    host = url.hostname or ""
    secure = url.scheme == "rtsps"
    port = url.port or (DEFAULT_RTSPS_PORT if secure else DEFAULT_RTSP_PORT)
    local = _is_loopback(host)
    if not local:
        notes.append(
            f"rtsp.publish_url points at {host}, not this Pi: install this configuration on that machine"
            + ("" if rtsp.publish_username else ", and set rtsp.publish_username and publish_password")
        )
    transports = sorted({rtsp.publish_transport, rtsp.read_transport}, key=["udp", "tcp"].index)
    config: dict[str, Any] = {
        "logLevel": "info",
        "authMethod": "internal",
        "authInternalUsers": [
            # Without a publish user only this Pi's own publishers may publish (when MediaMTX runs here).
            _user(rtsp.publish_username, rtsp.publish_password, "publish", LOOPBACK_IPS if local else []),
            _user(rtsp.read_username, rtsp.read_password, "read", []),
        ],
        "rtsp": True,
        "rtspTransports": transports,
        "rtspEncryption": "strict" if secure else "no",
        ("rtspsAddress" if secure else "rtspAddress"): f":{port}",
        "rtmp": False,
        "hls": False,
        "webrtc": False,
        "srt": False,
        "api": False,
        "metrics": False,
        "pprof": False,
        "playback": False,
        # Every stream the agent publishes, whatever its id: main and substream paths alike.
        "paths": {"all_others": None},
    }
    if secure:
        config["rtspServerKey"] = "/etc/mediamtx/server.key"
        config["rtspServerCert"] = "/etc/mediamtx/server.crt"
        notes.append("rtsps:// needs a key and certificate at rtspServerKey and rtspServerCert")
    return config, notes


def render(rtsp: RtspSettings, source: str) -> str:
    """mediamtx.yml text for ``rtsp``: a header saying where it came from and how to use it, the settings,
    and any notes as comments."""
    config, notes = mediamtx_config(rtsp)
    header = [
        f"# MediaMTX configuration for the pi_stream agent, from the rtsp: settings of {source}.",
        "# Made by 'pi-stream-agent mediamtx-config' for MediaMTX 1.11 or later. Save it as MediaMTX's",
        "# configuration file (e.g. /etc/mediamtx/mediamtx.yml) and restart MediaMTX; make it again after",
        "# changing the rtsp: settings. It holds the RTSP passwords when they are set: keep it private.",
    ]
    header += [f"# Note: {note}." for note in notes]
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body
