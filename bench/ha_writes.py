"""State writes per minute into Home Assistant for one simulated Pi with two streams, in steady state.

One real Home Assistant 2025.4.4 (recorder on) with one simulated Pi — two small test-pattern streams, one
with a substream — added through the config flow (see bench/ha_common.py); the agent at its default
telemetry settings (a sample pushed every 5 s; throttle flags checked every 2 s) unless ``--interval``
says otherwise. After ``--settle`` seconds, every ``state_changed`` of the entry's entities is counted for
``--minutes`` minutes: each one is a row the recorder writes. Reported per minute, per entity and per
platform; the agent's events in the window (the simulation's spontaneous under-voltage episodes, about one
every 4 minutes, and their throttle-flag edges) are counted alongside, since flags are written at once.

    .venv/bin/python -m bench.ha_writes [--minutes 5] [--interval 5] [--json bench/results/ha_writes.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from typing import Any

import aiohttp

from bench.common import add_json_argument, write_json
from bench.ha_common import AgentEventLog, BenchAgent, home_assistant, load_average, workdir

TARGET_PER_MINUTE = 30


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    telemetry = {} if args.interval is None else {"interval_s": args.interval}
    with workdir("pi-stream-ha-writes-", keep=args.keep) as path:
        agent = BenchAgent(path / "agent", "Bench Pi", telemetry=telemetry)
        agent.start()
        events = AgentEventLog()
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
                home_assistant(session, path / "ha") as ha,
            ):
                await ha.watch_states(session)
                await events.start(session, agent)
                entry_id = await ha.add_pi(session, agent)
                ours = set((await ha.entities(session, entry_id)).values())
                print(f"Home Assistant up (pid {ha.pid}), Pi added: {len(ours)} enabled entities; "
                      f"settling {args.settle:.0f} s, then counting for {args.minutes} min")  # fmt: skip
                await asyncio.sleep(args.settle)
                start = time.time()
                await asyncio.sleep(args.minutes * 60)
                end = time.time()
                load = load_average()
                changes = [c for c in ha.changes if c.entity_id in ours and start <= c.fired < end]
                others = [c for c in ha.changes if c.entity_id not in ours and start <= c.fired < end]
                window_events = [e for e in events.events if start <= e.timestamp < end]
                await events.stop()
        finally:
            agent.stop()
    minutes = (end - start) / 60
    by_entity = collections.Counter(c.entity_id for c in changes)
    by_platform = collections.Counter(c.entity_id.split(".", 1)[0] for c in changes)
    event_types = collections.Counter(e.type for e in window_events)
    sags = sum(1 for e in window_events if e.type == "under_voltage" and e.data.get("active"))
    per_minute = len(changes) / minutes
    print(f"\n{len(changes)} state writes of pi_stream entities in {minutes:.1f} min: "
          f"{per_minute:.1f} per minute (target ≤ {TARGET_PER_MINUTE})")  # fmt: skip
    print(f"agent events in the window: {dict(event_types)} ({sags} under-voltage episode(s))")
    print("by platform: " + ", ".join(f"{k} {v}" for k, v in by_platform.most_common()))
    print("by entity (writes in the window):")
    for entity_id, count in by_entity.most_common():
        print(f"  {count:4d}  {count / minutes:5.1f}/min  {entity_id}")
    silent = sorted(ours - set(by_entity))
    print(f"{len(silent)} of {len(ours)} entities wrote nothing in the window")
    print(f"other entities' writes (not pi_stream): {len(others)}; load average {load}")
    return {
        "settings": {"minutes": args.minutes, "settle_s": args.settle,
                     "agent_telemetry": telemetry or "defaults (5 s samples, 2 s flag checks)",
                     "streams": "two 320x240 test patterns at 10 fps, one with a 160x120 substream"},
        "writes": len(changes),
        "window_minutes": round(minutes, 3),
        "per_minute": round(per_minute, 2),
        "target_per_minute": TARGET_PER_MINUTE,
        "entities_enabled": len(ours),
        "entities_silent": len(silent),
        "by_platform": dict(by_platform),
        "by_entity": dict(by_entity.most_common()),
        "agent_events": dict(event_types),
        "under_voltage_episodes": sags,
        "load_average": load,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds after set-up before counting")
    parser.add_argument("--interval", type=float, default=None, help="agent telemetry interval (default 5 s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    add_json_argument(parser)
    args = parser.parse_args()
    write_json(args.json, asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
