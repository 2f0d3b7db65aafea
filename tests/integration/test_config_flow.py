"""The config flow against the real agent: manual set-up, zeroconf discovery, reauth and reconfigure.

Only the zeroconf payload is made up (nothing announces here); it points at the real agent on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncGenerator, Callable, Iterator
from ipaddress import ip_address
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER, SOURCE_ZEROCONF, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.api import PiStreamClient
from custom_components.pi_stream.const import CONF_TOKEN, DOMAIN
from tests.integration.agent_process import REPO_ROOT, AgentProcess, free_port


@pytest.fixture(autouse=True)
async def unload_entries(hass: HomeAssistant) -> AsyncGenerator[None]:
    """Entries a flow set up talk to the agent; disconnect them before the test ends."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def user_input(agent: AgentProcess, **changes: Any) -> dict[str, Any]:
    return {CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: agent.token, **changes}


def zeroconf_info(agent: AgentProcess, agent_id: str | None, api: str | None = "1") -> ZeroconfServiceInfo:
    """What HA's zeroconf would hand over for the agent's announcement (zeroconf_ad.build_service_info)."""
    properties = {"version": "0.1.0", "path": "/api/v1"}
    if agent_id is not None:
        properties["id"] = agent_id
    if api is not None:
        properties["api"] = api
    return ZeroconfServiceInfo(
        ip_address=ip_address(agent.host),
        ip_addresses=[ip_address(agent.host)],
        hostname="camera-pi.local.",
        name="camera-pi._pi-stream._tcp.local.",
        port=agent.port,
        type="_pi-stream._tcp.local.",
        properties=properties,
    )


async def agent_info(hass: HomeAssistant, agent: AgentProcess) -> dict[str, Any]:
    info: dict[str, Any] = await hass.async_add_executor_job(agent.request, "GET", "/info")
    return info


# -- manual set-up


async def test_user_flow_sets_up_the_agent(hass: HomeAssistant, agent: AgentProcess) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    # The port field defaults to the agent's default port.
    port_key = next(key for key in result["data_schema"].schema if key == CONF_PORT)
    assert port_key.default() == 8190

    # Whitespace around a pasted token or host does not matter.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input(agent, **{CONF_HOST: f" {agent.host} ", CONF_TOKEN: f"{agent.token}\n"})
    )
    info = await agent_info(hass, agent)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == info["name"]
    assert result["data"] == {CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: agent.token}
    entry = result["result"]
    assert entry.unique_id == info["agent_id"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


def _cannot_connect(agent: AgentProcess) -> tuple[dict[str, Any], contextlib.AbstractContextManager[Any]]:
    return {CONF_PORT: free_port()}, contextlib.nullcontext()


def _invalid_auth(agent: AgentProcess) -> tuple[dict[str, Any], contextlib.AbstractContextManager[Any]]:
    return {CONF_TOKEN: "not-the-token"}, contextlib.nullcontext()


def _incompatible(agent: AgentProcess) -> tuple[dict[str, Any], contextlib.AbstractContextManager[Any]]:
    # The real agent speaks API 1; an integration that only knew API 2 must refuse it.
    stack = contextlib.ExitStack()
    for module in ("api", "config_flow"):
        stack.enter_context(patch(f"custom_components.pi_stream.{module}.SUPPORTED_API_VERSION", 2))
    return {}, stack


def _unknown(agent: AgentProcess) -> tuple[dict[str, Any], contextlib.AbstractContextManager[Any]]:
    # A bug, not something a working agent can cause: the only made-up failure here.
    return {}, patch.object(PiStreamClient, "info", side_effect=RuntimeError("boom"))


@pytest.mark.parametrize(
    ("make_failure", "errors", "placeholders"),
    [
        (_cannot_connect, {"base": "cannot_connect"}, {}),
        (_invalid_auth, {CONF_TOKEN: "invalid_auth"}, {}),
        (_incompatible, {"base": "incompatible_agent"}, {"agent_api": "1", "supported_api": "2"}),
        (_unknown, {"base": "unknown"}, {}),
    ],
    ids=["cannot_connect", "invalid_auth", "incompatible_agent", "unknown"],
)
async def test_user_flow_error_then_retry(
    hass: HomeAssistant,
    agent: AgentProcess,
    make_failure: Callable[[AgentProcess], tuple[dict[str, Any], contextlib.AbstractContextManager[Any]]],
    errors: dict[str, str],
    placeholders: dict[str, str],
) -> None:
    changes, failure = make_failure(agent)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    with failure:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], user_input(agent, **changes)
        )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == errors
    assert result["description_placeholders"] == placeholders
    # What was typed stays in the form, so only the wrong part needs fixing.
    suggested = {str(key): key.description["suggested_value"] for key in result["data_schema"].schema}
    assert suggested == user_input(agent, **changes)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(agent))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == (await agent_info(hass, agent))["agent_id"]


