"""The simulated Raspberry Pi 4: a generated root tree, a firmware transport, and a mover task.

``build_simulated_root(base, seed)`` writes a Pi 4 (4 GB, Raspberry Pi OS Bookworm 64-bit) below ``base``
from the real captures (see :mod:`.captures`); the agent's real collectors then read it through
``Root(base)`` as they would read ``/``, and ``SimulatedPi.gencmd`` stands in for the VideoCore mailbox.
``await pi.run()`` keeps the values moving until ``pi.stop()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

from pi_stream_agent.rootfs import Root
from pi_stream_agent.simulation import captures
from pi_stream_agent.simulation.captures import capture_text
from pi_stream_agent.simulation.devices import SimulatedTools, write_usb_card
from pi_stream_agent.simulation.gencmd import SimulatedGencmd
from pi_stream_agent.simulation.model import PiModel, PiState, SimulationConfig
from pi_stream_agent.simulation.render import (
    KMSG_INFO,
    KmsgRecord,
    adapt_pi4_cpuinfo,
    bufinfo_header,
    parse_meminfo_kb,
    render_bufinfo,
    render_kmsg,
    render_loadavg,
    render_meminfo,
    render_net_dev,
    render_proc_stat,
    render_uptime,
    render_wireless,
)
from pi_stream_agent.simulation.tree import append_kmsg, pi4_video_nodes, write_atomic, write_video_nodes

_LOGGER = logging.getLogger(__name__)

MIN_INTERVAL_S = 2.0  # the mover's floor: it must stay cheap next to the agent it feeds

# A 4 GB Pi 4 Model B rev 1.4 (Sony UK): new-style code c03114 (revision-codes.adoc: 1 100 0000 0011
# 00010001 0100 = new style, 4 GB, Sony UK, BCM2711, type 4B, rev 4).
REVISION = "c03114"
MODEL = "Raspberry Pi 4 Model B Rev 1.4"
# bcm2711-rpi-4-b.dts: compatible = "raspberrypi,4-model-b", "brcm,bcm2711".
COMPATIBLE = b"raspberrypi,4-model-b\0brcm,bcm2711\0"
# The Raspberry Pi OS Bookworm arm64 kernel shared by Pi 3 and 4 (cpuinfo/pi3bplus_arm64_a020d3.txt).
OSRELEASE = "6.6.31+rpt-rpi-v8"
# The first record of every arm64 boot log: MPIDR of CPU 0 and MIDR 0x410fd083 (ARM, Cortex-A72 = part
# 0xd08, r0p3 — the implementer/part/revision in the Pi 4 cpuinfo capture).
BOOT_KMSG = "Booting Linux on physical CPU 0x0000000000 [0x410fd083]"

THERMAL_ZONE = "sys/class/thermal/thermal_zone0"
# hwmon0 is the thermal zone's own hwmon device (type cpu-thermal, '-' → '_'), rpi_volt comes second.
HWMON_THERMAL = "sys/class/hwmon/hwmon0"
HWMON_VOLT = "sys/class/hwmon/hwmon1"
BUFINFO = "sys/kernel/debug/dma_buf/bufinfo"
KMSG = "dev/kmsg"


@dataclass(frozen=True)
class _Templates:
    """Captured text the renderers fill in."""

    meminfo: str
    net_dev_header: tuple[str, ...]
    wireless_header: tuple[str, ...]


def _sysfs_values(text: str) -> dict[str, str]:
    """``path = value`` lines (sysfs/hwmon_rpi_volt_and_thermal_fixture_values.txt) → {path: value}."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if sep:
            values[key.strip()] = value.strip()
    return values


