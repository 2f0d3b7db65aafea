"""The options flow edits the Pi's streams on the real agent, which validates and persists them.

Every change is checked where it lands: the agent's ``GET /streams`` and its ``streams.yaml``. The simulated
Pi has no camera module or capture card (nothing here has one), so for those sources only the devices document
the agent would report (``GET /devices``, as in docs/api.md) is made up; the agent still takes the change.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncGenerator, Callable
from typing import Any
from unittest.mock import patch

import pytest
import yaml
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.config_flow import (
    card_formats,
    card_rates,
    card_resolutions,
    csi_rates,
    csi_resolutions,
    source_choices,
)
from custom_components.pi_stream.const import CONF_TOKEN, DOMAIN
from custom_components.pi_stream.coordinator import PiStreamCoordinator
from tests.integration.agent_process import AgentProcess

STABLE_PATH = "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"
IMX708: dict[str, Any] = {
    "index": 0,
    "model": "imx708",
    "sensor_width": 4608,
    "sensor_height": 2592,
    "bit_depth": 10,
    "bayer": "RGGB",
    "id_path": "/base/soc/i2c0mux/i2c@1/imx708@1a",
    "modes": [
        {"format": "SRGGB10_CSI2P", "width": 1536, "height": 864, "fps": 120.13},
        {"format": "SRGGB10_CSI2P", "width": 2304, "height": 1296, "fps": 56.03},
        {"format": "SRGGB10_CSI2P", "width": 4608, "height": 2592, "fps": 14.35},
    ],
}
USB_CARD: dict[str, Any] = {
    "id": "usb-534d_USB_Video",
    "name": "USB Video",
    "bus": "usb-0000:01:00.0-1.3",
    "path": "/dev/video2",
    "stable_path": STABLE_PATH,
    "driver": "uvcvideo",
    "formats": [
        {
            "fourcc": "MJPG",
            "description": "Motion-JPEG",
            "compressed": True,
            "sizes": [
                {"width": 1920, "height": 1080, "fps": [30.0, 25.0], "min_width": None, "min_height": None},
                {"width": 1280, "height": 720, "fps": [60.0, 30.0], "min_width": None, "min_height": None},
            ],
        },
        {
            "fourcc": "YUYV",
            "description": "YUYV 4:2:2",
            "compressed": False,
            "sizes": [{"width": 640, "height": 480, "fps": [30.0], "min_width": None, "min_height": None}],
        },
    ],
}
# A Pi 4 with an imx708 camera module and a USB HDMI capture card, as GET /api/v1/devices reports it.
DEVICES: dict[str, Any] = {
    "capture_devices": [USB_CARD],
    "csi_cameras": [IMX708],
    "hardware_encoder": {"h264": True, "device": "/dev/video11", "name": "bcm2835-codec-encode"},
    "platform_nodes": [],
    "unavailable": {},
}
NO_DEVICES: dict[str, Any] = {"capture_devices": [], "csi_cameras": [], "unavailable": {}}

TEST_SETTINGS: dict[str, Any] = {
    "pattern": "smptebars",
    "width": 320,
    "height": 240,
    "fps": 10,
    "bitrate": 300,
    "keyframe_interval": 1,
    "encoder": "auto",
    "substream": False,
}


@pytest.fixture
async def coordinator(init_integration: MockConfigEntry) -> PiStreamCoordinator:
    coordinator: PiStreamCoordinator = init_integration.runtime_data
    return coordinator


@pytest.fixture
async def agent_devices(coordinator: PiStreamCoordinator) -> AsyncGenerator[dict[str, Any]]:
    """The agent's devices document, with a camera module and a capture card in it."""
    devices = copy.deepcopy(DEVICES)
    with patch.object(coordinator.client, "devices", return_value=devices):
        yield devices


async def agent_streams(hass: HomeAssistant, agent: AgentProcess) -> dict[str, dict[str, Any]]:
    listing = await hass.async_add_executor_job(agent.request, "GET", "/streams")
    return {stream["id"]: stream for stream in listing["streams"]}


async def stored_streams(hass: HomeAssistant, agent: AgentProcess) -> dict[str, dict[str, Any]]:
    """What the agent persisted: <state_dir>/streams.yaml."""
    text = await hass.async_add_executor_job((agent.state_dir / "streams.yaml").read_text)
    return {stream["id"]: stream for stream in yaml.safe_load(text)["streams"]}


