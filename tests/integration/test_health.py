"""The Pi's health in Home Assistant (issue 10): storage, out-of-memory kills, a Pi 5's supply and fan,
unexpected reboots, the agent's version, and the contributing condition of a stream's exit.

Against the real agent where it can show the condition (its telemetry, its version, its vocabulary);
conditions the simulated Pi 4 does not have (a Pi 5's supply, a read-only card) are put into the state Home
Assistant holds, the way a pushed sample would bring them, and once through the pure functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream import repairs
from custom_components.pi_stream.agent_state import apply_event
from custom_components.pi_stream.agent_version import install_command, is_outdated
from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.coordinator import AgentState, PiStreamCoordinator
from custom_components.pi_stream.event import EVENT_STREAM
from custom_components.pi_stream.logbook import describe_stream_event
from custom_components.pi_stream.repairs import RepairHistory, evaluate, issue_id
from tests.integration.stable_agent import StableAgentProcess, run_agent, wait_for
from tests.integration.vocabulary_source import agent_vocabulary

PI = "camera_pi"
GIB = 1024**3


@pytest.fixture
def agent(tmp_path: Path, socket_enabled: Any) -> Iterator[StableAgentProcess]:
    yield from run_agent(StableAgentProcess(state_dir=tmp_path / "agent-state"))


def coordinator_of(entry: MockConfigEntry) -> PiStreamCoordinator:
    coordinator: PiStreamCoordinator = entry.runtime_data
    return coordinator


def push(coordinator: PiStreamCoordinator, **sections: Any) -> None:
    """What a pushed sample with these sections does to Home Assistant's state."""
    state = coordinator.data
    coordinator.async_set_updated_data(replace(state, telemetry={**state.telemetry, **sections}))


PI5_SUPPLY = {"input_voltage_v": 5.09, "current_a": 1.21, "usb_max_current_5a": False}
FAN = {"rpm": 2913, "pwm_percent": 39.2}
STORAGE = {
    "root": {
        "device": "mmcblk0p2",
        "total_bytes": 30 * GIB,
        "used_bytes": 12 * GIB,
        "free_bytes": 18 * GIB,
        "used_percent": 40.0,
        "read_only": False,
    },
    "errors_total": 0,
    "last_error": None,
}


