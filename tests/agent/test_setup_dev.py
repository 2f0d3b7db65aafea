"""scripts/setup-dev (which scripts/demo runs on every start): a second start finds the uv the first one
installed with ``pip --user`` — in pip's user scripts directory, often not on PATH — and needs no network
(issue 13, §3). Runs a copy of the script against a checkout whose venv is already up to date."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

from tests.agent.helpers import REPO_ROOT

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def test_a_second_start_finds_the_uv_pip_installed_and_needs_no_network(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "setup-dev", checkout / "scripts" / "setup-dev")
    for name in ("requirements_test.txt", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, checkout / name)
    # The first start's result: a venv that is up to date...
    executable(checkout / ".venv" / "bin" / "python", "#!/bin/sh\nexit 0\n")
    wanted = hashlib.sha256(
        (checkout / "requirements_test.txt").read_bytes() + (checkout / "pyproject.toml").read_bytes()
    ).hexdigest()
    (checkout / ".venv" / ".requirements.sha").write_text(wanted + "\n")
    # ... and uv where `pip install --user` put it (HOME/.local/bin), which is not on PATH.
    home = tmp_path / "home"
    executable(home / ".local" / "bin" / "uv", "#!/bin/sh\nexit 0\n")
    # No network: pip fails, and says it was asked.
    pip_asked = tmp_path / "pip-asked"
    shims = tmp_path / "shims"
    executable(
        shims / "python3",
        f'#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = pip ]; then touch {pip_asked}; exit 1; fi\n'
        'exec /usr/bin/python3 "$@"\n',
    )
    env = {**os.environ, "HOME": str(home), "PATH": f"{shims}:{BASE_PATH}"}
    env.pop("PYTHONUSERBASE", None)
    result = subprocess.run(
        ["bash", str(checkout / "scripts" / "setup-dev"), "--no-ha2026"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "installing uv" not in result.stdout
    assert not pip_asked.exists()
