"""What the running agent keeps out of its memory (docs/benchmarks.md, "Agent memory"), checked on the real
program: ``python -m pi_stream_agent run`` as a subprocess, read from the outside through
``/proc/<pid>/maps`` (the files it has mapped), never through an API route of its own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.agent.helpers import REPO_ROOT
from tests.agent.test_cli import cli_env, http_json, start_agent, stop_agent

# OpenSSL's TLS library and Python's binding of it (``_ssl.cpython-311-….so``, ``libssl.so.3``).
TLS_FILES = ("libssl.so", "/_ssl.")


def mapped_files(pid: int) -> set[str]:
    files: set[str] = set()
    for line in Path(f"/proc/{pid}/maps").read_text(encoding="utf-8").splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            files.add(fields[5])
    return files


def test_running_agent_serves_without_loading_the_tls_libraries(tmp_path: Path) -> None:
    """asyncio and aiohttp import ``ssl`` only to offer TLS, which the agent never speaks; the entry point
    keeps it out (docs/benchmarks.md, "Agent memory"). A simulated Pi, so its streams and the API all run."""
    state = tmp_path / "state"
    agent = start_agent(
        "--simulate", "--listen", "127.0.0.1", "--port", "0", "--state-dir", state, "--no-zeroconf",
        log=tmp_path / "agent.log",
        state_dir=state,
    )  # fmt: skip
    try:
        token = (state / "token").read_text().strip()
        assert http_json(agent.url("/api/v1/info"), token)["simulated"] is True
        assert http_json(agent.url("/api/v1/streams"), token)["streams"]
        loaded = sorted(path for path in mapped_files(agent.process.pid) if any(f in path for f in TLS_FILES))
        assert loaded == [], f"the agent mapped TLS libraries: {loaded}"
    finally:
        stop_agent(agent.process)
    assert "Traceback" not in agent.log_text()


def test_library_users_keep_ssl() -> None:
    """Only the program's entry point leaves TLS out: importing the CLI (as the tests and benchmarks do)
    changes nothing for the importer."""
    code = "import pi_stream_agent.cli, ssl, sys; print(sys.modules['ssl'] is not None)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == "True"


def test_every_entry_point_goes_through_the_one_that_leaves_tls_out() -> None:
    """The Debian package's /usr/bin/pi-stream-agent (its file, run for real) and the console script of a
    pip install start like ``python -m pi_stream_agent``: ``ssl`` is refused (None) when they are done."""
    script = REPO_ROOT / "packaging" / "pi-stream-agent.sh"
    code = (
        "import atexit, runpy, sys; "
        "atexit.register(lambda: print('ssl', sys.modules.get('ssl', 'never imported'))); "
        "sys.argv = [sys.argv[1], '--version']; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(script)], cwd=REPO_ROOT, env=cli_env(), capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ssl None", done.stdout
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'pi-stream-agent = "pi_stream_agent.entry:main"' in pyproject
