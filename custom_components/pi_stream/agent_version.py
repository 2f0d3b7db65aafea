"""The agent's version against the one this integration release expects, and how to install that one.

One version for both halves: the integration's manifest carries the release's version, and the agent of
the same release reports it in ``GET /api/v1/info`` (the package build keeps them equal). So the version
this integration expects of the agent is its own; an agent reporting an older one is too old (the update
entity offers the newer one; a repair issue names the command). Home Assistant does not install the agent:
it is a Debian package on the Pi (docs/install.md). Pure: no Home Assistant imports.
"""

from __future__ import annotations

from awesomeversion import AwesomeVersion, AwesomeVersionCompareException

RELEASES_URL = "https://github.com/pi-stream/pi_stream/releases"
PACKAGE_NAME = "pi-stream-agent"


def release_notes_url(version: str) -> str:
    return f"{RELEASES_URL}/tag/v{version}"


def package_file(version: str) -> str:
    """The Debian package of a release (``scripts/build-deb`` names it so; docs/install.md)."""
    return f"{PACKAGE_NAME}_{version}_all.deb"


def install_command(version: str) -> str:
    """What to run on the Pi, in the folder holding the release's package."""
    return f"sudo apt install ./{package_file(version)}"


def is_outdated(installed: str | None, expected: str | None) -> bool:
    """Whether the agent's version is older than the expected one. Unknown or unparsable versions are not
    "older": no issue is raised on a guess."""
    if not installed or not expected:
        return False
    try:
        return bool(AwesomeVersion(installed) < AwesomeVersion(expected))
    except AwesomeVersionCompareException:
        return False
