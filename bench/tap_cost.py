"""What the key-frame tap costs the publisher when nobody asks for a snapshot.

The publisher's argument lists come from the agent's own builder (``build_pipeline``), once without a
tap directory and once with one (a tmpfs directory, as the agent uses), and run alternately, ``--rounds``
times each for ``--seconds``, into the patched rtsp-server-perl over UDP. The CPU (utime + stime from
/proc) of the process that carries the tap — the ffmpeg — is divided by the wall time:

* ``csi_relay_1080p30``: the CSI hardware path at 1920x1080 30 fps 8 Mbit/s: the rpicam-vid stand-in
  (tests/agent/bin/streams/rpicam-vid, libx264 here in place of the VideoCore) piped into the relay ffmpeg
  that only copies; the relay is where a tap would show most, as it does little else.
* ``test_480p15``: a 640x480 15 fps 1 Mbit/s test pattern encoded by the publisher's libx264.

    /usr/bin/python3 -m bench.tap_cost [--seconds 15] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.common import (
    add_json_argument,
    chained_processes,
    own_cpu_seconds,
    write_json,
)
from bench.streams_common import load_average, rtsp_server, workdir
from pi_stream_agent.streams.keyframes import make_tap_dir, remove_tap_dir
from pi_stream_agent.streams.model import (
    PublishEnvironment,
    RtspSettings,
    SourceConfig,
    StreamConfig,
)
from pi_stream_agent.streams.pipelines import build_pipeline

CASES: dict[str, tuple[StreamConfig, bool]] = {
    "csi_relay_1080p30": (
        StreamConfig(
            id="csi",
            source=SourceConfig(kind="csi"),
            width=1920,
            height=1080,
            fps=30.0,
            bitrate=8_000_000,
            rtsp_path="csi",
        ),
        True,
    ),
    "test_480p15": (
        StreamConfig(
            id="test",
            source=SourceConfig(kind="test"),
            width=640,
            height=480,
            fps=15.0,
            bitrate=1_000_000,
            rtsp_path="test",
        ),
        False,
    ),
}


def run_once(config: StreamConfig, hardware: bool, env: PublishEnvironment, seconds: float) -> dict[str, Any]:
    spec = build_pipeline(config, env)
    with chained_processes([process.argv for process in spec.processes]) as procs:
        time.sleep(3.0)  # start-up (stand-in, probing) is not the steady cost
        relay = procs[-1]
        if relay.poll() is not None:
            raise RuntimeError(f"{spec.processes[-1].name} exited with {relay.returncode}")
        before, started = own_cpu_seconds(relay.pid), time.monotonic()
        time.sleep(seconds)
        used, wall = own_cpu_seconds(relay.pid) - before, time.monotonic() - started
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
    tap_dir = make_tap_dir()
    try:
        with workdir("pi-stream-bench-tapcost-") as tmp, rtsp_server(Path(tmp)) as server:
            rtsp = RtspSettings(
                publish_url=server.publish_base, read_url=server.read_base, publish_transport="udp"
            )
            for name, (config, hardware) in CASES.items():
                base = PublishEnvironment(rtsp=rtsp, hardware_h264_encoder=hardware, soc="BCM2711")
                runs: dict[str, list[dict[str, Any]]] = {"without_tap": [], "with_tap": []}
                for _ in range(args.rounds):
                    for variant, env in (
                        ("without_tap", base),
                        ("with_tap", replace(base, keyframe_dir=tap_dir)),
                    ):
                        runs[variant].append(run_once(config, hardware, env, args.seconds))
                        print(f"  {name} {variant}: {runs[variant][-1]['cpu_percent']} %", flush=True)
                mean = {k: round(sum(r["cpu_percent"] for r in v) / len(v), 2) for k, v in runs.items()}
                results[name] = {"runs": runs, "mean_cpu_percent": mean}
    finally:
        remove_tap_dir(tap_dir)
    output = {
        "command": "python3 -m bench.tap_cost " + " ".join(argv if argv is not None else sys.argv[1:]),
        "load_average_before_after": [load_before, load_average()],
        "tmp": tempfile.gettempdir(),
        "results": results,
    }
    print("== publisher ffmpeg CPU without / with the key-frame tap (mean of rounds)")
    for name, result in results.items():
        mean = result["mean_cpu_percent"]
        print(f"  {name:<20} {mean['without_tap']:6.2f} % / {mean['with_tap']:6.2f} %")
    write_json(args.json, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
