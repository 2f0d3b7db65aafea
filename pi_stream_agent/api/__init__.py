"""The authenticated HTTP + WebSocket API (v1, docs/api.md).

- ``server``: the aiohttp application — middlewares (connection state, JSON errors, token, body limits)
  and the info/telemetry/devices/ws routes.
- ``connections``: the listening socket and every connection on it — header/idle timeouts, caps on
  unauthenticated and total connections, the descriptor reserve, JSON answers to malformed HTTP.
- ``websocket``: the push hub — fan-out, per-client backlog bounds, replies to client messages.
- ``streams``: the stream routes (state, commands, configuration, snapshots, logs).
- ``housekeeping``: restart the agent, reboot, shut down (``allow_power_control``; the actions themselves
  are in ``pi_stream_agent/housekeeping.py``).
- ``simulation``: routes that exist only with ``--simulate`` (under-voltage, OOM kill, storage error).
- ``errors``: JSON error bodies and the one parser for what clients send.
- ``logfilter``: once-per-window logging for messages a client could make repeat without end.
"""