class SimulatedPi:
    """A running simulated Pi. ``root`` is what collectors read; ``gencmd`` is the firmware transport."""

    def __init__(
        self,
        base: Path,
        seed: int,
        model: PiModel,
        config: SimulationConfig,
        templates: _Templates,
        *,
        tools: SimulatedTools | None = None,
    ) -> None:
        self.base = base
        self.seed = seed
        self.model = model
        self.config = config
        self.gencmd = SimulatedGencmd(model.state)
        # What rpicam-hello and v4l2-ctl answer for this Pi's camera and capture card (devices.py).
        self.tools = tools or SimulatedTools(None)
        # Test-pattern cameras: the streams code adds its simulated cameras here.
        self.cameras: list[object] = []
        self._templates = templates
        self._alarm_written: bool | None = None
        self._stop_requested = False
        self._wake: asyncio.Event | None = None
        self._running = False

    @property
    def root(self) -> Root:
        return Root(self.base)

    @property
    def state(self) -> PiState:
        return self.model.state

    @property
    def under_voltage_active(self) -> bool:
        return self.state.under_voltage

    @property
    def under_voltage_episodes(self) -> int:
        return self.state.under_voltage_episodes

    @property
    def running(self) -> bool:
        return self._running

    # ------------------------------------------------------------------------------------------- moving

    def step(self, dt_s: float | None = None) -> None:
        """Advance the simulation by ``dt_s`` (default: one interval) and rewrite what changed."""
        self.model.step(self.config.interval_s if dt_s is None else dt_s)
        self.write_dynamic()

    def trigger_under_voltage(self, duration_s: float = 5.0) -> None:
        """Start an under-voltage episode now (or extend the current one). The files and the firmware word
        change at once; the episode ends at the first step ``duration_s`` or more later — like the kernel,
        which polls the firmware every 2 s, the end is seen on the mover's tick."""
        self.model.start_under_voltage(duration_s)
        self._write_power()

    async def run(self) -> None:
        """Move the values every ``config.interval_s`` (at least 2 s) until :meth:`stop`: one wake-up per
        interval, no other task. Steps use the real time elapsed, so the rates collectors compute match the
        simulated ones. Call :meth:`stop` and :meth:`trigger_under_voltage` from the loop's thread."""
        if self._running:
            raise RuntimeError("this simulated Pi is already running")
        self._running = True
        self._wake = asyncio.Event()
        interval = max(self.config.interval_s, MIN_INTERVAL_S)
        last = time.monotonic()
        failing = False
        try:
            while not self._stopping():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await self._wake.wait()
                if self._stopping():
                    break
                now = time.monotonic()
                # A suspended host must not produce one giant jump of every counter.
                elapsed, last = min(now - last, 10 * interval), now
                try:
                    self.step(elapsed)
                except OSError as exc:
                    # Someone removed the tree: say so once, keep the state moving, retry each tick.
                    if not failing:
                        _LOGGER.warning("Simulated Pi: cannot update %s: %s", self.base, exc)
                    failing = True
                else:
                    failing = False
        finally:
            self._running = False
            self._wake = None
            self._stop_requested = False  # a later run() starts afresh

    def _stopping(self) -> bool:
        return self._stop_requested

    def stop(self) -> None:
        """Make :meth:`run` return at once (also when called before run got going)."""
        self._stop_requested = True
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------------------------------ writing

    def write_dynamic(self) -> None:
        """Render and atomically replace every file the mover changes."""
        state = self.state
        base = self.base
        write_atomic(
            base / "proc/stat",
            render_proc_stat(
                state.cpus,
                interrupts=state.interrupts,
                context_switches=state.context_switches,
                boot_time=state.boot_time,
                forks=state.forks,
                running=state.running,
                blocked=0,
                softirqs=state.softirqs,
            ),
        )
        write_atomic(base / "proc/uptime", render_uptime(state.uptime_s, state.idle_s))
        loadavg = render_loadavg(state.loads, state.running, state.threads, state.last_pid)
        write_atomic(base / "proc/loadavg", loadavg)
        write_atomic(base / "proc/meminfo", render_meminfo(self._templates.meminfo, state.meminfo_kb))
        write_atomic(
            base / "proc/net/dev",
            render_net_dev(
                self._templates.net_dev_header,
                ((interface.name, interface.counters) for interface in state.interfaces),
            ),
        )
        wireless = render_wireless(self._templates.wireless_header, [state.wifi])
        write_atomic(base / "proc/net/wireless", wireless)
        millidegrees = f"{state.temperature_mc}\n"
        write_atomic(base / THERMAL_ZONE / "temp", millidegrees)
        write_atomic(base / HWMON_THERMAL / "temp1_input", millidegrees)
        self._write_power()

    def _write_power(self) -> None:
        """The hwmon alarm (only when it changes: sysfs_notify fires on changes) and new kernel log lines."""
        alarm = self.state.under_voltage
        if alarm != self._alarm_written:
            write_atomic(self.base / HWMON_VOLT / "in0_lcrit_alarm", f"{int(alarm)}\n")
            self._alarm_written = alarm
        append_kmsg(self.base / KMSG, self.model.take_kmsg())


