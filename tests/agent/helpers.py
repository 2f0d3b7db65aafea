"""Shared helpers for agent tests: the real Pi captures in ``../shared/fixtures/pi``, the ffmpeg captures in
``tests/fixtures/ffmpeg`` and fixture trees."""

from __future__ import annotations

import builtins
import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DIR = Path(os.environ.get("PI_STREAM_SHARED", REPO_ROOT.parent / "shared"))
PI_FIXTURES = SHARED_DIR / "fixtures" / "pi"
# Real captures this project found itself (sources in its README.md), in the same layout as the shared
# folder, which is read-only here: a name is looked up in the shared folder first, then in this one.
PROJECT_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "pi"


def fixture_path(relative: str) -> Path:
    """Where the capture ``fixtures/pi/<relative>`` lives: the shared folder, else the project's own."""
    shared = PI_FIXTURES / relative
    return shared if shared.exists() else PROJECT_FIXTURES / relative


def fixture_text(relative: str) -> str:
    """The captured text of ``fixtures/pi/<relative>`` without its ``# source/board/note`` header lines."""
    raw = fixture_path(relative).read_text(encoding="utf-8")
    lines = raw.splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith("# "):
        start += 1
    return "".join(lines[start:])


def fixture_files(subdir: str) -> list[str]:
    """Every fixture file in ``fixtures/pi/<subdir>``, as relative names usable with :func:`fixture_text`."""
    names = {
        p.name
        for base in (PI_FIXTURES, PROJECT_FIXTURES)
        if (base / subdir).is_dir()
        for p in (base / subdir).iterdir()
        if p.is_file()
    }
    return sorted(f"{subdir}/{name}" for name in names)


# What each ffmpeg the agent must understand printed (tests/fixtures/ffmpeg/README.md): Debian 12's 5.1
# (Raspberry Pi OS Bookworm) and Debian 13's 7.1 (Raspberry Pi OS Trixie).
FFMPEG_CAPTURES = REPO_ROOT / "tests" / "fixtures" / "ffmpeg"
FFMPEG_VERSIONS = ("5.1", "7.1")


@dataclass(frozen=True)
class FfmpegCapture:
    text: str  # as ffmpeg printed it, without the header
    exit_status: int | None  # the ``exit status N`` its note names, if any


def ffmpeg_capture(version: str, name: str) -> FfmpegCapture:
    """``tests/fixtures/ffmpeg/<version>/<name>.txt`` (made by tests/fixtures/ffmpeg/capture.py)."""
    lines = (FFMPEG_CAPTURES / version / f"{name}.txt").read_text(encoding="utf-8").splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith("# "):
        start += 1
    status = re.search(r"exit status (\d+)", "".join(lines[:start]))
    return FfmpegCapture("".join(lines[start:]), int(status.group(1)) if status else None)


class FixtureTree:
    """A directory that stands for ``/`` in a test: ``tree.write('proc/meminfo', text)``."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def write(self, relative: str, content: str | bytes) -> Path:
        path = self.base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def remove(self, relative: str) -> None:
        (self.base / relative).unlink()


def deny_reads(monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
    """Make opening these paths fail with EACCES, as for a non-root agent (the tests run as root, where
    chmod does not deny reads). Both os.open and open() are covered, whichever a reader uses."""
    denied = {str(p) for p in paths}
    real_os_open, real_open = os.open, builtins.open

    def refuse(file: object) -> None:
        if str(file) in denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(file))

    def fake_os_open(file: object, *args: object, **kwargs: object) -> int:
        refuse(file)
        return real_os_open(file, *args, **kwargs)  # type: ignore[arg-type]

    def fake_open(file: object, *args: object, **kwargs: object) -> object:
        refuse(file)
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(builtins, "open", fake_open)
