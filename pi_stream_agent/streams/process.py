"""Run one :class:`~.model.PipelineSpec` like a careful daemon.

What this module guarantees, and how:

* **One process group per pipeline.** The first process gets a new group (``process_group=0``), the others
  join it (``process_group=<first pid>``), so one ``killpg`` reaches every stage and anything a stage forks.
  (Not ``start_new_session`` for the first: ``setpgid`` may only join a group of the caller's own session,
  so the later stages could not join a leader that made a session of its own — EPERM.)
* **Nothing outlives the agent, even a SIGKILLed one.** Every stage is exec'd through
  ``setpriv --pdeathsig KILL -- <argv>`` (util-linux ≥ 2.33; Debian 12 / Raspberry Pi OS Bookworm ship
  2.38 and util-linux is Essential), so the kernel SIGKILLs it when its parent dies. setpriv adds about
  1 ms per process (measured: 1.5 ms vs 0.6 ms for a bare exec) where a Python ``prctl`` trampoline adds a
  whole interpreter start (33 ms here on a PC; about a second on a Pi Zero 2 W) to every restart. No
  ``preexec_fn``: it is unsafe once threads exist. Where setpriv is missing or too old we warn once and
  rely on :func:`kill_leftovers` at the next agent start — which also covers the one gap of the death
  signal: an agent killed in the microseconds between a fork and setpriv's prctl. (The signal survives
  exec except into set-uid/file-capability binaries; ffmpeg and rpicam-vid are neither.)
* **Leftovers can be found.** Every stage's environment holds ``PI_STREAM_PIPELINE=<agent_id>:<stream_id>``;
  :func:`kill_leftovers` looks for it in ``/proc/<pid>/environ`` and kills nothing else.
* **ffmpeg's per-frame sizes on a pipe of their own.** ffmpeg (5.1 and 7.1) writes ``-vstats_file`` through
  stdio: its lines leave in 4 KiB blocks that end mid-line. Sent to stderr (as the built command line
  says, so that it also runs by hand), a log line written between two blocks was glued to half a vstats
  line and lost with it — an unplugged card's "No such device" among them, so the exit lost its cause.
  The last stage, the one that reports progress, gets one more pipe for them (``/dev/fd/N``, the write
  end passed under its own number).
* **Everything is reaped, every fd closed.** Stop is SIGTERM (+SIGCONT, so a stopped stage can act on it)
  to the group, SIGKILL after a timeout; teardown runs in its own task, so cancelling whoever awaits
  :meth:`PipelineProcess.stop`/``wait`` never leaves a child unreaped; the pipes are ours (``os.pipe``),
  closed in the parent as soon as a child holds them, and read through transports closed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import select
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pi_stream_agent.streams.audio import is_meter_line, parse_level_line, sound_lost
from pi_stream_agent.streams.model import ExitInfo, LogRing, PipelineSpec, ProcessExit, Progress
from pi_stream_agent.streams.progress import (
    VSTATS_OPTION,
    ProgressParser,
    apply_block,
    parse_vstats_line,
    record_size,
    vstats_to,
)
from pi_stream_agent.streams.urls import redact

_LOGGER = logging.getLogger(__name__)

MARKER_ENV = "PI_STREAM_PIPELINE"
SETPRIV = "setpriv"
MAX_LINE_BYTES = 1000  # longer stderr lines are cut (a runaway binary dump must not fill memory)
LOG_TAIL_LINES = 20
_READER_DRAIN_S = 1.0  # after every stage is reaped, how long the pipes may take to report EOF
_PROBE_TIMEOUT_S = 5.0
_LEFTOVER_KILL_WAIT_S = 1.0

# setpriv probe results by the setpriv name asked for: () = no death signal available.
_PDEATHSIG_PREFIX: dict[str, tuple[str, ...]] = {}


# Sound levels kept for the detector between two supervisor ticks (two a second; generous for a late tick).
_PENDING_LEVELS = 20


async def pdeathsig_prefix() -> tuple[str, ...]:
    """The argv prefix that makes a child die with its parent: ``(<setpriv>, "--pdeathsig", "KILL",
    "--")``, or ``()`` where setpriv cannot do it (warned about once). Probed once per agent by running
    setpriv with the option (a version without it exits with an error)."""
    name = SETPRIV
    cached = _PDEATHSIG_PREFIX.get(name)
    if cached is not None:
        return cached
    path = shutil.which(name)
    prefix: tuple[str, ...] = ()
    if path is None:
        reason = f"{name} not found"
    else:
        candidate = (path, "--pdeathsig", "KILL", "--")
        # Exec setpriv itself as the target: always present, exits at once.
        reason = await _probe(*candidate, path, "--version")
        if not reason:
            prefix = candidate
    if reason:
        _LOGGER.warning(
            "Stream processes will not die with the agent (%s; util-linux setpriv >= 2.33 needed); "
            "leftovers are only cleaned up at the next agent start",
            reason,
        )
    _PDEATHSIG_PREFIX[name] = prefix
    return prefix


async def _probe(*argv: str) -> str:
    """Run ``argv``; "" when it exits 0, else why not."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as err:
        return f"{argv[0]}: {err.strerror}"
    try:
        returncode = await asyncio.wait_for(proc.wait(), _PROBE_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"{argv[0]} did not answer"
    return "" if returncode == 0 else f"{argv[0]} --pdeathsig exited with {returncode}"


# -------------------------------------------------------------------------------------------- pipe reading


class _LineProtocol(asyncio.Protocol):
    """Cuts a pipe's bytes into lines for ``on_line``.

    ``\\r`` is read the way a terminal shows it: text ended by ``\\r`` is a status line that the next one
    overwrites (ffmpeg's ``frame=… fps=…\\r`` stats), kept aside and only delivered when an empty line or
    the end of the stream follows — otherwise a long-running ffmpeg would flood the log with stats.
    Lines longer than :data:`MAX_LINE_BYTES` are cut and marked with `` …``; bytes that are not UTF-8
    become U+FFFD."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._on_line = on_line
        self._pending = b""
        self._status: bytes | None = None
        self._skipping = False  # inside a line already cut: drop bytes up to its end
        self._transport: asyncio.BaseTransport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._skipping:
            cut = _first_terminator(data)
            if cut < 0:
                return
            self._skipping = False
            data = data[cut + 1 :]
        buffer = self._pending + data if self._pending else data
        lines = buffer.split(b"\n")
        tail = lines.pop()
        for line in lines:
            self._complete(line)
        if b"\r" in tail:
            parts = tail.split(b"\r")
            tail = parts.pop()
            self._keep_status(parts)
        if len(tail) > MAX_LINE_BYTES:
            # Cut now: a line that long is not held in memory until it ends, whatever ends it.
            self._emit(tail)
            self._status = None
            self._skipping = True
            tail = b""
        self._pending = tail

    def eof_received(self) -> bool | None:
        self._flush()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._flush()
        if not self.done.done():
            self.done.set_result(None)

    def _flush(self) -> None:
        pending, self._pending = self._pending, b""
        if pending or self._status is not None:
            self._complete(pending)

    def _complete(self, line: bytes) -> None:
        """A segment that ended with ``\\n`` (or the stream)."""
        if b"\r" in line:
            parts = line.split(b"\r")
            line = parts.pop()
            self._keep_status(parts)
        if line.strip():
            self._emit(line)
            self._status = None
        elif self._status is not None:
            status, self._status = self._status, None
            self._emit(status)

    def _keep_status(self, parts: list[bytes]) -> None:
        """Segments that ended with ``\\r``: the last one is the status; an over-long one is cut and
        delivered at once (the same as when it arrives in pieces)."""
        for part in parts:
            if len(part) > MAX_LINE_BYTES:
                self._emit(part)
                self._status = None
            elif part.strip():
                self._status = part

    def _emit(self, raw: bytes) -> None:
        text = raw[:MAX_LINE_BYTES].decode("utf-8", "replace").rstrip()
        if len(raw) > MAX_LINE_BYTES:
            text += " …"
        if not text:
            return
        try:
            self._on_line(text)
        except Exception:  # a broken consumer must not close the pipe (that would SIGPIPE the stage)
            _LOGGER.exception("line consumer failed")


def _bytes_read(pid: int) -> int | None:
    """``rchar`` of /proc/<pid>/io: every byte the process has read() — for a stage fed by a pipe, the
    stream it was fed (plus a constant few kB of start-up reads, which a rate of deltas ignores)."""
    try:
        with open(f"/proc/{pid}/io", "rb") as handle:
            for line in handle:
                if line.startswith(b"rchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _first_terminator(data: bytes) -> int:
    newline, carriage = data.find(b"\n"), data.find(b"\r")
    if newline < 0:
        return carriage
    return newline if carriage < 0 else min(newline, carriage)


async def _read_pipe(fd: int, on_line: Callable[[str], None]) -> _LineProtocol:
    """Read ``fd`` (a pipe's read end; owned from here on, closed by the protocol's transport)."""
    pipe = os.fdopen(fd, "rb", buffering=0)
    protocol = _LineProtocol(on_line)
    try:
        await asyncio.get_running_loop().connect_read_pipe(lambda: protocol, pipe)
    except BaseException:
        pipe.close()
        raise
    return protocol


# --------------------------------------------------------------------------------------------- pipelines


@dataclass
class _Stage:
    name: str
    process: asyncio.subprocess.Process
    pgid: int
    exited: asyncio.Task[int]
    readers: list[_LineProtocol] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid


def stage_names(spec: PipelineSpec) -> tuple[str, ...]:
    """The labels used for ``pids``, log lines and ``ExitInfo``: the spec's names, with ``#<n>`` (the
    1-based stage number) added to names that occur more than once (``ffmpeg#1 | ffmpeg#2``)."""
    names = [process.name for process in spec.processes]
    return tuple(
        name if names.count(name) == 1 else f"{name}#{index}" for index, name in enumerate(names, start=1)
    )


def resolve_executable(argv0: str, env: Mapping[str, str]) -> str:
    """``argv0`` resolved on the children's PATH; FileNotFoundError when it is not there. Resolved before
    spawning so that a missing rpicam-vid is an error of ``start()`` (nothing spawned) rather than a stage
    that setpriv could not exec."""
    found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "executable not found", argv0)
    return found


