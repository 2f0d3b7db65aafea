"""Motion detection (issue 11 §2): the pure detector against a plain per-pixel computation, its settings
and region checks, the publisher's motion output on every path, and real ffmpeg scenes (a still one with
sensor-like noise, a box that moves and stops) through the real FIFO tap into the detector."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.events import Event, EventBus
from pi_stream_agent.streams.model import (
    PublishEnvironment,
    RtspSettings,
    SourceConfig,
    StreamConfig,
    SubstreamConfig,
    ToolPaths,
)
from pi_stream_agent.streams.motion import (
    MotionDetector,
    MotionSettings,
    analysis_size,
    region_problem,
    thresholds,
)
from pi_stream_agent.streams.motion_service import MotionService, NoMotionSnapshotError
from pi_stream_agent.streams.pipelines import build_pipeline, motion_output
from pi_stream_agent.streams.snapshot import Snapshot

W, H = 160, 120


def _naive_share(frame: bytes, background: bytes, threshold: int, mask: list[bool] | None = None) -> float:
    pixels = [i for i in range(len(frame)) if mask is None or mask[i]]
    changed = sum(1 for i in pixels if abs(frame[i] - background[i]) > threshold)
    return 100.0 * changed / len(pixels)


@pytest.mark.parametrize("sensitivity", [1, 30, 50, 77, 100])
def test_big_integer_lanes_count_what_a_pixel_loop_counts(sensitivity: int) -> None:
    rng = random.Random(sensitivity)
    background = bytes(rng.randrange(256) for _ in range(W * H))
    frame = bytes(min(255, max(0, b + rng.randrange(-60, 61))) for b in background)
    detector = MotionDetector(W, H, MotionSettings(sensitivity=sensitivity))
    assert detector.changed_share(background) == 0.0  # the first frame is the background
    threshold, _ = thresholds(sensitivity)
    assert detector.changed_share(frame) == pytest.approx(_naive_share(frame, background, threshold))


def test_region_counts_only_its_pixels() -> None:
    background = bytes(W * H)
    frame = bytearray(background)
    for y in range(H):  # the left half changes a lot
        frame[y * W : y * W + W // 2] = b"\xc8" * (W // 2)
    left = MotionDetector(W, H, MotionSettings(region=(0.0, 0.0, 0.5, 1.0)))
    right = MotionDetector(W, H, MotionSettings(region=(0.5, 0.0, 0.5, 1.0)))
    for detector in (left, right):
        detector.changed_share(background)
    assert left.changed_share(bytes(frame)) == 100.0
    assert right.changed_share(bytes(frame)) == 0.0


def test_sensitivity_makes_thresholds_that_only_go_down() -> None:
    pairs = [thresholds(s) for s in range(1, 101)]
    assert pairs[0] == (40, pytest.approx(10.0)) and pairs[-1] == (8, pytest.approx(0.2))
    assert thresholds(50)[0] in (16, 17)
    for (p1, a1), (p2, a2) in itertools.pairwise(pairs):
        assert p2 <= p1 and a2 <= a1


def _frames_with_box(box_x: int | None) -> bytes:
    frame = bytearray(b"\x80" * (W * H))
    if box_x is not None:
        for y in range(40, 80):
            frame[y * W + box_x : y * W + box_x + 20] = b"\xf0" * 20
    return bytes(frame)


def test_start_needs_the_minimum_duration_and_end_needs_quiet_for_the_hold() -> None:
    detector = MotionDetector(W, H, MotionSettings(min_duration_s=1.0))
    t = 0.0
    for _ in range(8):
        assert detector.feed(_frames_with_box(None), t) is None
        t += 0.25
    changes = []
    for step in range(12):  # 3 s of a box moving right
        change = detector.feed(_frames_with_box(10 + step * 10), t)
        if change:
            changes.append((t, change))
        t += 0.25
    ((at, start),) = changes
    assert start.state == "start" and start.score > 0 and at - start.started_at >= 1.0
    assert detector.status()["active"] is True
    end = None
    for _ in range(40):
        end = detector.feed(_frames_with_box(None), t) or end
        t += 0.25
    assert end is not None and end.state == "end" and end.ended_at is not None
    assert end.started_at == start.started_at and end.ended_at > start.started_at
    assert detector.status()["active"] is False


@pytest.mark.parametrize(
    ("region", "words"),
    [
        ({"x": 0, "y": 0, "width": 0, "height": 1}, "is empty"),
        ({"x": 0.8, "y": 0, "width": 0.5, "height": 1}, "outside the picture"),
        ({"x": -0.1, "y": 0, "width": 0.5, "height": 1}, "x must be between 0 and 1"),
        ({"x": "left", "y": 0, "width": 0.5, "height": 1}, "x must be a number"),
        ({"x": 0, "y": 0, "width": 1}, "needs height"),
        ({"x": 0, "y": 0, "width": 1, "height": 1, "w": 2}, "give only x, y, width and height"),
        ([0, 0, 1, 1], "must be a rectangle"),
    ],
)
def test_a_wrong_region_is_named_plainly(region: Any, words: str) -> None:
    problem = region_problem(region)
    assert problem is not None and words in problem and "`" not in problem
    assert region_problem({"x": 0.25, "y": 0, "width": 0.75, "height": 0.5}) is None


def test_analysis_size_keeps_the_aspect_ratio() -> None:
    assert analysis_size(640, 480) == (160, 120)
    assert analysis_size(1920, 1080) == (160, 90)
    assert analysis_size(120, 90) == (120, 90)


# ------------------------------------------------------------------------------------------ the pipelines


def _stream(kind: str, **changes: Any) -> StreamConfig:
    sources = {
        "test": SourceConfig(kind="test", pattern="smptebars"),
        "csi": SourceConfig(kind="csi", camera=0),
        "mjpeg": SourceConfig(kind="v4l2", device="/dev/video0", input_format="mjpeg"),
        "h264": SourceConfig(kind="v4l2", device="/dev/video0", input_format="h264"),
    }
    base = StreamConfig(
        id="cam",
        source=sources[kind],
        width=640,
        height=480,
        fps=15,
        bitrate=1_000_000,
        rtsp_path="cam",
        settings={"motion_detection": True},
    )
    return replace(base, **changes)


def _env(tmp_path: Path, hardware: bool = True) -> PublishEnvironment:
    return PublishEnvironment(
        rtsp=RtspSettings(),
        hardware_h264_encoder=hardware,
        tools=ToolPaths(clock_font=None),
        motion_dir=str(tmp_path),
    )


def test_motion_off_adds_nothing(tmp_path: Path) -> None:
    stream = _stream("test", settings={})
    spec = build_pipeline(stream, _env(tmp_path))
    assert spec.motion is None and not any("rawvideo" in arg for arg in spec.processes[-1].argv)
    on = build_pipeline(_stream("test"), replace(_env(tmp_path), motion_dir=None))
    assert on.motion is None  # no runtime directory: no FIFO to write to


def test_a_decoding_publisher_gets_a_small_grey_output(tmp_path: Path) -> None:
    spec = build_pipeline(_stream("test"), _env(tmp_path))
    argv = spec.processes[-1].argv
    assert spec.motion is not None and (spec.motion.width, spec.motion.height) == (160, 120)
    tail = list(argv[argv.index("rawvideo") - 7 :])
    assert tail == [
        "-map", "0:v:0", "-vf", "fps=4,scale=160:120:flags=area,format=gray", "-fps_mode", "passthrough",
        "-f", "rawvideo", "-y", spec.motion.path,
    ]  # fmt: skip
    assert spec.motion.path == str(tmp_path / "cam.motion.fifo")


def test_csi_hardware_relay_decodes_key_frames_only(tmp_path: Path) -> None:
    spec = build_pipeline(_stream("csi"), _env(tmp_path))
    ffmpeg = list(spec.processes[-1].argv)
    assert (
        ffmpeg.index("-skip_frame") < ffmpeg.index("-i")
        and ffmpeg[ffmpeg.index("-skip_frame") + 1] == "nokey"
    )
    assert spec.motion is not None and spec.motion.key_frames_only and spec.motion.fps == 1.0
    assert "fps=4" not in " ".join(ffmpeg)
    # With a substream ffmpeg decodes every frame anyway: no skipping (the substream needs them).
    sub = SubstreamConfig(width=320, height=240, fps=15, bitrate=300_000, rtsp_path="cam_sub")
    with_sub = build_pipeline(_stream("csi", substream=sub), _env(tmp_path))
    assert "-skip_frame" not in with_sub.processes[-1].argv
    assert with_sub.motion is not None and not with_sub.motion.key_frames_only


def test_mjpeg_pass_through_decodes_at_reduced_size(tmp_path: Path) -> None:
    spec = build_pipeline(_stream("mjpeg", encoder="copy"), _env(tmp_path))
    argv = list(spec.processes[-1].argv)
    assert argv[argv.index("-lowres") + 1] == "2" and argv.index("-lowres") < argv.index("-i")
    h264 = build_pipeline(_stream("h264", encoder="copy"), _env(tmp_path))
    assert "-skip_frame" in h264.processes[-1].argv
    encoded = build_pipeline(_stream("mjpeg", encoder="software"), _env(tmp_path, hardware=False))
    assert "-lowres" not in encoded.processes[-1].argv and encoded.motion is not None


# --------------------------------------------------------------------------- real ffmpeg into the tap

NOISE = "noise=alls=12:allf=t"
# A grey scene with sensor-like noise; with MOVE a white box enters at 3 s, crosses to the right by 6 s
# and stays there (still again).
SCENE = (
    "color=c=gray:size=640x480:rate=15," + NOISE + "[bg];color=c=white:size=80x120:rate=15[box];"
    "[bg][box]overlay=x='if(lt(t,3),-100,if(lt(t,6),(t-3)*150,450))':y=200"
)
STILL = "color=c=gray:size=640x480:rate=15," + NOISE


class _Pictures:
    async def __call__(self, stream_id: str, since: float) -> Snapshot:
        return Snapshot(b"\xff\xd8jpeg\xff\xd9", since, 640, 480)


async def _run_scene(
    tmp_path: Path, graph: str, seconds: float, **stream_changes: Any
) -> tuple[list[dict[str, Any]], MotionService]:
    """The real ffmpeg with the pipeline's motion output, fed ``graph`` in real time, into the service."""
    stream = _stream("test", **stream_changes)
    env = _env(tmp_path)
    args, output = motion_output(stream, env)
    bus = EventBus()
    events: list[dict[str, Any]] = []

    def collect(event: Event) -> None:
        if event.type == "motion":
            events.append(event.data)

    bus.subscribe(collect)
    service = MotionService(bus, _Pictures())
    spec = replace(build_pipeline(stream, env), motion=output)
    await service.pipeline_starting(stream, spec)
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
            "-f", "lavfi", "-t", str(seconds), "-i", graph, *args]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*argv, stderr=subprocess.PIPE)
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), seconds + 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    await asyncio.sleep(0.3)  # the last frames reach the reader
    return events, service


