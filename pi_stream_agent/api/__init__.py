"""The authenticated HTTP + WebSocket API (v1)."""
