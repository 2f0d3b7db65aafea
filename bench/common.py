"""What every benchmark shares: statistics, JSON output, the machine description, /proc readings of other
processes, and starting/stopping servers (the agent, Glances) so that nothing outlives a run."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a Pi on Raspberry Pi OS Bookworm runs: Debian 12's interpreter with Debian's python3-* packages.
DEBIAN_PYTHON = "/usr/bin/python3"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), ``q`` in 0..100."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """Figures of one series, in the unit the series was given in."""

    n: int
    median: float
    p95: float
    mean: float
    min: float
    max: float

    def to_json(self) -> dict[str, float]:
        return {
            key: round(value, 3) if isinstance(value, float) else value for key, value in asdict(self).items()
        }


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        n=len(values),
        median=percentile(values, 50),
        p95=percentile(values, 95),
        mean=sum(values) / len(values) if values else math.nan,
        min=min(values) if values else math.nan,
        max=max(values) if values else math.nan,
    )


def us(summary: Summary) -> str:
    """``median 123.4 µs, p95 150.2 µs (n=1000)`` for a series in microseconds."""
    return f"median {summary.median:8.1f} µs, p95 {summary.p95:8.1f} µs (n={summary.n})"


# ---------------------------------------------------------------------------------------------- machine


def _first_match(path: str, key: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key:
                return value.strip()
    return None


def machine_info() -> dict[str, Any]:
    """Where the figures came from: they describe this machine, not a Raspberry Pi."""
    flags = _first_match("/proc/cpuinfo", "flags") or ""
    debian = None
    with contextlib.suppress(OSError):
        debian = Path("/etc/debian_version").read_text(encoding="utf-8").strip()
    mem_kb = _first_match("/proc/meminfo", "MemTotal") or ""
    return {
        "arch": platform.machine(),
        "cpu_model": _first_match("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "virtualised": "hypervisor" in flags.split(),
        "kernel": platform.release(),
        "debian": debian,
        "memory_total": mem_kb,
        "python": f"{sys.executable} {platform.python_version()}",
        "is_raspberry_pi": False,
    }


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON to FILE")


def write_json(path: Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine_info(), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **data}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"JSON written to {path}")


# ------------------------------------------------------------------------------- /proc of other processes


def read_status(pid: int, tid: int | None = None) -> dict[str, str]:
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    result: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            key, sep, value = line.partition(":")
            if sep:
                result[key] = value.strip()
    return result


def _kib(value: str) -> int:
    return int(value.split(maxsplit=1)[0])


@dataclass(frozen=True)
class Memory:
    """From /proc/<pid>/status, and PSS from /proc/<pid>/smaps_rollup (0 where the kernel has none), KiB.

    PSS divides each shared page by the processes mapping it: the process's fair share of the machine's
    memory, where RSS counts every shared library page in full."""

    rss: int
    rss_anon: int
    rss_file: int
    hwm: int
    pss: int = 0
    pss_anon: int = 0
    pss_file: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def smaps_rollup(pid: int) -> dict[str, int]:
    """The KiB fields of /proc/<pid>/smaps_rollup (Pss, Pss_Anon, Pss_File, …); empty when unreadable."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.partition(":")
                if sep and value.strip().endswith("kB"):
                    fields[key] = _kib(value)
    except OSError:
        pass
    return fields


def memory(pid: int) -> Memory:
    status = read_status(pid)
    rollup = smaps_rollup(pid)
    return Memory(
        rss=_kib(status["VmRSS"]),
        rss_anon=_kib(status.get("RssAnon", "0 kB")),
        rss_file=_kib(status.get("RssFile", "0 kB")),
        hwm=_kib(status.get("VmHWM", "0 kB")),
        pss=rollup.get("Pss", 0),
        pss_anon=rollup.get("Pss_Anon", 0),
        pss_file=rollup.get("Pss_File", 0),
    )


def threads(pid: int) -> list[int]:
    return sorted(int(name) for name in os.listdir(f"/proc/{pid}/task") if name.isdigit())


def context_switches(pid: int) -> dict[str, int]:
    """Voluntary + non-voluntary switches of every thread, keyed ``"<tid> <comm>"``. Threads that exited
    since are not counted: the agent's executor threads stay alive (they are never reaped while idle)."""
    result: dict[str, int] = {}
    for tid in threads(pid):
        with contextlib.suppress(OSError):
            status = read_status(pid, tid)
            switches = int(status["voluntary_ctxt_switches"]) + int(status["nonvoluntary_ctxt_switches"])
            result[f"{tid} {status.get('Name', '?')}"] = switches
    return result


