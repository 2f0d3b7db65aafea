"""The simulated Pi's changing state and how it moves: no I/O here, only numbers and a seeded RNG.

Every random draw comes from one ``random.Random(seed)`` and each step draws the same number of values
whatever the state, so one seed plus one sequence of step lengths and triggers gives one history.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from pi_stream_agent.simulation.render import (
    KMSG_CRIT,
    KMSG_ERR,
    KMSG_INFO,
    CpuTicks,
    KmsgRecord,
    WirelessLine,
    block_io_error,
    ext4_error,
    ext4_remount_read_only,
    mmc_timeout,
    oom_kill_summary,
    oom_killed_process,
    under_voltage_detected,
    voltage_normalised,
)

USER_HZ = 100  # /proc/stat ticks per second per CPU (CONFIG_HZ does not matter: the kernel converts)
CPU_COUNT = 4

# Throttle word during an under-voltage episode: under-voltage now (bit 0) and throttled now (bit 2),
# with their sticky "has occurred" bits 16 and 18 — 0x50005, the word in the captured kernel log line
# (sysfs/kernel_log_undervoltage_lines.txt) and in vcgencmd samples (vcgencmd/get_throttled_samples…).
THROTTLED_DURING_EPISODE = 0x50005
# After the episode only the sticky bits remain (0x50000, also seen in those samples). A real Pi whose
# raspberrypi-hwmon clears the sticky bits every 2 s may read 0x0 here instead; the simulation keeps them
# so the "has occurred" flags can be seen (ThrottleMonitor ORs in what it saw either way).
THROTTLED_AFTER_EPISODE = 0x50000
# raspberrypi-hwmon prints the word it read with the sticky bits cleared once the voltage is back.
NORMALISED_WORD = 0x00000000

# BCM2711 thermal sensor (bcm2711.dtsi cpu-thermal coefficients <(-487) 410040>): the kernel reports
# 410040 - 487 * raw m°C, so real readings move in 0.487 °C steps.
_THERMAL_OFFSET_MC = 410_040
_THERMAL_SLOPE_MC = 487

TEMP_MIN_C = 40.0
TEMP_MAX_C = 70.0
# The sensor codes whose readings fall inside 40-70 °C (higher code = cooler).
_RAW_COOLEST = math.floor((_THERMAL_OFFSET_MC - TEMP_MIN_C * 1000) / _THERMAL_SLOPE_MC)
_RAW_HOTTEST = math.ceil((_THERMAL_OFFSET_MC - TEMP_MAX_C * 1000) / _THERMAL_SLOPE_MC)
# How fast the SoC warms to a new load (the heatsink's thermal time constant, roughly).
_HEAT_TIME_CONSTANT_S = 40.0


@dataclass(frozen=True)
class SimulationConfig:
    """How the simulated Pi behaves. Durations in seconds."""

    # The mover never wakes more often than every 2 s (see SimulatedPi.run).
    interval_s: float = 2.0
    # Mean time between automatic under-voltage episodes (exponential); None: only triggered ones.
    under_voltage_mean_interval_s: float | None = 240.0
    under_voltage_min_s: float = 1.0
    under_voltage_max_s: float = 8.0
    # The slow sine on the SoC temperature (a day: warmer afternoons).
    temperature_period_s: float = 86_400.0
    temperature_mean_c: float = 50.0
    temperature_amplitude_c: float = 5.0


@dataclass
class Interface:
    """One /proc/net/dev line's counters and the rates it moves at."""

    name: str
    counters: dict[str, int]
    rx_bytes_per_s: float
    tx_bytes_per_s: float
    rx_packet_bytes: int  # mean packet size, to derive packet counts
    tx_packet_bytes: int
    rx_drop_chance: float  # per step


