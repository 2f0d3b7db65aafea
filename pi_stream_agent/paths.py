"""Where the agent's files are by default (the Debian package and the systemd unit use the same paths).

Apart from the config module so that the token and id code can name the state directory without
importing the config schema (and the stream schema behind it)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_CONFIG_PATH = Path("/etc/pi-stream-agent/config.yaml")
DEFAULT_STATE_DIR = Path("/var/lib/pi-stream-agent")
