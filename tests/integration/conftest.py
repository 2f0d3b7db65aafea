"""Home Assistant test harness for pi_stream: the real agent as a subprocess, HA's real test harness."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import (
    HomeAssistantSnapshotExtension,
    HomeAssistantSnapshotSerializer,
)
from syrupy.assertion import SnapshotAssertion

# Imported before the `hass` fixture runs, or HA finds the harness's own custom_components package.
import custom_components.pi_stream  # noqa: F401
from custom_components.pi_stream.const import CONF_TOKEN, DOMAIN
from tests.integration.agent_process import AgentProcess


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: Any) -> Generator[None]:
    yield


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[AgentProcess]:
    """The real agent (simulated Pi 4, two small test-pattern streams, its own RTSP server). The HA
    harness blocks sockets; tests against the real agent need loopback, so they are enabled here."""
    process = AgentProcess(state_dir=tmp_path / "agent-state")
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def mock_config_entry(agent: AgentProcess) -> MockConfigEntry:
    info = agent.request("GET", "/info")
    return MockConfigEntry(
        domain=DOMAIN,
        title=info["name"],
        unique_id=info["agent_id"],
        data={CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: agent.token},
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, agent: AgentProcess, mock_config_entry: MockConfigEntry
) -> AsyncGenerator[MockConfigEntry]:
    """The integration set up against the running agent, with its streams running."""
    await hass.async_add_executor_job(agent.wait_streams_running)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    yield mock_config_entry
    await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()


# Registry-entry fields that only some supported HA versions have (2026.x adds these): left out of
# snapshots, so one snapshot file holds for every version the suite runs on.
VERSION_SPECIFIC_REGISTRY_FIELDS = ("object_id_base", "suggested_object_id")


class PortableSnapshotSerializer(HomeAssistantSnapshotSerializer):
    @classmethod
    def _serializable_entity_registry_entry(cls, data: er.RegistryEntry) -> Any:
        serialized = super()._serializable_entity_registry_entry(data)
        for key in VERSION_SPECIFIC_REGISTRY_FIELDS:
            serialized.pop(key, None)
        return serialized


class PortableSnapshotExtension(HomeAssistantSnapshotExtension):
    serializer_class = PortableSnapshotSerializer


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots with Home Assistant's serializer (ids and times as ANY, files in snapshots/), the same
    on every supported HA version. phacc defines a ``snapshot`` fixture too, but syrupy's own wins over
    it unless a conftest overrides it."""
    return snapshot.use_extension(PortableSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Every entity enabled, including the disabled-by-default ones (not in phacc 0.13.236)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield
