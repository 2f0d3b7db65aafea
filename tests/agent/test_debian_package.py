"""The Debian package as scripts/build-deb makes it: one version for the agent, the package and the
integration's manifest; the control fields, conffile and maintainer scripts; the names the unit, the
maintainer scripts and the polkit rule share. Installing and running it: scripts/deb-check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pi_stream_agent import __version__
from pi_stream_agent.paths import DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR
from tests.agent.helpers import REPO_ROOT

PACKAGING = REPO_ROOT / "packaging"
needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="no dpkg-deb (not Debian)")


def test_the_integration_carries_the_agents_version() -> None:
    """One version for both halves (pi_stream_agent.__version__ owns it): the update entity compares them."""
    manifest = json.loads((REPO_ROOT / "custom_components/pi_stream/manifest.json").read_text())
    assert manifest["version"] == __version__


def _build(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/build-deb"), "--out", str(tmp_path), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


@needs_dpkg
def test_build_deb_makes_the_package_at_the_agents_version(tmp_path: Path) -> None:
    done = _build(tmp_path)
    assert done.returncode == 0, done.stderr
    deb = Path(done.stdout.strip().splitlines()[-1])
    assert deb.name == f"pi-stream-agent_{__version__}_all.deb"
    assert (_field(deb, "Version"), _field(deb, "Architecture")) == (__version__, "all")
    depends = _field(deb, "Depends")
    for package in (
        "python3 (>= 3.11)",
        "python3-aiohttp",
        "python3-psutil",
        "python3-voluptuous",
        "python3-yaml",
        "python3-zeroconf",
    ):
        assert package in depends
    assert _field(deb, "Recommends") == "ffmpeg, v4l-utils"
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    assert (tree / "DEBIAN/conffiles").read_text().split() == [str(DEFAULT_CONFIG_PATH)]
    assert (tree / str(DEFAULT_CONFIG_PATH).lstrip("/")).read_bytes() == (
        PACKAGING / "config.example.yaml"
    ).read_bytes()
    init = tree / "usr/lib/python3/dist-packages/pi_stream_agent/__init__.py"
    assert f'__version__ = "{__version__}"' in init.read_text()
    assert not list(tree.rglob("__pycache__"))  # byte-code is made by postinst, removed by prerm
    for script in ("postinst", "prerm", "postrm"):
        assert subprocess.run(["sh", "-n", str(tree / "DEBIAN" / script)], check=False).returncode == 0


@needs_dpkg
def test_build_deb_as_another_version_packages_that_version(tmp_path: Path) -> None:
    done = _build(tmp_path, "--version", f"{__version__}+ci1")
    assert done.returncode == 0, done.stderr
    deb = Path(done.stdout.strip().splitlines()[-1])
    assert _field(deb, "Version") == f"{__version__}+ci1"
    tree = tmp_path / "tree"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    init = tree / "usr/lib/python3/dist-packages/pi_stream_agent/__init__.py"
    assert f'__version__ = "{__version__}+ci1"' in init.read_text()  # the agent reports what was installed


def test_build_deb_refuses_a_version_dpkg_would_not_take(tmp_path: Path) -> None:
    done = _build(tmp_path, "--version", "1.0 beta")
    assert done.returncode == 2
    assert "is not a Debian version" in done.stderr


def test_unit_scripts_and_polkit_rule_agree_on_names_and_paths() -> None:
    unit = (PACKAGING / "pi-stream-agent.service").read_text()
    postinst = (PACKAGING / "debian/postinst").read_text()
    postrm = (PACKAGING / "debian/postrm").read_text()
    user = re.search(r"^User=(\S+)$", unit, re.MULTILINE)
    assert user is not None
    assert f"USER_NAME={user[1]}" in postinst
    assert f"userdel {user[1]}" in postrm
    assert (
        f'subject.user !== "{user[1]}"' in (PACKAGING / "polkit/50-pi-stream-agent-power.rules").read_text()
    )
    assert f"StateDirectory={DEFAULT_STATE_DIR.name}" in unit
    assert f"STATE_DIR={DEFAULT_STATE_DIR}" in postinst
    assert f"rm -rf {DEFAULT_STATE_DIR}" in postrm
    assert f"CONFIG={DEFAULT_CONFIG_PATH}" in postinst
    assert "ExecStart=/usr/bin/pi-stream-agent run" in unit
