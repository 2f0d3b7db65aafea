"""When a new sensor value is worth a state write: rounding, deadband, and minimum and maximum intervals.

Home Assistant's recorder stores every state change. The agent pushes telemetry every few seconds (every
second in the tests) and many of its numbers jitter — CPU %, a temperature that steps by 0.487 °C, a Wi-Fi
level that wobbles by a few dBm. Writing each of those would flood the database with noise while telling
nobody anything. So each numeric sensor carries a :class:`WritePolicy` and keeps a :class:`WriteGate`; the
entity offers every new reading to its gate and writes its state only when the gate says so:

1. The reading is **rounded** first (``step``, or ``significant_digits``): what is not shown cannot change.
2. Nothing is written when the rounded value (and the attributes) are what was last written.
3. Known ↔ unknown (a value appearing or disappearing) is written at once — except that a reading which
   is briefly missing keeps the last value for ``missing_grace_s`` (some values need two samples and are
   ``null`` between them).
4. No two writes are closer than ``min_interval_s``: a value cannot flap faster than that. Except once:
   the first change after a forced write (set-up, or back from unavailable), whose reading is often a
   transient — 0 fps before the first frames — is not held back.
5. A change of at least the **deadband** (``deadband``, or ``deadband_ratio`` of the last written value,
   whichever is larger) is written as soon as the minimum interval allows.
6. A smaller change — a slow drift, or only the attributes changed — is written once ``max_interval_s``
   has passed since the last write (never, when it is None).

Binary sensors and enums do not come through here: flags and stream states are written the moment they
change. This module is pure (no Home Assistant imports); the caller supplies the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# Comparisons against the deadband tolerate float noise (0.88 - 0.87 is 0.010000000000000009, but
# 0.87 - 0.86 is 0.009999999999999898).
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class WritePolicy:
    """How a numeric value may move in Home Assistant's state machine. Times in seconds.

    The defaults describe "immediate": every change of the value or of its attributes is written.
    """

    step: float | None = None  # round to a multiple of this (1: integers, 0.5, 1_048_576: whole MiB)
    significant_digits: int | None = None  # or round to this many significant figures
    deadband: float = 0.0  # a change at least this large (after rounding) is written promptly
    deadband_ratio: float = 0.0  # … or at least this share of the last written value, if that is larger
    min_interval_s: float = 0.0  # never two writes closer than this
    max_interval_s: float | None = None  # a smaller change is written after this long; None: never
    missing_grace_s: float = 0.0  # a missing reading keeps the last value this long before going unknown

    def __post_init__(self) -> None:
        if self.step is not None and not self.step > 0:
            raise ValueError(f"step must be positive, got {self.step}")
        if self.significant_digits is not None and self.significant_digits < 1:
            raise ValueError(f"significant_digits must be at least 1, got {self.significant_digits}")
        if self.step is not None and self.significant_digits is not None:
            raise ValueError("use step or significant_digits, not both")
        if self.deadband < 0 or self.deadband_ratio < 0:
            raise ValueError("deadbands cannot be negative")
        if self.min_interval_s < 0 or self.missing_grace_s < 0:
            raise ValueError("intervals cannot be negative")
        if self.max_interval_s is not None and self.max_interval_s < self.min_interval_s:
            raise ValueError("max_interval_s cannot be shorter than min_interval_s")

    @property
    def has_deadband(self) -> bool:
        return self.deadband > 0 or self.deadband_ratio > 0

    def quantize(self, value: Any) -> Any:
        """``value`` rounded as shown. Non-finite numbers become None (unknown); non-numbers pass through."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value
        if not math.isfinite(value):
            return None
        if self.step is not None:
            return _round_to_step(value, self.step)
        if self.significant_digits is not None:
            return _round_significant(value, self.significant_digits)
        return value

    def is_significant(self, last: Any, new: Any) -> bool:
        """Whether the move from ``last`` to ``new`` (both rounded, both known) reaches the deadband. Without
        a deadband any difference is significant (including a change in the attributes alone)."""
        if not self.has_deadband:
            return True
        if not _is_number(last) or not _is_number(new):
            return bool(last != new)
        threshold = max(self.deadband, self.deadband_ratio * abs(last))
        return bool(abs(new - last) >= threshold - _EPSILON * max(1.0, threshold))


IMMEDIATE = WritePolicy()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _round_to_step(value: float, step: float) -> float | int:
    """The multiple of ``step`` nearest ``value``, without float noise (0.87, not 0.8700000000000001); an
    int when ``step`` is a whole number."""
    if float(step).is_integer():
        whole = int(step)
        return round(value / whole) * whole
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) else 0
    return round(round(value / step) * step, decimals)


def _round_significant(value: float, digits: int) -> float | int:
    if value == 0:
        return 0
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    rounded = round(value, decimals)
    return int(rounded) if decimals <= 0 else rounded


class WriteGate:
    """One entity's memory of what it last wrote, and when: ``offer`` each reading, write when it says so.

    ``value`` is what the entity should show: the last *written* (rounded) value, not the latest reading.
    """

    __slots__ = ("_missing_since", "_settling", "extra", "policy", "value", "written_at")

    def __init__(self, policy: WritePolicy) -> None:
        self.policy = policy
        self.value: Any = None
        self.extra: Any = None
        self.written_at: float | None = None  # None: nothing written yet
        self._missing_since: float | None = None
        self._settling = False  # the last write was forced: the next change is not held back

    def offer(self, reading: Any, now: float, extra: Any = None, *, force: bool = False) -> bool:
        """Consider ``reading`` (raw) with its attributes ``extra`` at monotonic time ``now``. Returns True
        when it should be written; ``value``/``extra``/``written_at`` then hold what to write. ``force``
        writes whatever it is (the first write, or the entity coming back after being unavailable)."""
        policy = self.policy
        value = policy.quantize(reading)
        if force or self.written_at is None:
            return self._accept(value, extra, now, forced=True)
        if value is None:
            if self.value is not None and policy.missing_grace_s > 0:
                if self._missing_since is None:
                    self._missing_since = now
                if now - self._missing_since < policy.missing_grace_s:
                    return False  # briefly missing: keep showing the last value
        else:
            self._missing_since = None
        if value == self.value and extra == self.extra:
            return False
        if value is None or self.value is None:
            return self._accept(value, extra, now)  # a value appeared or disappeared
        elapsed = now - self.written_at
        if elapsed < policy.min_interval_s and not self._settling:
            return False
        if value != self.value and policy.is_significant(self.value, value):
            return self._accept(value, extra, now)
        if not policy.has_deadband:
            return self._accept(value, extra, now)  # immediate: the attributes changed
        if policy.max_interval_s is not None and elapsed >= policy.max_interval_s:
            return self._accept(value, extra, now)  # a slow drift, shown now and then
        return False

    def _accept(self, value: Any, extra: Any, now: float, *, forced: bool = False) -> bool:
        self.value = value
        self.extra = extra
        self.written_at = now
        self._missing_since = None
        self._settling = forced
        return True
