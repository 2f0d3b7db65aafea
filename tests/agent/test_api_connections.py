"""Connection exhaustion and slowloris against a real agent process with few file descriptors (issue 13,
§4.1): idle unauthenticated connections beyond any cap must not lock out an authenticated client, use up
the descriptors the supervisor needs, or flood the log; a connection trickling its headers is closed."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.helpers import REPO_ROOT

NOFILE = 256  # far below the systemd default of 1024, so the flood is cheap to send


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lower_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


class RunningAgent:
    def __init__(self, process: subprocess.Popen[bytes], port: int, token: str, log: Path) -> None:
        self.process, self.port, self.token, self.log = process, port, token, log

    def get(self, path: str, timeout: float = 10) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())

    def open_descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))


@pytest.fixture
def running_agent(tmp_path: Path) -> Iterator[RunningAgent]:
    port = free_port()
    state = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {state}\nstreams: []\n")
    log = tmp_path / "agent.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pi_stream_agent",
                "run",
                "--config",
                str(config),
                "--simulate",
                "--no-zeroconf",
                "--listen",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=lower_nofile,  # noqa: PLW1509 - only setrlimit, before exec
        )
    try:
        for _ in range(200):
            if (state / "token").exists() and b"listening" in log.read_bytes():
                break
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        token = (state / "token").read_text().strip()
        yield RunningAgent(process, port, token, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_an_idle_connection_flood_locks_nobody_out_and_keeps_descriptors_free(
    running_agent: RunningAgent,
) -> None:
    assert running_agent.get("/api/v1/info")[0] == 200
    flood: list[socket.socket] = []
    try:
        for _ in range(NOFILE + 100):  # more idle connections than the agent has descriptors
            sock = socket.socket()
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", running_agent.port))
            except OSError:
                sock.close()
                continue
            flood.append(sock)
        # An authenticated client is still served, several times over, while the flood is connected.
        for _ in range(5):
            status, info = running_agent.get("/api/v1/info", timeout=10)
            assert status == 200 and info["api_version"] == 1
        # The agent kept a reserve of descriptors for its publishers.
        assert running_agent.open_descriptors() <= NOFILE - 32
        status, _ = running_agent.get("/api/v1/telemetry", timeout=10)
        assert status == 200
    finally:
        for sock in flood:
            sock.close()
    log = running_agent.log.read_text()
    assert "Traceback" not in log
    assert log.count("out of system resource") <= 2
    assert len(log.splitlines()) < 50


def test_a_slowloris_connection_is_closed_with_a_timeout_answer(running_agent: RunningAgent) -> None:
    sock = socket.create_connection(("127.0.0.1", running_agent.port), timeout=5)
    try:
        request = b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        answer = b""
        for byte in request:  # one byte a second at most; bounded by the request's length
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            try:
                sock.settimeout(1)
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            answer += chunk
            if not chunk or b"\r\n\r\n" in answer:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"request_timeout" in answer
    finally:
        sock.close()
    assert running_agent.get("/api/v1/info")[0] == 200
