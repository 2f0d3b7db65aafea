"""When to retry a publisher: exponential backoff with jitter, first retry fast, capped, reset when stable.

Pure: the clock (``now`` arguments) and the random source are passed in, so tests are exact.

The numbers, against the anchors:

- **Target:** a stream killed by accident (OOM killer, a person, a one-off encoder hiccup) is readable
  again in under 2 s. The first retry waits 0.25 s (at most 0.3 s with jitter); rpicam-vid/ffmpeg then
  need about a second to open the camera and publish, and readers get a key frame within the 1 s GOP.
- **MediaMTX** restarts a failed ``runOnInit`` command after a fixed 5 s
  (``internal/externalcmd/cmd.go``: ``restartPause = 5 * time.Second``): 20 times slower for the
  common one-off failure, and no slower for a broken setup, which then spawns a process every 5 s
  forever. We reach 4 s after four failures (0.25 + 0.5 + 1 + 2 s = 3.75 s spent) and 5 s soon after.
- **Home Assistant's stream worker** waits 10 s more after each failure and resets only after a run of
  300 s (``homeassistant/components/stream/const.py``: ``STREAM_RESTART_INCREMENT = 10``,
  ``STREAM_RESTART_RESET_TIME = 300``): gentle on remote cameras, far too slow for a local publisher.
- **Cap 30 s:** a setup that cannot work (camera unplugged, RTSP server down) costs one process start
  per 30 s, negligible even on a Pi Zero 2 W, and is noticed within 30 s once fixed. Hot-plug events
  and the API's restart bypass the wait anyway.
- **Jitter ±20 %:** several streams on one Pi that die together (RTSP server restart, under-voltage)
  would otherwise retry in lockstep and contend for the camera stack and the server at the same instant.
  It is multiplicative, so a delay stays within 0.8 to 1.2 times its base: never negative, never more
  than 20 % over the cap.
- **Stable after 30 s:** a crash loop fails within seconds (busy camera, missing buffers); a run that
  lasted as long as the longest wait was working, so its death starts again at the fast first retry.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays before successive restarts of one publisher."""

    def __init__(
        self,
        *,
        first_s: float = 0.25,
        factor: float = 2.0,
        cap_s: float = 30.0,
        jitter: float = 0.2,
        stable_after_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if first_s <= 0:
            raise ValueError("first_s must be > 0")
        if factor < 1:
            raise ValueError("factor must be >= 1")
        if cap_s < first_s:
            raise ValueError("cap_s must be >= first_s")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if stable_after_s < 0:
            raise ValueError("stable_after_s must be >= 0")
        self.first_s = first_s
        self.factor = factor
        self.cap_s = cap_s
        self.jitter = jitter
        self.stable_after_s = stable_after_s
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - timing, not security
        self._attempts = 0
        # Grown step by step and clamped, never computed as factor ** attempts (which overflows a
        # float after ~1000 failures of a stream left broken for days).
        self._next_base = first_s
        self._started_at: float | None = None

    @property
    def attempts(self) -> int:
        """Delays handed out since the last reset (= consecutive failed runs)."""
        return self._attempts

    def next_delay(self) -> float:
        """Seconds to wait before the next start; each call counts one more attempt."""
        base = self._next_base
        self._next_base = min(self.cap_s, self._next_base * self.factor)
        self._attempts += 1
        if self.jitter == 0:
            return base
        spread = 2.0 * self._rng.random() - 1.0  # [-1, 1)
        return base * (1.0 + self.jitter * spread)

    def record_start(self, now: float) -> None:
        """A start attempt at ``now`` (monotonic seconds)."""
        self._started_at = now

    def record_exit(self, now: float) -> bool:
        """The run begun at the last :meth:`record_start` ended at ``now``.

        Returns True when it had been running for ``stable_after_s`` or more, in which case the
        sequence starts again from ``first_s``.
        """
        started, self._started_at = self._started_at, None
        if started is not None and now - started >= self.stable_after_s:
            self.reset()
            return True
        return False

    def reset(self) -> None:
        self._attempts = 0
        self._next_base = self.first_s
