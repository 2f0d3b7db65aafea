"""Freeze → detection: ``SIGSTOP`` of a running publisher, until the agent calls it ``stalled`` and until a
new reader decodes a frame of its replacement.

A frozen publisher keeps its RTSP connection open: the server keeps the path, readers connect and get
nothing, and no exit status ever comes. Only the missing ``-progress`` reports show it. Same agent and
stream as ``streams_kill`` (``/usr/bin/python3 -m pi_stream_agent run --simulate`` as a subprocess; one
640x480 15 fps test pattern, key frame every 1 s, into the patched rtsp-server-perl over UDP). Each round:

1. the publisher runs and a reader has decoded a frame; a random 0-1 s pause puts the freeze at a random
   point of ffmpeg's once-a-second progress report;
2. ``kill -STOP`` of the publisher's ffmpeg;
3. the agent's events: ``stream_state`` ``stalled`` (detected), ``stream_exit`` (the frozen process is
   gone: the agent sends SIGTERM + SIGCONT), ``starting``, ``running``; the path published again (RTSP
   DESCRIBE every 20 ms) and a new reader (``-probesize 32``, see ``streams_common.READERS``) decoding a
   frame.

Every round after the first starts with ``POST /streams/cam1/restart`` (resets the backoff, as 30 s of
stable running would). A frozen process left over by an error is continued (SIGCONT, by pid) at the end.

    /usr/bin/python3 -m bench.streams_freeze [--freezes 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
    STREAM_SIZE,
    EventLog,
    StreamAgent,
    StreamAgentSpec,
    connected,
    exit_of,
    line,
    load_average,
    process_state,
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
TARGET_S = 5.0

KEYS = (
    ("freeze_to_stalled_s", "freeze → stalled (detected)"),
    ("freeze_to_exit_event_s", "freeze → stream_exit (old one gone)"),
    ("freeze_to_starting_s", "freeze → starting (respawn)"),
    ("freeze_to_published_s", "freeze → path published again"),
    ("freeze_to_readable_s", "freeze → readable, fast reader"),
    ("freeze_to_running_s", "freeze → running"),
    ("stalled_to_exit_s", "stalled → old publisher gone"),
    ("stalled_to_readable_s", "stalled → readable"),
)


async def one_freeze(
    session: aiohttp.ClientSession,
    agent: StreamAgent,
    events: EventLog,
    *,
    reset: bool,
    rng: random.Random,
    frozen: list[int],
) -> dict[str, Any]:
    url = agent.read_url(STREAM)
    pid = await steady(session, agent, events, STREAM, reset=reset, pause_s=rng.uniform(0.0, 1.0))
    frozen_at = time.time()
    os.kill(pid, signal.SIGSTOP)
    frozen.append(pid)
    stalled = await events.wait(state_is(STREAM, "stalled"), frozen_at, 20)
    exited = await events.wait(exit_of(STREAM), stalled.at, 20)
    starting = await events.wait(state_is(STREAM, "starting"), exited.at, 30)
    published = await wait_published(url, 30)
    readable = await wait_readable(url, "fast", 30)
    running = await events.wait(state_is(STREAM, "running"), starting.at, 30)
    return {
        "pid": pid,
        "message": stalled.data.get("message"),
        "exit_cause": exited.data.get("cause"),
        "freeze_to_stalled_s": round(stalled.at - frozen_at, 3),
        "freeze_to_exit_event_s": round(exited.at - frozen_at, 3),
        "freeze_to_starting_s": round(starting.at - frozen_at, 3),
        "freeze_to_published_s": round(published - frozen_at, 3),
        "freeze_to_readable_s": round(readable.ended - frozen_at, 3),
        "freeze_to_running_s": round(running.at - frozen_at, 3),
        "stalled_to_exit_s": round(exited.at - stalled.at, 3),
        "stalled_to_readable_s": round(readable.ended - stalled.at, 3),
        "old_pid_state_after": process_state(pid),
    }


async def run(args: argparse.Namespace, agent: StreamAgent) -> dict[str, Any]:
    rng = random.Random(args.seed)
    frozen: list[int] = []
    try:
        async with connected(agent) as (session, events):
            await wait_status(session, agent, STREAM, {"running"}, 30)
            rounds = []
            for index in range(args.freezes):
                rounds.append(
                    await one_freeze(session, agent, events, reset=index > 0, rng=rng, frozen=frozen)
                )
                r = rounds[-1]
                print(
                    f"  freeze {index + 1:2}: stalled {r['freeze_to_stalled_s']:.3f}  gone "
                    f"{r['freeze_to_exit_event_s']:.3f}  starting {r['freeze_to_starting_s']:.3f}  readable "
                    f"{r['freeze_to_readable_s']:.3f}  running {r['freeze_to_running_s']:.3f} s  "
                    f"({r['message']})",
                    flush=True,
                )
    finally:
        for pid in frozen:  # the agent should have ended them; never leave a stopped process behind
            if process_state(pid) == "T":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
    summary = {key: seconds([r[key] for r in rounds]) for key, _ in KEYS}
    return {"rounds": rounds, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--freezes", type=int, default=10, help="SIGSTOPs, each after a backoff reset (default 10)"
    )
    parser.add_argument("--seed", type=int, default=2, help="seed of the random pauses")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    started = time.monotonic()
    load_before = load_average()
    with workdir("pi-stream-bench-freeze-") as tmp, rtsp_server(tmp) as server:
        spec = StreamAgentSpec(streams=[test_stream(STREAM)], simulate=True)
        with stream_agent(spec, server, Path(tmp) / "agent") as agent:
            results = asyncio.run(run(args, agent))
    results = {
        "command": "python3 -m bench.streams_freeze " + " ".join(argv if argv is not None else sys.argv[1:]),
        "agent": "subprocess: /usr/bin/python3 -m pi_stream_agent run --simulate (one test stream)",
        "stream": STREAM_SIZE,
        "supervisor": {"stall_timeout_s": 3.0, "progress_period_s": 1.0, "watch_tick_s": 1.0},
        "target_s": TARGET_S,
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_before_after": [load_before, load_average()],
        **results,
    }
    print("== SIGSTOP of the publisher → stalled → readable again (backoff reset before each freeze)")
    for key, label in KEYS:
        print(line(label, [r[key] for r in results["rounds"]]))
    figures = results["summary"]["freeze_to_stalled_s"]
    verdict = "PASS" if figures["worst"] < TARGET_S else "MISS"
    print(f"  target: stalled within {TARGET_S} s — worst {figures['worst']} s: {verdict}")
    print(f"  ({results['elapsed_s']} s)")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
