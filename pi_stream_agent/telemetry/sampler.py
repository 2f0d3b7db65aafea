"""Merges the collectors' fragments into one telemetry sample, and runs the sampling schedule.

Two clocks, on purpose:

* **flags** (the throttle word) are re-read every ``flag_check_interval_s`` — one mailbox call, no fork —
  and any change is published at once; under-voltage edges arrive from the power watch as they happen;
* the **full sample** (every collector) is taken every ``interval_s`` only while somebody listens
  (a WebSocket client), or on demand for a REST request. An idle agent does almost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pi_stream_agent.rootfs import Gaps

_LOGGER = logging.getLogger(__name__)


class Collector(Protocol):
    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]: ...


def merge_sample(collectors: Sequence[Collector], now: float, wall_time: float) -> dict[str, Any]:
    """One sample from every collector. A collector that raises (a bug: they must not) loses only its
    own section, and the reason says so; the sample loop never dies."""
    gaps = Gaps()
    sample: dict[str, Any] = {"timestamp": round(wall_time, 3)}
    for collector in collectors:
        try:
            sample.update(collector.sample(gaps, now))
        except Exception as exc:
            name = type(collector).__name__
            _LOGGER.exception("Collector %s failed", name)
            gaps.note(name, f"collector {name} failed: {exc.__class__.__name__}: {exc}")
    sample["unavailable"] = gaps.reasons
    return sample


class TelemetryService:
    """Keeps the latest sample, samples on schedule, and checks flags between samples."""

    def __init__(
        self,
        collectors: Sequence[Collector],
        *,
        interval_s: float,
        flag_check_interval_s: float,
        check_flags: Callable[[], None],
        listeners: Callable[[], int],
        on_sample: Callable[[dict[str, Any]], None],
        off_loop: bool = False,
        complete: Callable[[dict[str, Any]], None] = lambda sample: None,
    ) -> None:
        self._collectors = list(collectors)
        self._interval_s = interval_s
        self._flag_check_interval_s = flag_check_interval_s
        self._check_flags = check_flags
        self._listeners = listeners
        self._on_sample = on_sample
        # True when a collector forks (vcgencmd fallback): then sampling runs in a worker thread so the
        # event loop keeps serving requests meanwhile.
        self._off_loop = off_loop
        # Adds what the collectors do not own (the streams' numbers) to each kept sample, in place.
        self._complete = complete
        self._latest: dict[str, Any] | None = None
        self._latest_at = 0.0
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def latest(self) -> dict[str, Any] | None:
        return self._latest

    def sample_blocking(self) -> dict[str, Any]:
        now = time.monotonic()
        sample = merge_sample(self._collectors, now, time.time())
        self._complete(sample)
        self._latest, self._latest_at = sample, now
        return sample

    def prime(self) -> None:
        """Take a first reading of every counter without keeping it: rates (CPU %, bytes/s) need two
        readings, so the first sample anybody sees already has them."""
        merge_sample(self._collectors, time.monotonic(), time.time())

    async def sample_now(self) -> dict[str, Any]:
        async with self._lock:
            if self._off_loop:
                return await asyncio.get_running_loop().run_in_executor(None, self.sample_blocking)
            return self.sample_blocking()

    async def current(self) -> dict[str, Any]:
        """The latest sample if it is fresher than one interval, else a new one (REST reads)."""
        if self._latest is not None and time.monotonic() - self._latest_at < self._interval_s:
            return self._latest
        return await self.sample_now()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._sample_loop(), name="pi_stream telemetry"),
            asyncio.create_task(self._flag_loop(), name="pi_stream flags"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            if not self._listeners():
                continue
            try:
                sample = await self.sample_now()
            except Exception:
                _LOGGER.exception("Telemetry sample failed")
                continue
            self._on_sample(sample)

    async def _flag_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flag_check_interval_s)
            try:
                if self._off_loop:
                    await asyncio.get_running_loop().run_in_executor(None, self._check_flags)
                else:
                    self._check_flags()
            except Exception:
                _LOGGER.exception("Throttle flag check failed")
