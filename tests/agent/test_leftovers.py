"""What a SIGKILLed agent leaves behind is cleared by the next start: the simulated Pi's tree in the temp
directory, the key-frame tap's directory on the tmpfs, and the temporary file of an atomic write the kill
interrupted. Real processes, real SIGKILLs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from pi_stream_agent.fsutil import remove_write_leftovers
from pi_stream_agent.streams.keyframes import TAP_PREFIX
from tests.agent.test_cli import REPO_ROOT, RunningAgent, cli_env, start_agent, stop_agent


def start_simulating(
    tmp_path: Path, name: str, state: Path, temp: Path, env: Mapping[str, str] | None = None
) -> RunningAgent:
    return start_agent(
        "--simulate",
        "--listen",
        "127.0.0.1",
        "--port",
        "0",
        "--state-dir",
        state,
        "--no-zeroconf",
        log=tmp_path / f"{name}.log",
        state_dir=state,
        env=env if env is not None else {"TMPDIR": str(temp)},
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def trees(temp: Path) -> set[str]:
    return {path.name for path in temp.iterdir() if path.name.startswith("pi-stream-simulated-")}


def test_the_tree_of_a_killed_simulating_agent_is_removed_by_the_next_start(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    state = tmp_path / "state"
    first = start_simulating(tmp_path, "first", state, temp)
    try:
        (killed_tree,) = trees(temp)
        assert killed_tree.startswith(f"pi-stream-simulated-{first.process.pid}-")
    finally:
        kill(first.process)
    assert trees(temp) == {killed_tree}  # what a SIGKILL leaves
    # A tree whose owner still runs (this test process) is not touched.
    alive = temp / f"pi-stream-simulated-{os.getpid()}-abcdefgh"
    alive.mkdir()
    second = start_simulating(tmp_path, "second", state, temp)
    try:
        (own_tree,) = trees(temp) - {alive.name}
        assert own_tree.startswith(f"pi-stream-simulated-{second.process.pid}-")
        assert alive.is_dir()
    finally:
        assert stop_agent(second.process) == 0
    assert trees(temp) == {alive.name}  # a clean stop removes its own


# A child that starts an atomic write of state/streams.yaml.bak and is SIGKILLed before the rename: its fsync
# says when the temporary file holds the data, then waits for the kill.
_WRITER = """
import os, sys, time
from pathlib import Path
from pi_stream_agent import fsutil
def fsync(fd):
    sys.stdout.write("written\\n"); sys.stdout.flush()
    time.sleep(60)
fsutil.os.fsync = fsync
fsutil.atomic_write(Path(sys.argv[1]) / "streams.yaml.bak", b"streams: []\\n" * 1000)
"""


def test_a_write_killed_half_way_is_cleaned_up_by_the_next_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(state)], cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.PIPE
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == b"written\n"
    finally:
        kill(writer)
        if writer.stdout is not None:
            writer.stdout.close()
    (leftover,) = [path.name for path in state.iterdir()]
    assert leftover.startswith(".streams.yaml.bak.") and leftover.endswith(".tmp")
    kept = ["notes.tmp", ".streams.yaml.bak", ".streams.yaml.bak.tmp"]  # not an atomic write's temp file
    for name in kept:
        (state / name).write_text("keep\n")
    agent = start_simulating(tmp_path, "agent", state, tmp_path)
    try:
        assert not (state / leftover).exists()
        for name in kept:
            assert (state / name).read_text() == "keep\n"
    finally:
        stop_agent(agent.process)


def test_remove_write_leftovers_copes_with_a_missing_directory(tmp_path: Path) -> None:
    assert remove_write_leftovers(tmp_path / "absent") == []
    (tmp_path / ".token.abcd_123.tmp").mkdir()  # a directory of that name is not ours to delete
    assert remove_write_leftovers(tmp_path) == []
    assert (tmp_path / ".token.abcd_123.tmp").is_dir()


def tap_dirs(runtime: Path) -> set[str]:
    return {path.name for path in runtime.iterdir() if path.name.startswith(TAP_PREFIX)}


def wait_for_tap_dir(runtime: Path, pid: int) -> str:
    """The key-frame tap directory of the agent with ``pid`` (made as its streams start)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        owned = {name for name in tap_dirs(runtime) if name.startswith(f"{TAP_PREFIX}{pid}-")}
        if owned:
            (name,) = owned
            return name
        time.sleep(0.05)
    raise AssertionError(f"no key-frame tap directory of {pid} in {sorted(tap_dirs(runtime))}")


def test_the_key_frame_tap_of_a_killed_agent_is_removed_by_the_next_start(tmp_path: Path) -> None:
    # The agent puts its tap in systemd's RuntimeDirectory when it has one: a folder of this test's own.
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    state = tmp_path / "state"
    env = {"TMPDIR": str(temp), "RUNTIME_DIRECTORY": str(runtime)}
    first = start_simulating(tmp_path, "first", state, temp, env)
    try:
        killed_tap = wait_for_tap_dir(runtime, first.process.pid)
    finally:
        kill(first.process)
    assert tap_dirs(runtime) == {killed_tap}  # what a SIGKILL leaves
    alive = runtime / f"{TAP_PREFIX}{os.getpid()}-abcdefgh"  # its owner (this test) still runs
    alive.mkdir()
    someone_elses = runtime / "pi-stream-keyframes-notapid"  # not named by the rule: not ours to delete
    someone_elses.mkdir()
    second = start_simulating(tmp_path, "second", state, temp, env)
    try:
        own_tap = wait_for_tap_dir(runtime, second.process.pid)
        assert tap_dirs(runtime) == {own_tap, alive.name, someone_elses.name}
    finally:
        assert stop_agent(second.process) == 0
    assert tap_dirs(runtime) == {alive.name, someone_elses.name}  # a clean stop removes its own
