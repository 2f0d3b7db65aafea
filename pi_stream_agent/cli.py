"""Command line: ``run`` the agent, print one telemetry ``sample``, list ``devices``, show the ``token``,
print a ``mediamtx-config`` matching the agent's RTSP settings, ``check-config``.

The Debian package's ``/usr/bin/pi-stream-agent`` calls :func:`main`; every command finds the installed
layout by itself (config /etc/pi-stream-agent/config.yaml, state /var/lib/pi-stream-agent: paths.py).

Exit codes: 0 done, 1 failed at run time, 2 bad configuration or arguments (systemd does not restart on 2:
a config error needs a person, not a retry loop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pi_stream_agent import API_VERSION, __version__
from pi_stream_agent.config import AgentConfig, ConfigError, load
from pi_stream_agent.credentials import TokenError, load_or_create_token, token_path, write_new_token
from pi_stream_agent.paths import DEFAULT_CONFIG_PATH
from pi_stream_agent.streams.problems import StreamConfigError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

_LOGGER = logging.getLogger("pi_stream_agent")


def _add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help=f"YAML config file (default {DEFAULT_CONFIG_PATH}, used only if it exists)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pi-stream-agent",
        description="pi_stream agent: Raspberry Pi camera streams and hardware health for Home Assistant.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (API v{API_VERSION})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the agent (what the systemd service does)")
    _add_config_argument(run)
    run.add_argument("--listen", metavar="HOST", help="address to listen on (config listen.host)")
    run.add_argument("--port", type=int, help="API port (config listen.port; 0 = any free port)")
    run.add_argument(
        "--state-dir", type=Path, help="where the token and agent id are kept (config state_dir)"
    )
    run.add_argument("--root", type=Path, help="read kernel interfaces below this directory instead of /")
    run.add_argument("--simulate", action="store_true", help="serve a simulated Raspberry Pi 4")
    run.add_argument("--no-zeroconf", action="store_true", help="do not announce the agent on the network")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    sample = commands.add_parser("sample", help="print one telemetry sample as JSON")
    _add_config_argument(sample)
    sample.add_argument("--root", type=Path, help="read kernel interfaces below this directory instead of /")
    sample.add_argument("--simulate", action="store_true", help="sample a simulated Raspberry Pi 4")

    devices = commands.add_parser("devices", help="print the cameras and capture devices found, as JSON")
    devices.add_argument("--root", type=Path, help="read sysfs and /dev below this directory instead of /")
    devices.add_argument(
        "--tools-from-path",
        action="store_true",
        help="run rpicam-hello and v4l2-ctl from PATH even below --root (recorded outputs can stand in)",
    )

    token = commands.add_parser("token", help="print the API token to paste into Home Assistant")
    _add_config_argument(token)
    token.add_argument("--state-dir", type=Path, help="state directory (config state_dir)")
    token.add_argument("--rotate", action="store_true", help="replace the token with a new one")

    mediamtx = commands.add_parser(
        "mediamtx-config",
        help="print a MediaMTX configuration matching the agent's rtsp: settings",
        description="Print a MediaMTX configuration (mediamtx.yml) that accepts the agent's publishers and "
        "serves Home Assistant: the port, transports and users of the agent's rtsp: settings. Save it as "
        "MediaMTX's configuration file, e.g. 'sudo pi-stream-agent mediamtx-config | sudo tee "
        "/etc/mediamtx/mediamtx.yml'.",
    )
    _add_config_argument(mediamtx)

    check = commands.add_parser("check-config", help="validate the config file and exit")
    _add_config_argument(check)
    return parser


def _load_config(path: Path | None) -> AgentConfig:
    if path is None:
        return load(DEFAULT_CONFIG_PATH, missing_ok=True)
    return load(path)


def _apply_overrides(config: AgentConfig, args: argparse.Namespace) -> AgentConfig:
    changes: dict[str, Any] = {}
    if getattr(args, "listen", None):
        changes["host"] = args.listen
    if getattr(args, "port", None) is not None:
        if not 0 <= args.port <= 65535:
            raise ConfigError(
                f"--port: must be between 1 and 65535 (or 0 for any free port), got {args.port}"
            )
        changes["port"] = args.port
    if getattr(args, "state_dir", None) is not None:
        changes["state_dir"] = args.state_dir
    if getattr(args, "root", None) is not None:
        if not args.root.is_dir():
            raise ConfigError(f"--root: {args.root} is not a directory")
        changes["root"] = args.root
    if getattr(args, "simulate", False):
        changes["simulate"] = True
    if getattr(args, "no_zeroconf", False):
        changes["zeroconf_enabled"] = False
    return dataclasses.replace(config, **changes)


def _check_paths(config: AgentConfig) -> AgentConfig:
    """What ``run`` needs of the paths, checked before anything starts (and by ``check-config``, so it never
    calls OK what ``run`` refuses): ``root`` must be a directory (reading an absent tree would serve a sample
    of nothing but reasons; ``--root`` is checked above), and ``state_dir`` must be, or be creatable as, a
    directory."""
    where = f"{config.source}: " if config.source else ""
    if not config.root.is_dir():
        raise ConfigError(f"{where}root: {config.root} is not a directory")
    _check_state_dir(config.state_dir, where)
    return config


def _check_state_dir(state_dir: Path, where: str) -> None:
    # The first existing path from state_dir upwards must be a directory; otherwise mkdir fails later with a
    # bare "File exists" or "Not a directory".
    for path in (state_dir, *state_dir.parents):
        if path.is_dir():
            return
        if path.exists() or path.is_symlink():
            what = "is" if path == state_dir else f"is below {path}, which is"
            raise ConfigError(
                f"{where}state_dir: {state_dir} {what} a file, not a directory; point state_dir "
                "(or --state-dir) at a directory"
            )


def _check_streams(config: AgentConfig) -> None:
    """The streams ``run`` would start with: ``<state_dir>/streams.yaml`` when it exists, else the seed.
    Raises StreamConfigError (a StreamStoreError for the file) naming the file, the key path and the fix."""
    from pi_stream_agent.streams.store import StreamStore  # noqa: PLC0415 - only check-config needs it

    store = StreamStore(
        config.state_dir, config.streams or (), seed_origin=str(config.source or "the defaults")
    )
    if store.path.exists() and not os.access(store.path, os.R_OK):
        # The agent's own file (mode 0640): a person checking the config need not be able to read it.
        print(f"pi-stream-agent: {store.path} not checked: not readable for this user", file=sys.stderr)
        return
    store.load()


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


# -- commands --------------------------------------------------------------------------------------------


async def _run_agent(config: AgentConfig) -> int:
    from pi_stream_agent.agent import Agent  # noqa: PLC0415 - keeps `token`/`check-config` light
    from pi_stream_agent.housekeeping import EXIT_RESTART  # noqa: PLC0415

    agent = Agent(config)
    stop = asyncio.Event()
    restart = False

    def request_restart() -> None:
        nonlocal restart
        restart = True
        stop.set()

    agent.power_control.request_restart = request_restart
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await agent.start()
        if config.simulate:
            _LOGGER.info("Simulating a Raspberry Pi 4 (no hardware is read)")
        await stop.wait()
        _LOGGER.info("Restarting (asked through the API)" if restart else "Stopping")
    finally:
        await agent.stop()
    # A restart asked through the API: exit with a status systemd's Restart=on-failure acts on.
    return EXIT_RESTART if restart else EXIT_OK


async def _one_sample(config: AgentConfig) -> dict[str, Any]:
    from pi_stream_agent.events import EventBus  # noqa: PLC0415
    from pi_stream_agent.rootfs import Root  # noqa: PLC0415
    from pi_stream_agent.telemetry.sampler import merge_sample  # noqa: PLC0415
    from pi_stream_agent.telemetry.stack import build_stack  # noqa: PLC0415

    with contextlib.ExitStack() as cleanup:
        root, gencmd = Root(config.root), None
        if config.simulate:
            from pi_stream_agent.simulation import build_simulated_root  # noqa: PLC0415

            base = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="pi-stream-simulated-")))
            simulated = build_simulated_root(base)
            root, gencmd = simulated.root, simulated.gencmd
        stack = build_stack(root, EventBus(), gencmd=gencmd)
        await stack.start()
        try:
            # Rates (CPU %, bytes/s) need two readings: prime, wait a moment, then sample for real.
            merge_sample(stack.collectors, time.monotonic(), time.time())
            await asyncio.sleep(0.5)
            return merge_sample(stack.collectors, time.monotonic(), time.time())
        finally:
            await stack.stop()


def _list_devices(root_dir: Path | None, tools_from_path: bool = False) -> dict[str, Any]:
    from pi_stream_agent.discovery.libcamera import DEFAULT_TOOLS  # noqa: PLC0415
    from pi_stream_agent.discovery.registry import describe_devices  # noqa: PLC0415
    from pi_stream_agent.rootfs import Root  # noqa: PLC0415

    root = Root(root_dir) if root_dir is not None else Root()
    # As in the running agent: below another root, v4l2-ctl and rpicam-hello would describe this machine's
    # devices (and open /dev nodes of the tree as if they were devices), not the tree's — unless the caller
    # says the tools on PATH answer for the tree (--tools-from-path: recorded outputs standing in for them).
    use_tools = root.is_real or tools_from_path
    return describe_devices(
        root,
        v4l2_ctl="v4l2-ctl" if use_tools else None,
        csi_tools=DEFAULT_TOOLS if use_tools else (),
    )


def _give_to_state_dir_owner(path: Path, state_dir: Path) -> None:
    """``sudo pi-stream-agent token`` runs as root, the agent as its own user (the Debian package's
    pi-stream): a token file root made must belong to whoever owns the state directory, or the agent cannot
    read it at its next start."""
    if os.geteuid() != 0:
        return
    owner = state_dir.stat()
    if owner.st_uid != 0 and path.stat().st_uid != owner.st_uid:
        os.chown(path, owner.st_uid, owner.st_gid)


def _token_command(args: argparse.Namespace) -> int:
    config = _apply_overrides(_load_config(args.config), args)
    _check_state_dir(config.state_dir, f"{config.source}: " if config.source else "")
    if args.rotate:
        token = write_new_token(config.state_dir)
        _give_to_state_dir_owner(token_path(config.state_dir), config.state_dir)
        print(token)
        print(
            f"New token written to {token_path(config.state_dir)}. Restart the agent, then enter the new "
            "token in Home Assistant (it will ask: re-authentication).",
            file=sys.stderr,
        )
        return EXIT_OK
    token = load_or_create_token(config.state_dir)
    _give_to_state_dir_owner(token_path(config.state_dir), config.state_dir)
    print(token)
    return EXIT_OK


def _mediamtx_command(args: argparse.Namespace) -> int:
    from pi_stream_agent.mediamtx import render  # noqa: PLC0415 - only this command needs it

    config = _load_config(args.config)
    sys.stdout.write(render(config.rtsp, str(config.source or "the defaults (no config file)")))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = getattr(args, "log_level", "WARNING")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "check-config":
            config = _check_paths(_load_config(args.config))
            _check_streams(config)
            print(f"Configuration OK ({config.source or 'defaults: no config file'})")
            return EXIT_OK
        if args.command == "token":
            return _token_command(args)
        if args.command == "mediamtx-config":
            return _mediamtx_command(args)
        if args.command == "devices":
            if args.root is not None and not args.root.is_dir():
                raise ConfigError(f"--root: {args.root} is not a directory")
            _print_json(_list_devices(args.root, args.tools_from_path))
            return EXIT_OK
        if args.command == "sample":
            config = _check_paths(_apply_overrides(_load_config(args.config), args))
            _print_json(asyncio.run(_one_sample(config)))
            return EXIT_OK
        config = _check_paths(_apply_overrides(_load_config(args.config), args))
        return asyncio.run(_run_agent(config))
    except KeyboardInterrupt:
        # Ctrl-C during `sample` or before `run` installed its handlers: stop quietly, as a shell expects.
        return 128 + signal.SIGINT
    except (ConfigError, StreamConfigError) as exc:
        # StreamConfigError: streams.yaml (or the seed) cannot be used; the file is kept as it is.
        print(f"pi-stream-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except TokenError as exc:
        print(f"pi-stream-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except PermissionError as exc:
        print(
            f"pi-stream-agent: permission denied: {exc.filename or exc} "
            "(run as root, or point --state-dir at a directory you can write)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except OSError as exc:
        # "path: Not a directory" reads better than "[Errno 20] Not a directory: 'path'".
        message = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        print(f"pi-stream-agent: {message}", file=sys.stderr)
        return EXIT_FAILED