async def test_user_flow_same_agent_again_updates_the_entry(hass: HomeAssistant, agent: AgentProcess) -> None:
    info = await agent_info(hass, agent)
    stale_port = free_port()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=info["name"],
        unique_id=info["agent_id"],
        data={CONF_HOST: "192.0.2.7", CONF_PORT: stale_port, CONF_TOKEN: "old-token"},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(agent))
    assert result["type"] is FlowResultType.ABORT
    # It says what changed: the address (the token changed too, which matters less).
    assert result["reason"] == "address_updated"
    assert dict(entry.data) == {CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: agent.token}
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1

    # The same again: nothing changed, and it says only that the Pi is set up already.
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(agent))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_user_flow_same_agent_with_a_new_token(hass: HomeAssistant, agent: AgentProcess) -> None:
    info = await agent_info(hass, agent)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=info["name"],
        unique_id=info["agent_id"],
        data={CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: "old-token"},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input(agent))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "token_updated"
    assert entry.data[CONF_TOKEN] == agent.token


# -- zeroconf


async def test_zeroconf_discovery_asks_for_the_token(hass: HomeAssistant, agent: AgentProcess) -> None:
    info = await agent_info(hass, agent)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(agent, info["agent_id"])
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "zeroconf_confirm"
    assert result["description_placeholders"] == {"name": "camera-pi", "host": f"127.0.0.1:{agent.port}"}
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["title_placeholders"] == {"name": "camera-pi"}
    assert flow["context"]["unique_id"] == info["agent_id"]

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: "wrong"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}
    assert result["description_placeholders"]["name"] == "camera-pi"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: agent.token})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == info["name"]
    assert result["data"] == {CONF_HOST: "127.0.0.1", CONF_PORT: agent.port, CONF_TOKEN: agent.token}
    assert result["result"].unique_id == info["agent_id"]


async def test_zeroconf_known_agent_at_a_new_address_updates_the_entry(
    hass: HomeAssistant, agent: AgentProcess
) -> None:
    info = await agent_info(hass, agent)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=info["name"],
        unique_id=info["agent_id"],
        data={CONF_HOST: "192.0.2.7", CONF_PORT: 8190, CONF_TOKEN: agent.token},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(agent, info["agent_id"])
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "address_updated"
    assert dict(entry.data) == {CONF_HOST: "127.0.0.1", CONF_PORT: agent.port, CONF_TOKEN: agent.token}
    # Announced again at the same address: nothing to update, and nothing said about an update.
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(agent, info["agent_id"])
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    # The updated address is the agent's: the entry now sets up.
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize("api", ["2", "x", None])
async def test_zeroconf_refuses_an_unknown_api_version(
    hass: HomeAssistant, agent: AgentProcess, api: str | None
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(agent, "0123456789abcdef", api)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "incompatible_agent"
    assert result["description_placeholders"] == {"agent_api": str(api), "supported_api": "1"}


async def test_zeroconf_without_an_agent_id_is_ignored(hass: HomeAssistant, agent: AgentProcess) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_ZEROCONF}, data=zeroconf_info(agent, None)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "invalid_discovery_info"


