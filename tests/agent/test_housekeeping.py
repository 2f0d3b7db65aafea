"""Housekeeping routes over loopback, served by the real agent: refused unless allowed, recorded (not
performed) on a simulated Pi, argument lists on a real one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest

from pi_stream_agent.agent import Agent
from pi_stream_agent.config import validate
from pi_stream_agent.housekeeping import PowerControl
from tests.agent.helpers import FixtureTree
from tests.agent.test_api import agent_config, auth, base_url, receive_until

ROUTES = {
    "/api/v1/agent/restart": "agent_restart",
    "/api/v1/system/reboot": "reboot",
    "/api/v1/system/shutdown": "shutdown",
}


def test_power_control_is_off_unless_the_config_allows_it() -> None:
    assert validate({}).allow_power_control is False
    assert validate({"allow_power_control": True}).allow_power_control is True


@pytest.mark.parametrize("path", list(ROUTES))
async def test_every_action_is_refused_with_what_to_do_when_not_allowed(tmp_path: Path, path: str) -> None:
    agent = Agent(agent_config(tmp_path))
    await agent.start()
    try:
        async with aiohttp.ClientSession(headers=auth(agent)) as session:
            async with session.get(base_url(agent) + "/api/v1/info") as response:
                assert (await response.json())["capabilities"]["power_control"] is False
            async with session.post(base_url(agent) + path) as response:
                assert response.status == 403
                error = (await response.json())["error"]
        assert error["code"] == "power_control_disabled"
        assert "allow_power_control: true" in error["message"]
        assert "docs/install.md" in error["message"]
        assert agent.power_control.performed == []
    finally:
        await agent.stop()


async def test_without_the_token_nothing_is_revealed(tmp_path: Path) -> None:
    agent = Agent(dataclasses.replace(agent_config(tmp_path), allow_power_control=True))
    await agent.start()
    try:
        async with aiohttp.ClientSession() as session:
            for path in ROUTES:
                async with session.post(base_url(agent) + path) as response:
                    assert response.status == 401
        assert agent.power_control.performed == []
    finally:
        await agent.stop()


async def test_a_simulated_pi_records_each_action_and_pushes_it(tmp_path: Path) -> None:
    agent = Agent(dataclasses.replace(agent_config(tmp_path), allow_power_control=True))
    ran: list[Sequence[str]] = []

    async def runner(argv: Sequence[str]) -> int:
        ran.append(argv)
        return 0

    agent.power_control.runner = runner
    await agent.start()
    try:
        async with aiohttp.ClientSession(headers=auth(agent)) as session:
            async with session.get(base_url(agent) + "/api/v1/info") as response:
                assert (await response.json())["capabilities"]["power_control"] is True
            async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
                for path, action in ROUTES.items():
                    async with session.post(base_url(agent) + path) as response:
                        assert response.status == 202
                        body = await response.json()
                    assert body == {"accepted": True, "action": action, "simulated": True}
                    event = await receive_until(
                        ws, lambda m: m["type"] == "event" and m["event"]["type"] == "power_action", 5
                    )
                    assert event["event"]["data"]["action"] == action
                    assert event["event"]["data"]["simulated"] is True
        assert [record["action"] for record in agent.power_control.performed] == list(ROUTES.values())
        assert ran == []  # nothing was run on this machine
    finally:
        await agent.stop()


async def test_a_real_pi_runs_systemctl_as_an_argument_list_and_restarts_by_exiting(tmp_path: Path) -> None:
    tree = FixtureTree(tmp_path / "root")
    tree.write("proc/meminfo", "MemTotal: 1000 kB\n")
    config = dataclasses.replace(
        agent_config(tmp_path), simulate=False, root=tree.base, allow_power_control=True
    )
    agent = Agent(config)
    ran: list[Sequence[str]] = []
    restarts: list[bool] = []

    async def runner(argv: Sequence[str]) -> int:
        ran.append(tuple(argv))
        return 0

    agent.power_control.runner = runner
    agent.power_control.request_restart = lambda: restarts.append(True)
    await agent.start()
    try:
        async with aiohttp.ClientSession(headers=auth(agent)) as session:
            async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
                for path in ROUTES:
                    async with session.post(base_url(agent) + path) as response:
                        assert response.status == 202
                        assert "simulated" not in await response.json()
                    await receive_until(
                        ws, lambda m: m["type"] == "event" and m["event"]["type"] == "power_action", 5
                    )
        assert ran == [("systemctl", "reboot"), ("systemctl", "poweroff")]
        assert restarts == [True]
    finally:
        await agent.stop()


async def test_an_action_not_started_when_the_agent_stops_is_dropped() -> None:
    control = PowerControl(allowed=True, simulated=True)
    control.accept("reboot")
    await control.close()
    assert control.performed == []
