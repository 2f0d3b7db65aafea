"""Atomic file writes: a reader (or a power cut) sees the old file or the new one, never half of one.

A write goes through a temporary file ``.<name>.<random>.tmp`` beside the target. A process killed half-way
(SIGKILL, power cut) leaves that file behind; :func:`remove_write_leftovers` clears them at the next start.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

_TEMP_PREFIX = "."
_TEMP_SUFFIX = ".tmp"
# What tempfile.mkstemp makes of that prefix and suffix: ".<target name>." + 8 random characters + ".tmp".
_LEFTOVER = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(
        prefix=f"{_TEMP_PREFIX}{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent
    )
    try:
        handle = os.fdopen(fd, "wb")  # owns fd from here: closed by the with-block, even on error
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    try:
        with handle:
            # mkstemp creates the file 0600; set the final mode before any data lands in it.
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    # Make the rename itself durable.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_write_leftovers(directory: Path) -> list[str]:
    """Delete the temporary files of atomic writes that never finished in ``directory`` (not below it), and
    return their names. Call it at start-up, before anything writes there."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if _LEFTOVER.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed
