"""The command line, run for real: ``python -m pi_stream_agent …`` as a subprocess of this interpreter.

Covers the CLI contract (DESIGN.md "Agent CLI"): ``sample --root`` on a whole-Pi fixture tree and on an
empty one, ``devices --root``, ``token``, ``check-config``/``run`` with broken configuration files (exit 2, a
message naming the file, the key path and what is wrong, never a traceback) and ``run`` started and stopped
by SIGTERM. Helpers at the top are shared with test_zeroconf.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent import API_VERSION, __version__
from tests.agent.helpers import REPO_ROOT, FixtureTree, fixture_text
from tests.agent.pi_trees import (
    build_pi3bplus_tree,
    build_pi4_with_card,
    install_standins,
    install_vcgencmd,
)

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
CLI_TIMEOUT_S = 60.0
LISTENING = re.compile(r"listening on (\S+):(\d+) ")


# --- helpers (also used by test_zeroconf.py) ----------------------------------------------------------------


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without the stand-ins' variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VCGENCMD_", "RPICAM_"))}
    env.pop("V4L2_CTL_STANDIN_DIR", None)
    env.update(extra or {})
    return env


def run_cli(
    *args: str | Path,
    env: Mapping[str, str] | None = None,
    prelude: str | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """``python -m pi_stream_agent ARGS`` in the repository, to completion. ``prelude``: Python run first
    in the child (``-c``), e.g. to replace the network part of zeroconf; ``prefix``: a command that runs
    it (``setpriv …``). Fails the test on a traceback."""
    done = subprocess.run(
        [*prefix, *_command(args, prelude)],
        cwd=REPO_ROOT,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _command(args: Sequence[str | Path], prelude: str | None) -> list[str]:
    strings = [str(arg) for arg in args]
    if prelude is None:
        return [sys.executable, "-m", "pi_stream_agent", *strings]
    code = f"{prelude}\nimport sys\nfrom pi_stream_agent.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return [sys.executable, "-c", code, *strings]


@dataclass
class RunningAgent:
    """A ``run`` subprocess, its log file and where it listens."""

    process: subprocess.Popen[bytes]
    log: Path
    host: str
    port: int

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def start_agent(
    *args: str | Path,
    log: Path,
    state_dir: Path,
    env: Mapping[str, str] | None = None,
    prelude: str | None = None,
    within_s: float = 30.0,
) -> RunningAgent:
    """Start ``run ARGS`` and wait until it is serving: the token file exists, the log says
    ``listening on HOST:PORT`` and that port answers an unauthenticated request with 401."""
    with log.open("wb") as handle:
        process = subprocess.Popen(
            _command(["run", *args], prelude),
            cwd=REPO_ROOT,
            env=cli_env(env),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + within_s
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"agent exited with {process.returncode}:\n{log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"agent did not start within {within_s} s:\n{log.read_text(errors='replace')}")
            match = LISTENING.search(log.read_text(encoding="utf-8", errors="replace"))
            if match and (state_dir / "token").exists():
                agent = RunningAgent(process, log, match.group(1), int(match.group(2)))
                if http_status(agent.url("/api/v1/info")) == 401:
                    return agent
            time.sleep(0.05)
    except BaseException:
        stop_agent(process)
        raise


def stop_agent(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> int:
    """SIGTERM, then the exit status; SIGKILL (and a test failure) if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"agent did not stop within {timeout_s} s of SIGTERM")


