"""Streams end to end: the real agent, real ffmpeg publishers, a real RTSP server, read back with ffprobe.

Only what needs a Pi is stood in: rpicam-vid (emits real H.264 from ffmpeg's test source) and, for capture
cards, the V4L2 device and the VideoCore encoder (tests/agent/bin/capture/ffmpeg, in front of the real one).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pi_stream_agent.agent import Agent
from pi_stream_agent.config import AgentConfig, TelemetrySettings
from pi_stream_agent.streams.model import RtspSettings
from tests.agent.helpers import REPO_ROOT, FixtureTree
from tests.agent.pi_trees import build_pi4_with_card, remove_node
from tests.agent.rtsp import RtspServer, probe, wait_readable
from tests.agent.streams_helpers import STANDIN_DIR

CAPTURE_STANDIN_DIR = Path(__file__).resolve().parent / "bin" / "capture"

SMALL = {"width": 320, "height": 240, "fps": 15, "bitrate": "300k"}


def test_stream(stream_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": stream_id, "source": {"type": "test"}, **SMALL, **extra}


test_stream.__test__ = False  # type: ignore[attr-defined]  # a builder, not a test


def rtsp_settings(server: RtspServer) -> RtspSettings:
    # rtsp-server-perl takes publishers and readers on different ports, over UDP only.
    return RtspSettings(
        publish_url=server.publish_base,
        read_url=server.read_base,
        publish_transport="udp",
        read_transport="udp",
    )


def make_config(
    tmp_path: Path, server: RtspServer, streams: list[dict[str, Any]], **changes: Any
) -> AgentConfig:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "state_dir": tmp_path / "state",
        "telemetry": TelemetrySettings(interval_s=1.0),
        "zeroconf_enabled": False,
        "simulate": True,
        "streams": tuple(streams),
        "rtsp": rtsp_settings(server),
    }
    values.update(changes)
    return AgentConfig(**values)


AgentFactory = Callable[..., Awaitable[Agent]]


@pytest.fixture
async def start_agent() -> AsyncIterator[AgentFactory]:
    agents: list[Agent] = []

    async def start(config: AgentConfig) -> Agent:
        agent = Agent(config)
        agents.append(agent)
        await agent.start()
        return agent

    yield start
    for agent in agents:
        await agent.stop()


@pytest.fixture
def standins(monkeypatch: pytest.MonkeyPatch) -> None:
    """rpicam-vid and the capture-card ffmpeg stand-in first on PATH."""
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(CAPTURE_STANDIN_DIR), str(STANDIN_DIR), os.environ["PATH"]])
    )


async def wait_state(
    agent: Agent, stream_id: str, states: set[str], timeout_s: float = 20.0
) -> dict[str, Any]:
    assert agent.streams is not None
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = agent.streams.status(stream_id, reader_host="127.0.0.1")
        if status["state"] in states:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"{stream_id} never reached {states}; last status {status}")


async def readable(url: str, timeout_s: float = 20.0) -> dict[str, object]:
    return await asyncio.to_thread(wait_readable, url, timeout_s)


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie still answers kill(0): it is gone once nobody can reap it into running again
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


# -- up, readable, and back after a kill -------------------------------------------------------------------


async def test_test_pattern_with_substream_comes_up_and_is_readable(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    stream = test_stream("cam1", substream={"width": 160, "height": 120, "fps": 10, "bitrate": "100k"})
    agent = await start_agent(make_config(tmp_path, rtsp_server, [stream, test_stream("cam2")]))
    for stream_id in ("cam1", "cam2"):
        status = await wait_state(agent, stream_id, {"running"})
        assert status["encoding"] == "software"  # the simulated Pi's encoder is on paper only
    main = await readable(f"{rtsp_server.read_base}/cam1")
    sub = await readable(f"{rtsp_server.read_base}/cam1_sub")
    other = await readable(f"{rtsp_server.read_base}/cam2")
    assert (main["codec_name"], main["width"], main["height"]) == ("h264", 320, 240)
    assert (sub["width"], sub["height"]) == (160, 120)
    assert other["width"] == 320
    assert agent.streams is not None
    status = agent.streams.status("cam1", reader_host="pi.local")
    assert status["urls"] == {
        "main": f"{rtsp_server.read_base}/cam1",
        "sub": f"{rtsp_server.read_base}/cam1_sub",
    }
    assert status["fps"] is not None and status["fps"] > 5
    # The encoder's cost is visible: each publisher's CPU and memory in telemetry and in the stream.
    sample = await agent.telemetry()
    await asyncio.sleep(1.1)
    sample = await agent.telemetry()
    usage = sample["processes"]["cam1/ffmpeg"]
    assert usage["pid"] == status["pids"]["ffmpeg"]
    assert usage["rss_bytes"] > 1_000_000 and usage["cpu_percent"] is not None
    assert agent.streams.status("cam1", reader_host="x")["publishers"]["ffmpeg"]["pid"] == usage["pid"]


async def test_killed_publisher_comes_back_readable(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    status = await wait_state(agent, "cam1", {"running"})
    pid = status["pids"]["ffmpeg"]
    events: list[dict[str, Any]] = []
    agent.bus.subscribe(lambda event: events.append(event.to_json()))
    os.kill(pid, signal.SIGKILL)
    status = await wait_state(agent, "cam1", {"backoff", "starting"}, timeout_s=5)
    status = await wait_state(agent, "cam1", {"running"})
    assert status["pids"]["ffmpeg"] != pid
    assert status["restart_count"] == 1
    assert status["last_exit"]["cause"] == "killed"
    assert status["last_exit"]["signal"] == "SIGKILL"
    await readable(f"{rtsp_server.read_base}/cam1")
    exits = [e for e in events if e["type"] == "stream_exit"]
    assert exits and exits[0]["data"]["cause"] == "killed" and exits[0]["data"]["stream_id"] == "cam1"
    states = [e["data"]["state"] for e in events if e["type"] == "stream_state"]
    assert states[0] == "backoff" and "running" in states
    assert pid_gone(pid)


async def test_frozen_publisher_is_detected_as_stalled_and_restarted(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    status = await wait_state(agent, "cam1", {"running"})
    pid = status["pids"]["ffmpeg"]
    states: list[str] = []
    agent.bus.subscribe(
        lambda event: states.append(event.data["state"]) if event.type == "stream_state" else None
    )
    frozen_at = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        # The stalled state lasts only as long as stopping the frozen process: watch the events.
        deadline = time.monotonic() + 15
        while "stalled" not in states and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert "stalled" in states, states
        detected_after = time.monotonic() - frozen_at
        status = await wait_state(agent, "cam1", {"running"})
    finally:
        if not pid_gone(pid):
            os.kill(pid, signal.SIGCONT)
    assert detected_after < 10  # generous for a loaded machine; bench/ measures the real figure
    assert status["last_exit"]["cause"] == "stalled"
    assert status["pids"]["ffmpeg"] != pid
    await readable(f"{rtsp_server.read_base}/cam1")


async def test_csi_camera_through_rpicam_vid_on_a_pi4_board(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory, standins: None
) -> None:
    tree = FixtureTree(tmp_path / "root")
    build_pi4_with_card(tree)
    log = tmp_path / "rpicam.log"
    os.environ["RPICAM_STANDIN_LOG"] = str(log)
    try:
        stream = {"id": "csi", "source": {"type": "csi", "camera": 0}, **SMALL}
        config = make_config(tmp_path, rtsp_server, [stream], simulate=False, root=tree.base)
        agent = await start_agent(config)
        status = await wait_state(agent, "csi", {"running"})
    finally:
        del os.environ["RPICAM_STANDIN_LOG"]
    # The fixture tree has the bcm2835-codec encoder node: hardware H.264 from rpicam-vid, copied by ffmpeg.
    assert status["encoding"] == "hardware"
    assert set(status["pids"]) == {"rpicam-vid", "ffmpeg"}
    info = await readable(f"{rtsp_server.read_base}/csi")
    assert (info["codec_name"], info["width"]) == ("h264", 320)
    argv = log.read_text().splitlines()[0]
    for option in ("--codec", "h264", "--inline", "--flush", "--camera", "0", "--nopreview"):
        assert option in argv
    # ffmpeg only copies here (no frame sizes of its own): the bitrate is measured from what it reads.
    for _ in range(100):
        status = agent.streams.status("csi", reader_host="127.0.0.1") if agent.streams else {}
        if status.get("bitrate_bps") is not None:
            break
        await asyncio.sleep(0.1)
    assert 30_000 < status["bitrate_bps"] < 3_000_000, status["bitrate_bps"]


# -- RTSP server down, device gone ---------------------------------------------------------------------------


async def test_rtsp_server_down_backs_off_and_recovers_when_it_returns(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    await wait_state(agent, "cam1", {"running"})
    rtsp_server.stop()
    status = await wait_state(agent, "cam1", {"backoff"}, timeout_s=20)
    # Either the publisher noticed (its exit names the server) or the pre-flight check refused to start.
    status = await wait_state(agent, "cam1", {"backoff"}, timeout_s=5)
    assert status["last_exit"]["cause"] in ("rtsp_unreachable", "stalled")
    await asyncio.sleep(2)
    status = agent.streams.status("cam1", reader_host="x")  # type: ignore[union-attr]
    assert status["state"] == "backoff" and status["cause"] == "rtsp_unreachable"
    assert "not reachable" in status["message"]
    rtsp_server.start()
    await wait_state(agent, "cam1", {"running"}, timeout_s=20)
    await readable(f"{rtsp_server.read_base}/cam1")


async def test_capture_card_unplugged_waits_then_starts_when_plugged_back(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory, standins: None
) -> None:
    tree = FixtureTree(tmp_path / "root")
    build_pi4_with_card(tree)
    stream = {
        "id": "hdmi",
        "source": {"type": "v4l2", "device": "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"},
        **SMALL,
    }
    config = make_config(tmp_path, rtsp_server, [stream], simulate=False, root=tree.base)
    agent = await start_agent(config)
    status = await wait_state(agent, "hdmi", {"running"})
    assert status["encoding"] == "hardware"  # h264_v4l2m2m on a Pi 4 (stood in by libx264 here)
    await readable(f"{rtsp_server.read_base}/hdmi")

    remove_node(tree, "video2")
    remove_node(tree, "video3")
    status = await wait_state(agent, "hdmi", {"waiting_for_device"}, timeout_s=10)
    restarts = status["restart_count"]
    await asyncio.sleep(2)
    status = agent.streams.status("hdmi", reader_host="x")  # type: ignore[union-attr]
    assert status["state"] == "waiting_for_device"
    assert status["restart_count"] == restarts  # no crash loop while the card is away
    assert status["pids"] == {}

    build_pi4_with_card(tree)  # plugged back in: the same nodes come back
    plugged = time.monotonic()
    await wait_state(agent, "hdmi", {"starting", "running"}, timeout_s=5)
    started_after = time.monotonic() - plugged
    await wait_state(agent, "hdmi", {"running"})
    await readable(f"{rtsp_server.read_base}/hdmi")
    assert started_after < 5  # generous bound for a loaded test machine; benchmarks measure the real figure


# -- API: commands, config, snapshots, logs ------------------------------------------------------------------


def api(agent: Agent) -> tuple[str, dict[str, str]]:
    return f"http://127.0.0.1:{agent.port}/api/v1", {"Authorization": f"Bearer {agent.token}"}


async def test_stop_start_restart_through_the_api(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    base, headers = api(agent)
    first = await wait_state(agent, "cam1", {"running"})
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(f"{base}/streams/cam1/stop") as response:
            assert response.status == 202
        stopped = await wait_state(agent, "cam1", {"stopped"})
        assert stopped["pids"] == {}
        assert pid_gone(first["pids"]["ffmpeg"])
        async with session.post(f"{base}/streams/cam1/start") as response:
            assert response.status == 202
        second = await wait_state(agent, "cam1", {"running"})
        async with session.post(f"{base}/streams/cam1/restart") as response:
            assert response.status == 202
        await asyncio.sleep(0.3)
        third = await wait_state(agent, "cam1", {"running"})
        assert third["pids"]["ffmpeg"] != second["pids"]["ffmpeg"]
        assert third["restart_count"] == 0  # restarts on request are not failures
        async with session.post(f"{base}/streams/restart") as response:
            assert (await response.json())["streams"] == ["cam1"]
        async with session.post(f"{base}/streams/nope/restart") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "stream_not_found"
        async with session.get(f"{base}/streams") as response:
            listing = await response.json()
        assert [s["id"] for s in listing["streams"]] == ["cam1"]
        async with session.get(f"{base}/streams/cam1/logs?lines=5") as response:
            logs = await response.json()
        assert 0 < len(logs["lines"]) <= 5
        assert any(line["process"] == "agent" for line in logs["lines"])
        async with session.get(f"{base}/streams/cam1/logs?lines=zero") as response:
            assert response.status == 400


async def test_snapshot_under_concurrent_requests_costs_one_decode(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    base, headers = api(agent)
    await wait_state(agent, "cam1", {"running"})
    await readable(f"{rtsp_server.read_base}/cam1")
    assert agent.streams is not None
    before = agent.streams.snapshots.runs
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one() -> bytes:
            async with session.get(f"{base}/streams/cam1/snapshot") as response:
                assert response.status == 200, await response.text()
                assert response.content_type == "image/jpeg"
                return await response.read()

        pictures = await asyncio.gather(*(one() for _ in range(10)))
    assert len(set(pictures)) == 1
    assert pictures[0][:2] == b"\xff\xd8"
    assert agent.streams.snapshots.runs - before == 1


async def test_bad_stream_configs_are_rejected_with_clear_messages(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory
) -> None:
    agent = await start_agent(make_config(tmp_path, rtsp_server, [test_stream("cam1")]))
    base, headers = api(agent)
    async with aiohttp.ClientSession(headers=headers) as session:
        bad = {**test_stream("cam2"), "width": 321, "rtsp_path": "cam1"}
        async with session.put(f"{base}/streams/cam2", json=bad) as response:
            assert response.status == 422
            error = (await response.json())["error"]
        assert error["code"] == "invalid_config"
        texts = [p["text"] for p in error["details"]["problems"]]
        assert any("width" in text and "even" in text for text in texts), texts
        async with session.put(
            f"{base}/streams/cam2", json={**test_stream("cam2"), "rtsp_path": "cam1"}
        ) as r:
            assert r.status == 422
            texts = [p["text"] for p in (await r.json())["error"]["details"]["problems"]]
        assert any("cam1" in text and "path" in text for text in texts), texts
        async with session.put(f"{base}/streams/cam2", json={**test_stream("other")}) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "id_mismatch"
        async with session.put(f"{base}/streams/cam2", data=b"{not json") as response:
            assert response.status == 400
        # Nothing was stored by the refused requests.
        assert not (tmp_path / "state" / "streams.yaml").exists()
        good = test_stream("cam2", name="Porch")
        async with session.put(f"{base}/streams/cam2", json=good) as response:
            assert response.status == 201
            created = await response.json()
        assert created["stream"]["config"]["name"] == "Porch"
        stored = (tmp_path / "state" / "streams.yaml").read_text()
        assert "cam2" in stored and "cam1" in stored
        await wait_state(agent, "cam2", {"running"})
        async with session.delete(f"{base}/streams/cam2") as response:
            assert response.status == 200
        assert "cam2" not in (tmp_path / "state" / "streams.yaml").read_text()
        assert agent.streams is not None and agent.streams.ids() == ["cam1"]


# -- the agent itself is SIGKILLed ---------------------------------------------------------------------------


def test_agent_killed_with_sigkill_leaves_no_publisher_running(
    tmp_path: Path, rtsp_server: RtspServer
) -> None:
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
    agent = subprocess.Popen(
        [sys.executable, "-m", "pi_stream_agent", "run", "--config", str(path)],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(pids) < 2 and time.monotonic() < deadline:
            pids = [int(p) for p in _children_with_marker(agent.pid)]
            time.sleep(0.2)
        assert len(pids) >= 2, "publishers did not start"
        assert probe(f"{rtsp_server.read_base}/cam1") is not None or wait_readable(
            f"{rtsp_server.read_base}/cam1"
        )
        agent.kill()
        agent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while not all(pid_gone(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(pid_gone(pid) for pid in pids), f"orphans left: {[p for p in pids if not pid_gone(p)]}"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        for pid in pids:
            if not pid_gone(pid):
                os.kill(pid, signal.SIGKILL)


def _children_with_marker(parent: int) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/environ", "rb") as handle:
                marked = b"PI_STREAM_PIPELINE=" in handle.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and marked:
            found.append(entry)
    return found


async def test_agent_supervises_the_rtsp_server_when_configured(
    tmp_path: Path, start_agent: AgentFactory
) -> None:
    # The agent runs the RTSP server itself (here the test server; MediaMTX on a Pi), restarts it when it
    # dies, and the streams come back through it.
    from tests.agent.rtsp import free_port, free_udp_range, server_command

    server = RtspServer(free_port(), free_port(), tmp_path / "unused.log")
    command = tuple(server_command(server.read_port, server.publish_port, free_udp_range()))
    config = make_config(tmp_path, server, [test_stream("cam1")], rtsp_server_command=command)
    agent = await start_agent(config)
    await wait_state(agent, "cam1", {"running"}, timeout_s=30)
    await readable(f"{server.read_base}/cam1")
    assert agent.rtsp_server is not None
    first = agent.rtsp_server.status()["pids"]["rtsp-test-server"]
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = agent.rtsp_server.status()["pids"]
        if pids and pids["rtsp-test-server"] != first:
            break
        await asyncio.sleep(0.1)
    status = agent.rtsp_server.status()
    assert status["restart_count"] == 1
    # The streams' vocabulary: a state word and a last exit with a cause, as for a publisher.
    assert status["last_exit"]["cause"] == "killed" and status["last_exit"]["signal"] == "SIGKILL"
    assert status["state"] in {"running", "backoff"}
    assert agent.info()["rtsp_server"]["last_exit"]["cause"] == "killed"
    await wait_state(agent, "cam1", {"running"}, timeout_s=30)
    await readable(f"{server.read_base}/cam1", timeout_s=30)


async def test_a_stable_link_that_udev_creates_late_still_starts_the_stream(
    tmp_path: Path, rtsp_server: RtspServer, start_agent: AgentFactory, standins: None
) -> None:
    # On a Pi the kernel creates /dev/video2 first and udev adds /dev/v4l/by-id/… a moment later; the
    # hot-plug event has passed by then, so the stream must look again by itself.
    tree = FixtureTree(tmp_path / "root")
    build_pi4_with_card(tree)
    link = tree.base / "dev/v4l/by-id/usb-534d_USB_Video-video-index0"
    stream = {
        "id": "hdmi",
        "source": {"type": "v4l2", "device": "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"},
        **SMALL,
    }
    agent = await start_agent(make_config(tmp_path, rtsp_server, [stream], simulate=False, root=tree.base))
    await wait_state(agent, "hdmi", {"running"})
    remove_node(tree, "video2")
    remove_node(tree, "video3")
    await wait_state(agent, "hdmi", {"waiting_for_device"}, timeout_s=10)
    target = os.readlink(link)
    build_pi4_with_card(tree)  # plugged back in…
    link.unlink()  # …but udev has not made the stable link yet
    await asyncio.sleep(1.0)
    status = agent.streams.status("hdmi", reader_host="x")  # type: ignore[union-attr]
    assert status["state"] == "waiting_for_device"
    assert status["restart_count"] == 0  # an unplug is not a failure
    os.symlink(target, link)
    await wait_state(agent, "hdmi", {"running"}, timeout_s=10)


async def test_a_clean_start_with_a_supervised_rtsp_server_leaves_no_exit(
    tmp_path: Path, start_agent: AgentFactory
) -> None:
    # Publishers wait for the server the agent itself runs to listen, so a clean start shows no scary
    # "rtsp_unreachable … is MediaMTX running?" last exit (issue 13 §2).
    from tests.agent.rtsp import free_port, free_udp_range, server_command

    server = RtspServer(free_port(), free_port(), tmp_path / "unused.log")
    command = tuple(server_command(server.read_port, server.publish_port, free_udp_range()))
    config = make_config(
        tmp_path, server, [test_stream("cam1"), test_stream("cam2")], rtsp_server_command=command
    )
    agent = Agent(config)
    exits: list[Any] = []
    agent.bus.subscribe(lambda event: exits.append(event) if event.type == "stream_exit" else None)
    try:
        await agent.start()
        for stream_id in ("cam1", "cam2"):
            status = await wait_state(agent, stream_id, {"running"}, timeout_s=30)
            assert status["last_exit"] is None, status["last_exit"]
            assert status["restarts_by_cause"] == {}
        assert exits == []
    finally:
        await agent.stop()