# -- entities ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("init_integration")
async def test_storage_and_memory_kill_sensors(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    coordinator = coordinator_of(mock_config_entry)
    push(coordinator, storage=STORAGE, oom_kills={"total": 0, "last": None})
    await hass.async_block_till_done()
    assert hass.states.get(f"sensor.{PI}_storage_used").state == "40"
    assert hass.states.get(f"sensor.{PI}_storage_used").attributes["device"] == "mmcblk0p2"
    free = hass.states.get(f"sensor.{PI}_storage_free")
    assert free.attributes["unit_of_measurement"] == "GiB"
    assert float(free.state) == pytest.approx(18.0, abs=0.1)
    assert hass.states.get(f"binary_sensor.{PI}_root_filesystem_read_only").state == STATE_OFF
    assert hass.states.get(f"sensor.{PI}_storage_errors").state == "0"
    assert hass.states.get(f"sensor.{PI}_memory_kills").state == "0"

    # The agent pushes an OOM kill the moment it reads the kernel line: the newest kill shows at once, the
    # count with the next sample (a counter must never step back).
    kill = {"pid": 4242, "process": "ffmpeg", "stream_id": "garage", "timestamp": 1_800_000_000.0}
    coordinator.async_set_updated_data(
        apply_event(coordinator.data, {"type": "oom_kill", "timestamp": 1_800_000_000.0, "data": kill})
    )
    await hass.async_block_till_done()
    kills = hass.states.get(f"sensor.{PI}_memory_kills")
    assert kills.state == "0"
    assert kills.attributes["last_process"] == "ffmpeg"
    assert kills.attributes["last_stream"] == "Garage"  # the stream's name, not its id
    push(coordinator, oom_kills={"total": 1, "last": kill})
    await hass.async_block_till_done()
    assert hass.states.get(f"sensor.{PI}_memory_kills").state == "1"

    read_only = {**STORAGE, "root": {**STORAGE["root"], "read_only": True}}
    push(coordinator, storage=read_only)
    await hass.async_block_till_done()
    assert hass.states.get(f"binary_sensor.{PI}_root_filesystem_read_only").state == STATE_ON


@pytest.mark.usefixtures("init_integration")
async def test_pi5_supply_and_fan_sensors_appear_with_the_hardware(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """The simulated Pi 4 reports no Pi 5 supply and no fan: no sensors that could never have a value.
    When a sample names them they are added without a reload."""
    coordinator = coordinator_of(mock_config_entry)
    push(coordinator, supply=None, fan=None)
    await hass.async_block_till_done()
    for entity_id in (
        f"sensor.{PI}_input_voltage",
        f"sensor.{PI}_board_current",
        f"sensor.{PI}_fan_speed",
        f"binary_sensor.{PI}_usb_current_limited",
    ):
        assert entity_registry.async_get(entity_id) is None, entity_id

    push(coordinator, supply=PI5_SUPPLY, fan=FAN)
    await hass.async_block_till_done()
    assert hass.states.get(f"sensor.{PI}_input_voltage").state == "5.09"
    assert hass.states.get(f"sensor.{PI}_board_current").state == "1.21"
    assert hass.states.get(f"sensor.{PI}_fan_speed").state == "2910"  # rounded to 10 rpm
    assert hass.states.get(f"sensor.{PI}_fan_speed").attributes["unit_of_measurement"] == "rpm"
    assert hass.states.get(f"binary_sensor.{PI}_usb_current_limited").state == STATE_ON
    push(coordinator, supply={**PI5_SUPPLY, "usb_max_current_5a": True, "current_a": None})
    await hass.async_block_till_done()
    assert hass.states.get(f"binary_sensor.{PI}_usb_current_limited").state == STATE_OFF
    assert hass.states.get(f"sensor.{PI}_board_current").state == STATE_UNKNOWN


@pytest.mark.usefixtures("init_integration")
async def test_unexpected_reboot_flag(hass: HomeAssistant, mock_config_entry: MockConfigEntry) -> None:
    coordinator = coordinator_of(mock_config_entry)
    push(coordinator, boot={"last_boot": 1_795_256_000.0, "unexpected_reboot": False})
    await hass.async_block_till_done()
    flag = f"binary_sensor.{PI}_unexpected_reboot"
    assert hass.states.get(flag).state == STATE_OFF
    # The agent's own boot time wins over sample time − uptime.
    assert hass.states.get(f"sensor.{PI}_last_boot").state.startswith("2026-11-21T10:13:20")
    coordinator.async_set_updated_data(
        apply_event(coordinator.data, {"type": "unexpected_reboot", "data": {"last_boot": 1_795_256_000.0}})
    )
    await hass.async_block_till_done()
    assert hass.states.get(flag).state == STATE_ON


# -- repairs ----------------------------------------------------------------------------------------------


def _state(telemetry: dict[str, Any], version: str = "0.1.0") -> AgentState:
    from custom_components.pi_stream.api import AgentInfo

    info = AgentInfo.from_json({"agent_id": "pi", "name": "Pi", "version": version, "api_version": 1})
    return AgentState(info=info, telemetry=telemetry, streams={}, devices={}, vocabulary=agent_vocabulary())


def test_storage_issues_open_and_clear() -> None:
    healthy = _state({"storage": STORAGE})
    assert evaluate(healthy, RepairHistory(), 0.0, name="Pi") == []
    failing = _state(
        {
            "storage": {
                **STORAGE,
                "root": {**STORAGE["root"], "read_only": True},
                "errors_total": 3,
                "last_error": {"timestamp": 1.0, "message": "mmc0: timeout waiting for hardware interrupt"},
            }
        }
    )
    issues = {issue.key: issue for issue in evaluate(failing, RepairHistory(), 0.0, name="Pi")}
    assert set(issues) == {"root_read_only", "storage_errors"}
    assert issues["root_read_only"].severity is ir.IssueSeverity.ERROR
    assert issues["root_read_only"].placeholders == {"name": "Pi", "device": "mmcblk0p2"}
    assert issues["storage_errors"].placeholders == {
        "name": "Pi",
        "count": "3",
        "last_error": "mmc0: timeout waiting for hardware interrupt",
    }
    # An agent that cannot tell (null) raises nothing.
    assert evaluate(_state({"storage": None}), RepairHistory(), 0.0, name="Pi") == []


def test_outdated_agent_issue_names_the_command() -> None:
    assert install_command("0.2.0") == "sudo apt install ./pi-stream-agent_0.2.0_all.deb"
    assert is_outdated("0.1.0", "0.2.0")
    assert not is_outdated("0.2.0", "0.2.0")
    assert not is_outdated("0.3.0", "0.2.0")  # a newer agent is not too old
    assert not is_outdated("", "0.2.0")
    assert not is_outdated("0.1.0", None)
    [issue] = evaluate(_state({}, "0.1.0"), RepairHistory(), 0.0, name="Pi", expected_version="0.2.0")
    assert issue.key == "agent_outdated"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.placeholders["command"] == "sudo apt install ./pi-stream-agent_0.2.0_all.deb"
    assert issue.placeholders["release_url"].endswith("/releases/tag/v0.2.0")
    assert evaluate(_state({}, "0.2.0"), RepairHistory(), 0.0, name="Pi", expected_version="0.2.0") == []


def test_new_issue_texts_use_exactly_their_placeholders() -> None:
    translations = json.loads((Path(repairs.__file__).parent / "translations" / "en.json").read_text())
    failing = _state(
        {"storage": {**STORAGE, "root": {**STORAGE["root"], "read_only": True}, "errors_total": 1}}, "0.0.1"
    )
    for issue in evaluate(failing, RepairHistory(), 0.0, name="Pi", expected_version="9.0.0"):
        text = translations["issues"][issue.translation_key]
        assert set(re.findall(r"\{(\w+)\}", text["title"] + text["description"])) == set(issue.placeholders)


async def test_update_entity_and_outdated_agent(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The real agent reports the release's version: nothing to update. An integration release that
    expects a newer agent shows the update (no install from Home Assistant) and raises the repair issue,
    which clears once the versions agree."""
    await hass.async_add_executor_job(agent.wait_streams_running)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    info = await hass.async_add_executor_job(agent.request, "GET", "/info")
    update = hass.states.get(f"update.{PI}_agent")
    assert update.state == STATE_OFF
    assert update.attributes["installed_version"] == info["version"]
    assert update.attributes["latest_version"] == info["version"]  # one version for both halves
    assert update.attributes["supported_features"] == 0  # no install from Home Assistant
    assert update.attributes["release_url"].endswith(f"/releases/tag/v{info['version']}")
    assert "sudo apt install" in update.attributes["release_summary"]
    ident = issue_id(mock_config_entry.entry_id, "agent_outdated")
    assert issue_registry.async_get_issue(DOMAIN, ident) is None

    coordinator = coordinator_of(mock_config_entry)
    with patch.object(coordinator, "integration_version", "99.0.0"):
        coordinator.async_update_listeners()
        await hass.async_block_till_done()
        assert hass.states.get(f"update.{PI}_agent").state == STATE_ON
        assert hass.states.get(f"update.{PI}_agent").attributes["latest_version"] == "99.0.0"
        issue = issue_registry.async_get_issue(DOMAIN, ident)
        assert issue is not None
        assert (
            issue.translation_placeholders["command"] == "sudo apt install ./pi-stream-agent_99.0.0_all.deb"
        )
        assert issue.translation_placeholders["agent_version"] == info["version"]
    coordinator.async_update_listeners()
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, ident) is None
    assert hass.states.get(f"update.{PI}_agent").state == STATE_OFF
    await hass.config_entries.async_unload(mock_config_entry.entry_id)


# -- the contributing condition ---------------------------------------------------------------------------


def test_vocabulary_names_contributing_conditions() -> None:
    vocabulary = agent_vocabulary()
    names = vocabulary.contributing_condition_names
    for condition in (
        "under_voltage",
        "overheating",
        "memory_pressure",
        "cma_exhausted",
        "network",
        "storage",
    ):
        assert condition in names
        assert vocabulary.contributing_condition_name(condition) == names[condition]
    assert vocabulary.contributing_condition_name(None) is None
    assert vocabulary.contributing_condition_name("new_word") == "new_word"


def test_logbook_line_names_the_contributing_condition() -> None:
    line = describe_stream_event(
        {
            "stream": "Garage",
            "event_type": "failed",
            "cause_name": "Killed",
            "contributing_condition": "memory_pressure",
            "contributing_condition_name": "Memory pressure",
            "summary": "ffmpeg was killed by SIGKILL",
        }
    )
    assert line["message"] == (
        "failed: Killed (contributing condition: Memory pressure). ffmpeg was killed by SIGKILL"
    )
    without = describe_stream_event({"stream": "Garage", "event_type": "failed", "cause_name": "Killed"})
    assert without["message"] == "failed: Killed"


# -- through the real agent's simulated kernel ------------------------------------------------------------


async def test_oom_killed_publisher_through_the_agent(
    hass: HomeAssistant, agent: StableAgentProcess, init_integration: MockConfigEntry
) -> None:
    """The simulated kernel's OOM killer takes the garage's publisher: the kill is counted and named, and
    the stream's failure carries the contributing condition in the agent's words, in the event and in the
    logbook line."""
    fired: list[dict[str, Any]] = []
    unsubscribe = hass.bus.async_listen(EVENT_STREAM, lambda event: fired.append(dict(event.data)))
    await hass.async_add_executor_job(agent.request, "POST", "/simulation/oom_kill", {"stream_id": "garage"})
    kills = f"sensor.{PI}_memory_kills"
    await wait_for(hass, lambda: hass.states.get(kills).state == "1", "the kill counted")
    assert hass.states.get(kills).attributes["last_stream"] == "Garage"
    failure = "event.garage_stream_events"
    await wait_for(
        hass,
        lambda: any(data.get("contributing_condition") == "memory_pressure" for data in fired),
        "a failure with memory pressure",
    )
    unsubscribe()
    vocabulary = await hass.async_add_executor_job(agent.request, "GET", "/vocabulary")
    name = next(w["name"] for w in vocabulary["contributing_conditions"] if w["id"] == "memory_pressure")
    data = next(data for data in fired if data.get("contributing_condition") == "memory_pressure")
    assert data["contributing_condition_name"] == name
    assert f"(contributing condition: {name})" in describe_stream_event(data)["message"]
    attributes = hass.states.get(failure).attributes
    assert attributes["contributing_condition"] == "memory_pressure"
    assert attributes["contributing_condition_name"] == name
    assert isinstance(attributes["context"], dict)
    assert "memory_available_bytes" in attributes["context"]


async def test_storage_errors_through_the_agent(
    hass: HomeAssistant,
    agent: StableAgentProcess,
    init_integration: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = init_integration
    read_only = f"binary_sensor.{PI}_root_filesystem_read_only"
    assert hass.states.get(read_only).state == STATE_OFF
    assert hass.states.get(f"sensor.{PI}_storage_errors").state == "0"
    assert issue_registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "storage_errors")) is None

    await hass.async_add_executor_job(agent.request, "POST", "/simulation/storage_error", {"read_only": True})
    await wait_for(hass, lambda: hass.states.get(read_only).state == STATE_ON, "the read-only root")
    await wait_for(
        hass,
        lambda: hass.states.get(f"sensor.{PI}_storage_errors").state not in ("0", STATE_UNKNOWN),
        "errors",
    )
    assert hass.states.get(f"sensor.{PI}_storage_errors").attributes["last_error"]
    read_only_issue = issue_registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "root_read_only"))
    assert read_only_issue is not None
    assert read_only_issue.severity is ir.IssueSeverity.ERROR
    errors_issue = issue_registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "storage_errors"))
    assert errors_issue is not None
    assert errors_issue.translation_placeholders["last_error"] != "(not recorded)"


def test_refusals_in_either_error_form_keep_the_agents_sentence() -> None:
    """The agent answers ``{"error": {"code", "message"}}``; contract K3 wrote the housekeeping refusal
    flat (``{"error": "<code>", "message"}``). Both give the agent's sentence, never the raw JSON."""
    from custom_components.pi_stream.api import PiStreamClient, PiStreamResponseError

    sentence = "Power control is turned off on this Pi."
    for body in (
        {"error": {"code": "power_control_disabled", "message": sentence}},
        {"error": "power_control_disabled", "message": sentence},
    ):
        err = PiStreamClient._error(403, json.dumps(body).encode())
        assert isinstance(err, PiStreamResponseError)
        assert (err.status, err.code, err.message) == (403, "power_control_disabled", sentence)
