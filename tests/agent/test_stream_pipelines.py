"""Publisher pipelines (pi_stream_agent.streams.pipelines), RTSP URLs and redaction (.urls), and the
rpicam-vid stand-in.

Argument lists are checked exactly for every source kind. The test-pattern and CSI pipelines are then run for
real (real ffmpeg, the rpicam-vid stand-in, the rtsp_server fixture over UDP) and read back with ffprobe.
V4L2 pipelines cannot run here (no capture device on this machine): only their argument lists are checked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.streams.fields import TEST_PATTERN_IDS as TEST_PATTERNS
from pi_stream_agent.streams.fonts import usable_font
from pi_stream_agent.streams.model import (
    PublishEnvironment,
    RtspSettings,
    SourceConfig,
    SourceKind,
    StreamConfig,
    SubstreamConfig,
    ToolPaths,
)
from pi_stream_agent.streams.pipelines import (
    PipelineError,
    build_pipeline,
    keyframe_interval_frames,
    moving_overlay,
    pattern_graph,
    yuv420_stride,
)
from pi_stream_agent.streams.settings import SETTINGS
from pi_stream_agent.streams.urls import RtspUrlError, publish_url, read_url, redact, redacted_argv
from tests.agent.rpicam_options import RPICAM_OPTIONS_USED, RPICAM_VID_OPTIONS
from tests.agent.rtsp import RtspServer, wait_readable
from tests.agent.streams_helpers import (
    RPICAM_STANDIN,
    progress_blocks,
    run_pipeline,
    use_rpicam_standin,
)

HEAD = [
    "ffmpeg",
    "-hide_banner",
    "-nostdin",
    "-nostats",
    "-loglevel",
    "warning",
    "-progress",
    "pipe:1",
    "-stats_period",
    "1",
    "-vstats_file",
    "/dev/stderr",
    "-vstats_version",
    "2",
]
LOW_DELAY = ["-fflags", "nobuffer", "-flags", "low_delay"]
RTSP = RtspSettings(publish_url="rtsp://127.0.0.1:8554", publish_transport="tcp")


def x264(bitrate: str, gop: str) -> list[str]:
    return [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-pix_fmt",
        "yuv420p",
        "-bf",
        "0",
        "-g",
        gop,
        "-b:v",
        bitrate,
        "-maxrate",
        bitrate,
        "-bufsize",
        bitrate,
        "-bsf:v",
        "dump_extra=freq=keyframe",
        "-fps_mode",
        "passthrough",
    ]


def v4l2m2m(bitrate: str, gop: str) -> list[str]:
    return [
        "-c:v",
        "h264_v4l2m2m",
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        bitrate,
        "-g",
        gop,
        "-bsf:v",
        "dump_extra=freq=keyframe",
        "-fps_mode",
        "passthrough",
    ]


DEFAULT_TOOLS = ToolPaths()


def pi4(
    rtsp: RtspSettings = RTSP, device_path: str | None = None, tools: ToolPaths = DEFAULT_TOOLS
) -> PublishEnvironment:
    return PublishEnvironment(
        rtsp=rtsp, hardware_h264_encoder=True, soc="BCM2711", device_path=device_path, tools=tools
    )


def pi5(rtsp: RtspSettings = RTSP, device_path: str | None = None) -> PublishEnvironment:
    return PublishEnvironment(rtsp=rtsp, hardware_h264_encoder=False, soc="BCM2712", device_path=device_path)


def stream(kind: SourceKind = "csi", **changes: Any) -> StreamConfig:
    base = StreamConfig(
        id="cam",
        source=SourceConfig(kind=kind),
        width=1280,
        height=720,
        fps=30.0,
        bitrate=2_000_000,
        rtsp_path="cam",
    )
    return replace(base, **changes)


SUB = SubstreamConfig(width=640, height=360, fps=10.0, bitrate=400_000, rtsp_path="cam_sub")


# ------------------------------------------------------------------------------------------ CSI argv


def test_csi_hardware_pi4_with_substream() -> None:
    spec = build_pipeline(stream(substream=SUB, source=SourceConfig(kind="csi", camera=1)), pi4())
    assert [p.name for p in spec.processes] == ["rpicam-vid", "ffmpeg"]
    assert list(spec.processes[0].argv) == [
        "rpicam-vid",
        "--camera",
        "1",
        "--timeout",
        "0",
        "--nopreview",
        "--codec",
        "h264",
        "--inline",
        "--flush",
        "--width",
        "1280",
        "--height",
        "720",
        "--framerate",
        "30",
        "--bitrate",
        "2000000",
        "--intra",
        "30",
        "--output",
        "-",
    ]
    assert list(spec.processes[1].argv) == [
        *HEAD,
        *LOW_DELAY,
        "-f",
        "h264",
        "-framerate",
        "30",
        "-use_wallclock_as_timestamps",
        "1",
        "-i",
        "pipe:0",
        "-map",
        "0:v:0",
        "-c:v",
        "copy",
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam",
        "-map",
        "0:v:0",
        "-vf",
        "scale=640:360:flags=fast_bilinear,fps=10",
        *v4l2m2m("400000", "10"),
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam_sub",
    ]
    assert spec.encoding == "hardware"
    assert spec.main_url == "rtsp://127.0.0.1:8554/cam"
    assert spec.sub_url == "rtsp://127.0.0.1:8554/cam_sub"
    assert spec.device_path is None
    assert spec.progress_process == -1 and spec.processes[spec.progress_process].name == "ffmpeg"


def test_csi_hardware_asks_for_level_42_only_beyond_level_41() -> None:
    # 1080p30 is 8160 MB x 30 = 244 800 MB/s (level 4.1 allows 245 760); 1080p50 needs 4.2.
    p30 = build_pipeline(stream(width=1920, height=1080, fps=30.0), pi4()).processes[0].argv
    p50 = build_pipeline(stream(width=1920, height=1080, fps=50.0), pi4()).processes[0].argv
    assert "--level" not in p30
    assert p50[p50.index("--level") + 1] == "4.2"
    with pytest.raises(PipelineError, match=r"beyond H\.264 level 4\.2"):
        build_pipeline(stream(width=1920, height=1080, fps=90.0), pi4())


def test_csi_pi5_is_software_encoded_from_raw_frames() -> None:
    spec = build_pipeline(
        stream(
            width=1640,
            height=1232,
            fps=15.0,
            bitrate=3_000_000,
            keyframe_interval_s=2.0,
            encoder="auto",
            substream=SUB,
        ),
        pi5(),
    )
    assert spec.encoding == "software"
    # PiSP pads rows to 128 bytes: 1640 -> 1664; ffmpeg reads the padded frame and crops it back.
    assert list(spec.processes[0].argv) == [
        "rpicam-vid",
        "--camera",
        "0",
        "--timeout",
        "0",
        "--nopreview",
        "--codec",
        "yuv420",
        "--flush",
        "--width",
        "1640",
        "--height",
        "1232",
        "--framerate",
        "15",
        "--output",
        "-",
    ]
    assert list(spec.processes[1].argv) == [
        *HEAD,
        *LOW_DELAY,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-video_size",
        "1664x1232",
        "-framerate",
        "15",
        "-use_wallclock_as_timestamps",
        "1",
        "-i",
        "pipe:0",
        "-map",
        "0:v:0",
        "-vf",
        "crop=1640:1232:0:0",
        *x264("3000000", "30"),
        "-color_range",
        "pc",
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam",
        "-map",
        "0:v:0",
        "-vf",
        "crop=1640:1232:0:0,scale=640:360:flags=fast_bilinear,fps=10",
        *x264("400000", "20"),
        "-color_range",
        "pc",
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam_sub",
    ]


def test_csi_software_on_pi4_uses_vc4_stride_and_no_crop_when_aligned() -> None:
    spec = build_pipeline(stream(encoder="software"), pi4())  # 1280 is a multiple of 64
    assert spec.encoding == "software"
    ffmpeg = spec.processes[1].argv
    assert ffmpeg[ffmpeg.index("-video_size") + 1] == "1280x720"
    assert "-vf" not in ffmpeg


def test_yuv420_strides() -> None:
    # VC4: 64-byte luma rows (rpicam-apps#188: 780 px wide come out 832); PiSP: 128 (2 x 64-aligned chroma).
    assert yuv420_stride(780, "BCM2711", True) == 832
    assert yuv420_stride(1280, "BCM2837", True) == 1280
    assert yuv420_stride(320, "BCM2712", False) == 384
    assert yuv420_stride(1920, "BCM2712", False) == 1920
    assert yuv420_stride(320, None, False) == 384  # unknown SoC without an encoder: assume a Pi 5
    assert yuv420_stride(320, "BCM2711", False) == 320  # a Pi 4 whose encoder node is missing is still VC4


def test_csi_camera_index_and_libcamera_id() -> None:
    def camera_arg(camera: int | str | None) -> str:
        argv = build_pipeline(stream(source=SourceConfig(kind="csi", camera=camera)), pi4()).processes[0].argv
        return argv[argv.index("--camera") + 1]

    assert camera_arg("1") == "1"
    assert camera_arg(2) == "2"
    assert camera_arg(None) == "0"
    with pytest.raises(PipelineError, match="libcamera id"):
        camera_arg("/base/soc/i2c0mux/i2c@1/imx708@1a")


def test_csi_impossible_combinations() -> None:
    with pytest.raises(PipelineError, match=r"'hardware'.*BCM2712"):
        build_pipeline(stream(encoder="hardware"), pi5())
    with pytest.raises(PipelineError, match="'copy'"):
        build_pipeline(stream(encoder="copy"), pi4())
    with pytest.raises(PipelineError, match="width must be a positive even number"):
        build_pipeline(stream(width=1281), pi4())
    with pytest.raises(PipelineError, match=r"substream\.fps must be positive"):
        build_pipeline(stream(substream=replace(SUB, fps=0.0)), pi4())
    assert issubclass(PipelineError, ValueError)


def test_tool_paths_are_used() -> None:
    env = pi4(tools=ToolPaths(rpicam_vid="/opt/bin/rpicam-vid", ffmpeg="/opt/bin/ffmpeg"))
    spec = build_pipeline(stream(), env)
    assert [p.argv[0] for p in spec.processes] == ["/opt/bin/rpicam-vid", "/opt/bin/ffmpeg"]


def test_every_rpicam_option_written_is_a_verified_real_one() -> None:
    known = {opt.name: opt for opt in RPICAM_VID_OPTIONS}
    written: set[str] = set()
    for env in (pi4(), pi5()):
        for config in (stream(), stream(width=1920, height=1080, fps=60.0), stream(substream=SUB)):
            for arg in build_pipeline(config, env).processes[0].argv[1:]:
                if arg.startswith("--"):
                    written.add(arg[2:])
    # The picture settings' options are checked in test_stream_settings.py.
    assert written == RPICAM_OPTIONS_USED - {s.rpicam_option for s in SETTINGS if s.rpicam_option}
    assert all(name in known and not known[name].libav_only for name in written)  # rpicam-apps-lite runs them
    assert len(known) == len(RPICAM_VID_OPTIONS)  # no duplicates in the table


# ------------------------------------------------------------------------------------------ V4L2 argv


def test_v4l2_mjpeg_copy() -> None:
    source = SourceConfig(kind="v4l2", device="/dev/v4l/by-id/usb-cam-video-index0", input_format="mjpeg")
    config = stream("v4l2", source=source, encoder="copy", width=1920, height=1080)
    spec = build_pipeline(config, pi4())
    assert spec.encoding == "copy"
    assert spec.device_path == "/dev/v4l/by-id/usb-cam-video-index0"
    assert [list(p.argv) for p in spec.processes] == [
        [
            *HEAD,
            *LOW_DELAY,
            "-f",
            "v4l2",
            "-input_format",
            "mjpeg",
            "-video_size",
            "1920x1080",
            "-framerate",
            "30",
            "-i",
            "/dev/v4l/by-id/usb-cam-video-index0",
            "-map",
            "0:v:0",
            "-c:v",
            "copy",
            "-f",
            "rtsp",
            "-rtsp_transport",
            "tcp",
            "rtsp://127.0.0.1:8554/cam",
        ]
    ]


def test_v4l2_yuyv_pi4_hardware_with_substream_and_resolved_device() -> None:
    source = SourceConfig(kind="v4l2", device="usb-046d_0825", input_format="yuyv422")
    sub = replace(SUB, width=320, height=240, fps=25.0)
    config = stream("v4l2", source=source, width=640, height=480, fps=25.0, bitrate=1_000_000, substream=sub)
    spec = build_pipeline(config, pi4(device_path="/dev/video1"))
    assert spec.encoding == "hardware"
    assert spec.device_path == "/dev/video1"  # the resolved node wins over the configured device id
    assert list(spec.processes[0].argv) == [
        *HEAD,
        *LOW_DELAY,
        "-f",
        "v4l2",
        "-input_format",
        "yuyv422",
        "-video_size",
        "640x480",
        "-framerate",
        "25",
        "-i",
        "/dev/video1",
        "-map",
        "0:v:0",
        *v4l2m2m("1000000", "25"),
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam",
        "-map",
        "0:v:0",
        "-vf",
        "scale=320:240:flags=fast_bilinear",
        *v4l2m2m("400000", "25"),
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam_sub",
    ]


def test_v4l2_pi5_encodes_in_software_and_h264_cards_pass_through() -> None:
    yuyv = stream("v4l2", source=SourceConfig(kind="v4l2", device="/dev/video0", input_format="yuyv422"))
    spec = build_pipeline(yuyv, pi5())
    assert spec.encoding == "software"
    argv = list(spec.processes[0].argv)
    assert argv[argv.index("-map") :] == [
        "-map",
        "0:v:0",
        *x264("2000000", "30"),
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam",
    ]
    h264 = stream("v4l2", source=SourceConfig(kind="v4l2", device="/dev/video0", input_format="h264"))
    assert build_pipeline(h264, pi5()).encoding == "copy"
    assert build_pipeline(replace(h264, encoder="software"), pi5()).encoding == "software"
    anyformat = build_pipeline(stream("v4l2", source=SourceConfig(kind="v4l2", device="/dev/video0")), pi4())
    assert "-input_format" not in anyformat.processes[0].argv and anyformat.encoding == "hardware"


def test_v4l2_impossible_combinations() -> None:
    with pytest.raises(PipelineError, match=r"source\.device"):
        build_pipeline(stream("v4l2", source=SourceConfig(kind="v4l2")), pi4())
    with pytest.raises(PipelineError, match=r"'copy' needs source\.input_format"):
        build_pipeline(
            stream(
                "v4l2",
                source=SourceConfig(kind="v4l2", device="/dev/video0", input_format="yuyv422"),
                encoder="copy",
            ),
            pi4(),
        )
    with pytest.raises(PipelineError, match="'hardware'"):
        build_pipeline(
            stream("v4l2", source=SourceConfig(kind="v4l2", device="/dev/video0"), encoder="hardware"), pi5()
        )


# ------------------------------------------------------------------------------------------ test pattern argv


def test_test_pattern_argv() -> None:
    config = stream(
        "test",
        width=320,
        height=240,
        fps=15.0,
        bitrate=300_000,
        substream=replace(SUB, width=160, height=120, fps=15.0, bitrate=100_000),
    )
    spec = build_pipeline(config, pi5())
    assert spec.encoding == "software"
    assert list(spec.processes[0].argv) == [
        *HEAD,
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=15," + moving_overlay(320, 240, ToolPaths().clock_font),
        "-map",
        "0:v:0",
        *x264("300000", "15"),
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam",
        "-map",
        "0:v:0",
        "-vf",
        "scale=160:120:flags=fast_bilinear",
        *x264("100000", "15"),
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        "rtsp://127.0.0.1:8554/cam_sub",
    ]
    assert build_pipeline(config, pi4()).encoding == "hardware"
    smpte = build_pipeline(stream("test", source=SourceConfig(kind="test", pattern="smptebars")), pi5())
    graph = smpte.processes[0].argv[smpte.processes[0].argv.index("lavfi") + 2]
    assert graph.startswith("smptebars=size=1280x720:rate=30,")
    with pytest.raises(PipelineError, match=r"source\.pattern 'movie=/etc/passwd'"):
        build_pipeline(stream("test", source=SourceConfig(kind="test", pattern="movie=/etc/passwd")), pi5())


def _frame_digests(graph: str, frames: int) -> list[str]:
    """The MD5 of each decoded frame of a lavfi graph, as ffmpeg's framemd5 muxer prints them."""
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", graph]
    result = subprocess.run(
        [*argv, "-frames:v", str(frames), "-f", "framemd5", "-"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    lines = [line for line in result.stdout.decode().splitlines() if line and not line.startswith("#")]
    return [line.rsplit(",", 1)[1].strip() for line in lines]


@pytest.mark.parametrize("font", ["host font", "no font"])
def test_every_test_pattern_moves(font: str) -> None:
    """Two frames a second apart differ for every pattern, with the clock or with the box that stands in
    for it when no font is found; a still pattern alone (smptebars) would show the same picture."""
    fps = 5
    clock_font = ToolPaths().clock_font if font == "host font" else None
    if font == "host font" and clock_font is None:
        pytest.skip("no font on this machine (Debian's ffmpeg brings fonts-dejavu-core)")

    def first_and_a_second_later(graph: str) -> tuple[str, str]:
        digests = _frame_digests(graph, fps + 1)
        return digests[0], digests[fps]

    with ThreadPoolExecutor(max_workers=2) as pool:
        graphs = [pattern_graph(p, 160, 120, fps, clock_font) for p in TEST_PATTERNS]
        moved = dict(zip(TEST_PATTERNS, pool.map(first_and_a_second_later, graphs), strict=True))
        still = first_and_a_second_later(f"smptebars=size=160x120:rate={fps}")
    assert {pattern for pattern, (first, later) in moved.items() if first == later} == set()
    assert still[0] == still[1]


def test_clock_font_is_a_plain_readable_file(tmp_path: Path) -> None:
    good = tmp_path / "Mono.ttf"
    good.write_bytes(b"\0")
    odd = tmp_path / "it's:odd.ttf"
    odd.write_bytes(b"\0")
    assert usable_font([str(tmp_path / "absent.ttf"), str(odd), str(good)]) == str(good)
    assert usable_font([str(tmp_path)]) is None  # a directory
    assert usable_font([]) is None


def test_keyframe_interval_frames() -> None:
    assert keyframe_interval_frames(30.0, 1.0) == 30
    assert keyframe_interval_frames(29.97, 2.0) == 60
    assert keyframe_interval_frames(5.0, 0.1) == 1


def test_fractional_fps_is_written_plainly() -> None:
    argv = build_pipeline(stream(fps=29.97), pi4()).processes[0].argv
    assert argv[argv.index("--framerate") + 1] == "29.97"


# ------------------------------------------------------------------------------------------ URLs, redaction

SECRET_USER = "cam admin"
SECRET_PASS = "p@ss:w/rd%"


def test_publish_url_encodes_credentials() -> None:
    rtsp = RtspSettings(
        publish_url="rtsp://127.0.0.1:8554/", publish_username=SECRET_USER, publish_password=SECRET_PASS
    )
    config = stream(rtsp_path="/front", substream=replace(SUB, rtsp_path="front_sub"))
    assert publish_url(config, rtsp) == "rtsp://cam%20admin:p%40ss%3Aw%2Frd%25@127.0.0.1:8554/front"
    assert publish_url(config, rtsp, substream=True).endswith("@127.0.0.1:8554/front_sub")
    with pytest.raises(RtspUrlError, match="no substream"):
        publish_url(stream(), rtsp, substream=True)
    with pytest.raises(RtspUrlError, match="not an rtsp") as caught:
        publish_url(stream(), RtspSettings(publish_url="http://u:hunter2@127.0.0.1:8554"))
    assert "hunter2" not in str(caught.value)
    with pytest.raises(RtspUrlError, match="invalid port"):
        read_url(stream(), RtspSettings(publish_url="rtsp://127.0.0.1:notaport"), "pi.local")


def test_read_url_defaults_to_publish_base_on_this_host() -> None:
    rtsp = RtspSettings(
        publish_url="rtsp://pub:secret@127.0.0.1:8554", publish_username="pub", publish_password="secret"
    )
    config = stream(substream=SUB)
    assert read_url(config, rtsp, "192.168.1.20") == "rtsp://192.168.1.20:8554/cam"  # no publish credentials
    assert read_url(config, rtsp, "fe80::1", substream=True) == "rtsp://[fe80::1]:8554/cam_sub"
    with_reader = replace(rtsp, read_username="ha", read_password="r:d")
    assert read_url(config, with_reader, "pi.local") == "rtsp://ha:r%3Ad@pi.local:8554/cam"
    explicit = replace(rtsp, read_url="rtsps://mediamtx.lan:8322/")
    assert read_url(config, explicit, "ignored") == "rtsps://mediamtx.lan:8322/cam"
    assert read_url(config, RtspSettings(publish_url="rtsp://localhost"), "10.0.0.5") == "rtsp://10.0.0.5/cam"


def test_redacted_argv_hides_credentials() -> None:
    rtsp = RtspSettings(
        publish_url="rtsp://127.0.0.1:8554", publish_username=SECRET_USER, publish_password=SECRET_PASS
    )
    spec = build_pipeline(stream(substream=SUB), pi4(rtsp))
    argv = [arg for proc in spec.processes for arg in proc.argv]
    assert any("p%40ss" in arg for arg in argv)  # the real argv carries them
    shown = " ".join(redacted_argv(argv))
    for secret in (SECRET_USER, SECRET_PASS, "cam%20admin", "p%40ss%3Aw%2Frd%25", "p@ss", "w/rd"):
        assert secret not in shown
    assert "rtsp://***@127.0.0.1:8554/cam" in shown and "rtsp://***@127.0.0.1:8554/cam_sub" in shown
    assert redacted_argv(["-i", "pipe:0"]) == ["-i", "pipe:0"]
    # a raw "@" in a hand-written password is hidden whole; text around URLs is kept (ffmpeg log lines)
    assert redact("[rtsp] rtsp://u:p@ss@host:8554/x: Connection refused") == (
        "[rtsp] rtsp://***@host:8554/x: Connection refused"
    )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("rtsp://user:s3cret@10.0.0.5:8554/cam", "rtsp://***@10.0.0.5:8554/cam"),
        ("rtsp://user@pi.local/cam?x=1", "rtsp://***@pi.local/cam?x=1"),
        ("rtsp://u:p@[fe80::1]:8554/cam", "rtsp://***@[fe80::1]:8554/cam"),
        ("rtsp://127.0.0.1:8554/cam", "rtsp://127.0.0.1:8554/cam"),
        ("rtsp://u:p@host:notaport/x", "rtsp://***@host:notaport/x"),  # never fails, whatever the URL
        ("RTSPS://u:p?#@host/x and rtsp://v:q@other/y", "RTSPS://***@host/x and rtsp://***@other/y"),
        ("a mail address: someone@example.com", "a mail address: someone@example.com"),
    ],
)
def test_redact_hides_every_userinfo_in_any_text(text: str, shown: str) -> None:
    assert redact(text) == shown


