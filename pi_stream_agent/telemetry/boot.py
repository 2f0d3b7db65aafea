"""When the Pi last booted, and whether that boot was unexpected: the previous boot ended while the agent
was running (power loss, a watchdog or a crash), not through a clean stop.

The agent keeps one small file in its state directory, ``boot.json``: the boot it runs in (the kernel's
``boot_id``, else the boot time), whether it is running, and the verdict for that boot. At start it reads the
file: a *different* boot with ``"running": true`` means the last boot ended without the agent stopping —
unexpected. At a clean stop it writes ``"running": false``. A restart of the agent within one boot keeps
the boot's verdict. Written atomically (a power cut mid-write leaves the old file, never half a file).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pi_stream_agent.events import EventBus
from pi_stream_agent.fsutil import atomic_write
from pi_stream_agent.rootfs import Gaps, Root

_LOGGER = logging.getLogger(__name__)

STATE_FILE = "boot.json"
BOOT_ID = "proc/sys/kernel/random/boot_id"
# Without a boot_id, two boot times this close are the same boot (uptime and the clock are read apart).
_SAME_BOOT_S = 5.0


@dataclass(frozen=True)
class BootRecord:
    boot_id: str | None
    last_boot: float | None
    running: bool
    unexpected_reboot: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "boot_id": self.boot_id,
            "last_boot": self.last_boot,
            "running": self.running,
            "unexpected_reboot": self.unexpected_reboot,
        }


def parse_boot_record(text: str) -> BootRecord | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    last_boot = data.get("last_boot")
    boot_id = data.get("boot_id")
    return BootRecord(
        boot_id=boot_id if isinstance(boot_id, str) else None,
        last_boot=float(last_boot) if isinstance(last_boot, int | float) else None,
        running=data.get("running") is True,
        unexpected_reboot=data.get("unexpected_reboot") is True,
    )


def same_boot(previous: BootRecord, boot_id: str | None, last_boot: float | None) -> bool:
    if boot_id is not None and previous.boot_id is not None:
        return boot_id == previous.boot_id
    if last_boot is not None and previous.last_boot is not None:
        return abs(last_boot - previous.last_boot) <= _SAME_BOOT_S
    return False


def judge(previous: BootRecord | None, boot_id: str | None, last_boot: float | None) -> bool:
    """Whether this boot was unexpected, from what the previous run left behind."""
    if previous is None:
        return False  # first run: nothing to judge by
    if same_boot(previous, boot_id, last_boot):
        return previous.unexpected_reboot  # the agent restarted; the boot's verdict stands
    return previous.running


class BootWatch:
    """``{"boot": {"last_boot", "unexpected_reboot"}}``; ``start()`` judges and records, ``stop()`` marks the
    clean stop."""

    def __init__(
        self, root: Root, state_dir: Path | None, bus: EventBus | None, clock: Callable[[], float]
    ) -> None:
        self._root = root
        self._state_dir = state_dir
        self._bus = bus
        self._clock = clock
        self.last_boot: float | None = None
        self.unexpected_reboot: bool | None = None
        self._boot_id: str | None = None
        self._reason: str | None = None

    def _read_boot(self) -> None:
        try:
            uptime = float(self._root.read_text("proc/uptime").split()[0])
        except (OSError, ValueError, IndexError):
            self._reason = "/proc/uptime not readable"
        else:
            self.last_boot = float(round(self._clock() - uptime))
        try:
            self._boot_id = self._root.read_text(BOOT_ID).strip() or None
        except OSError:
            self._boot_id = None

    def start(self) -> None:
        self._read_boot()
        if self._state_dir is None:
            return
        path = self._state_dir / STATE_FILE
        try:
            previous = parse_boot_record(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            previous = None
        except OSError as exc:
            _LOGGER.warning("Cannot read %s: %s", path, exc.strerror or exc)
            previous = None
        first_start_this_boot = previous is None or not same_boot(previous, self._boot_id, self.last_boot)
        self.unexpected_reboot = judge(previous, self._boot_id, self.last_boot)
        self._write(running=True)
        if self.unexpected_reboot and first_start_this_boot:
            _LOGGER.warning("The last boot ended without a clean shutdown (power loss, watchdog or crash)")
            if self._bus is not None:
                self._bus.publish("unexpected_reboot", {"last_boot": self.last_boot})

    def stop(self) -> None:
        """The clean stop: the next boot will know this one ended well."""
        if self._state_dir is not None and self.unexpected_reboot is not None:
            self._write(running=False)

    def _write(self, *, running: bool) -> None:
        assert self._state_dir is not None
        record = BootRecord(self._boot_id, self.last_boot, running, bool(self.unexpected_reboot))
        try:
            atomic_write(self._state_dir / STATE_FILE, (json.dumps(record.to_json()) + "\n").encode())
        except OSError as exc:
            _LOGGER.warning("Cannot write %s: %s", self._state_dir / STATE_FILE, exc.strerror or exc)

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        if self.last_boot is None:
            gaps.note("boot.last_boot", self._reason or "not read yet")
        if self.unexpected_reboot is None:
            gaps.note("boot.unexpected_reboot", "the agent keeps no state directory here")
        return {"boot": {"last_boot": self.last_boot, "unexpected_reboot": self.unexpected_reboot}}
