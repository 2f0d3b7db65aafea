"""The write policy (write_policy.py): rounding, deadbands, minimum and maximum intervals, missing readings.

Pure: no agent, no Home Assistant; times are plain seconds.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any

import pytest

from custom_components.pi_stream.write_policy import IMMEDIATE, WriteGate, WritePolicy

MIB = 1024 * 1024
SLOW = WritePolicy(step=1, deadband=5, min_interval_s=30, max_interval_s=300)


def writes(policy: WritePolicy, readings: list[tuple[float, Any]]) -> list[tuple[float, Any]]:
    gate = WriteGate(policy)
    written = []
    for now, reading in readings:
        if gate.offer(reading, now):
            written.append((now, gate.value))
    return written


# -- rounding ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "reading", "expected"),
    [
        (WritePolicy(step=1), 42.4, 42),
        (WritePolicy(step=1), 42.6, 43),
        (WritePolicy(step=1), -57.0, -57),
        (WritePolicy(step=0.5), 47.7, 47.5),
        (WritePolicy(step=0.5), 47.8, 48.0),
        (WritePolicy(step=0.01), 0.8700000001, 0.87),
        (WritePolicy(step=0.01), 0.875, 0.88),
        (WritePolicy(step=0.1), 10.04, 10.0),
        (WritePolicy(step=MIB), 311_427_072, 297 * MIB),
        (WritePolicy(step=MIB), 311_427_072 + MIB // 2 + 1, 298 * MIB),
        (WritePolicy(step=64 * 1024), 4_784_128, 4_784_128),
        (WritePolicy(significant_digits=2), 0.996, 1.0),
        (WritePolicy(significant_digits=2), 3.988, 4.0),
        (WritePolicy(significant_digits=2), 0.01234, 0.012),
        (WritePolicy(significant_digits=3), 123_456.0, 123_000),
        (WritePolicy(significant_digits=3), -0.0004567, -0.000457),
        (WritePolicy(significant_digits=2), 0.0, 0),
        (WritePolicy(), 12.345, 12.345),
        (WritePolicy(step=1), None, None),
        (WritePolicy(step=1), math.nan, None),
        (WritePolicy(step=1), math.inf, None),
        (WritePolicy(), -math.inf, None),
        (WritePolicy(step=1), "running", "running"),
        (WritePolicy(step=1), True, True),
    ],
)
def test_quantize(policy: WritePolicy, reading: Any, expected: Any) -> None:
    value = policy.quantize(reading)
    assert value == expected
    assert type(value) is type(expected)


def test_quantize_leaves_no_float_noise() -> None:
    policy = WritePolicy(step=0.01)
    for hundredths in range(0, 200):
        assert repr(policy.quantize(hundredths / 100 + 1e-7)) == repr(round(hundredths / 100, 2))


@pytest.mark.parametrize(
    "arguments",
    [
        {"step": 0},
        {"step": -1},
        {"significant_digits": 0},
        {"step": 1, "significant_digits": 2},
        {"deadband": -1},
        {"deadband_ratio": -0.1},
        {"min_interval_s": -1},
        {"missing_grace_s": -1},
        {"min_interval_s": 60, "max_interval_s": 30},
    ],
)
def test_invalid_policies_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        WritePolicy(**arguments)


# -- significance -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "last", "new", "significant"),
    [
        (WritePolicy(deadband=5), 40, 44, False),
        (WritePolicy(deadband=5), 40, 45, True),
        (WritePolicy(deadband=5), 40, 35, True),
        (WritePolicy(deadband=0.01), 0.87, 0.88, True),  # 0.010000000000000009
        (WritePolicy(deadband=0.01), 0.86, 0.87, True),  # 0.009999999999999898: float noise tolerated
        (WritePolicy(deadband=0.05), 0.87, 0.91, False),
        (WritePolicy(deadband_ratio=0.1), 1000, 1099, False),
        (WritePolicy(deadband_ratio=0.1), 1000, 1100, True),
        (WritePolicy(deadband_ratio=0.1), 1000, 900, True),
        (WritePolicy(deadband=0.1, deadband_ratio=0.5), 0, 0.1, True),  # from zero: the absolute band
        (WritePolicy(deadband=0.1, deadband_ratio=0.5), 4, 5.9, False),  # the relative band is larger
        (WritePolicy(deadband=0.1, deadband_ratio=0.5), 4, 6, True),
        (WritePolicy(deadband=1), "a", "b", True),  # non-numbers: any difference
        (WritePolicy(deadband=1), "a", "a", False),
        (IMMEDIATE, 1, 1, True),  # no deadband: the caller already knows something differs
    ],
)
def test_is_significant(policy: WritePolicy, last: Any, new: Any, significant: bool) -> None:
    assert policy.is_significant(last, new) is significant


# -- the gate ---------------------------------------------------------------------------------------------


def test_the_first_reading_is_always_written() -> None:
    for reading in (42.2, None, "running"):
        gate = WriteGate(SLOW)
        assert gate.offer(reading, 0.0)
        assert gate.written_at == 0.0


def test_rounding_hides_jitter() -> None:
    readings = [(t, 50 + (0.4 if t % 2 else -0.4)) for t in range(0, 1000)]
    assert writes(SLOW, readings) == [(0, 50)]


def test_a_change_past_the_deadband_waits_for_the_minimum_interval() -> None:
    gate = WriteGate(SLOW)
    assert gate.offer(40, 0)
    assert gate.offer(40, 1) is False
    assert gate.offer(50, 2)  # first change after the first write: not held back (settling)
    assert gate.value == 50
    assert gate.offer(60, 10) is False  # significant, but only 8 s after the last write
    assert gate.value == 50
    assert gate.offer(60, 31) is False  # 29 s
    assert gate.offer(60, 32)  # 30 s: written
    assert (gate.value, gate.written_at) == (60, 32)


def test_a_spike_that_is_over_before_the_interval_is_never_written() -> None:
    readings = [(0, 40), (1, 50), (10, 90), (20, 51), (31, 50), (40, 52)]
    assert writes(SLOW, readings) == [(0, 40), (1, 50)]


def test_a_slow_drift_is_written_after_the_maximum_interval() -> None:
    readings = [(t, 40 + t / 100) for t in range(0, 700, 5)]  # +1 every 100 s
    written = writes(SLOW, readings)
    assert written[0] == (0, 40)
    # 43 at 300 s (drift below the deadband, shown after the maximum interval), 46 at 600 s.
    assert written[1:] == [(300, 43), (600, 46)]


def test_a_drift_past_the_deadband_is_written_before_the_maximum_interval() -> None:
    readings = [(t, 40 + t / 10) for t in range(0, 120, 5)]  # +5 every 50 s
    # 49.5 rounds to 50 (half to even) at 95 s: 5 past the 45 written at 50 s.
    assert writes(SLOW, readings) == [(0, 40), (50, 45), (95, 50)]


def test_without_a_maximum_interval_small_changes_are_never_written() -> None:
    boot_time = WritePolicy(step=1, deadband=60)
    readings = [(t, 1_795_090_745.0 + (t % 3)) for t in range(0, 100_000, 7)]
    assert writes(boot_time, readings) == [(0, 1_795_090_745)]
    # A reboot moves it by more than the deadband.
    assert writes(boot_time, [(0, 1_795_090_745.0), (10, 1_795_190_000.0)]) == [
        (0, 1_795_090_745),
        (10, 1_795_190_000),
    ]


def test_a_value_disappearing_or_appearing_is_written_at_once() -> None:
    gate = WriteGate(SLOW)
    assert gate.offer(40, 0)
    assert gate.offer(41, 1) is False
    assert gate.offer(None, 2)  # no grace: unknown at once, inside the minimum interval
    assert gate.value is None
    assert gate.offer(None, 3) is False
    assert gate.offer(41, 4)  # known again, at once
    assert gate.value == 41


def test_a_briefly_missing_reading_keeps_the_last_value() -> None:
    cpu = WritePolicy(step=1, deadband=10, min_interval_s=30, max_interval_s=300, missing_grace_s=30)
    # The agent needs two samples for CPU %: null every other sample at a 1 s interval.
    readings = [(t, None if t % 2 else 12.0 + (t % 4)) for t in range(0, 200)]
    assert writes(cpu, readings) == [(0, 12)]


def test_a_reading_missing_past_the_grace_period_turns_unknown() -> None:
    policy = WritePolicy(step=1, deadband=10, min_interval_s=30, max_interval_s=300, missing_grace_s=30)
    gate = WriteGate(policy)
    assert gate.offer(12, 0)
    assert gate.offer(None, 100) is False
    assert gate.offer(None, 129) is False
    assert gate.value == 12
    assert gate.offer(None, 130)
    assert gate.value is None
    # Back: at once; and the grace clock starts over the next time.
    assert gate.offer(15, 131)
    assert gate.offer(None, 140) is False
    assert gate.offer(15, 150) is False
    assert gate.offer(None, 160) is False  # the grace restarted at 160, not 140
    assert gate.offer(None, 189) is False
    assert gate.offer(None, 190)


def test_unknown_from_the_start_is_not_held_by_the_grace() -> None:
    policy = WritePolicy(step=1, deadband=10, missing_grace_s=30, min_interval_s=30, max_interval_s=300)
    assert writes(policy, [(0, None), (1, None), (2, 13.2)]) == [(0, None), (2, 13)]


def test_immediate_writes_every_change_and_nothing_else() -> None:
    states = ["running", "running", "backoff", "starting", "starting", "running"]
    assert [value for _, value in writes(IMMEDIATE, list(enumerate(states)))] == [
        "running",
        "backoff",
        "starting",
        "running",
    ]
    counts = [0, 0, 1, 1, 2, 3, 3]
    assert [value for _, value in writes(IMMEDIATE, list(enumerate(counts)))] == [0, 1, 2, 3]


def test_attribute_changes() -> None:
    # Immediate: written with the next offer.
    gate = WriteGate(IMMEDIATE)
    assert gate.offer(1, 0, {"end": None})
    assert gate.offer(1, 1, {"end": None}) is False
    assert gate.offer(1, 2, {"end": 5})
    assert gate.extra == {"end": 5}
    # With a deadband: attributes alone are a small change, shown after the maximum interval.
    gate = WriteGate(SLOW)
    assert gate.offer(40, 0, {"by_process": {"a": 1}})
    assert gate.offer(40, 10, {"by_process": {"a": 2}}) is False
    assert gate.extra == {"by_process": {"a": 1}}
    assert gate.offer(40, 300, {"by_process": {"a": 2}})
    assert gate.extra == {"by_process": {"a": 2}}
    # A significant value change carries the attributes of its moment.
    assert gate.offer(50, 330, {"by_process": {"a": 3}})
    assert gate.extra == {"by_process": {"a": 3}}


def test_force_writes_whatever_it_is() -> None:
    gate = WriteGate(SLOW)
    assert gate.offer(40, 0)
    assert gate.offer(40, 1, force=True)
    assert gate.offer(41, 2, force=True)
    assert (gate.value, gate.written_at) == (41, 2)


def test_settling_lets_only_the_first_change_through() -> None:
    frame_rate = WritePolicy(step=0.1, deadband=1, min_interval_s=30, max_interval_s=300)
    gate = WriteGate(frame_rate)
    assert gate.offer(0.0, 0, force=True)  # set-up: the first read said 0 fps
    assert gate.offer(10.04, 1)  # written at once, despite the minimum interval
    assert gate.value == 10.0
    assert gate.offer(0.0, 2) is False  # the next change waits again
    assert gate.offer(0.0, 31)


def test_a_small_change_does_not_end_settling() -> None:
    gate = WriteGate(SLOW)
    assert gate.offer(40, 0)
    assert gate.offer(42, 1) is False  # below the deadband: nothing written, still settling
    assert gate.offer(50, 2)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize(
    "policy",
    [
        SLOW,
        WritePolicy(step=0.5, deadband=1.0, min_interval_s=30, max_interval_s=300),
        WritePolicy(
            significant_digits=2, deadband=0.1, deadband_ratio=0.5, min_interval_s=30, max_interval_s=300
        ),
        WritePolicy(step=1, deadband=10, min_interval_s=30, max_interval_s=300, missing_grace_s=30),
        WritePolicy(step=1, deadband=60),
    ],
)
def test_invariants_on_random_series(policy: WritePolicy, seed: int) -> None:
    """For any series: writes are never closer than the minimum interval (except a value appearing or
    disappearing, and the first change after the first write); what is shown never lags a change past the
    deadband by more than the minimum interval plus one sample; with a maximum interval, a differing
    reading is shown at most that long plus one sample after the last write."""
    rng = random.Random(seed)
    gate = WriteGate(policy)
    now, level = 0.0, rng.uniform(-50, 50)
    last_write: float | None = None
    write_count = 0
    for _ in range(2000):
        now += rng.choice([0.5, 1.0, 1.0, 2.0, 5.0])
        level += rng.gauss(0, 1.5) + (rng.choice([-20, 20]) if rng.random() < 0.01 else 0)
        reading = None if (policy.missing_grace_s and rng.random() < 0.3) else level
        shown_before = gate.value
        if gate.offer(reading, now):
            write_count += 1
            quick = last_write is not None and now - last_write < policy.min_interval_s
            if quick and reading is not None and shown_before is not None:
                assert write_count == 2, "a quick write that is not the first change after set-up"
            last_write = now
            continue
        assert last_write is not None
        value = policy.quantize(reading)
        if value is None or gate.value is None or value == gate.value:
            continue
        if policy.is_significant(gate.value, value):
            assert now - last_write < policy.min_interval_s, "a significant change was held back"
        if policy.max_interval_s is not None:
            assert now - last_write < policy.max_interval_s, "a drift was held past the maximum interval"


def test_the_gate_caps_writes_of_a_jittery_series() -> None:
    """One hour of a noisy CPU % sampled every second, with bursts: the slow policy writes at most once
    per minimum interval, far below one write per sample."""
    rng = random.Random(7)
    cpu = WritePolicy(step=1, deadband=10, min_interval_s=30, max_interval_s=300, missing_grace_s=30)
    busy, readings = 12.0, []
    for t in range(3600):
        busy += 0.25 * (12 - busy) + rng.gauss(0, 3) + (rng.uniform(10, 40) if rng.random() < 0.02 else 0)
        readings.append((float(t), min(max(busy, 0), 100)))
    written = writes(cpu, readings)
    every_change = writes(IMMEDIATE, [(t, round(value)) for t, value in readings])
    assert len(every_change) > 2000  # what writing each rounded sample would cost
    assert len(written) <= 3600 / 30 + 1
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(written)]
    assert all(gap >= 30 for gap in gaps[1:])
