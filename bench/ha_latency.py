"""Latency from an agent event to the Home Assistant entity's state: under-voltage edges and stream failures.

One real Home Assistant 2025.4.4 with one simulated Pi (two small test-pattern streams, one with a substream,
agent at its default telemetry settings) added through the config flow (see bench/ha_common.py). Then:

* **Under-voltage**: ``--sags`` times, ``POST /api/v1/simulation/under_voltage {"duration_s": …}``; the
  simulated Pi's hwmon alarm, kernel log and throttle bits change as on a real Pi, and the agent pushes an
  ``under_voltage`` event on each edge (and a ``throttle_changed`` one when its flag check sees the firmware's
  bit 0 move). Measured per edge (start and end): the timestamp of the agent event that moved the binary
  sensor → Home Assistant's ``time_fired`` of its state change. The sensor is on while either witness says
  so, so that is the first "on" event of the sag, and the last "off" one.
* **Stream failure**: ``--kills`` times, alternating between the two streams, SIGKILL of the stream's
  publisher (ffmpeg) once the stream runs and Home Assistant shows it running. Measured: the agent's
  ``stream_state`` event (running → backoff) → the stream-state sensor's and the problem binary sensor's
  state change in Home Assistant; and the recovery edge (→ running) the same way.

Also reported, for context: from the request (or the kill) to Home Assistant's state, which adds the
agent's own detection time, and to our WebSocket client's receipt of the state change.

    .venv/bin/python -m bench.ha_latency [--sags 20] [--kills 10] [--json bench/results/ha_latency.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from typing import Any

import aiohttp

from bench.common import add_json_argument, summarize, write_json
from bench.ha_common import (
    AgentEvent,
    AgentEventLog,
    BenchAgent,
    HomeAssistantProcess,
    StateChange,
    home_assistant,
    load_average,
    workdir,
)


async def wait_change(
    ha: HomeAssistantProcess, entity_id: str, after: float, new: str | None = None, timeout_s: float = 30.0
) -> StateChange:
    """The first state change of ``entity_id`` received after ``after`` (to ``new``, if given)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for change in ha.changes:
            if (
                change.entity_id == entity_id
                and change.received >= after
                and change.old != change.new
                and (new is None or change.new == new)
            ):
                return change
        await asyncio.sleep(0.005)
    raise TimeoutError(f"no state change of {entity_id}" + (f" to {new}" if new else ""))


def ms(values: list[float]) -> dict[str, Any]:
    summary = summarize([v * 1000 for v in values])
    return {"unit": "ms", **summary.to_json()}


def show(label: str, values: list[float]) -> None:
    s = summarize([v * 1000 for v in values])
    print(f"  {label:<58} p50 {s.median:7.1f} ms  p95 {s.p95:7.1f} ms  max {s.max:7.1f} ms  (n={s.n})")


def under_voltage_witness(event: AgentEvent) -> bool | None:
    """What an agent event says about under-voltage now: the hwmon or kernel-log edge, or firmware bit 0."""
    if event.type == "under_voltage":
        return bool(event.data.get("active"))
    if event.type == "throttle_changed" and "under_voltage" in (event.data.get("changed") or []):
        return bool((event.data.get("flags") or {}).get("under_voltage"))
    return None


def causing_event(events: AgentEventLog, after: float, fired: float, active: bool) -> AgentEvent:
    """The agent event that moved the binary sensor. It is on while either witness says so (the integration's
    rule), so the first witness to say "on" turns it on, and the last to say "off" turns it off."""
    candidates = [
        e
        for e in events.events
        if e.received >= after and under_voltage_witness(e) is active and e.timestamp <= fired
    ]
    if not candidates:
        raise RuntimeError(f"no agent event explains the change to {'on' if active else 'off'} at {fired}")
    return (
        min(candidates, key=lambda e: e.timestamp) if active else max(candidates, key=lambda e: e.timestamp)
    )


async def ha_state(ha: HomeAssistantProcess, session: aiohttp.ClientSession, entity_id: str) -> str:
    return str((await ha.rest(session, "GET", f"/api/states/{entity_id}"))["state"])


async def under_voltage(
    session: aiohttp.ClientSession,
    ha: HomeAssistantProcess,
    agent: BenchAgent,
    events: AgentEventLog,
    entity_id: str,
    sags: int,
    sag_s: float,
    gap_s: float,
) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {
        "agent_event_to_ha": [],
        "request_to_ha": [],
        "agent_event_to_client": [],
    }
    for number in range(sags):
        # Not while a spontaneous sag of the simulation is going on.
        deadline = time.monotonic() + 30
        while await ha_state(ha, session, entity_id) != "off" and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        requested = time.time()
        await agent.request(session, "POST", "/simulation/under_voltage", {"duration_s": sag_s})
        for active, new in ((True, "on"), (False, "off")):
            change = await wait_change(ha, entity_id, requested, new)
            await asyncio.sleep(0.05)  # the agent's events arrive at our client too
            event = causing_event(events, requested, change.fired, active)
            series["agent_event_to_ha"].append(change.fired - event.timestamp)
            series["agent_event_to_client"].append(change.received - event.timestamp)
            if active:
                series["request_to_ha"].append(change.fired - requested)
        print(f"    sag {number + 1}/{sags}: {series['agent_event_to_ha'][-2] * 1000:.1f} ms on, "
              f"{series['agent_event_to_ha'][-1] * 1000:.1f} ms off")  # fmt: skip
        await asyncio.sleep(gap_s)
    return series