def descendants(pid: int) -> list[int]:
    """Live children, grandchildren, … (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    text = Path(f"/proc/{current}/task/{tid}/children").read_text(encoding="ascii")
                    for child in text.split():
                        found.append(int(child))
                        pending.append(int(child))
    return found


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    return text[text.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` plus those of its live descendants, in seconds: all the CPU
    the server and anything it started has used (reaped children are in cutime/cstime)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            fields = _stat_fields(member)  # fields[0] is field 3 (state): utime=14 … cstime=17
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / CLOCK_TICKS


def own_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` alone, in seconds (one pipeline process, not what it started)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


STREAM_STANDINS = REPO_ROOT / "tests/agent/bin/streams"  # rpicam-vid and friends, as the tests use them


@contextlib.contextmanager
def chained_processes(
    argvs: Sequence[Sequence[str]], path_dirs: Sequence[Path] = (STREAM_STANDINS,)
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A pipeline's processes as the agent chains them (each one's stdout into the next one's stdin; the
    last one's output and everyone's stderr dropped), each in its own session, with ``path_dirs`` first on
    PATH for the stand-ins. Every one is SIGKILLed and reaped on the way out."""
    path = os.pathsep.join([*map(str, path_dirs), os.environ.get("PATH", "")])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        stdin: Any = subprocess.DEVNULL
        for index, argv in enumerate(argvs):
            last = index == len(argvs) - 1
            proc = subprocess.Popen(
                list(argv),
                stdin=stdin,
                stdout=subprocess.DEVNULL if last else subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PATH": path},
                start_new_session=True,
            )
            if stdin not in (subprocess.DEVNULL, None):
                stdin.close()  # the next stage holds it now: EOF travels down as in the agent
            stdin = proc.stdout
            procs.append(proc)
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def runtime_seconds(pid: int) -> tuple[float, frozenset[int]]:
    """Time on CPU from the scheduler (``/proc/<pid>/task/<tid>/schedstat``, nanoseconds) of every live
    thread of ``pid`` and its live descendants, and the set of those threads. Far finer than the 10 ms
    ticks of /proc/<pid>/stat, but a thread that exits takes its time with it: compare the thread sets."""
    total = 0
    seen: set[int] = set()
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            for tid in threads(member):
                with contextlib.suppress(OSError, ValueError):
                    total += int(
                        Path(f"/proc/{member}/task/{tid}/schedstat").read_text(encoding="ascii").split()[0]
                    )
                    seen.add(tid)
    return total / 1e9, frozenset(seen)


def tree_rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` plus its live descendants (shared pages counted once per process, like ``ps``)."""
    total = 0
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError, KeyError):
            total += memory(member).rss
    return total


# ---------------------------------------------------------------------------------------- managed servers


class ManagedProcess:
    """A server started in its own session (so its process group is its pid) with output to a log file.

    :meth:`stop` sends SIGTERM to that group, waits, then SIGKILLs it: nothing it started survives the
    benchmark, whether it ends normally, by an exception or by Ctrl-C."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._env = env
        self._cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        group = self.proc.pid
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout_s)
        # Whatever is left of the group (the leader, or children it left behind) goes now.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        return self.proc.returncode

    def __enter__(self) -> ManagedProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def agent_env() -> dict[str, str]:
    """The agent from this checkout, on Debian's interpreter, with no user site-packages in the way."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONNOUSERSITE"] = "1"
    return env


_LISTENING = re.compile(r"listening on \S+:(\d+)")


@dataclass
class AgentHandle:
    process: ManagedProcess
    port: int
    token: str
    label: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class AgentSpec:
    """How to run one agent: ``--simulate``, ``--root DIR`` or the real ``/``; optional config file."""

    label: str
    simulate: bool = False
    root: Path | None = None
    telemetry: dict[str, float] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # extra environment, e.g. TMPDIR

    def argv(self, workdir: Path) -> list[str]:
        config = workdir / "config.yaml"
        # JSON is YAML: one file, no YAML writer needed. The state dir keeps the token out of /var/lib.
        config.write_text(json.dumps({"telemetry": self.telemetry}) + "\n", encoding="utf-8")
        argv = [
            DEBIAN_PYTHON,
            "-m",
            "pi_stream_agent",
            "run",
            "--config",
            str(config),
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--state-dir",
            str(workdir / "state"),
            "--no-zeroconf",
            "--log-level",
            "INFO",
        ]
        if self.simulate:
            argv.append("--simulate")
        if self.root is not None:
            argv += ["--root", str(self.root)]
        return argv


def start_agent(spec: AgentSpec, workdir: Path, timeout_s: float = 30.0) -> AgentHandle:
    """Start the real agent as a subprocess and wait until it listens. The caller must stop it."""
    workdir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        spec.argv(workdir), workdir / "agent.log", env={**agent_env(), **spec.env}, cwd=REPO_ROOT
    )
    process.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            match = _LISTENING.search(process.log())
            if match:
                token = (workdir / "state" / "token").read_text(encoding="ascii").strip()
                return AgentHandle(process, int(match.group(1)), token, spec.label)
            if not process.running():
                raise RuntimeError(f"agent {spec.label} exited early:\n{process.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"agent {spec.label} did not start within {timeout_s} s:\n{process.log()}")
    except BaseException:
        process.stop()
        raise


@contextlib.contextmanager
def agents(specs: Sequence[AgentSpec], workdir: Path) -> Iterator[list[AgentHandle]]:
    """Start every agent; stop all of them on the way out, whatever happened."""
    started: list[AgentHandle] = []
    try:
        for spec in specs:
            started.append(start_agent(spec, workdir / spec.label))
        yield started
    finally:
        for handle in started:
            handle.process.stop()


def check_tool(name: str) -> str | None:
    return shutil.which(name)
