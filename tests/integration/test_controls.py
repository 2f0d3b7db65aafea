"""A stream's picture settings as entities, against the real agent: the controls its camera has become
selects and switches (numbers and buttons where the camera lists them), a change shows only once the agent
confirmed it, a refusal comes back in the agent's words, and the options flow offers the orientation.

The simulated Pi's streams are test patterns: their camera-independent settings are the orientation
(rotation, horizontal and vertical flip, turned by an ffmpeg filter), which is what these tests change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.components.select import DOMAIN as SELECT_DOMAIN
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    EntityCategory,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from syrupy.assertion import SnapshotAssertion

from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.number import agent_number
from custom_components.pi_stream.select import choices
from tests.integration.stable_agent import StableAgentProcess, run_agent, wait_for

COMPONENT = Path(__file__).resolve().parents[2] / "custom_components" / "pi_stream"
GARAGE_ROTATION = "select.garage_rotation"
GARAGE_HFLIP = "switch.garage_flip_horizontally"
GARAGE_VFLIP = "switch.garage_flip_vertically"


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


@pytest.fixture(autouse=True)
def control_platforms() -> Iterator[None]:
    with patch(
        "custom_components.pi_stream.PLATFORMS",
        [Platform.BUTTON, Platform.NUMBER, Platform.SELECT, Platform.SWITCH],
    ):
        yield


async def select(hass: HomeAssistant, option: str, entity_id: str = GARAGE_ROTATION) -> None:
    await hass.services.async_call(
        SELECT_DOMAIN, SERVICE_SELECT_OPTION, {ATTR_ENTITY_ID: entity_id, ATTR_OPTION: option}, blocking=True
    )


async def switch(hass: HomeAssistant, service: str, entity_id: str) -> None:
    await hass.services.async_call(SWITCH_DOMAIN, service, {ATTR_ENTITY_ID: entity_id}, blocking=True)


async def agent_settings(hass: HomeAssistant, agent: StableAgentProcess, stream_id: str = "garage") -> Any:
    stream = await hass.async_add_executor_job(agent.request, "GET", f"/streams/{stream_id}")
    return stream["config"]["settings"]


async def test_select_entities(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """A rotation select per stream (its camera's settings; a test pattern has only the orientation), in
    the configuration category, named and translated from the setting's id."""
    with patch("custom_components.pi_stream.PLATFORMS", [Platform.SELECT]):
        await hass.async_add_executor_job(agent.wait_streams_running)
        mock_config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        await snapshot_platform(hass, entity_registry, snapshot, mock_config_entry.entry_id)
    selects = er.async_entries_for_config_entry(entity_registry, mock_config_entry.entry_id)
    assert {entity.entity_id for entity in selects} == {"select.front_door_rotation", GARAGE_ROTATION}
    assert all(entity.entity_category is EntityCategory.CONFIG for entity in selects)
    state = hass.states.get(GARAGE_ROTATION)
    # No rotation configured: the picture's default as the agent names it (rpicam-vid's own), not "unknown".
    assert state.state == "0"
    assert state.attributes["options"] == ["0", "180"]
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


@pytest.mark.usefixtures("init_integration")
async def test_rotation_is_shown_once_the_agent_confirms_it(
    hass: HomeAssistant, agent: StableAgentProcess
) -> None:
    """Choosing 180° stores it on the agent (streams.yaml) and the select shows what the agent answered;
    the other stream is untouched."""
    await select(hass, "180")
    assert hass.states.get(GARAGE_ROTATION).state == "180"
    assert await agent_settings(hass, agent) == {"rotation": "180"}
    assert hass.states.get("select.front_door_rotation").state == "0"
    await select(hass, "0")
    assert hass.states.get(GARAGE_ROTATION).state == "0"
    assert await agent_settings(hass, agent) == {"rotation": "0"}


@pytest.mark.usefixtures("init_integration")
async def test_flip_switches(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    assert hass.states.get(GARAGE_HFLIP).state == STATE_OFF  # not set: the picture's default
    await switch(hass, SERVICE_TURN_ON, GARAGE_HFLIP)
    assert hass.states.get(GARAGE_HFLIP).state == STATE_ON
    await switch(hass, SERVICE_TURN_ON, GARAGE_VFLIP)
    assert await agent_settings(hass, agent) == {"hflip": True, "vflip": True}
    await switch(hass, SERVICE_TURN_OFF, GARAGE_HFLIP)
    assert hass.states.get(GARAGE_HFLIP).state == STATE_OFF
    assert hass.states.get(GARAGE_VFLIP).state == STATE_ON
    assert await agent_settings(hass, agent) == {"hflip": False, "vflip": True}


@pytest.mark.usefixtures("init_integration")
async def test_a_change_made_elsewhere_is_pushed(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    """Another client changes the rotation: the agent's stream_controls event brings it to the entity."""
    await hass.async_add_executor_job(agent.request, "PUT", "/streams/garage/controls", {"rotation": "180"})
    await wait_for(hass, lambda: hass.states.get(GARAGE_ROTATION).state == "180", "the pushed rotation")


@pytest.mark.usefixtures("init_integration")
async def test_the_enable_switch_keeps_the_settings(hass: HomeAssistant, agent: StableAgentProcess) -> None:
    """The enable switch sends the stream's whole configuration from HA's copy: that copy follows a
    change of settings, so disabling the stream does not put the old rotation back."""
    await select(hass, "180")
    await wait_for(
        hass,
        lambda: (
            hass.config_entries.async_entries(DOMAIN)[0].runtime_data.data.streams["garage"]["config"][
                "settings"
            ]
            == {"rotation": "180"}
        ),
        "HA's copy of the configuration",
    )
    await switch(hass, SERVICE_TURN_OFF, "switch.garage_enabled")
    assert await agent_settings(hass, agent) == {"rotation": "180"}


@pytest.mark.usefixtures("init_integration")
async def test_a_refusal_is_the_agents_sentence_and_changes_nothing(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """The agent checks every value against the camera. HA's copy of the options is made stale here (as
    after the camera changed under it): the agent refuses, HA says why at that setting, the state stays."""
    coordinator = init_integration.runtime_data
    rotation = coordinator.data.controls["garage"]["rotation"]
    rotation["options"] = [*rotation["options"], {"id": "90", "name": "90°"}]
    with pytest.raises(ServiceValidationError) as err:
        await select(hass, "90")
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "control_refused"
    assert err.value.translation_placeholders == {
        "stream": "Garage",
        "control": "Rotation",
        "error": "Rotation must be one of 0, 180.",
    }
    assert hass.states.get(GARAGE_ROTATION).state == "0"
    assert await agent_settings(hass, agent) == {}


@pytest.mark.usefixtures("init_integration")
async def test_unreachable_agent(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """A change while the agent is gone fails with a translated error; the entities go unavailable with
    the rest of the Pi's entities, and come back with it."""
    await hass.async_add_executor_job(agent.stop)
    with pytest.raises(HomeAssistantError) as err:
        await switch(hass, SERVICE_TURN_ON, GARAGE_HFLIP)
    assert err.value.translation_key == "set_control_failed"
    assert err.value.translation_placeholders["control"] == "Flip horizontally"
    await init_integration.runtime_data.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(GARAGE_HFLIP).state == STATE_UNAVAILABLE
    assert hass.states.get(GARAGE_ROTATION).state == STATE_UNAVAILABLE
    await hass.async_add_executor_job(agent.start)
    await hass.async_add_executor_job(agent.wait_streams_running)
    await init_integration.runtime_data.async_refresh()
    await hass.async_block_till_done()
    assert hass.states.get(GARAGE_ROTATION).state == "0"


async def test_the_stream_editor_offers_the_orientation(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """The options flow's stream editor shows rotation and flips beside size and rate; what is chosen is
    stored as the stream's settings, and the entities follow."""
    await select(hass, "180")
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": "edit_stream"}
    )
    result = await hass.config_entries.options.async_configure(result["flow_id"], {"stream": "garage"})
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"name": "Garage", "source": "test"}
    )
    assert result["step_id"] == "pattern_settings"
    schema = result["data_schema"].schema
    suggested = {str(key): key.description["suggested_value"] for key in schema}
    assert (suggested["rotation"], suggested["hflip"], suggested["vflip"]) == ("180", False, False)
    form = {**suggested, "vflip": True}
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.MENU
    # The rotation set from its entity stays; the flip of the form is added; hflip stays unset.
    assert await agent_settings(hass, agent) == {"rotation": "180", "vflip": True}
    await wait_for(hass, lambda: hass.states.get(GARAGE_VFLIP).state == STATE_ON, "the flip")
    assert hass.states.get(GARAGE_HFLIP).state == STATE_OFF


# -- the agent's words ---------------------------------------------------------------------------------------


@pytest.fixture
def published(agent: StableAgentProcess) -> Any:
    return agent.request("GET", "/vocabulary")["stream_settings"]


def test_every_setting_has_its_translated_name_states_and_icon(published: list[dict[str, Any]]) -> None:
    """Entity names and select states come from en.json by setting id: it must mirror the agent's words
    (the agent owns them), for every setting it can offer, and icons.json must have an icon for each."""
    entities = json.loads((COMPONENT / "translations" / "en.json").read_text())["entity"]
    icons = json.loads((COMPONENT / "icons.json").read_text())["entity"]
    for setting in published:
        translated = entities[setting["kind"]][setting["id"]]
        assert translated["name"] == setting["name"]
        if setting.get("options"):
            assert translated["state"] == {option["id"]: option["name"] for option in setting["options"]}
        assert icons[setting["kind"]][setting["id"]]["default"] == setting["icon"]


# -- a camera's own controls (V4L2) --------------------------------------------------------------------------


def test_a_cards_menu_shows_its_labels() -> None:
    """A V4L2 menu's option ids are bare indexes: Home Assistant shows the driver's labels and sends the
    index back; a label listed twice stays selectable. A setting's options are its ids (translated)."""
    menu = {
        "id": "v4l2:power_line_frequency",
        "source": "v4l2",
        "options": [
            {"id": "0", "name": "Disabled"},
            {"id": "1", "name": "50 Hz"},
            {"id": "2", "name": "60 Hz"},
            {"id": "3", "name": "50 Hz"},
        ],
    }
    assert choices(menu) == {"Disabled": "0", "50 Hz": "1", "60 Hz": "2", "50 Hz (3)": "3"}
    setting = {"id": "rotation", "source": "setting", "options": [{"id": "0", "name": "0°"}]}
    assert choices(setting) == {"0": "0"}


def test_whole_numbered_controls_are_sent_as_integers() -> None:
    """Home Assistant's number service gives floats; a V4L2 integer control takes an integer."""
    assert agent_number({"min": -128, "max": 127, "step": 1}, 10.0) == 10
    assert isinstance(agent_number({"min": -128, "max": 127, "step": 1}, 10.0), int)
    assert agent_number({"min": -1.0, "max": 1.0, "step": 0.05}, 0.25) == 0.25
