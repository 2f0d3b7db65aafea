"""Snapshots: the key-frame tap against the RTSP-session way, in one run, on the same published streams.

The agent (``/usr/bin/python3 -m pi_stream_agent run --simulate``, a subprocess) publishes two test
patterns into the patched rtsp-server-perl over UDP, key frame every 1 s, 15 fps:
``s480`` 640x480 1 Mbit/s with a 320x240 substream, and ``s1080`` 1920x1080 4 Mbit/s.

* **tap way**: ``GET /api/v1/streams/<id>/snapshot`` on the agent (HTTP included). Requests are spaced
  1.0-2.0 s apart at random, so each one finds a key frame it has not decoded yet (a fresh decode; the
  decodes are counted from the agent's children). ``X-Picture-Age-Ms`` gives the picture's age.
* **RTSP way**: the agent's own :class:`SnapshotService` code (what the agent ran before the tap, and
  still runs as the fallback), in this process, against the same published stream at the same moments:
  ``max_age_s=0``, so every request opens an RTSP session and waits for the next key frame.
* **10 concurrent**: 10 clients (own HTTP connections / 10 ``get`` calls) at the same instant.
* **CPU per snapshot**: the agent's CPU plus its reaped children's (the decode ffmpegs), over the tap
  requests, and what Home Assistant's still requests cost per hour (a camera card refreshes every 10 s:
  360 requests an hour per card shown).

    /usr/bin/python3 -m bench.snapshot_tap [--fresh 20] [--rounds 6] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import CLOCK_TICKS, add_json_argument, percentile, write_json
from bench.streams_common import (
    ChildWatcher,
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
from pi_stream_agent.streams.snapshot import SnapshotService, jpeg_dimensions

CLIENTS = 10
STREAMS = {
    "s480": test_stream(
        "s480",
        width=640,
        height=480,
        bitrate="1M",
        substream={"width": 320, "height": 240, "fps": 15, "bitrate": "300k"},
    ),
    "s1080": test_stream("s1080", width=1920, height=1080, bitrate="4M"),
}
HA_REQUESTS_PER_HOUR = 360  # one camera card shown: a still every 10 s


def is_tap_decode(argv: list[str]) -> bool:
    return (
        bool(argv) and os.path.basename(argv[0]) == "ffmpeg" and "pipe:0" in argv and "-progress" not in argv
    )


def own_cpu_s(pid: int) -> tuple[float, float]:
    """(utime + stime, cutime + cstime) of ``pid`` alone: the agent itself, and the children it has reaped
    (the snapshot decodes; the publishers still run, so they are not in it)."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    fields = text[text.rfind(")") + 2 :].split()
    own = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    children = (int(fields[13]) + int(fields[14])) / CLOCK_TICKS
    return own, children


def ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
    }