# ------------------------------------------------------------------------------------------ the stand-in


def run_standin(args: list[str], **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(RPICAM_STANDIN), *args], capture_output=True, timeout=20, check=False, env={**os.environ, **env}
    )


def test_standin_rejects_unknown_option_like_rpicam_vid() -> None:
    result = run_standin(["--timeout", "0", "--no-such-option", "-o", "-"])
    assert result.returncode == 255
    assert result.stderr.decode() == "ERROR: *** unrecognised option '--no-such-option' ***\n"
    assert result.stdout == b""
    # rpicam-apps-lite has no libav options (rpicam-apps#735)
    lite = run_standin(["--codec", "libav", "--libav-format", "h264"], RPICAM_STANDIN_LITE="1")
    assert lite.returncode == 255
    assert lite.stderr.decode() == "ERROR: *** unrecognised option '--libav-format' ***\n"
    missing = run_standin(["--width"])
    assert missing.stderr.decode() == "ERROR: *** the required argument for option '--width' is missing ***\n"


@pytest.mark.parametrize(
    ("mode", "last_line"),
    [
        ("no-camera", "ERROR: *** no cameras available ***"),
        ("busy", "ERROR: *** failed to acquire camera /base/soc/i2c0mux/i2c@1/ov5647@36 ***"),
        ("cma", "ERROR: *** failed to allocate capture buffers for stream ***"),
    ],
)
def test_standin_failure_modes(mode: str, last_line: str) -> None:
    result = run_standin(["--timeout", "0", "--nopreview", "--output", "-"], RPICAM_STANDIN_FAIL=mode)
    assert result.returncode == 255
    lines = result.stderr.decode().splitlines()
    assert lines[-1] == last_line
    if mode == "busy":
        assert "Pipeline handler in use by another process" in lines[-2]
    if mode == "cma":
        assert lines[0] == "dmaHeap allocation failure for rpicam-apps0"


