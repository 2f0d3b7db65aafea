"""Loopback clients for the server benchmarks: agent WebSocket subscribers and fixed-rate REST pollers.

Every loop is bounded by a deadline; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp


@dataclass
class ClientStats:
    label: str
    messages: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        ordered = sorted(self.latencies_ms)
        median = ordered[len(ordered) // 2] if ordered else None
        return {
            "label": self.label,
            "messages": self.messages,
            "bytes": self.bytes,
            "median_latency_ms": round(median, 2) if median is not None else None,
            "errors": self.errors[:5],
            "error_count": len(self.errors),
        }


async def websocket_client(url: str, headers: dict[str, str], until: float, stats: ClientStats) -> None:
    """Subscribe and read everything the agent pushes until the monotonic deadline ``until``."""
    try:
        async with aiohttp.ClientSession(headers=headers) as session, session.ws_connect(url) as ws:
            while (left := until - time.monotonic()) > 0:
                try:
                    message = await asyncio.wait_for(ws.receive(), timeout=left)
                except TimeoutError:
                    break
                if message.type == aiohttp.WSMsgType.TEXT:
                    stats.messages += 1
                    stats.bytes += len(message.data)
                elif message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    stats.errors.append(f"closed: {message.type.name}")
                    break
    except (aiohttp.ClientError, OSError) as exc:
        stats.errors.append(f"{type(exc).__name__}: {exc}")


async def rest_poller(
    url: str, headers: dict[str, str], period_s: float, until: float, stats: ClientStats
) -> None:
    """GET ``url`` every ``period_s`` (fixed rate, one keep-alive connection) until the deadline."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        next_at = time.monotonic()
        while next_at < until:
            started = time.monotonic()
            try:
                async with session.get(url) as response:
                    body = await response.read()
                    if response.status != 200:
                        stats.errors.append(f"HTTP {response.status}: {body[:200]!r}")
                    else:
                        stats.messages += 1
                        stats.bytes += len(body)
                        stats.latencies_ms.append((time.monotonic() - started) * 1000)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                stats.errors.append(f"{type(exc).__name__}: {exc}")
            next_at += period_s
            await asyncio.sleep(max(0.0, min(next_at, until) - time.monotonic()))


async def wait_http(url: str, headers: dict[str, str], timeout_s: float) -> None:
    """Until ``url`` answers 200 (a server that listens before it is ready)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    async with aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        await response.read()
                        return
                    last = f"HTTP {response.status}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout_s} s ({last})")
