"""Snapshot latency through the API (``GET /api/v1/streams/cam1/snapshot``): fresh and cached, 1 and 10
clients.

The agent (``/usr/bin/python3 -m pi_stream_agent run --simulate``, a subprocess) publishes one test
pattern (640x480, 15 fps, key frame every 1 s) into the patched rtsp-server-perl over UDP. A snapshot is
one ffmpeg run that reads the published stream back and encodes its next key frame as JPEG; results are
cached for 2 s and concurrent requests share one run (``pi_stream_agent/streams/snapshot.py``).

* **fresh, one client**: each request comes after the 2 s cache has expired (plus a random 0-1 s, so it
  lands at a random point of the key-frame interval);
* **fresh, 10 concurrent clients**: 10 clients, each with its own HTTP connection, ask at the same instant
  once the cache has expired; every client's latency counts;
* **cached**: a request right after a fresh one (served from the cache).

Decodes are counted from the outside: a thread lists the agent's child processes every 10 ms and counts
the ffmpeg runs with ``-skip_frame`` in their argv (a snapshot run lasts ≥ 0.3 s, so none is missed).

    /usr/bin/python3 -m bench.streams_snapshot [--fresh 10] [--rounds 6] [--cached 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import add_json_argument, percentile, write_json
from bench.streams_common import (
    STREAM_SIZE,
    ChildWatcher,
    StreamAgent,
    StreamAgentSpec,
    is_snapshot_ffmpeg,
    load_average,
    rtsp_server,
    stream_agent,
    test_stream,
    wait_readable,
    wait_status,
    workdir,
)

STREAM = "cam1"
CACHE_S = 2.0  # SnapshotService's default max_age_s
CLIENTS = 10


async def get_snapshot(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    started = time.monotonic()
    async with session.get(url) as response:
        body = await response.read()
        ended = time.monotonic()
        if response.status != 200 or body[:2] != b"\xff\xd8":
            raise RuntimeError(f"snapshot: HTTP {response.status} {body[:300]!r}")
        taken_at = float(response.headers["X-Snapshot-Taken-At"])
        return {
            "latency_s": ended - started,
            "bytes": len(body),
            "size": response.headers["X-Snapshot-Size"],
            "age_at_response_s": time.time() - taken_at,
            "ended": ended,
        }


def ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
    }


async def run(args: argparse.Namespace, agent: StreamAgent, watcher: ChildWatcher) -> dict[str, Any]:
    rng = random.Random(args.seed)
    url = f"{agent.api}/streams/{STREAM}/snapshot"
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(headers=agent.headers, timeout=timeout) as session:
        await wait_status(session, agent, STREAM, {"running"}, 30)
        await wait_readable(agent.read_url(STREAM))
        last_end = time.monotonic() - CACHE_S

        async def after_expiry() -> None:
            await asyncio.sleep(
                max(0.0, last_end + CACHE_S + 0.05 - time.monotonic()) + rng.uniform(0.0, 1.0)
            )

        fresh: list[dict[str, Any]] = []
        fresh_decodes: list[int] = []
        cached: list[dict[str, Any]] = []
        for _ in range(args.fresh):
            await after_expiry()
            before = watcher.count(is_snapshot_ffmpeg)
            result = await get_snapshot(session, url)
            last_end = result["ended"]
            # Cached answers right behind the fresh one, well inside its 2 s.
            while len(cached) < args.cached * (len(fresh) + 1) // args.fresh:
                cached.append(await get_snapshot(session, url))
            await asyncio.sleep(0.05)  # the watcher's next pass
            fresh_decodes.append(watcher.count(is_snapshot_ffmpeg) - before)
            fresh.append(result)

        sessions = [aiohttp.ClientSession(headers=agent.headers, timeout=timeout) for _ in range(CLIENTS)]
        concurrent: list[list[dict[str, Any]]] = []
        round_decodes: list[int] = []
        try:
            for client in sessions:  # connections open before timing starts
                async with client.get(f"{agent.api}/streams") as response:
                    await response.read()
            for _ in range(args.rounds):
                await after_expiry()
                before = watcher.count(is_snapshot_ffmpeg)
                results = await asyncio.gather(*(get_snapshot(client, url) for client in sessions))
                last_end = max(r["ended"] for r in results)
                await asyncio.sleep(0.05)
                round_decodes.append(watcher.count(is_snapshot_ffmpeg) - before)
                concurrent.append(results)
        finally:
            for client in sessions:
                await client.close()

    flat = [r for results in concurrent for r in results]
    return {
        "fresh_one_client": {
            **ms([r["latency_s"] for r in fresh]),
            "decodes_per_request": fresh_decodes,
            "jpeg_bytes_median": sorted(r["bytes"] for r in fresh)[len(fresh) // 2],
            "size": fresh[0]["size"],
            "values_ms": [round(r["latency_s"] * 1000, 1) for r in fresh],
        },
        "fresh_10_clients": {
            **ms([r["latency_s"] for r in flat]),
            "slowest_client_per_round_ms": [
                round(max(r["latency_s"] for r in rs) * 1000, 1) for rs in concurrent
            ],
            "decodes_per_round": round_decodes,
            "requests": len(flat),
        },
        "cached": {
            **ms([r["latency_s"] for r in cached]),
            "age_at_response_s_max": round(max(r["age_at_response_s"] for r in cached), 3),
        },
        "snapshot_runs_total": watcher.count(is_snapshot_ffmpeg),
        "requests_total": len(fresh) + len(flat) + len(cached),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fresh", type=int, default=10, help="fresh snapshots, one client (default 10)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of 10 concurrent clients (default 6)")
    parser.add_argument("--cached", type=int, default=20, help="cached snapshots (default 20)")
    parser.add_argument("--seed", type=int, default=4, help="seed of the random pauses")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    started = time.monotonic()
    load_before = load_average()
    with workdir("pi-stream-bench-snapshot-") as tmp, rtsp_server(tmp) as server:
        spec = StreamAgentSpec(streams=[test_stream(STREAM)], simulate=True)
        with stream_agent(spec, server, Path(tmp) / "agent") as agent, ChildWatcher(agent.pid) as watcher:
            results = asyncio.run(run(args, agent, watcher))
    results = {
        "command": "python3 -m bench.streams_snapshot "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "agent": "subprocess: /usr/bin/python3 -m pi_stream_agent run --simulate (one test stream)",
        "stream": STREAM_SIZE,
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_before_after": [load_before, load_average()],
        **results,
    }
    one, many, hit = results["fresh_one_client"], results["fresh_10_clients"], results["cached"]
    print("== snapshot latency through the API")
    print(
        f"  fresh, 1 client:    p50 {one['p50_ms']:7.1f} ms  p95 {one['p95_ms']:7.1f} ms  "
        f"max {one['max_ms']:7.1f} ms  "
        f"(n={one['n']}; decodes per request {one['decodes_per_request']})"
    )
    print(
        f"  fresh, 10 clients:  p50 {many['p50_ms']:7.1f} ms  p95 {many['p95_ms']:7.1f} ms  "
        f"max {many['max_ms']:7.1f} ms  "
        f"(n={many['n']}; decodes per round {many['decodes_per_round']})"
    )
    print(f"  cached:             p50 {hit['p50_ms']:7.1f} ms  p95 {hit['p95_ms']:7.1f} ms  (n={hit['n']})")
    print(f"  ffmpeg snapshot runs {results['snapshot_runs_total']} for {results['requests_total']} requests")
    print(f"  ({results['elapsed_s']} s)")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
