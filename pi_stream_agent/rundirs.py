"""Per-run scratch directories that the next start cleans up, even after a SIGKILL.

A directory is ``<parent>/<prefix><pid>-<random>``: the owner's pid is in its name, and the owner holds
an exclusive ``flock`` on the directory for as long as it lives (the kernel drops it when the process dies,
however it dies). A clean stop removes its own (:func:`remove_run_dir`); a killed agent cannot, so every
start first removes the directories of this user, with the same prefix in the same parent, whose owner
process is gone **and** whose lock is free (:func:`remove_orphaned_run_dirs`). A directory of a live
process (another agent, a test) is never touched. Used for the simulated Pi's tree (``simulation/``) and the
key-frame tap (``streams/keyframes.py``).

Why both: the pid alone is wrong across pid namespaces that share the parent (a container or chroot with
its own pids and the host's /dev/shm: its agent's pid means another process, or none, out here), and the
lock alone would take a directory in the instant between its creation and its lock (then the pid, seen
from the same namespace, protects it). A pid reused by an unrelated process keeps its orphan until that
process ends too: the cost is a small leftover for a while, never the loss of a live run's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


# This process's run directories → the descriptor that holds each one's lock (not inherited by children:
# Python's descriptors are not inheritable, so a publisher outliving the agent does not keep it).
_HELD: dict[Path, int] = {}


def _lock_is_free(path: str) -> bool:
    """Whether nobody holds the directory's lock (taking it for a moment to find out)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # also releases the lock if we took it
    return True


def remove_orphaned_run_dirs(prefix: str, parent: Path | None = None) -> list[Path]:
    """Remove this user's ``<prefix><pid>-…`` directories in ``parent`` (default: the temp dir) whose owner
    process is gone."""
    owned = re.compile(re.escape(prefix) + r"(\d+)-.+")
    base = Path(parent if parent is not None else tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        match = owned.fullmatch(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_uid != os.geteuid() or _alive(int(match.group(1))):
                continue
            if not _lock_is_free(entry.path):
                continue  # its owner lives, with another pid in another namespace
            shutil.rmtree(entry.path)
            removed.append(Path(entry.path))
    return removed


def make_run_dir(prefix: str, parent: Path | None = None) -> Path:
    """A new, empty, private (0700) directory for this run, locked while this process lives, after removing
    those of runs that were killed. :func:`remove_run_dir` removes it and lets its lock go."""
    remove_orphaned_run_dirs(prefix, parent)
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and private: nobody else can hold it
    _HELD[path] = fd
    return path


def remove_run_dir(path: Path) -> None:
    """Remove one of this process's run directories (a clean stop) and release its lock."""
    shutil.rmtree(path, ignore_errors=True)
    fd = _HELD.pop(path, None)
    if fd is not None:
        os.close(fd)