@pytest.mark.parametrize("noise", [12, 40])
async def test_a_still_noisy_scene_gives_no_motion(tmp_path: Path, noise: int) -> None:
    # 40 is harsh (a dark scene at high gain): a third of the grey levels wander by more than 16.
    events, service = await _run_scene(tmp_path, STILL.replace("alls=12", f"alls={noise}"), 8)
    status = service.status("cam")
    assert events == [] and status is not None and status["active"] is False
    service.pipeline_ended("cam")
    await service.close()


async def test_a_moving_box_starts_and_ends_a_motion_with_a_picture(tmp_path: Path) -> None:
    events, service = await _run_scene(tmp_path, SCENE, 14)
    states = [event["state"] for event in events]
    assert states == ["start", "end"], events
    start, end = events
    assert start["score"] > 0 and start["ended_at"] is None
    assert start["snapshot"] == "/api/v1/streams/cam/motion/snapshot"
    assert end["started_at"] == start["started_at"] and end["ended_at"] > start["started_at"]
    picture = await service.snapshot("cam", "Cam")
    assert picture.jpeg.startswith(b"\xff\xd8") and picture.started_at == pytest.approx(
        start["started_at"], abs=1e-3
    )
    service.pipeline_ended("cam")
    await service.close()


async def test_a_moving_box_is_seen_through_harsh_noise(tmp_path: Path) -> None:
    events, service = await _run_scene(tmp_path, SCENE.replace("alls=12", "alls=40"), 9)
    assert [event["state"] for event in events][:1] == ["start"], events
    service.pipeline_ended("cam")
    await service.close()


