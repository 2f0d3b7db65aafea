"""Once per window: the same log message at most once a minute, then how many were held back.

A flood (thousands of malformed requests, or accept failures while descriptors run out) would otherwise
write thousands of identical tracebacks, wearing the SD card and burying everything else in the journal.
"""

from __future__ import annotations

import logging
import time
from typing import Any

WINDOW_S = 60.0


class OncePerWindow(logging.Filter):
    """Lets the first record with a given first line through, holds back repeats for ``window_s`` and then
    lets the next one through with the count of those held back. Usable as a filter on a logger, or through
    :meth:`log` for a call site's own messages."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        super().__init__()
        self.window_s = window_s
        self._last: dict[str, tuple[float, int]] = {}  # key → (when last let through, held back since)

    def _admit(self, key: str) -> int | None:
        """None to hold back; otherwise how many were held back since the last one let through."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._last[key] = (last[0], last[1] + 1)
            return None
        if len(self._last) > 256:  # keys come from messages: never let them grow without end
            self._last.clear()
        self._last[key] = (now, 0)
        return last[1] if last is not None else 0

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            key = f"{record.name}:{record.getMessage().splitlines()[0][:200]}"
        except (TypeError, ValueError, KeyError):  # a record that cannot be formatted is not ours to judge
            return True
        held = self._admit(key)
        if held is None:
            return False
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self.window_s:.0f} s)"
        return True

    def log(self, logger: logging.Logger, level: int, message: str, *args: Any) -> None:
        """``logger.log(level, message, *args)``, once per window for the same ``message`` template."""
        held = self._admit(f"{logger.name}:{message}")
        if held is None:
            return
        suffix = f" (and {held} more like it in the last {self.window_s:.0f} s)" if held else ""
        logger.log(level, message + suffix, *args)
