"""PipelineProcess and kill_leftovers with real processes: Debian's ffmpeg publishing into a real RTSP
server (UDP transport: rtsp-server-perl has no TCP interleaving), Python stand-ins where a test needs a
stage that misbehaves on purpose.

Note on "gone": this container's PID 1 does not reap orphans, so a killed orphan can linger as a zombie.
A zombie is dead (it runs nothing and holds no camera or socket), so :func:`alive` treats it as gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from pi_stream_agent.streams import process as process_module
from pi_stream_agent.streams.causes import classify_exit
from pi_stream_agent.streams.model import ExitCause, ExitInfo, LogRing, PipelineSpec, ProcessSpec
from pi_stream_agent.streams.process import (
    MARKER_ENV,
    PipelineProcess,
    find_leftovers,
    kill_leftovers,
    stage_names,
)
from tests.agent.helpers import REPO_ROOT, FixtureTree
from tests.agent.rtsp import RtspServer, wait_readable

PY = sys.executable
SOURCE = ("-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15")
X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-bf", "0")
PROGRESS = ("-progress", "pipe:1", "-stats_period", "1")


def single_publisher(url: str) -> tuple[ProcessSpec, ...]:
    argv = ("ffmpeg", "-hide_banner", "-nostdin", *SOURCE, *X264, "-f", "rtsp", "-rtsp_transport", "udp", url)
    return (ProcessSpec("ffmpeg", (*argv, *PROGRESS)),)


def encoder() -> ProcessSpec:
    return ProcessSpec("encoder", ("ffmpeg", "-hide_banner", "-nostdin", *SOURCE, *X264, "-f", "h264", "-"))


def publisher(url: str) -> ProcessSpec:
    # Raw H.264 has no timestamps: -framerate gives them; tiny probe so publishing starts at once.
    argv = (
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-probesize",
        "32",
        "-analyzeduration",
        "0",
        "-framerate",
        "15",
        "-f",
        "h264",
        "-i",
        "pipe:0",
        "-c",
        "copy",
        "-f",
        "rtsp",
        "-rtsp_transport",
        "udp",
        url,
    )
    return ProcessSpec("publisher", (*argv, *PROGRESS))


def python_stage(name: str, code: str) -> ProcessSpec:
    return ProcessSpec(name, (PY, "-c", code))


IGNORE_TERM_DRAIN_THEN_SLEEP = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
sys.stderr.write("ready\\n"); sys.stderr.flush()
while sys.stdin.buffer.read1(65536):
    pass
time.sleep(60)
"""


SINK = "import sys\nwhile sys.stdin.buffer.read1(65536):\n    pass"


def spec_of(*processes: ProcessSpec, url: str = "rtsp://unused") -> PipelineSpec:
    return PipelineSpec(stream_id="cam", processes=processes, encoding="software", main_url=url)


def proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def alive(pid: int) -> bool:
    return proc_state(pid) not in (None, "Z", "X")


