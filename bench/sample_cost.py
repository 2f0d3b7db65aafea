"""CPU time and forks per full telemetry sample (every collector, ``merge_sample(stack.collectors, …)``).

Trees: the simulated Pi (``build_simulated_root``; its firmware transport answers in-process, as the
``/dev/vcio`` mailbox ioctl does on a Pi), a fixture tree of real captures (no firmware transport: below a
non-``/`` root the agent uses none, so the temperature comes from the thermal zone), and this machine's
own ``/`` (not a Pi: no firmware, no debugfs bufinfo; for comparison only).

CPU is ``time.process_time_ns()`` around each sample, in this process, on the interpreter running the
benchmark (run it with /usr/bin/python3: what a Pi runs). Three series per tree: full samples with the
per-process DMA-buf scan cached (what 29 of 30 samples cost at the default 30 s scan interval), full
samples that rescan, and the scan alone. Forks are counted for real: the same sampling runs in a child
process under ``strace -f`` between two marker syscalls, and every clone/fork/vfork/execve between them is
counted (thread clones separately); the child also counts calls to ``os.fork``/``posix_spawn``/
``subprocess``'s ``fork_exec`` itself, and lists its live children afterwards.

    /usr/bin/python3 -m bench.sample_cost [--samples 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import DEBIAN_PYTHON, REPO_ROOT, add_json_argument, agent_env, summarize, write_json
from bench.fixture_tree import build_fixture_tree
from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.simulation import build_simulated_root
from pi_stream_agent.telemetry.dmabuf import DmabufReader, scan_processes
from pi_stream_agent.telemetry.firmware import GencmdTransport
from pi_stream_agent.telemetry.sampler import Collector, merge_sample
from pi_stream_agent.telemetry.stack import TelemetryStack, build_stack

TREES = ("simulated", "fixture", "host")
TARGET_CPU_NS = 1_000_000
MARKER_START = "/pi-stream-bench-marker/start"
MARKER_END = "/pi-stream-bench-marker/end"
FORK_SYSCALLS = ("clone", "clone3", "fork", "vfork", "execve", "execveat")


def make_root(kind: str, workdir: Path) -> tuple[Root, GencmdTransport | None, dict[str, Any]]:
    if kind == "simulated":
        pi = build_simulated_root(workdir / "simulated", seed=1)
        return pi.root, pi.gencmd, {"firmware_transport": "simulated (in-process, like the mailbox ioctl)"}
    if kind == "fixture":
        info = build_fixture_tree(workdir / "fixture")
        return (
            Root(info.base),
            None,
            {
                "firmware_transport": None,
                "proc_entries": info.processes,
                "dmabuf_fds": info.dmabuf_fds,
                "ordinary_fds": info.ordinary_fds,
            },
        )
    if kind == "host":
        return Root(), None, {"firmware_transport": None, "note": "this x86_64 VM's own /, not a Pi"}
    raise ValueError(kind)


def _timed(action: Callable[[], object], count: int) -> tuple[list[float], list[float]]:
    """CPU and wall microseconds of ``count`` calls."""
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(count):
        c0, w0 = time.process_time_ns(), time.perf_counter_ns()
        action()
        c1, w1 = time.process_time_ns(), time.perf_counter_ns()
        cpu.append((c1 - c0) / 1000)
        wall.append((w1 - w0) / 1000)
    return cpu, wall


def _sample(collectors: list[Collector]) -> Callable[[], object]:
    return lambda: merge_sample(collectors, time.monotonic(), time.time())


def _one_collector(collector: Collector) -> Callable[[], object]:
    return lambda: collector.sample(Gaps(), time.monotonic())


def _rescanning(stack: TelemetryStack) -> list[Collector]:
    """The same collectors, but a DMA-buf reader whose scan is due at every sample."""
    return [
        DmabufReader(stack.root, process_scan_interval_s=0.0) if isinstance(c, DmabufReader) else c
        for c in stack.collectors
    ]


async def measure_tree(kind: str, samples: int, workdir: Path) -> dict[str, Any]:
    root, gencmd, info = make_root(kind, workdir)
    # A scan interval longer than the run: every timed sample serves the cached scan.
    stack = build_stack(root, EventBus(), dmabuf_process_scan_interval_s=3600.0, gencmd=gencmd)
    await stack.start()
    try:
        merge_sample(stack.collectors, time.monotonic(), time.time())  # prime: first scan, rate baselines
        _timed(_sample(stack.collectors), 50)  # warm up
        cached_cpu, cached_wall = _timed(_sample(stack.collectors), samples)
        per_collector: dict[str, Any] = {}
        for collector in stack.collectors:
            cpu, _ = _timed(_one_collector(collector), max(200, samples // 5))
            per_collector[type(collector).__name__] = summarize(cpu).to_json()
        rescans = max(50, samples // 10)
        rescan_cpu, rescan_wall = _timed(_sample(_rescanning(stack)), rescans)
        scan_cpu, _ = _timed(lambda: scan_processes(root), rescans)
        last_scan = scan_processes(root)
        sample = merge_sample(stack.collectors, time.monotonic(), time.time())
    finally:
        await stack.stop()
    return {
        "tree": kind,
        **info,
        "processes_scanned": last_scan.processes,
        "cached_scan_cpu_us": summarize(cached_cpu).to_json(),
        "cached_scan_wall_us": summarize(cached_wall).to_json(),
        "rescan_cpu_us": summarize(rescan_cpu).to_json(),
        "rescan_wall_us": summarize(rescan_wall).to_json(),
        "scan_only_cpu_us": summarize(scan_cpu).to_json(),
        "per_collector_cpu_us": per_collector,
        "sample_keys": sorted(key for key in sample if key != "unavailable"),
        "unavailable_count": len(sample["unavailable"]),
        "target_cpu_us": TARGET_CPU_NS / 1000,
        "pass_median": summarize(cached_cpu).median < TARGET_CPU_NS / 1000,
        "pass_p95": summarize(cached_cpu).p95 < TARGET_CPU_NS / 1000,
    }


# ------------------------------------------------------------------------------------------- fork count


class SpawnCounter:
    """Counts every way this interpreter can start a process, by wrapping the functions themselves."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def install(self) -> None:
        for module, name in (
            (os, "fork"),
            (os, "forkpty"),
            (os, "posix_spawn"),
            (os, "posix_spawnp"),
            (os, "system"),
            (subprocess, "_fork_exec"),
        ):
            original = getattr(module, name, None)
            if original is None:
                continue
            setattr(module, name, self._wrap(f"{module.__name__}.{name}", original))

    def _wrap(self, label: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[label] = self.calls.get(label, 0) + 1
            return original(*args, **kwargs)

        return counted


def _children() -> list[int]:
    found: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        text = Path(f"/proc/self/task/{tid}/children").read_text(encoding="ascii")
        found += [int(pid) for pid in text.split()]
    return found


async def child_run(kind: str, samples: int, workdir: Path) -> dict[str, Any]:
    """The sampling under strace: setup, marker, samples (cached and rescanning) and scans, marker."""
    counter = SpawnCounter()
    counter.install()
    root, gencmd, _ = make_root(kind, workdir)
    stack = build_stack(root, EventBus(), dmabuf_process_scan_interval_s=3600.0, gencmd=gencmd)
    await stack.start()
    try:
        merge_sample(stack.collectors, time.monotonic(), time.time())
        threads_before = len(os.listdir("/proc/self/task"))
        calls_before = dict(counter.calls)
        os.access(MARKER_START, os.F_OK)
        for _ in range(samples):
            merge_sample(stack.collectors, time.monotonic(), time.time())
        rescanning = _rescanning(stack)
        for _ in range(max(20, samples // 20)):
            merge_sample(rescanning, time.monotonic(), time.time())
            scan_processes(root)
        os.access(MARKER_END, os.F_OK)
        threads_after = len(os.listdir("/proc/self/task"))
        children = _children()
    finally:
        await stack.stop()
    during = {k: v - calls_before.get(k, 0) for k, v in counter.calls.items() if v - calls_before.get(k, 0)}
    return {
        "spawn_calls_during": during,
        "spawn_calls_total": counter.calls,
        "threads_before": threads_before,
        "threads_after": threads_after,
        "live_children_after": children,
    }


def parse_strace(text: str) -> dict[str, Any]:
    """Counts of process-creating syscalls between the markers, and in the whole run."""
    window: dict[str, int] = {}
    whole: dict[str, int] = {}
    inside = False
    seen_start = seen_end = False
    for raw in text.splitlines():
        # "-f -o": "<pid> <syscall>(…) = …"; "<... clone3 resumed>" lines continue an earlier one.
        _, _, line = raw.partition(" ")
        line = line.lstrip()
        if MARKER_START in line:
            inside, seen_start = True, True
            continue
        if MARKER_END in line:
            inside, seen_end = False, True
            continue
        name = line.split("(", 1)[0]
        if name not in FORK_SYSCALLS:
            continue
        if name.startswith("clone") and "CLONE_THREAD" in line:
            name += " (thread)"
        whole[name] = whole.get(name, 0) + 1
        if inside:
            window[name] = window.get(name, 0) + 1
    processes = sum(count for name, count in window.items() if "(thread)" not in name)
    return {
        "markers_seen": seen_start and seen_end,
        "during_sampling": window,
        "whole_run": whole,
        "fork_or_exec_during_sampling": processes,
    }


def count_forks(kind: str, samples: int, workdir: Path) -> dict[str, Any]:
    strace = "/usr/bin/strace"
    out = workdir / f"strace-{kind}.txt"
    child = [
        DEBIAN_PYTHON,
        "-m",
        "bench.sample_cost",
        "--child",
        kind,
        "--samples",
        str(samples),
        "--workdir",
        str(workdir / f"child-{kind}"),
    ]
    trace = ",".join((*FORK_SYSCALLS, "access", "faccessat", "faccessat2"))
    if not os.access(strace, os.X_OK):
        # No strace (apt-get install strace): the in-process count alone.
        done = subprocess.run(
            child, capture_output=True, text=True, timeout=300, env=agent_env(), cwd=REPO_ROOT, check=True
        )
        return {"strace": None, "in_process": json.loads(done.stdout.splitlines()[-1])}
    command = [strace, "-f", "-qq", "--seccomp-bpf", "-e", f"trace={trace}", "-o", str(out), *child]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=agent_env(), cwd=REPO_ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"strace run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    counts = parse_strace(out.read_text(encoding="utf-8", errors="replace"))
    return {
        "strace": counts,
        "in_process": json.loads(done.stdout.splitlines()[-1]),
        "command": " ".join(command[:8]) + " … python3 -m bench.sample_cost --child " + kind,
    }


# ------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--samples", type=int, default=1000, help="timed full samples per tree (default 1000)"
    )
    parser.add_argument("--trees", default=",".join(TREES), help=f"comma-separated, from {TREES}")
    parser.add_argument("--fork-samples", type=int, default=1000, help="samples taken under strace per tree")
    parser.add_argument("--child", choices=TREES, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    add_json_argument(parser)
    args = parser.parse_args(argv)

    if args.child:
        result = asyncio.run(child_run(args.child, args.samples, args.workdir))
        print(json.dumps(result))
        return 0

    trees = [tree for tree in args.trees.split(",") if tree]
    results: dict[str, Any] = {
        "command": "python3 -m bench.sample_cost " + " ".join(argv or sys.argv[1:]),
        "interpreter": sys.executable,
        "trees": {},
    }
    with tempfile.TemporaryDirectory(prefix="pi-stream-bench-") as tmp:
        for kind in trees:
            figures = asyncio.run(measure_tree(kind, args.samples, Path(tmp) / f"timing-{kind}"))
            figures["forks"] = count_forks(kind, args.fork_samples, Path(tmp))
            results["trees"][kind] = figures
            _print_tree(figures)
    write_json(args.json, results)
    return 0


def _print_tree(figures: dict[str, Any]) -> None:
    def line(label: str, key: str) -> None:
        s = figures[key]
        print(f"  {label:<34} median {s['median']:8.1f} µs, p95 {s['p95']:8.1f} µs (n={s['n']})")

    print(
        f"== {figures['tree']} tree (firmware transport: {figures['firmware_transport']}; "
        f"/proc entries scanned: {figures['processes_scanned']})"
    )
    line("full sample, scan cached (CPU)", "cached_scan_cpu_us")
    line("full sample, scan cached (wall)", "cached_scan_wall_us")
    line("full sample with rescan (CPU)", "rescan_cpu_us")
    line("DMA-buf process scan alone (CPU)", "scan_only_cpu_us")
    for name, s in figures["per_collector_cpu_us"].items():
        print(f"    {name:<32} median {s['median']:8.1f} µs, p95 {s['p95']:8.1f} µs")
    forks = figures["forks"]
    strace = forks.get("strace")
    if strace is not None:
        print(
            f"  forks during sampling (strace): {strace['fork_or_exec_during_sampling']} "
            f"(markers seen: {strace['markers_seen']}; syscalls in window: {strace['during_sampling']}; "
            f"whole run: {strace['whole_run']})"
        )
    print(
        f"  spawn calls during sampling (in-process): {forks['in_process']['spawn_calls_during'] or 0}; "
        f"live children after: {forks['in_process']['live_children_after']}"
    )
    verdict = "PASS" if figures["pass_median"] and figures["pass_p95"] else "FAIL"
    print(f"  target < 1 ms CPU median and p95: {verdict}")


if __name__ == "__main__":
    sys.exit(main())
