"""Builds the full set of collectors for one Root: what ``run`` serves and what ``sample`` prints."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.board import BoardReader
from pi_stream_agent.telemetry.boot import BootWatch
from pi_stream_agent.telemetry.dmabuf import DmabufReader
from pi_stream_agent.telemetry.fan import FanReader
from pi_stream_agent.telemetry.firmware import FirmwareReader, GencmdTransport
from pi_stream_agent.telemetry.kernel_events import KernelEvents
from pi_stream_agent.telemetry.meminfo import MemoryReader
from pi_stream_agent.telemetry.network import NetworkReader
from pi_stream_agent.telemetry.power import PowerWatch
from pi_stream_agent.telemetry.sampler import Collector
from pi_stream_agent.telemetry.storage import StorageReader
from pi_stream_agent.telemetry.supply import SupplyReader
from pi_stream_agent.telemetry.system import ProcessWatch, SystemReader
from pi_stream_agent.telemetry.throttle import ThrottleMonitor


def stream_of_process(name: str | None) -> str | None:
    """Publishers are tracked as ``<stream>/<program>`` (streams/manager.py): the stream part."""
    if name is None or "/" not in name:
        return None
    return name.partition("/")[0]


class ThrottleCollector:
    """Reads the throttle word fresh for every sample and feeds the monitor, which publishes edges."""

    def __init__(self, firmware: FirmwareReader, monitor: ThrottleMonitor) -> None:
        self._firmware = firmware
        self._monitor = monitor

    def check(self, gaps: Gaps | None = None) -> None:
        """One reading; a changed flag is published by the monitor at once."""
        gaps = gaps if gaps is not None else Gaps()
        reading = self._firmware.read_throttled(gaps)
        if reading is None:
            self._monitor.unavailable(gaps.reasons.get("throttle", "no get_throttled reading"))
        else:
            self._monitor.update(reading.raw, reading.source)

    def sample(self, gaps: Gaps, now: float) -> dict[str, Any]:
        self.check(gaps)
        return self._monitor.sample(gaps, now)


@dataclass
class TelemetryStack:
    root: Root
    bus: EventBus
    board: BoardReader
    firmware: FirmwareReader
    throttle: ThrottleCollector
    power: PowerWatch
    processes: ProcessWatch
    dmabuf: DmabufReader
    kernel_events: KernelEvents
    boot: BootWatch
    collectors: list[Collector] = field(default_factory=list)

    async def start(self) -> None:
        self.boot.start()
        await self.power.start()

    async def stop(self) -> None:
        await self.power.stop()
        self.boot.stop()
        self.firmware.close()
        self.dmabuf.close()


def build_stack(
    root: Root,
    bus: EventBus,
    *,
    dmabuf_process_scan_interval_s: float = 30.0,
    gencmd: GencmdTransport | None = None,
    background_scans: bool = False,
    state_dir: Path | None = None,
    statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
) -> TelemetryStack:
    """``state_dir`` holds the boot record (None: no unexpected-reboot verdict, as for ``sample``)."""
    board = BoardReader(root)
    firmware = FirmwareReader(root, transport=gencmd)
    throttle = ThrottleCollector(firmware, ThrottleMonitor(bus))
    processes = ProcessWatch()
    kernel_events = KernelEvents(bus, stream_of=lambda pid: stream_of_process(processes.name_of(pid)))
    power = PowerWatch(root, bus, kernel_events=kernel_events)
    boot = BootWatch(root, state_dir, bus, time.time)
    dmabuf = DmabufReader(
        root, process_scan_interval_s=dmabuf_process_scan_interval_s, background=background_scans
    )
    collectors: list[Collector] = [
        board,
        MemoryReader(root),
        dmabuf,
        throttle,
        power,
        firmware,
        SystemReader(root, processes),
        NetworkReader(root),
        StorageReader(root, kernel_events, statvfs=statvfs),
        kernel_events,
        SupplyReader(root, firmware),
        FanReader(root),
        boot,
    ]
    return TelemetryStack(
        root=root,
        bus=bus,
        board=board,
        firmware=firmware,
        throttle=throttle,
        power=power,
        processes=processes,
        dmabuf=dmabuf,
        kernel_events=kernel_events,
        boot=boot,
        collectors=collectors,
    )