async def api_snapshot(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    started = time.monotonic()
    async with session.get(url) as response:
        body = await response.read()
        elapsed = time.monotonic() - started
        if response.status != 200 or body[:2] != b"\xff\xd8":
            raise RuntimeError(f"snapshot: HTTP {response.status} {body[:300]!r}")
        return {
            "latency_s": elapsed,
            "age_ms": int(response.headers["X-Picture-Age-Ms"]),
            "source": response.headers.get("X-Snapshot-Source"),
            "size": jpeg_dimensions(body),
        }


async def rtsp_snapshot(service: SnapshotService, key: str, url: str) -> dict[str, Any]:
    started = time.monotonic()
    picture = await service.get(key, url, max_age_s=0.0)
    return {"latency_s": time.monotonic() - started, "size": (picture.width, picture.height)}


async def measure_stream(
    args: argparse.Namespace,
    agent: StreamAgent,
    watcher: ChildWatcher,
    stream_id: str,
    *,
    substream: bool = False,
) -> dict[str, Any]:
    rng = random.Random(args.seed)
    query = "?substream=1" if substream else ""
    url = f"{agent.api}/streams/{stream_id}/snapshot{query}"
    read_url = agent.read_url(f"{stream_id}_sub" if substream else stream_id)
    timeout = aiohttp.ClientTimeout(total=30)
    rtsp_service = SnapshotService(transport="udp", max_age_s=0.0)
    tap: list[dict[str, Any]] = []
    rtsp: list[dict[str, Any]] = []
    decodes: list[int] = []
    # The agent's own CPU when nobody asks (telemetry, supervision), over a window like the requests'.
    idle_before = own_cpu_s(agent.pid)
    idle_started = time.monotonic()
    await asyncio.sleep(args.idle_s)
    idle_after = own_cpu_s(agent.pid)
    idle_rate = (idle_after[0] - idle_before[0]) / (time.monotonic() - idle_started)
    cpu_before = own_cpu_s(agent.pid)
    window_started = time.monotonic()
    try:
        async with aiohttp.ClientSession(headers=agent.headers, timeout=timeout) as session:
            for i in range(args.fresh):
                await asyncio.sleep(rng.uniform(1.0, 2.0))
                before = watcher.count(is_tap_decode)
                tap.append(await api_snapshot(session, url))
                await asyncio.sleep(0.05)
                decodes.append(watcher.count(is_tap_decode) - before)
                if i < args.rtsp_fresh:
                    rtsp.append(await rtsp_snapshot(rtsp_service, f"{stream_id}-{i}", read_url))
            cpu_after = own_cpu_s(agent.pid)
            window_s = time.monotonic() - window_started

            sessions = [aiohttp.ClientSession(headers=agent.headers, timeout=timeout) for _ in range(CLIENTS)]
            tap_rounds: list[list[dict[str, Any]]] = []
            round_decodes: list[int] = []
            rtsp_rounds: list[list[dict[str, Any]]] = []
            rtsp_runs: list[int] = []
            try:
                for client in sessions:
                    async with client.get(f"{agent.api}/streams") as response:
                        await response.read()
                for r in range(args.rounds):
                    await asyncio.sleep(rng.uniform(1.0, 2.0))
                    before = watcher.count(is_tap_decode)
                    tap_rounds.append(await asyncio.gather(*(api_snapshot(c, url) for c in sessions)))
                    await asyncio.sleep(0.05)
                    round_decodes.append(watcher.count(is_tap_decode) - before)
                    runs = rtsp_service.runs
                    key = f"{stream_id}-round-{r}"
                    rtsp_rounds.append(
                        await asyncio.gather(*(rtsp_snapshot(rtsp_service, key, read_url) for _ in sessions))
                    )
                    rtsp_runs.append(rtsp_service.runs - runs)
            finally:
                for client in sessions:
                    await client.close()
    finally:
        await rtsp_service.close()
    # The RTSP-way decodes of the window run in this process, not the agent's: not in these figures.
    decode_cpu = (cpu_after[1] - cpu_before[1]) / len(tap)
    agent_extra = max(0.0, (cpu_after[0] - cpu_before[0]) - idle_rate * window_s) / len(tap)
    cpu_per_snapshot = decode_cpu + agent_extra
    flat_tap = [x for rs in tap_rounds for x in rs]
    flat_rtsp = [x for rs in rtsp_rounds for x in rs]
    return {
        "stream": stream_id + (" substream" if substream else ""),
        "size": tap[0]["size"],
        "tap": {
            "fresh_one_client": {
                **ms([x["latency_s"] for x in tap]),
                "decodes_per_request": decodes,
                "sources": sorted({str(x["source"]) for x in tap}),
                "picture_age_ms": {
                    "p50": percentile([x["age_ms"] for x in tap], 50),
                    "p95": percentile([x["age_ms"] for x in tap], 95),
                    "max": max(x["age_ms"] for x in tap),
                    "values": [x["age_ms"] for x in tap],
                },
                "values_ms": [round(x["latency_s"] * 1000, 1) for x in tap],
            },
            "fresh_10_clients": {
                **ms([x["latency_s"] for x in flat_tap]),
                "decodes_per_round": round_decodes,
                "picture_age_ms_max": max(x["age_ms"] for x in flat_tap),
            },
            "decode_ffmpeg_cpu_ms_per_snapshot": round(decode_cpu * 1000, 1),
            "agent_python_cpu_ms_per_snapshot_above_idle": round(agent_extra * 1000, 1),
            "agent_idle_cpu_percent": round(idle_rate * 100, 2),
            "agent_cpu_ms_per_snapshot": round(cpu_per_snapshot * 1000, 1),
            "agent_cpu_s_per_hour_at_one_card": round(cpu_per_snapshot * HA_REQUESTS_PER_HOUR, 2),
        },
        "rtsp": {
            "fresh_one_client": ms([x["latency_s"] for x in rtsp]),
            "fresh_10_clients": {**ms([x["latency_s"] for x in flat_rtsp]), "decodes_per_round": rtsp_runs},
        },
    }


async def run(args: argparse.Namespace, agent: StreamAgent, watcher: ChildWatcher) -> list[dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(headers=agent.headers, timeout=timeout) as session:
        for stream_id in STREAMS:
            await wait_status(session, agent, stream_id, {"running"}, 60)
            await wait_readable(agent.read_url(stream_id))
    results = []
    for stream_id, substream in (("s480", False), ("s1080", False), ("s480", True)):
        print(f"-- {stream_id}{' substream' if substream else ''}", flush=True)
        results.append(await measure_stream(args, agent, watcher, stream_id, substream=substream))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fresh", type=int, default=20, help="fresh tap snapshots per stream (default 20)")
    parser.add_argument("--rtsp-fresh", type=int, default=10, help="fresh RTSP-way snapshots (default 10)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of 10 concurrent clients (default 6)")
    parser.add_argument("--seed", type=int, default=12, help="seed of the random pauses")
    parser.add_argument("--idle-s", type=float, default=10.0, help="idle window for the agent's base CPU")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    started = time.monotonic()
    load_before = load_average()
    with workdir("pi-stream-bench-snaptap-") as tmp, rtsp_server(tmp) as server:
        spec = StreamAgentSpec(streams=list(STREAMS.values()), simulate=True)
        with stream_agent(spec, server, Path(tmp) / "agent") as agent, ChildWatcher(agent.pid) as watcher:
            streams = asyncio.run(run(args, agent, watcher))
    results = {
        "command": "python3 -m bench.snapshot_tap " + " ".join(argv if argv is not None else sys.argv[1:]),
        "agent": "subprocess: /usr/bin/python3 -m pi_stream_agent run --simulate (two test streams)",
        "streams": STREAMS,
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_before_after": [load_before, load_average()],
        "results": streams,
    }
    print("== snapshot latency: key-frame tap (API) vs RTSP session (same code, in process)")
    for r in streams:
        t1, t10 = r["tap"]["fresh_one_client"], r["tap"]["fresh_10_clients"]
        r1, r10 = r["rtsp"]["fresh_one_client"], r["rtsp"]["fresh_10_clients"]
        print(f"  {r['stream']} {r['size']}:")
        print(
            f"    tap   1 client  p50 {t1['p50_ms']:7.1f} ms p95 {t1['p95_ms']:7.1f} ms  "
            f"age p50 {t1['picture_age_ms']['p50']} ms max {t1['picture_age_ms']['max']} ms  "
            f"decodes {t1['decodes_per_request']}"
        )
        print(
            f"    tap  10 clients p50 {t10['p50_ms']:7.1f} ms p95 {t10['p95_ms']:7.1f} ms  "
            f"decodes per round {t10['decodes_per_round']}"
        )
        print(f"    rtsp  1 client  p50 {r1['p50_ms']:7.1f} ms p95 {r1['p95_ms']:7.1f} ms")
        print(
            f"    rtsp 10 clients p50 {r10['p50_ms']:7.1f} ms p95 {r10['p95_ms']:7.1f} ms  "
            f"decodes per round {r10['decodes_per_round']}"
        )
        print(
            f"    agent CPU per tap snapshot {r['tap']['agent_cpu_ms_per_snapshot']} ms "
            f"→ {r['tap']['agent_cpu_s_per_hour_at_one_card']} s per hour at one still every 10 s"
        )
    print(f"  ({results['elapsed_s']} s)")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
