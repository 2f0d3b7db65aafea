from __future__ import annotations

from pathlib import Path

import pytest

from tests.agent.helpers import PI_FIXTURES, FixtureTree
from tests.agent.rtsp import rtsp_server  # noqa: F401 - a fixture for every agent test


@pytest.fixture
def tree(tmp_path: Path) -> FixtureTree:
    """An empty fixture tree standing for ``/``."""
    base = tmp_path / "root"
    base.mkdir()
    return FixtureTree(base)


def pytest_configure(config: pytest.Config) -> None:
    if not PI_FIXTURES.is_dir():
        raise pytest.UsageError(
            f"Pi fixtures not found at {PI_FIXTURES}: the shared folder must sit beside the repository "
            "(or set PI_STREAM_SHARED to it)."
        )
