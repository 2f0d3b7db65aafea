"""Kill → readable again: ``kill -9`` of a running publisher, until a new RTSP reader decodes a frame.

The real agent (``/usr/bin/python3 -m pi_stream_agent run --simulate``, a subprocess) publishes one
test-pattern stream (640x480, 15 fps, 1 Mbit/s, key frame every 1 s, libx264) to the patched
rtsp-server-perl over UDP. Each round:

1. the publisher runs (state ``running``) and a reader has decoded a frame; a random 0-1 s pause puts the
   kill at a random point of the key-frame interval;
2. ``kill -9`` of the publisher's ffmpeg (its pid from ``GET /streams/cam1``);
3. from the agent's events (stamped by the agent with ``time.time()``): ``stream_exit`` (the agent
   noticed), ``stream_state`` ``starting`` (the new publisher is being spawned), ``running`` (the
   supervisor saw its first ``-progress`` report); from the server: the path is published again (RTSP
   DESCRIBE polled every 20 ms); then new readers (``ffmpeg -i URL -frames:v 1 -f null -``), one after
   another, until one decodes a frame.

The backoff grows with consecutive failures and resets only after 30 s of stable running. To measure the
case the target is about (a one-off kill of a stream that was working) in less than 20 × 30 s, every
round after the first starts with ``POST /streams/cam1/restart``, which resets the backoff as a stable
run would. ``--consecutive N`` then adds N kills in a row *without* that reset, to show the backoff
growing (0.25, 0.5, 1, 2 s …).

Also measured: a reader's own time on a healthy stream (``--baseline`` runs), the floor under every
"readable" figure.

    /usr/bin/python3 -m bench.streams_kill [--kills 20] [--consecutive 3] [--baseline 6] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import add_json_argument, write_json
from bench.streams_common import (
    READERS,
    STREAM_SIZE,
    EventLog,
    StreamAgent,
    StreamAgentSpec,
    command,
    connected,
    exit_of,
    line,
    load_average,
    read_one_frame,
    reader_argv,
    rtsp_server,
    seconds,
    state_is,
    steady,
    stream_agent,
    test_stream,
    wait_published,
    wait_readable,
    wait_status,
    workdir,
)

STREAM = "cam1"
TARGET_S = 2.0


async def one_kill(
    session: aiohttp.ClientSession, agent: StreamAgent, events: EventLog, *, reset: bool, rng: random.Random
) -> dict[str, Any]:
    url = agent.read_url(STREAM)
    pid = await steady(session, agent, events, STREAM, reset=reset, pause_s=rng.uniform(0.0, 1.0))
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    exited = await events.wait(exit_of(STREAM), killed_at, 10)
    starting = await events.wait(state_is(STREAM, "starting"), exited.at, 60)
    published = await wait_published(url, 30)
    fast, default = await asyncio.gather(wait_readable(url, "fast", 30), wait_readable(url, "default", 30))
    running = await events.wait(state_is(STREAM, "running"), starting.at, 30)
    backoff = events.find(state_is(STREAM, "backoff"), exited.at)
    return {
        "pid": pid,
        "killed_at": round(killed_at, 3),
        "cause": exited.data.get("cause"),
        "signal": exited.data.get("signal"),
        "backoff_delay_s": round(starting.at - backoff.at, 3) if backoff else None,
        "kill_to_exit_event_s": round(exited.at - killed_at, 3),
        "kill_to_starting_s": round(starting.at - killed_at, 3),
        "kill_to_published_s": round(published - killed_at, 3),
        "kill_to_running_s": round(running.at - killed_at, 3),
        "kill_to_readable_s": round(fast.ended - killed_at, 3),
        "kill_to_readable_default_reader_s": round(default.ended - killed_at, 3),
        "reader_attempts": {"fast": fast.attempts, "default": default.attempts},
        "restart_count": running.data.get("restart_count"),
    }


KEYS = (
    ("kill_to_exit_event_s", "kill → stream_exit event (noticed)"),
    ("kill_to_starting_s", "kill → starting (respawn)"),
    ("kill_to_published_s", "kill → path published again"),
    ("kill_to_running_s", "kill → running (first progress seen)"),
    ("kill_to_readable_s", "kill → readable, fast reader"),
    ("kill_to_readable_default_reader_s", "kill → readable, default reader"),
    ("backoff_delay_s", "backoff delay (backoff → starting)"),
)


def summary_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {key: seconds([r[key] for r in rounds if r[key] is not None]) for key, _ in KEYS}
    result["exit_to_starting_s"] = seconds(
        [r["kill_to_starting_s"] - r["kill_to_exit_event_s"] for r in rounds]
    )
    result["starting_to_published_s"] = seconds(
        [r["kill_to_published_s"] - r["kill_to_starting_s"] for r in rounds]
    )
    result["published_to_readable_s"] = seconds(
        [r["kill_to_readable_s"] - r["kill_to_published_s"] for r in rounds]
    )
    return result


async def baseline(url: str, count: int, rng: random.Random) -> dict[str, list[float]]:
    """Both readers at once on the healthy stream, at random points of the key-frame interval."""
    found: dict[str, list[float]] = {"fast": [], "default": []}
    for _ in range(count):
        await asyncio.sleep(rng.uniform(0.1, 1.1))
        results = await asyncio.gather(*(read_one_frame(url, reader) for reader in found))
        for reader, result in zip(found, results, strict=True):
            if result.ok:
                found[reader].append(round(result.duration_s, 3))
    return found


async def run(args: argparse.Namespace, agent: StreamAgent) -> dict[str, Any]:
    rng = random.Random(args.seed)
    async with connected(agent) as (session, events):
        await wait_status(session, agent, STREAM, {"running"}, 30)
        url = agent.read_url(STREAM)
        await wait_readable(url)
        readers = await baseline(url, args.baseline, rng)
        rounds = []
        for index in range(args.kills):
            rounds.append(await one_kill(session, agent, events, reset=index > 0, rng=rng))
            r = rounds[-1]
            print(
                f"  kill {index + 1:2}: exit event {r['kill_to_exit_event_s']:.3f}  starting "
                f"{r['kill_to_starting_s']:.3f}  published {r['kill_to_published_s']:.3f}  running "
                f"{r['kill_to_running_s']:.3f}  readable {r['kill_to_readable_s']:.3f} "
                f"(default reader {r['kill_to_readable_default_reader_s']:.3f}) s",
                flush=True,
            )
        consecutive = []
        if args.consecutive:
            # A fresh backoff for the series, then kills in a row: the backoff is not reset between them.
            asked = time.time()
            await command(session, agent, STREAM, "restart")
            await events.wait(state_is(STREAM, "starting"), asked, 30)
            for index in range(args.consecutive):
                consecutive.append(await one_kill(session, agent, events, reset=False, rng=rng))
                r = consecutive[-1]
                print(
                    f"  in a row {index + 1}: backoff {r['backoff_delay_s']:.3f}  readable "
                    f"{r['kill_to_readable_s']:.3f} s",
                    flush=True,
                )
    return {
        "reader_baseline_s": {reader: seconds(values) for reader, values in readers.items()},
        "reader_baseline_values": readers,
        "rounds": rounds,
        "summary": summary_of(rounds),
        "consecutive": consecutive,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--kills", type=int, default=20, help="kills, each after a backoff reset (default 20)"
    )
    parser.add_argument("--consecutive", type=int, default=3, help="kills in a row without reset (default 3)")
    parser.add_argument("--baseline", type=int, default=6, help="reads of the healthy stream (default 6)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random pauses")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    started = time.monotonic()
    load_before = load_average()
    with workdir("pi-stream-bench-kill-") as tmp, rtsp_server(tmp) as server:
        spec = StreamAgentSpec(streams=[test_stream(STREAM)], simulate=True)
        with stream_agent(spec, server, Path(tmp) / "agent") as agent:
            results = asyncio.run(run(args, agent))
    results = {
        "command": "python3 -m bench.streams_kill " + " ".join(argv if argv is not None else sys.argv[1:]),
        "agent": "subprocess: /usr/bin/python3 -m pi_stream_agent run --simulate (one test stream)",
        "stream": STREAM_SIZE,
        "readers": {name: " ".join(reader_argv("URL", name)) for name in READERS},
        "target_s": TARGET_S,
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_before_after": [load_before, load_average()],
        **results,
    }
    s = results["summary"]
    print("== kill -9 of the publisher → readable again (backoff reset before each kill)")
    for reader, values in results["reader_baseline_values"].items():
        print(line(f"{reader} reader alone, healthy stream", values))
    for key, label in KEYS:
        print(line(label, [r[key] for r in results["rounds"] if r[key] is not None]))
    for key, reader in (("kill_to_readable_s", "fast"), ("kill_to_readable_default_reader_s", "default")):
        figures = s[key]
        verdict = (
            "PASS"
            if figures["worst"] < TARGET_S
            else ("PASS at p95" if figures["p95"] < TARGET_S else "MISS")
        )
        print(
            f"  target {TARGET_S} s, {reader} reader: p95 {figures['p95']} s, "
            f"worst {figures['worst']} s: {verdict}"
        )
    if results["consecutive"]:
        print(
            "== kills in a row (no reset): "
            + ", ".join(
                f"backoff {r['backoff_delay_s']} s → readable {r['kill_to_readable_s']} s"
                for r in results["consecutive"]
            )
        )
    print(f"  ({results['elapsed_s']} s)")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
