"""Home Assistant's CPU and memory per connected Pi: one Home Assistant, 0 → 10 → 20 simulated agents.

One real Home Assistant 2025.4.4 (recorder on; see bench/ha_common.py). First measured alone, after
``--settle`` seconds, over a ``--window``: CPU (utime + stime from /proc/<pid>/stat over the window) and
memory (VmRSS, sampled every 5 s; the mean is reported). Then simulated Pis are added — each its own agent
process on Debian's python3, on a free port with its own state dir, at the agent's default telemetry
settings (a sample pushed every 5 s) — through the config flow, up to each count in ``--steps``, and Home
Assistant is measured the same way after each step. **These agents run no streams** (``streams: []``):
twenty sets of ffmpeg publishers would not fit two cores, and a stream adds only a handful of entities,
which a Pi's 40-odd telemetry entities already outnumber. Per Pi = (with N − alone) / N.

    .venv/bin/python -m bench.ha_scale [--steps 10,20] [--window 60] [--json bench/results/ha_scale.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp

from bench.common import add_json_argument, cpu_seconds, memory, write_json
from bench.ha_common import BenchAgent, HomeAssistantProcess, home_assistant, load_average, workdir

RSS_PERIOD_S = 5.0


async def measure(ha: HomeAssistantProcess, agents: list[BenchAgent], window_s: float) -> dict[str, Any]:
    """CPU of Home Assistant (and of the agents, for context) over the window; its RSS sampled."""
    start_changes = len(ha.changes)
    cpu0, wall0 = cpu_seconds(ha.pid), time.monotonic()
    agents_cpu0 = sum(cpu_seconds(a.process.pid) for a in agents if a.process)
    started = time.time()
    rss: list[int] = []
    while time.monotonic() - wall0 < window_s:
        rss.append(memory(ha.pid).rss)
        await asyncio.sleep(min(RSS_PERIOD_S, max(0.0, window_s - (time.monotonic() - wall0))))
    wall = time.monotonic() - wall0
    cpu = cpu_seconds(ha.pid) - cpu0
    agents_cpu = sum(cpu_seconds(a.process.pid) for a in agents if a.process) - agents_cpu0
    window_changes = [c for c in ha.changes[start_changes:] if c.fired >= started]
    by_platform = collections.Counter(c.entity_id.split(".", 1)[0] for c in window_changes)
    return {
        "pis": len(agents),
        "window_s": round(wall, 1),
        "ha_cpu_percent": round(100 * cpu / wall, 3),  # of one core
        "ha_rss_mib_mean": round(statistics.fmean(rss) / 1024, 2),
        "ha_rss_mib_last": round(rss[-1] / 1024, 2),
        "agents_cpu_percent_total": round(100 * agents_cpu / wall, 3),
        "state_writes_per_minute": round(len(window_changes) / (wall / 60), 1),
        "state_writes_by_platform": dict(by_platform),
        "load_average": load_average(),
    }


def show(row: dict[str, Any]) -> None:
    print(f"  {row['pis']:2d} Pis: HA CPU {row['ha_cpu_percent']:6.2f} % of a core, "
          f"RSS {row['ha_rss_mib_mean']:7.1f} MiB (mean; last {row['ha_rss_mib_last']:.1f}), "
          f"{row['state_writes_per_minute']:.0f} state writes/min, "
          f"agents' CPU {row['agents_cpu_percent_total']:.1f} %, load {row['load_average'][0]}")  # fmt: skip


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    steps = sorted(int(n) for n in args.steps.split(","))
    rows: list[dict[str, Any]] = []
    entities_per_pi: list[int] = []
    with workdir("pi-stream-ha-scale-", keep=args.keep) as path:
        agents: list[BenchAgent] = []
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session,
                home_assistant(session, path / "ha") as ha,
            ):
                await ha.watch_states(session)
                print(f"Home Assistant up (pid {ha.pid}); settling {args.settle:.0f} s, "
                      f"measuring {args.window:.0f} s")  # fmt: skip
                await asyncio.sleep(args.settle)
                rows.append(await measure(ha, agents, args.window))
                show(rows[-1])
                for count in steps:
                    new = [BenchAgent(path / f"agent-{n:02d}", f"Bench Pi {n:02d}", streams=[])
                           for n in range(len(agents), count)]  # fmt: skip
                    with ThreadPoolExecutor(max_workers=4) as pool:
                        list(pool.map(lambda a: a.start(), new))
                    agents.extend(new)
                    for agent in new:
                        entry_id = await ha.add_pi(session, agent)
                        entities_per_pi.append(len(await ha.entities(session, entry_id)))
                    print(f"{count} Pis added ({entities_per_pi[-1]} entities each); "
                          f"settling {args.settle:.0f} s")  # fmt: skip
                    await asyncio.sleep(args.settle)
                    rows.append(await measure(ha, agents, args.window))
                    show(rows[-1])
        finally:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda a: a.stop(), agents))
    base = rows[0]
    per_pi = []
    for row in rows[1:]:
        per_pi.append({
            "pis": row["pis"],
            "ha_cpu_percent_per_pi": round((row["ha_cpu_percent"] - base["ha_cpu_percent"]) / row["pis"], 3),
            "ha_rss_mib_per_pi": round((row["ha_rss_mib_mean"] - base["ha_rss_mib_mean"]) / row["pis"], 2),
            "state_writes_per_minute_per_pi": round(row["state_writes_per_minute"] / row["pis"], 1),
        })  # fmt: skip
    print("\nPer connected Pi (with N − alone) / N:")
    for item in per_pi:
        print(f"  N={item['pis']:2d}: CPU {item['ha_cpu_percent_per_pi']:.3f} % of a core, "
              f"RSS {item['ha_rss_mib_per_pi']:.2f} MiB, "
              f"{item['state_writes_per_minute_per_pi']:.1f} writes/min")  # fmt: skip
    return {
        "settings": {"steps": steps, "settle_s": args.settle, "window_s": args.window,
                     "agent_streams": "none (streams: [])", "agent_telemetry": "defaults (5 s samples)"},
        "entities_per_pi": entities_per_pi[0] if entities_per_pi else None,
        "rows": rows,
        "per_pi": per_pi,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="10,20", help="numbers of Pis to measure at, e.g. 5,10,20")
    parser.add_argument("--settle", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    add_json_argument(parser)
    args = parser.parse_args()
    write_json(args.json, asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
