"""The installed package's ``pi-stream-agent sample --root`` over the Pi 3B+ fixture tree (pi_trees.py).

Run inside a deb-check chroot: the tree is built with the repository's test helpers (/ci/src), but the
command is /usr/bin/pi-stream-agent, i.e. the agent from the package's dist-packages, run by this
architecture's python3 (under qemu for armhf/arm64). Checks the values whose parsing depends on word size:
64-bit byte counts (memory, CMA, DMA-buf), the 32-bit throttle word, clock rates above 2**31, counters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, "/ci/src")

from tests.agent.helpers import FixtureTree
from tests.agent.pi_trees import build_pi3bplus_tree, install_vcgencmd

KIB = 1024


def main() -> int:
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp) / "root"
        base.mkdir()
        answers = build_pi3bplus_tree(FixtureTree(base))
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        env.update(install_vcgencmd(Path(temp) / "bin", answers))
        done = subprocess.run(
            ["/usr/bin/pi-stream-agent", "sample", "--root", str(base)],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            check=False,
            timeout=300,
        )
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return 1
    sample = json.loads(done.stdout)
    found = {
        "board.model": sample["board"]["model"],
        "board.memory_bytes": sample["board"]["memory_bytes"],
        "cma": (sample["cma"]["total_bytes"], sample["cma"]["free_bytes"]),
        "memory.total_bytes": sample["memory"]["total_bytes"],
        "dmabuf.total_bytes": sample["dmabuf"]["total_bytes"],
        "throttle.raw": sample["throttle"]["raw"],
        "arm_clock_hz": sample["arm_clock_hz"],
        "network.eth0.rx_drops_total": sample["network"]["eth0"]["rx_drops_total"],
        "wifi.wlan0.signal_dbm": sample["wifi"]["wlan0"]["signal_dbm"],
        "power.under_voltage_episodes": sample["power"]["under_voltage_episodes"],
    }
    expected = {
        "board.model": "Raspberry Pi 3 Model B Plus Rev 1.3",
        "board.memory_bytes": 1024 * 1024 * KIB,
        "cma": (262144 * KIB, 194896 * KIB),
        "memory.total_bytes": 929100 * KIB,
        "dmabuf.total_bytes": 33177600,
        "throttle.raw": 0x50005,
        "arm_clock_hz": 1_400_000_000,
        "network.eth0.rx_drops_total": 15408,
        "wifi.wlan0.signal_dbm": -58,
        "power.under_voltage_episodes": 1,
    }
    wrong = {key: (found[key], expected[key]) for key in expected if found[key] != expected[key]}
    if wrong:
        print(f"installed sample differs (found, expected): {wrong}", file=sys.stderr)
        return 1
    print(f"installed sample --root on the Pi 3B+ tree: {len(expected)} values as captured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
