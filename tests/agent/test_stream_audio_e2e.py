"""Sound through the whole agent (simulated Pi: its USB HDMI card has an MS2109 sound card in /proc/asound):
the capture stand-in turns the ALSA input into a tone; a busy card leaves the stream running video-only with
a reason; a loud tone then silence gives a sound start and end over the event bus."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.events import Event
from tests.agent.rtsp import RtspServer
from tests.agent.test_stream_audio import ffprobe_streams
from tests.agent.test_streams_e2e import (  # noqa: F401  (fixtures)
    AgentFactory,
    make_config,
    standins,
    start_agent,
    test_stream,
    wait_state,
)

SIMULATED_MIC = "alsa-usb-0000:01:00.0-1.3"


async def test_busy_sound_card_leaves_the_video_running_and_says_why(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    standins: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAPTURE_STANDIN_ALSA", "busy")
    stream = test_stream("cam", audio={"device": SIMULATED_MIC})
    agent = await start_agent(make_config(tmp_path, rtsp_server, [stream]))
    status = await wait_state(agent, "cam", {"running"})
    assert status["audio"] == {
        "state": "unavailable",
        "device": None,
        "codec": "aac",
        "reason": "The sound device is in use by another program. The stream runs without sound.",
    }
    assert status["sound_level_dbfs"] is None and status["restart_count"] == 0


async def test_sound_is_published_measured_and_detected(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    standins: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAPTURE_STANDIN_ALSA", "tone-then-silence")
    settings = {"sound_detection": True, "sound_threshold_dbfs": -30, "sound_min_duration_s": 1}
    stream = test_stream("cam", audio={"device": "alsa-usb-0000:01:00.0-1.3"}, settings=settings)
    agent = await start_agent(make_config(tmp_path, rtsp_server, [stream]))
    sounds: list[dict[str, Any]] = []

    def keep(event: Event) -> None:
        if event.type == "sound":
            sounds.append(event.data)

    agent.bus.subscribe(keep)
    status = await wait_state(agent, "cam", {"running"})
    assert status["audio"] == {"state": "on", "device": SIMULATED_MIC, "codec": "aac", "reason": None}
    found = await asyncio.to_thread(ffprobe_streams, f"{rtsp_server.read_base}/cam")
    assert found == ["audio:aac", "video:h264"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(sounds) < 2:
        await asyncio.sleep(0.1)
    assert [s["state"] for s in sounds[:2]] == ["start", "end"], sounds
    start, end = sounds[:2]
    assert start["stream_id"] == "cam" and start["level_dbfs"] > -30 and start["ended_at"] is None
    assert end["started_at"] == start["started_at"] and end["ended_at"] > end["started_at"]
    assert agent.streams is not None
    level = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (level is not None and level < -90):
        level = agent.streams.status("cam", reader_host="127.0.0.1")["sound_level_dbfs"]
        await asyncio.sleep(0.1)
    assert level is not None and level < -90  # silence after the tone (the block across its end is louder)


async def test_an_edit_without_audio_keeps_the_sound_and_null_ends_it(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    standins: None,  # noqa: F811
) -> None:
    stream = test_stream("cam", audio={"device": SIMULATED_MIC, "codec": "opus"})
    agent = await start_agent(make_config(tmp_path, rtsp_server, [stream]))
    assert agent.streams is not None
    kept, _ = await agent.streams.upsert(test_stream("cam", fps=10))  # a form that knows nothing of sound
    assert kept.audio is not None and kept.audio.codec == "opus" and kept.fps == 10
    ended, _ = await agent.streams.upsert(test_stream("cam", audio=None))
    assert ended.audio is None