def http_status(url: str, token: str | None = None) -> int | None:
    """The HTTP status of a GET (None when nothing answers)."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def http_json(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        data: dict[str, Any] = json.load(response)
    return data


# --- sample -------------------------------------------------------------------------------------------------

THROTTLE_FLAGS = ("under_voltage", "freq_capped", "throttled", "soft_temp_limit")
# The telemetry keys the integration relies on (docs/api.md), as dotted paths; "<wifi>" is each interface.
CONTRACT_KEYS = (
    "board.model",
    "board.revision",
    "board.memory_bytes",
    "cma.total_bytes",
    "cma.free_bytes",
    "dmabuf.total_bytes",
    "dmabuf.buffers",
    "dmabuf.by_exporter",
    "throttle.raw",
    *(f"throttle.{flag}" for flag in THROTTLE_FLAGS),
    *(f"throttle.{flag}_occurred" for flag in THROTTLE_FLAGS),
    "soc_temperature_c",
    "core_voltage_v",
    "h264_clock_hz",
    "arm_clock_hz",
    "memory.total_bytes",
    "memory.available_bytes",
    "swap.total_bytes",
    "swap.free_bytes",
)
WIFI_KEYS = ("signal_dbm", "link_quality")
KIB = 1024


def lookup(sample: dict[str, Any], dotted: str) -> Any:
    """``sample["cma"]["total_bytes"]`` for ``"cma.total_bytes"``; KeyError names the missing part."""
    value: Any = sample
    for part in dotted.split("."):
        assert isinstance(value, dict), f"{dotted}: {part!r} is below a {type(value).__name__}"
        if part not in value:
            raise KeyError(f"{dotted}: no {part!r}")
        value = value[part]
    return value


def reason_for(unavailable: dict[str, str], dotted: str) -> str | None:
    """The recorded reason for ``dotted`` or for the section holding it (``throttle`` covers
    ``throttle.raw``)."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        reason = unavailable.get(".".join(parts[:end]))
        if reason:
            return reason
    return None


@pytest.fixture
def pi3bplus(tree: FixtureTree, tmp_path: Path) -> dict[str, str]:
    """The 3B+ tree, and the environment that puts the stand-in vcgencmd (with the 3B+ answers) first on
    PATH; its calls are logged to ``VCGENCMD_LOG``."""
    answers = build_pi3bplus_tree(tree)
    env = install_vcgencmd(tmp_path / "bin", answers)
    env["VCGENCMD_LOG"] = str(tmp_path / "vcgencmd.log")
    return env


def test_sample_on_the_pi3bplus_tree_prints_every_value_of_the_captures(
    tree: FixtureTree, pi3bplus: dict[str, str]
) -> None:
    done = run_cli("sample", "--root", tree.base, env=pi3bplus)
    assert done.returncode == EXIT_OK, done.stderr
    sample = json.loads(done.stdout)
    for key in CONTRACT_KEYS:
        lookup(sample, key)  # every contract key is there
    for key in WIFI_KEYS:
        lookup(sample, f"wifi.wlan0.{key}")

    # cpuinfo/pi3bplus_arm64_a020d3.txt and the device-tree model capture.
    assert sample["board"]["model"] == "Raspberry Pi 3 Model B Plus Rev 1.3"
    assert sample["board"]["revision"] == "a020d3"
    assert sample["board"]["memory_bytes"] == 1024 * 1024 * KIB  # a020d3: memory field 2 = 1 GB
    assert (sample["board"]["type"], sample["board"]["soc"]) == ("3B+", "BCM2837")
    assert sample["board"]["kernel"] == "6.6.31+rpt-rpi-v8"
    # meminfo/pi3bplus_6.6.31_gfons.txt: CmaTotal 262144 kB, CmaFree 194896 kB, MemTotal 929100 kB,
    # MemAvailable 525648 kB, SwapTotal 204796 kB, SwapFree 203772 kB.
    assert (sample["cma"]["total_bytes"], sample["cma"]["free_bytes"]) == (262144 * KIB, 194896 * KIB)
    assert sample["memory"]["total_bytes"] == 929100 * KIB
    assert sample["memory"]["available_bytes"] == 525648 * KIB
    assert (sample["swap"]["total_bytes"], sample["swap"]["free_bytes"]) == (204796 * KIB, 203772 * KIB)
    # bufinfo (firmware#1345): "Total 4 objects, 33177600 bytes", all exported by drm.
    assert sample["dmabuf"]["total_bytes"] == 33177600
    assert sample["dmabuf"]["buffers"] == 4
    assert sample["dmabuf"]["by_exporter"] == {"drm": 33177600}
    # throttled=0x50005: under-voltage and throttled now (bits 0, 2), and both have occurred (16, 18).
    throttle = sample["throttle"]
    assert throttle["raw"] == 0x50005
    assert [throttle[flag] for flag in THROTTLE_FLAGS] == [True, False, True, False]
    assert [throttle[f"{flag}_occurred"] for flag in THROTTLE_FLAGS] == [True, False, True, False]
    assert throttle["source"] == "vcgencmd"
    # temp=50.5'C, volt=1.2000V, frequency(28)=300000000, frequency(45)=1400000000.
    assert sample["soc_temperature_c"] == 50.5
    assert sample["core_voltage_v"] == 1.2
    assert sample["h264_clock_hz"] == 300_000_000
    assert sample["arm_clock_hz"] == 1_400_000_000
    # proc_net_wireless_hankb_testdata.txt: "wlan0: 0000   52.  -58.  -256 … 1122 …".
    wlan0 = sample["wifi"]["wlan0"]
    assert (wlan0["signal_dbm"], wlan0["link_quality"], wlan0["retries_total"]) == (-58, 52, 1122)
    # proc_net_dev (weechat#229): eth0 with 15408 receive drops; lo is left out.
    assert list(sample["network"]) == ["eth0"]
    assert sample["network"]["eth0"]["rx_drops_total"] == 15408
    # The captured "Under-voltage detected!" line is one episode; the hwmon alarm (0) says it is over.
    power = sample["power"]
    assert (power["under_voltage_episodes"], power["under_voltage_now"]) == (1, False)
    assert power["sources"] == ["hwmon", "kmsg"]

    unavailable = sample["unavailable"]
    assert not [key for key in CONTRACT_KEYS if reason_for(unavailable, key)], unavailable
    assert "/proc/uptime" in unavailable["board.uptime_s"]  # no uptime capture: the tree has none
    # The values came from the stand-in, asked one command per call (two samples: prime, then real).
    calls = Path(pi3bplus["VCGENCMD_LOG"]).read_text().splitlines()
    assert calls.count("measure_clock arm") == 2 and calls.count("get_throttled") == 2


