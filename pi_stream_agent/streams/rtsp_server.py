"""The RTSP server (e.g. MediaMTX) as one more supervised child, when the config names its command.

Same care as a publisher: its own process group, a death signal, the leftover marker, SIGTERM then SIGKILL,
restarts with backoff. No stall detection: a server without readers or publishers is idle, not frozen.

Publishers wait for it: :meth:`RtspServerSupervisor.wait_listening` returns once the server accepts
connections on the publish address (or after a bound), so a clean start of the agent leaves no
``rtsp_unreachable`` exit behind from publishers that raced the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from pi_stream_agent.events import EventBus
from pi_stream_agent.streams.backoff import Backoff
from pi_stream_agent.streams.causes import classify_exit
from pi_stream_agent.streams.model import (
    ExitCause,
    ExitInfo,
    LastExit,
    LogRing,
    PipelineSpec,
    ProcessSpec,
    StreamState,
)
from pi_stream_agent.streams.preflight import check_rtsp
from pi_stream_agent.streams.process import PipelineProcess

_LOGGER = logging.getLogger(__name__)

SERVER_ID = "rtsp-server"
# How long publishers wait for a just-started server to listen before they start anyway (and back off
# with a clear cause if it still does not). MediaMTX listens within a second, even on a Pi Zero.
LISTEN_WAIT_S = 10.0
_LISTEN_PROBE_S = 0.1


class RtspServerSupervisor:
    def __init__(
        self, command: tuple[str, ...], bus: EventBus, *, marker: str, publish_url: str | None = None
    ) -> None:
        self._spec = PipelineSpec(
            stream_id=SERVER_ID,
            processes=(ProcessSpec(command[0].rsplit("/", 1)[-1], command),),
            encoding="copy",
            main_url="",
        )
        self._bus = bus
        self._marker = marker
        self.log = LogRing(200)
        # The streams' vocabulary: starting → running; backoff after an exit; failed when it cannot start.
        self.state = StreamState.STARTING
        self.message: str | None = None
        self.restart_count = 0
        self.last_exit: LastExit | None = None
        self._process: PipelineProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._backoff = Backoff()
        self._publish_url = publish_url
        self._listening = asyncio.Event()  # the current server process accepts connections

    async def wait_listening(self, timeout_s: float = LISTEN_WAIT_S) -> None:
        """Until the server listens on the publish address, at most ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout_s)

    async def _probe_listening(self, process: PipelineProcess) -> None:
        if self._publish_url is None:
            self._listening.set()
            return
        deadline = time.monotonic() + LISTEN_WAIT_S
        while process.running and time.monotonic() < deadline:
            if await check_rtsp(self._publish_url, 1.0) is None:
                self._listening.set()
                return
            await asyncio.sleep(_LISTEN_PROBE_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pi_stream rtsp server")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._process is not None:
            await self._process.stop()
            self._process = None

    async def _run(self) -> None:
        while True:
            process = PipelineProcess(self._spec, log=self.log, marker=self._marker)
            self._process = process
            try:
                await process.start()
            except OSError as exc:
                self._process = None
                message = f"cannot start the RTSP server: {exc.strerror or exc}"
                cause = (
                    ExitCause.EXECUTABLE_MISSING if isinstance(exc, FileNotFoundError) else ExitCause.UNKNOWN
                )
                self.last_exit = LastExit(
                    at=time.time(), cause=cause, summary=message, evidence=None, process=None,
                    exit_code=None, signal=None, runtime_s=0.0, log_tail=self.log.text_tail(20),
                )  # fmt: skip
                self._set_state(StreamState.FAILED, message)
                return
            self._set_state(StreamState.RUNNING, None)
            self._backoff.record_start(time.monotonic())
            probe = asyncio.create_task(self._probe_listening(process))
            try:
                info = await process.wait()
            finally:
                probe.cancel()
            self._listening.clear()
            self._process = None
            self._backoff.record_exit(time.monotonic())
            self.restart_count += 1
            self._record(info)
            delay = self._backoff.next_delay()
            self._set_state(StreamState.BACKOFF, f"the RTSP server exited; restarting in {delay:.1f} s")
            await asyncio.sleep(delay)

    def _record(self, info: ExitInfo) -> None:
        verdict = classify_exit(info)
        self.last_exit = LastExit.of(
            info, cause=verdict.cause, summary=verdict.summary, evidence=verdict.evidence, at=time.time()
        )
        _LOGGER.warning("The RTSP server exited (%s); restarting", verdict.summary)

    def _set_state(self, state: StreamState, message: str | None) -> None:
        if (state, message) == (self.state, self.message):
            return
        self.state, self.message = state, message
        self._bus.publish("rtsp_server_state", {"state": str(state), "message": message})

    def status(self) -> dict[str, Any]:
        return {
            "state": str(self.state),
            "message": self.message,
            "restart_count": self.restart_count,
            "pids": dict(self._process.pids) if self._process is not None else {},
            "last_exit": self.last_exit.to_json() if self.last_exit is not None else None,
        }
