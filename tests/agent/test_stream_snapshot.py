"""Snapshots from the published stream: real ffmpeg, real RTSP server (rtsp-server-perl, UDP only).

Every ffmpeg the service starts goes through a wrapper script that logs its pid and then ``exec``s the
real ffmpeg (same pid), so tests count real decodes and check afterwards that each one was reaped.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.streams.snapshot import (
    FAILURE_TTL_S,
    Snapshot,
    SnapshotError,
    SnapshotService,
    classify_failure,
    is_complete_jpeg,
    jpeg_dimensions,
    snapshot_argv,
)
from pi_stream_agent.streams.urls import redact
from tests.agent.helpers import FFMPEG_VERSIONS, ffmpeg_capture
from tests.agent.rtsp import RtspServer, free_port, wait_readable

# ------------------------------------------------------------------------------------------------ helpers


@dataclass
class FfmpegSpy:
    """An ``ffmpeg`` that logs each invocation's pid and argv before exec'ing the real one."""

    path: Path
    log: Path

    def invocations(self) -> list[tuple[int, str]]:
        if not self.log.exists():
            return []
        rows = []
        for line in self.log.read_text().splitlines():
            pid, _, argv = line.partition(" ")
            rows.append((int(pid), argv))
        return rows

    @property
    def runs(self) -> int:
        return len(self.invocations())

    def live_pids(self) -> list[int]:
        """Logged pids still present as our children. A zombie keeps its /proc entry, so an empty list
        means killed *and* reaped; the parent check keeps a recycled pid from counting."""
        return [pid for pid, _ in self.invocations() if _parent_of(pid) == os.getpid()]


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid …": comm may hold spaces, so split after its closing parenthesis.
    return int(stat.rpartition(")")[2].split()[1])


@pytest.fixture
def spy(tmp_path: Path) -> Iterator[FfmpegSpy]:
    log = tmp_path / "ffmpeg-runs.log"
    script = tmp_path / "ffmpeg-spy"
    # $$ is the shell's pid, and exec keeps it: the logged pid is ffmpeg's.
    script.write_text(f'#!/bin/sh\necho "$$ $*" >> "{log}"\nexec ffmpeg "$@"\n')
    script.chmod(0o755)
    found = FfmpegSpy(script, log)
    yield found
    left = found.live_pids()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"ffmpeg processes left running: {left}"


MakeService = Callable[..., SnapshotService]


@pytest.fixture
async def make_service(spy: FfmpegSpy) -> AsyncIterator[MakeService]:
    """SnapshotService factory using the spy ffmpeg and UDP (rtsp-server-perl has no TCP transport);
    every service is closed before the spy checks for leftovers."""
    made: list[SnapshotService] = []

    def make(**kwargs: Any) -> SnapshotService:
        kwargs.setdefault("ffmpeg", str(spy.path))
        kwargs.setdefault("transport", "udp")
        service = SnapshotService(**kwargs)
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()


@dataclass
class Publishers:
    server: RtspServer
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def publish(self, path: str, gop: int = 15) -> str:
        """Publish a 320x240 15 fps test pattern at ``path``; returns the read URL once readable."""
        read_url = f"{self.server.read_base}/{path}"
        argv = [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
            "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
            "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-f", "rtsp", "-rtsp_transport", "udp", f"{self.server.publish_base}/{path}",
        ]  # fmt: skip
        # rtsp-server-perl now and then answers a fresh publisher's RECORD with 404; ffmpeg then exits
        # at once, so try again.
        for _ in range(3):
            process = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL)
            self.processes.append(process)
            try:
                process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                wait_readable(read_url)
                return read_url
        raise AssertionError(f"could not publish {path}")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.processes.clear()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Publishers]:
    """One RTSP server for this module with ``cam`` and ``cam2`` published (publishing and waiting until
    a stream is readable costs seconds, so the tests that only read share them). Tests that need a
    path of their own publish it under a unique name."""
    server = RtspServer(free_port(), free_port(), tmp_path_factory.mktemp("rtsp") / "rtsp-server.log")
    server.start()
    found = Publishers(server)
    try:
        found.publish("cam")
        found.publish("cam2")
        yield found
    finally:
        found.stop_all()
        server.stop()


@pytest.fixture
def cam(live: Publishers) -> str:
    return f"{live.server.read_base}/cam"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """An RTSP URL whose server accepts the connection (the kernel's backlog does) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"rtsp://127.0.0.1:{sock.getsockname()[1]}/cam"


def _ffmpeg_jpeg(size: str = "320x240", source: str = "testsrc2") -> bytes:
    """A JPEG from ffmpeg's own MJPEG encoder (the encoder the service uses)."""
    argv = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi",
        "-i", f"{source}=size={size}:rate=1", "-frames:v", "1",
        "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4", "pipe:1",
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, check=True, timeout=20).stdout


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _sof(marker: int, width: int, height: int) -> bytes:
    # T.81 B.2.2: precision, height, width, component count, then 3 bytes per component.
    return _segment(
        marker, bytes([8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x01\x01\x11\x00"
    )


SOI, EOI = b"\xff\xd8", b"\xff\xd9"
APP0 = _segment(0xE0, b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00")
DQT = _segment(0xDB, b"\x00" + bytes(range(1, 65)))
DHT = _segment(0xC4, b"\x00" + bytes(16))
SOS = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")


# ------------------------------------------------------------------------------------------- pure parts


def test_jpeg_dimensions_of_real_ffmpeg_jpegs() -> None:
    cases = (
        ("testsrc2", "320x240", (320, 240)),
        ("testsrc2", "1296x972", (1296, 972)),
        ("testsrc", "17x9", (17, 9)),
    )
    for source, size, expected in cases:
        jpeg = _ffmpeg_jpeg(size, source)
        assert jpeg_dimensions(jpeg) == expected
        assert is_complete_jpeg(jpeg)


def test_jpeg_dimensions_of_crafted_segments() -> None:
    # Built from the JPEG standard's marker layout (ITU T.81 annex B).
    assert jpeg_dimensions(SOI + APP0 + DQT + _sof(0xC0, 1920, 1080) + DHT + SOS + b"\x12\x34" + EOI) == (
        1920,
        1080,
    )
    # Progressive (SOF2) and a DHT before the frame header: DHT (C4) is not a SOF.
    assert jpeg_dimensions(SOI + DHT + _sof(0xC2, 640, 480) + SOS + EOI) == (640, 480)
    # Fill bytes before a marker, and standalone markers (RST) that carry no length.
    assert jpeg_dimensions(SOI + b"\xff\xff\xff" + b"\xff\xd0" + _sof(0xC1, 4056, 3040) + EOI) == (4056, 3040)
    # The first SOF wins.
    assert jpeg_dimensions(SOI + _sof(0xC0, 100, 50) + _sof(0xC0, 7, 7)) == (100, 50)


def test_jpeg_dimensions_rejects_what_is_not_a_sized_jpeg() -> None:
    valid = SOI + APP0 + DQT + _sof(0xC0, 320, 240) + SOS + EOI
    assert jpeg_dimensions(b"") is None
    assert jpeg_dimensions(b"\x89PNG\r\n\x1a\n" + valid) is None
    assert jpeg_dimensions(SOI + SOS + b"\x00" * 20 + _sof(0xC0, 320, 240)) is None  # scan before any SOF
    assert jpeg_dimensions(SOI + _sof(0xC0, 320, 0) + EOI) is None  # height left to a DNL marker
    assert jpeg_dimensions(SOI + _sof(0xC0, 0, 240) + EOI) is None
    assert jpeg_dimensions(SOI + b"\x00\x01" + valid[2:]) is None  # not a marker where one must be
    assert jpeg_dimensions(SOI + b"\xff\xe0\x00\x01" + valid[2:]) is None  # segment length < 2
    assert jpeg_dimensions(SOI + b"\xff\xc0\x00\x05\x08\x00\xf0") is None  # SOF too short for a size
    # Every truncation of a valid JPEG either still has its SOF or yields None; none raises.
    sof_start = len(SOI + APP0 + DQT)
    for cut in range(len(valid)):
        # The size is known once marker(2) length(2) precision(1) height(2) width(2) are in.
        expected = (320, 240) if cut >= sof_start + 9 else None
        assert jpeg_dimensions(valid[:cut]) == expected, cut
    rng = random.Random(7)
    for _ in range(300):
        jpeg_dimensions(SOI + rng.randbytes(rng.randrange(0, 64)))


def test_is_complete_jpeg() -> None:
    jpeg = _ffmpeg_jpeg()
    assert is_complete_jpeg(jpeg)
    assert not is_complete_jpeg(jpeg[:-1])  # cut off before EOI
    assert not is_complete_jpeg(jpeg[1:])
    assert not is_complete_jpeg(b"")
    assert not is_complete_jpeg(SOI + EOI[:1])


def test_snapshot_argv() -> None:
    argv = snapshot_argv("ffmpeg", "rtsp://h/cam", transport="tcp", timeout_s=8.0, max_width=None)
    assert argv == [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp",
        "-timeout", "9000000", "-probesize", "32", "-threads", "1", "-skip_frame", "nokey",
        "-i", "rtsp://h/cam", "-frames:v", "1", "-an", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4",
        "pipe:1",
    ]  # fmt: skip
    scaled = snapshot_argv("/usr/bin/ffmpeg", "rtsp://h/cam", transport="udp", timeout_s=2, max_width=640)
    assert scaled[scaled.index("-vf") + 1] == "scale=w=min(iw\\,640):h=-2:flags=bilinear"
    # Filters are output options: after -i. skip_frame is a decoder (input) option: before -i.
    assert scaled.index("-skip_frame") < scaled.index("-i") < scaled.index("-vf")
    assert scaled[scaled.index("-rtsp_transport") + 1] == "udp"


# Real ffmpeg 5.1 stderr (-loglevel error) seen in these tests' runs, with the URL already redacted.
URL = "rtsp://127.0.0.1:8554/cam"


@pytest.mark.parametrize(
    ("returncode", "stdout", "stderr", "code", "message"),
    [
        (
            1,
            b"",
            f"[rtsp @ 0x55e56e2ffa80] method DESCRIBE failed: 404 Not Found\n"
            f"{URL}: Server returned 404 Not Found\n",
            "stream_unavailable",
            f"{URL}: Server returned 404 Not Found",
        ),
        (
            1,
            b"",
            f"[tcp @ 0x56] Connection to tcp://127.0.0.1:8554?timeout=0 failed: Connection refused\n"
            f"{URL}: Connection refused\n",
            "stream_unavailable",
            f"{URL}: Connection refused",
        ),
        (
            1,
            b"",
            f"[rtsp @ 0x55] method OPTIONS failed: 401 Unauthorized\n"
            f"{URL}: Server returned 401 Unauthorized (authorization failed)\n",
            "unauthorized",
            f"{URL}: Server returned 401 Unauthorized (authorization failed)",
        ),
        (
            1,
            b"",
            f"{URL}: Invalid data found when processing input\n",
            "stream_unavailable",
            f"{URL}: Invalid data found when processing input",
        ),
        (
            1,
            b"",
            "Output file #0 does not contain any stream\n",
            "stream_unavailable",
            "Output file #0 does not contain any stream",
        ),
        (0, b"", "", "stream_unavailable", "the stream ended before a key frame arrived"),
        (0, b"\xff\xd8\x00", "", "decode_failed", "ffmpeg output is not a complete JPEG (3 bytes)"),
        (-9, b"", "", "decode_failed", "ffmpeg was killed by signal 9"),
        (
            1,
            b"",
            "Error initializing output stream 0:0 -- Error while opening encoder for output stream #0:0\n",
            "decode_failed",
            "Error initializing output stream 0:0 -- Error while opening encoder for output stream #0:0",
        ),
        (187, b"", "", "decode_failed", "ffmpeg exited with status 187"),
    ],
)
def test_classify_failure(returncode: int, stdout: bytes, stderr: str, code: str, message: str) -> None:
    error = classify_failure(returncode, stdout, stderr, URL)
    assert (error.code, error.message) == (code, message)
    assert str(error) == f"{code}: {message}"


# What ffmpeg 5.1 (Bookworm) and 7.1 (Trixie) print when the snapshot's input cannot be opened, captured by
# tests/fixtures/ffmpeg/capture.py with the agent's own command line: each is told the same way by both.
CAPTURED_URL = "rtsp://viewer:hunter2@127.0.0.1:8554/cam"
SAFE_URL = "rtsp://***@127.0.0.1:8554/cam"


@pytest.mark.parametrize("version", FFMPEG_VERSIONS)
@pytest.mark.parametrize(
    ("capture", "url", "code", "reason"),
    [
        (
            "snapshot_unauthorized",
            CAPTURED_URL,
            "unauthorized",
            "Server returned 401 Unauthorized (authorization failed)",
        ),
        ("snapshot_not_found", CAPTURED_URL, "stream_unavailable", "Server returned 404 Not Found"),
        ("snapshot_not_rtsp", CAPTURED_URL, "stream_unavailable", "Invalid data found when processing input"),
        ("snapshot_refused", "rtsp://127.0.0.1:8555/cam", "stream_unavailable", "Connection refused"),
    ],
    ids=["401", "404", "not-rtsp", "refused"],
)
def test_each_ffmpeg_s_open_failure_is_told_alike(
    version: str, capture: str, url: str, code: str, reason: str
) -> None:
    captured = ffmpeg_capture(version, capture)
    assert captured.exit_status is not None and captured.exit_status > 0
    # As SnapshotService._run hands them over: stderr and URL redacted alike.
    error = classify_failure(captured.exit_status, b"", redact(captured.text), redact(url))
    assert (error.code, error.message) == (code, f"{redact(url)}: {reason}")
    assert "hunter2" not in error.message


def test_a_401_in_the_url_is_not_an_authorization_failure() -> None:
    # Only ffmpeg's reason decides: a port (or path) with "401" in it must not make "refused" a 401.
    for version in FFMPEG_VERSIONS:
        text = ffmpeg_capture(version, "snapshot_refused").text.replace(":8555", ":4010")
        error = classify_failure(1, b"", text, "rtsp://127.0.0.1:4010/cam")
        assert (error.code, error.message) == (
            "stream_unavailable",
            "rtsp://127.0.0.1:4010/cam: Connection refused",
        ), version


# --------------------------------------------------------------------------------------- real RTSP tests


def _check_320x240(snapshot: Snapshot) -> None:
    assert snapshot.jpeg[:2] == SOI and snapshot.jpeg[-2:] == EOI
    assert (snapshot.width, snapshot.height) == (320, 240)
    assert jpeg_dimensions(snapshot.jpeg) == (320, 240)
    assert len(snapshot.jpeg) > 2000  # a real picture, not a header
    assert abs(time.time() - snapshot.taken_at) < 5


async def test_snapshot_of_published_stream(cam: str, make_service: MakeService, spy: FfmpegSpy) -> None:
    url = cam
    service = make_service()
    started = time.monotonic()
    snapshot = await service.get("cam", url)
    elapsed = time.monotonic() - started
    _check_320x240(snapshot)
    assert spy.runs == 1 == service.runs
    assert elapsed < 5.0  # a key frame every second; without -probesize 32 this took ~5.3 s
    ((_, argv),) = spy.invocations()
    assert "-skip_frame nokey -i " + url in argv
    assert spy.live_pids() == []


async def test_ten_concurrent_clients_share_one_decode(
    cam: str, make_service: MakeService, spy: FfmpegSpy
) -> None:
    url = cam
    service = make_service()
    results = await asyncio.gather(*(service.get("cam", url) for _ in range(10)))
    assert spy.runs == 1
    assert len({r.jpeg for r in results}) == 1
    assert all(r is results[0] for r in results)
    _check_320x240(results[0])


async def test_cache_within_max_age_then_new_decode(
    cam: str, live: Publishers, make_service: MakeService, spy: FfmpegSpy
) -> None:
    url = cam
    service = make_service(max_age_s=1.0)
    first = await service.get("cam", url)
    second = await service.get("cam", url)
    assert second is first and spy.runs == 1
    await asyncio.sleep(1.1)
    third = await service.get("cam", url)
    assert spy.runs == 2
    assert third.taken_at > first.taken_at
    _check_320x240(third)
    # A caller that wants a fresher picture than the default gets its own decode.
    fourth = await service.get("cam", url, max_age_s=0)
    assert spy.runs == 3 and fourth.taken_at > third.taken_at
    # The same stream id under another URL (its path changed) is not served the old picture.
    other = f"{live.server.read_base}/cam2"
    await service.get("cam", other)
    assert spy.runs == 4


async def test_invalidate_forgets_the_cached_picture(
    cam: str, make_service: MakeService, spy: FfmpegSpy
) -> None:
    url = cam
    service = make_service(max_age_s=60)
    await service.get("cam", url)
    await service.get("cam", url)
    assert spy.runs == 1
    service.invalidate("cam")
    service.invalidate("never-seen")  # harmless
    await service.get("cam", url)
    assert spy.runs == 2


async def test_invalidate_during_a_decode_does_not_cache_its_result(
    cam: str, make_service: MakeService, spy: FfmpegSpy
) -> None:
    url = cam
    service = make_service(max_age_s=60)
    early = asyncio.ensure_future(service.get("cam", url))
    await asyncio.sleep(0.2)  # the decode is under way (a key frame takes up to 1 s)
    service.invalidate("cam")
    _check_320x240(await early)  # the caller already waiting still gets its picture
    await service.get("cam", url)
    assert spy.runs == 2


async def test_max_width_scales_down(cam: str, make_service: MakeService) -> None:
    url = cam
    small = await make_service(max_width=160).get("cam", url)
    assert (small.width, small.height) == (160, 120) == jpeg_dimensions(small.jpeg)
    # Never scaled up.
    same = await make_service(max_width=1920).get("cam", url)
    assert (same.width, same.height) == (320, 240)


async def test_cancelling_one_waiter_leaves_the_others(
    cam: str, make_service: MakeService, spy: FfmpegSpy
) -> None:
    url = cam
    service = make_service()
    waiters = [asyncio.ensure_future(service.get("cam", url)) for _ in range(3)]
    await asyncio.sleep(0.1)
    waiters[0].cancel()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert isinstance(results[1], Snapshot) and results[2] is results[1]
    _check_320x240(results[1])
    assert spy.runs == 1


async def test_unknown_path_fails_fast_and_recovers(
    live: Publishers, make_service: MakeService, spy: FfmpegSpy
) -> None:
    url = f"{live.server.read_base}/later"
    service = make_service(timeout_s=8.0)
    started = time.monotonic()
    with pytest.raises(SnapshotError) as caught:
        await service.get("later", url)
    failed_at = time.monotonic()
    assert failed_at - started < 2.0  # ffmpeg's 404, not our 8 s timeout
    assert caught.value.code == "stream_unavailable"
    assert "404 Not Found" in caught.value.message
    # A burst right after a failure gets the remembered failure, no new ffmpeg.
    with pytest.raises(SnapshotError) as again:
        await service.get("later", url)
    assert again.value.code == "stream_unavailable" and again.value is not caught.value
    assert spy.runs == 1
    # The stream comes back: once the failure has expired (1 s) the next request decodes it.
    later = Publishers(live.server)
    try:
        later.publish("later")
        await asyncio.sleep(max(0.0, FAILURE_TTL_S - (time.monotonic() - failed_at)))
        _check_320x240(await service.get("later", url))
    finally:
        later.stop_all()
    assert spy.runs == 2


async def test_server_down(rtsp_server: RtspServer, make_service: MakeService) -> None:
    rtsp_server.stop()
    service = make_service()
    started = time.monotonic()
    with pytest.raises(SnapshotError) as caught:
        await service.get("cam", f"{rtsp_server.read_base}/cam")
    assert caught.value.code == "stream_unavailable"
    assert "Connection refused" in caught.value.message
    assert time.monotonic() - started < 2.0


async def test_timeout_kills_ffmpeg(silent_url: str, make_service: MakeService, spy: FfmpegSpy) -> None:
    service = make_service(timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(SnapshotError) as caught:
        await service.get("cam", silent_url)
    elapsed = time.monotonic() - started
    assert caught.value.code == "timeout"
    assert 0.5 <= elapsed < 1.5  # ours, not ffmpeg's own I/O timeout (1.5 s)
    assert spy.runs == 1
    assert spy.live_pids() == []  # killed and reaped by the time get() raised


async def test_close_cancels_in_flight_work(
    silent_url: str, make_service: MakeService, spy: FfmpegSpy
) -> None:
    service = make_service(timeout_s=30)
    waiters = [asyncio.ensure_future(service.get("cam", silent_url)) for _ in range(2)]
    for _ in range(100):  # until ffmpeg really runs
        if spy.runs:
            break
        await asyncio.sleep(0.02)
    assert spy.runs == 1 and len(spy.live_pids()) == 1
    started = time.monotonic()
    await service.close()
    assert time.monotonic() - started < 1.0
    assert spy.live_pids() == []
    for waiter in waiters:
        with pytest.raises(SnapshotError) as caught:
            await waiter
        assert caught.value.code == "closed"
    with pytest.raises(SnapshotError) as after:
        await service.get("cam", silent_url)
    assert after.value.code == "closed"
    assert spy.runs == 1


async def test_wrong_credentials_are_reported_without_the_password(make_service: MakeService) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A server that wants credentials and rejects the ones given (RFC 2326 401 + WWW-Authenticate).
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                cseq = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"cseq:"))
                writer.write(
                    b"RTSP/1.0 401 Unauthorized\r\n"
                    + cseq
                    + b'\r\nWWW-Authenticate: Basic realm="pi"\r\n\r\n'
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(SnapshotError) as caught:
            await make_service().get("cam", f"rtsp://viewer:hunter2@127.0.0.1:{port}/cam")
    finally:
        server.close()
        await server.wait_closed()
    assert caught.value.code == "unauthorized"
    assert caught.value.message == (
        f"rtsp://***@127.0.0.1:{port}/cam: Server returned 401 Unauthorized (authorization failed)"
    )
    assert "hunter2" not in str(caught.value)


async def test_ffmpeg_missing(tmp_path: Path) -> None:
    service = SnapshotService(ffmpeg=str(tmp_path / "no-ffmpeg"))
    with pytest.raises(SnapshotError) as caught:
        await service.get("cam", "rtsp://127.0.0.1:1/cam")
    assert caught.value.code == "ffmpeg_missing"
    assert service.runs == 0
    await service.close()


async def test_output_that_is_not_a_jpeg(tmp_path: Path) -> None:
    # A stand-in that exits 0 having written something else: the service must not hand it out.
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nprintf 'not a jpeg'\n")
    fake.chmod(0o755)
    service = SnapshotService(ffmpeg=str(fake))
    with pytest.raises(SnapshotError) as caught:
        await service.get("cam", "rtsp://127.0.0.1:1/cam")
    assert (caught.value.code, caught.value.message) == (
        "decode_failed",
        "ffmpeg output is not a complete JPEG (10 bytes)",
    )
    await service.close()


async def test_latency_figures(
    cam: str, make_service: MakeService, spy: FfmpegSpy, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prints latency figures for the benchmarks (not asserted beyond sanity). Requests arrive at a random
    point of the 1 s GOP, as real ones do. SNAPSHOT_BENCH_ROUNDS raises the sample count."""
    rounds = int(os.environ.get("SNAPSHOT_BENCH_ROUNDS", "3"))
    url = cam
    service = make_service()
    rng = random.Random(1)

    fresh: list[float] = []
    for _ in range(rounds):
        await asyncio.sleep(rng.random())
        started = time.monotonic()
        await service.get("cam", url, max_age_s=0)
        fresh.append(time.monotonic() - started)

    concurrent: list[float] = []
    for _ in range(rounds):
        service.invalidate("cam")
        await asyncio.sleep(rng.random())

        async def client() -> float:
            started = time.monotonic()
            await service.get("cam", url)
            return time.monotonic() - started

        concurrent += await asyncio.gather(*(client() for _ in range(10)))

    assert spy.runs == 2 * rounds

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    with capsys.disabled():
        print(
            f"\nsnapshot latency (320x240, GOP 1 s, UDP, {rounds} rounds): "
            f"fresh p50 {pct(fresh, 50):.2f} s p95 {pct(fresh, 95):.2f} s; "
            f"10 concurrent clients p50 {pct(concurrent, 50):.2f} s p95 {pct(concurrent, 95):.2f} s "
            f"({rounds} decodes for {10 * rounds} requests)"
        )
    assert max(fresh + concurrent) < 5.0
