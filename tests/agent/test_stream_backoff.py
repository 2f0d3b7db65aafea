"""Backoff: exact sequences with a fixed random source, the cap, jitter bounds, reset after a stable run."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pi_stream_agent.streams.backoff import Backoff


class FixedRandom(random.Random):
    """A random source that always draws the same number."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


BASES = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def delays(backoff: Backoff, count: int) -> list[float]:
    return [backoff.next_delay() for _ in range(count)]


def test_sequence_at_the_middle_of_the_jitter_range_is_the_plain_exponential() -> None:
    # u = 0.5 means no jitter: first retry fast, doubling, capped at 30 s.
    assert delays(Backoff(rng=FixedRandom(0.5)), 10) == BASES


def test_seeded_sequence_exact_values() -> None:
    # base * (1 + 0.2 * (2u - 1)) with u drawn from random.Random(2024): 0.4700907…, 0.7282642…, …
    expected = [
        0.24700907184310705,
        0.5456528582846415,
        0.921500543356543,
        2.309838615200012,
        3.856141743149961,
        8.693166059461257,
        14.49741528192427,
        26.941999790324076,
        33.750979519061055,
        29.9796165842568,
    ]
    assert delays(Backoff(rng=random.Random(2024)), 10) == pytest.approx(expected, rel=1e-12)


def test_jitter_extremes_stay_within_twenty_percent() -> None:
    low = delays(Backoff(rng=FixedRandom(0.0)), 9)
    assert low == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 24.0, 24.0])
    high = delays(Backoff(rng=FixedRandom(0.999999)), 9)
    assert high == pytest.approx([b * 1.2 for b in BASES[:9]], rel=1e-5)
    assert all(d < b * 1.2 for d, b in zip(high, BASES, strict=False))


def test_first_retry_leaves_time_for_a_restart_within_two_seconds() -> None:
    for seed in range(200):
        first = Backoff(rng=random.Random(seed)).next_delay()
        assert 0.2 <= first <= 0.3


def test_jitter_bounds_over_many_draws() -> None:
    backoff = Backoff(rng=random.Random(7))
    ratios = []
    for attempt in range(5000):
        base = min(30.0, 0.25 * 2.0 ** min(attempt, 10))
        delay = backoff.next_delay()
        ratio = delay / base
        assert 0.8 <= ratio < 1.2, (attempt, delay)
        assert delay > 0
        assert delay < 30.0 * 1.2
        ratios.append(ratio)
    # The jitter really spreads: the draws reach both ends of the ±20 % band.
    assert min(ratios) < 0.81
    assert max(ratios) > 1.19


def test_cap_holds_for_a_stream_broken_for_days() -> None:
    # Thousands of failures must neither overflow (2.0 ** 1100 would) nor exceed the cap.
    backoff = Backoff(jitter=0.0)
    values = delays(backoff, 3000)
    assert values[:8] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert set(values[7:]) == {30.0}
    assert backoff.attempts == 3000


def test_streams_on_one_pi_do_not_retry_in_lockstep() -> None:
    one, two = Backoff(rng=random.Random(1)), Backoff(rng=random.Random(2))
    assert delays(one, 6) != delays(two, 6)
    # The default random source is its own per instance as well.
    assert delays(Backoff(), 6) != delays(Backoff(), 6)


def test_stable_run_resets_the_sequence() -> None:
    backoff = Backoff(rng=FixedRandom(0.5))
    assert delays(backoff, 3) == [0.25, 0.5, 1.0]
    backoff.record_start(100.0)
    assert backoff.record_exit(130.0) is True  # ran exactly stable_after_s
    assert backoff.attempts == 0
    assert backoff.next_delay() == 0.25


def test_short_run_keeps_growing() -> None:
    backoff = Backoff(rng=FixedRandom(0.5))
    assert delays(backoff, 3) == [0.25, 0.5, 1.0]
    backoff.record_start(100.0)
    assert backoff.record_exit(129.9) is False
    assert backoff.attempts == 3
    assert backoff.next_delay() == 2.0


def test_exit_without_start_changes_nothing() -> None:
    backoff = Backoff(rng=FixedRandom(0.5))
    backoff.next_delay()
    assert backoff.record_exit(10_000.0) is False
    assert backoff.attempts == 1
    # A start is consumed by its exit: a second exit does not count the same start again.
    backoff.record_start(0.0)
    assert backoff.record_exit(1.0) is False
    assert backoff.record_exit(100.0) is False
    assert backoff.attempts == 1


def test_reset() -> None:
    backoff = Backoff(rng=FixedRandom(0.5))
    delays(backoff, 8)
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() == 0.25


def test_custom_numbers() -> None:
    backoff = Backoff(first_s=1.0, factor=3.0, cap_s=10.0, jitter=0.0, stable_after_s=5.0)
    assert delays(backoff, 4) == [1.0, 3.0, 9.0, 10.0]
    backoff.record_start(0.0)
    assert backoff.record_exit(5.0) is True
    assert backoff.next_delay() == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"first_s": 0.0},
        {"factor": 0.5},
        {"cap_s": 0.1},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"stable_after_s": -1.0},
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
