"""Motion detection end to end (issue 11 §2, contract K6): the real agent over loopback, real ffmpeg test
sources published into the real RTSP server, the motion output read through the FIFO, events over the
WebSocket, the stream status, the motion snapshot endpoint and the settings through the controls API.

The test patterns carry a moving clock or box in their top-left corner (pipelines.moving_overlay): the
regions below leave it out, which is also what a person does with a timestamp overlay.

A capture card's MJPEG passed through (encoder copy) is analysed from the same decode at reduced size
(``-lowres``): the card stood in by tests/agent/bin/capture/ffmpeg in front of the real ffmpeg, its
picture still colour bars, then moving, then still again."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.agent.helpers import FixtureTree
from tests.agent.pi_trees import build_pi4_with_card
from tests.agent.rtsp import RtspServer, probe
from tests.agent.test_api import receive_until
from tests.agent.test_streams_e2e import (
    AgentFactory,
    api,
    make_config,
    standins,  # noqa: F401 - the fixture
    start_agent,  # noqa: F401 - the fixture
    test_stream,
    wait_state,
)

BELOW_THE_CLOCK = {"x": 0.0, "y": 0.3, "width": 1.0, "height": 0.7}


def _motion_stream(stream_id: str, pattern: str, **settings: Any) -> dict[str, Any]:
    return test_stream(
        stream_id,
        source={"type": "test", "pattern": pattern},
        settings={"motion_detection": True, **settings},
        motion_region=BELOW_THE_CLOCK,
    )


async def test_a_moving_picture_is_pushed_as_motion_with_a_snapshot(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
) -> None:
    # Colour bars stand still (the detector learns the scene), then the scene turns into testsrc2, which
    # moves all the time below its corner: a motion starts and lasts.
    streams = [_motion_stream("cam1", "smptebars", motion_min_duration_s=0.5)]
    agent = await start_agent(make_config(tmp_path, rtsp_server, streams))
    base, headers = api(agent)
    status = await wait_state(agent, "cam1", {"running"})
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.ws_connect(f"http://127.0.0.1:{agent.port}/api/v1/ws") as ws:
            # Three telemetry pushes (3 s): the still scene is learnt, nothing fires.
            for _ in range(3):
                message = await receive_until(ws, lambda m: m["type"] in ("telemetry", "event"), 5)
                assert not (message["type"] == "event" and message["event"]["type"] == "motion")
            moving = {**status["config"], "source": {"type": "test", "pattern": "testsrc2"}}
            async with session.put(f"{base}/streams/cam1", json=moving) as response:
                assert response.status == 200, await response.text()
            message = await receive_until(
                ws, lambda m: m["type"] == "event" and m["event"]["type"] == "motion", 30
            )
        event = message["event"]["data"]
        assert event["stream_id"] == "cam1" and event["state"] == "start" and event["ended_at"] is None
        assert 0 < event["score"] <= 100 and event["snapshot"] == "/api/v1/streams/cam1/motion/snapshot"
        status = await wait_state(agent, "cam1", {"running"})
        assert status["motion"]["active"] is True and status["motion"]["started_at"] == event["started_at"]
        async with session.get(f"http://127.0.0.1:{agent.port}{event['snapshot']}") as response:
            assert response.status == 200, await response.text()
            assert response.content_type == "image/jpeg"
            assert (await response.read())[:2] == b"\xff\xd8"
            assert float(response.headers["X-Motion-Started-At"]) == event["started_at"]
        # Sensitivity changes the detector live: the publisher keeps running.
        pid = status["pids"]["ffmpeg"]
        async with session.put(f"{base}/streams/cam1/controls", json={"motion_sensitivity": 80}) as response:
            assert response.status == 200, await response.text()
            controls = {c["id"]: c for c in (await response.json())["controls"]}
        assert (
            controls["motion_sensitivity"]["value"] == 80
            and controls["motion_sensitivity"]["apply"] == "live"
        )
        assert controls["motion_detection"]["value"] is True
        assert (await wait_state(agent, "cam1", {"running"}))["pids"]["ffmpeg"] == pid


async def test_a_still_picture_gives_no_motion_and_the_snapshot_says_why_not(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
) -> None:
    streams = [_motion_stream("still", "smptebars"), test_stream("plain")]
    agent = await start_agent(make_config(tmp_path, rtsp_server, streams))
    base, headers = api(agent)
    seen: list[dict[str, Any]] = []
    agent_bus = agent.bus
    agent_bus.subscribe(lambda event: seen.append(event.data) if event.type == "motion" else None)
    await wait_state(agent, "still", {"running"})
    await wait_state(agent, "plain", {"running"})
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.ws_connect(f"http://127.0.0.1:{agent.port}/api/v1/ws") as ws:
            # Six seconds of telemetry pushes; no motion event among them.
            for _ in range(6):
                await receive_until(ws, lambda m: m["type"] == "telemetry", 5)
        assert seen == []
        async with session.get(f"{base}/streams/still") as response:
            still = await response.json()
        assert still["motion"]["active"] is False and still["motion"]["started_at"] is None
        assert still["config"]["motion_region"] == BELOW_THE_CLOCK
        async with session.get(f"{base}/streams/plain") as response:
            assert (await response.json())["motion"] is None  # motion detection off
        async with session.get(f"{base}/streams/still/motion/snapshot") as response:
            assert response.status == 404
            error = (await response.json())["error"]
        assert error["code"] == "no_motion_snapshot" and "No motion was seen" in error["message"]
        async with session.get(f"{base}/streams/plain/motion/snapshot") as response:
            assert response.status == 404
            assert "Motion detection is off" in (await response.json())["error"]["message"]
        # A region outside the picture is refused plainly, and nothing changes.
        body = {**still["config"], "motion_region": {"x": 0.5, "y": 0, "width": 0.8, "height": 1}}
        async with session.put(f"{base}/streams/still", json=body) as response:
            assert response.status == 422
            problems = (await response.json())["error"]["details"]["problems"]
        assert problems[0]["field"] == "motion_region"
        message = problems[0]["message"]
        assert message.startswith("Motion region") and "reaches outside the picture" in message
        assert "`" not in message and "motion_region" not in message


async def test_a_capture_cards_mjpeg_passed_through_is_analysed_at_reduced_size(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    standins: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = FixtureTree(tmp_path / "root")
    build_pi4_with_card(tree)
    launches = tmp_path / "launches.jsonl"
    monkeypatch.setenv("CAPTURE_STANDIN_LOG", str(launches))
    monkeypatch.setenv("CAPTURE_STANDIN_MOVING", "8-14")  # seconds of the card's picture that move
    stream = {
        "id": "hdmi",
        "source": {"type": "v4l2", "device": "/dev/v4l/by-id/usb-534d_USB_Video-video-index0",
                   "input_format": "mjpeg"},
        "encoder": "copy",
        "width": 640, "height": 480, "fps": 15, "bitrate": "2M",
        "settings": {"motion_detection": True, "motion_min_duration_s": 0.5},
    }  # fmt: skip
    config = make_config(tmp_path, rtsp_server, [stream], simulate=False, root=tree.base)
    before_the_card = time.time()  # the card's clock starts later, when the agent launches its publisher
    agent = await start_agent(config)
    _, headers = api(agent)
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.ws_connect(f"http://127.0.0.1:{agent.port}/api/v1/ws") as ws:
            status = await wait_state(agent, "hdmi", {"running"})
            start = await receive_until(
                ws, lambda m: m["type"] == "event" and m["event"]["type"] == "motion", 30
            )
            end = await receive_until(
                ws, lambda m: m["type"] == "event" and m["event"]["type"] == "motion", 30
            )
    first, last = start["event"]["data"], end["event"]["data"]
    # Nothing while the picture was still: it moves from 8 s after the card's start, which is after this
    # test's clock reading (how long the publisher takes to run varies with the machine and ffmpeg).
    assert first["started_at"] - before_the_card > 7, (first, before_the_card)
    assert first["stream_id"] == "hdmi" and first["state"] == "start" and 0 < first["score"] <= 100
    assert last["state"] == "end" and last["started_at"] == first["started_at"]
    assert last["ended_at"] - last["started_at"] > 3  # the picture moved for six seconds
    # One publisher, passing the card's MJPEG through and decoding it at a quarter of its size for motion.
    argv = next(json.loads(line) for line in launches.read_text().splitlines() if "rawvideo" in line)
    assert argv[argv.index("-lowres") + 1] == "2" and argv[argv.index("-c:v") + 1] == "copy"
    assert (await wait_state(agent, "hdmi", {"running"}))["pids"] == status["pids"]
    main = await asyncio.to_thread(probe, f"{rtsp_server.read_base}/hdmi")
    assert (main["codec_name"], main["width"], main["height"]) == ("mjpeg", 640, 480)


async def test_the_passerby_pattern_is_still_then_moves_then_is_still(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
) -> None:
    """The test pattern a newcomer (and the demo's simulated garage) tries motion detection with: colour
    bars, and from 10 s into every 30 s a figure crossing them for 6 s."""
    before_the_pattern = time.time()  # the pattern's clock starts later, with its publisher
    agent = await start_agent(make_config(tmp_path, rtsp_server, [_motion_stream("yard", "passerby")]))
    _, headers = api(agent)
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.ws_connect(f"http://127.0.0.1:{agent.port}/api/v1/ws") as ws:
            await wait_state(agent, "yard", {"running"})
            start = await receive_until(
                ws, lambda m: m["type"] == "event" and m["event"]["type"] == "motion", 30
            )
            end = await receive_until(
                ws, lambda m: m["type"] == "event" and m["event"]["type"] == "motion", 20
            )
    first, last = start["event"]["data"], end["event"]["data"]
    assert (first["state"], last["state"]) == ("start", "end")
    assert first["started_at"] - before_the_pattern > 9  # nothing while the bars stood still (10 s)
    assert last["started_at"] == first["started_at"] and last["ended_at"] > last["started_at"]
