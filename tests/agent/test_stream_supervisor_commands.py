"""Every command is acted on, whenever it arrives (issue 13 §4.2).

A real StreamSupervisor runs real ffmpeg publishers into the real test RTSP server; only the pre-flight and
the process factory are wrapped so the test can send stop/restart/start at each point where the
supervisor's loop awaits something (the pre-flight check, the spawn). Before the fix a command sent there
was acknowledged and then dropped: the publisher ran on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.streams.model import (
    PipelineSpec,
    PreflightResult,
    ProcessSpec,
    SourceConfig,
    StreamConfig,
    StreamState,
)
from pi_stream_agent.streams.process import PipelineProcess
from pi_stream_agent.streams.supervisor import StreamSupervisor, SupervisorHooks
from tests.agent.rtsp import RtspServer

SOURCE = ("-re", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10")
X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "10")
PROGRESS = ("-progress", "pipe:1", "-stats_period", "0.5", "-loglevel", "error")


def config() -> StreamConfig:
    return StreamConfig(
        id="cam1", source=SourceConfig(kind="test"), width=160, height=120, fps=10, bitrate=200_000,
        rtsp_path="cam1",
    )  # fmt: skip


def spec(server: RtspServer) -> PipelineSpec:
    url = f"{server.publish_base}/cam1"
    argv = ("ffmpeg", "-hide_banner", "-nostdin", *SOURCE, *X264, "-f", "rtsp", "-rtsp_transport", "udp", url)
    return PipelineSpec("cam1", (ProcessSpec("ffmpeg", (*argv, *PROGRESS)),), "software", url)


Inject = Callable[[StreamSupervisor], None]
COMMANDS: dict[str, tuple[Inject, set[StreamState], bool]] = {
    # command, the state it must lead to, and whether a (new) publisher must run afterwards
    "stop": (lambda s: s.request_stop(), {StreamState.STOPPED}, False),
    "restart": (lambda s: s.request_restart(), {StreamState.RUNNING}, True),
}


class Harness:
    def __init__(self, server: RtspServer, where: str, inject: Inject) -> None:
        self.bus = EventBus()
        self.where = where
        self.inject = inject
        self.injected = False
        self.spawned: list[PipelineProcess] = []
        self.supervisor = StreamSupervisor(config(), self.hooks(server), self.bus)

    def _maybe_inject(self, point: str) -> None:
        if point == self.where and not self.injected:
            self.injected = True
            self.inject(self.supervisor)

    def hooks(self, server: RtspServer) -> SupervisorHooks:
        async def preflight(_config: StreamConfig, _spec: PipelineSpec) -> PreflightResult:
            await asyncio.sleep(0)
            self._maybe_inject("preflight")
            await asyncio.sleep(0.05)
            return PreflightResult(ok=True)

        harness = self

        class Process(PipelineProcess):
            async def start(self) -> None:
                harness.spawned.append(self)
                harness._maybe_inject("before spawn")
                await super().start()
                harness._maybe_inject("after spawn")

        async def reachable() -> bool:
            return True

        return SupervisorHooks(
            build_spec=lambda _config: spec(server),
            preflight=preflight,
            device_present=lambda _config: True,
            rtsp_reachable=reachable,
            cma_free_bytes=lambda: None,
            process_factory=Process,
        )


async def wait_for(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("where", ["preflight", "before spawn", "after spawn"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
async def test_a_command_sent_at_any_await_of_the_loop_is_acted_on(
    rtsp_server: RtspServer, where: str, command: str
) -> None:
    inject, states, runs_after = COMMANDS[command]
    harness = Harness(rtsp_server, where, inject)
    supervisor = harness.supervisor
    supervisor.start()
    try:
        await wait_for(lambda: harness.injected)
        await wait_for(lambda: supervisor.state in states)
        # Give a dropped command time to show: the state must hold, and the process must match it.
        await asyncio.sleep(1.5)
        assert supervisor.state in states, supervisor.status()
        if runs_after:
            assert supervisor.process is not None and supervisor.process.running
            if where != "preflight":  # the pipeline spawned before the restart was replaced
                assert supervisor.process is not harness.spawned[0]
                assert harness.spawned[0].exit_info is not None
        else:
            assert supervisor.process is None
            assert all(process.exit_info is not None or not process.pids for process in harness.spawned)
    finally:
        await supervisor.close()


async def test_a_stop_right_after_a_restart_is_never_lost(rtsp_server: RtspServer) -> None:
    # The report's reproduction: restart, then stop at once, fifteen times.
    harness = Harness(rtsp_server, "nowhere", lambda s: None)
    supervisor = harness.supervisor
    events: list[Event] = []
    harness.bus.subscribe(events.append)
    supervisor.start()
    try:
        for delay in (0.0, 0.01, 0.03, 0.06, 0.1):
            supervisor.request_start()
            await wait_for(lambda: supervisor.state is StreamState.RUNNING)
            supervisor.request_restart()
            await asyncio.sleep(delay)
            supervisor.request_stop()
            await wait_for(lambda: supervisor.state is StreamState.STOPPED)
            await asyncio.sleep(0.3)
            assert supervisor.state is StreamState.STOPPED and supervisor.process is None
        assert supervisor.requested_restart_count == 5
        assert supervisor.restart_count == 0
    finally:
        await supervisor.close()