async def test_motion_outside_the_region_is_not_seen(tmp_path: Path) -> None:
    # The box crosses the middle band (y 200-320 of 480); the region is the top quarter.
    region = {"x": 0.0, "y": 0.0, "width": 1.0, "height": 0.25}
    events, service = await _run_scene(tmp_path, SCENE, 10, motion_region=region)
    assert events == []
    service.pipeline_ended("cam")
    await service.close()


async def test_a_motion_going_on_ends_when_the_publisher_stops_and_off_forgets_it(tmp_path: Path) -> None:
    """Frames written into the tap's FIFO by hand (as ffmpeg would): a motion starts; the publisher stops
    (pipeline_ended) → an end event at once; motion detection turned off → no status, no picture."""
    stream = _stream("test", settings={"motion_detection": True, "motion_min_duration_s": 0.0})
    env = _env(tmp_path)
    spec = build_pipeline(stream, env)
    assert spec.motion is not None
    bus = EventBus()
    events: list[dict[str, Any]] = []
    bus.subscribe(lambda event: events.append(event.data) if event.type == "motion" else None)
    service = MotionService(bus, _Pictures())
    await service.pipeline_starting(stream, spec)
    writer = os.open(spec.motion.path, os.O_WRONLY)
    try:
        for index in range(16):  # still, then a box that jumps about
            os.write(writer, _frames_with_box(None if index < 10 else (index * 30) % 140))
            await asyncio.sleep(0.02)
        for _ in range(100):
            if events:
                break
            await asyncio.sleep(0.02)
    finally:
        os.close(writer)
    assert [event["state"] for event in events] == ["start"]
    await asyncio.sleep(0.05)  # the picture task
    service.pipeline_ended("cam")
    assert [event["state"] for event in events] == ["start", "end"]
    assert events[1]["started_at"] == events[0]["started_at"] and events[1]["ended_at"] is not None
    assert not os.path.exists(spec.motion.path)  # noqa: ASYNC240 - the FIFO goes with the run
    assert (await service.snapshot("cam", "Cam")).jpeg.startswith(b"\xff\xd8")
    service.configure(replace(stream, settings={}))
    assert service.status("cam") is None
    with pytest.raises(NoMotionSnapshotError, match="Motion detection is off for Cam"):
        await service.snapshot("cam", "Cam")
    await service.close()
