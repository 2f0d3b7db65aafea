"""The agent's YAML configuration file: its schema, loading, and messages that name the key path at fault.

Sections with rules of their own live beside it: ``rtsp_config.py`` (the ``rtsp:`` section) and the stream
schema (``streams/schema.py``, adapted here for ``streams:``); YAML reading is ``yamlfile.py``'s."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol

from pi_stream_agent.paths import DEFAULT_STATE_DIR
from pi_stream_agent.rtsp_config import rtsp_settings
from pi_stream_agent.streams.model import RtspSettings
from pi_stream_agent.streams.problems import Problem, StreamConfigError
from pi_stream_agent.streams.schema import parse_streams
from pi_stream_agent.streams.serialize import to_json
from pi_stream_agent.yamlfile import YamlFileError, boolean, describe_path, parse_yaml

# Clear of MediaMTX (8554/8888/8889/8890/9997/9998), go2rtc (1984/8555), motionEye (8765) and HA (8123).
DEFAULT_PORT = 8190


class ConfigError(Exception):
    """The configuration cannot be used. ``str()`` is a message for the person who wrote the file."""


# Our own validators rather than voluptuous' built-in types: their messages ("expected float", "not a valid
# value") differ between voluptuous versions and do not say what was found.


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise vol.Invalid(f"expected a port number (1-65535), got {value!r}")
    # 0 asks the OS for a free port: for tests and for running several simulated agents side by side.
    if not 0 <= value <= 65535:
        raise vol.Invalid(f"port must be between 1 and 65535 (or 0 for any free port), got {value}")
    return value


def _seconds(minimum: float, maximum: float) -> Callable[[Any], float]:
    def validate(value: Any) -> float:
        # bool is an int in Python: `interval_s: yes` must not quietly become 1 second.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise vol.Invalid(f"expected a number of seconds, got {value!r}")
        # `not minimum <= value` also rejects NaN (YAML `.nan`), which compares false with everything.
        if not minimum <= value <= maximum:
            raise vol.Invalid(f"must be between {minimum:g} and {maximum:g} seconds, got {value:g}")
        return float(value)

    return validate


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid(f"expected non-empty text, got {value!r}")
    return value


def _instance_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 63:
        raise vol.Invalid(f"expected a name of 1 to 63 characters (or null for the hostname), got {value!r}")
    return value


def _command(value: Any) -> tuple[str, ...] | None:
    # An argument list, never a shell line: the agent runs it without a shell.
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list) or not value:
        raise vol.Invalid(
            "expected the command as a list of arguments, e.g. [/usr/local/bin/mediamtx, /etc/mediamtx.yml]"
        )
    if not all(isinstance(part, str) and part for part in value):
        raise vol.Invalid("every argument must be a non-empty string")
    return tuple(value)


class StreamInvalid(vol.Invalid):
    """A stream problem as voluptuous reports it inside the config schema: ``path`` is ``[index, *field
    keys]``; ``problem`` carries the full text that also names the stream's id."""

    def __init__(self, problem: Problem) -> None:
        path: list[Any] = [] if problem.index is None else [problem.index]
        if problem.field:
            path.extend(problem.field.split("."))
        super().__init__(problem.detail, path=path)
        self.problem = problem


def _streams(value: Any) -> list[dict[str, Any]]:
    """``streams:`` → the same list normalised to the JSON form (defaults filled, bitrates in bit/s), which
    ``StreamStore`` takes as its seed. ``null`` means no streams."""
    try:
        streams = parse_streams(value)
    except StreamConfigError as exc:
        raise vol.MultipleInvalid([StreamInvalid(problem) for problem in exc.problems]) from None
    return [to_json(stream) for stream in streams]


RTSP_SERVER_SCHEMA = vol.Schema(
    {
        # When set, the agent runs the RTSP server (e.g. MediaMTX) itself, as one more supervised child.
        vol.Optional("command", default=None): _command,
    }
)


LISTEN_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default="0.0.0.0"): _text,  # noqa: S104 - a LAN service
        vol.Optional("port", default=DEFAULT_PORT): _port,
    }
)

TELEMETRY_SCHEMA = vol.Schema(
    {
        # How often the WebSocket pushes a full sample. Flags and edges are pushed at once regardless.
        vol.Optional("interval_s", default=5.0): _seconds(1, 3600),
        # How often throttle bits are read between samples (one mailbox call, no fork).
        vol.Optional("flag_check_interval_s", default=2.0): _seconds(0.5, 60),
        # The per-process DMA-buf scan walks every process: keep it rare.
        vol.Optional("dmabuf_process_scan_interval_s", default=30.0): _seconds(5, 3600),
    }
)

