"""The agent's YAML configuration: schema, loading, and messages that name the key path at fault."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from pi_stream_agent.streams.config import RTSP_SCHEMA, STREAMS_SCHEMA, StreamInvalid, parse_rtsp_settings
from pi_stream_agent.streams.model import RtspSettings

DEFAULT_CONFIG_PATH = Path("/etc/pi-stream-agent/config.yaml")
DEFAULT_STATE_DIR = Path("/var/lib/pi-stream-agent")
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


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"expected true or false, got {value!r}")
    return value


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
        vol.Optional("enabled", default=True): _boolean,
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
        vol.Optional("simulate", default=False): _boolean,
        # Read kernel interfaces below this directory instead of / (testing and diagnosis).
        vol.Optional("root", default="/"): _text,
        # Where publishers push and Home Assistant reads (MediaMTX on this Pi by default).
        vol.Optional("rtsp", default={}): RTSP_SCHEMA,
        vol.Optional("rtsp_server", default={}): RTSP_SERVER_SCHEMA,
        # The streams to publish: the seed for <state_dir>/streams.yaml (see docs/configuration.md).
        vol.Optional("streams"): STREAMS_SCHEMA,
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
    source: Path | None = None  # the file it came from, for messages


def _describe_path(path: list[Any]) -> str:
    parts: list[str] = []
    for element in path:
        if isinstance(element, int):
            parts.append(f"[{element}]")
        else:
            parts.append(("." if parts else "") + str(element))
    return "".join(parts) or "(top level)"


def _format_invalid(error: vol.Invalid) -> str:
    key = _describe_path(list(error.path))
    if isinstance(error, StreamInvalid):
        return str(error.problem)  # names the stream by id as well as by position
    message = error.msg
    if message == "extra keys not allowed":
        message = "unknown key (check the spelling; see docs/configuration.md for the keys)"
    elif isinstance(error, vol.DictInvalid):
        # voluptuous says "expected a dictionary"; the person wrote YAML, not Python.
        message = "expected a mapping of keys to values (indented `key: value` lines)"
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
        rtsp=parse_rtsp_settings(checked["rtsp"]),
        rtsp_server_command=checked["rtsp_server"]["command"],
        source=source,
    )


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice is an error: by default the last one silently
    wins, so a second ``listen:`` block would throw the first away unseen."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: keys written beside it override the merged ones, by design
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it properly
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _undecodable(path: Path, raw: bytes, exc: UnicodeDecodeError) -> ConfigError:
    line = raw.count(b"\n", 0, exc.start) + 1
    line_start = raw.rfind(b"\n", 0, exc.start) + 1
    # Columns in characters, as an editor counts them (everything before the bad byte decodes).
    column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
    return ConfigError(
        f"{path}: is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, column {column}); "
        "save it as UTF-8"
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
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _undecodable(path, raw, exc) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.reader.ReaderError as exc:
        # A control character: the reader knows only the character offset, so count the lines ourselves.
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise ConfigError(
            f"{path}: not valid YAML at line {line}, column {column}: "
            f"control character {character} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    return validate(data, path)