def test_sample_on_an_empty_root_has_every_key_null_with_a_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    no_tools = tmp_path / "no-tools"
    no_tools.mkdir()  # PATH without vcgencmd, even on a machine that has one
    done = run_cli("sample", "--root", empty, env={"PATH": str(no_tools)})
    assert done.returncode == EXIT_OK, done.stderr
    sample = json.loads(done.stdout)
    unavailable = sample["unavailable"]
    for key in CONTRACT_KEYS:
        assert lookup(sample, key) is None, key
        assert reason_for(unavailable, key), f"no reason for {key}"
    assert "/proc/meminfo not found" in unavailable["cma.total_bytes"]
    assert "vcgencmd not found on PATH" in unavailable["throttle"]
    assert "dma_buf/bufinfo not found" in unavailable["dmabuf.total_bytes"]
    # No Wi-Fi interface is known without /proc/net/wireless: the section is empty and says why.
    assert sample["wifi"] == {}
    assert "/proc/net/wireless not found" in unavailable["wifi"]
    assert sample["board"]["is_raspberry_pi"] is False


@pytest.mark.parametrize("command", ["sample", "devices", "run"])
def test_root_that_is_not_a_directory_is_a_usage_error(command: str, tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a tree\n")
    for root in (a_file, tmp_path / "missing"):
        extra = ["--state-dir", str(tmp_path / "state"), "--no-zeroconf"] if command == "run" else []
        done = run_cli(command, "--root", root, *extra)
        assert done.returncode == EXIT_CONFIG
        assert done.stderr.strip() == f"pi-stream-agent: --root: {root} is not a directory"
        assert done.stdout == ""
    assert not (tmp_path / "state").exists()  # `run` stopped before touching anything


@pytest.mark.parametrize("command", ["sample", "check-config"])
def test_root_from_the_config_file_must_be_a_directory_too(command: str, tmp_path: Path) -> None:
    """check-config used to say OK for a root that run refuses (issue 13)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"root: {tmp_path / 'nowhere'}\nstate_dir: {tmp_path / 'state'}\n")
    done = run_cli(command, "--config", config)
    assert done.returncode == EXIT_CONFIG
    assert (
        done.stderr.strip() == f"pi-stream-agent: {config}: root: {tmp_path / 'nowhere'} is not a directory"
    )


# --- devices ------------------------------------------------------------------------------------------------


def test_devices_on_the_pi4_card_tree_offers_the_card_and_no_platform_node(
    tree: FixtureTree, tmp_path: Path
) -> None:
    build_pi4_with_card(tree)
    # Host tools on PATH that would answer if the command used them below a fixture root: a v4l2-ctl that
    # logs its calls and an rpicam-hello listing a camera this tree does not have.
    bin_dir = install_standins(tmp_path / "bin", {"v4l2-ctl": "v4l2-ctl", "rpicam-hello": "rpicam-hello"})
    v4l2_data = tmp_path / "v4l2-ctl-data"
    v4l2_data.mkdir()
    cameras = tmp_path / "cameras.txt"
    cameras.write_text(fixture_text("v4l2/list_cameras_pi5_imx708_plus_imx219_tabs.txt"))
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "V4L2_CTL_STANDIN_DIR": str(v4l2_data),
        "RPICAM_STANDIN_OUTPUT": str(cameras),
    }
    done = run_cli("devices", "--root", tree.base, env=env)
    assert done.returncode == EXIT_OK, done.stderr
    devices = json.loads(done.stdout)

    (card,) = devices["capture_devices"]  # video3 is the card's metadata node: not a source
    assert card["path"] == "/dev/video2"
    assert card["name"] == "USB Video"
    assert card["bus"] == "usb-0000:01:00.0-1.3"
    assert card["stable_path"] == "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"
    assert card["driver"] == "uvcvideo"
    platform = {node["path"]: node for node in devices["platform_nodes"]}
    # The Pi 4's own nodes (camera-streamer#3 capture): listed as platform nodes, never as sources.
    assert set(platform) == {
        f"/dev/video{n}" for n in (0, 1, 10, 11, 12, 13, 14, 15, 16, 18, 20, 21, 22, 23, 31)
    }
    assert platform["/dev/video0"]["name"] == "unicam-image"
    assert platform["/dev/video11"]["role"] == "h264_encoder"
    assert devices["hardware_encoder"] == {
        "h264": True,
        "device": "/dev/video11",
        "name": "bcm2835-codec-encode",
    }
    # Below a fixture root the host's tools describe the host, so they are not run.
    assert devices["csi_cameras"] == []
    assert not (v4l2_data / "calls.log").exists()
    assert "disabled" in devices["unavailable"]["csi_cameras"]


# --- token --------------------------------------------------------------------------------------------------


def test_token_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    state = tmp_path / "state" / "nested"
    first = run_cli("token", "--state-dir", state)
    assert first.returncode == EXIT_OK, first.stderr
    token = first.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes, URL-safe base64
    token_file = state / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text() == token + "\n"
    assert state.is_dir()
    assert not stat.S_IMODE(state.stat().st_mode) & 0o007  # the state dir is not world-accessible
    second = run_cli("token", "--state-dir", state)
    assert (second.returncode, second.stdout.strip()) == (EXIT_OK, token)
    assert [p.name for p in state.iterdir()] == ["token"]  # no temporary file left behind


def test_token_rotate_replaces_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = run_cli("token", "--state-dir", state).stdout.strip()
    rotated = run_cli("token", "--rotate", "--state-dir", state)
    assert rotated.returncode == EXIT_OK
    new = rotated.stdout.strip()
    assert new != old and len(new) == 43
    assert f"New token written to {state / 'token'}" in rotated.stderr
    assert run_cli("token", "--state-dir", state).stdout.strip() == new
    assert stat.S_IMODE((state / "token").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "content",
    [b"short\n", b"two words in a token file\n", b"\xff\xfe\x00binary\x00garbage\x00here\n", b""],
    ids=["short", "spaces", "binary", "empty"],
)
def test_corrupt_token_file_is_a_config_error_naming_the_file_and_the_fix(
    content: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "token").write_bytes(content)
    done = run_cli("token", "--state-dir", state)
    assert done.returncode == EXIT_CONFIG
    assert done.stdout == ""
    message = done.stderr.strip()
    assert message.startswith(f"pi-stream-agent: {state / 'token'}: does not hold a usable token")
    assert f"run 'pi-stream-agent token --rotate --state-dir {state}'" in message
    # The suggested fix works.
    assert run_cli("token", "--rotate", "--state-dir", state).returncode == EXIT_OK
    assert run_cli("token", "--state-dir", state).returncode == EXIT_OK


def test_run_refuses_to_start_with_a_corrupt_token(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "token").write_text("x\n")
    done = run_cli("run", "--simulate", "--port", "0", "--state-dir", state, "--no-zeroconf")
    assert done.returncode == EXIT_CONFIG
    assert f"{state / 'token'}: does not hold a usable token" in done.stderr


@pytest.fixture
def unwritable_parent(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A directory the CLI may not write into, and the command prefix that makes it so: as root (which
    ignores permission bits) the CLI runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so the mode bits
    bind it as they bind any owner."""
    parent = tmp_path / "readonly"
    parent.mkdir()
    parent.chmod(0o555)
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without util-linux setpriv to drop CAP_DAC_OVERRIDE")
        prefix = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]
    try:
        yield parent, prefix
    finally:
        parent.chmod(0o755)


