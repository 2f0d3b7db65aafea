"""The commands the Debian package relies on, run for real: ``token`` as root for an agent that runs as
its own user, and ``mediamtx-config`` (a MediaMTX configuration matching the agent's ``rtsp:`` settings).
The package itself, installed and run, is proven by scripts/deb-check."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.agent.test_cli import EXIT_CONFIG, EXIT_OK, REPO_ROOT, cli_env, run_cli

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act for another user")


def _nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


@pytest.fixture
def agent_state_dir() -> Iterator[Path]:
    """A state directory as the package's postinst leaves it: owned by the agent's user (here nobody), in a
    directory nobody can reach (pytest's tmp_path is private to root)."""
    nobody = _nobody()
    with tempfile.TemporaryDirectory(prefix="pi-stream-token-") as temp:
        Path(temp).chmod(0o755)
        state = Path(temp) / "state"
        state.mkdir(mode=0o750)
        os.chown(state, nobody.pw_uid, nobody.pw_gid)
        yield state


def _as_nobody() -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("no util-linux setpriv")
    prefix = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
    # A venv's python may be a link into root's home (uv's managed Pythons): ask, rather than guess from
    # the path, whether nobody can start it.
    if subprocess.run([*prefix, sys.executable, "-c", ""], capture_output=True, check=False).returncode:
        pytest.skip("this Python is not one the nobody user may run")
    return prefix


def _run_as_nobody(*args: str | Path, beside: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pi_stream_agent ARGS`` as nobody, from a copy of the agent in ``beside``: the checkout
    may sit in a directory only root can enter (``mktemp -d`` makes them 0700), as /usr/lib's copy of the
    package never does."""
    prefix = _as_nobody()
    copy = beside / "agent-copy"
    shutil.copytree(
        REPO_ROOT / "pi_stream_agent",
        copy / "pi_stream_agent",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    for path in (copy, *copy.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return subprocess.run(
        [*prefix, sys.executable, "-B", "-m", "pi_stream_agent", *map(str, args)],
        cwd=copy,
        env=cli_env({"PYTHONPATH": str(copy)}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@needs_root
@pytest.mark.parametrize("rotate", [False, True], ids=["first-token", "rotate"])
def test_token_made_by_root_belongs_to_the_agents_user(rotate: bool, agent_state_dir: Path) -> None:
    """`sudo pi-stream-agent token [--rotate]` used to leave a root-owned 0600 token the agent (user
    pi-stream) could not read: it refused to start after the next restart."""
    state = agent_state_dir
    args = ["token", "--state-dir", state] + (["--rotate"] if rotate else [])
    done = run_cli(*args)
    assert done.returncode == EXIT_OK, done.stderr
    token_file = state / "token"
    assert (token_file.stat().st_uid, token_file.stat().st_gid) == (_nobody().pw_uid, _nobody().pw_gid)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    # The agent's user reads the same token.
    as_agent = _run_as_nobody("token", "--state-dir", state, beside=state.parent)
    assert (as_agent.returncode, as_agent.stdout) == (EXIT_OK, done.stdout), as_agent.stderr


@needs_root
def test_token_in_a_root_owned_state_dir_stays_roots(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run_cli("token", "--state-dir", state).returncode == EXIT_OK
    assert (state / "token").stat().st_uid == 0


# --- mediamtx-config ----------------------------------------------------------------------------------------


def _mediamtx(tmp_path: Path, rtsp: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    args: list[str | Path] = ["mediamtx-config"]
    if rtsp is not None:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"rtsp": rtsp}))
        args += ["--config", config]
    else:
        args += ["--config", tmp_path / "absent.yaml"]
    done = run_cli(*args)
    assert done.returncode == EXIT_OK, done.stderr
    return yaml.safe_load(done.stdout), done.stdout


def _users(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {user["permissions"][0]["action"]: user for user in config["authInternalUsers"]}


def test_mediamtx_config_for_the_default_rtsp_settings(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("zeroconf: {enabled: false}\n")
    done = run_cli("mediamtx-config", "--config", tmp_path / "config.yaml")
    assert done.returncode == EXIT_OK, done.stderr
    config = yaml.safe_load(done.stdout)
    assert done.stdout.startswith("# MediaMTX configuration for the pi_stream agent, from the rtsp: settings")
    # rtsp://127.0.0.1:8554 over TCP (publish_transport and read_transport default to tcp).
    assert (config["rtsp"], config["rtspAddress"], config["rtspTransports"]) == (True, ":8554", ["tcp"])
    assert config["rtspEncryption"] == "no"
    users = _users(config)
    # No credentials configured: anyone may read; only this Pi's own publishers may publish.
    assert (users["publish"]["user"], users["publish"]["ips"]) == ("any", ["127.0.0.1", "::1"])
    assert (users["read"]["user"], users["read"]["ips"]) == ("any", [])
    # Any stream id, main and substream alike (streams are added from Home Assistant at any time).
    assert config["paths"] == {"all_others": None}
    # What Home Assistant does not use is off: it costs memory on a Pi Zero 2 W.
    assert not any(config[server] for server in ("rtmp", "hls", "webrtc", "srt", "api", "playback"))


def test_mediamtx_config_carries_the_agents_users_ports_and_transports(tmp_path: Path) -> None:
    config, text = _mediamtx(
        tmp_path,
        {
            "publish_url": "rtsp://localhost:9554",
            "publish_username": "publisher",
            "publish_password": "pub: secret#1",  # YAML-special characters survive
            "read_username": "homeassistant",
            "read_password": "r3ad",
            "read_transport": "udp",
        },
    )
    users = _users(config)
    assert (users["publish"]["user"], users["publish"]["pass"]) == ("publisher", "pub: secret#1")
    assert users["publish"]["ips"] == ["127.0.0.1", "::1"]
    assert (users["read"]["user"], users["read"]["pass"], users["read"]["ips"]) == (
        "homeassistant",
        "r3ad",
        [],
    )
    assert (config["rtspAddress"], config["rtspTransports"]) == (":9554", ["udp", "tcp"])
    assert "keep it private" in text


def test_mediamtx_config_for_a_server_on_another_machine_says_so(tmp_path: Path) -> None:
    config, text = _mediamtx(tmp_path, {"publish_url": "rtsps://nvr.lan"})
    # Publishers come from this Pi, not from the server's own loopback: no address limit, and a note.
    assert _users(config)["publish"]["ips"] == []
    assert "# Note: rtsp.publish_url points at nvr.lan, not this Pi" in text
    assert "set rtsp.publish_username and publish_password" in text
    # rtsps:// without a port: RTSPS's default port 322, strict encryption, a key and certificate.
    assert (config["rtspEncryption"], config["rtspsAddress"]) == ("strict", ":322")
    assert "rtspAddress" not in config
    assert config["rtspServerKey"] and config["rtspServerCert"]


def test_mediamtx_config_with_a_broken_config_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("rtsp:\n  publish_url: http://x\n")
    done = run_cli("mediamtx-config", "--config", config)
    assert done.returncode == EXIT_CONFIG
    assert done.stdout == ""
    assert "rtsp.publish_url: expected an rtsp:// URL" in done.stderr
