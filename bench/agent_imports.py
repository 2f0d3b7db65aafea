"""What each library the agent imports costs in memory: RSS and PSS after importing them one by one, and
the top of ``python3 -X importtime -m pi_stream_agent --help``'s cumulative import times.

Each step runs in a fresh child of Debian's /usr/bin/python3 that imports the libraries of every step up
to it, then reads its own /proc/self/status and smaps_rollup, so a step's cost is the difference to the
step before (shared libraries pulled in by one step are not counted again by the next).

    /usr/bin/python3 -m bench.agent_imports [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from typing import Any

from bench.common import add_json_argument, agent_env, write_json

# In the order the agent pulls them in; the last step is the agent's whole running set.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bare interpreter", ()),
    ("asyncio", ("asyncio",)),
    ("yaml", ("yaml",)),
    ("voluptuous", ("voluptuous",)),
    ("psutil", ("psutil",)),
    ("aiohttp.web", ("aiohttp.web",)),
    ("zeroconf", ("zeroconf",)),
    ("the agent's modules", ("pi_stream_agent.agent", "pi_stream_agent.cli")),
)

_CHILD = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
def fields(path):
    out = {}
    with open(path) as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                out[key] = int(value.split()[0])
    return out
status, rollup = fields("/proc/self/status"), fields("/proc/self/smaps_rollup")
print(json.dumps({"rss": status["VmRSS"], "rss_anon": status["RssAnon"], "rss_file": status["RssFile"],
                  "pss": rollup.get("Pss", 0), "pss_anon": rollup.get("Pss_Anon", 0)}))
"""


def steps() -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    modules: list[str] = []
    for label, names in STEPS:
        modules.extend(names)
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, *modules],
            capture_output=True,
            text=True,
            check=True,
            env=agent_env(),
        )
        results.append({"after": label, "modules": list(modules), "kib": json.loads(out.stdout)})
    return results


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def import_times(top: int) -> list[dict[str, Any]]:
    """Per top-level package (``aiohttp``, ``yaml``, …), the cumulative import time (µs) of its outermost
    import: what importing it cost, the packages it pulled in first included."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pi_stream_agent.agent, pi_stream_agent.cli"],
        capture_output=True, text=True, check=True, env=agent_env(),
    )  # fmt: skip
    largest: dict[str, int] = {}
    for line in out.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            root = match.group(4).split(".")[0]
            largest[root] = max(largest.get(root, 0), int(match.group(2)))
    rows = [{"package": root, "cumulative_us": us} for root, us in largest.items()]
    return sorted(rows, key=lambda row: -row["cumulative_us"])[:top]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--top", type=int, default=15)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    stepped = steps()
    previous = None
    for step in stepped:
        kib = step["kib"]
        delta = (
            ""
            if previous is None
            else f"  (+{(kib['rss'] - previous['rss']) / 1024:4.1f} MiB RSS, "
            f"+{(kib['pss'] - previous['pss']) / 1024:4.1f} MiB PSS)"
        )
        print(
            f"  after {step['after']:<20} RSS {kib['rss'] / 1024:5.1f} MiB "
            f"(anon {kib['rss_anon'] / 1024:5.1f}), "
            f"PSS {kib['pss'] / 1024:5.1f} MiB{delta}"
        )
        previous = kib
    times = import_times(args.top)
    print("  -X importtime, packages by the cumulative time of their outermost import:")
    for row in times:
        print(f"    {row['package']:<24} {row['cumulative_us'] / 1000:7.1f} ms")
    write_json(
        args.json,
        {
            "command": "python3 -m bench.agent_imports " + " ".join(argv or sys.argv[1:]),
            "steps": stepped,
            "import_times_top": times,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
