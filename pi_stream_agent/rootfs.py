"""Access to kernel interfaces below a root directory, and the record of values that could not be read.

Every reader takes a :class:`Root` instead of touching ``/`` directly, so the same code reads a real Pi
(root ``/``), a fixture tree in the tests, or the simulated Pi.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path

# procfs files are generated per read(); 64 KiB takes /proc/meminfo or bufinfo in one or two calls.
_READ_CHUNK = 65536


@dataclass(frozen=True)
class Root:
    """A directory that stands for ``/``: ``Root(Path('/tmp/fixture')).path('proc/meminfo')``."""

    base: Path = Path("/")

    @property
    def is_real(self) -> bool:
        """True when this is the machine's own ``/`` (so devices such as /dev/vcio may be used)."""
        return self.base == Path("/")

    def path(self, relative: str) -> Path:
        return self.base / relative.lstrip("/")

    def read_text(self, relative: str) -> str:
        """Read a whole kernel file. Raises OSError; callers turn that into a :class:`Gaps` reason."""
        return self.read_bytes(relative).decode("utf-8", errors="replace")

    def read_bytes(self, relative: str) -> bytes:
        # os.open/os.read rather than open(): 4 syscalls instead of 9 and no buffered-IO objects. A
        # sample reads ~8 files, and this alone cut its CPU cost by a fifth (docs/benchmarks.md).
        fd = os.open(self.path(relative), os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(fd, _READ_CHUNK):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)


def describe_os_error(exc: OSError, what: str) -> str:
    """A short reason for the API, naming the file and what a user can do about it."""
    if exc.errno == errno.ENOENT:
        return f"{what} not found (not a Raspberry Pi, or this kernel does not provide it)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{what}: permission denied (run the agent as root or grant access)"
    return f"{what}: {exc.strerror or exc.__class__.__name__}"


@dataclass
class Gaps:
    """Why values are ``null``: dotted key path (``cma.total_bytes``, ``dmabuf``) → short reason."""

    reasons: dict[str, str] = field(default_factory=dict)

    def note(self, key: str, reason: str) -> None:
        # The first reason is usually the root cause; later ones for the same key add nothing.
        self.reasons.setdefault(key, reason)

    def note_os_error(self, key: str, exc: OSError, what: str) -> None:
        self.note(key, describe_os_error(exc, what))


def read_optional(root: Root, relative: str, gaps: Gaps, key: str) -> str | None:
    """Read a file, or record why not under ``key`` and return None. Never raises OSError."""
    try:
        return root.read_text(relative)
    except OSError as exc:
        gaps.note_os_error(key, exc, "/" + relative.lstrip("/"))
        return None