def test_standin_pi5_lite_has_no_h264_encoder() -> None:
    # Why the Pi 5 pipeline uses --codec yuv420: without libav and without a VideoCore encoder, rpicam-vid
    # cannot make H.264 at all (encoder/encoder.cpp h264_codec_select).
    result = run_standin(["--codec", "h264", "-o", "-"], RPICAM_STANDIN_PI5="1", RPICAM_STANDIN_LITE="1")
    assert result.returncode == 255
    last = result.stderr.decode().splitlines()[-1]
    assert last == "ERROR: *** Unable to find an appropriate H.264 codec ***"


def test_standin_writes_h264_and_logs_argv(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    args = [
        "--timeout",
        "600",
        "--width",
        "320",
        "--height",
        "240",
        "--framerate",
        "15",
        "--intra",
        "5",
        "--inline",
        "-n",
        "-o",
        "-",
    ]
    result = run_standin(args, RPICAM_STANDIN_LOG=str(log))
    assert result.returncode == 0, result.stderr
    nal_types = [
        result.stdout[i + 3] & 0x1F
        for i in range(len(result.stdout) - 3)
        if result.stdout[i : i + 3] == b"\x00\x00\x01"
    ]
    assert nal_types.count(7) == 2  # SPS before each of the two I-frames of 9 frames with --intra 5
    assert json.loads(log.read_text()) == args


def test_standin_becomes_the_encoder_so_signals_hit_it() -> None:
    proc = subprocess.Popen(
        [str(RPICAM_STANDIN), "--timeout", "0", "--width", "320", "--height", "240", "--output", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.read(4) == b"\x00\x00\x00\x01"  # H.264 Annex-B is flowing
        assert Path(f"/proc/{proc.pid}/exe").resolve().name == "ffmpeg"  # same pid, exec'd
        proc.kill()
        assert proc.wait(timeout=10) == -9
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# ------------------------------------------------------------------------------------------ running for real


def shape(found: dict[str, object]) -> tuple[object, object, object]:
    return found["codec_name"], found["width"], found["height"]


def read_both(config: StreamConfig, rtsp: RtspSettings) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """(codec, width, height) of the main stream and the substream as a reader gets them."""
    with ThreadPoolExecutor(2) as pool:
        main = pool.submit(wait_readable, read_url(config, rtsp, "127.0.0.1"), 20.0)
        sub = pool.submit(wait_readable, read_url(config, rtsp, "127.0.0.1", substream=True), 20.0)
        return shape(main.result()), shape(sub.result())


def without_v4l2m2m(argv: tuple[str, ...]) -> tuple[str, ...]:
    """``argv`` with each h264_v4l2m2m encoder block replaced by libx264 at the same bitrate and GOP."""
    out = list(argv)
    while "h264_v4l2m2m" in out:
        at = out.index("h264_v4l2m2m") - 1  # "-c:v"
        block = out[at : at + 8]
        assert block[2:5] == ["-pix_fmt", "yuv420p", "-b:v"] and block[6] == "-g", block
        out[at : at + 8] = x264(block[5], block[7])[:-4]  # x264() ends with the shared bsf/fps_mode options
    return tuple(out)


def live_rtsp(server: RtspServer) -> RtspSettings:
    return RtspSettings(
        publish_url=server.publish_base,
        read_url=server.read_base,
        publish_transport="udp",
        read_transport="udp",
    )


def small(kind: SourceKind, **kwargs: Any) -> StreamConfig:
    return stream(
        kind,
        width=320,
        height=240,
        fps=15.0,
        bitrate=300_000,
        rtsp_path="live",
        substream=SubstreamConfig(width=160, height=120, fps=10.0, bitrate=100_000, rtsp_path="live_sub"),
        **kwargs,
    )


def test_test_pattern_pipeline_publishes_main_and_substream(rtsp_server: RtspServer, tmp_path: Path) -> None:
    rtsp = live_rtsp(rtsp_server)
    config = small("test")
    spec = build_pipeline(config, pi5(rtsp))
    with run_pipeline(spec, tmp_path) as running:
        main, sub = read_both(config, rtsp)
        assert main == ("h264", 320, 240), running.stderr_text()
        assert sub == ("h264", 160, 120)
        block = running.wait_progress(min_frames=15)
        assert int(block["frame"]) >= 15 and block["progress"] == "continue"
        assert {"fps", "bitrate", "out_time_us", "speed"} <= block.keys()
        assert all(p.poll() is None for p in running.processes)


def test_csi_pipeline_with_standin_publishes_main_and_substream(
    rtsp_server: RtspServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_rpicam_standin(monkeypatch)
    monkeypatch.setenv("RPICAM_STANDIN_LOG", str(tmp_path / "argv.log"))
    monkeypatch.setenv("RPICAM_STANDIN_LITE", "1")  # the pipeline must run on rpicam-apps-lite too
    rtsp = live_rtsp(rtsp_server)
    config = small("csi")
    spec = build_pipeline(config, pi4(rtsp))
    assert spec.encoding == "hardware"
    # The main stream is rpicam-vid's H.264 (libx264 in the stand-in), only copied by ffmpeg. h264_v4l2m2m,
    # the substream's encoder on a Pi 4, cannot run on this machine: libx264 takes its place, same options.
    ffmpeg = replace(spec.processes[1], argv=without_v4l2m2m(spec.processes[1].argv))
    runnable = replace(spec, processes=(spec.processes[0], ffmpeg))
    with run_pipeline(runnable, tmp_path) as running:
        main, sub = read_both(config, rtsp)
        assert main == ("h264", 320, 240), running.stderr_text()
        assert sub == ("h264", 160, 120)
        block = running.wait_progress(min_frames=15)
        assert block["progress"] == "continue"
        assert progress_blocks(running.progress_lines)  # the last process's stdout
    assert json.loads((tmp_path / "argv.log").read_text()) == list(spec.processes[0].argv[1:])


def test_csi_pi5_pipeline_with_standin_is_software_encoded(
    rtsp_server: RtspServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_rpicam_standin(monkeypatch)
    monkeypatch.setenv("RPICAM_STANDIN_PI5", "1")
    monkeypatch.setenv("RPICAM_STANDIN_LITE", "1")
    rtsp = live_rtsp(rtsp_server)
    config = replace(small("csi"), substream=None)
    spec = build_pipeline(config, pi5(rtsp))
    assert spec.encoding == "software"
    assert "crop=320:240:0:0" in spec.processes[1].argv  # 320 px rows arrive padded to 384
    with run_pipeline(spec, tmp_path) as running:
        main = wait_readable(read_url(config, rtsp, "127.0.0.1"), 20.0)
        assert shape(main) == ("h264", 320, 240), running.stderr_text()
        running.wait_progress(min_frames=10)


@pytest.mark.parametrize(("soc", "hardware", "width"), [("BCM2712", False, 320), ("BCM2711", True, 336)])
def test_raw_csi_input_unpads_exactly(
    soc: str, hardware: bool, width: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The padded-row input options of the software CSI path give back testsrc2's pixels exactly."""
    monkeypatch.setenv("RPICAM_STANDIN_PI5", "1" if soc == "BCM2712" else "0")
    config = stream(width=width, height=240, fps=15.0, encoder="software")
    spec = build_pipeline(config, PublishEnvironment(rtsp=RTSP, hardware_h264_encoder=hardware, soc=soc))
    ffmpeg = list(spec.processes[1].argv)
    assert ffmpeg[ffmpeg.index("-video_size") + 1] == "384x240"  # both pad these widths to 384
    decode = [
        "ffmpeg",
        "-v",
        "error",
        *ffmpeg[ffmpeg.index("-fflags") : ffmpeg.index("pipe:0") + 1],
        "-vf",
        ffmpeg[ffmpeg.index("-vf") + 1],
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-",
    ]
    rpicam = [str(RPICAM_STANDIN), *spec.processes[0].argv[1:]]
    rpicam[rpicam.index("--timeout") + 1] = "0"
    rpicam[-2:-2] = ["--frames", "3"]
    standin = subprocess.Popen(rpicam, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        got = subprocess.run(decode, stdin=standin.stdout, capture_output=True, timeout=30, check=False)
    finally:
        standin.kill()
        standin.wait()
        assert standin.stdout is not None
        standin.stdout.close()
    want = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x240:rate=15",
            "-frames:v",
            "3",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    frame = width * 240 * 3 // 2
    assert len(want) == 3 * frame
    # -fflags nobuffer discards what ffmpeg probed (the first frame); every frame after it must be exact.
    assert len(got.stdout) == 2 * frame, got.stderr
    assert got.stdout == want[frame:]


# ------------------------------------------------------------------------------------ key-frame tap


def test_key_frame_tap_tees_each_output_to_rtsp_and_one_file() -> None:
    env = replace(pi4(), keyframe_dir="/run/taps")
    spec = build_pipeline(stream(substream=SUB), env)
    ffmpeg = list(spec.processes[1].argv)
    tees = [ffmpeg[i + 1] for i, arg in enumerate(ffmpeg) if arg == "-f" and ffmpeg[i + 1] == "tee"]
    assert len(tees) == 2  # the main stream and the substream
    main = ffmpeg[ffmpeg.index("tee") + 1]
    assert main == (
        "[f=rtsp:rtsp_transport=tcp:onfail=abort]rtsp://127.0.0.1:8554/cam"
        "|[f=image2:update=1:atomic_writing=1:onfail=ignore:bsfs/v=noise=drop=not(key)]/run/taps/cam.main.keyframe"
    )
    assert ffmpeg[-1].endswith("]/run/taps/cam.sub.keyframe")
    assert "rtsp://127.0.0.1:8554/cam_sub|" in ffmpeg[-1]
    # Without a tap directory nothing changes.
    assert "tee" not in build_pipeline(stream(substream=SUB), pi4()).processes[1].argv


def test_key_frame_tap_of_mjpeg_pass_through_keeps_one_frame_a_second() -> None:
    source = SourceConfig(kind="v4l2", device="/dev/video0", input_format="mjpeg")
    config = stream("v4l2", source=source, encoder="copy", fps=30.0)
    argv = build_pipeline(config, replace(pi4(), keyframe_dir="/t")).processes[0].argv
    assert "bsfs/v=noise=drop=n-30*floor(n/30)]/t/cam.main.keyframe" in argv[-1]


def test_key_frame_tap_escapes_the_tee_separators_in_urls() -> None:
    rtsp = RtspSettings(publish_url="rtsp://127.0.0.1:8554/a|b'c\\d", publish_transport="tcp")
    argv = build_pipeline(stream("test"), replace(pi5(rtsp), keyframe_dir="/t")).processes[0].argv
    assert "]rtsp://127.0.0.1:8554/a\\|b\\'c\\\\d/cam|[" in argv[-1]


def test_csi_key_frame_tap_holds_a_decodable_key_frame_of_each_stream(
    rtsp_server: RtspServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CSI hardware path (rpicam-vid's H.264 copied by the relay) and its substream: the stream is
    still published, and each tap file is one key frame that decodes on its own at the stream's size."""
    use_rpicam_standin(monkeypatch)
    rtsp = live_rtsp(rtsp_server)
    config = small("csi")
    taps = tmp_path / "taps"
    taps.mkdir()
    spec = build_pipeline(config, replace(pi4(rtsp), keyframe_dir=str(taps)))
    ffmpeg = replace(spec.processes[1], argv=without_v4l2m2m(spec.processes[1].argv))
    runnable = replace(spec, processes=(spec.processes[0], ffmpeg))
    with run_pipeline(runnable, tmp_path) as running:
        main, sub = read_both(config, rtsp)
        assert main == ("h264", 320, 240), running.stderr_text()
        assert sub == ("h264", 160, 120)
        for name, size in (("cam.main.keyframe", (320, 240)), ("cam.sub.keyframe", (160, 120))):
            frames = subprocess.run(
                ["ffprobe", "-v", "error", "-f", "h264", "-show_entries", "frame=key_frame,width,height",
                 "-of", "json", str(taps / name)],
                capture_output=True, timeout=20, check=True,
            )  # fmt: skip
            found = json.loads(frames.stdout)["frames"]
            assert [(f["key_frame"], f["width"], f["height"]) for f in found] == [(1, *size)]
        assert all(p.poll() is None for p in running.processes)


def _sdp(url: str) -> str:
    """The SDP the RTSP server answers a DESCRIBE of ``url`` with (rtsp://host:port/path, no credentials)."""
    host_port = url.split("/")[2]
    host, _, port = host_port.partition(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if b"content-length" in line.lower())
        )
        while len(body) < length:
            body += sock.recv(65536)
    return body.decode()


def test_encoded_streams_behind_the_tap_keep_their_parameter_sets_in_the_sdp(
    rtsp_server: RtspServer, tmp_path: Path
) -> None:
    """Behind ffmpeg's tee muxer an encoder is not asked for global headers unless told so: the SDP then
    has no sprop-parameter-sets and readers that rely on it (-probesize 32) never start."""
    rtsp = live_rtsp(rtsp_server)
    config = small("test")
    spec = build_pipeline(config, replace(pi5(rtsp), keyframe_dir=str(tmp_path)))
    with run_pipeline(spec, tmp_path) as running:
        read_both(config, rtsp)
        for url in (read_url(config, rtsp, "127.0.0.1"), read_url(config, rtsp, "127.0.0.1", substream=True)):
            assert "sprop-parameter-sets=" in _sdp(url), running.stderr_text()