async def stream_failures(
    session: aiohttp.ClientSession,
    ha: HomeAssistantProcess,
    agent: BenchAgent,
    events: AgentEventLog,
    entities: dict[str, str],
    agent_id: str,
    kills: int,
) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {
        "failure_agent_event_to_ha_state": [],
        "failure_agent_event_to_ha_problem": [],
        "failure_kill_to_ha_state": [],
        "recovery_agent_event_to_ha_state": [],
    }
    stream_ids = [s["id"] for s in (agent.streams or [])]
    for number in range(kills):
        stream_id = stream_ids[number % len(stream_ids)]
        state_entity = entities[f"{agent_id}_{stream_id}_state"]
        problem_entity = entities[f"{agent_id}_{stream_id}_problem"]
        deadline = time.monotonic() + 90
        while True:
            status = await agent.request(session, "GET", f"/streams/{stream_id}")
            if (
                status["state"] == "running"
                and status.get("pids", {}).get("ffmpeg")
                and await ha_state(ha, session, state_entity) == "running"
                and await ha_state(ha, session, problem_entity) == "off"
            ):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stream_id} did not run again: {status['state']}")
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        killed = time.time()
        os.kill(int(status["pids"]["ffmpeg"]), signal.SIGKILL)
        failed = await events.wait_for(
            lambda e, s=stream_id: e.type == "stream_state" and e.data.get("stream_id") == s
            and e.data.get("state") != "running",
            killed, 30,
        )  # fmt: skip
        state_change = await wait_change(ha, state_entity, killed)
        problem_change = await wait_change(ha, problem_entity, killed, "on")
        series["failure_agent_event_to_ha_state"].append(state_change.fired - failed.timestamp)
        series["failure_agent_event_to_ha_problem"].append(problem_change.fired - failed.timestamp)
        series["failure_kill_to_ha_state"].append(state_change.fired - killed)
        recovered = await events.wait_for(
            lambda e, s=stream_id: e.type == "stream_state" and e.data.get("stream_id") == s
            and e.data.get("state") == "running",
            killed, 90,
        )  # fmt: skip
        back = await wait_change(ha, state_entity, recovered.received - 1, "running", timeout_s=90)
        series["recovery_agent_event_to_ha_state"].append(back.fired - recovered.timestamp)
        print(f"    kill {number + 1}/{kills} ({stream_id}, → {failed.data.get('state')}): "
              f"{series['failure_agent_event_to_ha_state'][-1] * 1000:.1f} ms to the state sensor, "
              f"recovery {series['recovery_agent_event_to_ha_state'][-1] * 1000:.1f} ms")  # fmt: skip
    return series


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with workdir("pi-stream-ha-latency-", keep=args.keep) as path:
        agent = BenchAgent(path / "agent", "Bench Pi")
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
                agent_id = (await agent.request(session, "GET", "/info"))["agent_id"]
                entities = await ha.entities(session, entry_id)
                print(f"Home Assistant up (pid {ha.pid}), Pi added: {len(entities)} entities; settling "
                      f"{args.settle:.0f} s")  # fmt: skip
                await asyncio.sleep(args.settle)
                load_before = load_average()
                print(f"  under-voltage: {args.sags} sags of {args.sag_s} s")
                uv = await under_voltage(
                    session, ha, agent, events, entities[f"{agent_id}_under_voltage"],
                    args.sags, args.sag_s, args.gap_s,
                )  # fmt: skip
                print(f"  stream failures: {args.kills} SIGKILLs of a publisher")
                streams = await stream_failures(session, ha, agent, events, entities, agent_id, args.kills)
                load_after = load_average()
                await events.stop()
        finally:
            agent.stop()
    print("\nResults (agent event timestamp → Home Assistant's time_fired of the state change):")
    show("under-voltage edge → binary sensor", uv["agent_event_to_ha"])
    show("  (request to the simulated Pi → binary sensor on)", uv["request_to_ha"])
    show("  (agent event → our WebSocket client got the change)", uv["agent_event_to_client"])
    show("stream failure → stream state sensor", streams["failure_agent_event_to_ha_state"])
    show("stream failure → problem binary sensor", streams["failure_agent_event_to_ha_problem"])
    show("  (SIGKILL of the publisher → stream state sensor)", streams["failure_kill_to_ha_state"])
    show("stream recovery → stream state sensor", streams["recovery_agent_event_to_ha_state"])
    print(f"load average before/after: {load_before} / {load_after}")
    return {
        "settings": {"sags": args.sags, "sag_s": args.sag_s, "gap_s": args.gap_s, "kills": args.kills,
                     "settle_s": args.settle, "agent_telemetry": "defaults (5 s samples, 2 s flag checks)",
                     "streams": "two 320x240 test patterns at 10 fps, one with a 160x120 substream"},
        "under_voltage": {key: ms(values) for key, values in uv.items()},
        "stream_failure": {key: ms(values) for key, values in streams.items()},
        "raw_s": {"under_voltage": uv, "stream_failure": streams},
        "load_average_before_after": [load_before, load_after],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sags", type=int, default=20)
    parser.add_argument("--sag-s", type=float, default=1.0, help="length of each under-voltage episode")
    parser.add_argument("--gap-s", type=float, default=2.0, help="pause between episodes")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after set-up before measuring")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    add_json_argument(parser)
    args = parser.parse_args()
    write_json(args.json, asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
