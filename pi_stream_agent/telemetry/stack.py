"""Builds the full set of collectors for one Root: what ``run`` serves and what ``sample`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Gaps, Root
from pi_stream_agent.telemetry.board import BoardReader
from pi_stream_agent.telemetry.dmabuf import DmabufReader
from pi_stream_agent.telemetry.firmware import FirmwareReader, GencmdTransport
from pi_stream_agent.telemetry.meminfo import MemoryReader
from pi_stream_agent.telemetry.network import NetworkReader
from pi_stream_agent.telemetry.power import PowerWatch
from pi_stream_agent.telemetry.sampler import Collector
from pi_stream_agent.telemetry.system import ProcessWatch, SystemReader
from pi_stream_agent.telemetry.throttle import ThrottleMonitor


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
    collectors: list[Collector] = field(default_factory=list)

    async def start(self) -> None:
        await self.power.start()

    async def stop(self) -> None:
        await self.power.stop()
        self.firmware.close()
        self.dmabuf.close()


def build_stack(
    root: Root,
    bus: EventBus,
    *,
    dmabuf_process_scan_interval_s: float = 30.0,
    gencmd: GencmdTransport | None = None,
    background_scans: bool = False,
) -> TelemetryStack:
    board = BoardReader(root)
    firmware = FirmwareReader(root, transport=gencmd)
    throttle = ThrottleCollector(firmware, ThrottleMonitor(bus))
    power = PowerWatch(root, bus)
    processes = ProcessWatch()
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
        collectors=collectors,
    )
