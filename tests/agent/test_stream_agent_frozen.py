"""A frozen agent does not restart healthy publishers (issue 13 §4.7).

The real agent runs as a subprocess with two real ffmpeg publishers into the real test RTSP server; the
test SIGSTOPs the agent for longer than the stall timeout, then continues it. The publishers kept
publishing the whole time, so they must be the same processes afterwards: the agent's own lateness is not
the publishers' silence.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.agent.helpers import REPO_ROOT
from tests.agent.rtsp import RtspServer
from tests.agent.test_streams_e2e import _children_with_marker, pid_gone, test_stream

FROZEN_S = 7.0  # longer than the default stall timeout (3 s) plus the watch's 1 s tick


def marked_children(parent: int, count: int, timeout_s: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    pids: set[int] = set()
    while time.monotonic() < deadline:
        pids = {int(pid) for pid in _children_with_marker(parent)}
        if len(pids) >= count:
            return pids
        time.sleep(0.2)
    raise AssertionError(f"publishers did not start: {pids}")


def test_publishers_survive_a_sigstopped_agent(tmp_path: Path, rtsp_server: RtspServer) -> None:
    config = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "state_dir": str(tmp_path / "state"),
        "zeroconf": {"enabled": False},
        "simulate": True,
        "rtsp": {
            "publish_url": rtsp_server.publish_base,
            "read_url": rtsp_server.read_base,
            "publish_transport": "udp",
            "read_transport": "udp",
        },
        "streams": [test_stream("cam1"), test_stream("cam2")],
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    log = tmp_path / "agent.log"
    with log.open("wb") as err:
        agent = subprocess.Popen(
            [sys.executable, "-m", "pi_stream_agent", "run", "--config", str(path)],
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    pids: set[int] = set()
    try:
        pids = marked_children(agent.pid, 2)
        time.sleep(3.0)  # both running (frames flowing) before the freeze
        assert marked_children(agent.pid, 2) == pids
        os.kill(agent.pid, signal.SIGSTOP)
        time.sleep(FROZEN_S)
        os.kill(agent.pid, signal.SIGCONT)
        time.sleep(5.0)  # several stall timeouts after the agent is back
        after = {int(pid) for pid in _children_with_marker(agent.pid)}
        text = log.read_text(errors="replace")
        assert after == pids, f"publishers were restarted: {pids} → {after}\n{text[-3000:]}"
        assert "stalled" not in text, text[-3000:]
    finally:
        os.kill(agent.pid, signal.SIGCONT)
        agent.terminate()
        try:
            agent.wait(timeout=15)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        for pid in pids | {int(p) for p in _children_with_marker(agent.pid)}:
            if not pid_gone(pid):
                os.kill(pid, signal.SIGKILL)
