"""Configuration: the schema's values and limits, and messages that name the file, the key path and the
problem (the CLI side of the same messages is in test_cli.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from pi_stream_agent.config import (
    DEFAULT_PORT,
    DEFAULT_STATE_DIR,
    AgentConfig,
    ConfigError,
    TelemetrySettings,
    load,
    validate,
)
from pi_stream_agent.streams.model import RtspSettings
from tests.agent.helpers import REPO_ROOT


def config_file(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def error_of(tmp_path: Path, content: str | bytes) -> str:
    path = config_file(tmp_path, content)
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message.removeprefix(f"{path}: ")


# --- values -------------------------------------------------------------------------------------------------


def test_defaults() -> None:
    config = validate(None)
    assert config == AgentConfig()
    assert (config.host, config.port, config.state_dir) == ("0.0.0.0", DEFAULT_PORT, DEFAULT_STATE_DIR)
    assert config.port == 8190
    assert config.telemetry == TelemetrySettings(5.0, 2.0, 30.0)
    assert (config.zeroconf_enabled, config.zeroconf_name, config.simulate) == (True, None, False)
    assert (config.root, config.streams, config.source) == (Path("/"), None, None)


def test_missing_default_file_means_defaults_but_an_explicit_one_does_not(tmp_path: Path) -> None:
    assert load(tmp_path / "absent.yaml", missing_ok=True) == AgentConfig()
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "absent.yaml")


def test_every_key(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        """
listen:
  host: 127.0.0.1
  port: 0
state_dir: /srv/pi-stream
telemetry:
  interval_s: 10
  flag_check_interval_s: 0.5
  dmabuf_process_scan_interval_s: 3600
zeroconf:
  enabled: false
  name: Küche
simulate: true
root: /tmp
rtsp:
  publish_url: rtsp://127.0.0.1:8555
  read_url: rtsp://camera-pi.local:8554
  publish_transport: udp
  read_username: viewer
  read_password: secret
rtsp_server:
  command: [/usr/local/bin/mediamtx, /etc/mediamtx.yml]
streams:
  - id: front
    source: {type: test}
    width: 640
    height: 480
    fps: 10
    bitrate: 800k
