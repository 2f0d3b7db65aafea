"""Sound through the whole agent: a fixture tree of a Pi 4 whose USB sound card (an MS2109 HDMI card's sound
interface in port 1.3) is listed in /proc/asound, and the capture stand-in in front of the real ffmpeg turning
the ALSA input into a tone. A busy card leaves the stream running video-only with a reason; a loud tone then
silence gives a sound start and end over the event bus; a sound card unplugged while the stream runs (its
/proc/asound and /dev/snd entries go and come back) leaves the video running without sound, and its sound
returns when the card is plugged back. (A simulated Pi's card is stood in by the agent itself: test tones,
see test_stream_audio.py.)"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.agent import SIMULATED_SOUND_DEVICE
from pi_stream_agent.config import AgentConfig
from pi_stream_agent.events import Event
from pi_stream_agent.simulation.devices import SIMULATED_CARD, write_usb_sound_card
from pi_stream_agent.streams.audio import NOT_CONNECTED
from tests.agent.helpers import FixtureTree
from tests.agent.pi_trees import PI4_CARD, build_pi4_platform
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

SIMULATED_MIC = "alsa-usb-0000:01:00.0-1.3"  # the simulated Pi's card, here in a fixture tree


def _config_with_sound_card(
    tmp_path: Path, rtsp_server: RtspServer, streams: list[dict[str, Any]]
) -> AgentConfig:
    tree = FixtureTree(tmp_path / "root")
    build_pi4_platform(tree)
    _plug_sound_card(tree)
    return make_config(tmp_path, rtsp_server, streams, simulate=False, root=tree.base)


async def test_busy_sound_card_leaves_the_video_running_and_says_why(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    standins: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAPTURE_STANDIN_ALSA", "busy")
    stream = test_stream("cam", audio={"device": SIMULATED_MIC})
    agent = await start_agent(_config_with_sound_card(tmp_path, rtsp_server, [stream]))
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
    stream = test_stream("cam", audio={"device": SIMULATED_MIC}, settings=settings)
    agent = await start_agent(_config_with_sound_card(tmp_path, rtsp_server, [stream]))
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
    agent = await start_agent(_config_with_sound_card(tmp_path, rtsp_server, [stream]))
    assert agent.streams is not None
    kept, _ = await agent.streams.upsert(test_stream("cam", fps=10))  # a form that knows nothing of sound
    assert kept.audio is not None and kept.audio.codec == "opus" and kept.fps == 10
    ended, _ = await agent.streams.upsert(test_stream("cam", audio=None))
    assert ended.audio is None


def _plug_sound_card(tree: FixtureTree) -> None:
    """A USB microphone (the MS2109's sound interface alone) in the Pi 4's port 1.3, as ALSA lists it."""
    write_usb_sound_card(tree.base, tree.base / PI4_CARD.usb_dir, SIMULATED_CARD)


def _unplug_sound_card(tree: FixtureTree) -> None:
    """What the kernel does when the card goes: card 1 leaves /proc/asound, its PCM node leaves /dev/snd."""
    asound = tree.base / "proc/asound"
    (asound / "cards").write_text(
        " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n"
        "                      bcm2835 Headphones\n"
    )
    (asound / "pcm").write_text("00-00: bcm2835 Headphones : bcm2835 Headphones : playback 8\n")
    shutil.rmtree(asound / "card1")
    (tree.base / "sys/class/sound/card1/device").unlink()
    (tree.base / "dev/snd/pcmC1D0c").unlink()  # the node whose removal the hot-plug watch sees


async def _published(url: str) -> list[str]:
    """The streams of a published path; asked again while it reads empty (right after a restart the server
    may not have the new publisher's path yet)."""
    deadline = time.monotonic() + 20
    while True:
        found = await asyncio.to_thread(ffprobe_streams, url)
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def _wait_audio(agent: Any, state: str, timeout_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = agent.streams.status("cam", reader_host="127.0.0.1")
        if status["state"] == "running" and status["audio"]["state"] == state:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"sound never {state}; last status {status}")


async def test_sound_card_unplugged_mid_stream_leaves_the_video_and_comes_back_when_plugged(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    standins: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unplugged while ffmpeg reads it, a USB sound card fails snd_pcm_readi() with ENODEV and ffmpeg 5.1
    logs "ALSA read error: No such device" (libavdevice/alsa_dec.c audio_read_packet; the same line is
    quoted as the symptom of a USB capture device lost mid-stream in a public troubleshooting page of an
    SRT capture setup, beside "ioctl(VIDIOC_DQBUF): No such device"), then goes on with the video while its
    muxer holds it back waiting for sound. The capture stand-in prints those lines and ends its sound when
    the card's PCM node goes; the real ffmpeg does the rest."""
    tree = FixtureTree(tmp_path / "root")
    launches = tmp_path / "launches.jsonl"
    monkeypatch.setenv("CAPTURE_STANDIN_ROOT", str(tree.base))
    monkeypatch.setenv("CAPTURE_STANDIN_LOG", str(launches))
    stream = test_stream("cam", audio={"device": SIMULATED_MIC})
    agent = await start_agent(_config_with_sound_card(tmp_path, rtsp_server, [stream]))
    assert agent.streams is not None
    status = await _wait_audio(agent, "on")
    url = f"{rtsp_server.read_base}/cam"
    assert await _published(url) == ["audio:aac", "video:h264"]
    first_pid = status["pids"]["ffmpeg"]
    pushed: list[dict[str, Any]] = []
    agent.bus.subscribe(lambda event: pushed.append(event.data) if event.type == "stream_state" else None)

    _unplug_sound_card(tree)
    status = await _wait_audio(agent, "unavailable")
    # Back within the normal back-off (at once: a lost sound card is not a failed publisher), video only,
    # saying why in the same words as a sound card that is missing when the stream starts.
    assert status["pids"]["ffmpeg"] != first_pid
    assert status["audio"]["state"] == "unavailable" and status["audio"]["reason"] == NOT_CONNECTED
    assert status["restart_count"] == 0 and status["last_exit"] is None
    assert status["sound_level_dbfs"] is None
    # Pushed with the stream's numbers: a client following the WebSocket sees the sound go at once.
    assert pushed[-1]["state"] == "running" and pushed[-1]["stats"]["audio"] == status["audio"]
    # Whichever told the agent first, ffmpeg's read error or the card's hot-plug event: the same words.
    log = [(entry["process"], entry["line"]) for entry in agent.streams.logs("cam", 100)]
    assert ("agent", f"sound lost: {NOT_CONNECTED} Restarting without sound.") in log
    assert await _published(url) == ["video:h264"]
    await asyncio.sleep(2)  # the card's removal event (hot-plug) must not cost the video a second restart
    steady = agent.streams.status("cam", reader_host="127.0.0.1")
    assert steady["pids"]["ffmpeg"] == status["pids"]["ffmpeg"] and steady["audio"]["state"] == "unavailable"

    _plug_sound_card(tree)  # plugged back: the hot-plug event brings the sound back with one restart
    status = await _wait_audio(agent, "on")
    assert status["audio"] == {"state": "on", "device": SIMULATED_MIC, "codec": "aac", "reason": None}
    assert await _published(url) == ["audio:aac", "video:h264"]
    log = [(entry["process"], entry["line"]) for entry in agent.streams.logs("cam", 100)]
    assert ("agent", "sound device connected: restarting with sound.") in log
    assert ("agent", "stopped on request") not in log  # nobody asked: the log says why instead
    runs = [json.loads(line) for line in launches.read_text().splitlines()]
    publishers = [argv for argv in runs if "-progress" in argv or "rtsp" in " ".join(argv)]
    assert ["alsa" in argv for argv in publishers] == [True, False, True], publishers


async def test_a_simulated_pis_sound_card_beeps_so_the_sound_can_be_seen_working(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
) -> None:
    """No stand-in: the simulated Pi's card exists only on paper, so the agent itself gives the publisher
    ffmpeg's test tone for it, a beep that comes and goes (the demo's sound sensors move)."""
    settings = {"sound_detection": True, "sound_threshold_dbfs": -30, "sound_min_duration_s": 1}
    stream = test_stream("cam", audio={"device": SIMULATED_MIC}, settings=settings)
    agent = await start_agent(make_config(tmp_path, rtsp_server, [stream]))  # simulate=True
    sounds: list[dict[str, Any]] = []
    agent.bus.subscribe(lambda event: sounds.append(event.data) if event.type == "sound" else None)
    status = await _wait_audio(agent, "on")
    assert status["audio"] == {"state": "on", "device": SIMULATED_MIC, "codec": "aac", "reason": None}
    found = await asyncio.to_thread(ffprobe_streams, f"{rtsp_server.read_base}/cam")
    assert found == ["audio:aac", "video:h264"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(sounds) < 2:
        await asyncio.sleep(0.1)
    assert [s["state"] for s in sounds[:2]] == ["start", "end"], sounds
    assert sounds[0]["level_dbfs"] > -30


async def test_a_simulated_pis_own_cameras_show_sound_and_motion(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
) -> None:
    """No streams configured: the simulated Pi's two cameras (what the demo shows a newcomer), the front door
    with the simulated card's sound and sound detection, the garage with motion detection."""
    agent = await start_agent(replace(make_config(tmp_path, rtsp_server, []), streams=None))
    assert agent.streams is not None
    devices = [device["id"] for device in agent.registry.to_json()["audio_devices"]]
    assert SIMULATED_SOUND_DEVICE in devices
    front = await wait_state(agent, "front_door", {"running"})
    assert front["audio"]["state"] == "on" and front["config"]["settings"]["sound_detection"] is True
    garage = await wait_state(agent, "garage", {"running"})
    assert garage["motion"] is not None and garage["config"]["source"]["pattern"] == "passerby"
    found = await asyncio.to_thread(ffprobe_streams, f"{rtsp_server.read_base}/front_door")
    assert found == ["audio:aac", "video:h264"]


async def test_an_alsa_read_error_restarts_the_publisher_without_sound(
    tmp_path: Path,
    rtsp_server: RtspServer,
    start_agent: AgentFactory,  # noqa: F811
    standins: None,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ffmpeg's own word that its sound card went ("ALSA read error: No such device", the lines ffmpeg 5.1
    prints, see the test above) is enough, before or without any hot-plug event: the card stays listed
    here. Without the agent acting on it, ffmpeg would run on with the video held back by its muxer."""
    tree = FixtureTree(tmp_path / "root")
    launches = tmp_path / "launches.jsonl"
    monkeypatch.setenv("CAPTURE_STANDIN_ROOT", str(tree.base))
    monkeypatch.setenv("CAPTURE_STANDIN_LOG", str(launches))
    monkeypatch.setenv("CAPTURE_STANDIN_ALSA_FAIL_AFTER", "3")
    stream = test_stream("cam", audio={"device": SIMULATED_MIC})
    agent = await start_agent(_config_with_sound_card(tmp_path, rtsp_server, [stream]))
    assert agent.streams is not None
    # Not waiting to see the sound on first: on a slow machine the read error may come before the stream
    # counts as running. The launches below show the first publisher had the sound card.
    status = await _wait_audio(agent, "unavailable")
    assert status["audio"]["reason"] == NOT_CONNECTED
    assert status["restart_count"] == 0 and status["last_exit"] is None
    log = [(entry["process"], entry["line"]) for entry in agent.streams.logs("cam", 100)]
    assert ("ffmpeg", "[alsa @ 0x55d0c1a3c400] ALSA read error: No such device") in log
    assert ("agent", f"sound lost: {NOT_CONNECTED} Restarting without sound.") in log
    assert ("agent", "stopped on request") not in log  # it was not a person's stop
    assert await _published(f"{rtsp_server.read_base}/cam") == ["video:h264"]
    runs = [json.loads(line) for line in launches.read_text().splitlines()]
    publishers = [argv for argv in runs if "-progress" in argv]
    assert ["alsa" in argv for argv in publishers] == [True, False], publishers
