"""Runs every benchmark, one after another, each in its own /usr/bin/python3 process.

    /usr/bin/python3 -m bench.run_all [--seconds S] [--out DIR] [--json FILE] [--install-glances]
                                      [--only NAMES]

``--seconds`` shortens the timed windows of the server benchmarks (RSS with clients, idle wake-ups,
Glances, streams CPU); the per-sample benchmarks always take their full sample counts (a few seconds),
and the stream benchmarks their full counts of kills, freezes, replugs and snapshots. Each writes
``DIR/<name>.json`` (default ``bench/results/``); ``--json`` also writes them all merged into one file.
``--only`` takes benchmark names and the groups ``core`` (the agent core), ``streams`` (``streams_*``,
~5½ min; they need ffmpeg and rtsp-server-perl) and ``speed`` (snapshot tap, tap cost, glass-to-glass
frame age, pipeline, motion and sound cost; ~12 min, same needs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import DEBIAN_PYTHON, REPO_ROOT, agent_env, write_json

CORE = ("sample_cost", "dmabuf_scan", "agent_rss", "agent_imports", "wakeups", "vs_glances")
STREAMS = (
    "streams_kill",
    "streams_freeze",
    "streams_device",
    "streams_snapshot",
    "streams_cpu",
    "streams_setting",
)
# issues 11-12: what users feel
SPEED = (
    "snapshot_tap",
    "tap_cost",
    "glass_latency",
    "pipeline_cost",
    "motion_cost",
    "audio_cost",
)
BENCHMARKS = CORE + STREAMS + SPEED
GROUPS = {"core": CORE, "streams": STREAMS, "speed": SPEED}
TAKES_SECONDS = {"agent_rss", "wakeups", "vs_glances", "streams_cpu"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, help="timed window of the server benchmarks (defaults: 30/60/60/60)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "bench" / "results",
        help="directory for the JSON files (default bench/results)",
    )
    parser.add_argument(
        "--only", help=f"comma-separated subset of {BENCHMARKS}, or the groups {tuple(GROUPS)}"
    )
    parser.add_argument("--install-glances", action="store_true", help="let vs_glances create its venv")
    parser.add_argument("--json", type=Path, metavar="FILE", help="all results merged into one JSON file")
    args = parser.parse_args(argv)

    args.out = args.out.resolve()  # the benchmarks run from the repository root
    chosen = [
        name
        for part in (args.only.split(",") if args.only else BENCHMARKS)
        for name in GROUPS.get(part, (part,))
        if name
    ]
    failed: list[str] = []
    merged: dict[str, Any] = {}
    for name in chosen:
        out = args.out / f"{name}.json"
        command = [DEBIAN_PYTHON, "-m", f"bench.{name}", "--json", str(out)]
        if args.seconds is not None and name in TAKES_SECONDS:
            command += ["--seconds", str(args.seconds)]
        if name == "vs_glances" and args.install_glances:
            command.append("--install")
        print(f"\n### {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        # Every benchmark bounds its own run; this is a backstop against a hang.
        done = subprocess.run(command, env=agent_env(), cwd=REPO_ROOT, timeout=900, check=False)
        print(f"### {name}: exit {done.returncode} after {time.monotonic() - started:.0f} s", flush=True)
        if done.returncode != 0:
            failed.append(name)
        elif out.exists():
            merged[name] = json.loads(out.read_text(encoding="utf-8"))
    if args.json is not None:
        write_json(args.json, {"benchmarks": merged, "failed": failed})
    if failed:
        print(f"\nFailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
