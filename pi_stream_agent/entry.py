"""The program's entry point (``python3 -m pi_stream_agent``, ``/usr/bin/pi-stream-agent``, the
``pi-stream-agent`` console script): keeps the TLS libraries out of the process, then runs the command line.

The agent never speaks TLS: its API is plain HTTP on the LAN (docs/api.md) and ``rtsps://`` is ffmpeg's
and MediaMTX's business, not Python's. Yet ``asyncio`` and ``aiohttp`` import ``ssl`` at start only to
offer it, which loads OpenSSL's TLS half and sets up its tables: over a megabyte of the agent's resident
memory (measured in docs/benchmarks.md, "Agent memory"). Both libraries, like ``http.client`` and
``urllib``, are written for a Python built without ``ssl`` and carry on when its import fails, so the entry
point makes it fail. Library users (the tests, the benchmarks) import ``pi_stream_agent.cli`` instead and
keep ``ssl``.
"""

from __future__ import annotations

import sys


def leave_out_tls() -> None:
    """Make ``import ssl`` fail for the rest of this process (as in a Python built without it), unless
    something imported it already."""
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]  # None: "not importable" (importlib's rule)


def main() -> int:
    leave_out_tls()
    from pi_stream_agent.cli import main as cli_main  # noqa: PLC0415 - after the line above, not before

    return cli_main()
