"""Constants for the pi_stream integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "pi_stream"
LOGGER = logging.getLogger(__package__)

DEFAULT_PORT: Final = 8190
MANUFACTURER: Final = "Raspberry Pi"

CONF_TOKEN: Final = "token"

# Push first: the WebSocket delivers telemetry every few seconds and every edge at once. The REST poll is
# the fallback while the socket is down, and a slow reconciliation while it is up.
POLL_INTERVAL: Final = timedelta(seconds=30)
# Reconnecting the WebSocket: 1 s, 2 s, 4 s … at most 30 s between tries.
RECONNECT_MIN_S: Final = 1.0
RECONNECT_MAX_S: Final = 30.0
