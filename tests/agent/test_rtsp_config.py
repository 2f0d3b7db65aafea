"""The agent config's rtsp: section, read through the config file's one schema and error conversion."""

from __future__ import annotations

from typing import Any

import pytest

from pi_stream_agent.config import ConfigError, validate
from pi_stream_agent.streams.model import RtspSettings


def rtsp_section(data: Any) -> RtspSettings:
    return validate({"rtsp": data}).rtsp


def problems(exc: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    """The problem lines of a ConfigError (sorted, as the config module lists them)."""
    return [line.strip() for line in str(exc.value).splitlines()[1:]]


def test_rtsp_defaults_and_full_settings() -> None:
    assert rtsp_section(None) == RtspSettings()
    assert rtsp_section({}) == RtspSettings(publish_url="rtsp://127.0.0.1:8554")
    settings = rtsp_section(
        {
            "publish_url": "rtsp://127.0.0.1:8554/",
            "read_url": "rtsps://pi.local:8322/cams",
            "publish_transport": "udp",
            "read_transport": "tcp",
            "publish_username": "agent",
            "publish_password": "s3cret:@/",
            "read_username": "ha",
            "read_password": "hunter2",
        }
    )
    assert settings == RtspSettings(
        publish_url="rtsp://127.0.0.1:8554",
        read_url="rtsps://pi.local:8322/cams",
        publish_transport="udp",
        read_transport="tcp",
        publish_username="agent",
        publish_password="s3cret:@/",
        read_username="ha",
        read_password="hunter2",
    )


def test_rtsp_errors_never_show_credentials() -> None:
    with pytest.raises(ConfigError) as exc:
        rtsp_section(
            {
                "publish_url": "rtsp://agent:topsecret@127.0.0.1:8554",
                "read_url": "http://pi.local:8554",
                "publish_transport": "quic",
                "publish_password": "topsecret\n",
                "read_username": "ha",
                "port": 8554,
            }
        )
    text = str(exc.value)
    assert "topsecret" not in text and "agent" not in text
    assert problems(exc) == sorted(
        [
            "rtsp.publish_url: must not contain a user name or password: put them in the *_username and "
            "*_password keys",
            "rtsp.read_url: expected an rtsp:// URL with a host, such as rtsp://127.0.0.1:8554, got "
            "'http://pi.local:8554'",
            "rtsp.publish_transport: expected tcp or udp, got 'quic'",
            "rtsp.publish_password: expected non-empty text without control characters (value not shown)",
            "rtsp.port: unknown key for rtsp (check the spelling; it takes publish_url, read_url, "
            "publish_transport, "
            "read_transport, publish_username, publish_password, read_username, read_password)",
        ]
    )
    with pytest.raises(ConfigError) as exc:
        rtsp_section({"read_username": "ha", "publish_password": "pw"})
    assert problems(exc) == sorted(
        [
            "rtsp.publish_username: required when publish_password is set",
            "rtsp.read_password: required when read_username is set",
        ]
    )
    with pytest.raises(ConfigError) as exc:
        rtsp_section({"publish_url": "rtsp://user@host:99999"})
    assert problems(exc) == sorted(
        ["rtsp.publish_url: is not a valid URL (check the host and port), got (value not shown)"]
    )
    with pytest.raises(ConfigError) as exc:
        rtsp_section({"publish_url": "rtsp://host:8554/x?y=1"})
    assert problems(exc) == sorted(
        [
            "rtsp.publish_url: must be a base URL without spaces, ?query or #fragment, got "
            "'rtsp://host:8554/x?y=1'"
        ]
    )
    with pytest.raises(ConfigError) as exc:
        rtsp_section(["rtsp://x"])
    assert problems(exc) == sorted(["rtsp: expected a mapping of keys such as publish_url:, got list"])


def test_a_user_name_without_its_password_is_a_config_error_not_a_crash() -> None:
    """It used to escape the error conversion as StreamConfigError: a traceback and exit 1 (issue 13)."""
    with pytest.raises(ConfigError) as exc:
        rtsp_section({"publish_username": "u"})
    assert problems(exc) == ["rtsp.publish_password: required when publish_username is set"]
