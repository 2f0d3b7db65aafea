"""Per-run scratch directories that the next start cleans up, even after a SIGKILL.

A directory is ``<parent>/<prefix><pid>-<random>``: the owner's pid is in its name. A clean stop removes
its own; a killed agent cannot, so every start first removes the directories of this user, with the same
prefix in the same parent, whose owner process is gone (:func:`remove_orphaned_run_dirs`). A directory of a
live process (another agent, a test) is never touched. Used for the simulated Pi's tree
(``simulation/``) and the key-frame tap (``streams/keyframes.py``).

A pid reused by an unrelated process keeps its orphan until that process ends too: the cost is a small
leftover for a while, never the loss of a live run's files.
"""

from __future__ import annotations

import contextlib
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
            shutil.rmtree(entry.path)
            removed.append(Path(entry.path))
    return removed


def make_run_dir(prefix: str, parent: Path | None = None) -> Path:
    """A new, empty, private (0700) directory for this run, after removing those of runs that were killed."""
    remove_orphaned_run_dirs(prefix, parent)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