""",
    )
    assert load(path) == AgentConfig(
        host="127.0.0.1",
        port=0,
        state_dir=Path("/srv/pi-stream"),
        telemetry=TelemetrySettings(
            interval_s=10.0, flag_check_interval_s=0.5, dmabuf_process_scan_interval_s=3600.0
        ),
        zeroconf_enabled=False,
        zeroconf_name="Küche",
        simulate=True,
        root=Path("/tmp"),
        streams=(
            {
                "id": "front",
                "name": None,
                "source": {"type": "test", "pattern": "testsrc2"},
                "width": 640,
                "height": 480,
                "fps": 10.0,
                "bitrate": 800_000,
                "keyframe_interval_s": 1.0,
                "encoder": "auto",
                "rtsp_path": "front",
                "enabled": True,
                "substream": None,
                "settings": {},
                "v4l2_controls": {},
                "audio": None,
                "motion_region": None,
            },
        ),
        rtsp=RtspSettings(
            publish_url="rtsp://127.0.0.1:8555",
            read_url="rtsp://camera-pi.local:8554",
            publish_transport="udp",
            read_username="viewer",
            read_password="secret",
        ),
        rtsp_server_command=("/usr/local/bin/mediamtx", "/etc/mediamtx.yml"),
        source=path,
    )
    assert isinstance(load(path).telemetry.interval_s, float)


def test_the_shipped_example_holds_exactly_the_defaults() -> None:
    example = REPO_ROOT / "packaging" / "config.example.yaml"
    assert dataclasses.replace(load(example), source=None) == AgentConfig()


@pytest.mark.parametrize(
    "text", ["", "\n", "# nothing\n", "---\n", "listen:\ntelemetry:\nzeroconf:\nrtsp:\nrtsp_server:\n"]
)
def test_empty_file_and_empty_sections_mean_defaults(text: str, tmp_path: Path) -> None:
    path = config_file(tmp_path, text)
    assert dataclasses.replace(load(path), source=None) == AgentConfig()


def test_an_empty_streams_section_means_no_streams_and_a_missing_one_means_unset(tmp_path: Path) -> None:
    # Unset lets a simulated Pi show its test cameras; an empty list is a deliberate "no streams".
    assert load(config_file(tmp_path, "streams:\n")).streams == ()
    assert load(config_file(tmp_path, "simulate: true\n")).streams is None


@pytest.mark.parametrize(
    ("key", "value", "accepted"),
    [
        ("interval_s", 1, True),
        ("interval_s", 3600, True),
        ("interval_s", 0.99, False),
        ("interval_s", 3600.5, False),
        ("flag_check_interval_s", 0.5, True),
        ("flag_check_interval_s", 0.4, False),
        ("flag_check_interval_s", 60, True),
        ("flag_check_interval_s", 61, False),
        ("dmabuf_process_scan_interval_s", 5, True),
        ("dmabuf_process_scan_interval_s", 4.9, False),
    ],
)
def test_interval_limits_are_inclusive(key: str, value: float, accepted: bool) -> None:
    data = {"telemetry": {key: value}}
    if accepted:
        assert getattr(validate(data).telemetry, key) == float(value)
    else:
        with pytest.raises(
            ConfigError, match=rf"telemetry\.{key}: must be between .* seconds, got {value:g}"
        ):
            validate(data)


@pytest.mark.parametrize(
    ("port", "accepted"), [(0, True), (1, True), (65535, True), (65536, False), (-1, False)]
)
def test_port_limits(port: int, accepted: bool) -> None:
    if accepted:
        assert validate({"listen": {"port": port}}).port == port
    else:
        with pytest.raises(
            ConfigError, match=rf"listen\.port: port must be between 1 and 65535 .*got {port}$"
        ):
            validate({"listen": {"port": port}})


def test_zeroconf_name_length(tmp_path: Path) -> None:
    assert validate({"zeroconf": {"name": "p" * 63}}).zeroconf_name == "p" * 63
    assert "zeroconf.name: expected a name of 1 to 63 characters" in error_of(
        tmp_path, f"zeroconf:\n  name: {'p' * 64}\n"
    )
    assert "zeroconf.name: expected a name of 1 to 63 characters" in error_of(
        tmp_path, "zeroconf:\n  name: ''\n"
    )


# --- messages -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # YAML's 1.1 booleans and special floats must not slip through as numbers.
        ("telemetry:\n  interval_s: yes\n", "telemetry.interval_s: expected a number of seconds, got True"),
        (
            "telemetry:\n  interval_s: .nan\n",
            "telemetry.interval_s: must be between 1 and 3600 seconds, got nan",
        ),
        (
            "telemetry:\n  interval_s: .inf\n",
            "telemetry.interval_s: must be between 1 and 3600 seconds, got inf",
        ),
        ("telemetry:\n  interval_s: '5'\n", "telemetry.interval_s: expected a number of seconds, got '5'"),
        ("listen:\n  port: true\n", "listen.port: expected a port number (1-65535), got True"),
        ("listen:\n  port: 80.5\n", "listen.port: expected a port number (1-65535), got 80.5"),
        ("listen:\n  host: ''\n", "listen.host: expected non-empty text, got ''"),
        ("state_dir: 5\n", "state_dir: expected non-empty text, got 5"),
        ("simulate: 1\n", "simulate: expected true or false, got 1"),
        ("zeroconf:\n  enabled: 'no'\n", "zeroconf.enabled: expected true or false, got 'no'"),
        (
            "streams: {front: 1}\n",
            "streams: expected a list of streams (each starting with - id: …), got dict",
        ),
        ("telemetry: 5\n", "telemetry: expected a mapping of keys to values"),
        ("zeroconf:\n  enabled: true\n  extra: 1\n", "zeroconf.extra: unknown key (check the spelling"),
    ],
)
def test_message_names_the_key_path_and_the_problem(text: str, message: str, tmp_path: Path) -> None:
    assert message in error_of(tmp_path, text)


def test_every_problem_is_listed_once_in_order(tmp_path: Path) -> None:
    message = error_of(tmp_path, "zz: 1\nlisten:\n  port: x\n  hots: a\ntelemetry:\n  intervall_s: 5\n")
    lines = message.splitlines()
    assert lines[0] == "invalid configuration:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "listen.hots",
        "listen.port",
        "telemetry.intervall_s",
        "zz",
    ]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert error_of(tmp_path, "- a\n") == "the file must contain a mapping of keys (like 'listen:'), not list"
    assert error_of(tmp_path, "42\n").endswith("not int")


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("listen:\n  port: 8190\nlisten:\n  port: 1\n", "line 3, column 1", "found duplicate key 'listen'"),
        ("listen:\n  port: 8190\n  port: 1\n", "line 3, column 3", "found duplicate key 'port'"),
        ("streams:\n  - {name: a, name: b}\n", "line 2, column 15", "found duplicate key 'name'"),
        ("listen:\n  port: [1\n", "line 3, column 1", "expected ',' or ']'"),
        ("listen: !!python/object:os.system {}\n", "line 1, column 9", "could not determine a constructor"),
        ("listen:\n  host: a\x00b\n", "line 2, column 10", "control character U+0000 is not allowed"),
    ],
)
def test_yaml_errors_give_line_and_column(text: str, where: str, problem: str, tmp_path: Path) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(f"not valid YAML at {where}: ")
    assert problem in message


def test_merge_keys_still_work_and_may_be_overridden(tmp_path: Path) -> None:
    path = config_file(tmp_path, "listen:\n  <<: {port: 9000, host: 127.0.0.1}\n  port: 9001\n")
    config = load(path)
    assert (config.host, config.port) == ("127.0.0.1", 9001)
    assert yaml.safe_load("a: 1\na: 2\n") == {"a": 2}  # PyYAML's own loader is left as it is


def test_non_utf8_names_the_byte_line_and_column(tmp_path: Path) -> None:
    # "  name: Küche" then a Latin-1 é: column counts characters, so the ü before it is one column.
    message = error_of(tmp_path, "zeroconf:\n  name: Küche \xe9\n".encode().replace(b"\xc3\xa9", b"\xe9"))
    assert message == "is not UTF-8 text (byte 0xe9 at line 2, column 15); save it as UTF-8"


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r": cannot be read: Is a directory$"):
        load(tmp_path)
