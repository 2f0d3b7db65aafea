"""Camera controls in Home Assistant for a camera module and a capture card, against the real agent.

The simulated Pi has a Camera Module 3 (imx708, with autofocus) and a USB capture card, each listing the
controls real ones do (recorded outputs of rpicam-hello -v and v4l2-ctl). The stand-in rpicam-vid on PATH
takes the picture options as the real one does and publishes a real H.264 stream; the stand-in v4l2-ctl
keeps the card's control values, so a live change is checked where it lands.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.button.const import DOMAIN as BUTTON_DOMAIN
from homeassistant.components.button.const import SERVICE_PRESS
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.components.number import DOMAIN as NUMBER_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, ATTR_UNIT_OF_MEASUREMENT, EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.controls import PiStreamAutofocusButton
from tests.integration.agent_process import REPO_ROOT, SMALL_STREAMS
from tests.integration.stable_agent import StableAgentProcess

STANDINS = REPO_ROOT / "tests" / "agent" / "bin"
CARD_PATH = "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"
CAMERA_STREAMS: list[dict[str, Any]] = [
    SMALL_STREAMS[1],  # garage: a test pattern, without autofocus
    {
        "id": "cam",
        "name": "Camera",
        "source": {"type": "csi", "camera": 0},
        "width": 320,
        "height": 240,
        "fps": 10,
        "bitrate": "300k",
    },
    {
        "id": "card",
        "name": "Card",
        "source": {"type": "v4l2", "device": CARD_PATH, "input_format": "mjpeg"},
        "width": 640,
        "height": 480,
        "fps": 10,
        "bitrate": "300k",
    },
]


@pytest.fixture
def v4l2_state(tmp_path: Path) -> Path:
    path = tmp_path / "v4l2-ctl"
    path.mkdir()
    return path


@pytest.fixture
def agent(
    tmp_path: Path, v4l2_state: Path, socket_enabled: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StableAgentProcess]:
    """The agent with the stand-in rpicam-vid and the stateful stand-in v4l2-ctl on its PATH; the card's
    controls start as the simulated card reports them."""
    monkeypatch.setenv(
        "PATH", os.pathsep.join([str(STANDINS / "controls"), str(STANDINS / "streams"), os.environ["PATH"]])
    )
    monkeypatch.setenv("V4L2CTL_STATE_DIR", str(v4l2_state))
    monkeypatch.setenv("V4L2CTL_CONTROLS", str(v4l2_state / "controls.json"))
    process = StableAgentProcess(state_dir=tmp_path / "agent-state", streams=CAMERA_STREAMS)
    process.start()
    try:
        card = process.request("GET", "/devices")["capture_devices"][0]
        (v4l2_state / "controls.json").write_text(json.dumps(card["controls"]))
        yield process
    finally:
        process.stop()


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, agent: StableAgentProcess, mock_config_entry: MockConfigEntry
) -> AsyncGenerator[MockConfigEntry]:
    """Set up once the camera module's stream runs (the card's has no frames to read: it retries)."""
    await hass.async_add_executor_job(wait_running, agent, "cam")
    with patch(
        "custom_components.pi_stream.PLATFORMS",
        [Platform.BUTTON, Platform.NUMBER, Platform.SELECT, Platform.SWITCH],
    ):
        mock_config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        yield mock_config_entry
        await hass.config_entries.async_unload(mock_config_entry.entry_id)


def wait_running(agent: StableAgentProcess, stream_id: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while agent.request("GET", f"/streams/{stream_id}")["state"] != "running":
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {stream_id} not running")
        time.sleep(0.2)


def control_entities(registry: er.EntityRegistry, entry: MockConfigEntry, stream_id: str) -> dict[str, Any]:
    """control id → registry entry, for one stream."""
    prefix = f"_{stream_id}_control_"
    return {
        entity.unique_id.split(prefix, 1)[1]: entity
        for entity in er.async_entries_for_config_entry(registry, entry.entry_id)
        if prefix in entity.unique_id
    }


async def set_number(hass: HomeAssistant, entity_id: str, value: float) -> None:
    await hass.services.async_call(
        NUMBER_DOMAIN, SERVICE_SET_VALUE, {ATTR_ENTITY_ID: entity_id, ATTR_VALUE: value}, blocking=True
    )


async def stream_config(hass: HomeAssistant, agent: StableAgentProcess, stream_id: str) -> Any:
    return (await hass.async_add_executor_job(agent.request, "GET", f"/streams/{stream_id}"))["config"]


async def test_entities_for_what_each_camera_has(
    hass: HomeAssistant, init_integration: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """Each stream gets the controls its camera lists, on the platform of their kind, in the
    configuration category; the common ones enabled, the rest disabled until a person enables them."""
    cam = control_entities(entity_registry, init_integration, "cam")
    card = control_entities(entity_registry, init_integration, "card")
    garage = control_entities(entity_registry, init_integration, "garage")
    document = init_integration.runtime_data.data.controls
    assert set(cam) == set(document["cam"]) and "autofocus" in cam and "lens_position" in cam
    assert set(card) == set(document["card"]) and "v4l2:brightness" in card
    # A test pattern: no focus, no exposure; its orientation, and motion detection (any picture moves).
    assert set(garage) == {
        "rotation",
        "hflip",
        "vflip",
        "motion_detection",
        "motion_sensitivity",
        "motion_min_duration_s",
    }
    assert {control_id: entity.domain for control_id, entity in cam.items()} == {
        control_id: control["kind"] for control_id, control in document["cam"].items()
    }
    for entities in (cam, card, garage):
        assert all(entity.entity_category is EntityCategory.CONFIG for entity in entities.values())
    enabled = {control_id for control_id, entity in cam.items() if entity.disabled_by is None}
    assert enabled == {cid for cid, control in document["cam"].items() if control["enabled_by_default"]}
    assert {"rotation", "af_mode", "brightness", "exposure", "autofocus"} <= enabled
    assert "lens_position" not in enabled and "hdr" not in enabled

    brightness = hass.states.get("number.camera_brightness")
    assert (brightness.attributes["min"], brightness.attributes["max"]) == (-1.0, 1.0)
    # The card's own control: the driver's name, its range and step, its current value.
    card_brightness = hass.states.get("number.card_brightness")
    assert card_brightness.attributes["friendly_name"] == "Card Brightness"
    assert (card_brightness.attributes["min"], card_brightness.attributes["max"]) == (-128, 127)
    assert card_brightness.attributes["step"] == 1
    assert card_brightness.state == "-11"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_ranges_are_the_cameras(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """The lens position's range is the camera's (0 to 15 dioptres on a Camera Module 3), narrower than
    the vocabulary's default; the unit is the agent's."""
    lens = hass.states.get("number.camera_lens_position")
    assert (lens.attributes["min"], lens.attributes["max"]) == (0.0, 15.0)
    assert lens.attributes[ATTR_UNIT_OF_MEASUREMENT] == "dioptres"


async def test_a_camera_setting_is_confirmed(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """Brightness 0.25 on the camera module: stored as the stream's setting (rpicam-vid --brightness on
    its next start), shown once the agent confirmed it."""
    await set_number(hass, "number.camera_brightness", 0.25)
    assert hass.states.get("number.camera_brightness").state == "0.25"
    assert (await stream_config(hass, agent, "cam"))["settings"] == {"brightness": 0.25}


async def test_a_card_control_is_set_live(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry, v4l2_state: Path
) -> None:
    """The card's brightness is set on the card itself (v4l2-ctl -c, no restart) and kept in the stream's
    configuration; the entity shows the value the agent read back."""
    await set_number(hass, "number.card_brightness", 10)
    assert hass.states.get("number.card_brightness").state == "10"
    assert (await stream_config(hass, agent, "card"))["v4l2_controls"] == {"brightness": 10}
    calls = [json.loads(line) for line in (v4l2_state / "calls.log").read_text().splitlines()]
    assert any(call[-2:] == ["-c", "brightness=10"] for call in calls)


async def test_autofocus(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """The button asks the agent for one autofocus cycle where the camera has autofocus."""
    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: "button.camera_autofocus"}, blocking=True
    )
    assert hass.states.get("button.camera_autofocus").state != "unknown"  # pressed: its time is the state


async def test_autofocus_refused_where_there_is_none(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """A stream without autofocus has no button; asked anyway (a stale copy), the agent's reason comes
    back as a translated error."""
    coordinator = init_integration.runtime_data
    control = {**coordinator.data.controls["cam"]["autofocus"]}
    button = PiStreamAutofocusButton(coordinator, "garage", control)
    with pytest.raises(HomeAssistantError) as err:
        await button.async_press()
    assert err.value.translation_key == "autofocus_failed"
    assert err.value.translation_placeholders["stream"] == "Garage"
    assert "autofocus" in err.value.translation_placeholders["error"].lower()
