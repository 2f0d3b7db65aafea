"""The ``pi_stream.restart_stream`` and ``pi_stream.restart_all_streams`` actions against the real agent:
real restarts for every way of targeting, and a translated error for every way of getting it wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.services import SERVICE_RESTART_ALL_STREAMS, SERVICE_RESTART_STREAM
from tests.integration.stable_agent import (
    STABLE_AGENT_ID,
    StableAgentProcess,
    publisher_pids,
    requested_restarts,
    run_agent,
    wait_for_pids_changed,
)


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


def device_id(hass: HomeAssistant, identifier: str) -> str:
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, identifier)})
    assert device is not None, identifier
    return device.id


def stream_device(hass: HomeAssistant, stream_id: str) -> str:
    return device_id(hass, f"{STABLE_AGENT_ID}_{stream_id}")


async def call(hass: HomeAssistant, service: str, data: dict[str, Any]) -> None:
    await hass.services.async_call(DOMAIN, service, data, blocking=True)


async def expect_invalid(
    hass: HomeAssistant, service: str, data: dict[str, Any], translation_key: str
) -> ServiceValidationError:
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, service, data)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == translation_key
    return err.value


async def test_registered_in_async_setup_without_entries(hass: HomeAssistant) -> None:
    """The actions exist as soon as the integration is set up, before (and without) any Pi."""
    assert await async_setup_component(hass, DOMAIN, {})
    assert hass.services.has_service(DOMAIN, SERVICE_RESTART_STREAM)
    assert hass.services.has_service(DOMAIN, SERVICE_RESTART_ALL_STREAMS)
    err = await expect_invalid(
        hass, SERVICE_RESTART_ALL_STREAMS, {"config_entry_id": "no-such-entry"}, "entry_not_found"
    )
    assert str(err) == "There is no pi_stream Pi with the config entry ID no-such-entry"


# -- real restarts ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("init_integration")
async def test_restart_stream_by_camera_entity(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    before = await hass.async_add_executor_job(publisher_pids, agent)
    await call(hass, SERVICE_RESTART_STREAM, {"entity_id": "camera.garage"})
    await hass.async_add_executor_job(wait_for_pids_changed, agent, before, {"garage"})
    assert await hass.async_add_executor_job(requested_restarts, agent, "garage") == 1
    assert await hass.async_add_executor_job(requested_restarts, agent, "front_door") == 0


@pytest.mark.usefixtures("init_integration")
async def test_restart_stream_by_stream_device(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    before = await hass.async_add_executor_job(publisher_pids, agent)
    await call(hass, SERVICE_RESTART_STREAM, {"device_id": stream_device(hass, "front_door")})
    await hass.async_add_executor_job(wait_for_pids_changed, agent, before, {"front_door"})
    assert await hass.async_add_executor_job(requested_restarts, agent, "front_door") == 1
    assert await hass.async_add_executor_job(requested_restarts, agent, "garage") == 0


@pytest.mark.usefixtures("init_integration")
async def test_restart_all_streams_by_config_entry(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    before = await hass.async_add_executor_job(publisher_pids, agent)
    await call(hass, SERVICE_RESTART_ALL_STREAMS, {"config_entry_id": init_integration.entry_id})
    await hass.async_add_executor_job(wait_for_pids_changed, agent, before, {"front_door", "garage"})
    for stream_id in ("front_door", "garage"):
        assert await hass.async_add_executor_job(requested_restarts, agent, stream_id) == 1


@pytest.mark.usefixtures("init_integration")
async def test_restart_all_streams_by_pi_device(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    before = await hass.async_add_executor_job(publisher_pids, agent)
    await call(hass, SERVICE_RESTART_ALL_STREAMS, {"device_id": device_id(hass, STABLE_AGENT_ID)})
    await hass.async_add_executor_job(wait_for_pids_changed, agent, before, {"front_door", "garage"})
    for stream_id in ("front_door", "garage"):
        assert await hass.async_add_executor_job(requested_restarts, agent, stream_id) == 1


# -- wrong targets ---------------------------------------------------------------------------------------


async def test_restart_stream_target_errors(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    other = MockConfigEntry(domain="other_integration")
    other.add_to_hass(hass)
    foreign_device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other_integration", "x")}
    )
    pi_device = device_id(hass, STABLE_AGENT_ID)

    await expect_invalid(hass, SERVICE_RESTART_STREAM, {}, "no_stream_target")
    await expect_invalid(hass, SERVICE_RESTART_STREAM, {"entity_id": "camera.nope"}, "entity_not_found")
    await expect_invalid(hass, SERVICE_RESTART_STREAM, {"device_id": "nope"}, "device_not_found")
    await expect_invalid(hass, SERVICE_RESTART_STREAM, {"device_id": foreign_device.id}, "device_not_found")
    err = await expect_invalid(hass, SERVICE_RESTART_STREAM, {"device_id": pi_device}, "not_a_stream")
    assert "is not a stream" in str(err)
    # The Pi's own entities are not streams either.
    await expect_invalid(
        hass, SERVICE_RESTART_STREAM, {"entity_id": "button.camera_pi_restart_all_streams"}, "not_a_stream"
    )

    # One bad target among good ones: nothing is restarted.
    await expect_invalid(
        hass, SERVICE_RESTART_STREAM, {"entity_id": "camera.garage", "device_id": "nope"}, "device_not_found"
    )
    assert await hass.async_add_executor_job(requested_restarts, agent, "garage") == 0


async def test_restart_all_streams_target_errors(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    other = MockConfigEntry(domain="other_integration")
    other.add_to_hass(hass)
    await expect_invalid(hass, SERVICE_RESTART_ALL_STREAMS, {}, "no_pi_target")
    await expect_invalid(
        hass, SERVICE_RESTART_ALL_STREAMS, {"config_entry_id": other.entry_id}, "entry_not_found"
    )
    await expect_invalid(hass, SERVICE_RESTART_ALL_STREAMS, {"device_id": "nope"}, "device_not_found")


async def test_unloaded_pi(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """Entities and devices outlive an unloaded entry; acting on them says the Pi is not loaded."""
    garage_device = stream_device(hass, "garage")
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert init_integration.state is ConfigEntryState.NOT_LOADED

    err = await expect_invalid(
        hass, SERVICE_RESTART_ALL_STREAMS, {"config_entry_id": init_integration.entry_id}, "entry_not_loaded"
    )
    assert err.translation_placeholders == {"name": init_integration.title}
    await expect_invalid(hass, SERVICE_RESTART_STREAM, {"entity_id": "camera.garage"}, "entry_not_loaded")
    await expect_invalid(hass, SERVICE_RESTART_STREAM, {"device_id": garage_device}, "entry_not_loaded")


async def test_stream_the_agent_no_longer_has(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """The stream was removed on the agent; its device is still in Home Assistant."""
    await hass.async_add_executor_job(agent.request, "DELETE", "/streams/garage")
    await init_integration.runtime_data.async_refresh()
    assert "garage" not in init_integration.runtime_data.data.streams
    err = await expect_invalid(
        hass, SERVICE_RESTART_STREAM, {"device_id": stream_device(hass, "garage")}, "stream_not_found"
    )
    assert err.translation_placeholders == {"stream": "Garage"}


# -- agent failures --------------------------------------------------------------------------------------


async def test_agent_failures_are_translated_errors(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    await hass.async_add_executor_job(agent.stop)

    with pytest.raises(HomeAssistantError) as err:
        await call(hass, SERVICE_RESTART_STREAM, {"entity_id": "camera.garage"})
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "restart_stream_failed"
    assert str(err.value).startswith("Could not restart stream Garage: ")

    with pytest.raises(HomeAssistantError) as err:
        await call(hass, SERVICE_RESTART_ALL_STREAMS, {"config_entry_id": init_integration.entry_id})
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "restart_all_streams_failed"
    assert str(err.value).startswith("Could not restart the streams of camera-pi: ")
