"""Diagnostics against the real agent: complete enough to debug from, and without a secret in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components.diagnostics import REDACTED
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.pi_stream.const import CONF_TOKEN
from custom_components.pi_stream.diagnostics import scrub
from tests.integration.agent_process import AgentProcess
from tests.integration.stable_agent import STABLE_AGENT_ID, StableAgentProcess

READ_USER = "viewer"
READ_PASSWORD = "Rtsp-s3cret-pw"


@pytest.fixture
def read_credentials() -> tuple[str, str] | None:
    """RTSP read credentials for the agent's server (parametrised by the tests that want them)."""
    return None


@pytest.fixture
def agent(
    tmp_path: Path, socket_enabled: Any, read_credentials: tuple[str, str] | None
) -> Iterator[AgentProcess]:
    """The real agent with a fixed id and name (so the snapshot is stable); with ``read_credentials`` its
    stream URLs carry them, as on a Pi whose RTSP server wants a login."""
    process = StableAgentProcess(state_dir=tmp_path / "agent-state", read_credentials=read_credentials)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def stable_view(diagnostics: dict[str, Any]) -> dict[str, Any]:
    """What does not move between runs: the layout, the redactions, the simulated board."""
    stream = diagnostics["streams"]["front_door"]
    return {
        "sections": sorted(diagnostics),
        "entry": {**diagnostics["entry"], "data": {**diagnostics["entry"]["data"], CONF_PORT: "<port>"}},
        "agent": {
            key: diagnostics["agent"][key] for key in ("api_version", "board", "capabilities", "simulated")
        },
        "telemetry_sections": sorted(diagnostics["telemetry"]),
        "streams": sorted(diagnostics["streams"]),
        "stream_fields": sorted(stream),
        "stream_config": stream["config"],
        "devices_sections": sorted(diagnostics["devices"]),
        "read_credentials": diagnostics["read_credentials"],
        "repair_issues": diagnostics["repair_issues"],
    }


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert isinstance(diagnostics, dict)
    dump = json.dumps(diagnostics)
    assert agent.token not in dump
    assert diagnostics["entry"]["data"][CONF_TOKEN] == REDACTED
    assert diagnostics["entry"]["data"][CONF_HOST] == agent.host

    # Enough to debug from: who the agent is, the live sample, every stream with its log tail, devices.
    assert diagnostics["agent"]["agent_id"] == init_integration.unique_id == STABLE_AGENT_ID
    assert diagnostics["agent"]["info"]["board"]["type"] == "4B"
    assert diagnostics["telemetry"]["cma"]["total_bytes"] == 512 * 1024**2
    assert set(diagnostics["streams"]) == {"front_door", "garage"}
    for stream_id, stream in diagnostics["streams"].items():
        assert stream["id"] == stream_id
        assert stream["state"] == "running"
        tail = stream["log_tail"]
        assert isinstance(tail, list)
        assert tail, f"{stream_id}: no log lines"
        assert all({"at", "process", "line"} <= set(line) for line in tail)
        assert any(line["process"] == "agent" for line in tail)  # the agent's own "starting: …" note
    assert diagnostics["coordinator"]["last_update_success"] is True
    assert diagnostics["coordinator"]["update_interval_s"] == 30.0
    assert diagnostics["read_credentials"] is None
    assert "capture_devices" in diagnostics["devices"]
    assert stable_view(diagnostics) == snapshot


@pytest.mark.parametrize("read_credentials", [(READ_USER, READ_PASSWORD)])
async def test_diagnostics_redact_rtsp_credentials(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
) -> None:
    # The agent hands the credentials to Home Assistant, which needs them for the camera URLs...
    coordinator = init_integration.runtime_data
    assert coordinator.data.read_credentials == {"username": READ_USER, "password": READ_PASSWORD}
    assert f"{READ_USER}:{READ_PASSWORD}@" in coordinator.data.streams["garage"]["urls"]["main"]

    # ...and none of it reaches the diagnostics.
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert isinstance(diagnostics, dict)
    dump = json.dumps(diagnostics)
    assert agent.token not in dump
    assert READ_PASSWORD not in dump
    assert f"{READ_USER}:" not in dump
    assert diagnostics["read_credentials"] == REDACTED
    urls = diagnostics["streams"]["front_door"]["urls"]
    assert urls["main"] == f"rtsp://{REDACTED}@127.0.0.1:{agent.rtsp_read_port}/front_door"
    assert urls["sub"].endswith("/front_door_sub")


async def test_diagnostics_while_the_agent_is_down(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
) -> None:
    """A bug report is most wanted when the Pi is gone: the last known state, and why the logs are missing."""
    await hass.async_add_executor_job(agent.stop)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert isinstance(diagnostics, dict)
    assert set(diagnostics["streams"]) == {"front_door", "garage"}
    assert diagnostics["state_source"]["fresh"] is False
    for stream in diagnostics["streams"].values():
        assert isinstance(stream["log_tail"], str)
        assert stream["log_tail"].startswith("unavailable: ")
    assert agent.token not in json.dumps(diagnostics)


def test_scrub_removes_logins_from_urls_and_literal_secrets_at_any_depth() -> None:
    """Values that are URLs lose their login (urls.py, the one URL helper); known secrets go wherever they
    appear. Free text is not parsed for URLs: the agent removes credentials from its log lines itself."""
    secret = "tok-123456"
    value = {
        "urls": {"main": "rtsp://admin:hunter2@10.0.0.5:8554/cam"},
        "nested": [{"url": "rtsps://user@cam.local/path"}, ("http://a:b@host/", 3, None)],
        "token_echo": f"Bearer {secret}",
        "plain": "rtsp://127.0.0.1:8554/garage",
        "text": "ffmpeg: Opening 'rtsp://***@10.0.0.5:8554/cam' for reading",
    }
    assert scrub(value, frozenset({secret})) == {
        "urls": {"main": f"rtsp://{REDACTED}@10.0.0.5:8554/cam"},
        "nested": [{"url": f"rtsps://{REDACTED}@cam.local/path"}, [f"http://{REDACTED}@host/", 3, None]],
        "token_echo": f"Bearer {REDACTED}",
        "plain": "rtsp://127.0.0.1:8554/garage",
        "text": "ffmpeg: Opening 'rtsp://***@10.0.0.5:8554/cam' for reading",
    }


async def test_diagnostics_read_the_agent_afresh(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
) -> None:
    """Issue 13: diagnostics showed what HA held (uptime 4 s while the agent said 330 s). They now read the
    agent when downloaded, and say so; HA's own copy is left as it was."""
    coordinator = init_integration.runtime_data
    held = coordinator.data
    stale = {**held.streams["garage"], "uptime_s": 0.5, "frames": 1, "state": "starting"}
    coordinator.async_set_updated_data(replace(held, streams={**held.streams, "garage": stale}))
    await hass.async_block_till_done()

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert isinstance(diagnostics, dict)
    assert diagnostics["state_source"] == {"fresh": True}
    garage = diagnostics["streams"]["garage"]
    assert garage["state"] == "running"
    assert garage["frames"] != 1

    await hass.async_add_executor_job(agent.stop)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    assert isinstance(diagnostics, dict)
    assert diagnostics["state_source"]["fresh"] is False
    assert diagnostics["state_source"]["reason"].startswith("the agent could not be reached: ")
    assert diagnostics["streams"]["garage"]["state"] == "starting"  # the last state HA holds
