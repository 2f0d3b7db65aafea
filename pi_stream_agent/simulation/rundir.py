"""Where a simulating agent keeps its generated Pi tree: ``$TMPDIR/pi-stream-simulated-<pid>-<random>``,
one directory per run, removed by the next start when the run that made it was killed (``rundirs.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from pi_stream_agent import rundirs

PREFIX: Final = "pi-stream-simulated-"


def make_run_dir(parent: Path | None = None) -> Path:
    """A new, empty directory for this run's tree, after removing those of runs that were killed."""
    return rundirs.make_run_dir(PREFIX, parent)
