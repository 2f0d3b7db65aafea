"""One supervisor per stream: the state machine that keeps a publisher alive, and says why it is not.

A supervisor runs one task that loops through: enabled? device present? pre-flight → spawn → watch (first
frame → ``running``; no new frame for the stall timeout → ``stalled`` → restart) → exit → classify the
cause → back off (or wait for the device, or give up when only a person can help) → again.

Commands (start/stop/restart/new config/device changed) only set the wanted state and wake the task, so
there is exactly one place that spawns or stops a pipeline and no race between two of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pi_stream_agent.events import EventBus
from pi_stream_agent.streams.audio import (
    AUDIO_OFF,
    NOT_CONNECTED,
    AudioStatus,
    SoundDetector,
    SoundEvent,
    alsa_failure,
)
from pi_stream_agent.streams.backoff import Backoff
from pi_stream_agent.streams.causes import Classification, classify_exit
from pi_stream_agent.streams.model import (
    ExitCause,
    ExitContextHook,
    ExitInfo,
    LastExit,
    LogRing,
    PipelineSpec,
    PreflightResult,
    StreamConfig,
    StreamState,
    no_exit_context,
)
from pi_stream_agent.streams.process import PipelineProcess

_LOGGER = logging.getLogger(__name__)

# Causes that retrying cannot fix: the stream waits in ``failed`` until a person changes something.
_PERMANENT = {ExitCause.EXECUTABLE_MISSING}
# How often the RTSP server is re-probed while a stream waits for it (one TCP connect: cheap).
RTSP_REPROBE_S = 1.0
# How often a missing device is looked for again. Hot-plug events start a stream at once; this catches a
# stable by-id link that udev creates a moment after the kernel's /dev node (the event has passed by then).
DEVICE_RECHECK_S = 2.0
# How long the watch loop waits between looks at the publisher's progress.
WATCH_TICK_S = 1.0
# A look this much later than planned means the agent itself was held up (frozen, SIGSTOPped, starved):
# that time is not the publisher's, so the stall clocks restart from the moment the agent is back.
LATE_TICK_S = 0.5


@dataclass(frozen=True)
class SupervisorSettings:
    # No new frame for this long while running → stalled. ffmpeg reports progress every second, so a
    # freeze is caught within stall_timeout_s + 1 s.
    stall_timeout_s: float = 3.0
    # No first frame this long after spawning → stalled (cameras take 1-2 s to start; ffmpeg probing more).
    startup_timeout_s: float = 15.0
    stop_timeout_s: float = 3.0
    log_lines: int = 300
    exit_log_lines: int = 20


@dataclass
class SupervisorHooks:
    """What a supervisor needs from the agent, as plain callables (tests pass their own)."""

    build_spec: Callable[[StreamConfig], PipelineSpec]
    preflight: Callable[[StreamConfig, PipelineSpec], Awaitable[PreflightResult]]
    device_present: Callable[[StreamConfig], bool]
    rtsp_reachable: Callable[[], Awaitable[bool]]
    cma_free_bytes: Callable[[], int | None]
    on_pids: Callable[[str, dict[str, int]], None] = lambda stream_id, pids: None
    # The publishers' latest CPU/RSS reading, ``"<stream>/<program>"`` → ``{pid, cpu_percent, rss_bytes}``.
    process_usage: Callable[[], Mapping[str, Mapping[str, Any]]] = lambda: {}
    marker: Callable[[str], str] = lambda stream_id: stream_id
    process_factory: Callable[..., PipelineProcess] = PipelineProcess
    # Awaited once before the first start: the RTSP server the agent itself runs is listening (bounded).
    server_ready: Callable[[], Awaitable[None]] | None = None
    backoff_factory: Callable[[], Backoff] = Backoff
    clock: Callable[[], float] = time.time
    # The Pi's condition at an exit and the condition it points to (the agent wires the telemetry's).
    exit_context: ExitContextHook = no_exit_context
    # Awaited just before a pipeline's processes start, and called once they have stopped: motion
    # detection opens and closes its reader there (streams/motion_service.py). The first may raise OSError:
    # the start then fails like a spawn that failed.
    pipeline_starting: Callable[[StreamConfig, PipelineSpec], Awaitable[None]] | None = None
    pipeline_ended: Callable[[str], None] = lambda stream_id: None
    # Whether the stream's sound device is there now (a stream running without sound restarts for it only
    # then: the event of its own card going away must not cost the video a second restart).
    sound_available: Callable[[StreamConfig], bool] = lambda config: True


@dataclass
class _Wanted:
    running: bool = True  # False after an API stop; True after start/restart
    restart: bool = False  # restart the current pipeline now
    generation: int = 0  # bumped on every command, so waits notice


async def _drain_readable() -> None:
    """Let the pipes' read callbacks run: data that is readable now is delivered before this returns.
    (One turn queues the readers' callbacks behind this task's next step; the second runs them.)"""
    for _ in range(2):
        await asyncio.sleep(0)


class StreamSupervisor:
    def __init__(
        self,
        config: StreamConfig,
        hooks: SupervisorHooks,
        bus: EventBus,
        settings: SupervisorSettings | None = None,
    ) -> None:
        self.config = config
        self._hooks = hooks
        self._bus = bus
        self._settings = settings or SupervisorSettings()
        self.log = LogRing(self._settings.log_lines)
        self.state = StreamState.DISABLED if not config.enabled else StreamState.STARTING
        self.message: str | None = None
        self.cause: ExitCause | None = None
        self.restart_count = 0  # restarts after failures
        self.requested_restart_count = 0  # restarts asked for (API, restart-all)
        self.restarts_by_cause: dict[str, int] = {}  # failure restarts by ExitCause
        self.running_since: float | None = None  # wall clock, when frames started flowing
        self.next_retry_at: float | None = None
        self.last_exit: LastExit | None = None
        self.spec: PipelineSpec | None = None
        self._process: PipelineProcess | None = None
        self._wanted = _Wanted()
        # The command generation the current round has acted on: a command that arrives while the round
        # awaits something (pre-flight, spawn) is newer than this, so no later wait can swallow it.
        self._round_generation = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backoff = hooks.backoff_factory()
        # Sound: why the stream runs video-only after its sound device failed to open (busy or gone), until
        # the devices change or the config does; and the detector fed from the publisher's level meter.
        self._audio_blocked: str | None = None
        self._sound_lost_stop = False  # the publisher is being stopped for its sound (the reason is logged)
        self.audio_status: AudioStatus = AUDIO_OFF
        self._sound = SoundDetector()

    # -- commands ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"pi_stream stream {self.config.id}")

    async def close(self) -> None:
        """Stop the pipeline and the supervisor for good (agent shutdown or stream removed)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._stop_process()

    def request_start(self) -> None:
        self._wanted.running = True
        self._backoff.reset()
        self._poke()

    def request_stop(self) -> None:
        self._wanted.running = False
        self._poke()

    def request_restart(self) -> None:
        self.requested_restart_count += 1
        self._wanted.running = True
        self._wanted.restart = True
        self._backoff.reset()
        self._poke()

    def update_config(self, config: StreamConfig, *, restart: bool = True) -> None:
        """Take a new config; restart when it differs, unless ``restart`` is False (a change the manager
        applied live: V4L2 controls set with v4l2-ctl need no new publisher)."""
        changed = config != self.config
        if changed and config.audio != self.config.audio:
            self._audio_blocked = None
        self.config = config
        if changed and restart:
            self._wanted.restart = True
            self._backoff.reset()
        self._poke()

    def device_changed(self) -> None:
        """A capture device came or went: re-check at once (a returning card starts within the debounce)."""
        if self.state in (StreamState.WAITING_FOR_DEVICE, StreamState.BACKOFF):
            self._backoff.reset()
        self._poke()

    def audio_devices_changed(self) -> None:
        """A sound card came or went: a running stream restarts when that changes whether it can have its
        sound — one that runs without it gets it back; one whose card went leaves it at once (ffmpeg would
        say so too, "ALSA read error", but need not be waited for: a simulated card never says it)."""
        if self.config.audio is None:
            return
        self._audio_blocked = None
        on = self.audio_status.state == "on"
        if self.state in (StreamState.RUNNING, StreamState.STARTING) and on != self._hooks.sound_available(
            self.config
        ):
            self._wanted.restart = True
            self._sound_lost_stop = True  # the restart's reason is logged here, not as "stopped on request"
            if on:
                self.log.append("agent", f"sound lost: {NOT_CONNECTED} Restarting without sound.")
            else:
                self.log.append("agent", "sound device connected: restarting with sound.")
        self._poke()

    def _poke(self) -> None:
        self._wanted.generation += 1
        self._wake.set()

    # -- the loop ----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        if self._hooks.server_ready is not None:
            await self._hooks.server_ready()
        while True:
            try:
                await self._one_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _LOGGER.exception("Stream %s: supervisor error", self.config.id)
                self._set_state(StreamState.BACKOFF, ExitCause.UNKNOWN, f"internal error: {exc}")
                await self._sleep(5.0)

    def _command_pending(self) -> bool:
        """A command arrived since this round began (and has not been acted on yet)."""
        return self._wanted.generation != self._round_generation

    async def _one_round(self) -> None:
        self._round_generation = self._wanted.generation
        self._wanted.restart = False
        if not self.config.enabled:
            self._set_state(StreamState.DISABLED, None, "disabled in the configuration")
            await self._wait_for_command()
            return
        if not self._wanted.running:
            self._set_state(StreamState.STOPPED, ExitCause.STOPPED, "stopped on request")
            await self._wait_for_command()
            return
        if not self._hooks.device_present(self.config):
            self._set_state(StreamState.WAITING_FOR_DEVICE, ExitCause.DEVICE_GONE, self._device_message())
            await self._sleep(DEVICE_RECHECK_S)
            return
        try:
            spec = self._build_spec()
        except ValueError as exc:
            self._set_state(
                StreamState.FAILED, ExitCause.UNKNOWN, f"cannot build the publisher command: {exc}"
            )
            await self._wait_for_command()
            return
        self.spec = spec
        check = await self._hooks.preflight(self.config, spec)
        if self._command_pending():
            return  # a stop/restart/new config came during the check: the next round acts on it
        if not check.ok:
            await self._after_failed_preflight(check)
            return
        await self._run_pipeline(spec)

    def _build_spec(self) -> PipelineSpec:
        """The pipeline, without its sound while the sound device is known not to open."""
        if self._audio_blocked is not None and self.config.audio is not None:
            spec = self._hooks.build_spec(replace(self.config, audio=None))
            self.audio_status = AudioStatus("unavailable", None, self.config.audio.codec, self._audio_blocked)
            return spec
        spec = self._hooks.build_spec(self.config)
        self.audio_status = spec.audio_status
        return spec

    async def _after_failed_preflight(self, check: PreflightResult) -> None:
        cause = check.cause or ExitCause.UNKNOWN
        message = (
            f"not started: {check.message}" if check.message else "not started (pre-flight check failed)"
        )
        if cause is ExitCause.DEVICE_GONE:
            self._set_state(StreamState.WAITING_FOR_DEVICE, cause, message)
            await self._sleep(DEVICE_RECHECK_S)
            return
        self._record_exit_without_process(cause, message, check.cma_free_bytes)
        await self._back_off(cause, message)

    async def _run_pipeline(self, spec: PipelineSpec) -> None:
        self._sound_lost_stop = False  # about an earlier publisher, if it never reached _after_exit
        self.log.append("agent", f"starting: {' '.join(p.name for p in spec.processes)}")
        process = self._hooks.process_factory(
            spec,
            log=self.log,
            marker=self._hooks.marker(self.config.id),
            stop_timeout_s=self._settings.stop_timeout_s,
        )
        self._process = process
        self.running_since = None
        self._set_state(StreamState.STARTING, None, "starting the publisher")
        try:
            if self._hooks.pipeline_starting is not None:
                await self._hooks.pipeline_starting(self.config, spec)
            await process.start()
        except OSError as exc:
            self._hooks.pipeline_ended(self.config.id)
            self._process = None
            cause = ExitCause.EXECUTABLE_MISSING if isinstance(exc, FileNotFoundError) else ExitCause.UNKNOWN
            message = f"cannot start {exc.filename or 'the publisher'}: {exc.strerror or exc}"
            self.log.append("agent", message)
            self._record_exit_without_process(cause, message, None)
            if cause in _PERMANENT:
                self._set_state(StreamState.FAILED, cause, message)
                await self._wait_for_command()
            else:
                await self._back_off(cause, message)
            return
        self._hooks.on_pids(self.config.id, dict(process.pids))
        self._backoff.record_start(time.monotonic())
        info, stalled = await self._watch(process)
        self._process = None
        self._hooks.pipeline_ended(self.config.id)
        self._hooks.on_pids(self.config.id, {})
        self._backoff.record_exit(time.monotonic())
        await self._after_exit(info, stalled)

    async def _watch(self, process: PipelineProcess) -> tuple[ExitInfo, bool]:
        """Until the pipeline ends or must be ended: returns how it ended and whether it was frozen."""
        exited = asyncio.ensure_future(process.wait())
        woke: asyncio.Task[Literal[True]] | None = None
        spawned = time.monotonic()
        # Start from the round's generation, not the current one: a command that came while the round
        # awaited the pre-flight or the spawn is acted on here, not dropped.
        seen = self._round_generation
        # Stall clocks start no earlier than this: moved on whenever the agent itself was late.
        judged_from = spawned
        try:
            while True:
                if seen != self._wanted.generation:
                    seen = self._wanted.generation
                    if self._wanted.restart or not self._wanted.running or not self.config.enabled:
                        return await process.stop(), False
                self._wake.clear()
                if seen != self._wanted.generation:
                    continue
                woke = asyncio.create_task(self._wake.wait())
                tick = time.monotonic()
                done, _ = await asyncio.wait(
                    {exited, woke}, timeout=WATCH_TICK_S, return_when=asyncio.FIRST_COMPLETED
                )
                woke.cancel()
                if exited in done:
                    return exited.result(), False
                if seen != self._wanted.generation:
                    continue
                if time.monotonic() - tick > WATCH_TICK_S + LATE_TICK_S:
                    # The agent was held up. What ffmpeg wrote meanwhile may sit unread in the pipe: let
                    # the readers drain it (their callbacks run in the next loop turns), and do not count
                    # the agent's own lateness as the publisher's silence.
                    await _drain_readable()
                    judged_from = time.monotonic()
                now = time.monotonic()
                progress = process.progress
                self._feed_sound(progress.sound_levels)
                if progress.sound_lost is not None and self.audio_status.state == "on":
                    return await self._lose_sound(process, progress.sound_lost)
                if progress.updated_at is not None:
                    if self.state is not StreamState.RUNNING:
                        self.running_since = self._hooks.clock()
                        self._set_state(StreamState.RUNNING, None, None)
                    silent = now - max(progress.updated_at, judged_from)
                    if silent > self._settings.stall_timeout_s:
                        return await self._stall(process, f"no new frame for {silent:.1f} s")
                elif now - judged_from > self._settings.startup_timeout_s:
                    timeout = self._settings.startup_timeout_s
                    return await self._stall(process, f"no frame within {timeout:g} s of start")
        finally:
            for future in (woke, exited):
                if future is not None and not future.done():
                    future.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await future

    async def _lose_sound(self, process: PipelineProcess, reason: str) -> tuple[ExitInfo, bool]:
        """The sound card failed under a running publisher (unplugged): ffmpeg goes on with the video, but
        its muxer holds the pictures back waiting for sound. Restart at once without sound; the card's
        hot-plug event (:meth:`audio_devices_changed`) brings it back."""
        self._audio_blocked = reason
        self._sound_lost_stop = True
        self.log.append("agent", f"sound lost: {reason} Restarting without sound.")
        return await process.stop(), False

    async def _stall(self, process: PipelineProcess, why: str) -> tuple[ExitInfo, bool]:
        self.log.append("agent", f"stalled: {why}; restarting")
        self._set_state(StreamState.STALLED, ExitCause.STALLED, f"stalled: {why}")
        info = await process.stop()
        return info, True

    async def _after_exit(self, info: ExitInfo, stalled: bool) -> None:
        self.running_since = None
        if info.requested and not stalled:
            # Stopped by a command (or for lost sound, already logged): the loop decides what comes next.
            if not self._sound_lost_stop:
                self.log.append("agent", "stopped on request")
            self._sound_lost_stop = False
            return
        self._end_sound()
        reason = alsa_failure(list(info.log_tail)) if self.audio_status.state == "on" else None
        if reason is not None and not stalled:
            # The sound card would not open (busy, unplugged): the video must not wait for it.
            self._audio_blocked = reason
            self.log.append("agent", f"sound unavailable: {reason} Restarting without sound.")
            return
        verdict = classify_exit(info, stalled=stalled)
        cma_free = self._hooks.cma_free_bytes() if verdict.cause is ExitCause.BUFFER_ALLOCATION else None
        if verdict.cause is not ExitCause.DEVICE_GONE:  # an unplugged card is not a failed publisher
            self.restart_count += 1
            cause = str(verdict.cause)
            self.restarts_by_cause[cause] = self.restarts_by_cause.get(cause, 0) + 1
        self._record_exit(info, verdict, cma_free)  # after counting: the event's stats include this one
        if verdict.cause in _PERMANENT:
            self._set_state(StreamState.FAILED, verdict.cause, verdict.summary)
            await self._wait_for_command()
            return
        if verdict.cause is ExitCause.DEVICE_GONE or not self._hooks.device_present(self.config):
            self._set_state(StreamState.WAITING_FOR_DEVICE, ExitCause.DEVICE_GONE, self._device_message())
            return  # the next round waits for it (and re-checks every DEVICE_RECHECK_S)
        await self._back_off(verdict.cause, verdict.summary)

    async def _back_off(self, cause: ExitCause, message: str) -> None:
        delay = self._backoff.next_delay()
        self.next_retry_at = self._hooks.clock() + delay
        self._set_state(StreamState.BACKOFF, cause, message)
        try:
            if cause is ExitCause.RTSP_UNREACHABLE:
                await self._wait_for_rtsp(delay)
            else:
                await self._sleep(delay)
        finally:
            self.next_retry_at = None

    async def _wait_for_rtsp(self, delay: float) -> None:
        """Wait out the back-off, but start as soon as the server answers again: a restarted MediaMTX
        should not leave every camera dark for the rest of a long back-off."""
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0:
            if await self._sleep(min(RTSP_REPROBE_S, remaining)):
                return
            if await self._hooks.rtsp_reachable():
                return

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, or return early (True) when a command arrives — also one that arrived earlier in this
        round, while it awaited something else."""
        if self._command_pending():
            return True
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.0))
        return self._command_pending()

    async def _wait_for_command(self) -> None:
        if self._command_pending():
            return
        self._wake.clear()
        await self._wake.wait()

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            await process.stop()
            self._hooks.on_pids(self.config.id, {})
            self._hooks.pipeline_ended(self.config.id)

    # -- sound -------------------------------------------------------------------------------------------

    def _feed_sound(self, levels: list[tuple[float, float]]) -> None:
        """Give the levels measured since the last tick to the detector (when sound detection is on)."""
        pending = list(levels)
        levels.clear()
        settings = self.config.settings
        if not settings.get("sound_detection"):
            self._end_sound()
            return
        self._sound.threshold_dbfs = float(settings.get("sound_threshold_dbfs", -30.0))
        self._sound.min_duration_s = float(settings.get("sound_min_duration_s", 1.0))
        for at, level in pending:
            event = self._sound.feed(level, at)
            if event is not None:
                self._publish_sound(event)

    def _end_sound(self) -> None:
        event = self._sound.reset(self._hooks.clock())
        if event is not None:
            self._publish_sound(event)

    def _publish_sound(self, event: SoundEvent) -> None:
        self._bus.publish(
            "sound",
            {
                "stream_id": self.config.id,
                "state": event.state,
                "level_dbfs": event.level_dbfs,
                "started_at": round(event.started_at, 3),
                "ended_at": round(event.ended_at, 3) if event.ended_at is not None else None,
            },
        )

    # -- bookkeeping -------------------------------------------------------------------------------------

    def _device_message(self) -> str:
        device = self.config.source.device or self.config.source.camera
        return f"waiting for {device} to be connected"

    def _record_exit(self, info: ExitInfo, verdict: Classification, cma_free: int | None) -> None:
        self.last_exit = LastExit.of(
            info,
            cause=verdict.cause,
            summary=verdict.summary,
            evidence=verdict.evidence,
            at=self._hooks.clock(),
            cma_free_bytes=cma_free,
        )
        self._add_context(tuple(process.pid for process in info.processes))
        self._publish_exit()

    def _add_context(self, pids: tuple[int, ...]) -> None:
        assert self.last_exit is not None
        try:
            context, condition = self._hooks.exit_context(pids, str(self.last_exit.cause))
        except Exception:  # a failed context must not cost the exit record
            _LOGGER.exception("Stream %s: exit context failed", self.config.id)
            return
        self.last_exit.context, self.last_exit.contributing_condition = context, condition

    def _record_exit_without_process(self, cause: ExitCause, message: str, cma_free: int | None) -> None:
        self.last_exit = LastExit(
            at=self._hooks.clock(),
            cause=cause,
            summary=message,
            evidence=None,
            process=None,
            exit_code=None,
            signal=None,
            runtime_s=0.0,
            log_tail=self.log.text_tail(self._settings.exit_log_lines),
            cma_free_bytes=cma_free,
        )
        self._add_context(())
        self._publish_exit()

    def _publish_exit(self) -> None:
        assert self.last_exit is not None
        self._bus.publish(
            "stream_exit",
            {
                "stream_id": self.config.id,
                **self.last_exit.to_json(),
                "log_tail": self.last_exit.log_tail,
                "stats": self.stats(),
            },
        )

    def _set_state(self, state: StreamState, cause: ExitCause | None, message: str | None) -> None:
        previous = self.state
        changed = (state, cause, message) != (self.state, self.cause, self.message)
        self.state, self.cause, self.message = state, cause, message
        if not changed:
            return
        if previous is not state:
            _LOGGER.info(
                "Stream %s: %s → %s%s", self.config.id, previous, state, f" ({message})" if message else ""
            )
        self._bus.publish(
            "stream_state",
            {
                "stream_id": self.config.id,
                "state": str(state),
                "previous": str(previous),
                "cause": str(cause) if cause is not None else None,
                "message": message,
                "restart_count": self.restart_count,
                "next_retry_at": round(self.next_retry_at, 3) if self.next_retry_at else None,
                "stats": self.stats(),
            },
        )

    # -- status ------------------------------------------------------------------------------------------

    @property
    def process(self) -> PipelineProcess | None:
        return self._process

    def stats(self, usage: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
        """The stream's numbers (contract C1: status objects, telemetry ``streams`` and event ``stats``).

        Measurements are null unless the stream is ``running``: never the last value of a publisher that
        is gone, never 0.0 for "not measured yet". A publisher's CPU/RSS count only when the reading is of
        the pid running now. ``usage`` is the telemetry sample's ``processes`` (the latest one if None)."""
        running = self.state is StreamState.RUNNING
        process = self._process if running else None
        progress = process.progress if process is not None else None
        usage = self._hooks.process_usage() if usage is None else usage
        publishers: dict[str, dict[str, Any]] = {}
        if process is not None:
            for program, pid in process.pids.items():
                reading = usage.get(f"{self.config.id}/{program}") or {}
                same = reading.get("pid") == pid
                publishers[program] = {
                    "pid": pid,
                    "cpu_percent": reading.get("cpu_percent") if same else None,
                    "rss_bytes": reading.get("rss_bytes") if same else None,
                }
        bitrate = None
        if progress is not None:
            measured = progress.measured_bitrate_bps
            bitrate = measured if measured is not None else progress.bitrate_bps
        return {
            "state": str(self.state),
            "fps": progress.fps if progress is not None else None,
            "bitrate_bps": round(bitrate) if bitrate is not None else None,
            "frames": progress.frames if progress is not None else None,
            "uptime_s": round(self._hooks.clock() - self.running_since, 1)
            if running and self.running_since
            else None,
            "restart_count": self.restart_count,
            "requested_restart_count": self.requested_restart_count,
            "restarts_by_cause": dict(self.restarts_by_cause),
            "publishers": publishers,
            "sound_level_dbfs": round(progress.sound_level_dbfs, 1)
            if progress is not None
            and progress.sound_level_dbfs is not None
            and self.audio_status.state == "on"
            else None,
            # Pushed with the numbers: a sound card that went or came back shows at once (clients that
            # follow the WebSocket do not re-read the stream for it).
            "audio": self._audio_json(),
        }

    def status(self) -> dict[str, Any]:
        now = self._hooks.clock()
        stats = self.stats()
        return {
            "id": self.config.id,
            "name": self.config.display_name,
            "enabled": self.config.enabled,
            "state": str(self.state),
            "cause": str(self.cause) if self.cause is not None else None,
            "message": self.message,
            "encoding": self.spec.encoding if self.spec is not None else None,
            "restart_count": self.restart_count,
            "requested_restart_count": self.requested_restart_count,
            "restarts_by_cause": stats["restarts_by_cause"],
            "running_since": round(self.running_since, 3) if self.running_since else None,
            "uptime_s": stats["uptime_s"],
            "next_retry_at": round(self.next_retry_at, 3) if self.next_retry_at else None,
            "next_retry_in_s": round(max(self.next_retry_at - now, 0.0), 1) if self.next_retry_at else None,
            "fps": stats["fps"],
            "bitrate_bps": stats["bitrate_bps"],
            "frames": stats["frames"],
            "pids": dict(self._process.pids) if self._process is not None else {},
            "publishers": stats["publishers"],
            "last_exit": self.last_exit.to_json() if self.last_exit is not None else None,
            "audio": stats["audio"],
            "sound_level_dbfs": stats["sound_level_dbfs"],
        }

    def _audio_json(self) -> dict[str, Any]:
        if self.config.audio is None:
            return AUDIO_OFF.to_json()
        if self.audio_status.state == "off":  # not built yet: say what is wanted
            return AudioStatus("unavailable", None, self.config.audio.codec, "Not started yet.").to_json()
        return self.audio_status.to_json()