@dataclass
class PiState:
    """Everything the mover changes. Files are rendered from this alone."""

    elapsed_s: float  # simulated seconds since build
    uptime_s: float
    boot_time: int
    cpus: list[CpuTicks]
    busy: float  # fraction of all CPUs busy, 0..1
    loads: list[float]
    threads: int
    running: int
    last_pid: int
    forks: int
    context_switches: int
    interrupts: list[int]
    softirqs: list[int]
    heat: float  # the busy share smoothed over the SoC's thermal time constant
    temperature_c: float  # the continuous model; files show it quantised
    temperature_walk_c: float
    temperature_phase: float
    meminfo_kb: dict[str, int]
    cma_bounds_kb: tuple[int, int]
    mem_free_bounds_kb: tuple[int, int]
    interfaces: list[Interface]
    wifi: WirelessLine
    throttled: int = 0
    under_voltage: bool = False
    under_voltage_until_s: float = 0.0
    under_voltage_episodes: int = 0
    kmsg_seq: int = 0
    root_read_only: bool = False  # ext4 remounted the root read-only after storage errors
    kmsg: list[KmsgRecord] = field(default_factory=list)  # records not yet written out

    @property
    def temperature_mc(self) -> int:
        """The temperature as /sys/class/thermal/thermal_zone0/temp shows it (BCM2711 sensor steps)."""
        raw = round((_THERMAL_OFFSET_MC - self.temperature_c * 1000.0) / _THERMAL_SLOPE_MC)
        return _THERMAL_OFFSET_MC - _THERMAL_SLOPE_MC * min(max(raw, _RAW_HOTTEST), _RAW_COOLEST)

    @property
    def idle_s(self) -> float:
        return sum(cpu.idle for cpu in self.cpus) / USER_HZ


def _split_busy(ticks: int, busy_ticks: int, iowait: int, cpu: CpuTicks) -> None:
    """Add one step's ticks to a CPU: the busy part split like a light camera box (mostly user time)."""
    system = busy_ticks * 22 // 100
    softirq = busy_ticks * 5 // 100
    irq = busy_ticks * 2 // 100
    nice = busy_ticks // 100
    cpu.user += busy_ticks - system - softirq - irq - nice
    cpu.system += system
    cpu.softirq += softirq
    cpu.irq += irq
    cpu.nice += nice
    cpu.iowait += iowait
    cpu.idle += ticks - busy_ticks - iowait


