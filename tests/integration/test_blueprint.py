"""The automation blueprint, run by Home Assistant's real automation engine against the real agent."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from homeassistant.components import persistent_notification
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint import models
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

from custom_components.pi_stream.const import DOMAIN
from tests.integration.agent_process import AgentProcess
from tests.integration.stable_agent import publisher_pids, wait_for

REPO = Path(__file__).resolve().parents[2]
BLUEPRINT = REPO / "blueprints" / "automation" / "pi_stream" / "notify_on_pi_problem.yaml"


def test_blueprint_is_valid() -> None:
    blueprint = models.Blueprint(
        load_yaml_dict(str(BLUEPRINT)), expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA
    )
    assert set(blueprint.inputs) == {
        "under_voltage_sensors",
        "stream_events",
        "notify_recoveries",
        "notify_actions",
    }
    # The raw file parses as plain YAML too, apart from the !input tags.
    assert "!input" in BLUEPRINT.read_text()
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load(BLUEPRINT.read_text())


async def killed_cause_name(hass: HomeAssistant, agent: AgentProcess) -> str:
    """The agent's human name of the cause ``killed``."""
    vocabulary = await hass.async_add_executor_job(agent.request, "GET", "/vocabulary")
    return next(str(word["name"]) for word in vocabulary["exit_causes"] if word["id"] == "killed")


async def setup_blueprint(hass: HomeAssistant, tmp_path: Path, inputs: dict[str, Any]) -> list[ServiceCall]:
    """Install the blueprint into a private config directory and create an automation from it whose
    notification goes to a recorded ``notify.test``."""
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "pi_stream"
    target.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    calls = async_mock_service(hass, "notify", "test")
    recorded = [{"action": "notify.test", "data": {"title": "{{ title }}", "message": "{{ message }}"}}]
    blueprint_inputs = {"notify_actions": recorded} | inputs  # notify_actions None: the blueprint's default
    automation = {
        "id": "pi_problem",
        "alias": "Pi problem",
        "use_blueprint": {
            "path": f"pi_stream/{BLUEPRINT.name}",
            "input": {key: value for key, value in blueprint_inputs.items() if value is not None},
        },
    }
    assert await async_setup_component(hass, "automation", {"automation": [automation]})
    await hass.async_block_till_done()
    assert hass.states.get("automation.pi_problem").state == "on"
    return calls


async def test_stream_failure_and_recovery_notify_with_the_cause(
    hass: HomeAssistant,
    tmp_path: Path,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    agent_id = init_integration.unique_id
    events = entity_registry.async_get_entity_id("event", DOMAIN, f"{agent_id}_garage_events")
    assert events is not None
    calls = await setup_blueprint(hass, tmp_path, {"stream_events": [events], "notify_recoveries": True})

    # Something outside the agent kills the garage publisher (the OOM killer, say).
    pid = next(iter(publisher_pids(agent)["garage"].values()))
    os.kill(pid, signal.SIGKILL)
    await wait_for(hass, lambda: len(calls) >= 2, "a failure and a recovery notification")

    failed, recovered = calls[0], calls[1]
    killed = await killed_cause_name(hass, agent)
    assert failed.data["title"] == "Garage: stream failed"
    # The cause in the agent's words ("killed" before), then the agent's one-line summary.
    assert failed.data["message"].startswith(f"Garage failed: {killed}.")
    assert "SIGKILL" in failed.data["message"]
    assert recovered.data["title"] == "Garage: stream recovered"
    assert f"it had failed: {killed}" in recovered.data["message"]


async def test_recoveries_are_quiet_unless_asked_for(
    hass: HomeAssistant,
    tmp_path: Path,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    agent_id = init_integration.unique_id
    events = entity_registry.async_get_entity_id("event", DOMAIN, f"{agent_id}_front_door_events")
    assert events is not None
    calls = await setup_blueprint(hass, tmp_path, {"stream_events": [events]})
    pid = next(iter(publisher_pids(agent)["front_door"].values()))
    os.kill(pid, signal.SIGKILL)
    await wait_for(
        hass, lambda: hass.states.get(events).attributes.get("event_type") == "recovered", "recovery"
    )
    assert [call.data["title"] for call in calls] == ["Front door: stream failed"]


async def test_under_voltage_notifies(
    hass: HomeAssistant,
    tmp_path: Path,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    sensor = entity_registry.async_get_entity_id(
        "binary_sensor", DOMAIN, f"{init_integration.unique_id}_under_voltage"
    )
    assert sensor is not None
    calls = await setup_blueprint(hass, tmp_path, {"under_voltage_sensors": [sensor]})
    await hass.async_add_executor_job(agent.request, "POST", "/simulation/under_voltage", {"duration_s": 0.5})
    await wait_for(hass, lambda: len(calls) >= 1, "an under-voltage notification")
    device_name = hass.states.get(sensor).name.removesuffix(" Under-voltage")
    assert calls[0].data["title"] == f"{device_name}: under-voltage"
    assert "5.1 V power supply" in calls[0].data["message"]
    # The sag ends; nothing more is sent for the falling edge.
    await wait_for(hass, lambda: hass.states.get(sensor).state == "off", "the end of the sag")
    assert len(calls) == 1


async def test_default_action_is_a_persistent_notification(
    hass: HomeAssistant,
    tmp_path: Path,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    events = entity_registry.async_get_entity_id(
        "event", DOMAIN, f"{init_integration.unique_id}_garage_events"
    )
    assert events is not None
    assert await async_setup_component(hass, "persistent_notification", {})
    await setup_blueprint(hass, tmp_path, {"stream_events": [events], "notify_actions": None})
    notifications = persistent_notification._async_get_or_create_notifications(hass)
    os.kill(next(iter(publisher_pids(agent)["garage"].values())), signal.SIGKILL)
    await wait_for(hass, lambda: len(notifications) >= 1, "a persistent notification")
    [notification] = notifications.values()
    assert notification["title"] == "Garage: stream failed"
    assert notification["message"].startswith(f"Garage failed: {await killed_cause_name(hass, agent)}.")