def build_simulated_root(
    base: Path,
    seed: int | None = None,
    *,
    config: SimulationConfig | None = None,
    fixtures: Path | None = None,
    wall_clock: float | None = None,
) -> SimulatedPi:
    """Write a Pi 4 tree below ``base`` (created if needed) and return the :class:`SimulatedPi` moving it.

    ``seed`` makes everything repeatable (None: a random seed, kept in ``SimulatedPi.seed``); ``fixtures``
    is the captures folder (default: the shared one beside the repository when present, else the embedded
    copies); ``wall_clock`` is the Unix time the boot time is counted back from (default: now).
    """
    config = config or SimulationConfig()
    if seed is None:
        seed = random.SystemRandom().randrange(2**32)
    if fixtures is None:
        fixtures = captures.default_fixtures_dir()
    rng = random.Random(seed)  # noqa: S311 - a repeatable simulation, not cryptography

    meminfo = capture_text(captures.MEMINFO_PI4_4GB, fixtures)
    model = PiModel.create(
        rng,
        config,
        meminfo_kb=parse_meminfo_kb(meminfo),
        wall_clock=time.time() if wall_clock is None else wall_clock,
    )
    templates = _Templates(
        meminfo=meminfo,
        net_dev_header=tuple(capture_text(captures.NET_DEV, fixtures).splitlines()[:2]),
        wireless_header=tuple(capture_text(captures.NET_WIRELESS, fixtures).splitlines()[:2]),
    )
    base.mkdir(parents=True, exist_ok=True)
    for directory in ("proc/net", "proc/sys/kernel", "proc/device-tree", THERMAL_ZONE, HWMON_THERMAL,
                      HWMON_VOLT, "sys/kernel/debug/dma_buf", "sys/class/video4linux", "dev"):  # fmt: skip
        (base / directory).mkdir(parents=True, exist_ok=True)

    # Pi 4 serials are "10000000" + 8 hex digits (the captured Pi 4 cpuinfo: 100000009f0f3244).
    serial = f"10000000{rng.getrandbits(32):08x}"
    _write_static(base, fixtures, serial)
    write_atomic(base / KMSG, render_kmsg(KmsgRecord(KMSG_INFO, 0, 0, BOOT_KMSG)))

    pi = SimulatedPi(base, seed, model, config, templates, tools=SimulatedTools(fixtures))
    pi.write_dynamic()
    return pi


def _write_static(base: Path, fixtures: Path | None, serial: str) -> None:
    """The files that never change while a Pi runs."""
    cpuinfo = adapt_pi4_cpuinfo(
        capture_text(captures.CPUINFO_PI4, fixtures), revision=REVISION, serial=serial, model=MODEL
    )
    write_atomic(base / "proc/cpuinfo", cpuinfo)
    # Device-tree strings are NUL-terminated, no newline (sysfs/proc_device_tree_model_pi3bplus_no_newline).
    write_atomic(base / "proc/device-tree/model", MODEL.encode() + b"\0")
    write_atomic(base / "proc/device-tree/compatible", COMPATIBLE)
    write_atomic(base / "proc/device-tree/serial-number", serial.encode() + b"\0")
    write_atomic(base / "proc/sys/kernel/osrelease", OSRELEASE + "\n")

    paths = _sysfs_values(capture_text(captures.HWMON_THERMAL_PATHS, fixtures))
    zone_type = paths.get("sys/class/thermal/thermal_zone0/type", "cpu-thermal")
    write_atomic(base / THERMAL_ZONE / "type", zone_type + "\n")
    write_atomic(base / HWMON_THERMAL / "name", zone_type.replace("-", "_") + "\n")
    volt_names = [v for k, v in paths.items() if k.startswith("sys/class/hwmon/") and k.endswith("/name")]
    volt_name = volt_names[0] if volt_names else "rpi_volt"
    write_atomic(base / HWMON_VOLT / "name", volt_name + "\n")

    header = bufinfo_header(capture_text(captures.BUFINFO_6X_HEADER, fixtures))
    if header is not None:
        rows = capture_text(captures.BUFINFO_PI4_ROWS, fixtures)
        write_atomic(base / BUFINFO, render_bufinfo(header, rows))

    listing = capture_text(captures.V4L2_PI4_DEVICES, fixtures)
    media = sorted({line.strip()[len("/dev/") :] for line in listing.splitlines() if "/dev/media" in line})
    write_video_nodes(base, pi4_video_nodes(listing), media)
    write_usb_card(base)
