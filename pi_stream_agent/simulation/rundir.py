"""Where a simulating agent keeps its generated Pi tree: one directory per run, cleaned up after the run
that made it even when that run was SIGKILLed.

The directory is ``$TMPDIR/pi-stream-simulated-<pid>-<random>``. A clean stop removes its own; a killed
agent cannot, so every start first removes the directories of this user whose owner process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Final

PREFIX: Final = "pi-stream-simulated-"
_OWNED = re.compile(re.escape(PREFIX) + r"(\d+)-.+")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_orphaned_run_dirs(parent: Path | None = None) -> list[Path]:
    """Remove this user's run directories in ``parent`` (the temp dir) whose owner process is gone."""
    base = Path(parent if parent is not None else tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        match = _OWNED.fullmatch(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_uid != os.geteuid() or _alive(int(match.group(1))):
                continue
            shutil.rmtree(entry.path)
            removed.append(Path(entry.path))
    return removed


def make_run_dir(parent: Path | None = None) -> Path:
    """A new, empty directory for this run's tree, after removing those of runs that were killed."""
    remove_orphaned_run_dirs(parent)
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