async def open_menu(hass: HomeAssistant, entry: MockConfigEntry) -> ConfigFlowResult:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "init"
    return result


async def choose(hass: HomeAssistant, result: ConfigFlowResult, option: str) -> ConfigFlowResult:
    return await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": option})


async def submit(
    hass: HomeAssistant, result: ConfigFlowResult, user_input: dict[str, Any]
) -> ConfigFlowResult:
    return await hass.config_entries.options.async_configure(result["flow_id"], user_input)


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


def suggested(result: ConfigFlowResult) -> dict[str, Any]:
    return {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }


def options(result: ConfigFlowResult, field: str) -> list[tuple[str, str]]:
    selector = next(value for key, value in result["data_schema"].schema.items() if str(key) == field)
    return [(option["value"], option["label"]) for option in selector.config["options"]]


# -- the menu ----------------------------------------------------------------------------------------------


async def test_menu_lists_the_pis_streams(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    result = await open_menu(hass, init_integration)
    assert result["menu_options"] == ["add_stream", "edit_stream", "enable_streams", "remove_stream", "done"]
    assert result["description_placeholders"] == {
        "streams": "- Front door (front_door): running\n- Garage (garage): running",
        "warnings": "",
    }
    result = await choose(hass, result, "done")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert init_integration.options == {}


async def test_menu_without_streams_offers_adding_one(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    for stream_id in ("front_door", "garage"):
        await hass.async_add_executor_job(agent.request, "DELETE", f"/streams/{stream_id}")
    result = await open_menu(hass, init_integration)
    assert result["menu_options"] == ["add_stream", "done"]
    assert result["description_placeholders"]["streams"] == "-"


async def test_options_need_a_connected_pi(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="0000000000000000",
        data={CONF_HOST: "192.0.2.7", CONF_PORT: 8190, CONF_TOKEN: "t"},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_loaded"


async def test_options_abort_when_the_agent_is_gone(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    await hass.async_add_executor_job(agent.stop)
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"
    assert "/streams" in result["description_placeholders"]["error"]


# -- add ---------------------------------------------------------------------------------------------------


async def test_add_a_test_pattern_stream(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    coordinator: PiStreamCoordinator,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    assert result["step_id"] == "add_stream"
    # The simulated Pi has no camera module or card: a test pattern is what it offers.
    assert options(result, "source") == [("test", "test")]

    # A bad id and an id already in use are caught before anything is sent; the form can be retried.
    result = await submit(hass, result, {"stream_id": "Porch Cam", CONF_NAME: "Porch", "source": "test"})
    assert result["errors"] == {"stream_id": "invalid_stream_id"}
    result = await submit(hass, result, {"stream_id": "garage", CONF_NAME: "Porch", "source": "test"})
    assert result["errors"] == {"stream_id": "stream_exists"}
    result = await submit(hass, result, {"stream_id": " porch ", CONF_NAME: " Porch ", "source": "test"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "stream_settings"
    assert result["description_placeholders"]["stream"] == "porch"
    assert suggested(result) == {
        "pattern": "testsrc2",
        "width": 640,
        "height": 360,
        "fps": 15,
        "bitrate": 2000,
        "keyframe_interval": 1.0,
        "encoder": "auto",
        "substream": False,
        "substream_width": 320,
        "substream_height": 180,
        "substream_fps": 10,
        "substream_bitrate": 250,
    }
    assert [value for value, _ in options(result, "encoder")] == ["auto", "hardware", "software"]

    result = await submit(hass, result, TEST_SETTINGS)
    assert result["type"] is FlowResultType.MENU
    assert "- Porch (porch): " in result["description_placeholders"]["streams"]

    expected = {
        "id": "porch",
        "name": "Porch",
        "source": {"type": "test", "pattern": "smptebars"},
        "width": 320,
        "height": 240,
        "fps": 10.0,
        "bitrate": 300000,
        "keyframe_interval_s": 1.0,
        "encoder": "auto",
        "rtsp_path": "porch",
        "enabled": True,
        "substream": None,
    }
    assert (await agent_streams(hass, agent))["porch"]["config"] == expected
    assert (await stored_streams(hass, agent))["porch"] == expected
    # The coordinator has it already, so its device and entities appear without a reload.
    assert "porch" in coordinator.data.streams
    await hass.async_block_till_done()
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"{init_integration.unique_id}_porch")})
    assert device is not None
    assert device.name == "Porch"
    assert er.async_entries_for_device(entity_registry, device.id)


async def test_agent_refusal_is_shown_and_can_be_fixed(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    result = await submit(hass, result, {"stream_id": "porch", "source": "test"})

    # A substream asked for but left without its size: said before asking the agent.
    result = await submit(hass, result, {**TEST_SETTINGS, "substream": True})
    assert result["errors"] == {
        "substream_width": "substream_incomplete",
        "substream_height": "substream_incomplete",
        "substream_fps": "substream_incomplete",
        "substream_bitrate": "substream_incomplete",
    }

    # A substream as wide as the main stream: the agent refuses it, with its reason, at the field.
    too_wide = {
        **TEST_SETTINGS,
        "substream": True,
        "substream_width": 320,
        "substream_height": 120,
        "substream_fps": 5,
        "substream_bitrate": 100,
    }
    result = await submit(hass, result, too_wide)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "stream_settings"
    assert result["errors"] == {"base": "agent_refused", "substream_width": "refused"}
    problems = result["description_placeholders"]["problems"]
    assert "substream.width: must be smaller than the main width (320), got 320" in problems
    assert result["description_placeholders"]["stream"] == "porch"
    assert suggested(result)["substream_width"] == 320  # what was typed stays
    assert "porch" not in await agent_streams(hass, agent)

    result = await submit(hass, result, {**too_wide, "substream_width": 160})
    assert result["type"] is FlowResultType.MENU
    stored = (await stored_streams(hass, agent))["porch"]
    assert stored["substream"] == {
        "width": 160,
        "height": 120,
        "fps": 5.0,
        "bitrate": 100000,
        "rtsp_path": "porch_sub",
    }


async def test_add_a_camera_module_stream(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    agent_devices: dict[str, Any],
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    assert options(result, "source") == [
        ("csi:0", "0: imx708, 4608×2592"),
        (f"v4l2:{STABLE_PATH}", f"USB Video ({STABLE_PATH})"),
        ("test", "test"),
    ]
    result = await submit(hass, result, {"stream_id": "yard", CONF_NAME: "Yard", "source": "csi:0"})
    assert result["step_id"] == "stream_settings"
    assert result["description_placeholders"]["source"] == "0: imx708, 4608×2592"
    resolutions = options(result, "resolution")
    assert resolutions[0] == ("4608x2592", "4608×2592 (≤ 14.35 fps)")
    assert ("2304x1296", "2304×1296 (≤ 56.03 fps)") in resolutions
    assert ("1920x1080", "1920×1080 (≤ 56.03 fps)") in resolutions
    assert ("640x360", "640×360 (≤ 120.13 fps)") in resolutions
    assert [value for value, _ in options(result, "fps")][-1] == "120"
    assert [value for value, _ in options(result, "encoder")] == ["auto", "hardware", "software"]
    assert suggested(result)["resolution"] == "1280x720"
    assert suggested(result)["fps"] == "30"

    settings = {
        "resolution": "2304x1296",
        "fps": "30",
        "bitrate": 4000,
        "keyframe_interval": 1,
        "encoder": "auto",
        "substream": False,
    }
    # Typed values the form cannot read.
    result = await submit(hass, result, {**settings, "resolution": "big", "fps": "fast"})
    assert result["errors"] == {"resolution": "invalid_resolution", "fps": "invalid_number"}
    # Beyond the Pi 4's hardware encoder (auto picks it): the agent refuses, at the resolution.
    result = await submit(hass, result, settings)
    assert result["errors"] == {"base": "agent_refused", "resolution": "refused"}
    assert "takes at most 1920x1920" in result["description_placeholders"]["problems"]
    # A size typed in, rather than picked.
    result = await submit(hass, result, {**settings, "resolution": "1600 x 900"})
    assert result["type"] is FlowResultType.MENU
    # What the agent had to say about it comes with the menu.
    assert "not checked" in result["description_placeholders"]["warnings"]

    config = (await stored_streams(hass, agent))["yard"]
    assert config["source"] == {"type": "csi", "camera": 0}
    assert (config["width"], config["height"], config["fps"], config["bitrate"]) == (1600, 900, 30.0, 4000000)


async def test_add_a_capture_card_stream(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    agent_devices: dict[str, Any],
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    result = await submit(hass, result, {"stream_id": "hdmi", "source": f"v4l2:{STABLE_PATH}"})
    assert options(result, "input_format") == [
        ("mjpeg", "mjpeg (Motion-JPEG)"),
        ("yuyv422", "yuyv422 (YUYV 4:2:2)"),
    ]
    assert options(result, "resolution") == [
        ("1920x1080", "1920×1080 (30, 25 fps)"),
        ("1280x720", "1280×720 (60, 30 fps)"),
        ("640x480", "640×480 (30 fps)"),
    ]
    assert [value for value, _ in options(result, "fps")] == ["60", "30", "25"]
    assert [value for value, _ in options(result, "encoder")] == ["auto", "hardware", "software", "copy"]
    assert {k: suggested(result)[k] for k in ("input_format", "resolution", "fps")} == {
        "input_format": "mjpeg",
        "resolution": "1280x720",
        "fps": "30",
    }
    result = await submit(
        hass,
        result,
        {
            "input_format": "mjpeg",
            "resolution": "1920x1080",
            "fps": "30",
            "bitrate": 4000,
            "keyframe_interval": 2,
            "encoder": "software",
            "substream": False,
        },
    )
    assert result["type"] is FlowResultType.MENU
    stream = (await agent_streams(hass, agent))["hdmi"]
    assert stream["config"]["source"] == {"type": "v4l2", "device": STABLE_PATH, "input_format": "mjpeg"}
    assert stream["config"]["keyframe_interval_s"] == 2.0
    assert (await stored_streams(hass, agent))["hdmi"]["name"] is None


# -- edit ----------------------------------------------------------------------------------------------------


async def test_edit_a_stream(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    coordinator: PiStreamCoordinator,
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "edit_stream")
    assert result["step_id"] == "edit_stream"
    assert options(result, "stream") == [
        ("front_door", "Front door (front_door)"),
        ("garage", "Garage (garage)"),
    ]
    result = await submit(hass, result, {"stream": "front_door"})
    assert result["step_id"] == "edit_source"
    assert result["description_placeholders"] == {"stream": "front_door"}
    assert suggested(result) == {CONF_NAME: "Front door", "source": "test"}

    result = await submit(hass, result, {CONF_NAME: "Front porch", "source": "test"})
    assert result["step_id"] == "stream_settings"
    # The form starts from the stream's configuration.
    assert suggested(result) == {
        "pattern": "testsrc2",
        "width": 320,
        "height": 240,
        "fps": 10.0,
        "bitrate": 300,
        "keyframe_interval": 1.0,
        "encoder": "auto",
        "substream": True,
        "substream_width": 160,
        "substream_height": 120,
        "substream_fps": 5.0,
        "substream_bitrate": 100,
    }
    result = await submit(
        hass,
        result,
        {
            **TEST_SETTINGS,
            "pattern": "testsrc",
            "fps": 8,
            "bitrate": 250,
            "substream": True,
            "substream_width": 192,
            "substream_height": 144,
            "substream_fps": 4,
            "substream_bitrate": 80,
        },
    )
    assert result["type"] is FlowResultType.MENU
    expected = {
        "id": "front_door",
        "name": "Front porch",
        "source": {"type": "test", "pattern": "testsrc"},
        "width": 320,
        "height": 240,
        "fps": 8.0,
        "bitrate": 250000,
        "keyframe_interval_s": 1.0,
        "encoder": "auto",
        "rtsp_path": "front_door",  # the URL Home Assistant and recorders use does not change
        "enabled": True,
        "substream": {
            "width": 192,
            "height": 144,
            "fps": 4.0,
            "bitrate": 80000,
            "rtsp_path": "front_door_sub",
        },
    }
    assert (await agent_streams(hass, agent))["front_door"]["config"] == expected
    assert (await stored_streams(hass, agent))["front_door"] == expected
    assert coordinator.data.streams["front_door"]["name"] == "Front porch"


async def test_edit_moves_a_stream_to_a_camera_and_drops_its_substream(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    agent_devices: dict[str, Any],
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "edit_stream")
    result = await submit(hass, result, {"stream": "front_door"})
    result = await submit(hass, result, {"source": "csi:0"})  # name cleared: the id is shown
    # The current size and rate are kept where the camera allows them (320x240 is no listed size).
    assert suggested(result)["resolution"] == "320x240"
    assert options(result, "resolution")[0] == ("320x240", "320×240")
    assert suggested(result)["fps"] == "10"
    result = await submit(
        hass,
        result,
        {
            "resolution": "640x480",
            "fps": "30",
            "bitrate": 1000,
            "keyframe_interval": 1,
            "encoder": "auto",
            "substream": False,
        },
    )
    assert result["type"] is FlowResultType.MENU
    config = (await stored_streams(hass, agent))["front_door"]
    assert config["name"] is None
    assert config["source"] == {"type": "csi", "camera": 0}
    assert config["substream"] is None


async def test_edit_a_stream_whose_device_is_gone(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    coordinator: PiStreamCoordinator,
) -> None:
    """A card that is unplugged (or a camera not listed) stays selectable, with the stream's settings."""
    card = {
        "id": "hdmi",
        "source": {"type": "v4l2", "device": "usb-534d_USB_Video", "input_format": "uyvy422"},
        "width": 1280,
        "height": 720,
        "fps": 24,
        "bitrate": "3M",
        "encoder": "software",
    }
    await hass.async_add_executor_job(agent.request, "PUT", "/streams/hdmi", card)
    with patch.object(coordinator.client, "devices", return_value=NO_DEVICES):
        result = await choose(hass, await open_menu(hass, init_integration), "edit_stream")
        result = await submit(hass, result, {"stream": "hdmi"})
        assert options(result, "source")[0] == ("v4l2:usb-534d_USB_Video", "usb-534d_USB_Video")
        assert suggested(result)["source"] == "v4l2:usb-534d_USB_Video"
        result = await submit(hass, result, {"source": "v4l2:usb-534d_USB_Video"})
    # Without the card's listing: its current format and size, and common choices.
    assert [value for value, _ in options(result, "input_format")] == ["uyvy422", "mjpeg", "h264", "yuyv422"]
    assert suggested(result)["input_format"] == "uyvy422"
    assert ("1920x1080", "1920×1080") in options(result, "resolution")
    assert suggested(result)["resolution"] == "1280x720"
    assert options(result, "fps")[0] == ("24", "24 fps")
    assert suggested(result)["encoder"] == "software"
    result = await submit(
        hass,
        result,
        {
            "input_format": "h264",
            "resolution": "1280x720",
            "fps": "25",
            "bitrate": 3000,
            "keyframe_interval": 1,
            "encoder": "copy",
            "substream": False,
        },
    )
    assert result["type"] is FlowResultType.MENU
    config = (await stored_streams(hass, agent))["hdmi"]
    assert config["source"] == {"type": "v4l2", "device": "usb-534d_USB_Video", "input_format": "h264"}
    assert config["fps"] == 25.0


# -- enable / disable


async def test_disable_and_enable_streams(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    coordinator: PiStreamCoordinator,
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "enable_streams")
    assert result["step_id"] == "enable_streams"
    key = next(iter(result["data_schema"].schema))
    assert key.default() == ["front_door", "garage"]

    result = await submit(hass, result, {"enabled_streams": ["front_door"]})
    assert result["type"] is FlowResultType.MENU
    assert (await agent_streams(hass, agent))["garage"]["config"]["enabled"] is False
    assert (await stored_streams(hass, agent))["garage"]["enabled"] is False
    assert (await stored_streams(hass, agent))["front_door"]["enabled"] is True
    # The agent stops the publisher; the state follows (pushed to Home Assistant as it happens).
    await wait_for(lambda: coordinator.data.streams["garage"]["state"] == "disabled")
    assert (await agent_streams(hass, agent))["garage"]["state"] == "disabled"

    result = await choose(hass, result, "enable_streams")
    assert next(iter(result["data_schema"].schema)).default() == ["front_door"]
    result = await submit(hass, result, {"enabled_streams": ["front_door", "garage"]})
    assert result["type"] is FlowResultType.MENU
    assert (await agent_streams(hass, agent))["garage"]["config"]["enabled"] is True
    assert (await stored_streams(hass, agent))["garage"]["enabled"] is True


# -- remove


async def test_remove_a_stream_and_its_device(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    coordinator: PiStreamCoordinator,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    agent_id = init_integration.unique_id
    device = device_registry.async_get_or_create(
        config_entry_id=init_integration.entry_id, identifiers={(DOMAIN, f"{agent_id}_garage")}
    )
    entity_ids = [e.entity_id for e in er.async_entries_for_device(entity_registry, device.id)]
    result = await choose(hass, await open_menu(hass, init_integration), "remove_stream")
    assert result["step_id"] == "remove_stream"
    assert options(result, "stream") == [
        ("front_door", "Front door (front_door)"),
        ("garage", "Garage (garage)"),
    ]
    result = await submit(hass, result, {"stream": "garage"})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["add_stream", "edit_stream", "enable_streams", "remove_stream", "done"]
    assert "garage" not in await agent_streams(hass, agent)
    assert set(await stored_streams(hass, agent)) == {"front_door"}
    assert "garage" not in coordinator.data.streams
    assert device_registry.async_get(device.id) is None
    await hass.async_block_till_done()
    assert not er.async_entries_for_device(entity_registry, device.id, include_disabled_entities=True)
    assert all(hass.states.get(entity_id) is None for entity_id in entity_ids)

    # Added again under the same id: a new device, with its entities, without a reload.
    result = await choose(hass, result, "add_stream")
    result = await submit(hass, result, {"stream_id": "garage", "source": "test"})
    result = await submit(hass, result, TEST_SETTINGS)
    assert result["type"] is FlowResultType.MENU
    await hass.async_block_till_done()
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"{agent_id}_garage")})
    assert device is not None
    assert er.async_entries_for_device(entity_registry, device.id)


async def test_remove_a_stream_already_removed_elsewhere(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "remove_stream")
    await hass.async_add_executor_job(agent.request, "DELETE", "/streams/garage")
    result = await submit(hass, result, {"stream": "garage"})
    assert result["type"] is FlowResultType.MENU
    assert "garage" not in result["description_placeholders"]["streams"]


# -- the agent goes away while a form is open


async def test_changes_while_the_agent_is_down_can_be_retried(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    settings = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    settings = await submit(hass, settings, {"stream_id": "porch", "source": "test"})
    toggles = await choose(hass, await open_menu(hass, init_integration), "enable_streams")
    removal = await choose(hass, await open_menu(hass, init_integration), "remove_stream")

    await hass.async_add_executor_job(agent.stop)
    settings = await submit(hass, settings, TEST_SETTINGS)
    toggles = await submit(hass, toggles, {"enabled_streams": ["front_door"]})
    removal = await submit(hass, removal, {"stream": "front_door"})
    for result, step in (
        (settings, "stream_settings"),
        (toggles, "enable_streams"),
        (removal, "remove_stream"),
    ):
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == step
        assert result["errors"] == {"base": "cannot_connect"}
        assert result["description_placeholders"]["error"]

    await hass.async_add_executor_job(agent.start)
    assert (await submit(hass, settings, TEST_SETTINGS))["type"] is FlowResultType.MENU
    assert (await submit(hass, toggles, {"enabled_streams": ["front_door"]}))["type"] is FlowResultType.MENU
    assert (await submit(hass, removal, {"stream": "front_door"}))["type"] is FlowResultType.MENU
    stored = await stored_streams(hass, agent)
    assert set(stored) == {"garage", "porch"}
    assert stored["garage"]["enabled"] is False


# -- choices built from the devices document


def test_source_choices_match_a_stream_named_by_id_path_or_node() -> None:
    by_id_path = {"type": "csi", "camera": IMX708["id_path"]}
    by_node = {"type": "v4l2", "device": "/dev/video2"}
    by_id = {"type": "v4l2", "device": "usb-534d_USB_Video"}
    for current in (by_id_path, by_node, by_id):
        # Already offered under its listed name: not added a second time.
        assert len(source_choices(DEVICES, current)) == 3
    missing_camera = source_choices(DEVICES, {"type": "csi", "camera": 1})
    assert [c.value for c in missing_camera] == ["csi:1", "csi:0", f"v4l2:{STABLE_PATH}", "test"]
    assert missing_camera[0].source == {"type": "csi", "camera": 1}
    assert missing_camera[0].device is None


def test_choices_for_devices_that_report_little() -> None:
    # A 2021 camera listing has no frame rates; a card found by sysfs alone has no formats.
    camera = {
        "index": 0,
        "model": "ov5647",
        "modes": [{"width": 1296, "height": 972}, {"width": 640, "height": 480}],
    }
    assert csi_resolutions(camera)[0] == {"value": "1296x972", "label": "1296×972"}
    assert ("1920x1080") not in [option["value"] for option in csi_resolutions(camera)]
    assert [option["value"] for option in csi_rates(camera)][-1] == "120"
    card = {
        "id": "usb-1",
        "name": "Cam",
        "formats": [{"fourcc": "XXXX", "sizes": [{"width": 640, "height": 480}]}],
    }
    assert card_formats(card) == []
    assert card_resolutions(card) == [{"value": "640x480", "label": "640×480"}]
    assert card_rates(card) == []
    assert [c.label for c in source_choices({"capture_devices": [card]})] == ["Cam (usb-1)", "test"]
