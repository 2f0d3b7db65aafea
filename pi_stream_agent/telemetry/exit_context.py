"""What the Pi was going through when a stream's publisher exited, and which condition (if any) the evidence
says contributed: the ``context`` and ``contributing_condition`` of a stream's ``last_exit``.

:func:`contributing_condition` is pure: it decides from an :class:`ExitContext` and the exit cause alone.
:class:`ExitContextBuilder` gathers the context at the moment of the exit from what the telemetry already
holds (the latest sample, the under-voltage episodes, the kernel lines matched to the publisher's pids): no
new file is read, except the kernel log lines not yet delivered.

The conditions and their human names are published in the vocabulary (``contributing_conditions``): this
module is their one owner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pi_stream_agent.telemetry.kernel_events import KernelEvents
from pi_stream_agent.telemetry.power import PowerWatch

UNDER_VOLTAGE = "under_voltage"
OVERHEATING = "overheating"
MEMORY_PRESSURE = "memory_pressure"
CMA_EXHAUSTED = "cma_exhausted"
NETWORK = "network"
STORAGE = "storage"

# In the order they are judged (the most direct evidence first).
CONDITION_NAMES: dict[str, str] = {
    MEMORY_PRESSURE: "Out of memory (killed by the kernel)",
    CMA_EXHAUSTED: "Camera memory (CMA) exhausted",
    UNDER_VOLTAGE: "Under-voltage",
    OVERHEATING: "Overheating",
    STORAGE: "Storage errors",
    NETWORK: "Network problems",
}

# The window an exit is judged in: what happened in the last minute counts.
WINDOW_S = 60.0
# The firmware starts soft throttling at 80 °C (Pi 4 and 5; documented as the "soft temperature limit").
HOT_C = 80.0
# rpicam-apps asks for tens of MB of camera buffers at once: below this, an allocation failure is CMA's.
CMA_LOW_BYTES = 32 * 1024 * 1024
# A Wi-Fi signal at or below this can lose an RTSP publish (common guidance: -70 dBm fair, -80 poor).
WEAK_WIFI_DBM = -75
# Exit causes a network problem can explain when the RTSP server is on another machine.
NETWORK_CAUSES = frozenset({"rtsp_unreachable", "stalled", "unknown"})
MAX_KERNEL_MESSAGES = 10


@dataclass(frozen=True)
class ExitContext:
    """The Pi's condition at an exit. ``None`` where telemetry did not know. ``oom_killed`` and
    ``storage_errors`` are the evidence behind the kernel messages (not published themselves)."""

    under_voltage_now: bool | None = None
    under_voltage_episodes_60s: int | None = None
    throttled: bool | None = None
    freq_capped: bool | None = None
    soc_temperature_c: float | None = None
    cma_free_bytes: int | None = None
    memory_available_bytes: int | None = None
    wifi_signal_dbm: int | None = None
    network_errors_per_s: float | None = None
    network_drops_per_s: float | None = None
    kernel_messages: tuple[str, ...] = ()
    oom_killed: bool = False
    storage_errors: int = 0
    remote_publish: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "under_voltage_now": self.under_voltage_now,
            "under_voltage_episodes_60s": self.under_voltage_episodes_60s,
            "throttled": self.throttled,
            "freq_capped": self.freq_capped,
            "soc_temperature_c": self.soc_temperature_c,
            "cma_free_bytes": self.cma_free_bytes,
            "memory_available_bytes": self.memory_available_bytes,
            "wifi_signal_dbm": self.wifi_signal_dbm,
            "network_errors_per_s": self.network_errors_per_s,
            "network_drops_per_s": self.network_drops_per_s,
            "kernel_messages": list(self.kernel_messages),
        }


def contributing_condition(context: ExitContext, cause: str) -> str | None:
    """The condition the evidence supports, or None. Judged in :data:`CONDITION_NAMES` order."""
    if context.oom_killed:
        return MEMORY_PRESSURE
    cma_free = context.cma_free_bytes
    if cause == "buffer_allocation" and cma_free is not None and cma_free < CMA_LOW_BYTES:
        return CMA_EXHAUSTED
    if context.under_voltage_now or (context.under_voltage_episodes_60s or 0) > 0:
        return UNDER_VOLTAGE
    hot = context.soc_temperature_c is not None and context.soc_temperature_c >= HOT_C
    # Under-voltage also sets the throttled/capped bits; with none seen, they mean heat.
    if hot or context.throttled or context.freq_capped:
        return OVERHEATING
    if context.storage_errors > 0:
        return STORAGE
    if context.remote_publish and cause in NETWORK_CAUSES:
        weak = context.wifi_signal_dbm is not None and context.wifi_signal_dbm <= WEAK_WIFI_DBM
        if weak or (context.network_errors_per_s or 0) > 0 or (context.network_drops_per_s or 0) > 0:
            return NETWORK
    return None


def _sum_rates(network: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    total: float | None = None
    for name, interface in network.items():
        if name == "lo" or not isinstance(interface, Mapping):
            continue
        for key in keys:
            value = interface.get(key)
            if isinstance(value, int | float):
                total = (total or 0.0) + value
    return None if total is None else round(total, 3)


def _wifi_signal(wifi: Mapping[str, Any]) -> int | None:
    for interface in wifi.values():
        if isinstance(interface, Mapping) and isinstance(interface.get("signal_dbm"), int | float):
            return int(interface["signal_dbm"])
    return None


def context_from_sample(sample: Mapping[str, Any] | None) -> dict[str, Any]:
    """The context fields a telemetry sample answers (an empty dict without a sample)."""
    if not sample:
        return {}
    throttle = sample.get("throttle") or {}
    network = sample.get("network") or {}
    return {
        "throttled": throttle.get("throttled"),
        "freq_capped": throttle.get("freq_capped"),
        "soc_temperature_c": sample.get("soc_temperature_c"),
        "cma_free_bytes": (sample.get("cma") or {}).get("free_bytes"),
        "memory_available_bytes": (sample.get("memory") or {}).get("available_bytes"),
        "wifi_signal_dbm": _wifi_signal(sample.get("wifi") or {}),
        "network_errors_per_s": _sum_rates(network, ("rx_errors_per_s", "tx_errors_per_s")),
        "network_drops_per_s": _sum_rates(network, ("rx_drops_per_s", "tx_drops_per_s")),
    }


class ExitContextBuilder:
    """Builds the context of one exit: ``build(pids, cause) -> (context JSON, condition)``.

    ``sample`` returns a recent telemetry sample (the agent's latest, or a fresh one when that is stale);
    ``remote_publish`` says whether publishers push to an RTSP server on another machine.
    """

    def __init__(
        self,
        power: PowerWatch,
        kernel_events: KernelEvents,
        sample: Callable[[], Mapping[str, Any] | None],
        *,
        remote_publish: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._power = power
        self._kernel_events = kernel_events
        self._sample = sample
        self._remote_publish = remote_publish
        self._clock = clock

    def context(self, pids: Sequence[int]) -> ExitContext:
        # The OOM killer logs just after its SIGKILL: the line may not have been delivered yet.
        self._power.read_pending_kernel_log()
        since = self._clock() - WINDOW_S
        events = self._kernel_events
        episodes = self._power.episodes
        storage_errors = sum(
            1 for line in events.recent if line.kind == "storage" and (line.at is None or line.at >= since)
        )
        fields = context_from_sample(self._sample())
        return ExitContext(
            under_voltage_now=episodes.active if self._power.sources else None,
            under_voltage_episodes_60s=episodes.starts_since(since) if self._power.sources else None,
            kernel_messages=tuple(events.lines_about(pids, since)[-MAX_KERNEL_MESSAGES:]),
            oom_killed=events.killed(pids, since),
            storage_errors=storage_errors,
            remote_publish=self._remote_publish,
            **fields,
        )

    def build(self, pids: Sequence[int], cause: str) -> tuple[dict[str, Any], str | None]:
        context = self.context(pids)
        return context.to_json(), contributing_condition(context, cause)
