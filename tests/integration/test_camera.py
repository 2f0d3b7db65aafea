"""Camera entities against the real agent: live RTSP source, stills decoded from the published stream,
availability following the stream's state."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.camera import (
    CameraEntityFeature,
    Image,
    StreamType,
    async_get_image,
    async_get_stream_source,
)
from homeassistant.components.camera.const import DATA_COMPONENT as CAMERA_COMPONENT
from homeassistant.const import STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.pi_stream.camera import with_read_credentials
from custom_components.pi_stream.const import DOMAIN
from tests.integration.stable_agent import StableAgentProcess, run_agent, wait_for

JPEG_MAGIC = b"\xff\xd8\xff"


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


@pytest.fixture(autouse=True)
def only_cameras() -> Iterator[None]:
    with patch("custom_components.pi_stream.PLATFORMS", [Platform.CAMERA]):
        yield


def ffprobe(
    source: str | Path, *extra: str, agent: StableAgentProcess | None = None, attempts: int = 4
) -> dict[str, Any]:
    """The first video stream as ffprobe sees it (blocking). On a busy test machine a live RTSP read over
    UDP can miss its packets, or meet a publisher (or the RTSP server) the agent is restarting: then wait
    until the agent has every stream running again, and read once more."""
    command = ["ffprobe", "-v", "error", *extra, "-select_streams", "v:0", "-show_streams", "-of", "json"]
    errors: list[str] = []
    for _ in range(attempts):
        result = subprocess.run(
            [*command, str(source)], capture_output=True, text=True, timeout=30, check=False
        )
        streams: list[dict[str, Any]] = json.loads(result.stdout or "{}").get("streams", [])
        if result.returncode == 0 and streams:
            return streams[0]
        errors.append(result.stderr.strip())
        time.sleep(1)
        if agent is not None:
            agent.wait_streams_running()
    raise AssertionError(f"ffprobe could not read {source}: {errors}")


async def get_image(hass: HomeAssistant, agent: StableAgentProcess, entity_id: str) -> Image:
    """``async_get_image``, tried again (once every stream runs) if the agent's decode failed: on a busy
    test machine the publisher or the RTSP server can be restarting at that moment."""
    for _ in range(2):
        try:
            return await async_get_image(hass, entity_id)
        except HomeAssistantError:
            await hass.async_add_executor_job(agent.wait_streams_running)
    return await async_get_image(hass, entity_id)


def probe_rtsp(agent: StableAgentProcess, url: str) -> dict[str, Any]:
    """Read ``url`` as an RTSP client would (the test RTSP server is UDP-only)."""
    return ffprobe(url, "-rtsp_transport", "udp", agent=agent)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_camera_entities(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    mock_config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """A camera per stream named after the stream's device, plus the (normally disabled) substream."""
    await hass.async_add_executor_job(agent.wait_streams_running)
    mock_config_entry.add_to_hass(hass)
    with patch("random.SystemRandom.getrandbits", return_value=123123123123):  # the access token
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    entries = sorted(
        er.async_entries_for_config_entry(entity_registry, mock_config_entry.entry_id),
        key=lambda entry: entry.entity_id,
    )
    assert [entry.entity_id for entry in entries] == [
        "camera.front_door",
        "camera.front_door_substream",
        "camera.garage",
    ]
    for entry in entries:
        assert entry == snapshot(name=f"{entry.entity_id}-entry")
        state = hass.states.get(entry.entity_id)
        assert state is not None
        # HA 2025.6 dropped the frontend_stream_type attribute (test_stream_source_plays checks the
        # capabilities instead); the rest is the same on every supported version.
        attributes = {key: value for key, value in state.attributes.items() if key != "frontend_stream_type"}
        assert (state.state, attributes) == snapshot(name=f"{entry.entity_id}-state")
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)


