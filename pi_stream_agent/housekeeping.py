"""Restart the agent, reboot or shut down the Pi on request (``POST /api/v1/agent/restart``,
``/system/reboot``, ``/system/shutdown``; routes in ``api/housekeeping.py``).

Off unless the agent's config says ``allow_power_control: true``. The Pi's own actions are run as argument
lists (never a shell): ``systemctl reboot`` / ``systemctl poweroff``, which an agent not running as root may
run only with the polkit rule the package installs (docs/install.md, "Power control"). Restarting the agent
needs no privilege: the agent stops cleanly and exits with :data:`EXIT_RESTART`, and systemd's
``Restart=on-failure`` starts it again.

A simulated Pi performs nothing: each accepted action is recorded (:attr:`PowerControl.performed`), logged
and published as a ``power_action`` event, so the demo and the tests can see it happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pi_stream_agent.events import EventBus

_LOGGER = logging.getLogger(__name__)

# sysexits.h EX_TEMPFAIL: not a config error (2, which the unit does not retry), so systemd restarts it.
EXIT_RESTART = 75

AGENT_RESTART = "agent_restart"
REBOOT = "reboot"
SHUTDOWN = "shutdown"

# What each action runs on a real Pi (None: the agent's own restart, done by exiting).
COMMANDS: dict[str, tuple[str, ...] | None] = {
    AGENT_RESTART: None,
    REBOOT: ("systemctl", "reboot"),
    SHUTDOWN: ("systemctl", "poweroff"),
}

# Said when an action is refused: what to change, and where the privilege rule is described.
DISABLED_MESSAGE = (
    "Power control is turned off on this Pi. To allow restarting the agent, rebooting and shutting down "
    "from Home Assistant, set allow_power_control: true in the agent's config file and install the "
    "privilege rule described in docs/install.md (Power control), then restart the agent."
)

# The HTTP answer leaves before the action starts (a reboot would otherwise cut it off).
ACTION_DELAY_S = 0.3

CommandRunner = Callable[[Sequence[str]], Awaitable[int]]


async def run_command(argv: Sequence[str]) -> int:
    """Run one command as an argument list; returns its exit status (127 when it cannot be started)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        _LOGGER.error("Cannot run %s: %s", " ".join(argv), exc.strerror or exc)
        return 127
    _, stderr = await process.communicate()
    if process.returncode:
        detail = stderr.decode(errors="replace").strip().splitlines()
        _LOGGER.error(
            "%s failed (exit status %s)%s",
            " ".join(argv),
            process.returncode,
            f": {detail[-1]}" if detail else "",
        )
    return process.returncode or 0


@dataclass
class PowerControl:
    """Accepts and performs the housekeeping actions. ``request_restart`` is how the agent is asked to stop
    and exit with :data:`EXIT_RESTART` (wired by the CLI's run loop)."""

    allowed: bool
    simulated: bool
    bus: EventBus | None = None
    runner: CommandRunner = run_command
    request_restart: Callable[[], None] = lambda: None
    performed: list[dict[str, Any]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def accept(self, action: str) -> dict[str, Any]:
        """Schedule ``action`` (one of :data:`COMMANDS`) and return the 202 answer. The caller has checked
        :attr:`allowed`."""
        if action not in COMMANDS:
            raise ValueError(f"unknown action {action!r}")
        task = asyncio.get_running_loop().create_task(self._perform(action), name=f"pi_stream {action}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        answer: dict[str, Any] = {"accepted": True, "action": action}
        if self.simulated:
            answer["simulated"] = True
        return answer

    async def _perform(self, action: str) -> None:
        await asyncio.sleep(ACTION_DELAY_S)
        record = {"action": action, "timestamp": round(time.time(), 3), "simulated": self.simulated}
        self.performed.append(record)
        if self.bus is not None:
            self.bus.publish("power_action", dict(record))
        if self.simulated:
            _LOGGER.info("Simulated Pi: %s requested (recorded, not performed)", action)
            return
        command = COMMANDS[action]
        _LOGGER.warning("Housekeeping: %s requested through the API", action)
        if command is None:
            self.request_restart()
            return
        await self.runner(command)

    async def close(self) -> None:
        """Cancel actions not yet started (the agent is stopping)."""
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
