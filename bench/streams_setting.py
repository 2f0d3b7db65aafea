"""Setting changed → new picture readable: ``PUT /streams/{id}/controls`` of a setting applied by a restart.

The real agent (``/usr/bin/python3 -m pi_stream_agent run --simulate``, a subprocess) publishes one
test-pattern stream (640x480, 15 fps, 1 Mbit/s, key frame every 1 s, libx264) to the patched
rtsp-server-perl over UDP. Each round, on a running stream that a reader has decoded, after a random 0-1 s
pause (a random point of the key-frame interval):

1. ``PUT /api/v1/streams/cam1/controls`` flips ``vflip`` (a setting read when the pipeline starts, as every
   CSI setting is: the same fast restart of main and substream);
2. the answer (checked, stored atomically, restart asked); from the agent's events: ``stream_controls``,
   ``starting`` (new publisher spawned), ``running``; from the server: the path published again;
3. new readers (``ffmpeg -i URL -frames:v 1 -f null -``), one after another, until one decodes a frame:
   the new picture is readable.

V4L2 controls are set live (one ``v4l2-ctl`` run, no restart) and are not measured here (no card).

    /usr/bin/python3 -m bench.streams_setting [--changes 20] [--json FILE]
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

from bench.common import add_json_argument, write_json
from bench.streams_common import (
    STREAM_SIZE,
    EventLog,
    StreamAgent,
    StreamAgentSpec,
    connected,
    event_is,
    line,
    load_average,
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
TARGET_S = 1.5


async def one_change(
    session: aiohttp.ClientSession, agent: StreamAgent, events: EventLog, *, flip: bool, rng: random.Random
) -> dict[str, Any]:
    url = agent.read_url(STREAM)
    await steady(session, agent, events, STREAM, reset=False, pause_s=rng.uniform(0.0, 1.0))
    asked = time.time()
    async with session.put(f"{agent.api}/streams/{STREAM}/controls", json={"vflip": flip}) as response:
        assert response.status == 200, await response.text()
        await response.read()
    answered = time.time()
    announced = await events.wait(event_is("stream_controls"), asked, 10)
    starting = await events.wait(state_is(STREAM, "starting"), asked, 30)
    published = await wait_published(url, 30)
    fast = await wait_readable(url, "fast", 30)
    running = await events.wait(state_is(STREAM, "running"), starting.at, 30)
    return {
        "change_to_answer_s": round(answered - asked, 3),
        "change_to_event_s": round(announced.at - asked, 3),
        "change_to_starting_s": round(starting.at - asked, 3),
        "change_to_published_s": round(published - asked, 3),
        "change_to_running_s": round(running.at - asked, 3),
        "change_to_readable_s": round(fast.ended - asked, 3),
        "reader_attempts": fast.attempts,
    }


KEYS = (
    ("change_to_answer_s", "PUT → answer (checked, stored)"),
    ("change_to_event_s", "PUT → stream_controls event"),
    ("change_to_starting_s", "PUT → starting (new publisher)"),
    ("change_to_published_s", "PUT → path published again"),
    ("change_to_running_s", "PUT → running"),
    ("change_to_readable_s", "PUT → new picture readable, fast reader"),
)


async def run(args: argparse.Namespace, agent: StreamAgent) -> dict[str, Any]:
    rng = random.Random(args.seed)
    async with connected(agent) as (session, events):
        await wait_status(session, agent, STREAM, {"running"}, 30)
        rounds = []
        for index in range(args.changes):
            rounds.append(await one_change(session, agent, events, flip=index % 2 == 0, rng=rng))
            r = rounds[-1]
            print(
                f"  change {index + 1:2}: answer {r['change_to_answer_s']:.3f}  starting "
                f"{r['change_to_starting_s']:.3f}  published {r['change_to_published_s']:.3f}  readable "
                f"{r['change_to_readable_s']:.3f} s",
                flush=True,
            )
    return {"rounds": rounds, "summary": {key: seconds([r[key] for r in rounds]) for key, _ in KEYS}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--changes", type=int, default=20, help="setting changes (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random pauses")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    started = time.monotonic()
    load_before = load_average()
    with workdir("pi-stream-bench-setting-") as tmp, rtsp_server(tmp) as server:
        spec = StreamAgentSpec(streams=[test_stream(STREAM)], simulate=True)
        with stream_agent(spec, server, Path(tmp) / "agent") as agent:
            results = asyncio.run(run(args, agent))
    results = {
        "command": "python3 -m bench.streams_setting " + " ".join(argv if argv is not None else sys.argv[1:]),
        "agent": "subprocess: /usr/bin/python3 -m pi_stream_agent run --simulate (one test stream)",
        "stream": STREAM_SIZE,
        "reader": " ".join(reader_argv("URL", "fast")),
        "target_s": TARGET_S,
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_before_after": [load_before, load_average()],
        **results,
    }
    print("== setting changed (restart) → new picture readable")
    for key, label in KEYS:
        print(line(label, [r[key] for r in results["rounds"]]))
    figures = results["summary"]["change_to_readable_s"]
    verdict = "PASS" if figures["p95"] < TARGET_S else "MISS"
    print(f"  target {TARGET_S} s: median {figures['median']} s, p95 {figures['p95']} s: {verdict}")
    print(f"  ({results['elapsed_s']} s)")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
