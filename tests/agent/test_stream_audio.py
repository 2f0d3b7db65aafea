"""A stream's sound (streams/audio.py): config, argv, and the real pipeline with ffmpeg's own audio source
standing in for the ALSA card (tests/agent/bin/capture/ffmpeg), published into the RTSP test server and read
back with ffprobe; the level measured in the same ffmpeg; the sound detector."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest

from pi_stream_agent.events import EventBus
from pi_stream_agent.streams.audio import (
    NOT_CONNECTED,
    AudioConfig,
    AudioInput,
    AudioStatus,
    SoundDetector,
    alsa_failure,
    alsa_input_args,
    is_meter_line,
    parse_audio,
    parse_level_line,
    resolve_audio,
    sound_lost,
)
from pi_stream_agent.streams.model import PreflightResult, StreamState
from pi_stream_agent.streams.pipelines import build_pipeline
from pi_stream_agent.streams.problems import StreamConfigError
from pi_stream_agent.streams.schema import parse_stream
from pi_stream_agent.streams.serialize import to_json
from pi_stream_agent.streams.supervisor import StreamSupervisor, SupervisorHooks
from pi_stream_agent.streams.urls import read_url
from tests.agent.rtsp import RtspServer
from tests.agent.streams_helpers import run_pipeline
from tests.agent.test_stream_pipelines import live_rtsp, pi4, pi5, small

CAPTURE_STANDIN_DIR = Path(__file__).resolve().parent / "bin" / "capture"
CARD = {
    "id": "alsa-usb-0000:01:00.0-1.3",
    "alsa": "hw:CARD=MS2109,DEV=0",
    "video_device_id": "usb-0000:01:00.0-1.3",
}
MIC = AudioInput("alsa-usb-0000:01:00.0-1.3", "hw:CARD=MS2109,DEV=0", AudioConfig(device="auto"))


def test_audio_config_defaults_round_trip_and_plain_refusals() -> None:
    base = {
        "id": "cam",
        "source": {"type": "test"},
        "width": 320,
        "height": 240,
        "fps": 15,
        "bitrate": "300k",
    }
    assert parse_stream(base).audio is None  # absent: video only, as before
    stream = parse_stream({**base, "audio": {"device": "auto"}})
    assert stream.audio == AudioConfig(
        device="auto", codec="aac", bitrate=64_000, channels=1, sample_rate=48_000
    )
    assert parse_stream(to_json(stream)) == stream
    assert parse_audio("none") is None
    for bad, words in (
        ({"codec": "mp3"}, "expected aac or opus"),
        ({"channels": 6}, "1 (mono) or 2 (stereo)"),
        ({"bitrate": "2M"}, "16k to 320k"),
        ({"codec": "opus", "sample_rate": 44100}, "Opus takes"),
        ({"volume": 3}, "unknown key"),
    ):
        with pytest.raises(StreamConfigError, match=re.escape(words)):
            parse_stream({**base, "audio": bad})


def test_resolve_auto_takes_the_cards_own_sound_and_a_missing_device_gives_a_reason() -> None:
    audio, status = resolve_audio(AudioConfig(device="auto"), [CARD], "usb-0000:01:00.0-1.3")
    assert audio is not None and audio.alsa == "hw:CARD=MS2109,DEV=0" and status.state == "on"
    audio, status = resolve_audio(AudioConfig(device="auto"), [CARD], "usb-other")
    assert audio is None and status.state == "unavailable" and "no sound of its own" in (status.reason or "")
    audio, status = resolve_audio(AudioConfig(device="alsa-gone"), [CARD], None)
    assert audio is None and status.to_json()["reason"].startswith("The sound device is not connected")
    assert resolve_audio(None, [CARD], None)[1].state == "off"


def test_argv_adds_the_alsa_input_maps_sound_to_main_and_substream_and_meters_it() -> None:
    config = small("test")
    config = replace(config, substream=replace(config.substream, audio=True))
    argv = list(build_pipeline(config, replace(pi5(), audio=MIC)).processes[-1].argv)
    at = argv.index("alsa")
    assert argv[at - 1 : at + 10] == [
        "-f", "alsa", "-thread_queue_size", "1024", "-channels", "1", "-sample_rate", "48000",
        "-i", "hw:CARD=MS2109,DEV=0", "-filter_complex",
    ]  # fmt: skip
    assert argv.index("alsa") > argv.index("lavfi")  # the video stays input 0
    graph = argv[at + 10]
    assert graph.startswith("[1:a:0]asplit=3[a0][a1][meter];[meter]asetnsamples=n=24000,astats")
    assert "ametadata=print:key=lavfi.astats.Overall.RMS_level:file=/dev/stderr:direct=1" in graph
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-map"] == ["0:v:0", "[a0]", "0:v:0", "[a1]"]
    assert argv.count("aac") == 2 and "-b:a" in argv
    # Without sound: not one argument more than before.
    assert "alsa" not in build_pipeline(small("test"), pi5()).processes[-1].argv


def test_tap_slave_takes_only_the_video_when_there_is_sound(tmp_path: Path) -> None:
    env = replace(pi5(), audio=MIC, keyframe_dir=str(tmp_path))
    argv = build_pipeline(replace(small("test"), substream=None), env).processes[-1].argv
    tee = argv[argv.index("tee") + 1]
    assert "|[select=v:f=image2:" in tee


def ffprobe_streams(url: str) -> list[str]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "udp", "-show_entries", "stream=codec_type,codec_name",
         "-of", "json", url],
        capture_output=True, timeout=20, check=False,
    )  # fmt: skip
    streams = json.loads(result.stdout or b"{}").get("streams") or []
    return sorted(f"{s['codec_type']}:{s['codec_name']}" for s in streams)


def levels(text: str) -> list[float]:
    return [level for line in text.splitlines() if (level := parse_level_line(line)) is not None]


@pytest.mark.parametrize("codec", ["aac", "opus"])
def test_sound_is_published_beside_the_video_and_measured(
    rtsp_server: RtspServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str
) -> None:
    monkeypatch.setenv("PATH", f"{CAPTURE_STANDIN_DIR}{os.pathsep}{os.environ['PATH']}")
    rtsp = live_rtsp(rtsp_server)
    config = replace(small("test"), substream=None)
    audio = replace(MIC, config=AudioConfig(device="auto", codec=codec))  # type: ignore[arg-type]
    spec = build_pipeline(config, replace(pi5(rtsp), audio=audio))
    with run_pipeline(spec, tmp_path) as running:
        running.wait_progress(min_frames=5)
        found: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(found) < 2:
            found = ffprobe_streams(read_url(config, rtsp, "127.0.0.1"))
        assert found == [f"audio:{codec}", "video:h264"], running.stderr_text()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(levels(running.stderr_text())) < 2:
            time.sleep(0.2)
        measured = levels(running.stderr_text())
        assert measured and all(-23 < level < -19 for level in measured), (
            measured
        )  # a sine at full scale: -21


def test_a_busy_sound_card_is_named_from_ffmpegs_own_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{CAPTURE_STANDIN_DIR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CAPTURE_STANDIN_ALSA", "busy")
    spec = build_pipeline(replace(small("test"), substream=None), replace(pi5(), audio=MIC))
    with run_pipeline(spec, tmp_path) as running:
        running.processes[-1].wait(timeout=10)
        lines = running.stderr_text().splitlines()
    assert (
        alsa_failure(lines) == "The sound device is in use by another program. The stream runs without sound."
    )
    assert alsa_failure(["[h264 @ 0x1] something else"]) is None


# ffmpeg 5.1 when a USB sound card is unplugged under it (libavdevice/alsa.c ff_alsa_xrun_recover, alsa_dec.c
# audio_read_packet, fftools/ffmpeg.c process_input): snd_pcm_readi() fails with ENODEV.
UNPLUGGED_MID_STREAM = [
    "[alsa @ 0x55d0c1a3c400] ALSA buffer xrun.",
    "[alsa @ 0x55d0c1a3c400] ALSA read error: No such device",
    "hw:CARD=MS2109,DEV=0: Input/output error",
]


def test_a_sound_card_lost_mid_stream_is_told_apart_from_the_camera() -> None:
    assert [sound_lost(line) for line in UNPLUGGED_MID_STREAM] == [None, NOT_CONNECTED, None]
    other = sound_lost("[alsa @ 0x1] ALSA read error: Input/output error")
    assert other is not None and "stopped working" in other
    assert sound_lost("[video4linux2,v4l2 @ 0x1] ioctl(VIDIOC_DQBUF): No such device") is None
    # Should ffmpeg exit on it (-xerror, another version), the exit is the sound's, not "camera disconnected".
    assert alsa_failure(["frame=  20 fps=15", *UNPLUGGED_MID_STREAM]) == NOT_CONNECTED


def test_meter_lines_are_not_log_lines() -> None:
    assert is_meter_line("frame:3    pts:72000   pts_time:1.5")
    assert is_meter_line("lavfi.astats.Overall.RMS_level=-21.07")
    assert not is_meter_line("[alsa @ 0x1] cannot open audio device hw:1 (Device or resource busy)")
    assert parse_level_line("lavfi.astats.Overall.RMS_level=-inf") == -120.0
    assert parse_level_line("lavfi.astats.Overall.RMS_level=nan") is None


def test_detector_starts_after_the_minimum_duration_and_ends_on_silence() -> None:
    detector = SoundDetector(threshold_dbfs=-30.0, min_duration_s=1.0)
    assert detector.feed(-21.0, 10.0) is None
    assert detector.feed(-20.0, 10.5) is None
    start = detector.feed(-21.0, 11.0)
    assert start is not None and (start.state, start.started_at, start.ended_at, start.level_dbfs) == (
        "start", 10.0, None, -20.0,
    )  # fmt: skip
    assert detector.feed(-21.0, 11.5) is None
    end = detector.feed(-120.0, 12.0)
    assert end is not None and (end.state, end.started_at, end.ended_at) == ("end", 10.0, 12.0)
    # A short sound (under the minimum) never starts.
    assert detector.feed(-10.0, 20.0) is None and detector.feed(-90.0, 20.5) is None


def test_csi_relay_gets_the_sound_after_the_cameras_pipe() -> None:
    argv = list(
        build_pipeline(replace(small("csi"), substream=None), replace(pi4(), audio=MIC)).processes[-1].argv
    )
    assert argv.index("pipe:0") < argv.index("alsa") < argv.index("-filter_complex") < argv.index("[a0]")
    assert argv[argv.index("-c:v") + 1] == "copy" and argv[argv.index("-c:a") + 1] == "aac"


@pytest.mark.parametrize(
    ("sound", "present", "restarts"),
    [("unavailable", False, False), ("unavailable", True, True), ("on", False, True), ("on", True, False)],
)
async def test_a_card_event_restarts_a_stream_only_when_it_changes_whether_the_sound_can_be_had(
    sound: Literal["on", "unavailable"], present: bool, restarts: bool
) -> None:
    """The event of the card's own unplugging may come after the publisher already restarted without sound
    (its "ALSA read error"): it must not cost the video a second restart. Its plugging back must bring the
    sound; and a card gone from under a stream with sound ends its sound without waiting for ffmpeg."""

    async def reachable() -> bool:
        return True

    async def preflight(*_args: object) -> PreflightResult:
        return PreflightResult(ok=True)

    config = replace(small("test"), audio=AudioConfig(device="alsa-usb-0000:01:00.0-1.3"))
    hooks = SupervisorHooks(
        build_spec=lambda _config: pytest.fail("no publisher is built here"),
        preflight=preflight,
        device_present=lambda _config: True,
        rtsp_reachable=reachable,
        cma_free_bytes=lambda: None,
        sound_available=lambda _config: present,
    )
    supervisor = StreamSupervisor(config, hooks, EventBus())
    supervisor.state = StreamState.RUNNING
    supervisor.audio_status = AudioStatus(sound, None, "aac", NOT_CONNECTED if sound != "on" else None)
    supervisor.audio_devices_changed()
    assert supervisor._wanted.restart is restarts
    lost = [line for _, _, line in supervisor.log.tail() if line.startswith("sound lost")]
    said = f"sound lost: {NOT_CONNECTED} Restarting without sound."
    assert lost == ([said] if sound == "on" and restarts else [])


def test_a_simulated_sound_card_is_the_test_tone_not_alsa() -> None:
    simulated = alsa_input_args(replace(MIC, simulated=True))
    assert "alsa" not in simulated and simulated[:4] == ["-re", "-f", "lavfi", "-i"]
    assert simulated[4].startswith("sine=frequency=440:sample_rate=48000,") and "mono" in simulated[4]
    assert alsa_input_args(MIC)[:2] == ["-f", "alsa"] and alsa_input_args(MIC)[-1] == MIC.alsa
