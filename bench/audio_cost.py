"""What a stream's sound costs the publisher: the ALSA input, the encoder and the level meter.

The publisher's argument lists come from the agent's builder (``build_pipeline``), without sound, with AAC
and with Opus (mono, 48 kHz, 64 kbit/s, the level meter always on), run alternately ``--rounds`` times for
``--seconds`` into the patched rtsp-server-perl over UDP. The CPU (utime + stime from /proc) of the ffmpeg
that publishes is divided by the wall time. Here the capture stand-in (tests/agent/bin/capture/ffmpeg)
replaces ``-f alsa`` by ffmpeg's ``sine`` source, which costs a little more than reading ALSA periods would:
the numbers are an upper bound for the sound's share.

* ``csi_relay_1080p30``: the Pi 0-4 camera path, where the relay ffmpeg only copies the video: the sound is
  nearly all the work it then does (the rpicam-vid stand-in encodes the video in a process not counted).
* ``test_480p15``: a 640x480 15 fps test pattern encoded by the publisher's libx264.

    /usr/bin/python3 -m bench.audio_cost [--seconds 15] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import (
    REPO_ROOT,
    STREAM_STANDINS,
    add_json_argument,
    chained_processes,
    own_cpu_seconds,
    write_json,
)
from bench.streams_common import load_average, rtsp_server, workdir
from bench.tap_cost import CASES
from pi_stream_agent.streams.audio import AudioConfig, AudioInput
from pi_stream_agent.streams.model import PublishEnvironment, RtspSettings, StreamConfig
from pi_stream_agent.streams.pipelines import build_pipeline

STANDINS = [REPO_ROOT / "tests/agent/bin/capture", STREAM_STANDINS]
VARIANTS: dict[str, AudioInput | None] = {
    "video_only": None,
    "aac": AudioInput("alsa-bench", "hw:CARD=MS2109,DEV=0", AudioConfig(device="auto", codec="aac")),
    "opus": AudioInput("alsa-bench", "hw:CARD=MS2109,DEV=0", AudioConfig(device="auto", codec="opus")),
}


def run_once(config: StreamConfig, env: PublishEnvironment, seconds: float) -> dict[str, Any]:
    spec = build_pipeline(config, env)
    with chained_processes([process.argv for process in spec.processes], STANDINS) as procs:
        time.sleep(3.0)  # start-up is not the steady cost
        publisher = procs[-1]
        if publisher.poll() is not None:
            raise RuntimeError(f"{spec.processes[-1].name} exited with {publisher.returncode}")
        before, started = own_cpu_seconds(publisher.pid), time.monotonic()
        time.sleep(seconds)
        used, wall = own_cpu_seconds(publisher.pid) - before, time.monotonic() - started
        return {"cpu_percent": round(used / wall * 100, 2), "cpu_s": round(used, 2), "wall_s": round(wall, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    load_before = load_average()
    results: dict[str, Any] = {}
    with workdir("pi-stream-bench-audio-") as tmp, rtsp_server(Path(tmp)) as server:
        rtsp = RtspSettings(
            publish_url=server.publish_base, read_url=server.read_base, publish_transport="udp"
        )
        for name, (config, hardware) in CASES.items():
            base = PublishEnvironment(rtsp=rtsp, hardware_h264_encoder=hardware, soc="BCM2711")
            runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
            for _ in range(args.rounds):
                for variant, audio in VARIANTS.items():
                    runs[variant].append(run_once(config, replace(base, audio=audio), args.seconds))
                    print(f"  {name} {variant}: {runs[variant][-1]['cpu_percent']} %", flush=True)
            mean = {k: round(sum(r["cpu_percent"] for r in v) / len(v), 2) for k, v in runs.items()}
            results[name] = {"runs": runs, "mean_cpu_percent": mean}
    output = {
        "command": "python3 -m bench.audio_cost " + " ".join(argv if argv is not None else sys.argv[1:]),
        "load_average_before_after": [load_before, load_average()],
        "results": results,
    }
    print("== publisher ffmpeg CPU: video only / with AAC / with Opus (sound + level meter; mean of rounds)")
    for name, result in results.items():
        mean = result["mean_cpu_percent"]
        print(f"  {name:<20} {mean['video_only']:6.2f} % / {mean['aac']:6.2f} % / {mean['opus']:6.2f} %")
    write_json(args.json, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
