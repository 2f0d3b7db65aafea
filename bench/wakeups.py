"""Wake-ups per second of an idle agent (no client): context switches of all its threads over a window.

Each wake-up of the event loop ends in a voluntary context switch when the loop goes back to sleep, so
``voluntary_ctxt_switches + nonvoluntary_ctxt_switches`` summed over ``/proc/<pid>/task/*/status`` counts
them. Three agents run side by side with the default telemetry intervals (sample tick 5 s, flag check 2 s):

* ``simulate``: ``--simulate``: adds the simulation's mover (every 2 s) and, because the simulated power
  files are regular files, the power watch's two 1 s polls (on a Pi both are event-driven);
* ``fixture_root``: ``--root`` on a fixture tree of real captures (no simulation): still the two 1 s
  polls of regular files standing for ``in0_lcrit_alarm`` and ``/dev/kmsg``;
* ``simulate_tmpfs``: the same with the simulated tree on tmpfs (``TMPDIR=/dev/shm``);
* ``real_root``: this machine's ``/``: ``/dev/kmsg`` is the real character device (followed with
  ``add_reader``, no polling) and there is no ``rpi_volt`` hwmon: the closest to a Pi's idle agent.

    /usr/bin/python3 -m bench.wakeups [--seconds 60] [--settle 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import AgentSpec, add_json_argument, agents, context_switches, cpu_seconds, write_json
from bench.fixture_tree import build_fixture_tree

# The agent's own timers in each mode (period in seconds), from its schedule (see the module doc). Timers
# whose deadlines fall together share one wake-up (the two 1 s polls start together and stay in step), so
# the wake-ups lie between the fastest timer's rate and the sum of all rates.
TIMERS_S = {
    "real_root": {"flag check": 2.0, "sample tick (nobody listening)": 5.0},
    "fixture_root": {
        "flag check": 2.0,
        "sample tick (nobody listening)": 5.0,
        "hwmon alarm poll (regular file)": 1.0,
        "kmsg poll (regular file)": 1.0,
    },
    "simulate": {
        "flag check": 2.0,
        "sample tick (nobody listening)": 5.0,
        "hwmon alarm poll (regular file)": 1.0,
        "kmsg poll (regular file)": 1.0,
        "simulation mover": 2.0,
    },
}
TIMERS_S["simulate_tmpfs"] = TIMERS_S["simulate"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window (default 60)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after start before the window")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "command": "python3 -m bench.wakeups " + " ".join(argv or sys.argv[1:]),
        "window_s": args.seconds,
        "agents": {},
    }
    with tempfile.TemporaryDirectory(prefix="pi-stream-bench-wake-") as tmp:
        tree = build_fixture_tree(Path(tmp) / "fixture-tree")
        # simulate_tmpfs: the same simulation with its tree on tmpfs (TMPDIR=/dev/shm), to tell the cost
        # of the mover's file replacements on this disk (ext4) from the agent's own wake-ups.
        specs = [
            AgentSpec("simulate", simulate=True),
            AgentSpec("simulate_tmpfs", simulate=True, env={"TMPDIR": "/dev/shm"}),
            AgentSpec("fixture_root", root=tree.base),
            AgentSpec("real_root"),
        ]
        with agents(specs, Path(tmp)) as handles:
            time.sleep(args.settle)
            before = {h.label: (context_switches(h.pid), cpu_seconds(h.pid)) for h in handles}
            started = time.monotonic()
            time.sleep(args.seconds)
            elapsed = time.monotonic() - started
            after = {h.label: (context_switches(h.pid), cpu_seconds(h.pid)) for h in handles}
            for h in handles:
                switches_before, cpu_before = before[h.label]
                switches_after, cpu_after = after[h.label]
                per_thread = {
                    name: count - switches_before.get(name, 0) for name, count in switches_after.items()
                }
                total = sum(per_thread.values())
                timers = TIMERS_S[h.label]
                rates = [1 / period for period in timers.values()]
                results["agents"][h.label] = {
                    "argv": h.process.argv[1:],
                    "context_switches": total,
                    "per_second": round(total / elapsed, 3),
                    "per_thread": per_thread,
                    "cpu_s": round(cpu_after - cpu_before, 3),
                    "cpu_percent_of_one_core": round(100 * (cpu_after - cpu_before) / elapsed, 3),
                    "timers_s": timers,
                    "timer_wakeups_per_s_range": [round(max(rates), 2), round(sum(rates), 2)],
                }
        results["elapsed_s"] = round(elapsed, 2)
    for label, r in results["agents"].items():
        print(
            f"== {label}: {r['context_switches']} context switches in {results['elapsed_s']} s = "
            f"{r['per_second']:.2f}/s (its timers: {r['timer_wakeups_per_s_range'][0]}-"
            f"{r['timer_wakeups_per_s_range'][1]}/s); "
            f"CPU {r['cpu_s']} s ({r['cpu_percent_of_one_core']} % of one core)"
        )
        print(f"  per thread: {r['per_thread']}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
