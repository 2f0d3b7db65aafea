"""The cost of each CSI pipeline, split by process: CPU (% of one core), RSS and PSS of the camera program
and of the publishing ffmpeg, per resolution and bitrate.

The argument lists are the agent's own (``build_pipeline``); ``rpicam-vid`` is the tests' stand-in
(``tests/agent/bin/streams``: ffmpeg's test source encoded by libx264, or raw I420 frames), so its figures
are the stand-in's, **not** a Pi camera's: on a Pi the camera program is rpicam-vid with the VideoCore
(hardware) or only the ISP (software path). The publishing ffmpeg is what the agent adds, and runs as on a
Pi. Publishing goes to the tests' RTSP server (UDP) on loopback.

Cases: ``csi_hw`` (rpicam-vid's H.264 copied by the relay), ``csi_sw`` (raw frames → libx264, the Pi 5
path), ``csi_sw_sub`` (the same with a 640x360 substream: one decode shared, a second encode),
``card_mjpeg_sw`` (a capture card's MJPEG → decode → libx264) and ``card_mjpeg_copy`` (MJPEG passed
through); the card's MJPEG comes from a stand-in on a pipe (:func:`card_argvs`).

    /usr/bin/python3 -m bench.pipeline_cost [--seconds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import (
    add_json_argument,
    chained_processes,
    memory,
    own_cpu_seconds,
    write_json,
)
from bench.streams_common import load_average, rtsp_server, workdir
from pi_stream_agent.streams.model import (
    PublishEnvironment,
    RtspSettings,
    SourceConfig,
    StreamConfig,
    SubstreamConfig,
)
from pi_stream_agent.streams.pipelines import build_pipeline

SIZES = ((640, 480), (1280, 720), (1920, 1080))
FPS = 30.0
# (case, hardware encoder, bitrates in Mbit/s, substream)
CASES: tuple[tuple[str, bool, tuple[int, ...], bool], ...] = (
    ("csi_hw", True, (1, 4, 8), False),
    ("csi_sw", False, (1, 4), False),
    ("csi_sw_sub", False, (4,), True),
    ("card_mjpeg_sw", False, (1, 4), False),
    ("card_mjpeg_copy", False, (4,), False),
)
DEVICE = "/dev/video0"


def card_argvs(argv: list[str], width: int, height: int) -> tuple[list[str], list[str]]:
    """A capture card's MJPEG from a pipe instead of a V4L2 device: a stand-in card (ffmpeg's test source
    encoded to MJPEG in real time) and the agent's V4L2 publisher with its ``-f v4l2 … -i <device>`` input
    replaced by ``-f mjpeg -i pipe:0`` (timestamps from the wall clock, as the v4l2 input gives them)."""
    card = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
            f"testsrc2=size={width}x{height}:rate={FPS:g}", "-c:v", "mjpeg", "-q:v", "5", "-f", "mjpeg",
            "pipe:1"]  # fmt: skip
    start, end = argv.index("v4l2") - 1, argv.index(DEVICE) + 1
    publisher = [*argv[:start], "-f", "mjpeg", "-framerate", f"{FPS:g}", "-use_wallclock_as_timestamps", "1",
                 "-i", "pipe:0", *argv[end:]]  # fmt: skip
    return card, publisher


def run_once(config: StreamConfig, env: PublishEnvironment, seconds: float) -> dict[str, Any]:
    spec = build_pipeline(config, env)
    argvs = [(process.name, list(process.argv)) for process in spec.processes]
    if config.source.kind == "v4l2":
        card, publisher = card_argvs(argvs[-1][1], config.width, config.height)
        argvs = [("card stand-in", card), ("ffmpeg", publisher)]
    with chained_processes([argv for _, argv in argvs]) as procs:
        time.sleep(3.0)  # start-up (probing) is not the steady cost
        for proc, (name, _) in zip(procs, argvs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
        before, started = [own_cpu_seconds(p.pid) for p in procs], time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - started
        result: dict[str, Any] = {}
        for proc, (name, _), cpu0 in zip(procs, argvs, before, strict=True):
            # The stand-in rpicam-vid becomes its ffmpeg (os.execvp): the same pid is the whole camera.
            mem = memory(proc.pid).to_json()
            result["camera" if name != "ffmpeg" else "ffmpeg"] = {
                "cpu_percent": round((own_cpu_seconds(proc.pid) - cpu0) / wall * 100, 2),
                "rss_kib": mem["rss"],
                "pss_kib": mem["pss"],
            }
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--cases", default=",".join(case for case, *_ in CASES))
    add_json_argument(parser)
    args = parser.parse_args(argv)
    load_before = load_average()
    rows: list[dict[str, Any]] = []
    with workdir("pi-stream-bench-pipecost-") as tmp, rtsp_server(Path(tmp)) as server:
        rtsp = RtspSettings(
            publish_url=server.publish_base, read_url=server.read_base, publish_transport="udp"
        )
        for case, hardware, rates, with_sub in (c for c in CASES if c[0] in args.cases.split(",")):
            env = PublishEnvironment(
                rtsp=rtsp, hardware_h264_encoder=hardware, soc="BCM2711" if hardware else "BCM2712"
            )
            for width, height in SIZES:
                for mbit in rates:
                    sub = SubstreamConfig(640, 360, 15.0, 500_000, "cost_sub") if with_sub else None
                    card = case.startswith("card")
                    source = (
                        SourceConfig(kind="v4l2", device=DEVICE, input_format="mjpeg")
                        if card
                        else SourceConfig(kind="csi")
                    )
                    encoder = "copy" if case.endswith("copy") else "hardware" if hardware else "software"
                    config = StreamConfig(
                        id="cost", source=source, width=width, height=height, fps=FPS,
                        bitrate=mbit * 1_000_000, rtsp_path="cost", substream=sub, encoder=encoder,
                    )  # fmt: skip
                    env = replace(env, device_path=DEVICE if card else None)
                    try:
                        processes = run_once(config, env, args.seconds)
                    except RuntimeError as err:
                        processes = {"error": str(err)}
                    row = {"case": case, "size": f"{width}x{height}", "fps": FPS, "mbit_s": mbit,
                           "processes": processes, "load": load_average()}  # fmt: skip
                    rows.append(row)
                    print(f"  {case} {width}x{height} {mbit} Mbit/s: {processes}", flush=True)
    write_json(args.json, {
        "command": "python3 -m bench.pipeline_cost " + " ".join(argv if argv is not None else sys.argv[1:]),
        "load_average_before_after": [load_before, load_average()],
        "rows": rows,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
