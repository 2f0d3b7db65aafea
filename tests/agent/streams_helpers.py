"""Helpers for stream tests: the rpicam-vid stand-in on PATH, and running a PipelineSpec for real.

:func:`run_pipeline` is deliberately simple (no death signal, no leftover marker): it only exists so tests of
the command lines can run them. Every process goes into one new process group that is SIGKILLed and reaped
when the ``with`` block ends, also when the test fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pi_stream_agent.streams.model import PipelineSpec

STANDIN_DIR = Path(__file__).resolve().parent / "bin" / "streams"
RPICAM_STANDIN = STANDIN_DIR / "rpicam-vid"


def use_rpicam_standin(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the rpicam-vid stand-in first on PATH (ffmpeg and python3 stay reachable); returns its path."""
    monkeypatch.setenv("PATH", f"{STANDIN_DIR}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    return RPICAM_STANDIN


def progress_blocks(lines: list[str]) -> list[dict[str, str]]:
    """ffmpeg ``-progress`` output (key=value lines, each block ending with ``progress=…``) as dicts."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep:
            continue
        current[key.strip()] = value.strip()
        if key.strip() == "progress":
            blocks.append(current)
            current = {}
    return blocks


@dataclass
class RunningPipeline:
    processes: list[subprocess.Popen[bytes]]
    stderr_paths: list[Path]
    progress_lines: list[str] = field(default_factory=list)

    @property
    def pgid(self) -> int:
        return self.processes[0].pid

    def stderr_text(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')}" for path in self.stderr_paths)

    def wait_progress(self, min_frames: int = 1, timeout_s: float = 15.0) -> dict[str, str]:
        """The first ``-progress`` block with at least ``min_frames`` frames; fails the test on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for block in progress_blocks(list(self.progress_lines)):
                if int(block.get("frame", "0") or "0") >= min_frames:
                    return block
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.1)
        raise AssertionError(
            f"no progress block with frame >= {min_frames}; exit codes {[p.poll() for p in self.processes]}\n"
            f"stdout: {self.progress_lines[-20:]}\n{self.stderr_text()}"
        )


@contextmanager
def run_pipeline(
    spec: PipelineSpec, log_dir: Path, env: Mapping[str, str] | None = None
) -> Iterator[RunningPipeline]:
    """Start ``spec`` (stdout → stdin between processes; the last one's stdout is read as progress)."""
    processes: list[subprocess.Popen[bytes]] = []
    stderr_paths: list[Path] = []
    reader: threading.Thread | None = None
    running = RunningPipeline(processes, stderr_paths)
    try:
        previous_stdout = None
        for index, proc in enumerate(spec.processes):
            err_path = log_dir / f"{index}-{proc.name}.stderr"
            stderr_paths.append(err_path)
            with err_path.open("wb") as err:
                popen = subprocess.Popen(
                    list(proc.argv),
                    stdin=previous_stdout if previous_stdout is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    env=None if env is None else dict(env),
                    # the first process leads a new process group, the rest join it (a group in another
                    # session could not be joined, hence no start_new_session)
                    process_group=0 if index == 0 else processes[0].pid,
                )
            processes.append(popen)
            if previous_stdout is not None:
                previous_stdout.close()  # only the next process holds the pipe now
            previous_stdout = popen.stdout
        last_stdout = processes[-1].stdout
        assert last_stdout is not None

        def read() -> None:
            for raw in last_stdout:
                running.progress_lines.append(raw.decode(errors="replace").rstrip("\n"))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        yield running
    finally:
        if processes:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(processes[0].pid, signal.SIGKILL)
        for popen in processes:
            with suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=10)
        if reader is not None:
            reader.join(timeout=5)
        for popen in processes:
            if popen.stdout is not None:
                popen.stdout.close()
