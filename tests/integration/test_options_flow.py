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

from custom_components.pi_stream.api import PiStreamResponseError
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
# The agent's words, as GET /api/v1/vocabulary names them.
ENCODERS = ["auto", "hardware", "software"]


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


def selector(result: ConfigFlowResult, field: str) -> Any:
    return next(value for key, value in result["data_schema"].schema.items() if str(key) == field)


def options(result: ConfigFlowResult, field: str) -> list[tuple[str, str]]:
    return [(option["value"], option["label"]) for option in selector(result, field).config["options"]]


# -- the menu ----------------------------------------------------------------------------------------------


async def test_menu_lists_the_pis_streams(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    result = await open_menu(hass, init_integration)
    assert result["menu_options"] == ["add_stream", "edit_stream", "enable_streams", "remove_stream", "done"]
    # Each stream by its name, its state in the agent's words.
    assert result["description_placeholders"] == {
        "streams": "- Front door: Running\n- Garage: Running",
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
    vocabulary = await hass.async_add_executor_job(agent.request, "GET", "/vocabulary")
    result = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    assert result["step_id"] == "add_stream"
    # The simulated Pi's camera module and card, then a test pattern, by its human name.
    assert options(result, "source")[-1] == ("test", "Test pattern")

    # A bad id and an id already in use are caught before anything is sent; the form can be retried.
    result = await submit(hass, result, {"stream_id": "Porch Cam", CONF_NAME: "Porch", "source": "test"})
    assert result["errors"] == {"stream_id": "invalid_stream_id"}
    result = await submit(hass, result, {"stream_id": "garage", CONF_NAME: "Porch", "source": "test"})
    assert result["errors"] == {"stream_id": "stream_exists"}
    result = await submit(hass, result, {"stream_id": " porch ", CONF_NAME: " Porch ", "source": "test"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pattern_settings"
    assert result["description_placeholders"]["stream"] == "Porch"
    # No substream fields until a substream is asked for.
    assert suggested(result) == {
        "pattern": "testsrc2",
        "width": 640,
        "height": 360,
        "fps": 15,
        "bitrate": 2000,
        "keyframe_interval": 1.0,
        "encoder": "auto",
        "rotation": "0",
        "hflip": False,
        "vflip": False,
        "substream": False,
    }
    # The rotations by the agent's names.
    rotations = {
        option["id"]: option["name"]
        for word in vocabulary["stream_settings"]
        if word["id"] == "rotation"
        for option in word["options"]
    }
    assert dict(options(result, "rotation")) == rotations
    # Patterns and encoders by the agent's names; copy needs a card, so a pattern does not offer it.
    patterns = options(result, "pattern")
    assert patterns == [(word["id"], word["name"]) for word in vocabulary["test_patterns"]]
    assert all(value != label for value, label in patterns)
    encoders = {word["id"]: word["name"] for word in vocabulary["encoders"]}
    assert options(result, "encoder") == [(encoder, encoders[encoder]) for encoder in ENCODERS]
    # The limits are the agent's: in the selectors and in the descriptions' placeholders.
    width = selector(result, "width").config
    assert (width["min"], width["max"], width["step"]) == (32, 4096, 2)
    assert selector(result, "fps").config["max"] == vocabulary["limits"]["fps"]["max"]
    assert selector(result, "bitrate").config["min"] == vocabulary["limits"]["bitrate_bps"]["min"] / 1000
    placeholders = result["description_placeholders"]
    assert (placeholders["width_min"], placeholders["width_max"]) == ("32", "4096")
    assert (placeholders["bitrate_min"], placeholders["bitrate_max"]) == ("50", "50000")
    assert (placeholders["keyframe_min"], placeholders["keyframe_max"]) == ("0.2", "10")

    result = await submit(hass, result, TEST_SETTINGS)
    assert result["type"] is FlowResultType.MENU
    assert "- Porch: " in result["description_placeholders"]["streams"]

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
        "settings": {},  # no rotation or flip chosen: the camera's defaults
        "v4l2_controls": {},
        "audio": None,
        "motion_region": None,  # motion detection watches the whole picture
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


async def test_agent_refusal_is_shown_at_its_field_and_can_be_fixed(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    result = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    result = await submit(hass, result, {"stream_id": "porch", "source": "test"})

    # An odd width: the agent says why, at the width, in a sentence; no summary above the form.
    result = await submit(hass, result, {**TEST_SETTINGS, "width": 321, "substream": True})
    assert result["step_id"] == "pattern_settings"
    assert result["errors"] == {"width": "refused_width"}
    reason = result["description_placeholders"]["refused_width"]
    assert reason.startswith("Width must be an even number")
    assert "streams[" not in reason and "width:" not in reason
    assert suggested(result)["width"] == 321  # what was typed stays
    assert "porch" not in await agent_streams(hass, agent)

    # Main settings the agent would take: the substream's own step follows, nothing is stored yet.
    result = await submit(hass, result, {**TEST_SETTINGS, "substream": True})
    assert result["step_id"] == "substream"
    assert result["description_placeholders"]["main_width"] == "320"
    # Suggested: half the main size, at most 10 fps, an eighth of its bitrate.
    assert suggested(result) == {
        "substream_width": 160,
        "substream_height": 120,
        "substream_fps": 10.0,
        "substream_bitrate": 50,
    }
    assert "porch" not in await agent_streams(hass, agent)

    # A substream as wide as the main stream and faster: each problem once, at its own field.
    too_big = {"substream_width": 320, "substream_height": 120, "substream_fps": 15, "substream_bitrate": 100}
    result = await submit(hass, result, too_big)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "substream"
    assert result["errors"] == {
        "substream_width": "refused_substream_width",
        "substream_fps": "refused_substream_fps",
    }
    placeholders = result["description_placeholders"]
    assert placeholders["refused_substream_width"] == (
        "Substream width must be smaller than the main stream's width (320)."
    )
    assert placeholders["refused_substream_fps"].startswith("Substream frame rate must be at most")
    assert placeholders["problems"] == ""
    assert suggested(result)["substream_width"] == 320
    assert "porch" not in await agent_streams(hass, agent)

    result = await submit(hass, result, {**too_big, "substream_width": 160, "substream_fps": 5})
    assert result["type"] is FlowResultType.MENU
    stored = (await stored_streams(hass, agent))["porch"]
    assert stored["substream"] == {
        "width": 160,
        "height": 120,
        "fps": 5.0,
        "bitrate": 100000,
        "rtsp_path": "porch_sub",
        "audio": False,
    }


async def test_a_problem_of_no_field_is_summed_up_above_the_form(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    # A stream called front_door_sub would publish where front_door's substream does: a problem of its RTSP
    # path, which the form does not show, so it is said at the top.
    result = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    result = await submit(hass, result, {"stream_id": "front_door_sub", "source": "test"})
    result = await submit(hass, result, TEST_SETTINGS)
    assert result["step_id"] == "pattern_settings"
    assert result["errors"] == {"base": "agent_refused"}
    summary = result["description_placeholders"]["problems"]
    assert "RTSP path is already used" in summary
    assert "streams[" not in summary and "rtsp_path:" not in summary


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
        ("test", "Test pattern"),
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
    assert [value for value, _ in options(result, "encoder")] == ENCODERS
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
    assert result["errors"] == {"resolution": "refused_resolution"}
    assert "1920" in result["description_placeholders"]["refused_resolution"]
    # A size typed in, rather than picked.
    result = await submit(hass, result, {**settings, "resolution": "1600 x 900"})
    assert result["type"] is FlowResultType.MENU
    # What the agent had to say about it comes with the menu: nothing, as it lists the simulated Pi's
    # camera module now and could check the stream against it.
    assert result["description_placeholders"]["warnings"] == ""

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
    # The card's formats, as the agent's input formats with its names.
    assert options(result, "input_format") == [("mjpeg", "Motion-JPEG"), ("yuyv422", "YUYV 4:2:2 (raw)")]
    assert options(result, "resolution") == [
        ("1920x1080", "1920×1080 (30, 25 fps)"),
        ("1280x720", "1280×720 (60, 30 fps)"),
        ("640x480", "640×480 (30 fps)"),
    ]
    assert [value for value, _ in options(result, "fps")] == ["60", "30", "25"]
    assert [value for value, _ in options(result, "encoder")] == [*ENCODERS, "copy"]
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
    # Streams by name; no "Front door (front_door)".
    assert options(result, "stream") == [("front_door", "Front door"), ("garage", "Garage")]
    result = await submit(hass, result, {"stream": "front_door"})
    assert result["step_id"] == "edit_source"
    assert result["description_placeholders"] == {"stream": "Front door"}
    assert suggested(result) == {CONF_NAME: "Front door", "source": "test"}

    result = await submit(hass, result, {CONF_NAME: "Front porch", "source": "test"})
    assert result["step_id"] == "pattern_settings"
    # The form starts from the stream's configuration.
    assert suggested(result) == {
        "pattern": "testsrc2",
        "width": 320,
        "height": 240,
        "fps": 10.0,
        "bitrate": 300,
        "keyframe_interval": 1.0,
        "encoder": "auto",
        # The orientation: none configured, so no rotation and no flips.
        "rotation": "0",
        "hflip": False,
        "vflip": False,
        "substream": True,
    }
    result = await submit(
        hass, result, {**TEST_SETTINGS, "pattern": "testsrc", "fps": 8, "bitrate": 250, "substream": True}
    )
    assert result["step_id"] == "substream"
    assert suggested(result) == {
        "substream_width": 160,
        "substream_height": 120,
        "substream_fps": 5.0,
        "substream_bitrate": 100,
    }
    result = await submit(
        hass,
        result,
        {"substream_width": 192, "substream_height": 144, "substream_fps": 4, "substream_bitrate": 80},
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
            "audio": False,
        },
        # The form left the orientation as it was (none): no picture settings are stored.
        "settings": {},
        "v4l2_controls": {},
        "audio": None,
        "motion_region": None,
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
    assert result["description_placeholders"]["stream"] == "front_door"
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
    vocabulary = await hass.async_add_executor_job(agent.request, "GET", "/vocabulary")
    with patch.object(coordinator.client, "devices", return_value=NO_DEVICES):
        result = await choose(hass, await open_menu(hass, init_integration), "edit_stream")
        result = await submit(hass, result, {"stream": "hdmi"})
        assert options(result, "source")[0] == ("v4l2:usb-534d_USB_Video", "usb-534d_USB_Video")
        assert suggested(result)["source"] == "v4l2:usb-534d_USB_Video"
        result = await submit(hass, result, {"source": "v4l2:usb-534d_USB_Video"})
    # Without the card's listing: every input format the agent knows, and common sizes and rates.
    assert options(result, "input_format") == [
        (word["id"], word["name"]) for word in vocabulary["input_formats"]
    ]
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
    assert options(result, "enabled_streams") == [("front_door", "Front door"), ("garage", "Garage")]

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
    assert options(result, "stream") == [("front_door", "Front door"), ("garage", "Garage")]
    # Choosing is not removing: the next step names the stream and asks first.
    result = await submit(hass, result, {"stream": "garage"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm_remove"
    assert result["description_placeholders"] == {"stream": "Garage"}
    assert "garage" in await agent_streams(hass, agent)

    result = await submit(hass, result, {})
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
    result = await submit(hass, result, {"stream": "garage"})
    await hass.async_add_executor_job(agent.request, "DELETE", "/streams/garage")
    result = await submit(hass, result, {})
    assert result["type"] is FlowResultType.MENU
    assert "Garage" not in result["description_placeholders"]["streams"]


# -- the agent goes away while a form is open


async def test_changes_while_the_agent_is_down_can_be_retried(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    settings = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    settings = await submit(hass, settings, {"stream_id": "porch", "source": "test"})
    substream = await choose(hass, await open_menu(hass, init_integration), "add_stream")
    substream = await submit(hass, substream, {"stream_id": "yard", "source": "test"})
    substream = await submit(hass, substream, {**TEST_SETTINGS, "substream": True})
    assert substream["step_id"] == "substream"
    toggles = await choose(hass, await open_menu(hass, init_integration), "enable_streams")
    removal = await choose(hass, await open_menu(hass, init_integration), "remove_stream")
    removal = await submit(hass, removal, {"stream": "front_door"})
    sub_settings = {
        "substream_width": 160,
        "substream_height": 120,
        "substream_fps": 5,
        "substream_bitrate": 80,
    }

    await hass.async_add_executor_job(agent.stop)
    checked = await submit(hass, settings, {**TEST_SETTINGS, "substream": True})
    settings = await submit(hass, settings, TEST_SETTINGS)
    substream = await submit(hass, substream, sub_settings)
    toggles = await submit(hass, toggles, {"enabled_streams": ["front_door"]})
    removal = await submit(hass, removal, {})
    for result, step in (
        (checked, "pattern_settings"),
        (settings, "pattern_settings"),
        (substream, "substream"),
        (toggles, "enable_streams"),
        (removal, "confirm_remove"),
    ):
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == step
        assert result["errors"] == {"base": "cannot_connect"}
        assert result["description_placeholders"]["error"]

    await hass.async_add_executor_job(agent.start)
    assert (await submit(hass, settings, TEST_SETTINGS))["type"] is FlowResultType.MENU
    assert (await submit(hass, substream, sub_settings))["type"] is FlowResultType.MENU
    assert (await submit(hass, toggles, {"enabled_streams": ["front_door"]}))["type"] is FlowResultType.MENU
    assert (await submit(hass, removal, {}))["type"] is FlowResultType.MENU
    stored = await stored_streams(hass, agent)
    assert set(stored) == {"garage", "porch", "yard"}
    assert stored["garage"]["enabled"] is False
    assert stored["yard"]["substream"]["width"] == 160


async def test_refusals_of_no_form_field_are_said_at_the_top(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    coordinator: PiStreamCoordinator,
) -> None:
    """A toggle or a removal the agent refuses (its storage full, say) shows the agent's own message."""
    refused = PiStreamResponseError(507, "storage_full", "The Pi's storage is full; nothing was changed.")
    toggles = await choose(hass, await open_menu(hass, init_integration), "enable_streams")
    removal = await choose(hass, await open_menu(hass, init_integration), "remove_stream")
    removal = await submit(hass, removal, {"stream": "garage"})
    with (
        patch.object(coordinator.client, "put_stream", side_effect=refused),
        patch.object(coordinator.client, "delete_stream", side_effect=refused),
    ):
        toggles = await submit(hass, toggles, {"enabled_streams": ["front_door"]})
        removal = await submit(hass, removal, {})
    for result in (toggles, removal):
        assert result["errors"] == {"base": "agent_refused"}
        assert result["description_placeholders"]["problems"] == refused.message
    assert set(await agent_streams(hass, agent)) == {"front_door", "garage"}
