"""The "notify with the motion snapshot" blueprint, run by Home Assistant's real automation engine against
the real agent: the moving test pattern is noticed, and the notification names the stream and carries its
motion snapshot's address."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.blueprint import models
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service

from tests.integration.agent_process import AgentProcess
from tests.integration.stable_agent import wait_for
from tests.integration.test_motion_live import make_the_garage_move

REPO = Path(__file__).resolve().parents[2]
BLUEPRINT = REPO / "blueprints" / "automation" / "pi_stream" / "notify_on_motion.yaml"
MOTION = "binary_sensor.garage_motion"
SNAPSHOT = "image.garage_motion_snapshot"


def test_blueprint_is_valid() -> None:
    blueprint = models.Blueprint(
        load_yaml_dict(str(BLUEPRINT)), expected_domain="automation", schema=AUTOMATION_BLUEPRINT_SCHEMA
    )
    assert set(blueprint.inputs) == {"motion_sensors", "cooldown", "notify_actions"}


async def setup_blueprint(hass: HomeAssistant, tmp_path: Path, inputs: dict[str, Any]) -> list[ServiceCall]:
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "pi_stream"
    target.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target / BLUEPRINT.name)
    calls = async_mock_service(hass, "notify", "test")
    recorded = [
        {
            "action": "notify.test",
            "data": {
                "title": "{{ title }}",
                "message": "{{ message }}",
                "data": {"image": "{{ image }}", "image_url": "{{ image_url }}"},
            },
        }
    ]
    automation = {
        "id": "motion",
        "alias": "Motion",
        "use_blueprint": {
            "path": f"pi_stream/{BLUEPRINT.name}",
            "input": {"notify_actions": recorded, **inputs},
        },
    }
    assert await async_setup_component(hass, "automation", {"automation": [automation]})
    await hass.async_block_till_done()
    assert hass.states.get("automation.motion").state == "on"
    return calls


async def test_motion_notifies_with_the_snapshot(
    hass: HomeAssistant, tmp_path: Path, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    calls = await setup_blueprint(hass, tmp_path, {"motion_sensors": [MOTION], "cooldown": 0})
    await make_the_garage_move(hass, agent)
    await wait_for(hass, lambda: len(calls) >= 1, "a motion notification", timeout_s=60)
    call = calls[0]
    assert call.data["title"] == "Garage: motion"
    assert call.data["message"].startswith("Garage noticed motion at ")
    assert call.data["data"]["image"] == f"/api/image_proxy/{SNAPSHOT}"
    assert call.data["data"]["image_url"].startswith(f"/api/image_proxy/{SNAPSHOT}?token=")
