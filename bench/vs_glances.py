"""The agent side by side with Glances (what Home Assistant users run today), in one run, each polled.

* Glances: ``glances -w --disable-webui`` (REST API only) from a scratch venv built on /usr/bin/python3
  (``--install`` creates it: ``pip install 'glances[web]'``, which brings FastAPI/uvicorn/Jinja2), on
  127.0.0.1, one client GETting ``/api/4/all`` every second.
* The agent, on Debian's /usr/bin/python3, with one WebSocket client and one client GETting
  ``/api/v1/telemetry`` every second. Two agents run: on this machine's real ``/`` (like Glances, it reads
  the real /proc: the fair comparison) and ``--simulate``.

After a warm-up, each server's CPU seconds (utime+stime+cutime+cstime from /proc/<pid>/stat, its live
descendants included) over the window, and its RSS (the largest of readings every 5 s, descendants
included). Targets: agent CPU < 1/4 of Glances', agent RSS < 1/2 of Glances'.

    /usr/bin/python3 -m bench.vs_glances [--seconds 60] [--warmup 10] [--install] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.clients import ClientStats, rest_poller, wait_http, websocket_client
from bench.common import (
    DEBIAN_PYTHON,
    AgentHandle,
    AgentSpec,
    ManagedProcess,
    add_json_argument,
    agents,
    cpu_seconds,
    runtime_seconds,
    tree_rss_kib,
    write_json,
)

DEFAULT_VENV = Path("/tmp/glances-venv")
GLANCES_API = "/api/4/all"
TARGET_CPU_RATIO = 0.25
TARGET_RSS_RATIO = 0.5


def install_glances(venv: Path) -> None:
    subprocess.run([DEBIAN_PYTHON, "-m", "venv", str(venv)], check=True, timeout=300)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "glances[web]"], check=True, timeout=900)


def glances_version(venv: Path) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "glances"), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    return " ".join(line.split(":", 1)[-1].strip() for line in done.stdout.splitlines()[:3])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def measure(
    glances: ManagedProcess, glances_port: int, handles: list[AgentHandle], warmup: float, seconds: float
) -> dict[str, Any]:
    servers = {"glances": glances.pid, **{f"agent_{h.label}": h.pid for h in handles}}
    glances_url = f"http://127.0.0.1:{glances_port}{GLANCES_API}"
    await wait_http(glances_url, {}, 60)
    until = time.monotonic() + warmup + seconds + 1.0
    clients = {"glances_rest": ClientStats("glances GET /api/4/all every 1 s")}
    tasks = [asyncio.create_task(rest_poller(glances_url, {}, 1.0, until, clients["glances_rest"]))]
    for h in handles:
        ws = clients[f"agent_{h.label}_ws"] = ClientStats(f"agent {h.label} WebSocket")
        rest = clients[f"agent_{h.label}_rest"] = ClientStats(
            f"agent {h.label} GET /api/v1/telemetry every 1 s"
        )
        tasks.append(asyncio.create_task(websocket_client(h.base_url + "/api/v1/ws", h.headers, until, ws)))
        tasks.append(
            asyncio.create_task(rest_poller(h.base_url + "/api/v1/telemetry", h.headers, 1.0, until, rest))
        )
    try:
        await asyncio.sleep(warmup)
        cpu_before = {name: cpu_seconds(pid) for name, pid in servers.items()}
        runtime_before = {name: runtime_seconds(pid) for name, pid in servers.items()}
        rss: dict[str, list[int]] = {name: [] for name in servers}
        started = time.monotonic()
        while (left := started + seconds - time.monotonic()) > 0:
            for name, pid in servers.items():
                rss[name].append(tree_rss_kib(pid))
            await asyncio.sleep(min(5.0, left))
        elapsed = time.monotonic() - started
        cpu_after = {name: cpu_seconds(pid) for name, pid in servers.items()}
        runtime_after = {name: runtime_seconds(pid) for name, pid in servers.items()}
        for name, pid in servers.items():
            rss[name].append(tree_rss_kib(pid))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    figures: dict[str, Any] = {"elapsed_s": round(elapsed, 2), "servers": {}, "clients": {}}
    for name in servers:
        cpu = cpu_after[name] - cpu_before[name]
        (run0, threads0), (run1, threads1) = runtime_before[name], runtime_after[name]
        figures["servers"][name] = {
            "cpu_s": round(cpu, 3),
            "cpu_percent_of_one_core": round(100 * cpu / elapsed, 2),
            # Scheduler runtime of the threads alive at both readings (ns resolution); threads that came or
            # went during the window are listed, their time is only in cpu_s.
            "runtime_s": round(run1 - run0, 4),
            "threads_exited": len(threads0 - threads1),
            "threads_started": len(threads1 - threads0),
            "rss_kib_max": max(rss[name]),
            "rss_kib_last": rss[name][-1],
        }
    figures["clients"] = {name: stats.to_json() for name, stats in clients.items()}
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring window (default 60)")
    parser.add_argument("--warmup", type=float, default=10.0, help="polling before the window (default 10)")
    parser.add_argument(
        "--venv", type=Path, default=DEFAULT_VENV, help=f"Glances venv (default {DEFAULT_VENV})"
    )
    parser.add_argument("--install", action="store_true", help="create the venv and pip install glances[web]")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    glances_bin = args.venv / "bin" / "glances"
    if not glances_bin.exists():
        if not args.install:
            print(
                f"{glances_bin} not found: run with --install (pip install 'glances[web]' into {args.venv})",
                file=sys.stderr,
            )
            return 2
        install_glances(args.venv)
    results: dict[str, Any] = {
        "command": "python3 -m bench.vs_glances " + " ".join(argv or sys.argv[1:]),
        "glances": glances_version(args.venv),
    }
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pi-stream-bench-glances-") as tmp:
        argv_glances = [str(glances_bin), "-w", "--disable-webui", "-B", "127.0.0.1", "-p", str(port)]
        results["glances_argv"] = argv_glances[1:]
        glances = ManagedProcess(argv_glances, Path(tmp) / "glances.log")
        specs = [AgentSpec("real_root"), AgentSpec("simulate", simulate=True)]
        with glances, agents(specs, Path(tmp)) as handles:
            results["agent_argv"] = {h.label: h.process.argv[1:] for h in handles}
            results.update(asyncio.run(measure(glances, port, handles, args.warmup, args.seconds)))
            if not glances.running():
                raise RuntimeError(f"Glances died during the run:\n{glances.log()[-3000:]}")
    glances_figures = results["servers"]["glances"]
    results["ratios"] = {}
    for name, figures in results["servers"].items():
        if name == "glances":
            continue
        cpu_ratio = figures["cpu_s"] / glances_figures["cpu_s"] if glances_figures["cpu_s"] else float("nan")
        runtime_ratio = (
            figures["runtime_s"] / glances_figures["runtime_s"]
            if glances_figures["runtime_s"]
            else float("nan")
        )
        rss_ratio = figures["rss_kib_max"] / glances_figures["rss_kib_max"]
        results["ratios"][name] = {
            "cpu": round(cpu_ratio, 4),
            "runtime": round(runtime_ratio, 4),
            "rss": round(rss_ratio, 4),
            "pass_cpu": cpu_ratio < TARGET_CPU_RATIO and runtime_ratio < TARGET_CPU_RATIO,
            "pass_rss": rss_ratio < TARGET_RSS_RATIO,
        }
    _print(results)
    write_json(args.json, results)
    return 0


def _print(results: dict[str, Any]) -> None:
    print(f"Glances {results['glances']}; window {results['elapsed_s']} s")
    for name, s in results["servers"].items():
        print(
            f"  {name:<20} CPU {s['cpu_s']:7.2f} s ({s['cpu_percent_of_one_core']:5.2f} % of one core; "
            f"scheduler runtime {s['runtime_s']:.3f} s, "
            f"threads +{s['threads_started']}/-{s['threads_exited']}), "
            f"RSS max {s['rss_kib_max'] / 1024:6.1f} MiB"
        )
    for c in results["clients"].values():
        print(
            f"    {c['label']}: {c['messages']} responses/messages, {c['bytes']} bytes, "
            f"median latency {c['median_latency_ms'] if c['median_latency_ms'] is not None else '-'} ms, "
            f"{c['error_count']} errors"
        )
    for name, r in results["ratios"].items():
        cpu = "PASS" if r["pass_cpu"] else "FAIL"
        rss = "PASS" if r["pass_rss"] else "FAIL"
        print(
            f"  {name}: CPU ratio {r['cpu']:.3f} (runtime ratio {r['runtime']:.3f}; "
            f"target < {TARGET_CPU_RATIO}: {cpu}), "
            f"RSS ratio {r['rss']:.3f} (target < {TARGET_RSS_RATIO}: {rss})"
        )


if __name__ == "__main__":
    sys.exit(main())
