"""Repair issues: raised while a fixable problem lasts, removed when it clears.

The conditions that the simulated Pi can produce are driven through the real agent (under-voltage, an
incompatible API); the ones it cannot (a CMA-starved camera, a Pi 5 encoding in software — the simulated Pi
is a Pi 4 with a hardware encoder) go through the pure evaluation with constructed states, and once through
the coordinator to show the registry follows.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components.repairs import ConfirmRepairFlow
from homeassistant.components.repairs.issue_handler import async_process_repairs_platforms
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream import repairs
from custom_components.pi_stream.api import AgentInfo
from custom_components.pi_stream.const import DOMAIN
from custom_components.pi_stream.coordinator import AgentState, PiStreamCoordinator
from custom_components.pi_stream.repairs import (
    RepairHistory,
    Thresholds,
    advance,
    evaluate,
    issue_id,
)
from tests.integration.agent_process import AgentProcess
from tests.integration.vocabulary_source import agent_vocabulary

MIB = 1024 * 1024
T0 = 1_800_000_000.0


# -- constructed states -----------------------------------------------------------------------------------


def make_state(
    *,
    soc: str = "BCM2711",
    hardware_encoder: bool | None = True,
    streams: dict[str, dict[str, Any]] | None = None,
    processes: dict[str, Any] | None = None,
    episodes: int | None = 0,
    cores: int = 4,
) -> AgentState:
    info = AgentInfo(
        agent_id="0123456789abcdef",
        name="camera-pi",
        hostname="camera-pi",
        version="0.1.0",
        api_version=1,
        simulated=False,
        board={"soc": soc, "hardware_h264_encoder": hardware_encoder},
        capabilities={"hardware_h264_encoder": hardware_encoder},
    )
    telemetry = {
        "cma": {"total_bytes": 256 * MIB, "free_bytes": 100 * MIB},
        "cpu": {"percent": 50.0, "count": cores},
        "processes": processes or {},
        "power": {"under_voltage_episodes": episodes},
    }
    return AgentState(
        info=info, telemetry=telemetry, streams=streams or {}, devices={}, vocabulary=agent_vocabulary()
    )


def stream(
    state: str = "running", cause: str | None = None, last_exit: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "Front door"),
        "state": state,
        "cause": cause,
        "last_exit": last_exit,
    } | extra


def keys(issues: list[repairs.RepairIssue]) -> list[str]:
    return [issue.key for issue in issues]


# -- CMA exhaustion (pure) --------------------------------------------------------------------------------


def test_cma_exhaustion_blocks_a_stream_until_it_runs() -> None:
    failed_exit = {"cause": "buffer_allocation", "cma_free_bytes": 3 * MIB}
    backoff = make_state(
        streams={"front_door": stream("backoff", "buffer_allocation", failed_exit), "garage": stream()}
    )
    [issue] = evaluate(backoff, RepairHistory(), T0, name="Camera Pi")
    assert issue.key == "cma_exhausted_front_door"
    assert issue.translation_key == "cma_exhausted"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.placeholders == {
        "name": "Camera Pi",
        "stream": "Front door",
        "cma_free_mib": "3",  # CMA free at the moment it failed, not now
        "cma_total_mib": "256",
    }
    # Retrying after the failure: still blocked (no flapping with every backoff cycle).
    retrying = make_state(streams={"front_door": stream("starting", None, failed_exit)})
    assert keys(evaluate(retrying, RepairHistory(), T0, name="Camera Pi")) == ["cma_exhausted_front_door"]
    # Without the free figure from the exit, the current one.
    no_figure = make_state(streams={"front_door": stream("failed", "buffer_allocation", None)})
    [issue] = evaluate(no_figure, RepairHistory(), T0, name="Camera Pi")
    assert issue.placeholders["cma_free_mib"] == "100"

    for cleared in (
        stream("running", None, failed_exit),  # it got its buffers
        stream("stopped", "stopped", failed_exit),  # a person stopped it
        stream("disabled", None, failed_exit),
        stream("waiting_for_device", "device_gone", failed_exit),  # blocked, but by something else
        stream("backoff", "rtsp_unreachable", {"cause": "rtsp_unreachable"}),
    ):
        assert evaluate(make_state(streams={"front_door": cleared}), RepairHistory(), T0, name="Pi") == []


# -- recurring under-voltage (pure) -----------------------------------------------------------------------


def test_under_voltage_counts_episodes_within_the_window() -> None:
    thresholds = Thresholds(under_voltage_episodes=3, under_voltage_window_s=3600)
    history = advance(RepairHistory(), make_state(episodes=7), T0, thresholds)
    # The first sight is a baseline: 7 episodes since boot, when is unknown.
    assert history.episode_times == ()
    assert evaluate(make_state(episodes=7), history, T0, name="Pi", thresholds=thresholds) == []

    history = advance(history, make_state(episodes=8), T0 + 60, thresholds)
    history = advance(history, make_state(episodes=10), T0 + 120, thresholds)  # two between two updates
    assert history.episode_times == (T0 + 60, T0 + 120, T0 + 120)
    [issue] = evaluate(make_state(episodes=10), history, T0 + 120, name="Pi", thresholds=thresholds)
    assert issue.key == "under_voltage"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.placeholders == {"name": "Pi", "count": "3", "window_minutes": "60", "threshold": "3"}

    # An hour after the first, only two remain in the window: cleared.
    later = T0 + 60 + 3600
    history = advance(history, make_state(episodes=10), later, thresholds)
    assert history.episode_times == (T0 + 120, T0 + 120)
    assert evaluate(make_state(episodes=10), history, later, name="Pi", thresholds=thresholds) == []


def test_under_voltage_counter_reset_is_a_new_baseline() -> None:
    history = advance(RepairHistory(), make_state(episodes=5), T0)
    history = advance(history, make_state(episodes=1), T0 + 10)  # the Pi rebooted
    assert history.episodes_seen == 1
    assert history.episode_times == ()
    history = advance(history, make_state(episodes=2), T0 + 20)
    assert history.episode_times == (T0 + 20,)
    # An agent that cannot count keeps the history as it was.
    assert advance(history, make_state(episodes=None), T0 + 30) == history


# -- Pi 5 software encoding (pure) ------------------------------------------------------------------------


def pi5(
    cpu_front: float | None, cpu_garage: float | None, *, soc: str = "BCM2712", hw: bool | None = False
) -> AgentState:
    streams = {
        "front_door": stream(software_encoded=True, publishers={"rpicam-vid": {"cpu_percent": 1.0}}),
        "garage": stream(name="Garage", software_encoded=True),
        "hall": stream("backoff", name="Hall", software_encoded=True),  # not running: not counted
    }
    processes = {
        "agent": {"cpu_percent": 90.0},  # not a publisher
        "front_door/rpicam-vid": {"cpu_percent": cpu_front},
        "garage/ffmpeg": {"cpu_percent": cpu_garage},
        "hall/ffmpeg": {"cpu_percent": 300.0},
    }
    return make_state(soc=soc, hardware_encoder=hw, streams=streams, processes=processes)


def run(states: list[tuple[float, AgentState]]) -> tuple[RepairHistory, list[repairs.RepairIssue]]:
    history = RepairHistory()
    issues: list[repairs.RepairIssue] = []
    for now, state in states:
        history = advance(history, state, now)
        issues = evaluate(state, history, now, name="Pi 5")
    return history, issues


def test_software_encoding_on_a_pi5_must_be_sustained() -> None:
    busy = pi5(150.0, 80.0)  # 230 % of 400 %: 57.5 % of the Pi
    history, issues = run([(T0, busy), (T0 + 299, busy)])
    assert history.software_encoding_busy_since == T0
    assert issues == []
    history, issues = run([(T0, busy), (T0 + 150, busy), (T0 + 300, busy)])
    [issue] = issues
    assert issue.key == "software_encoding"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.placeholders == {
        "name": "Pi 5",
        "percent": "57",
        "streams": "Front door, Garage",
        "minutes": "5",
        "clear_percent": "40",
    }


def test_software_encoding_hysteresis_and_clearing() -> None:
    busy, middling, quiet = pi5(150.0, 80.0), pi5(100.0, 80.0), pi5(100.0, 50.0)  # 57 %, 45 %, 37.5 %
    # Between the thresholds the issue stays; below the lower one it clears and the clock restarts.
    _, issues = run([(T0, busy), (T0 + 300, busy), (T0 + 400, middling)])
    assert keys(issues) == ["software_encoding"]
    history, issues = run([(T0, busy), (T0 + 300, busy), (T0 + 400, quiet)])
    assert issues == []
    assert history.software_encoding_busy_since is None
    # Starting between the thresholds never raises it.
    _, issues = run([(T0, middling), (T0 + 1000, middling)])
    assert issues == []
    # CPU figures not yet known (a new process): no verdict, no issue.
    _, issues = run([(T0, pi5(None, None)), (T0 + 1000, pi5(None, None))])
    assert issues == []


def test_software_encoding_share_needs_running_streams_and_cores() -> None:
    idle = pi5(300.0, 300.0)
    idle = replace(idle, streams={key: value | {"state": "stopped"} for key, value in idle.streams.items()})
    assert repairs.software_encoding_share(idle) == (None, [])
    no_cores = pi5(300.0, 300.0)
    no_cores = replace(no_cores, telemetry={**no_cores.telemetry, "cpu": {"count": None}})
    assert repairs.software_encoding_share(no_cores) == (None, [])


def test_software_encoding_figures_fall_back_to_the_stream_listing() -> None:
    state = pi5(0.0, 0.0)
    state = replace(state, telemetry={**state.telemetry, "processes": {}})
    state.streams["front_door"]["publishers"] = {"rpicam-vid": {"cpu_percent": 250.0}}
    assert repairs.software_encoding_share(state) == (250.0 / 400.0, ["Front door", "Garage"])


def test_software_encoding_is_no_issue_with_a_hardware_encoder() -> None:
    # The simulated Pi 4's test patterns are software-encoded too, but a Pi 4 has a hardware encoder.
    busy = pi5(300.0, 300.0, soc="BCM2711", hw=True)
    _, issues = run([(T0, busy), (T0 + 3600, busy)])
    assert issues == []
    # A board that says it has no encoder counts even without the Pi 5's SoC name.
    _, issues = run([(T0, pi5(300.0, 300.0, soc="?")), (T0 + 3600, pi5(300.0, 300.0, soc="?"))])
    assert keys(issues) == ["software_encoding"]


def test_the_agent_alone_decides_whether_there_is_a_hardware_encoder() -> None:
    # The integration used to hold its own Pi 5 SoC constant, which won over the agent's capability: a
    # BCM2712 the agent says can encode in hardware (or cannot tell) raised the issue regardless.
    for capability in (True, None):
        busy = pi5(300.0, 300.0, soc="BCM2712", hw=capability)
        _, issues = run([(T0, busy), (T0 + 3600, busy)])
        assert issues == [], capability


# -- through Home Assistant and the real agent ------------------------------------------------------------


async def wait_for(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.1)


async def test_recurring_under_voltage_through_the_agent(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    request: pytest.FixtureRequest,
) -> None:
    entry = init_integration
    coordinator: PiStreamCoordinator = entry.runtime_data
    ident = issue_id(entry.entry_id, "under_voltage")

    def power() -> dict[str, Any]:
        return dict(coordinator.data.telemetry.get("power") or {})

    assert issue_registry.async_get_issue(DOMAIN, ident) is None
    start = power()["under_voltage_episodes"]
    for n in range(1, 4):
        await wait_for(lambda: not power()["under_voltage_now"])  # a new sag, not a longer one
        await hass.async_add_executor_job(
            agent.request, "POST", "/simulation/under_voltage", {"duration_s": 0.1}
        )
        await wait_for(lambda n=n: power()["under_voltage_episodes"] >= start + n)
    issue = issue_registry.async_get_issue(DOMAIN, ident)
    assert issue is not None
    assert issue.translation_key == "under_voltage"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable
    assert issue.learn_more_url is None
    assert int(issue.translation_placeholders["count"]) >= 3
    assert issue.translation_placeholders["name"] == entry.title

    # An hour later the episodes have left the window: the next update clears the issue.
    freezer = request.getfixturevalue("freezer")
    freezer.tick(timedelta(seconds=repairs.UNDER_VOLTAGE_WINDOW_S + 1))
    coordinator.async_update_listeners()
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, ident) is None


async def test_cma_issue_follows_the_coordinator_and_unload_withdraws_it(
    hass: HomeAssistant, init_integration: MockConfigEntry, issue_registry: ir.IssueRegistry
) -> None:
    entry = init_integration
    coordinator: PiStreamCoordinator = entry.runtime_data
    ident = issue_id(entry.entry_id, "cma_exhausted_garage")
    state = coordinator.data
    good = state.streams["garage"]
    starved = good | {
        "state": "backoff",
        "cause": "buffer_allocation",
        "last_exit": {"cause": "buffer_allocation", "cma_free_bytes": 2 * MIB},
    }
    coordinator.async_set_updated_data(replace(state, streams={**state.streams, "garage": starved}))
    issue = issue_registry.async_get_issue(DOMAIN, ident)
    assert issue is not None
    assert issue.translation_placeholders["stream"] == "Garage"
    assert issue.translation_placeholders["cma_free_mib"] == "2"
    assert issue.severity is ir.IssueSeverity.ERROR

    coordinator.async_set_updated_data(replace(state, streams={**state.streams, "garage": good}))
    assert issue_registry.async_get_issue(DOMAIN, ident) is None

    coordinator.async_set_updated_data(replace(state, streams={**state.streams, "garage": starved}))
    assert issue_registry.async_get_issue(DOMAIN, ident) is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, ident) is None
    # Unloaded, the coordinator no longer drives issues.
    coordinator.async_set_updated_data(replace(state, streams={**state.streams, "garage": starved}))
    assert issue_registry.async_get_issue(DOMAIN, ident) is None


async def test_incompatible_agent_raises_an_issue_until_setup_succeeds(
    hass: HomeAssistant,
    agent: AgentProcess,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = mock_config_entry
    entry.add_to_hass(hass)
    ident = issue_id(entry.entry_id, "incompatible_agent")
    # The real agent speaks API 1; an integration that only knows API 2 cannot talk to it.
    with patch("custom_components.pi_stream.api.SUPPORTED_API_VERSION", 2):
        assert not await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    issue = issue_registry.async_get_issue(DOMAIN, ident)
    assert issue is not None
    assert issue.translation_key == "incompatible_agent"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {"name": entry.title, "agent_api": "1", "supported_api": "2"}

    # Matching versions again (the user updated one side) and the entry reloaded: the issue is gone.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert issue_registry.async_get_issue(DOMAIN, ident) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_other_setup_errors_raise_no_issue(
    hass: HomeAssistant,
    agent: AgentProcess,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        data={**mock_config_entry.data, "token": "not-the-token"},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR  # auth failed: reauth, not a repair issue
    # Any other ConfigEntryError is not an incompatible agent either.
    repairs.async_setup_failed(
        hass, entry, ConfigEntryError(translation_domain=DOMAIN, translation_key="other")
    )
    assert [i for (d, i) in issue_registry.issues if d == DOMAIN] == []


async def test_removing_the_entry_removes_its_issues(
    hass: HomeAssistant,
    agent: AgentProcess,
    mock_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = mock_config_entry
    entry.add_to_hass(hass)
    with patch("custom_components.pi_stream.api.SUPPORTED_API_VERSION", 2):
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    other = issue_id("another-entry", "incompatible_agent")
    ir.async_create_issue(
        hass,
        DOMAIN,
        other,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="incompatible_agent",
    )
    assert issue_registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "incompatible_agent")) is not None
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert [i for (d, i) in issue_registry.issues if d == DOMAIN] == [other]


async def test_repairs_platform_is_valid(
    hass: HomeAssistant, init_integration: MockConfigEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """Home Assistant's repairs integration loads every integration's ``repairs.py`` the first time any fix
    flow opens; one without a fix-flow factory is logged as an error and breaks nothing but the log."""
    assert await async_setup_component(hass, "repairs", {})
    await async_process_repairs_platforms(hass)
    await hass.async_block_till_done()
    assert "Invalid repairs platform" not in caplog.text
    assert hass.data["repairs"]["platforms"][DOMAIN] is repairs
    flow = await repairs.async_create_fix_flow(
        hass, issue_id(init_integration.entry_id, "under_voltage"), None
    )
    assert isinstance(flow, ConfirmRepairFlow)


def test_issue_placeholders_match_their_translations() -> None:
    """Every placeholder a text uses is given, and nothing given goes unused."""
    translations = json.loads((Path(repairs.__file__).parent / "translations" / "en.json").read_text())[
        "issues"
    ]
    history = RepairHistory(episodes_seen=3, episode_times=(T0, T0, T0), software_encoding_busy_since=T0)
    starved = stream("backoff", "buffer_allocation", {"cause": "buffer_allocation", "cma_free_bytes": MIB})
    state = replace(pi5(300.0, 300.0), streams={**pi5(300.0, 300.0).streams, "cam": starved})
    issues = evaluate(state, history, T0 + 600, name="Pi")
    assert sorted(issue.translation_key for issue in issues) == [
        "cma_exhausted",
        "software_encoding",
        "under_voltage",
    ]
    given = {issue.translation_key: set(issue.placeholders) for issue in issues}
    given["incompatible_agent"] = {"name", "agent_api", "supported_api"}  # async_setup_failed, tested above
    # The Pi's storage and the agent's version (tests/integration/test_health.py).
    failing_storage = replace(
        state,
        telemetry={**state.telemetry, "storage": {"root": {"read_only": True}, "errors_total": 1}},
    )
    for issue in evaluate(failing_storage, history, T0 + 600, name="Pi", expected_version="99.0.0"):
        given[issue.translation_key] = set(issue.placeholders)
    assert set(given) == set(translations)
    for key, names in given.items():
        text = translations[key]["title"] + translations[key]["description"]
        assert set(re.findall(r"\{(\w+)\}", text)) == names, key
