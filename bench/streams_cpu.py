"""Agent CPU and RSS with two streams running, the agent alone and the publishers counted separately.

Two agents run side by side on this machine's real ``/`` (what a Pi runs; no simulation mover), each
``/usr/bin/python3 -m pi_stream_agent run`` as a subprocess with one WebSocket client connected:

* **streams**: two test-pattern streams into the patched rtsp-server-perl over UDP: ``cam1`` 640x480 at
  15 fps with a 320x240 10 fps substream (one ffmpeg, two outputs), and ``cam2`` 640x480 at 15 fps. The
  agent reads each publisher's ``-progress`` once a second and its stderr, tracks its CPU and RSS in
  telemetry, and pushes telemetry every 5 s to the client;
* **no streams**: the same agent with ``streams: []``, for the difference. It is started first: agents
  on the real ``/`` share one agent id (from /etc/machine-id), and an agent kills the stream processes
  carrying its id when it starts.

After ``--settle`` seconds, over ``--seconds``: CPU is utime + stime from ``/proc/<pid>/stat`` (10 ms
ticks) of the agent process alone (not its children) and of each publisher, plus the scheduler's runtime
(``/proc/<pid>/task/*/schedstat``, ns) as a cross-check; context switches of the agent's threads; VmRSS
read every 5 s (the largest reading is given). The publishers must keep their pids through the window.

    /usr/bin/python3 -m bench.streams_cpu [--settle 5] [--seconds 60] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.clients import ClientStats, websocket_client
from bench.common import (
    CLOCK_TICKS,
    add_json_argument,
    context_switches,
    memory,
    write_json,
)
from bench.streams_common import (
    STREAM_SIZE,
    StreamAgent,
    StreamAgentSpec,
    load_average,
    rtsp_server,
    stream_agent,
    test_stream,
    wait_readable,
    wait_status,
    workdir,
)

SUBSTREAM = {"width": 320, "height": 240, "fps": 10, "bitrate": "300k"}
STREAMS = [test_stream("cam1", substream=SUBSTREAM), test_stream("cam2")]


def own_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` itself (all its threads; not its children)."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def own_runtime_s(pid: int) -> float:
    total = 0
    for tid in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((tid / "schedstat").read_text(encoding="ascii").split()[0])
    return total / 1e9


def reading(pid: int) -> dict[str, float]:
    return {"cpu_s": own_cpu_s(pid), "runtime_s": own_runtime_s(pid)}


async def publishers(session: aiohttp.ClientSession, agent: StreamAgent) -> dict[str, int]:
    """``stream/program`` → pid, once every stream runs and is readable."""
    pids = {}
    for stream in STREAMS:
        status = await wait_status(session, agent, stream["id"], {"running"}, 30)
        for url in status["urls"].values():
            await wait_readable(url)
        for program, pid in status["pids"].items():
            pids[f"{stream['id']}/{program}"] = pid
    return pids


async def measure(args: argparse.Namespace, agents: dict[str, StreamAgent]) -> dict[str, Any]:
    streaming = agents["streams"]
    async with aiohttp.ClientSession(headers=streaming.headers) as session:
        pids = await publishers(session, streaming)
        until = time.monotonic() + args.settle + args.seconds + 3
        stats = {label: ClientStats(f"{label}-ws") for label in agents}
        clients = [
            asyncio.create_task(websocket_client(a.api + "/ws", a.headers, until, stats[label]))
            for label, a in agents.items()
        ]
        await asyncio.sleep(args.settle)
        tracked = {**{f"agent ({label})": a.pid for label, a in agents.items()}, **pids}
        start = {name: reading(pid) for name, pid in tracked.items()}
        switches = {label: sum(context_switches(a.pid).values()) for label, a in agents.items()}
        rss: dict[str, list[dict[str, int]]] = {name: [] for name in tracked}
        began = time.monotonic()
        while (left := began + args.seconds - time.monotonic()) > 0:
            for name, pid in tracked.items():
                rss[name].append(memory(pid).to_json())
            await asyncio.sleep(min(5.0, left))
        elapsed = time.monotonic() - began
        end = {name: reading(pid) for name, pid in tracked.items()}
        switches = {
            label: sum(context_switches(a.pid).values()) - switches[label] for label, a in agents.items()
        }
        for name, pid in tracked.items():
            rss[name].append(memory(pid).to_json())
        after = {}
        for stream in STREAMS:
            async with session.get(f"{streaming.api}/streams/{stream['id']}") as response:
                status = await response.json()
            after[stream["id"]] = {
                "state": status["state"],
                "restart_count": status["restart_count"],
                "fps": status["fps"],
            }
            for program, pid in status["pids"].items():
                if pids.get(f"{stream['id']}/{program}") != pid:
                    raise RuntimeError(f"{stream['id']}/{program} restarted during the window: {after}")
        await asyncio.gather(*clients)

    processes = {}
    for name, pid in tracked.items():
        cpu = end[name]["cpu_s"] - start[name]["cpu_s"]
        runtime = end[name]["runtime_s"] - start[name]["runtime_s"]
        largest = max(rss[name], key=lambda m: m["rss"])
        processes[name] = {
            "pid": pid,
            "cpu_s": round(cpu, 2),
            "cpu_percent_of_one_core": round(100 * cpu / elapsed, 2),
            "runtime_s": round(runtime, 3),
            "rss_kib_max": largest["rss"],
            "rss_anon_kib": largest["rss_anon"],
            "rss_file_kib": largest["rss_file"],
        }
    return {
        "window_s": round(elapsed, 1),
        "processes": processes,
        "agent_context_switches": {label: n for label, n in switches.items()},
        "agent_context_switches_per_s": {label: round(n / elapsed, 2) for label, n in switches.items()},
        "websocket_clients": {label: s.to_json() for label, s in stats.items()},
        "streams_after": after,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the window (default 5)")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window (default 60)")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    started = time.monotonic()
    load_before = load_average()
    with (
        workdir("pi-stream-bench-cpu-") as tmp,
        rtsp_server(tmp) as server,
        # The agent without streams first: see the module docstring.
        stream_agent(StreamAgentSpec(streams=[], simulate=False), server, tmp / "idle") as idle,
        stream_agent(StreamAgentSpec(streams=STREAMS, simulate=False), server, tmp / "streams") as busy,
    ):
        results = asyncio.run(measure(args, {"streams": busy, "no streams": idle}))
    results = {
        "command": "python3 -m bench.streams_cpu " + " ".join(argv if argv is not None else sys.argv[1:]),
        "agents": "subprocesses: /usr/bin/python3 -m pi_stream_agent run (real /), one WebSocket client each",
        "streams": {"cam1": {**STREAM_SIZE, "substream": SUBSTREAM}, "cam2": STREAM_SIZE},
        "settle_s": args.settle,
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_before_after": [load_before, load_average()],
        **results,
    }
    print(f"== CPU and RSS over {results['window_s']} s (agent = the agent process alone)")
    for name, p in results["processes"].items():
        print(
            f"  {name:<18} CPU {p['cpu_s']:6.2f} s ({p['cpu_percent_of_one_core']:5.2f} % of a core; "
            f"runtime {p['runtime_s']:7.3f} s)  RSS {p['rss_kib_max'] / 1024:6.1f} MiB "
            f"(anon {p['rss_anon_kib'] / 1024:5.1f})"
        )
    for label, rate in results["agent_context_switches_per_s"].items():
        print(f"  agent ({label}): {rate} context switches/s")
    print(f"  ({results['elapsed_s']} s)")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
