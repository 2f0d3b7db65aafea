"""The per-process DMA-buf scan (``scan_processes(Root())``) on the real /proc with ~300 processes.

A Pi running a desktop has 150-300 processes; the scan walks every ``/proc/<pid>/fd``. This starts
``--processes`` idle ``sleep`` children (one process group, killed in ``finally``; each also exits by itself
after ``--lifetime`` seconds), then times the scan. The figure first without the extra processes, for
comparison. Run as root the scan reads every process (as the agent does under systemd as root).

    /usr/bin/python3 -m bench.dmabuf_scan [--processes 300] [--repeats 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from bench.common import add_json_argument, summarize, write_json
from pi_stream_agent.rootfs import Root
from pi_stream_agent.telemetry.dmabuf import scan_processes


@contextlib.contextmanager
def idle_processes(count: int, lifetime_s: int) -> Iterator[list[int]]:
    """``count`` sleeping processes in one new process group, all killed on the way out."""
    started: list[subprocess.Popen[bytes]] = []
    group: int | None = None
    try:
        for _ in range(count):
            proc = subprocess.Popen(
                ["sleep", str(lifetime_s)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # The first one leads a new group; the rest join it, so one killpg ends them all.
                process_group=0 if group is None else group,
            )
            if group is None:
                group = proc.pid
            started.append(proc)
        yield [proc.pid for proc in started]
    finally:
        if group is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for proc in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def time_scans(repeats: int) -> dict[str, Any]:
    root = Root()
    scan_processes(root)  # warm the dentry cache as a periodic scan would find it
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(repeats):
        c0, w0 = time.process_time_ns(), time.perf_counter_ns()
        scan_processes(root)
        c1, w1 = time.process_time_ns(), time.perf_counter_ns()
        cpu.append((c1 - c0) / 1000)
        wall.append((w1 - w0) / 1000)
    scan = scan_processes(root)
    fds = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            with contextlib.suppress(OSError):
                fds += len(os.listdir(f"/proc/{pid}/fd"))
    cpu_summary = summarize(cpu)
    return {
        "processes_scanned": scan.processes,
        "processes_denied": scan.processes_denied,
        "processes_vanished": scan.processes_vanished,
        "fds_total": fds,
        "dmabuf_buffers_found": len(scan.buffers),
        "cpu_ms": {
            key: round(value / 1000, 3) if isinstance(value, float) else value
            for key, value in cpu_summary.to_json().items()
        },
        "wall_ms": {
            key: round(value / 1000, 3) if isinstance(value, float) else value
            for key, value in summarize(wall).to_json().items()
        },
        "cpu_us_per_process": round(cpu_summary.median / max(scan.processes, 1), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=300, help="idle processes to add (default 300)")
    parser.add_argument("--repeats", type=int, default=100, help="timed scans per case (default 100)")
    parser.add_argument("--lifetime", type=int, default=120, help="the sleeps exit by themselves after this")
    add_json_argument(parser)
    args = parser.parse_args(argv)

    results: dict[str, Any] = {
        "command": "python3 -m bench.dmabuf_scan " + " ".join(argv or sys.argv[1:]),
        "euid": os.geteuid(),
    }
    results["baseline"] = time_scans(args.repeats)
    with idle_processes(args.processes, args.lifetime) as pids:
        time.sleep(0.5)  # let every child get past exec
        results["with_idle_processes"] = {"added": len(pids), **time_scans(args.repeats)}
    for label in ("baseline", "with_idle_processes"):
        r = results[label]
        print(
            f"== {label}: {r['processes_scanned']} processes scanned ({r['processes_denied']} denied, "
            f"{r['fds_total']} fds), {r['dmabuf_buffers_found']} dma-bufs found"
        )
        print(
            f"  CPU  median {r['cpu_ms']['median']:.2f} ms, p95 {r['cpu_ms']['p95']:.2f} ms "
            f"(n={r['cpu_ms']['n']}); {r['cpu_us_per_process']} µs per process"
        )
        print(f"  wall median {r['wall_ms']['median']:.2f} ms, p95 {r['wall_ms']['p95']:.2f} ms")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
