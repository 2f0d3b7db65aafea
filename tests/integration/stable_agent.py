"""Helpers for the entity tests: a real agent whose identity does not move, and small shared waits.

A simulated agent makes up a random id on its first start and is named after the machine's host name, so
entity ids and unique ids would differ between machines and runs. ``StableAgentProcess`` stores a fixed id
in its state directory before the first start and names itself through ``zeroconf.name`` (zeroconf stays
off), so registry snapshots are stable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from homeassistant.core import HomeAssistant

from tests.integration.agent_process import AgentProcess

STABLE_AGENT_ID = "5eed0f1e5eed0f1e"
STABLE_AGENT_NAME = "camera-pi"


@dataclass
class StableAgentProcess(AgentProcess):
    read_credentials: tuple[str, str] | None = None

    def _config(self) -> dict[str, Any]:
        config = super()._config()
        config["zeroconf"] = {**config.get("zeroconf", {}), "name": STABLE_AGENT_NAME}
        if self.read_credentials is not None:
            username, password = self.read_credentials
            config["rtsp"] = {**config["rtsp"], "read_username": username, "read_password": password}
        return config

    def start(self, timeout_s: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "agent_id").write_text(STABLE_AGENT_ID + "\n")
        super().start(timeout_s)


def run_agent(process: StableAgentProcess) -> Iterator[StableAgentProcess]:
    """For an ``agent`` fixture: ``yield from run_agent(StableAgentProcess(state_dir=...))``."""
    process.start()
    try:
        yield process
    finally:
        process.stop()


def publisher_pids(agent: AgentProcess) -> dict[str, dict[str, int]]:
    """Stream id → its publishers' pids, from the agent's ``GET /streams`` (blocking)."""
    return {stream["id"]: dict(stream["pids"]) for stream in agent.request("GET", "/streams")["streams"]}


def requested_restarts(agent: AgentProcess, stream_id: str) -> int:
    """How often the agent stopped this stream's publisher because it was asked to (its own log notes),
    as opposed to a publisher that failed by itself, which a loaded test machine sees now and then."""
    lines = agent.request("GET", f"/streams/{stream_id}/logs?lines=1000")["lines"]
    return sum(1 for line in lines if line["process"] == "agent" and line["line"] == "stopped on request")


def wait_for_pids_changed(
    agent: AgentProcess, before: dict[str, dict[str, int]], stream_ids: set[str], timeout_s: float = 20.0
) -> dict[str, dict[str, int]]:
    """Block until every stream in ``stream_ids`` runs again under new publisher pids (blocking)."""
    deadline = time.monotonic() + timeout_s
    while True:
        listing = {stream["id"]: stream for stream in agent.request("GET", "/streams")["streams"]}
        done = all(
            listing[stream_id]["state"] == "running"
            and listing[stream_id]["pids"]
            and listing[stream_id]["pids"] != before[stream_id]
            for stream_id in stream_ids
        )
        if done:
            return {stream_id: dict(stream["pids"]) for stream_id, stream in listing.items()}
        if time.monotonic() > deadline:
            raise AssertionError(f"publishers of {sorted(stream_ids)} not restarted: {listing}")
        time.sleep(0.1)


async def wait_for(
    hass: HomeAssistant, predicate: Callable[[], bool], what: str, timeout_s: float = 20.0
) -> None:
    """Let Home Assistant run until ``predicate()`` holds (pushed updates arrive on their own)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
        await hass.async_block_till_done()
