"""The agent's YAML configuration: schema, loading, and messages that name the key path at fault."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

DEFAULT_CONFIG_PATH = Path("/etc/pi-stream-agent/config.yaml")
DEFAULT_STATE_DIR = Path("/var/lib/pi-stream-agent")
# Clear of MediaMTX (8554/8888/8889/8890/9997/9998), go2rtc (1984/8555), motionEye (8765) and HA (8123).
DEFAULT_PORT = 8190


class ConfigError(Exception):
    """The configuration cannot be used. ``str()`` is a message for the person who wrote the file."""


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise vol.Invalid(f"expected a port number (1-65535), got {value!r}")
    # 0 asks the OS for a free port: for tests and for running several simulated agents side by side.
    if not 0 <= value <= 65535:
        raise vol.Invalid(f"port must be between 1 and 65535 (or 0 for any free port), got {value}")
    return value


def _seconds(minimum: float, maximum: float) -> vol.All:
    return vol.All(
        vol.Coerce(float),
        vol.Range(min=minimum, max=maximum, msg=f"must be between {minimum:g} and {maximum:g} seconds"),
    )


LISTEN_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default="0.0.0.0"): vol.All(str, vol.Length(min=1)),  # noqa: S104 - a LAN service
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
        vol.Optional("enabled", default=True): bool,
        # The instance name shown in Home Assistant's discovery; the hostname when not set.
        vol.Optional("name", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=63))),
    }
)

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("listen", default={}): LISTEN_SCHEMA,
        vol.Optional("state_dir", default=str(DEFAULT_STATE_DIR)): vol.All(str, vol.Length(min=1)),
        vol.Optional("telemetry", default={}): TELEMETRY_SCHEMA,
        vol.Optional("zeroconf", default={}): ZEROCONF_SCHEMA,
        # Serve a simulated Raspberry Pi 4 instead of reading this machine.
        vol.Optional("simulate", default=False): bool,
        # Read kernel interfaces below this directory instead of / (testing and diagnosis).
        vol.Optional("root", default="/"): vol.All(str, vol.Length(min=1)),
        # Declared by the streams feature; accepted here so one file serves both.
        vol.Optional("streams", default=[]): list,
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
    streams: tuple[dict[str, Any], ...] = ()
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
    message = error.msg
    if message == "extra keys not allowed":
        message = "unknown key (check the spelling; see docs/configuration.md for the keys)"
    elif message.startswith("expected dict"):
        message = "expected a mapping of keys to values"
    return f"{key}: {message}"


def validate(data: Any, source: Path | None = None) -> AgentConfig:
    """Validate parsed YAML. Raises ConfigError listing every problem, each with its key path."""
    if data is None:
        data = {}
    where = f"{source}: " if source else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}the file must contain a mapping of keys (like 'listen:'), not {type(data).__name__}")
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
        streams=tuple(checked["streams"]),
        source=source,
    )


def load(path: Path, *, missing_ok: bool = False) -> AgentConfig:
    """Read and validate a config file. ``missing_ok``: a missing file means all defaults."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return AgentConfig(source=None)
        raise ConfigError(f"{path}: file not found (create it, or leave out --config to use the defaults)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    return validate(data, path)
