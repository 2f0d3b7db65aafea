"""What Home Assistant's device page says about a Pi and about each of its streams.

A Pi: its model ("Raspberry Pi 4 Model B") by Raspberry Pi, its revision code as the model id, the board's
PCB revision and factory as hardware, its Linux kernel and the agent's version as software. A stream: what
its source is (a camera module by its sensor, a capture card by its name, a test pattern by its name), made
by whoever makes that source when it is known. Pure: built from :class:`~.coordinator.AgentState`.

The stream device identifier's builder and parser live here too: a leaf module that entity.py,
__init__.py and services.py can import without an import cycle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from homeassistant.helpers.device_registry import DeviceInfo

from .agent_state import AgentState
from .const import DOMAIN, MANUFACTURER

# The board model ends with its PCB revision ("Raspberry Pi 4 Model B Rev 1.4"); that goes to hw_version.
_REVISION_SUFFIX = re.compile(r"\s+Rev\s+\S+$")
# Test patterns come from FFmpeg's lavfi sources: their maker, as far as anyone made them.
TEST_PATTERN_MAKER = "FFmpeg"


def stream_device_identifier(agent_id: str, stream_id: str) -> tuple[str, str]:
    """The device registry identifier of one stream of a Pi (the Pi's own is ``(DOMAIN, agent_id)``):
    unique across Pis, as stream ids are unique only per Pi. :func:`stream_id_from_identifier` reads it."""
    return (DOMAIN, f"{agent_id}_{stream_id}")


def stream_id_from_identifier(agent_id: str, identifier: tuple[str, str]) -> str | None:
    """The stream id in a device identifier of this Pi's streams; None for the Pi itself or anything else."""
    domain, value = identifier
    prefix = f"{agent_id}_"
    if domain != DOMAIN or not value.startswith(prefix):
        return None
    return value.removeprefix(prefix) or None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def pi_device_info(state: AgentState) -> DeviceInfo:
    info = state.info
    board = info.board
    model = _text(board.get("model"))
    if model is not None:
        model = _REVISION_SUFFIX.sub("", model)
    elif info.simulated:
        model = "Raspberry Pi"
    if info.simulated:
        model = f"{model} (simulated)"
    pcb, factory = _text(board.get("pcb_revision")), _text(board.get("manufacturer"))
    hardware = ", ".join(
        part for part in (f"Rev {pcb}" if pcb else None, f"made by {factory}" if factory else None) if part
    )
    kernel = _text(board.get("kernel"))
    agent = f"pi-stream-agent {info.version}" if info.version else None  # the program's name on the Pi
    software = ", ".join(part for part in (f"Linux {kernel}" if kernel else None, agent) if part)
    return DeviceInfo(
        identifiers={(DOMAIN, info.agent_id)},
        manufacturer=MANUFACTURER if board.get("is_raspberry_pi") is not False else None,
        model=model,
        model_id=_text(board.get("revision")),
        hw_version=hardware or None,
        sw_version=software or None,
        name=info.name,
    )


def _find(entries: Any, match: Mapping[str, Any]) -> dict[str, Any]:
    """The first entry of a /devices list with any of ``match``'s key/value pairs (values not None)."""
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and any(
            value is not None and entry.get(key) == value for key, value in match.items()
        ):
            return dict(entry)
    return {}


def _source_model(state: AgentState, source: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(model, manufacturer) of a stream's source."""
    kind = source.get("type")
    vocabulary = state.vocabulary
    generic = vocabulary.source_type_names.get(kind) if isinstance(kind, str) else None
    if kind == "test":
        pattern = source.get("pattern")
        name = vocabulary.test_pattern_names.get(pattern) if isinstance(pattern, str) else None
        return name or generic, TEST_PATTERN_MAKER
    if kind == "csi":
        camera = source.get("camera")
        found = _find(
            state.devices.get("csi_cameras"),
            {"index": camera if isinstance(camera, int) else None, "id_path": camera},
        )
        sensor = _text(found.get("model"))
        return (f"{generic} with {sensor} sensor" if generic and sensor else generic), None
    if kind == "v4l2":
        device = source.get("device")
        found = _find(
            state.devices.get("capture_devices"), {"id": device, "stable_path": device, "path": device}
        )
        return _text(found.get("name")) or generic, None
    return generic, None


def stream_device_info(state: AgentState, stream_id: str) -> DeviceInfo:
    stream = state.streams.get(stream_id, {})
    config = stream.get("config") or {}
    model, manufacturer = _source_model(state, config.get("source") or {})
    return DeviceInfo(
        identifiers={stream_device_identifier(state.info.agent_id, stream_id)},
        via_device=(DOMAIN, state.info.agent_id),
        manufacturer=manufacturer,
        model=model,
        name=stream.get("name") or stream_id,
    )