class PipelineProcess:
    """Runs the processes of one PipelineSpec, stdout of each into stdin of the next, in one new process
    group. ``await start()`` once; then ``await wait()`` (returns when ANY stage exits — the rest are
    stopped: a half-dead pipeline is a dead pipeline) and/or ``await stop()``. Both return the same
    :class:`~.model.ExitInfo` once the pipeline has ended.

    Must be used from the thread that runs the event loop (it is a coroutine API, so it is): the kernel
    sends the death signal when the *thread* that forked a child exits, not the process, so a child forked
    from a short-lived helper thread would be SIGKILLed when that thread ends. asyncio forks in the loop's
    own thread; on the agent that is the main thread, which lives as long as the agent.
    """

    def __init__(
        self,
        spec: PipelineSpec,
        *,
        log: LogRing,
        marker: str,
        stop_timeout_s: float = 3.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not spec.processes:
            raise ValueError(f"pipeline {spec.stream_id!r} has no processes")
        self.spec = spec
        self.names = stage_names(spec)
        self.progress = Progress()
        self.started_at: float | None = None  # time.monotonic() when start() began
        self._log = log
        self._marker = marker
        self._stop_timeout_s = stop_timeout_s
        self._env = env
        self._stages: list[_Stage] = []
        self._exit_order: list[str] = []
        self._spawning = False
        self._settled = asyncio.Event()  # start() has returned or raised
        self._teardown_task: asyncio.Task[ExitInfo] | None = None
        self._ended: asyncio.Future[ExitInfo] | None = None
        self._parser = ProgressParser()
        count = len(spec.processes)
        # Only the last stage's stdout reaches the agent; the others feed the next stage.
        self._reads_progress = spec.progress_process % count == count - 1

    # -- state ------------------------------------------------------------------------------------------

    @property
    def pids(self) -> dict[str, int]:
        return {stage.name: stage.pid for stage in self._stages}

    @property
    def pgid(self) -> int | None:
        return self._stages[0].pgid if self._stages else None

    @property
    def running(self) -> bool:
        """From a successful ``start()`` until the pipeline is torn down (a stage died or stop())."""
        return bool(self._stages) and not self._spawning and self._teardown_task is None

    @property
    def exit_info(self) -> ExitInfo | None:
        """How it ended, once it has (every stage reaped)."""
        if self._ended is None or not self._ended.done() or self._ended.cancelled():
            return None
        return self._ended.result()

    def _log_line(self, name: str, line: str) -> None:
        if is_meter_line(line) and self._reads_progress and name == self.names[-1]:
            # The sound's level meter (streams/audio.py) on the publisher's stderr: data, not a log line.
            level = parse_level_line(line)
            if level is not None:
                self.progress.sound_level_dbfs = level
                del self.progress.sound_levels[:-_PENDING_LEVELS]  # bounded if nobody drains them
                self.progress.sound_levels.append((time.time(), level))
            return
        if self._reads_progress and name == self.names[-1] and self.progress.sound_lost is None:
            self.progress.sound_lost = sound_lost(line)  # the sound card went away under ffmpeg
        # ffmpeg echoes the publish URL in its errors; the log is served over the API: never the password.
        self._log.append(name, redact(line))

    def _on_vstats_line(self, line: str) -> None:
        """The progress ffmpeg's per-frame sizes (-vstats, on their own pipe): what the bitrate is measured
        from where the RTSP output has no size of its own."""
        frame = parse_vstats_line(line)
        if frame is not None and (frame.output, frame.stream) == (0, 0):  # the main stream
            record_size(self.progress, frame.time_s, frame.total_bytes)

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Spawn every stage. Raises OSError (FileNotFoundError for a missing executable) with nothing
        left running; on cancellation everything spawned so far is killed and reaped."""
        if self._ended is not None:
            raise RuntimeError("a PipelineProcess is started once; make a new one to restart")
        loop = asyncio.get_running_loop()
        self._ended = loop.create_future()
        self.started_at = time.monotonic()
        self._spawning = True
        try:
            env = dict(os.environ if self._env is None else self._env)
            env[MARKER_ENV] = self._marker
            argvs = [(resolve_executable(p.argv[0], env), *p.argv[1:]) for p in self.spec.processes]
            prefix = await pdeathsig_prefix()
            await self._spawn_all(argvs, prefix, env)
        except BaseException:
            # Spawn failed or start() was cancelled: kill what runs. The teardown is a task of its own,
            # so even a second cancellation of this one cannot leave a child unreaped.
            self._spawning = False
            self._settled.set()
            await asyncio.shield(self._begin_teardown(requested=False, timeout_s=0.0))
            raise
        self._spawning = False
        self._settled.set()
        if self._exit_order:  # a stage died while the later ones were being spawned
            self._begin_teardown(requested=False)

    async def _spawn_all(
        self, argvs: list[tuple[str, ...]], prefix: tuple[str, ...], env: dict[str, str]
    ) -> None:
        # Parent-side fds not yet handed to a child (closed) or a transport (owned there). Closing our copy
        # of each write end right after the child has it is what lets EOF propagate down the pipeline.
        loose: set[int] = set()
        stdin: int = asyncio.subprocess.DEVNULL
        try:
            for index, (name, given) in enumerate(zip(self.names, argvs, strict=True)):
                last = index == len(argvs) - 1
                argv = given
                out_r, out_w = os.pipe()
                err_r, err_w = os.pipe()
                loose.update((out_r, out_w, err_r, err_w))
                vstats: tuple[int, int] | None = None
                if last and self._reads_progress and VSTATS_OPTION in given:
                    vstats = os.pipe()
                    loose.update(vstats)
                    argv = vstats_to(given, vstats[1])
                passed = (vstats[1],) if vstats else ()
                process, pgid = await self._spawn(
                    (*prefix, *argv), stdin, out_w, err_w, env=env, pass_fds=passed
                )
                for fd in (out_w, err_w, stdin, *passed):
                    if fd in loose:
                        loose.discard(fd)
                        os.close(fd)
                stage = _Stage(name, process, pgid, asyncio.create_task(process.wait()))
                stage.exited.add_done_callback(functools.partial(self._stage_exited, name))
                self._stages.append(stage)
                loose.discard(err_r)
                stage.readers.append(await _read_pipe(err_r, functools.partial(self._log_line, name)))
                if vstats is not None:
                    loose.discard(vstats[0])
                    stage.readers.append(await _read_pipe(vstats[0], self._on_vstats_line))
                if last:
                    loose.discard(out_r)
                    stage.readers.append(await _read_pipe(out_r, self._on_stdout_line))
                else:
                    stdin = out_r
        finally:
            for fd in loose:
                os.close(fd)

    async def _spawn(
        self,
        argv: tuple[str, ...],
        stdin: int,
        stdout: int,
        stderr: int,
        *,
        env: dict[str, str],
        pass_fds: tuple[int, ...],
    ) -> tuple[asyncio.subprocess.Process, int]:
        leader = self._stages[0].pid if self._stages else 0
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=env,
                pass_fds=pass_fds,
                process_group=leader,
            )
        except PermissionError as err:
            # setpgid() fails with EPERM (no file name) when the leader has already exited and been
            # reaped, so its group no longer exists. The pipeline is dead anyway — wait() will report
            # the leader — but this stage must still run under supervision: give it its own group.
            if leader == 0 or err.filename is not None:
                raise
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, pass_fds=pass_fds, process_group=0
            )
            return process, process.pid
        return process, leader or process.pid

    def _on_stdout_line(self, line: str) -> None:
        if not self._reads_progress:
            return  # still drained, so the stage never blocks on a full pipe
        block = self._parser.feed(line)
        if block is not None:
            apply_block(self.progress, block, time.monotonic())
            if self.spec.main_stream_on_stdin and block.out_time_s is not None and self._stages:
                read = _bytes_read(self._stages[-1].pid)
                if read is not None:
                    record_size(self.progress, block.out_time_s, read)

    def _stage_exited(self, name: str, _task: asyncio.Task[int]) -> None:
        self._exit_order.append(name)
        if not self._spawning and self._teardown_task is None:
            self._begin_teardown(requested=False)

    def _begin_teardown(self, *, requested: bool, timeout_s: float | None = None) -> asyncio.Task[ExitInfo]:
        if self._teardown_task is None:
            timeout = self._stop_timeout_s if timeout_s is None else timeout_s
            self._teardown_task = asyncio.create_task(
                self._finish(requested=requested, timeout_s=timeout),
                name=f"pipeline-teardown-{self.spec.stream_id}",
            )
        return self._teardown_task

    async def wait(self) -> ExitInfo:
        """Until any stage exits and the pipeline is torn down (``requested=False`` unless stop() came
        first). Cancelling the caller does not cancel the teardown."""
        if self._ended is None:
            raise RuntimeError("pipeline not started")
        return await asyncio.shield(self._ended)

    async def stop(self, timeout_s: float | None = None) -> ExitInfo:
        """SIGTERM to the group, SIGKILL after ``timeout_s`` (default ``stop_timeout_s``); every stage
        reaped. Idempotent: after the end it returns the ExitInfo the pipeline ended with."""
        if self._ended is None:
            return ExitInfo(processes=(), first=None, runtime_s=0.0, requested=True)
        if self._ended.done():
            return self._ended.result()
        # start() may still be spawning in another task: stop once it has settled.
        await self._settled.wait()
        return await asyncio.shield(self._begin_teardown(requested=True, timeout_s=timeout_s))

    # -- teardown -----------------------------------------------------------------------------------------

    async def _finish(self, *, requested: bool, timeout_s: float) -> ExitInfo:
        assert self._ended is not None
        first = self._exit_order[0] if self._exit_order else None
        runtime = time.monotonic() - (self.started_at or time.monotonic())
        try:
            await self._terminate(timeout_s)
            readers = [reader for stage in self._stages for reader in stage.readers]
            if readers:
                # Every writer is dead, so EOF is normally one loop turn away; a grandchild that left the
                # group could hold a pipe open forever, hence the bound.
                await asyncio.wait([reader.done for reader in readers], timeout=_READER_DRAIN_S)
                for reader in readers:
                    reader.close()
        except BaseException:
            # Cancelled (loop shutting down): the children must not outlive this, even unreaped.
            self._signal(signal.SIGKILL)
            for stage in self._stages:
                for reader in stage.readers:
                    reader.close()
            if not self._ended.done():
                self._ended.cancel()
            raise
        info = ExitInfo(
            processes=tuple(_process_exit(stage) for stage in self._stages),
            first=first,
            runtime_s=runtime,
            requested=requested,
            log_tail=tuple(self._log.text_tail(LOG_TAIL_LINES)),
        )
        self._ended.set_result(info)
        return info

    async def _terminate(self, timeout_s: float) -> None:
        waits = [stage.exited for stage in self._stages]
        if not waits or all(task.done() for task in waits):
            return
        if timeout_s > 0:
            self._signal(signal.SIGTERM)
            # A SIGSTOPped stage only acts on SIGTERM once continued.
            self._signal(signal.SIGCONT)
            _done, pending = await asyncio.wait(waits, timeout=timeout_s)
            if not pending:
                return
            _LOGGER.warning(
                "stream %s: %s ignored SIGTERM for %.1f s; killing",
                self.spec.stream_id,
                ", ".join(stage.name for stage in self._stages if not stage.exited.done()),
                timeout_s,
            )
        self._signal(signal.SIGKILL)
        await asyncio.wait(waits)  # SIGKILL cannot be ignored

    def _signal(self, signum: int) -> None:
        """``signum`` to every group that still holds one of our unreaped children. While one is unreaped
        its group exists and cannot be reused, so killpg cannot hit a stranger."""
        groups = {stage.pgid for stage in self._stages if stage.process.returncode is None}
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signum)
        if signum == signal.SIGKILL:
            # Also each stage by pid, in case one moved itself out of the group. os.kill, not
            # Process.kill(): that polls (waitpid) first and may reap the child under asyncio's child
            # watcher, which then reports exit status 255 instead of the signal.
            for stage in self._stages:
                if stage.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(stage.pid, signal.SIGKILL)


def _process_exit(stage: _Stage) -> ProcessExit:
    code = stage.process.returncode
    return ProcessExit(
        name=stage.name,
        pid=stage.pid,
        returncode=code,
        signal=-code if code is not None and code < 0 else None,
    )


# --------------------------------------------------------------------------------------------- leftovers


def _marker_prefix(agent_id: str) -> bytes:
    return f"{MARKER_ENV}={agent_id}:".encode()


def _has_marker(environ: bytes, needle: bytes) -> bool:
    return environ.startswith(needle) or b"\0" + needle in environ


def _read_environ(proc_root: Path, pid: int) -> bytes | None:
    try:
        return (proc_root / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return None


def find_leftovers(agent_id: str, proc_root: Path = Path("/proc")) -> list[int]:
    """Pids whose environment holds ``PI_STREAM_PIPELINE=<agent_id>:…`` — stream processes started by an
    agent with this id. Only processes of our own uid are looked at (root: all); never this process."""
    needle = _marker_prefix(agent_id)
    uid = os.geteuid()
    own = os.getpid()
    found: list[int] = []
    try:
        entries = list(os.scandir(proc_root))
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            # /proc/<pid> belongs to the process's effective uid; skipping others saves a failed open each.
            if uid != 0 and entry.stat().st_uid != uid:
                continue
        except OSError:
            continue
        environ = _read_environ(proc_root, int(entry.name))
        if environ is not None and _has_marker(environ, needle):
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class _Target:
    pid: int
    pidfd: int | None  # pins the process: a signal through it can never reach a recycled pid


def kill_leftovers(agent_id: str, proc_root: Path = Path("/proc")) -> list[int]:
    """Kill the stream processes a previous run of this agent left behind (it was SIGKILLed before the
    death signal existed, or setpriv is missing): SIGTERM, a short wait, SIGKILL. Returns the pids killed.

    Blocks for up to about twice ``_LEFTOVER_KILL_WAIT_S``; meant for agent start, *before* this agent
    starts streams of its own (they carry the same marker), via ``asyncio.to_thread`` inside the loop.
    ``proc_root`` must be the procfs of our pid namespace.

    Each marked process is signalled on its own rather than by ``killpg``: a pipeline's group holds only
    marked processes (children inherit the environment), so this reaches the same processes while it can
    never touch one without the marker. Each is pinned with a pidfd and its marker read again before the
    signal, so a pid recycled between the scan and the kill is left alone."""
    needle = _marker_prefix(agent_id)
    targets: list[_Target] = []
    for pid in find_leftovers(agent_id, proc_root):
        target = _pin(pid)
        environ = _read_environ(proc_root, pid)
        if environ is None or not _has_marker(environ, needle):
            _unpin(target)
            continue
        targets.append(target)
    if not targets:
        return []
    _LOGGER.warning("killing %d leftover stream process(es): %s", len(targets), [t.pid for t in targets])
    try:
        for target in targets:
            _send(target, signal.SIGTERM)
            _send(target, signal.SIGCONT)
        survivors = _wait_gone(targets, proc_root, _LEFTOVER_KILL_WAIT_S)
        for target in survivors:
            _send(target, signal.SIGKILL)
        _wait_gone(survivors, proc_root, _LEFTOVER_KILL_WAIT_S)
    finally:
        for target in targets:
            _unpin(target)
    return [target.pid for target in targets]


def _pin(pid: int) -> _Target:
    try:
        return _Target(pid, os.pidfd_open(pid))
    except (AttributeError, OSError):  # no pidfd (kernel < 5.3) or already gone
        return _Target(pid, None)


def _unpin(target: _Target) -> None:
    if target.pidfd is not None:
        os.close(target.pidfd)
        target.pidfd = None


def _send(target: _Target, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if target.pidfd is not None:
            signal.pidfd_send_signal(target.pidfd, signum)
        else:
            os.kill(target.pid, signum)


def _dead(target: _Target, proc_root: Path) -> bool:
    """Exited — gone, or a zombie its parent has not reaped yet (nothing we can or need to do)."""
    if target.pidfd is not None:
        poller = select.poll()
        poller.register(target.pidfd, select.POLLIN)
        return bool(poller.poll(0))  # a pidfd polls readable once the process has exited
    try:
        stat = (proc_root / str(target.pid) / "stat").read_text()
    except OSError:
        return True
    state = stat.rpartition(")")[2].split(maxsplit=1)[:1]
    return state in (["Z"], ["X"])


def _wait_gone(targets: list[_Target], proc_root: Path, timeout_s: float) -> list[_Target]:
    deadline = time.monotonic() + timeout_s
    alive = [target for target in targets if not _dead(target, proc_root)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [target for target in alive if not _dead(target, proc_root)]
    return alive
