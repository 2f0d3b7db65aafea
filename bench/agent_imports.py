"""What each library the agent imports costs in memory: RSS and PSS after importing them one by one, and
the top of ``python3 -X importtime``'s cumulative import times for the agent's modules.

Each step runs in a fresh child of Debian's /usr/bin/python3 that first does what the agent's entry point
does (pi_stream_agent/entry.py: ``ssl`` refused), imports the libraries of every step up to it, then reads
its own /proc/self/status and smaps_rollup, so a step's cost is the difference to the step before (shared
libraries pulled in by one step are not counted again by the next). The last step is what ``run`` loads
with zeroconf off. Then each extra is measured on top of that last step alone: zeroconf (loaded when the
agent announces itself, the default on a Pi), ``ssl`` (what the entry point leaves out) and psutil (which
the agent does not import).

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
    ("aiohttp.web", ("aiohttp.web",)),
    ("the agent's modules", ("pi_stream_agent.agent", "pi_stream_agent.cli")),
)
# Each measured on top of the last step, alone. "ssl" lets the child import it (the entry point does not).
EXTRAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("zeroconf (when announcing)", ("zeroconf", "pi_stream_agent.zeroconf_ad")),
    ("ssl (left out by entry.py)", ("ssl",)),
    ("psutil (not imported)", ("psutil",)),
)

_CHILD = """
import importlib, json, sys
if "ssl" not in sys.argv[1:]:
    from pi_stream_agent.entry import leave_out_tls
    leave_out_tls()
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


def measure(modules: list[str]) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *modules], capture_output=True, text=True, check=True, env=agent_env()
    )
    kib: dict[str, int] = json.loads(out.stdout)
    return kib


def steps() -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    modules: list[str] = []
    for label, names in STEPS:
        modules.extend(names)
        results.append({"after": label, "modules": list(modules), "kib": measure(modules)})
    return results


def extras(base: list[str]) -> list[dict[str, Any]]:
    """Each extra on top of ``base`` (the agent's running set) alone."""
    return [
        {"after": label, "modules": [*base, *names], "kib": measure([*base, *names])}
        for label, names in EXTRAS
    ]


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def import_times(top: int) -> list[dict[str, Any]]:
    """Per top-level package (``aiohttp``, ``yaml``, …), the cumulative import time (µs) of its outermost
    import: what importing it cost, the packages it pulled in first included."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "from pi_stream_agent.entry import leave_out_tls; leave_out_tls(); "
         "import pi_stream_agent.agent, pi_stream_agent.cli"],
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


def print_step(step: dict[str, Any], previous: dict[str, int] | None) -> None:
    kib = step["kib"]
    delta = (
        ""
        if previous is None
        else f"  ({(kib['rss'] - previous['rss']) / 1024:+4.1f} MiB RSS, "
        f"{(kib['pss'] - previous['pss']) / 1024:+4.1f} MiB PSS)"
    )
    print(
        f"  after {step['after']:<28} RSS {kib['rss'] / 1024:5.1f} MiB "
        f"(anon {kib['rss_anon'] / 1024:5.1f}), PSS {kib['pss'] / 1024:5.1f} MiB{delta}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--top", type=int, default=15)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    stepped = steps()
    extra = extras(stepped[-1]["modules"])
    previous = None
    for step in stepped:
        print_step(step, previous)
        previous = step["kib"]
    print("  on top of the agent's modules, each alone:")
    for step in extra:
        print_step(step, stepped[-1]["kib"])
    times = import_times(args.top)
    print("  -X importtime, packages by the cumulative time of their outermost import:")
    for row in times:
        print(f"    {row['package']:<24} {row['cumulative_us'] / 1000:7.1f} ms")
    write_json(
        args.json,
        {
            "command": "python3 -m bench.agent_imports " + " ".join(argv or sys.argv[1:]),
            "steps": stepped,
            "extras_on_top_of_the_last_step": extra,
            "import_times_top": times,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
