"""What the device page says: a Pi by its model, maker, board revision and software; a stream by what its
source is. Once through Home Assistant's device registry with the real agent, then each source kind."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.api import AgentInfo
from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.coordinator import AgentState
from custom_components.pi_stream.device_info import (
    pi_device_info,
    stream_device_identifier,
    stream_device_info,
    stream_id_from_identifier,
)
from tests.integration.agent_process import AgentProcess
from tests.integration.vocabulary_source import agent_vocabulary


@pytest.mark.usefixtures("init_integration")
async def test_devices_say_what_they_are(
    hass: HomeAssistant,
    agent: AgentProcess,
    mock_config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    info = await hass.async_add_executor_job(agent.request, "GET", "/info")
    vocabulary = await hass.async_add_executor_job(agent.request, "GET", "/vocabulary")
    board = info["board"]
    pi = device_registry.async_get_device(identifiers={(DOMAIN, info["agent_id"])})
    assert pi is not None
    # Before: model "Raspberry Pi 4 Model B Rev 1.4", firmware "pi_stream agent 0.1.0".
    assert pi.model == "Raspberry Pi 4 Model B (simulated)"
    assert pi.manufacturer == "Raspberry Pi"
    assert pi.model_id == board["revision"] == "c03114"
    assert pi.hw_version == f"Rev {board['pcb_revision']}, made by {board['manufacturer']}"
    assert pi.sw_version == f"Linux {board['kernel']}, pi-stream-agent {info['version']}"

    patterns = {word["id"]: word["name"] for word in vocabulary["test_patterns"]}
    for stream_id, pattern in (("front_door", "testsrc2"), ("garage", "smptebars")):
        device = device_registry.async_get_device(identifiers={(DOMAIN, f"{info['agent_id']}_{stream_id}")})
        assert device is not None
        # Before: "Test pattern by Raspberry Pi".
        assert device.model == patterns[pattern]
        assert device.manufacturer == "FFmpeg"
        assert device.via_device_id == pi.id


def _state(
    source: dict[str, Any], devices: dict[str, Any] | None = None, board: dict[str, Any] | None = None
) -> AgentState:
    info = AgentInfo(
        agent_id="0123456789abcdef",
        name="camera-pi",
        hostname="camera-pi",
        version="0.2.0",
        api_version=1,
        simulated=False,
        board=board or {},
    )
    stream = {"id": "porch", "name": "Porch", "config": {"source": source}}
    return AgentState(
        info=info,
        telemetry={},
        streams={"porch": stream},
        devices=devices or {},
        vocabulary=agent_vocabulary(),
    )


def test_a_pi_5_board() -> None:
    board = {
        "is_raspberry_pi": True,
        "model": "Raspberry Pi 5 Model B Rev 1.0",
        "revision": "d04170",
        "pcb_revision": "1.0",
        "manufacturer": "Sony UK",
        "kernel": "6.6.51+rpt-rpi-2712",
    }
    device = pi_device_info(_state({"type": "test"}, board=board))
    assert device["model"] == "Raspberry Pi 5 Model B"
    assert device["model_id"] == "d04170"
    assert device["hw_version"] == "Rev 1.0, made by Sony UK"
    assert device["sw_version"] == "Linux 6.6.51+rpt-rpi-2712, pi-stream-agent 0.2.0"
    assert device["manufacturer"] == "Raspberry Pi"


def test_a_board_that_could_not_be_read_claims_nothing() -> None:
    device = pi_device_info(_state({"type": "test"}, board={"is_raspberry_pi": False, "model": None}))
    assert device["model"] is None
    assert device["manufacturer"] is None
    assert device["hw_version"] is None
    assert device["sw_version"] == "pi-stream-agent 0.2.0"


def test_a_camera_module_by_its_sensor() -> None:
    vocabulary = agent_vocabulary()
    devices = {
        "csi_cameras": [{"index": 0, "model": "imx708", "id_path": "/base/soc/i2c0mux/i2c@1/imx708@1a"}]
    }
    camera_module = vocabulary.source_type_names["csi"]
    for camera in (0, "/base/soc/i2c0mux/i2c@1/imx708@1a"):
        device = stream_device_info(_state({"type": "csi", "camera": camera}, devices), "porch")
        assert device["model"] == f"{camera_module} with imx708 sensor"
        assert device["manufacturer"] is None  # a module's maker is not known from its sensor
    # A camera not (or no longer) detected: what kind of source it is.
    device = stream_device_info(_state({"type": "csi", "camera": 1}, devices), "porch")
    assert device["model"] == camera_module


def test_a_capture_card_by_its_name() -> None:
    card = {
        "id": "usb-534d_USB_Video",
        "name": "FHD Capture",
        "path": "/dev/video2",
        "stable_path": "/dev/v4l/by-id/usb-534d_USB_Video-video-index0",
    }
    for device_ref in (card["id"], card["path"], card["stable_path"]):
        device = stream_device_info(
            _state({"type": "v4l2", "device": device_ref}, {"capture_devices": [card]}), "porch"
        )
        assert device["model"] == "FHD Capture"
    unplugged = stream_device_info(_state({"type": "v4l2", "device": "/dev/video9"}), "porch")
    assert unplugged["model"] == agent_vocabulary().source_type_names["v4l2"]


def test_stream_device_identifiers_round_trip() -> None:
    identifier = stream_device_identifier("0123456789abcdef", "front_door")
    assert identifier == (DOMAIN, "0123456789abcdef_front_door")
    assert stream_id_from_identifier("0123456789abcdef", identifier) == "front_door"
    assert stream_id_from_identifier("0123456789abcdef", (DOMAIN, "0123456789abcdef")) is None
    assert stream_id_from_identifier("fedcba9876543210", identifier) is None
    assert stream_id_from_identifier("0123456789abcdef", ("other", "0123456789abcdef_front_door")) is None
