"""The real pi_stream agent, as a subprocess on loopback, for the Home Assistant tests.

It runs in simulation mode (a simulated Pi 4 built from real captures) and supervises its own RTSP server
(scripts/rtsp-test-server), publishing small test-pattern streams, so Home Assistant talks to exactly what
it would talk to on a Pi. ``POST /api/v1/simulation/under_voltage`` makes the simulated Pi sag.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
RTSP_SERVER = REPO_ROOT / "scripts" / "rtsp-test-server"
# The agent must run on an interpreter that has its dependencies; the HA venv has them all.
AGENT_PYTHON = os.environ.get("PI_STREAM_AGENT_PYTHON", sys.executable)

SMALL_STREAMS: list[dict[str, Any]] = [
    {
        "id": "front_door",
        "name": "Front door",
        "source": {"type": "test", "pattern": "testsrc2"},
        "width": 320,
        "height": 240,
        "fps": 10,
        "bitrate": "300k",
        "substream": {"width": 160, "height": 120, "fps": 5, "bitrate": "100k"},
    },
    {
        "id": "garage",
        "name": "Garage",
        "source": {"type": "test", "pattern": "smptebars"},
        "width": 320,
        "height": 240,
        "fps": 10,
        "bitrate": "300k",
    },
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class AgentProcess:
    """One agent subprocess. ``start()``/``stop()`` can be repeated (the token and id survive)."""

    state_dir: Path
    streams: list[dict[str, Any]] | None = field(default_factory=lambda: list(SMALL_STREAMS))
    telemetry_interval_s: float = 1.0
    allow_power_control: bool = False  # restart/reboot/shutdown from the API (a simulated Pi only records)
    port: int = field(default_factory=free_port)
    rtsp_read_port: int = field(default_factory=free_port)
    rtsp_publish_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    host = "127.0.0.1"

    @property
    def config_path(self) -> Path:
        return self.state_dir.parent / f"agent-{self.port}.yaml"

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"agent-{self.port}.log"

    @property
    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()

    @property
    def rtsp_read_base(self) -> str:
        return f"rtsp://127.0.0.1:{self.rtsp_read_port}"

    def _config(self) -> dict[str, Any]:
        rtp_start = random.Random().randrange(20000, 60000, 2)
        config: dict[str, Any] = {
            "listen": {"host": self.host, "port": self.port},
            "state_dir": str(self.state_dir),
            "zeroconf": {"enabled": False},
            "simulate": True,
            "telemetry": {"interval_s": self.telemetry_interval_s, "flag_check_interval_s": 0.5},
            "rtsp": {
                "publish_url": f"rtsp://127.0.0.1:{self.rtsp_publish_port}",
                "read_url": self.rtsp_read_base,
                "publish_transport": "udp",
                "read_transport": "udp",
            },
            "rtsp_server": {
                "command": [
                    str(RTSP_SERVER),
                    "--clientport", str(self.rtsp_read_port),
                    "--serverport", str(self.rtsp_publish_port),
                    "--client_listen_address", "127.0.0.1",
                    "--source_listen_address", "127.0.0.1",
                    "--rtp_start_port", str(rtp_start),
                ],
            },
        }  # fmt: skip
        if self.streams is not None:
            config["streams"] = self.streams
        if self.allow_power_control:
            config["allow_power_control"] = True
        return config

    def start(self, timeout_s: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self._config()))  # JSON is YAML
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [AGENT_PYTHON, "-m", "pi_stream_agent", "run", "--config", str(self.config_path)],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"agent did not start; log:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM and wait (the agent stops its publishers and RTSP server itself)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """A blocking call to the agent's API (for test set-up outside Home Assistant's event loop)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://{self.host}:{self.port}/api/v1{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def wait_streams_running(self, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        listing: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                listing = self.request("GET", "/streams")
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
                continue
            if listing["streams"] and all(s["state"] == "running" for s in listing["streams"]):
                return listing
            time.sleep(0.2)
        raise AssertionError(f"streams not running: {listing}")
