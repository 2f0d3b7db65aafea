"""A real RTSP server for tests (Debian's rtsp-server-perl) and ways to read streams back with ffprobe/ffmpeg.

rtsp-server-perl takes publishers on one port and readers on another, and speaks **UDP transport only**
(no TCP interleaving), so tests publish and read with ``rtsp_transport udp``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RTSP_SERVER = "rtsp-server-perl"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_range(count: int = 400) -> int:
    """A start port whose next ``count`` UDP ports are free now. rtsp-server-perl hands out RTP/RTCP ports
    from a start port (default 20000): servers of parallel tests must not share one."""
    rng = random.Random()
    for _ in range(200):
        start = rng.randrange(20000, 60000, 2)
        sockets: list[socket.socket] = []
        try:
            for port in range(start, start + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free UDP port range for the RTSP server")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


# rtsp-server-perl with the two changes that make it behave like MediaMTX where the tests depend on it
# (a killed publisher releases its path; RTP ports of parallel servers never collide): see the script.
SERVER_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rtsp-test-server"


def server_command(read_port: int, publish_port: int, rtp_start_port: int) -> list[str]:
    """The argument list that runs the test RTSP server on loopback."""
    return [
        str(SERVER_SCRIPT),
        "--clientport", str(read_port),
        "--serverport", str(publish_port),
        "--client_listen_address", "127.0.0.1",
        "--source_listen_address", "127.0.0.1",
        "--rtp_start_port", str(rtp_start_port),
    ]  # fmt: skip


@dataclass
class RtspServer:
    """A running rtsp-server-perl on loopback. ``publish_base``/``read_base`` end without a slash."""

    publish_port: int
    read_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def publish_base(self) -> str:
        return f"rtsp://127.0.0.1:{self.publish_port}"

    @property
    def read_base(self) -> str:
        return f"rtsp://127.0.0.1:{self.read_port}"

    def start(self, timeout_s: float = 10.0) -> None:
        if shutil.which(RTSP_SERVER) is None:
            pytest.fail(
                f"{RTSP_SERVER} is not installed (apt-get install rtsp-server-perl; scripts/setup-dev does)"
            )
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            server_command(self.read_port, self.publish_port, free_udp_range()),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while not (port_open(self.publish_port) and port_open(self.read_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{RTSP_SERVER} did not start; log: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def probe(url: str, timeout_s: float = 10.0, transport: str = "udp") -> dict[str, object] | None:
    """The first video stream's codec and size as ffprobe reads it from ``url``, or None if unreadable."""
    try:
        result = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-rtsp_transport",
                transport,
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "json",
                url,
            ],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        return None
    streams = json.loads(result.stdout or b"{}").get("streams") or []
    return streams[0] if streams else None


def wait_readable(url: str, timeout_s: float = 15.0, transport: str = "udp") -> dict[str, object]:
    """Probe until ``url`` yields a video stream; fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{url} not readable within {timeout_s} s")
        found = probe(url, timeout_s=min(remaining, 5.0), transport=transport)
        if found is not None:
            return found
        time.sleep(0.2)


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[RtspServer]:
    """A fresh rtsp-server-perl on free loopback ports, stopped after the test."""
    server = RtspServer(free_port(), free_port(), tmp_path / "rtsp-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