async def test_substream_camera_disabled_by_default(
    hass: HomeAssistant, init_integration: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    entry = entity_registry.async_get("camera.front_door_substream")
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert entity_registry.async_get("camera.garage_substream") is None  # garage has no substream


async def test_still_image_is_a_real_jpeg(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry, tmp_path: Path
) -> None:
    """The still comes from the agent, decoded from the published 320×240 stream."""
    image = await get_image(hass, agent, "camera.garage")
    assert image.content_type == "image/jpeg"
    assert image.content.startswith(JPEG_MAGIC)
    still = tmp_path / "still.jpg"
    still.write_bytes(image.content)
    probed = await hass.async_add_executor_job(ffprobe, still)
    assert probed["codec_name"] == "mjpeg"
    assert (probed["width"], probed["height"]) == (320, 240)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_stream_source_plays(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """The stream source is the agent's RTSP URL, and a real RTSP reader can play it."""
    source = await async_get_stream_source(hass, "camera.front_door")
    assert source == f"{agent.rtsp_read_base}/front_door"
    probed = await hass.async_add_executor_job(probe_rtsp, agent, source)
    assert probed["codec_name"] == "h264"
    assert (probed["width"], probed["height"]) == (320, 240)

    sub = await async_get_stream_source(hass, "camera.front_door_substream")
    assert sub == f"{agent.rtsp_read_base}/front_door_sub"
    probed = await hass.async_add_executor_job(probe_rtsp, agent, sub)
    assert (probed["width"], probed["height"]) == (160, 120)

    # HA's own HLS reader is told the transport the agent's RTSP server serves (UDP-only here).
    camera = hass.data[CAMERA_COMPONENT].get_entity("camera.front_door")
    assert camera is not None
    assert camera.stream_options["rtsp_transport"] == "udp"

    state = hass.states.get("camera.front_door")
    assert state.attributes["supported_features"] == CameraEntityFeature.STREAM
    # HLS from HA's stream here; where go2rtc runs (default_config) it adds WebRTC to the same source.
    assert camera.camera_capabilities.frontend_stream_types == {StreamType.HLS}


async def test_unavailable_while_the_stream_is_stopped(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    def state() -> str:
        return hass.states.get("camera.garage").state

    assert state() == "streaming"
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/stop")
    await wait_for(hass, lambda: state() == STATE_UNAVAILABLE, "the garage camera to go unavailable")

    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/start")
    await wait_for(hass, lambda: state() == "streaming", "the garage camera to come back")


async def test_snapshot_failure_is_a_translated_error(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """A still the agent cannot take (stream stopped: 503), or an agent that is gone, is a translated
    HomeAssistantError naming the stream, never a raw aiohttp error."""
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/stop")
    # A stop is carried out after the request is answered: until the publisher is gone, a still of its
    # last key frame is still a right answer.
    await wait_for(hass, lambda: hass.states.get("camera.garage").state == STATE_UNAVAILABLE, "stopped")
    with pytest.raises(HomeAssistantError) as err:
        await async_get_image(hass, "camera.garage")
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "snapshot_failed"
    assert err.value.translation_placeholders["stream"] == "Garage"
    # The agent's own sentence: what is wrong and what to do.
    assert "is not running (stopped); start it" in err.value.translation_placeholders["error"]
    assert str(err.value).startswith("Could not take a picture from stream Garage: ")

    await hass.async_add_executor_job(agent.stop)
    with pytest.raises(HomeAssistantError) as err:
        await async_get_image(hass, "camera.front_door")
    assert err.value.translation_key == "snapshot_failed"
    assert "Cannot connect" in err.value.translation_placeholders["error"]


@pytest.fixture
def agent_with_read_credentials(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(
        StableAgentProcess(state_dir=tmp_path / "agent-state", read_credentials=("viewer", "p@ss:w/rd %"))
    )


async def test_stream_source_carries_read_credentials(
    hass: HomeAssistant, agent_with_read_credentials: StableAgentProcess
) -> None:
    """With read credentials on the RTSP server, the source has them percent-encoded, and still plays."""
    agent = agent_with_read_credentials
    await hass.async_add_executor_job(agent.wait_streams_running)
    info = await hass.async_add_executor_job(agent.request, "GET", "/info")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=info["name"],
        unique_id=info["agent_id"],
        data={"host": agent.host, "port": agent.port, "token": agent.token},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    source = await async_get_stream_source(hass, "camera.garage")
    port = agent.rtsp_read_port
    assert source == f"rtsp://viewer:p%40ss%3Aw%2Frd%20%25@127.0.0.1:{port}/garage"
    probed = await hass.async_add_executor_job(probe_rtsp, agent, source)
    assert probed["codec_name"] == "h264"
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("url", "credentials", "expected"),
    [
        ("rtsp://pi:8554/cam", None, "rtsp://pi:8554/cam"),
        ("rtsp://pi:8554/cam", {"username": "u", "password": "p"}, "rtsp://u:p@pi:8554/cam"),
        (
            "rtsp://old:secret@pi:8554/cam",
            {"username": "a@b", "password": "c:d/e"},
            "rtsp://a%40b:c%3Ad%2Fe@pi:8554/cam",
        ),
        ("rtsp://[fd00::1]:8554/cam", {"username": "u", "password": ""}, "rtsp://u:@[fd00::1]:8554/cam"),
        ("rtsp://pi:8554/cam", {"username": "", "password": "x"}, "rtsp://pi:8554/cam"),
    ],
)
def test_with_read_credentials(url: str, credentials: dict[str, str] | None, expected: str) -> None:
    assert with_read_credentials(url, credentials) == expected


async def test_hls_worker_is_told_to_reconnect_when_the_stream_runs_again(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """Issue 13 §2: after a restart the agent runs the stream again in about a second, but HA's HLS worker
    (real: stream integration, PyAV, the agent's RTSP server) learnt the old publisher had gone only when
    its read timed out, then waited 10 s more. When the camera sees its stream running again, it tells the
    worker its source is new, so the worker reopens it as soon as that read ends, in the same session."""
    assert await async_setup_component(hass, "stream", {})
    camera = hass.data[CAMERA_COMPONENT].get_entity("camera.garage")
    assert camera is not None
    stream = await camera.async_create_stream()
    assert stream is not None
    stream.add_provider("hls")
    await stream.start()
    try:
        reconnects: list[tuple[bool, str]] = []
        original = stream.update_source

        def update_source(new_source: str) -> None:
            reconnects.append((stream.available, new_source))
            original(new_source)

        decided: list[bool] = []  # the worker's availability when the camera saw the stream run again
        reconnect = camera._reconnect_stream

        def spy(target: Any) -> None:
            decided.append(target.available)
            reconnect(target)

        with (
            patch.object(stream, "update_source", update_source),
            patch.object(camera, "_reconnect_stream", spy),
        ):
            await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/restart")
            await wait_for(hass, lambda: hass.states.get("camera.garage").state == STATE_UNAVAILABLE, "gone")
            await wait_for(hass, lambda: hass.states.get("camera.garage").state == "streaming", "back")
        assert len(decided) == 1
        # The worker was still inside its read of the old session (the UDP read times out after 5 s; the
        # restart takes about one): told at once. A worker already in its retry wait is left alone (waking
        # it would end the viewers' session).
        expected = [(True, f"{agent.rtsp_read_base}/garage")] if decided[0] else []
        assert reconnects == expected
    finally:
        # HA's worker may sit in a read that never times out: the test RTSP server, unlike MediaMTX, keeps
        # a reader's session when the publisher goes, and HA's "stimeout" option is unknown to the FFmpeg
        # PyAV bundles. Stopping the agent (and its RTSP server) closes the reader's connection, so the
        # worker's read ends and stop() can join it.
        await hass.async_add_executor_job(agent.stop)
        await asyncio.wait_for(stream.stop(), 60)


async def test_no_reconnect_without_a_viewer(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """Nobody watches: HA has no worker to tell, and the camera starts none."""
    camera = hass.data[CAMERA_COMPONENT].get_entity("camera.garage")
    assert camera is not None
    assert camera.stream is None
    await hass.async_add_executor_job(agent.request, "POST", "/streams/garage/restart")
    await wait_for(hass, lambda: hass.states.get("camera.garage").state == STATE_UNAVAILABLE, "gone")
    await wait_for(hass, lambda: hass.states.get("camera.garage").state == "streaming", "back")
    assert camera.stream is None
