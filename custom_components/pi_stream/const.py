"""Constants for the pi_stream integration."""

from typing import Final

DOMAIN: Final = "pi_stream"
DEFAULT_PORT: Final = 8190
