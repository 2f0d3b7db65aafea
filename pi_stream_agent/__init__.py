"""pi_stream agent: supervises a Raspberry Pi's camera publishers and reports its hardware health."""

__version__ = "0.1.0"

# Bumped when the HTTP/WebSocket contract changes incompatibly; the integration refuses other majors.
API_VERSION = 1