# -- reauth


def rotate_token(agent: AgentProcess) -> str:
    """As a person does on the Pi: stop the agent, `pi-stream-agent token --rotate`, start it again."""
    old = agent.token
    agent.stop()
    subprocess.run(
        [
            "/usr/bin/python3",
            "-m",
            "pi_stream_agent",
            "token",
            "--rotate",
            "--state-dir",
            str(agent.state_dir),
        ],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    agent.start()
    assert agent.token != old
    return old


async def test_rotated_token_leads_to_reauth_and_the_new_token_fixes_it(
    hass: HomeAssistant, agent: AgentProcess, init_integration: MockConfigEntry
) -> None:
    entry = init_integration
    old_token = await hass.async_add_executor_job(rotate_token, agent)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR

    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    flow = flows[0]
    assert flow["context"]["source"] == SOURCE_REAUTH
    assert flow["step_id"] == "reauth_confirm"

    # The old token again: refused, and the form can be retried.
    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {CONF_TOKEN: old_token})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}
    assert result["description_placeholders"] == {"name": entry.title, "host": f"{agent.host}:{agent.port}"}

    result = await hass.config_entries.flow.async_configure(flow["flow_id"], {CONF_TOKEN: agent.token})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_TOKEN] == agent.token
    assert entry.state is ConfigEntryState.LOADED
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_reauth_refuses_a_different_agent(hass: HomeAssistant, agent: AgentProcess) -> None:
    # The entry was made for another Pi; whoever now answers at its address is not that Pi.
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Other Pi",
        unique_id="0000000000000000",
        data={CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: "old"},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_TOKEN: agent.token})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_agent"
    assert entry.data[CONF_TOKEN] == "old"


# -- reconfigure


@pytest.fixture
def moved_entry(hass: HomeAssistant, agent: AgentProcess) -> Iterator[MockConfigEntry]:
    """The agent's entry, still pointing at the port it used before it moved."""
    info = agent.request("GET", "/info")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=info["name"],
        unique_id=info["agent_id"],
        data={CONF_HOST: agent.host, CONF_PORT: free_port(), CONF_TOKEN: agent.token},
    )
    entry.add_to_hass(hass)
    yield entry


async def test_reconfigure_to_the_new_address(
    hass: HomeAssistant, agent: AgentProcess, moved_entry: MockConfigEntry
) -> None:
    old_port = moved_entry.data[CONF_PORT]
    result = await moved_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"name": moved_entry.title}
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description
    }
    assert suggested == {CONF_HOST: agent.host, CONF_PORT: old_port}

    # The old address still does not answer: a retryable error.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: agent.host, CONF_PORT: old_port}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    # The token left empty keeps the current one.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: agent.host, CONF_PORT: agent.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert dict(moved_entry.data) == {CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: agent.token}
    assert moved_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_with_a_new_token(hass: HomeAssistant, agent: AgentProcess) -> None:
    info = await agent_info(hass, agent)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=info["name"],
        unique_id=info["agent_id"],
        data={CONF_HOST: agent.host, CONF_PORT: free_port(), CONF_TOKEN: "stale"},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    # Right address, but the stored token is stale: the form says so…
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: agent.host, CONF_PORT: agent.port}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}
    # …and takes the new one.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: f" {agent.token} "}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert dict(entry.data) == {CONF_HOST: agent.host, CONF_PORT: agent.port, CONF_TOKEN: agent.token}
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_refuses_a_different_agent(hass: HomeAssistant, agent: AgentProcess) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Other Pi",
        unique_id="0000000000000000",
        data={CONF_HOST: "192.0.2.7", CONF_PORT: 8190, CONF_TOKEN: agent.token},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_HOST: agent.host, CONF_PORT: agent.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_agent"
    assert entry.data[CONF_HOST] == "192.0.2.7"
