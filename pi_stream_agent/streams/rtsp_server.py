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
from pi_stream_agent.streams.model import ExitInfo, LogRing, PipelineSpec, ProcessSpec
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
        self.state = "starting"
        self.restart_count = 0
        self.last_exit: dict[str, Any] | None = None
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
                self._set_state("failed", f"cannot start the RTSP server: {exc.strerror or exc}")
                return
            self._set_state("running", None)
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
            self._set_state("backoff", f"the RTSP server exited; restarting in {delay:.1f} s")
            await asyncio.sleep(delay)

    def _record(self, info: ExitInfo) -> None:
        stage = info.processes[0] if info.processes else None
        self.last_exit = {
            "at": round(time.time(), 3),
            "exit_code": stage.returncode if stage is not None and stage.signal is None else None,
            "signal": stage.signal if stage is not None else None,
            "runtime_s": round(info.runtime_s, 3),
            "log_tail": list(info.log_tail),
        }
        _LOGGER.warning("The RTSP server exited (%s); restarting", self.last_exit)

    def _set_state(self, state: str, message: str | None) -> None:
        if state == self.state and message is None:
            return
        self.state = state
        self._bus.publish("rtsp_server_state", {"state": state, "message": message})

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "restart_count": self.restart_count,
            "pids": dict(self._process.pids) if self._process is not None else {},
            "last_exit": self.last_exit,
        }
