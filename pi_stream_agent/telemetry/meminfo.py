"""RAM, swap and CMA from ``/proc/meminfo``.

CMA matters most on Pi 0-4: camera and codec buffers come from it, and an exhausted CMA is what makes a
publisher fail with "Cannot allocate memory". A full CMA bar on its own is normal with rpicam-apps (they
reserve generously); alarms belong to allocation failures, which other modules watch.
"""

from __future__ import annotations

from typing import Any

from pi_stream_agent.rootfs import Gaps, Root, describe_os_error

_UNITS = {"kB": 1024, "KB": 1024, "mB": 1024 * 1024, "MB": 1024 * 1024}


def parse_meminfo(text: str) -> dict[str, int]:
    """``Key:   value kB`` lines → ``{key: bytes}``. Looked up by key, never by position: the field set
    differs between kernels (KReclaimable from 4.20, Zswap in 6.x, HighTotal on 32-bit…).

    Lines without a unit (``HugePages_Total:  0``) are counts and kept as they are. Unparseable lines are
    skipped.
    """
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        fields = rest.split()
        if not fields or len(fields) > 2:
            continue
        try:
            number = int(fields[0])
        except ValueError:
            continue
        if len(fields) == 2:
            multiplier = _UNITS.get(fields[1])
            if multiplier is None:
                continue
            number *= multiplier
        values[key.strip()] = number
    return values


def _percent(used: int, total: int) -> float:
    return round(used * 100.0 / total, 1)


def _estimate_available(values: dict[str, int]) -> int | None:
    """MemAvailable for kernels before 3.14: free + page cache + reclaimable slab, minus shared memory
    (tmpfs pages sit in Cached but cannot be dropped)."""
    free = values.get("MemFree")
    if free is None:
        return None
    estimate = (
        free
        + values.get("Buffers", 0)
        + values.get("Cached", 0)
        + values.get("SReclaimable", 0)
        - values.get("Shmem", 0)
    )
    return max(estimate, 0)


def _pool(
    total: int | None, free: int | None, gaps: Gaps, *, key: str, missing: str, free_name: str
) -> dict[str, Any]:
    """``{total_bytes, <free_name>, used_bytes, used_percent}`` for a total/free pair."""
    result: dict[str, Any] = {"total_bytes": total, free_name: free, "used_bytes": None, "used_percent": None}
    if total is None or free is None:
        for field, value in result.items():
            if value is None:
                gaps.note(f"{key}.{field}", missing)
        return result
    used = max(total - free, 0)
    result["used_bytes"] = used
    if total > 0:
        result["used_percent"] = _percent(used, total)
    else:
        gaps.note(f"{key}.used_percent", f"{key} total is 0 (none configured)")
    return result


def read_cma(root: Root) -> tuple[int | None, int | None]:
    """(CmaFree, CmaTotal) in bytes now, None where unknown. The one reader of CMA: the streams' pre-flight
    and exit diagnosis get it through the agent's wiring, the telemetry sample through MemoryReader."""
    try:
        values = parse_meminfo(root.read_text("proc/meminfo"))
    except (OSError, ValueError):
        return None, None
    return values.get("CmaFree"), values.get("CmaTotal")


class MemoryReader:
    """Reads ``/proc/meminfo`` once per sample."""

    def __init__(self, root: Root) -> None:
        self._root = root

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        read_error: str | None = None
        try:
            values = parse_meminfo(self._root.read_text("proc/meminfo"))
        except OSError as exc:
            read_error = describe_os_error(exc, "/proc/meminfo")
            values = {}
        available = values.get("MemAvailable")
        if available is None:
            # Kernels before 3.14 lack MemAvailable; the estimate is close enough for a gauge.
            available = _estimate_available(values)
        return {
            "cma": _pool(
                values.get("CmaTotal"),
                values.get("CmaFree"),
                gaps,
                key="cma",
                missing=read_error
                or "no CmaTotal/CmaFree in /proc/meminfo (kernel built without CONFIG_CMA)",
                free_name="free_bytes",
            ),
            "memory": _pool(
                values.get("MemTotal"),
                available,
                gaps,
                key="memory",
                missing=read_error or "no MemTotal/MemFree in /proc/meminfo",
                free_name="available_bytes",
            ),
            "swap": _pool(
                values.get("SwapTotal"),
                values.get("SwapFree"),
                gaps,
                key="swap",
                missing=read_error or "no SwapTotal/SwapFree in /proc/meminfo",
                free_name="free_bytes",
            ),
        }