class PiModel:
    """State plus the rules moving it: ``step`` advances time, ``start_under_voltage`` begins an episode."""

    def __init__(self, state: PiState, rng: random.Random, config: SimulationConfig) -> None:
        self.state = state
        self.rng = rng
        self.config = config
        self._tick_carry = 0.0

    # ---------------------------------------------------------------------------------------- creation

    @classmethod
    def create(
        cls,
        rng: random.Random,
        config: SimulationConfig,
        *,
        meminfo_kb: dict[str, int],
        wall_clock: float,
    ) -> PiModel:
        """A Pi that has been up for one to four days, with counters to match."""
        uptime = rng.uniform(86_400.0, 4 * 86_400.0)
        busy = 0.12
        cpus = [CpuTicks() for _ in range(CPU_COUNT)]
        for cpu in cpus:
            ticks = int(uptime * USER_HZ)
            _split_busy(ticks, int(ticks * rng.uniform(0.08, 0.14)), int(ticks * 0.002), cpu)
        cma_free = meminfo_kb.get("CmaFree", 0)
        cma_total = meminfo_kb.get("CmaTotal", cma_free)
        mem_free = meminfo_kb.get("MemFree", 0)
        interfaces = [
            Interface("lo", {}, 1_500.0, 1_500.0, 120, 120, 0.0),
            Interface("eth0", {}, 6_000.0, 24_000.0, 300, 900, 0.04),
            Interface("wlan0", {}, 1_200.0, 400.0, 250, 180, 0.01),
        ]
        for interface in interfaces:
            rx = int(interface.rx_bytes_per_s * uptime * rng.uniform(0.8, 1.2))
            tx = int(interface.tx_bytes_per_s * uptime * rng.uniform(0.8, 1.2))
            rx_packets = rx // interface.rx_packet_bytes
            interface.counters = {
                "rx_bytes": rx,
                "rx_packets": rx_packets,
                "rx_drop": int(rx_packets * interface.rx_drop_chance * 0.05),
                "rx_multicast": rx_packets // 50 if interface.name != "lo" else 0,
                "tx_bytes": tx,
                "tx_packets": tx // interface.tx_packet_bytes,
            }
        if interfaces[0].name == "lo":  # loopback: what is sent is what is received
            interfaces[0].counters["tx_bytes"] = interfaces[0].counters["rx_bytes"]
            interfaces[0].counters["tx_packets"] = interfaces[0].counters["rx_packets"]
        forks = int(uptime * rng.uniform(0.3, 0.6))
        state = PiState(
            elapsed_s=0.0,
            uptime_s=uptime,
            boot_time=int(wall_clock - uptime),
            cpus=cpus,
            busy=busy,
            heat=busy,
            loads=[busy * CPU_COUNT] * 3,
            threads=rng.randint(150, 190),
            running=1,
            last_pid=forks + 500,
            forks=forks + 500,
            context_switches=int(uptime * rng.uniform(900, 1300)),
            interrupts=[0, *(int(uptime * rate) for rate in (250.0, 90.0, 40.0, 15.0, 6.0))],
            softirqs=[int(uptime * rate) for rate in (0.1, 180.0, 4.0, 30.0, 3.0, 0.0, 1.0, 60.0, 0.0, 70.0)],
            temperature_c=config.temperature_mean_c,
            temperature_walk_c=rng.uniform(-2.0, 2.0),
            temperature_phase=rng.uniform(0.0, 2 * math.pi),
            meminfo_kb=dict(meminfo_kb),
            # CMA moves between 45 % and 70 % free around the captured 58 %; MemFree within ±10 %.
            cma_bounds_kb=(cma_total * 45 // 100, cma_total * 70 // 100),
            mem_free_bounds_kb=(mem_free * 9 // 10, mem_free * 11 // 10),
            interfaces=interfaces,
            wifi=WirelessLine(
                "wlan0",
                level_dbm=-55,
                discard_retry=int(uptime * rng.uniform(0.005, 0.015)),
                missed_beacon=int(uptime / 20_000),
            ),
        )
        model = cls(state, rng, config)
        model._update_temperature(0.0)
        return model

    # ------------------------------------------------------------------------------------------- steps

    def step(self, dt_s: float) -> None:
        """Advance ``dt_s`` seconds: temperature, CPU, load, memory, network, Wi-Fi, under-voltage."""
        dt = max(dt_s, 0.0)
        state = self.state
        state.elapsed_s += dt
        state.uptime_s += dt
        self._step_cpu(dt)
        self._update_temperature(dt)
        self._step_memory()
        self._step_network(dt)
        self._step_under_voltage(dt)

    def _step_cpu(self, dt: float) -> None:
        state, rng = self.state, self.rng
        # Busy share: mean-reverting walk around 12 % with the odd short burst (apt, a client connecting).
        burst = rng.random() < 0.02
        size = rng.uniform(0.1, 0.4)  # drawn every step: the draw count stays fixed
        state.busy += 0.25 * (0.12 - state.busy) + rng.gauss(0.0, 0.03) + (size if burst else 0.0)
        state.busy = min(max(state.busy, 0.02), 0.95)
        state.heat += (state.busy - state.heat) * (1.0 - math.exp(-dt / _HEAT_TIME_CONSTANT_S))
        self._tick_carry += dt * USER_HZ
        ticks = int(self._tick_carry)
        self._tick_carry -= ticks
        for cpu in state.cpus:
            share = min(1.0, state.busy * rng.uniform(0.6, 1.4))
            busy_ticks = round(ticks * share)
            iowait = min(ticks - busy_ticks, round(ticks * rng.uniform(0.0, 0.01)))
            _split_busy(ticks, busy_ticks, iowait, cpu)
        # The kernel's load average: exponential decay over 1, 5 and 15 minutes of the runnable count.
        runnable = state.busy * CPU_COUNT
        for index, minutes in enumerate((1, 5, 15)):
            decay = math.exp(-dt / (60.0 * minutes))
            state.loads[index] = state.loads[index] * decay + runnable * (1.0 - decay)
        state.running = max(1, min(CPU_COUNT, round(runnable + rng.uniform(0.0, 1.0))))
        new_processes = int(dt * rng.uniform(0.0, 1.0))
        state.forks += new_processes
        state.last_pid += new_processes
        state.threads = min(max(state.threads + rng.randint(-2, 2), 140), 220)
        state.context_switches += int(dt * (800 + 4000 * state.busy))
        for index, rate in enumerate((0.0, 250.0, 90.0, 40.0, 15.0, 6.0)):
            state.interrupts[index] += int(dt * rate * (0.8 + state.busy))
        for index, rate in enumerate((0.1, 180.0, 4.0, 30.0, 3.0, 0.0, 1.0, 60.0, 0.0, 70.0)):
            state.softirqs[index] += int(dt * rate)

    def _update_temperature(self, dt: float) -> None:
        """A slow sine over ``temperature_period_s``, a mean-reverting random walk and the CPU's heat,
        kept in 40-70 °C."""
        state, config = self.state, self.config
        scale = math.sqrt(dt / 2.0) if dt > 0 else 0.0
        pull = 0.01 * state.temperature_walk_c * dt / 2.0
        state.temperature_walk_c += self.rng.gauss(0.0, 0.35) * scale - pull
        state.temperature_walk_c = min(max(state.temperature_walk_c, -8.0), 8.0)
        angle = 2 * math.pi * state.elapsed_s / config.temperature_period_s + state.temperature_phase
        value = (
            config.temperature_mean_c
            + config.temperature_amplitude_c * math.sin(angle)
            + state.temperature_walk_c
            + 10.0 * (state.heat - 0.12)
        )
        state.temperature_c = min(max(value, TEMP_MIN_C), TEMP_MAX_C)

    def _step_memory(self) -> None:
        state, rng = self.state, self.rng
        values = state.meminfo_kb
        if "CmaFree" in values:
            # CMA is handed out in 4 kB pages: move by whole pages, up to 2 MiB a step.
            low, high = state.cma_bounds_kb
            values["CmaFree"] = min(max(values["CmaFree"] + 4 * rng.randint(-512, 512), low), high)
        if "MemFree" in values:
            low, high = state.mem_free_bounds_kb
            old = values["MemFree"]
            values["MemFree"] = min(max(old + 4 * rng.randint(-1024, 1024), low), high)
            if "MemAvailable" in values:
                values["MemAvailable"] += values["MemFree"] - old

    def _step_network(self, dt: float) -> None:
        state, rng = self.state, self.rng
        for interface in state.interfaces:
            counters = interface.counters
            rx = int(interface.rx_bytes_per_s * dt * rng.uniform(0.6, 1.4))
            tx = int(interface.tx_bytes_per_s * dt * rng.uniform(0.6, 1.4))
            if interface.name == "lo":
                tx = rx
            counters["rx_bytes"] = counters.get("rx_bytes", 0) + rx
            counters["tx_bytes"] = counters.get("tx_bytes", 0) + tx
            counters["rx_packets"] = counters.get("rx_packets", 0) + max(1, rx // interface.rx_packet_bytes)
            counters["tx_packets"] = counters.get("tx_packets", 0) + max(1, tx // interface.tx_packet_bytes)
            # An occasional receive drop: on a Pi's eth0 mostly frames for protocols nobody listens to.
            drops = rng.randint(1, 4)
            if rng.random() < interface.rx_drop_chance:
                counters["rx_drop"] = counters.get("rx_drop", 0) + drops
            if interface.name != "lo" and rng.random() < 0.2:
                counters["rx_multicast"] = counters.get("rx_multicast", 0) + 1
        wifi = state.wifi
        # Signal wobbles around -55 dBm (a room away from the access point); retries keep growing.
        wobble = rng.gauss(0.0, 1.5)
        wifi.level_dbm = round(min(max(-55.0 + wobble + 0.5 * (wifi.level_dbm + 55), -68.0), -44.0))
        wifi.discard_retry += rng.randint(0, 3)
        if rng.random() < 0.01:
            wifi.missed_beacon += 1

    # ----------------------------------------------------------------------------------- under-voltage

    def _step_under_voltage(self, dt: float) -> None:
        state, config, rng = self.state, self.config, self.rng
        chance_draw = rng.random()
        duration = rng.uniform(config.under_voltage_min_s, config.under_voltage_max_s)
        if state.under_voltage and state.elapsed_s >= state.under_voltage_until_s:
            self._end_under_voltage()
            return
        mean = config.under_voltage_mean_interval_s
        # A Poisson process: the chance of a start within dt is 1 - exp(-dt / mean).
        if not state.under_voltage and mean and dt > 0 and chance_draw < 1.0 - math.exp(-dt / mean):
            self.start_under_voltage(duration)

    def start_under_voltage(self, duration_s: float) -> bool:
        """Begin an episode now (or extend the running one). True when this started a new episode.

        What a real Pi 4 shows: the firmware word gets bits 0, 2, 16 and 18; raspberrypi-hwmon sees the
        sticky bit at its next 2 s poll, sets ``in0_lcrit_alarm`` and logs ``Under-voltage detected!``.
        """
        state = self.state
        until = state.elapsed_s + max(duration_s, 0.0)
        if state.under_voltage:
            state.under_voltage_until_s = max(state.under_voltage_until_s, until)
            return False
        state.under_voltage = True
        state.under_voltage_until_s = until
        state.under_voltage_episodes += 1
        state.throttled = THROTTLED_DURING_EPISODE
        self._log(KMSG_CRIT, under_voltage_detected(THROTTLED_DURING_EPISODE))
        return True

    def _end_under_voltage(self) -> None:
        state = self.state
        state.under_voltage = False
        state.throttled = THROTTLED_AFTER_EPISODE
        self._log(KMSG_INFO, voltage_normalised(NORMALISED_WORD))

    def oom_kill(self, pid: int, process: str, anon_rss_kb: int) -> None:
        """The OOM killer takes ``pid``: its two lines (the caller delivers the SIGKILL)."""
        self._log(KMSG_INFO, oom_kill_summary(pid, process))
        self._log(KMSG_ERR, oom_killed_process(pid, process, anon_rss_kb))

    def storage_error(self, read_only: bool) -> None:
        """The SD card fails a write; with ``read_only`` ext4 gives up and remounts the root read-only."""
        state = self.state
        sector = 3_000_000 + state.kmsg_seq * 8
        self._log(KMSG_ERR, mmc_timeout())
        self._log(KMSG_ERR, block_io_error(sector))
        if read_only:
            self._log(KMSG_CRIT, ext4_error(1000 + state.kmsg_seq))
            self._log(KMSG_CRIT, ext4_remount_read_only())
            state.root_read_only = True

    def _log(self, priority: int, text: str) -> None:
        state = self.state
        state.kmsg_seq += 1
        state.kmsg.append(KmsgRecord(priority, state.kmsg_seq, int(state.uptime_s * 1_000_000), text))

    def take_kmsg(self) -> list[KmsgRecord]:
        """The records logged since the last call (to append to /dev/kmsg)."""
        records, self.state.kmsg = self.state.kmsg, []
        return records