def environ_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def is_running(pipeline: PipelineProcess) -> bool:
    return pipeline.running  # a call, so a type checker does not carry an earlier assert over an await


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def until(
    predicate: Callable[[], bool], timeout_s: float, what: str, log: LogRing | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            tail = "\n".join(log.text_tail(25)) if log is not None else ""
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{tail}")
        await asyncio.sleep(0.05)


def lines_of(log: LogRing, process: str) -> list[str]:
    return [line for _, name, line in log.tail() if name == process]


def kill_marked(pids: list[int], marker: str) -> None:
    """Test cleanup: SIGKILL whatever of ``pids`` still runs with our marker (never a stranger)."""
    for pid in pids:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"{MARKER_ENV}={marker}".encode() in environ:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def agent_id() -> str:
    """A fresh agent id per test, so kill_leftovers here can only ever see this test's processes."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pipelines(agent_id: str) -> AsyncIterator[Callable[..., PipelineProcess]]:
    """Makes PipelineProcesses; whatever a test leaves running is stopped (and, failing that, killed)."""
    made: list[PipelineProcess] = []

    def make(spec: PipelineSpec, log: LogRing | None = None, **kwargs: object) -> PipelineProcess:
        marker = f"{agent_id}:{spec.stream_id}"
        ring = LogRing() if log is None else log
        pipeline = PipelineProcess(spec, log=ring, marker=marker, **kwargs)  # type: ignore[arg-type]
        made.append(pipeline)
        return pipeline

    try:
        yield make
    finally:
        for pipeline in made:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pipeline.stop(timeout_s=1.0), 10)
        kill_marked([pid for pipeline in made for pid in pipeline.pids.values()], agent_id)


# ------------------------------------------------------------------------------------------------ running


async def test_publishes_and_progress_advances(
    pipelines: Callable[..., PipelineProcess], rtsp_server: RtspServer, agent_id: str
) -> None:
    path = f"cam{uuid.uuid4().hex[:6]}"
    log = LogRing()
    pipeline = pipelines(spec_of(*single_publisher(f"{rtsp_server.publish_base}/{path}")), log=log)
    await pipeline.start()
    # Frames counted means the publisher holds its mount; only then probe (rtsp-server-perl rewinds its
    # RTP port counter when a connection closes while nothing is mounted).
    await until(lambda: (pipeline.progress.frames or 0) >= 15, 10, "15 frames", log)
    pid = pipeline.pids["ffmpeg"]
    assert pipeline.running
    assert pipeline.pgid == pid == os.getpgid(pid)  # a group of its own …
    assert pipeline.pgid != os.getpgrp()  # … not the agent's
    assert f"{MARKER_ENV}={agent_id}:cam".encode() in environ_of(pid)
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"

    found = await asyncio.to_thread(wait_readable, f"{rtsp_server.read_base}/{path}", 20.0)
    assert (found["codec_name"], found["width"], found["height"]) == ("h264", 320, 240)

    first_frames, first_update = pipeline.progress.frames, pipeline.progress.updated_at
    assert first_update is not None
    await until(lambda: (pipeline.progress.frames or 0) > (first_frames or 0), 5, "more frames")
    progress = pipeline.progress
    assert progress.updated_at is not None and progress.updated_at > first_update
    assert progress.fps is not None and 5 < progress.fps < 30
    assert progress.out_time_s is not None and progress.out_time_s > 0.5
    assert progress.blocks >= 2

    info = await pipeline.stop()
    assert not is_running(pipeline)
    assert info.requested and info.first is None
    (stage,) = info.processes
    # ffmpeg acts on SIGTERM: it finishes the output and exits 255 by itself.
    assert (stage.name, stage.pid, stage.returncode, stage.signal) == ("ffmpeg", pid, 255, None)
    assert "ffmpeg: Exiting normally, received signal 15." in info.log_tail
    assert not alive(pid)


async def test_two_stages_share_a_group_and_stop_reaps_both(
    pipelines: Callable[..., PipelineProcess], rtsp_server: RtspServer
) -> None:
    log = LogRing()
    url = f"{rtsp_server.publish_base}/two{uuid.uuid4().hex[:6]}"
    pipeline = pipelines(spec_of(encoder(), publisher(url)), log=log, stop_timeout_s=8.0)
    await pipeline.start()
    enc, pub = pipeline.pids["encoder"], pipeline.pids["publisher"]
    assert os.getpgid(enc) == os.getpgid(pub) == pipeline.pgid == enc
    # encoder stdout → publisher stdin through one pipe; the encoder reads nothing.
    assert os.readlink(f"/proc/{enc}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{enc}/fd/1") == os.readlink(f"/proc/{pub}/fd/0")
    assert os.readlink(f"/proc/{pub}/fd/0").startswith("pipe:")

    await until(lambda: (pipeline.progress.frames or 0) >= 10, 15, "publisher progress", log)
    started = time.monotonic()
    info = await pipeline.stop()
    elapsed = time.monotonic() - started
    assert elapsed < 4.0  # well inside the 8 s before SIGKILL: SIGTERM was honoured
    assert [(p.name, p.signal) for p in info.processes] == [("encoder", None), ("publisher", None)]
    assert "encoder: Exiting normally, received signal 15." in log.text_tail(100)
    assert "publisher: Exiting normally, received signal 15." in log.text_tail(100)
    assert not alive(enc) and not alive(pub)
    assert info.runtime_s > 0.5
    # Idempotent: the same ExitInfo from stop() and wait() afterwards.
    assert await pipeline.stop() is info
    assert await pipeline.wait() is info
    assert pipeline.exit_info is info


async def test_stage_ignoring_sigterm_is_killed_after_the_timeout(
    pipelines: Callable[..., PipelineProcess],
) -> None:
    log = LogRing()
    pipeline = pipelines(spec_of(encoder(), python_stage("stubborn", IGNORE_TERM_DRAIN_THEN_SLEEP)), log=log)
    await pipeline.start()
    await until(lambda: "ready" in lines_of(log, "stubborn"), 10, "the stubborn stage to ignore SIGTERM")
    # ffmpeg handles SIGTERM once it has set up (a SIGTERM during its first milliseconds kills it outright).
    await until(lambda: "Stream mapping:" in lines_of(log, "encoder"), 10, "the encoder to run")
    started = time.monotonic()
    info = await pipeline.stop(timeout_s=1.0)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 4.0
    exits = {p.name: p for p in info.processes}
    assert exits["stubborn"].signal == signal.SIGKILL and exits["stubborn"].returncode == -signal.SIGKILL
    assert (exits["encoder"].returncode, exits["encoder"].signal) == (255, None)  # had gone on SIGTERM
    assert info.requested and info.first is None
    assert not any(alive(pid) for pid in pipeline.pids.values())


@pytest.mark.parametrize("victim", ["encoder", "publisher"])
async def test_kill_9_of_one_stage_ends_the_pipeline(
    pipelines: Callable[..., PipelineProcess], rtsp_server: RtspServer, victim: str
) -> None:
    url = f"{rtsp_server.publish_base}/k{uuid.uuid4().hex[:6]}"
    log = LogRing()
    pipeline = pipelines(spec_of(encoder(), publisher(url)), log=log, stop_timeout_s=5.0)
    await pipeline.start()
    await until(lambda: (pipeline.progress.frames or 0) >= 5, 15, "publisher progress", log)
    os.kill(pipeline.pids[victim], signal.SIGKILL)
    info = await asyncio.wait_for(pipeline.wait(), 8)
    assert info.first == victim
    assert not info.requested
    exits = {p.name: p for p in info.processes}
    assert exits[victim].signal == signal.SIGKILL
    assert all(p.returncode is not None for p in info.processes)
    assert not any(alive(pid) for pid in pipeline.pids.values())
    assert not pipeline.running
    # stop() after the end: the same ExitInfo, requested stays False.
    assert await pipeline.stop() is info


async def test_sigstopped_producer_freezes_progress_and_stop_still_honours_sigterm(
    pipelines: Callable[..., PipelineProcess], rtsp_server: RtspServer
) -> None:
    url = f"{rtsp_server.publish_base}/s{uuid.uuid4().hex[:6]}"
    log = LogRing()
    pipeline = pipelines(spec_of(encoder(), publisher(url)), log=log, stop_timeout_s=6.0)
    await pipeline.start()
    await until(lambda: (pipeline.progress.frames or 0) >= 5, 15, "publisher progress", log)
    moving_from = pipeline.progress.frames or 0
    await until(lambda: (pipeline.progress.frames or 0) > moving_from, 5, "progress to move")

    os.kill(pipeline.pids["encoder"], signal.SIGSTOP)
    await asyncio.sleep(1.5)  # what was already in the pipe may still be published
    frozen_frames, frozen_at = pipeline.progress.frames, pipeline.progress.updated_at
    await asyncio.sleep(2.5)
    assert pipeline.progress.frames == frozen_frames
    assert pipeline.progress.updated_at == frozen_at
    assert pipeline.running  # frozen is not dead: the supervisor's stall watch decides

    started = time.monotonic()
    info = await pipeline.stop()
    # SIGCONT follows SIGTERM, so the stopped encoder exits by itself instead of waiting for SIGKILL.
    assert time.monotonic() - started < 4.0
    assert [p.signal for p in info.processes] == [None, None]


async def test_stderr_lines_are_tagged_cut_and_eof_reaches_the_next_stage(
    pipelines: Callable[..., PipelineProcess],
) -> None:
    talker = r"""
import sys, time
err = sys.stderr.buffer
err.write(b"first line\n" + b"x" * 5000 + b"\n" + b"caf\xe9\n" + b"status 1\rstatus 2\r\n" + b"after\n")
err.flush()
sys.stdout.buffer.write(b"payload\n")
time.sleep(1.0)  # the consumer must be up (ignoring SIGTERM) before this pipeline ends
sys.exit(3)
"""
    # Ignores SIGTERM, so it only ends once EOF arrives — proving no copy of the pipe's write end stayed
    # open in the agent.
    consumer = r"""
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
data = sys.stdin.buffer.read()
sys.stderr.write(f"saw EOF after {len(data)} bytes\n")
sys.stderr.flush()
# Outlive the talker clearly: exits a few ms apart may be reported in either order (one waiting thread
# per child on Python 3.11), and this test is about EOF, not about that race.
time.sleep(0.5)
"""
    log = LogRing()
    stages = spec_of(python_stage("talker", talker), python_stage("consumer", consumer))
    pipeline = pipelines(stages, log=log, stop_timeout_s=10.0)
    await pipeline.start()
    started = time.monotonic()
    info = await asyncio.wait_for(pipeline.wait(), 15)
    assert time.monotonic() - started < 8.0  # no SIGKILL needed
    assert info.first == "talker"
    exits = {p.name: (p.returncode, p.signal) for p in info.processes}
    assert exits == {"talker": (3, None), "consumer": (0, None)}
    assert lines_of(log, "talker") == ["first line", "x" * 1000 + " …", "caf\ufffd", "status 2", "after"]
    assert lines_of(log, "consumer") == ["saw EOF after 8 bytes"]
    assert info.log_tail == tuple(log.text_tail(20))


# What ffmpeg (5.1 and 7.1 alike) does with ``-vstats_file``: stdio writes its lines in 4 KiB blocks that
# end mid-line, while its log goes to stderr whenever something happens — here a USB card unplugged between
# two blocks. The publisher's command line says /dev/stderr (so it also runs by hand).
VSTATS_IN_BLOCKS = r"""
import os, sys
path = sys.argv[sys.argv.index("-vstats_file") + 1]
line = "out=  0 st=  0 frame= {0:5d} q= 23.0 f_size=   3000 s_size= {1:8d}KiB time= {2:.3f} type= P\n"
text = "".join(line.format(n, n * 3000 // 1024, n / 15) for n in range(60)).encode()
assert not text[:4096].endswith(b"\n")
vstats = os.open(path, os.O_WRONLY)
os.write(vstats, text[:4096])
sys.stderr.write(sys.argv[-1] + "\n")
sys.stderr.flush()
os.write(vstats, text[4096:])
sys.exit(1)
"""
UNPLUGGED = "[video4linux2,v4l2 @ 0x55d0c1a3b2c0] ioctl(VIDIOC_DQBUF): No such device"


async def test_vstats_never_swallow_a_log_line(pipelines: Callable[..., PipelineProcess]) -> None:
    before = fd_count()
    log = LogRing()
    stage = ProcessSpec("ffmpeg", (PY, "-c", VSTATS_IN_BLOCKS, "-vstats_file", "/dev/stderr", UNPLUGGED))
    pipeline = pipelines(spec_of(stage), log=log)
    await pipeline.start()
    info = await asyncio.wait_for(pipeline.wait(), 15)
    # The log line arrives whole (it was glued to half a vstats line, and dropped with it, on stderr) …
    assert lines_of(log, "ffmpeg") == [UNPLUGGED]
    assert classify_exit(info).cause is ExitCause.DEVICE_GONE
    # … and every vstats line reached the bitrate measurement: 3000 bytes a frame at 15 fps.
    assert pipeline.progress.measured_bitrate_bps is not None
    assert 300_000 < pipeline.progress.measured_bitrate_bps < 420_000
    assert fd_count() == before  # the extra pipe is closed with the others


async def test_line_splitting_survives_any_chunking() -> None:
    data = b"one\r\ntwo\nfr=1\rfr=2\r\n\n" + b"y" * 2500 + b"\rz\nst\r" + b"w" * 1500 + b"\n\nlast"
    expected = ["one", "two", "fr=2", "y" * 1000 + " …", "z", "w" * 1000 + " …", "last"]
    for size in (1, 2, 3, 7, 64, 999, 1001, len(data)):
        got: list[str] = []
        protocol = process_module._LineProtocol(got.append)
        for start in range(0, len(data), size):
            protocol.data_received(data[start : start + size])
        protocol.eof_received()
        protocol.connection_lost(None)
        assert got == expected, size
        assert protocol.done.done()


async def test_status_line_held_back_until_the_stream_ends() -> None:
    got: list[str] = []
    protocol = process_module._LineProtocol(got.append)
    for count in range(1, 200):
        protocol.data_received(f"frame={count} fps=15\r".encode())
    assert got == []  # ffmpeg's live stats never flood the log
    protocol.eof_received()
    assert got == ["frame=199 fps=15"]


# ------------------------------------------------------------------------------------------------ failure


async def test_missing_executable_raises_with_nothing_spawned(
    pipelines: Callable[..., PipelineProcess],
) -> None:
    before = fd_count()
    missing = ProcessSpec("rpicam-vid", ("rpicam-vid-not-installed", "-o", "-"))
    pipeline = pipelines(spec_of(encoder(), missing))
    with pytest.raises(FileNotFoundError) as raised:
        await pipeline.start()
    assert raised.value.filename == "rpicam-vid-not-installed"
    assert pipeline.pids == {} and not pipeline.running
    info = await pipeline.stop()
    assert info.processes == () and not info.requested
    assert fd_count() == before
    with pytest.raises(RuntimeError):
        await pipeline.start()  # one start per PipelineProcess


async def test_cancelled_stop_still_reaps(pipelines: Callable[..., PipelineProcess]) -> None:
    log = LogRing()
    pipeline = pipelines(spec_of(python_stage("stubborn", IGNORE_TERM_DRAIN_THEN_SLEEP)), log=log)
    await pipeline.start()
    await until(lambda: "ready" in lines_of(log, "stubborn"), 10, "ready")
    waiter = asyncio.create_task(pipeline.wait())
    stopper = asyncio.create_task(pipeline.stop(timeout_s=0.5))
    await asyncio.sleep(0.1)
    stopper.cancel()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    # The teardown carries on without anyone waiting for it.
    info = await asyncio.wait_for(pipeline.wait(), 5)
    assert info.processes[0].signal == signal.SIGKILL
    assert not alive(pipeline.pids["stubborn"])


async def test_cancelled_start_leaves_nothing_behind(
    pipelines: Callable[..., PipelineProcess], agent_id: str
) -> None:
    sleepers = spec_of(ProcessSpec("a", ("sleep", "30")), ProcessSpec("b", ("sleep", "30")))
    await pipelines(sleepers).stop()  # warm-up: the first spawn of a loop may open lasting fds
    before = fd_count()
    for turns in range(0, 40, 2):
        pipeline = pipelines(sleepers)
        task = asyncio.create_task(pipeline.start())
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        info = await asyncio.wait_for(pipeline.stop(timeout_s=1.0), 5)
        assert all(p.returncode is not None for p in info.processes), turns
        assert not any(alive(pid) for pid in pipeline.pids.values()), turns
    assert find_leftovers(agent_id) == []
    assert fd_count() == before


async def test_fd_count_unchanged_after_cycles(pipelines: Callable[..., PipelineProcess]) -> None:
    producer_consumer = spec_of(encoder(), python_stage("sink", SINK))
    dies = spec_of(encoder(), python_stage("dies", "import sys; sys.exit(1)"))
    await pipelines(producer_consumer).stop()  # warm-up
    before = fd_count()
    for _ in range(3):
        pipeline = pipelines(producer_consumer)
        await pipeline.start()
        await asyncio.sleep(0.3)
        await pipeline.stop()
    pipeline = pipelines(dies)
    await pipeline.start()
    info = await asyncio.wait_for(pipeline.wait(), 10)
    assert info.first == "dies"
    with pytest.raises(FileNotFoundError):
        await pipelines(spec_of(ProcessSpec("x", ("no-such-program-here",)))).start()
    assert fd_count() == before


async def test_leader_gone_before_the_next_spawn(
    pipelines: Callable[..., PipelineProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow the agent down between two spawns so the first stage has exited and been reaped: its process
    # group is gone and the next stage cannot join it (setpgid → EPERM).
    real_read_pipe = process_module._read_pipe

    async def slow_read_pipe(fd: int, on_line: Callable[[str], None]) -> process_module._LineProtocol:
        await asyncio.sleep(0.3)
        return await real_read_pipe(fd, on_line)

    monkeypatch.setattr(process_module, "_read_pipe", slow_read_pipe)
    pipeline = pipelines(spec_of(ProcessSpec("quick", ("true",)), ProcessSpec("sleeper", ("sleep", "30"))))
    await pipeline.start()
    sleeper = pipeline.pids["sleeper"]
    assert pipeline._stages[1].pgid == sleeper  # ran in a group of its own instead of failing
    info = await asyncio.wait_for(pipeline.wait(), 10)
    assert info.first == "quick" and not info.requested
    assert {p.name: (p.returncode, p.signal) for p in info.processes} == {
        "quick": (0, None),
        "sleeper": (-signal.SIGTERM, signal.SIGTERM),
    }
    assert not alive(sleeper)


async def test_env_is_passed_with_the_marker(
    pipelines: Callable[..., PipelineProcess], agent_id: str
) -> None:
    code = "import os, sys; sys.stderr.write(os.environ['GREETING'] + ' ' + os.environ['PI_STREAM_PIPELINE'])"
    log = LogRing()
    env = {"PATH": os.environ["PATH"], "GREETING": "hello"}
    pipeline = pipelines(spec_of(python_stage("env", code)), log=log, env=env)
    await pipeline.start()
    await asyncio.wait_for(pipeline.wait(), 10)
    assert lines_of(log, "env") == [f"hello {agent_id}:cam"]  # a last line without newline still counts


def test_duplicate_names_get_stage_numbers() -> None:
    ffmpeg = ProcessSpec("ffmpeg", ("ffmpeg",))
    spec = spec_of(ffmpeg, ffmpeg, ProcessSpec("x", ("x",)))
    assert stage_names(spec) == ("ffmpeg#1", "ffmpeg#2", "x")


async def test_stop_before_start_and_wait_before_start() -> None:
    pipeline = PipelineProcess(spec_of(encoder()), log=LogRing(), marker="a:cam")
    assert await pipeline.stop() == ExitInfo(processes=(), first=None, runtime_s=0.0, requested=True)
    with pytest.raises(RuntimeError):
        await pipeline.wait()


# ----------------------------------------------------------------------------------------- agent death

STAND_IN_AGENT = """
import asyncio, json, sys
from pi_stream_agent.streams import process
from pi_stream_agent.streams.model import LogRing, PipelineSpec, ProcessSpec

args = json.loads(sys.argv[1])
if args["setpriv"]:
    process.SETPRIV = args["setpriv"]

async def main():
    spec = PipelineSpec("cam", tuple(ProcessSpec(n, tuple(a)) for n, a in args["stages"]), "software", "x")
    pipeline = process.PipelineProcess(spec, log=LogRing(), marker=args["marker"])
    await pipeline.start()
    print(json.dumps(pipeline.pids), flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


@pytest.fixture
def stand_in_agent(tmp_path: Path, agent_id: str) -> Iterator[Callable[..., dict[str, int]]]:
    """Runs a stand-in agent (a Python process using PipelineProcess) that prints its stages' pids."""
    script = tmp_path / "agent.py"
    script.write_text(STAND_IN_AGENT)
    started: list[subprocess.Popen[str]] = []
    pids: list[int] = []

    def run(stages: tuple[ProcessSpec, ...], setpriv: str | None = None) -> dict[str, int]:
        args = {"stages": [(s.name, s.argv) for s in stages], "marker": f"{agent_id}:cam", "setpriv": setpriv}
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        argv = [PY, str(script), json.dumps(args)]
        agent = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
        started.append(agent)
        assert agent.stdout is not None
        line = agent.stdout.readline()  # the agent prints as soon as its pipeline is up
        assert line, "stand-in agent printed nothing"
        found: dict[str, int] = json.loads(line)
        pids.extend(found.values())
        return found

    try:
        yield run
    finally:
        for agent in started:
            with contextlib.suppress(ProcessLookupError):
                agent.kill()
            agent.wait(timeout=10)
            if agent.stdout is not None:
                agent.stdout.close()
        kill_marked(pids, agent_id)


async def test_sigkilled_agent_leaves_no_publisher(
    stand_in_agent: Callable[..., dict[str, int]], rtsp_server: RtspServer
) -> None:
    url = f"{rtsp_server.publish_base}/a{uuid.uuid4().hex[:6]}"
    pids = await asyncio.to_thread(stand_in_agent, (encoder(), publisher(url)))
    assert set(pids) == {"encoder", "publisher"}
    await asyncio.sleep(1.0)
    assert all(alive(pid) for pid in pids.values())
    agent_pid = parent_of(pids["encoder"])
    assert parent_of(pids["publisher"]) == agent_pid  # the death signal follows the parent
    os.kill(agent_pid, signal.SIGKILL)
    await until(lambda: not any(alive(pid) for pid in pids.values()), 5, "the pipeline to die with the agent")


async def test_without_setpriv_leftovers_survive_and_kill_leftovers_gets_them(
    stand_in_agent: Callable[..., dict[str, int]], agent_id: str
) -> None:
    stages = (encoder(), python_stage("sink", SINK))
    pids = await asyncio.to_thread(stand_in_agent, stages, "setpriv-not-installed")
    agent_pid = parent_of(pids["encoder"])
    os.kill(agent_pid, signal.SIGKILL)
    await asyncio.sleep(1.5)
    # No death signal: the pipeline outlives its agent — the case kill_leftovers exists for.
    assert all(alive(pid) for pid in pids.values())
    assert find_leftovers(agent_id) == sorted(pids.values())
    killed = await asyncio.to_thread(kill_leftovers, agent_id)
    assert sorted(killed) == sorted(pids.values())
    assert not any(alive(pid) for pid in pids.values())
    assert find_leftovers(agent_id) == []


async def test_fallback_without_setpriv_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(process_module, "SETPRIV", f"setpriv-missing-{uuid.uuid4().hex[:6]}")
    assert await process_module.pdeathsig_prefix() == ()
    assert await process_module.pdeathsig_prefix() == ()
    warnings = [r for r in caplog.records if "will not die with the agent" in r.getMessage()]
    assert len(warnings) == 1


async def test_setpriv_supports_pdeathsig_here() -> None:
    prefix = await process_module.pdeathsig_prefix()
    assert prefix[1:] == ("--pdeathsig", "KILL", "--") and prefix[0].endswith("/setpriv")


# ------------------------------------------------------------------------------------------- leftovers


def _sleeper(env_extra: dict[str, str], ignore_term: bool = False) -> subprocess.Popen[bytes]:
    """A detached process (own session, no death signal), as a previous agent's pipeline would be."""
    code = "import signal, sys, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(60)\n"
    env = {k: v for k, v in os.environ.items() if k != MARKER_ENV} | env_extra
    proc = subprocess.Popen([PY, "-c", code], env=env, stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_kill_leftovers_kills_only_marked_processes(agent_id: str) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        marked = _sleeper({MARKER_ENV: f"{agent_id}:cam"})
        stubborn = _sleeper({MARKER_ENV: f"{agent_id}:garage"}, ignore_term=True)
        unmarked = _sleeper({})
        other_agent = _sleeper({MARKER_ENV: f"{agent_id}x:cam"})
        lookalike = _sleeper({"NOTE": f"{MARKER_ENV}={agent_id}:cam"})  # the text, but not the variable
        procs = [marked, stubborn, unmarked, other_agent, lookalike]

        assert find_leftovers(agent_id) == sorted([marked.pid, stubborn.pid])
        started = time.monotonic()
        killed = kill_leftovers(agent_id)
        assert sorted(killed) == sorted([marked.pid, stubborn.pid])
        assert time.monotonic() - started < 4.0
        assert marked.wait(timeout=5) == -signal.SIGTERM
        assert stubborn.wait(timeout=5) == -signal.SIGKILL  # ignored SIGTERM, so escalated
        for spared in (unmarked, other_agent, lookalike):
            assert spared.poll() is None and alive(spared.pid)
        assert kill_leftovers(agent_id) == []
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


def test_find_leftovers_in_a_fixture_tree(tree: FixtureTree) -> None:
    # Built from /proc/<pid>/environ's documented format (NUL-separated NAME=value, see proc(5)).
    tree.write("proc/123/environ", b"PATH=/usr/bin\0PI_STREAM_PIPELINE=abc:cam\0HOME=/var/lib/pi-stream\0")
    tree.write("proc/124/environ", b"PI_STREAM_PIPELINE=abc:garage\0")  # first variable
    tree.write("proc/125/environ", b"PATH=/usr/bin\0PI_STREAM_PIPELINE=abcd:cam\0")  # another agent
    tree.write("proc/126/environ", b"")  # a zombie or kernel thread
    tree.write("proc/127/stat", "127 (x) S 1 127 127")  # no environ at all
    tree.write("proc/self/environ", b"PI_STREAM_PIPELINE=abc:cam\0")  # not a pid
    tree.write(f"proc/{os.getpid()}/environ", b"PI_STREAM_PIPELINE=abc:cam\0")  # never ourselves
    assert find_leftovers("abc", tree.base / "proc") == [123, 124]
    assert find_leftovers("abc", tree.base / "missing") == []


async def test_credentials_in_stderr_never_reach_the_log(tmp_path: Path) -> None:
    # ffmpeg prints the URL it failed on, password included; the log is served by the API.
    line = "[rtsp @ 0x1] Could not open rtsp://publisher:s3cret@127.0.0.1:8554/cam1: Connection refused"
    spec = PipelineSpec(
        stream_id="cam1",
        processes=(
            ProcessSpec("ffmpeg", (sys.executable, "-c", f"import sys; print({line!r}, file=sys.stderr)")),
        ),
        encoding="software",
        main_url="rtsp://127.0.0.1:8554/cam1",
    )
    log = LogRing()
    pipeline = PipelineProcess(spec, log=log, marker="test:cam1")
    await pipeline.start()
    await pipeline.wait()
    text = "\n".join(log.text_tail(10))
    assert "s3cret" not in text
    assert "rtsp://***@127.0.0.1:8554/cam1" in text
