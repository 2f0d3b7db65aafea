"""Resident memory of the running agent: idle, then with two WebSocket clients.

Starts the real agent (``python3 -m pi_stream_agent run``, the program's own entry point) on Debian's
/usr/bin/python3, listening on 127.0.0.1 with a free port and zeroconf off, reads VmRSS (and
RssAnon/RssFile/VmHWM) from /proc/<pid>/status and PSS from /proc/<pid>/smaps_rollup after it settles,
connects two authenticated WebSocket clients, and reads again after ``--seconds``. Three agents run side
by side:

* ``simulate``: ``--simulate`` (the simulated Pi 4, its mover included) with its two default test-pattern
  streams; no RTSP server listens, so those streams wait in their retry back-off;
* ``real_root``: the real ``/`` of this machine (what a Pi runs, minus the Pi hardware), no streams;
* ``real_root_streams``: the real ``/`` with two test-pattern streams (one with a substream) that really
  publish, to the RTSP test server of the stream benchmarks (bench/streams_common.py): three ffmpeg
  publishers supervised, their progress parsed, their key-frame taps kept. What a Pi with two cameras
  runs, minus the Pi hardware. The publishers' own memory is not the agent's (docs/benchmarks.md §3).

PSS depends on who else maps the same files (the three agents share the interpreter and libraries): read
it as the agent's share on a machine where it is the only Python program, roughly.

    /usr/bin/python3 -m bench.agent_rss [--settle 10] [--seconds 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.clients import ClientStats, websocket_client
from bench.common import AgentHandle, AgentSpec, add_json_argument, agents, memory, threads, write_json
from bench.streams_common import StreamAgentSpec, rtsp_server, stream_agent, test_stream

SPECS = (AgentSpec("simulate", simulate=True), AgentSpec("real_root"))
# Two cameras, as in bench/streams_cpu.py: one with a substream, so three publishers.
SUBSTREAM = {"width": 320, "height": 240, "fps": 10, "bitrate": "300k"}
STREAMS = [test_stream("cam1", substream=SUBSTREAM), test_stream("cam2")]


async def with_clients(handles: list[AgentHandle], seconds: float) -> dict[str, Any]:
    """Two WebSocket clients per agent for ``seconds``; memory read just before they disconnect."""
    until = time.monotonic() + seconds + 2.0
    stats = {h.label: [ClientStats(f"{h.label}-ws{i}") for i in (1, 2)] for h in handles}
    tasks = [
        asyncio.create_task(websocket_client(h.base_url + "/api/v1/ws", h.headers, until, s))
        for h in handles
        for s in stats[h.label]
    ]
    await asyncio.sleep(seconds)
    readings = {
        h.label: {"memory_kib": memory(h.pid).to_json(), "threads": len(threads(h.pid))} for h in handles
    }
    await asyncio.gather(*tasks)
    for h in handles:
        readings[h.label]["clients"] = [s.to_json() for s in stats[h.label]]
    return readings


def stream_states(handle: AgentHandle) -> dict[str, str]:
    """Each stream's state (``running`` when its publisher is up): what the agent was doing when read."""
    request = urllib.request.Request(handle.base_url + "/api/v1/streams", headers=handle.headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.load(response)
    return {stream["id"]: stream["state"] for stream in body["streams"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds after start before the idle reading"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds with two clients (default 30)")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "command": "python3 -m bench.agent_rss " + " ".join(argv or sys.argv[1:]),
        "settle_s": args.settle,
        "clients_s": args.seconds,
        "agents": {},
    }
    with (
        tempfile.TemporaryDirectory(prefix="pi-stream-bench-rss-") as tmp,
        rtsp_server(Path(tmp)) as server,
        stream_agent(StreamAgentSpec(streams=STREAMS, simulate=False), server, Path(tmp) / "streams") as cams,
        agents(SPECS, Path(tmp)) as plain,
    ):
        handles = [*plain, AgentHandle(cams.process, cams.port, cams.token, "real_root_streams")]
        time.sleep(args.settle)
        results["stream_states"] = {h.label: stream_states(h) for h in handles}
        idle = {
            h.label: {"memory_kib": memory(h.pid).to_json(), "threads": len(threads(h.pid))} for h in handles
        }
        busy = asyncio.run(with_clients(handles, args.seconds))
        for h in handles:
            results["agents"][h.label] = {
                "argv": h.process.argv[1:],
                "idle": idle[h.label],
                "two_clients": busy[h.label],
            }
    for label, r in results["agents"].items():
        i, b = r["idle"]["memory_kib"], r["two_clients"]["memory_kib"]
        print(f"== agent {label}: streams {results['stream_states'][label] or 'none'}")
        print(
            f"  idle        VmRSS {i['rss'] / 1024:6.1f} MiB (anon {i['rss_anon'] / 1024:5.1f}, "
            f"file {i['rss_file'] / 1024:5.1f}); PSS {i['pss'] / 1024:6.1f} MiB; "
            f"threads {r['idle']['threads']}"
        )
        print(
            f"  two clients VmRSS {b['rss'] / 1024:6.1f} MiB (anon {b['rss_anon'] / 1024:5.1f}, "
            f"file {b['rss_file'] / 1024:5.1f}), PSS {b['pss'] / 1024:6.1f} MiB, "
            f"VmHWM {b['hwm'] / 1024:5.1f} MiB; "
            f"threads {r['two_clients']['threads']}"
        )
        for client in r["two_clients"]["clients"]:
            print(
                f"    {client['label']}: {client['messages']} messages, {client['bytes']} bytes, "
                f"{client['error_count']} errors"
            )
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