def test_unwritable_state_dir_is_a_clear_runtime_error(unwritable_parent: tuple[Path, list[str]]) -> None:
    parent, prefix = unwritable_parent
    for state in (parent / "state", parent):  # state dir to create; existing state dir without a token
        done = run_cli("token", "--state-dir", state, prefix=prefix)
        assert done.returncode == EXIT_FAILED, done.stderr
        assert done.stderr.strip() == (
            f"pi-stream-agent: permission denied: {state / 'token'} "
            "(run as root, or point --state-dir at a directory you can write)"
        )
    assert list(parent.iterdir()) == []


def test_unreadable_token_is_a_clear_runtime_error(unwritable_parent: tuple[Path, list[str]]) -> None:
    parent, prefix = unwritable_parent
    parent.chmod(0o755)
    token = parent / "token"
    token.write_text("A" * 43 + "\n")
    token.chmod(0o000)
    parent.chmod(0o555)
    done = run_cli("token", "--state-dir", parent, prefix=prefix)
    assert done.returncode == EXIT_FAILED
    assert done.stderr.strip().startswith(f"pi-stream-agent: permission denied: {token} ")


@pytest.mark.parametrize("command", ["token", "run", "check-config"])
@pytest.mark.parametrize("below", [False, True], ids=["is-a-file", "below-a-file"])
def test_state_dir_that_is_or_is_below_a_file_is_a_config_error(
    command: str, below: bool, tmp_path: Path
) -> None:
    """It used to be a bare "File exists" / "Not a directory" and exit 1, which systemd retries forever
    (issue 13); check-config called it OK."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    state = a_file / "state" if below else a_file
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {state}\nsimulate: true\nzeroconf: {{enabled: false}}\n")
    extra = ["--port", "0"] if command == "run" else []
    done = run_cli(command, "--config", config, *extra)
    assert done.returncode == EXIT_CONFIG
    what = f"is below {a_file}, which is" if below else "is"
    assert done.stderr.strip() == (
        f"pi-stream-agent: {config}: state_dir: {state} {what} a file, not a directory; point state_dir "
        "(or --state-dir) at a directory"
    )
    assert a_file.read_text() == ""


# --- configuration files ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenConfig:
    content: bytes
    expected: tuple[str, ...]  # fragments of the message after "<file>: "


BROKEN_CONFIGS = {
    "invalid-yaml": BrokenConfig(
        b"listen:\n  port: [8190\nstate_dir: /tmp\n",
        ("not valid YAML at line 3, column 10",),
    ),
    "tab-indent": BrokenConfig(
        b"listen:\n\tport: 8190\n",
        ("not valid YAML at line 2, column 1", "found character '\\t' that cannot start any token"),
    ),
    "unknown-key": BrokenConfig(
        b"telemetry:\n  intervall_s: 5\n",
        ("invalid configuration:\n  telemetry.intervall_s: unknown key (check the spelling",),
    ),
    "wrong-type": BrokenConfig(
        b"telemetry:\n  interval_s: fast\n",
        ("telemetry.interval_s: expected a number of seconds, got 'fast'",),
    ),
    "bool-for-seconds": BrokenConfig(
        b"telemetry:\n  flag_check_interval_s: yes\n",
        ("telemetry.flag_check_interval_s: expected a number of seconds, got True",),
    ),
    "port-out-of-range": BrokenConfig(
        b"listen:\n  port: 70000\n",
        ("listen.port: port must be between 1 and 65535 (or 0 for any free port), got 70000",),
    ),
    "port-as-text": BrokenConfig(b"listen:\n  port: '8190'\n", ("listen.port: expected a port number",)),
    "nested-path": BrokenConfig(
        b"zeroconf:\n  enabled: maybe\n", ("zeroconf.enabled: expected true or false, got 'maybe'",)
    ),
    "section-not-a-mapping": BrokenConfig(
        b"listen: [8190]\n", ("listen: expected a mapping of keys to values",)
    ),
    "top-level-list": BrokenConfig(
        b"- listen\n- port\n", ("the file must contain a mapping of keys (like 'listen:'), not list",)
    ),
    "top-level-text": BrokenConfig(b"hello\n", ("the file must contain a mapping of keys", "not str")),
    "duplicate-key": BrokenConfig(
        b"listen:\n  port: 8190\nlisten:\n  host: 127.0.0.1\n",
        ("not valid YAML at line 3, column 1: found duplicate key 'listen'",),
    ),
    "non-utf8": BrokenConfig(
        b"listen:\n  host: caf\xe9\n", ("is not UTF-8 text (byte 0xe9 at line 2, column 12)",)
    ),
    "control-character": BrokenConfig(
        b"listen:\n  host: a\x07b\n", ("not valid YAML at line 2, column 10: control character U+0007",)
    ),
    # Used to escape the error conversion: a traceback and exit 1 (issue 13).
    "rtsp-user-without-password": BrokenConfig(
        b"rtsp: {publish_username: u}\n",
        ("invalid configuration:\n  rtsp.publish_password: required when publish_username is set",),
    ),
    "several-problems": BrokenConfig(
        b"foo: 1\nlisten:\n  port: x\n  hots: a\n",
        (
            "invalid configuration:\n  foo: unknown key",
            "\n  listen.hots: unknown key",
            "\n  listen.port: expected a port number (1-65535), got 'x'",
        ),
    ),
}


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("case", list(BROKEN_CONFIGS))
def test_broken_config_is_exit_2_with_file_key_and_problem(command: str, case: str, tmp_path: Path) -> None:
    broken = BROKEN_CONFIGS[case]
    config = tmp_path / "config.yaml"
    config.write_bytes(broken.content)
    state = tmp_path / "state"
    extra = (
        ["--state-dir", str(state), "--port", "0", "--simulate", "--no-zeroconf"] if command == "run" else []
    )
    done = run_cli(command, "--config", config, *extra)
    assert done.returncode == EXIT_CONFIG
    assert done.stdout == ""
    assert done.stderr.startswith(f"pi-stream-agent: {config}: ")
    for fragment in broken.expected:
        assert fragment in done.stderr, done.stderr
    assert not state.exists()


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_corrupt_streams_file_is_exit_2_and_kept(command: str, tmp_path: Path) -> None:
    """run used to end in a StreamStoreError traceback and exit 1; check-config said OK (issue 13)."""
    state = tmp_path / "state"
    state.mkdir()
    streams = state / "streams.yaml"
    streams.write_bytes(b"streams: [\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"state_dir: {state}\nsimulate: true\nzeroconf: {{enabled: false}}\n")
    extra = ["--port", "0"] if command == "run" else []
    done = run_cli(command, "--config", config, *extra)
    assert done.returncode == EXIT_CONFIG
    assert done.stdout == ""
    assert done.stderr.startswith(f"pi-stream-agent: {streams}: cannot be used:\n  {streams}: not valid YAML")
    assert "replace it with streams.yaml.bak, while the agent is stopped" in done.stderr
    assert streams.read_bytes() == b"streams: [\n"


@pytest.mark.parametrize("command", ["check-config", "run", "sample", "token"])
def test_missing_explicit_config_file_is_exit_2(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    done = run_cli(command, "--config", missing)
    assert done.returncode == EXIT_CONFIG
    assert done.stderr.strip() == (
        f"pi-stream-agent: {missing}: file not found (create it, or leave out --config to use the defaults)"
    )


def test_config_that_is_a_directory_is_exit_2(tmp_path: Path) -> None:
    done = run_cli("check-config", "--config", tmp_path)
    assert done.returncode == EXIT_CONFIG
    assert done.stderr.strip() == f"pi-stream-agent: {tmp_path}: cannot be read: Is a directory"


@pytest.mark.parametrize(
    "content",
    [b"", b"# every key commented out\n", b"telemetry:\n#  interval_s: 5\nzeroconf:\n"],
    ids=["empty", "comments-only", "empty-sections"],
)
def test_empty_config_means_defaults(content: bytes, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    done = run_cli("check-config", "--config", config)
    assert (done.returncode, done.stdout.strip()) == (EXIT_OK, f"Configuration OK ({config})")
    assert done.stderr == ""


def test_the_shipped_example_config_is_valid() -> None:
    example = REPO_ROOT / "packaging" / "config.example.yaml"
    done = run_cli("check-config", "--config", example)
    assert (done.returncode, done.stdout.strip()) == (EXIT_OK, f"Configuration OK ({example})")


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_port_flag_out_of_range_is_exit_2(port: str, tmp_path: Path) -> None:
    done = run_cli("run", f"--port={port}", "--state-dir", tmp_path / "state", "--no-zeroconf")
    assert done.returncode == EXIT_CONFIG
    assert done.stderr.strip() == (
        f"pi-stream-agent: --port: must be between 1 and 65535 (or 0 for any free port), got {port}"
    )


def test_version_and_usage() -> None:
    version = run_cli("--version")
    assert (version.returncode, version.stdout.strip()) == (
        EXIT_OK,
        f"pi-stream-agent {__version__} (API v{API_VERSION})",
    )
    usage = run_cli()
    assert usage.returncode == EXIT_CONFIG  # argparse's own status for usage errors: the same meaning
    assert "COMMAND" in usage.stderr


# --- run ----------------------------------------------------------------------------------------------------


def test_run_serves_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    agent = start_agent(
        "--simulate",
        "--listen",
        "127.0.0.1",
        "--port",
        "0",
        "--state-dir",
        state,
        "--no-zeroconf",
        log=tmp_path / "agent.log",
        state_dir=state,
    )
    try:
        assert agent.host == "127.0.0.1" and agent.port > 0
        token = (state / "token").read_text().strip()
        assert stat.S_IMODE((state / "token").stat().st_mode) == 0o600
        info = http_json(agent.url("/api/v1/info"), token)
        assert info["simulated"] is True
        assert info["agent_id"] == (state / "agent_id").read_text().strip()
        assert http_status(agent.url("/api/v1/info"), token="wrong-token-0123456789") == 401
        assert "Zeroconf" not in agent.log_text()  # --no-zeroconf: nothing announced
    finally:
        started = time.monotonic()
        status = stop_agent(agent.process)
    assert status == EXIT_OK
    assert time.monotonic() - started < 5.0
    log = agent.log_text()
    assert "Traceback" not in log
    assert "Stopping" in log
    assert http_status(agent.url("/api/v1/info")) is None  # the port is closed
