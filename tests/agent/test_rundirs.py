"""Per-run scratch directories (rundirs.py): a killed run's directory goes at the next start; a live run's
stays, even when its pid means nothing here (a chroot or container with its own pids sharing /dev/shm)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from pi_stream_agent.rundirs import make_run_dir, remove_orphaned_run_dirs, remove_run_dir

PREFIX = "pi-stream-test-run-"


def gone_pid() -> int:
    """The pid of a process that has ended (as a foreign namespace's pid looks from here)."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_a_killed_runs_directory_goes_and_a_live_ones_stays(tmp_path: Path) -> None:
    killed = tmp_path / f"{PREFIX}{gone_pid()}-abcdefgh"
    killed.mkdir()
    alive = tmp_path / f"{PREFIX}{os.getpid()}-abcdefgh"
    alive.mkdir()
    assert remove_orphaned_run_dirs(PREFIX, tmp_path) == [killed]
    assert alive.is_dir() and not killed.exists()


def test_a_locked_directory_stays_though_its_pid_is_gone_here(tmp_path: Path) -> None:
    """The owner runs under another pid namespace: its pid is unknown here, but it holds the lock."""
    foreign = tmp_path / f"{PREFIX}{gone_pid()}-abcdefgh"
    foreign.mkdir()
    held = os.open(foreign, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert remove_orphaned_run_dirs(PREFIX, tmp_path) == []
        assert foreign.is_dir()
    finally:
        os.close(held)  # the owner dies: the kernel lets its lock go
    assert remove_orphaned_run_dirs(PREFIX, tmp_path) == [foreign]


def test_our_own_directory_is_locked_until_removed(tmp_path: Path) -> None:
    own = make_run_dir(PREFIX, tmp_path)
    assert own.name.startswith(f"{PREFIX}{os.getpid()}-")
    probe = os.open(own, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            taken = True
        except BlockingIOError:
            taken = False
        assert not taken  # held by make_run_dir's descriptor
    finally:
        os.close(probe)
    remove_run_dir(own)
    assert not own.exists()


def test_a_killed_child_leaves_its_directory_unlocked(tmp_path: Path) -> None:
    """A real process makes its directory and is SIGKILLed: the next start removes what it left."""
    code = (
        "import os, sys; from pathlib import Path; from pi_stream_agent.rundirs import make_run_dir; "
        f"print(make_run_dir({PREFIX!r}, Path({str(tmp_path)!r})), flush=True); sys.stdin.read()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        made = Path(child.stdout.readline().strip())
        assert remove_orphaned_run_dirs(PREFIX, tmp_path) == []  # alive: kept
    finally:
        child.kill()
        child.wait()
    assert remove_orphaned_run_dirs(PREFIX, tmp_path) == [made]
