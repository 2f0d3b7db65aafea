"""Glass-to-glass frame age: from a frame entering the publisher to the same frame decoded by an RTSP reader.

The stand-in camera is this script: it makes 640x480 frames at 15 fps and stamps each one with its
capture time (``time.time()`` in ms, 48 bits, plus 16 check bits) as a row of black/white 16x16 blocks,
then writes it the moment the stamp is taken. The reader is a low-latency ffmpeg
(``-fflags nobuffer -flags low_delay -probesize 32``, UDP) decoding the published stream to grey frames on
its stdout; this script reads the stamp back and subtracts it from the time the frame arrived. Every
process runs on this machine, so both times come from one clock.

Paths (the publisher's argument lists come from the agent's own ``build_pipeline``):

* ``csi``: stand-in camera → ffmpeg libx264 ``ultrafast``/``zerolatency`` to raw H.264 (in place of
  rpicam-vid + the VideoCore encoder) → the agent's relay ffmpeg (``-f h264 -i pipe:0 -c:v copy``) → RTSP
  server → reader.
* ``direct`` (the baseline): stand-in camera → the same stand-in encoder → the reader's decoder on a pipe,
  no relay, no RTSP: what the stand-in camera, its encoder and the reader's decode cost by themselves.
* ``card``: stand-in camera → ffmpeg MJPEG encoder (in place of a UVC card's MJPEG) → the agent's V4L2
  publisher with its ``-f v4l2 … -i /dev/videoN`` input replaced by ``-f mjpeg -i pipe:0`` → libx264 →
  RTSP server → reader.

The RTSP server is the tests' patched rtsp-server-perl (UDP; MediaMTX is not installable here).

    /usr/bin/python3 -m bench.glass_latency [--seconds 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import add_json_argument, percentile, write_json
from bench.streams_common import load_average, rtsp_server, workdir
from pi_stream_agent.streams.model import PublishEnvironment, RtspSettings, SourceConfig, StreamConfig
from pi_stream_agent.streams.pipelines import build_pipeline
from pi_stream_agent.streams.urls import read_url

WIDTH, HEIGHT = 640, 480
BLOCK = 16
BITS = 64  # 48 bits of milliseconds + 16 check bits (the low 16 bits inverted)
PER_ROW = WIDTH // BLOCK  # 40 blocks a row


def stamp_frame(ms: int) -> bytes:
    """A yuv420p frame: mid-grey, with ``ms`` in black/white blocks at the top (luma only; chroma neutral)."""
    value = (ms & 0xFFFF_FFFF_FFFF) | ((~ms & 0xFFFF) << 48)
    luma = bytearray(b"\x80" * (WIDTH * HEIGHT))
    for bit in range(BITS):
        on = (value >> bit) & 1
        bx, by = (bit % PER_ROW) * BLOCK, (bit // PER_ROW) * BLOCK
        row = (b"\xeb" if on else b"\x10") * BLOCK
        for y in range(by, by + BLOCK):
            luma[y * WIDTH + bx : y * WIDTH + bx + BLOCK] = row
    return bytes(luma) + b"\x80" * (WIDTH * HEIGHT // 2)


def read_stamp(grey: bytes) -> int | None:
    """The ms stamp of a decoded grey frame, None if the check bits do not match."""
    value = 0
    for bit in range(BITS):
        bx, by = (bit % PER_ROW) * BLOCK + BLOCK // 2, (bit // PER_ROW) * BLOCK + BLOCK // 2
        if grey[by * WIDTH + bx] > 128:
            value |= 1 << bit
    ms = value & 0xFFFF_FFFF_FFFF
    return ms if (value >> 48) == (~ms & 0xFFFF) else None


def camera(out: Any, stop: threading.Event, fps: int) -> None:
    """Write stamped frames at ``fps``, each stamped the moment before it is written."""
    period = 1.0 / fps
    next_at = time.monotonic()
    with contextlib.suppress(BrokenPipeError, OSError):
        while not stop.is_set():
            out.write(stamp_frame(int(time.time() * 1000)))
            out.flush()
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))


def source_encoder(kind: str, fps: int) -> list[str]:
    raw_in = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt",
        "yuv420p", "-video_size", f"{WIDTH}x{HEIGHT}", "-framerate", str(fps), "-i", "pipe:0",
    ]  # fmt: skip
    if kind == "framed":  # the same H.264 in a container that frames each packet (NUT): no parser wait
        return [
            *raw_in, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(fps),
            "-bsf:v", "dump_extra=freq=keyframe", "-flush_packets", "1", "-f", "nut", "pipe:1",
        ]  # fmt: skip
    if kind == "csi":
        # What rpicam-vid --codec h264 --inline --flush writes: Annex-B H.264, no B-frames, 1 s GOP.
        return [
            *raw_in, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(fps),
            "-bsf:v", "dump_extra=freq=keyframe", "-flush_packets", "1", "-f", "h264", "pipe:1",
        ]  # fmt: skip
    return [*raw_in, "-c:v", "mjpeg", "-q:v", "5", "-flush_packets", "1", "-f", "mjpeg", "pipe:1"]


def publisher(
    kind: str, rtsp: RtspSettings, keyframe_dir: str | None, fps: int
) -> tuple[list[str], StreamConfig]:
    if kind in ("csi", "relay", "framed"):
        config = StreamConfig(id="g2g", source=SourceConfig(kind="csi"), width=WIDTH, height=HEIGHT,
                              fps=float(fps), bitrate=1_000_000, rtsp_path="g2g")  # fmt: skip
        env = PublishEnvironment(
            rtsp=rtsp, hardware_h264_encoder=True, soc="BCM2711", keyframe_dir=keyframe_dir
        )
        argv = list(build_pipeline(config, env).processes[-1].argv)
        if kind == "framed":  # the relay reading framed packets instead of an Annex-B byte stream
            start = argv.index("-f", argv.index("-progress"))
            argv[start : argv.index("-i", start)] = ["-f", "nut"]
        if kind in ("relay", "framed"):  # the same relay, its RTSP output replaced by H.264 on its stdout
            argv[argv.index("-f", argv.index("pipe:0")) :] = ["-f", "h264", "pipe:1"]
            progress = argv.index("-progress")  # its progress blocks would mix into the video on stdout
            del argv[progress : progress + 2]
        return argv, config
    device = "/dev/video0"
    config = StreamConfig(
        id="g2g", source=SourceConfig(kind="v4l2", device=device, input_format="mjpeg"), width=WIDTH,
        height=HEIGHT, fps=float(fps), bitrate=1_000_000, rtsp_path="g2g", encoder="software",
    )  # fmt: skip
    env = PublishEnvironment(rtsp=rtsp, hardware_h264_encoder=False, soc="BCM2712", device_path=device,
                             keyframe_dir=keyframe_dir)  # fmt: skip
    argv = list(build_pipeline(config, env).processes[-1].argv)
    start, end = argv.index("v4l2") - 1, argv.index(device) + 1
    # The card's frames come from the pipe; timestamps as the v4l2 input gives them: arrival wall clock.
    argv[start:end] = [
        "-f",
        "mjpeg",
        "-framerate",
        str(fps),
        "-use_wallclock_as_timestamps",
        "1",
        "-i",
        "pipe:0",
    ]
    return argv, config


def reader_argv(url: str) -> list[str]:
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-fflags", "nobuffer", "-flags",
            "low_delay", "-rtsp_transport", "udp", "-probesize", "32", "-i", url, "-an", "-f", "rawvideo",
            "-pix_fmt", "gray", "pipe:1"]  # fmt: skip


def direct_reader_argv() -> list[str]:
    return ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-fflags", "nobuffer", "-flags",
            "low_delay", "-probesize", "32", "-f", "h264", "-i", "pipe:0", "-an", "-f", "rawvideo",
            "-pix_fmt", "gray", "pipe:1"]  # fmt: skip


def measure(
    kind: str, seconds: float, rtsp: RtspSettings, keyframe_dir: str | None, fps: int
) -> dict[str, Any]:
    direct = kind == "direct"  # the stand-in camera and encoder straight into the reader: the baseline
    piped = kind in ("relay", "framed")  # the relay's output read from its stdout: no RTSP server, no RTP
    argv, config = publisher("csi" if direct else kind, rtsp, keyframe_dir, fps)
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    ages: list[float] = []
    bad = 0
    try:
        source = "csi" if direct or kind == "relay" else kind
        enc = subprocess.Popen(source_encoder(source, fps), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               start_new_session=True)  # fmt: skip
        procs.append(enc)
        assert enc.stdout is not None and enc.stdin is not None
        if direct:
            reader = subprocess.Popen(direct_reader_argv(), stdin=enc.stdout, stdout=subprocess.PIPE,
                                      start_new_session=True)  # fmt: skip
            enc.stdout.close()
            cam = threading.Thread(target=camera, args=(enc.stdin, stop, fps), daemon=True)
            cam.start()
        elif piped:
            pub = subprocess.Popen(argv, stdin=enc.stdout, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
            procs.append(pub)
            enc.stdout.close()
            assert pub.stdout is not None
            reader = subprocess.Popen(direct_reader_argv(), stdin=pub.stdout, stdout=subprocess.PIPE,
                                      start_new_session=True)  # fmt: skip
            pub.stdout.close()
            cam = threading.Thread(target=camera, args=(enc.stdin, stop, fps), daemon=True)
            cam.start()
        else:
            pub = subprocess.Popen(argv, stdin=enc.stdout, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
            procs.append(pub)
            enc.stdout.close()
            cam = threading.Thread(target=camera, args=(enc.stdin, stop, fps), daemon=True)
            cam.start()
            time.sleep(2.0)
            url = read_url(config, rtsp, "127.0.0.1")
            reader = subprocess.Popen(reader_argv(url), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                      start_new_session=True)  # fmt: skip
        procs.append(reader)
        assert reader.stdout is not None
        size = WIDTH * HEIGHT
        warmup_until = time.monotonic() + 2.0
        end = time.monotonic() + seconds + 2.0
        while time.monotonic() < end:
            frame = reader.stdout.read(size)
            arrived = time.time()
            if len(frame) < size:
                raise RuntimeError(f"{kind}: the reader stopped")
            stamp = read_stamp(frame)
            if stamp is None:
                bad += 1
            elif time.monotonic() > warmup_until:
                ages.append(arrived - stamp / 1000)
    finally:
        stop.set()
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return {
        "frames": len(ages),
        "unreadable_stamps": bad,
        "p50_ms": round(percentile(ages, 50) * 1000, 1),
        "p95_ms": round(percentile(ages, 95) * 1000, 1),
        "min_ms": round(min(ages) * 1000, 1),
        "max_ms": round(max(ages) * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--paths", default="csi,card", help="of direct, relay, framed, csi, card")
    parser.add_argument("--fps", type=int, default=15, help="the stand-in camera's frame rate")
    parser.add_argument("--reverse", action="store_true", help="run without the tap first")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    load_before = load_average()
    results: dict[str, Any] = {}
    with workdir("pi-stream-bench-g2g-") as tmp, rtsp_server(Path(tmp)) as server:
        rtsp = RtspSettings(publish_url=server.publish_base, read_url=server.read_base,
                            publish_transport="udp", read_transport="udp")  # fmt: skip
        taps = Path(tmp) / "taps"
        taps.mkdir()
        for kind in args.paths.split(","):
            variants = (("with_tap", str(taps)), ("without_tap", None))
            if kind in ("direct", "relay", "framed"):
                variants = (("no_publisher" if kind == "direct" else "no_rtsp", None),)
            for label, tap in variants if not args.reverse else variants[::-1]:
                result = measure(kind, args.seconds, rtsp, tap, args.fps)
                results[f"{kind}_{label}"] = result
                print(
                    f"  {kind} {label}: p50 {result['p50_ms']} ms p95 {result['p95_ms']} ms "
                    f"(n={result['frames']}, unreadable {result['unreadable_stamps']})",
                    flush=True,
                )
    output = {
        "command": "python3 -m bench.glass_latency " + " ".join(argv if argv is not None else sys.argv[1:]),
        "frame": {"width": WIDTH, "height": HEIGHT, "fps": args.fps},
        "load_average_before_after": [load_before, load_average()],
        "results": results,
    }
    write_json(args.json, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