ZEROCONF_SCHEMA = vol.Schema(
    {
        vol.Optional("enabled", default=True): boolean,
        # The instance name shown in Home Assistant's discovery; the hostname when not set.
        vol.Optional("name", default=None): _instance_name,
    }
)

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("listen", default={}): LISTEN_SCHEMA,
        vol.Optional("state_dir", default=str(DEFAULT_STATE_DIR)): _text,
        vol.Optional("telemetry", default={}): TELEMETRY_SCHEMA,
        vol.Optional("zeroconf", default={}): ZEROCONF_SCHEMA,
        # Serve a simulated Raspberry Pi 4 instead of reading this machine.
        vol.Optional("simulate", default=False): boolean,
        # Read kernel interfaces below this directory instead of / (testing and diagnosis).
        vol.Optional("root", default="/"): _text,
        # Where publishers push and Home Assistant reads (MediaMTX on this Pi by default).
        vol.Optional("rtsp", default={}): rtsp_settings,
        vol.Optional("rtsp_server", default={}): RTSP_SERVER_SCHEMA,
        # The streams to publish: the seed for <state_dir>/streams.yaml (see docs/configuration.md).
        vol.Optional("streams"): _streams,
        # Let Home Assistant restart the agent, reboot and shut down the Pi (docs/install.md).
        vol.Optional("allow_power_control", default=False): boolean,
    }
)


@dataclass(frozen=True)
class TelemetrySettings:
    interval_s: float = 5.0
    flag_check_interval_s: float = 2.0
    dmabuf_process_scan_interval_s: float = 30.0


@dataclass(frozen=True)
class AgentConfig:
    host: str = "0.0.0.0"  # noqa: S104 - a LAN service by design; the token guards it
    port: int = DEFAULT_PORT
    state_dir: Path = DEFAULT_STATE_DIR
    telemetry: TelemetrySettings = TelemetrySettings()
    zeroconf_enabled: bool = True
    zeroconf_name: str | None = None
    simulate: bool = False
    root: Path = Path("/")
    # None: the file says nothing about streams (a simulated Pi then shows its test cameras); () : none.
    streams: tuple[dict[str, Any], ...] | None = None
    rtsp: RtspSettings = field(default_factory=RtspSettings)
    rtsp_server_command: tuple[str, ...] | None = None
    allow_power_control: bool = False
    source: Path | None = None  # the file it came from, for messages


def _format_invalid(error: vol.Invalid) -> str:
    key = describe_path(error.path) or "(top level)"
    if isinstance(error, StreamInvalid):
        return str(error.problem)  # names the stream by id as well as by position
    message = error.msg
    if message == "extra keys not allowed":
        message = "unknown key (check the spelling; see docs/configuration.md for the keys)"
    elif isinstance(error, vol.DictInvalid):
        # voluptuous says "expected a dictionary"; the person wrote YAML, not Python.
        message = "expected a mapping of keys to values (indented key: value lines)"
    return f"{key}: {message}"


# Sections a person may leave empty (every child commented out): YAML reads those as null, meaning "defaults".
_SECTION_DEFAULTS: dict[str, Callable[[], Any]] = {
    "listen": dict,
    "telemetry": dict,
    "zeroconf": dict,
    "streams": list,
    "rtsp": dict,
    "rtsp_server": dict,
}


def validate(data: Any, source: Path | None = None) -> AgentConfig:
    """Validate parsed YAML. Raises ConfigError listing every problem, each with its key path."""
    if data is None:
        data = {}
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}the file must contain a mapping of keys (like 'listen:'), not {type(data).__name__}"
        )
    data = {
        key: _SECTION_DEFAULTS[key]() if value is None and key in _SECTION_DEFAULTS else value
        for key, value in data.items()
    }
    try:
        checked = CONFIG_SCHEMA(data)
    except vol.MultipleInvalid as exc:
        problems = sorted({_format_invalid(error) for error in exc.errors})
        raise ConfigError(f"{where}invalid configuration:\n  " + "\n  ".join(problems)) from None
    telemetry = checked["telemetry"]
    return AgentConfig(
        host=checked["listen"]["host"],
        port=checked["listen"]["port"],
        state_dir=Path(checked["state_dir"]),
        telemetry=TelemetrySettings(
            interval_s=telemetry["interval_s"],
            flag_check_interval_s=telemetry["flag_check_interval_s"],
            dmabuf_process_scan_interval_s=telemetry["dmabuf_process_scan_interval_s"],
        ),
        zeroconf_enabled=checked["zeroconf"]["enabled"],
        zeroconf_name=checked["zeroconf"]["name"],
        simulate=checked["simulate"],
        root=Path(checked["root"]),
        streams=tuple(checked["streams"]) if "streams" in checked else None,
        rtsp=checked["rtsp"],
        rtsp_server_command=checked["rtsp_server"]["command"],
        allow_power_control=checked["allow_power_control"],
        source=source,
    )


def load(path: Path, *, missing_ok: bool = False) -> AgentConfig:
    """Read and validate a config file. ``missing_ok``: a missing file means all defaults."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return AgentConfig(source=None)
        raise ConfigError(
            f"{path}: file not found (create it, or leave out --config to use the defaults)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        data = parse_yaml(raw, path)
    except YamlFileError as exc:
        raise ConfigError(str(exc)) from None
    return validate(data, path)
