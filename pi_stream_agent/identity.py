"""The agent's stable id: Home Assistant's unique id for the Pi, so it must survive restarts and
reinstalls."""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path

from pi_stream_agent.fsutil import atomic_write
from pi_stream_agent.rootfs import Root

AGENT_ID_FILE_NAME = "agent_id"
_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_MAX_ID_LENGTH = 64

_LOGGER = logging.getLogger(__name__)


def _usable_id(text: str) -> bool:
    # The id travels in a zeroconf TXT record and becomes Home Assistant's unique id: keep it plain.
    return 0 < len(text) <= _MAX_ID_LENGTH and _ID_CHARACTERS.issuperset(text)


def _digest(kind: str, value: str) -> str:
    # Hashed, so the id that travels in zeroconf adverts does not reveal the board serial.
    return hashlib.sha256(f"pi_stream:{kind}:{value}".encode()).hexdigest()[:16]


def _machine_id(root: Root) -> str | None:
    for relative in ("etc/machine-id", "var/lib/dbus/machine-id"):
        try:
            text = root.read_text(relative).strip()
        except OSError:
            continue
        if text:
            return text
    return None


def stable_agent_id(root: Root, state_dir: Path, serial: str | None, *, simulated: bool = False) -> str:
    """The board serial (a Pi's is burnt in) → /etc/machine-id → a random id stored in the state dir.

    A simulated agent always uses the stored random id, so many simulated Pis on one machine differ.
    """
    if not simulated:
        if serial and serial.strip("0"):
            return _digest("serial", serial.lower())
        machine_id = _machine_id(root)
        if machine_id:
            return _digest("machine-id", machine_id)
    path = state_dir / AGENT_ID_FILE_NAME
    try:
        stored = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        pass  # first start (or unreadable): make one
    else:
        if _usable_id(stored):
            return stored
        _LOGGER.warning("%s does not hold a usable agent id; making a new one", path)
    new_id = uuid.uuid4().hex[:16]
    atomic_write(path, (new_id + "\n").encode("ascii"), mode=0o644)
    return new_id
