"""Home Assistant test harness setup for pi_stream."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

# Imported before the `hass` fixture runs, or HA finds the harness's own custom_components package.
import custom_components.pi_stream  # noqa: F401


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: Any) -> Generator[None]:
    yield
