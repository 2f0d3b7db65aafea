"""The API over loopback, served by the real agent (simulated Pi): auth, errors, WebSocket push."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pi_stream_agent import API_VERSION
from pi_stream_agent.agent import Agent
from pi_stream_agent.config import AgentConfig, TelemetrySettings

ROUTES = [
    ("GET", "/api/v1/info"),
    ("GET", "/api/v1/telemetry"),
    ("GET", "/api/v1/devices"),
    ("POST", "/api/v1/devices/refresh"),
    ("GET", "/api/v1/ws"),
    ("GET", "/api/v1/no-such-route"),
    ("GET", "/"),
]


def agent_config(tmp_path: Path, **telemetry: float) -> AgentConfig:
    return AgentConfig(
        host="127.0.0.1",
        port=0,
        state_dir=tmp_path / "state",
        telemetry=TelemetrySettings(**telemetry) if telemetry else TelemetrySettings(interval_s=1.0),
        zeroconf_enabled=False,
        simulate=True,
        streams=(),  # telemetry and devices only here; streams have their own tests
    )


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    running = Agent(agent_config(tmp_path, interval_s=1.0, flag_check_interval_s=0.5))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def base_url(agent: Agent) -> str:
    return f"http://127.0.0.1:{agent.port}"


def auth(agent: Agent) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent.token}"}


async def receive_until(
    ws: aiohttp.ClientWebSocketResponse, predicate: Any, timeout: float
) -> dict[str, Any]:
    """Read messages until one satisfies ``predicate``; fails the test after ``timeout`` seconds."""

    async def reader() -> dict[str, Any]:
        while True:
            message = await ws.receive_json()
            if predicate(message):
                return message  # type: ignore[no-any-return]

    return await asyncio.wait_for(reader(), timeout)


# -- authentication -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz", "Bearer", "bearer  "],
    ids=["missing", "wrong", "basic", "empty", "blank"],
)
async def test_every_route_refuses_a_missing_or_wrong_token(agent: Agent, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    async with aiohttp.ClientSession() as session:
        for method, path in ROUTES:
            async with session.request(method, base_url(agent) + path, headers=headers) as response:
                body = await response.json()
                assert response.status == 401, (method, path)
                assert body["error"]["code"] == "unauthorized"
                # Nothing else leaks: no data, no hint of which routes exist.
                assert set(body) == {"error"}
                assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_that_differs_only_in_its_last_character_is_refused(agent: Agent) -> None:
    almost = agent.token[:-1] + ("A" if agent.token[-1] != "A" else "B")
    async with aiohttp.ClientSession() as session:
        async with session.get(
            base_url(agent) + "/api/v1/info", headers={"Authorization": f"Bearer {almost}"}
        ) as r:
            assert r.status == 401


async def test_websocket_handshake_without_token_is_refused(agent: Agent) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(base_url(agent) + "/api/v1/ws")
        assert caught.value.status == 401


async def test_token_is_stored_with_mode_0600_and_survives_restart(tmp_path: Path) -> None:
    config = agent_config(tmp_path)
    first = Agent(config)
    await first.start()
    token, agent_id = first.token, first.agent_id
    await first.stop()
    token_file = config.state_dir / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.read_text().strip() == token
    second = Agent(config)
    await second.start()
    try:
        assert second.token == token
        assert second.agent_id == agent_id
    finally:
        await second.stop()


# -- REST ---------------------------------------------------------------------------------------------------


async def test_info_describes_the_agent_and_the_board(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.get(base_url(agent) + "/api/v1/info") as response:
            assert response.status == 200
            info = await response.json()
    assert info["api_version"] == API_VERSION
    assert info["agent_id"] == agent.agent_id and len(info["agent_id"]) == 16
    assert info["simulated"] is True
    assert info["board"]["type"] == "4B"
    assert info["board"]["soc"] == "BCM2711"
    assert "serial" not in info["board"]
    assert info["capabilities"]["hardware_h264_encoder"] is True
    assert info["capabilities"]["firmware_source"] == "simulated"
    assert sorted(info["capabilities"]["under_voltage_sources"]) == ["hwmon", "kmsg"]


async def test_telemetry_has_every_contract_key(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.get(base_url(agent) + "/api/v1/telemetry") as response:
            assert response.status == 200
            sample = await response.json()
    for section, keys in {
        "board": ["model", "revision", "memory_bytes"],
        "cma": ["total_bytes", "free_bytes"],
        "dmabuf": ["total_bytes", "buffers", "by_exporter"],
        "memory": ["total_bytes", "available_bytes"],
        "swap": ["total_bytes", "free_bytes"],
    }.items():
        for key in keys:
            assert key in sample[section], f"{section}.{key}"
    assert sample["board"]["memory_bytes"] == 4 * 1024**3
    assert sample["cma"]["total_bytes"] == 512 * 1024**2
    assert 30 < sample["soc_temperature_c"] < 80
    assert sample["throttle"]["under_voltage"] is False
    assert sample["wifi"]["wlan0"]["signal_dbm"] < 0
    # The agent primed its counters at start, so rates are already there.
    assert sample["network"]["eth0"]["rx_bytes_per_s"] is not None


async def test_unknown_route_and_wrong_method_are_json_errors(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.get(base_url(agent) + "/api/v1/streams-of-the-future") as response:
            assert response.status == 404
            assert (await response.json())["error"]["code"] == "not_found"
        async with session.delete(base_url(agent) + "/api/v1/info") as response:
            assert response.status == 405
            assert (await response.json())["error"]["code"] == "method_not_allowed"
        async with session.get(base_url(agent) + "/api/v1/ws") as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == "websocket_required"


async def test_oversized_body_is_refused_with_413(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        body = b"x" * (1024 * 1024)
        async with session.post(base_url(agent) + "/api/v1/devices/refresh", data=body) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "payload_too_large"
        # …and the agent still serves.
        async with session.get(base_url(agent) + "/api/v1/info") as response:
            assert response.status == 200


async def test_devices_lists_the_simulated_pi_platform_nodes_and_offers_its_camera_and_card(
    agent: Agent,
) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.post(base_url(agent) + "/api/v1/devices/refresh") as response:
            assert response.status == 200
            devices = await response.json()
    # The simulated Pi's USB capture card and Camera Module 3, with their recorded controls
    # (pi_stream_agent/simulation/devices.py); the Pi's own nodes are never offered.
    assert [(d["path"], d["name"]) for d in devices["capture_devices"]] == [("/dev/video2", "USB Video")]
    assert devices["capture_devices"][0]["controls"]["brightness"]["min"] == -128
    assert [(c["index"], c["model"]) for c in devices["csi_cameras"]] == [(0, "imx708")]
    assert devices["csi_cameras"][0]["controls"]["AfMode"] == {"min": 0, "max": 2}
    assert devices["hardware_encoder"]["h264"] is True
    assert any(node["driver"] == "unicam" for node in devices["platform_nodes"])


async def test_client_that_disconnects_mid_request_does_not_hurt_the_agent(agent: Agent) -> None:
    # Half a request, then gone; then a request whose response is never read.
    for payload in (b"GET /api/v1/info HTTP/1.1\r\nHost: x\r\nAuthor", _full_request(agent)):
        _, writer = await asyncio.open_connection("127.0.0.1", agent.port)
        writer.write(payload)
        await writer.drain()
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
        writer.close()
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.get(base_url(agent) + "/api/v1/telemetry") as response:
            assert response.status == 200


def _full_request(agent: Agent) -> bytes:
    return (
        f"GET /api/v1/telemetry HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent.token}\r\n\r\n"
    ).encode()


# -- WebSocket ----------------------------------------------------------------------------------------------


async def test_websocket_says_hello_then_sends_state_then_pushes_telemetry(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
            hello = await asyncio.wait_for(ws.receive_json(), 5)
            assert hello == {
                "type": "hello",
                "agent_id": agent.agent_id,
                "version": hello["version"],
                "api_version": API_VERSION,
            }
            first = await asyncio.wait_for(ws.receive_json(), 5)
            assert first["type"] == "telemetry"
            pushed = await receive_until(
                ws,
                lambda m: m["type"] == "telemetry" and m["data"]["timestamp"] > first["data"]["timestamp"],
                5,
            )
            assert "cma" in pushed["data"]


async def test_under_voltage_edge_is_pushed_the_moment_it_happens(agent: Agent) -> None:
    assert agent.simulation is not None
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
            await receive_until(ws, lambda m: m["type"] == "telemetry", 5)
            agent.simulation.trigger_under_voltage(1.0)
            # Two edges arrive, in either order: the hwmon/kmsg episode start, and the throttle word's
            # under-voltage bit seen by the flag check.
            seen: dict[str, dict[str, Any]] = {}

            def first_of_each(message: dict[str, Any]) -> bool:
                if message["type"] == "event":
                    event = message["event"]
                    if event["type"] == "under_voltage" and event["data"]["active"]:
                        seen.setdefault("under_voltage", event["data"])
                    if event["type"] == "throttle_changed" and event["data"]["flags"]["under_voltage"]:
                        seen.setdefault("throttle_changed", event["data"])
                return len(seen) == 2

            await receive_until(ws, first_of_each, 5)
            assert seen["under_voltage"]["episodes"] >= 1
            assert seen["under_voltage"]["source"] in ("hwmon", "kmsg")
            assert "under_voltage" in seen["throttle_changed"]["changed"]
            assert seen["throttle_changed"]["raw"] & 0x1
            # When the episode ends, the end edge follows with its duration.
            ended = await receive_until(
                ws,
                lambda m: (
                    m["type"] == "event"
                    and m["event"]["type"] == "under_voltage"
                    and not m["event"]["data"]["active"]
                ),
                10,
            )
            assert ended["event"]["data"]["duration_s"] > 0


async def test_websocket_answers_ping_and_survives_bad_messages(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
            await ws.send_str("{not json")
            error = await receive_until(ws, lambda m: m["type"] == "error", 5)
            assert error["error"]["code"] == "invalid_json"
            await ws.send_str(json.dumps({"type": "subscribe-everything"}))
            error = await receive_until(ws, lambda m: m["type"] == "error", 5)
            assert error["error"]["code"] == "unknown_type"
            await ws.send_bytes(b"\x00\x01")
            error = await receive_until(ws, lambda m: m["type"] == "error", 5)
            assert error["error"]["code"] == "unsupported"
            await ws.send_str(json.dumps({"type": "ping", "id": 7}))
            pong = await receive_until(ws, lambda m: m["type"] == "pong", 5)
            assert pong == {"type": "pong", "id": 7}


async def test_websocket_client_vanishing_mid_stream_is_forgotten(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        ws = await session.ws_connect(base_url(agent) + "/api/v1/ws")
        await receive_until(ws, lambda m: m["type"] == "telemetry", 5)
        assert agent.hub.client_count == 1
        # Drop the TCP connection without a close frame.
        transport = ws._response.connection.transport  # type: ignore[union-attr]
        transport.abort()
        for _ in range(50):
            if agent.hub.client_count == 0:
                break
            await asyncio.sleep(0.1)
        assert agent.hub.client_count == 0
        async with session.get(base_url(agent) + "/api/v1/info") as response:
            assert response.status == 200


async def test_two_clients_both_receive_an_event(agent: Agent) -> None:
    assert agent.simulation is not None
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with (
            session.ws_connect(base_url(agent) + "/api/v1/ws") as one,
            session.ws_connect(base_url(agent) + "/api/v1/ws") as two,
        ):
            for ws in (one, two):
                await receive_until(ws, lambda m: m["type"] == "telemetry", 5)
            agent.simulation.trigger_under_voltage(1.0)
            for ws in (one, two):
                event = await receive_until(
                    ws, lambda m: m["type"] == "event" and m["event"]["type"] == "under_voltage", 5
                )
                assert event["event"]["data"]["active"] is True


async def test_a_capture_card_plugged_in_reaches_websocket_clients(tmp_path: Path) -> None:
    # The agent reads a Pi 4 fixture tree; plugging a card in is what the kernel does: /dev node + sysfs.
    from tests.agent.helpers import FixtureTree
    from tests.agent.pi_trees import PI4_CARD, add_usb_card, build_pi4_platform, remove_node

    tree = FixtureTree(tmp_path / "root")
    build_pi4_platform(tree)
    config = dataclasses.replace(agent_config(tmp_path), simulate=False, root=tree.base)
    agent = Agent(config)
    await agent.start()
    try:
        async with aiohttp.ClientSession(headers=auth(agent)) as session:
            async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
                await receive_until(ws, lambda m: m["type"] == "telemetry", 5)
                add_usb_card(tree, PI4_CARD, "video2", "video3", by_id="usb-534d_USB_Video")
                added = await receive_until(
                    ws, lambda m: m["type"] == "event" and m["event"]["type"] == "device_added", 5
                )
                assert added["event"]["data"]["device"]["path"] == "/dev/video2"
                async with session.get(base_url(agent) + "/api/v1/devices") as response:
                    listed = (await response.json())["capture_devices"]
                assert [device["path"] for device in listed] == ["/dev/video2"]
                remove_node(tree, "video2")
                remove_node(tree, "video3")
                removed = await receive_until(
                    ws, lambda m: m["type"] == "event" and m["event"]["type"] == "device_removed", 5
                )
                assert removed["event"]["data"]["device"]["id"] == added["event"]["data"]["device"]["id"]
    finally:
        await agent.stop()


async def test_simulation_route_triggers_an_under_voltage_episode(agent: Agent) -> None:
    async with aiohttp.ClientSession(headers=auth(agent)) as session:
        async with session.ws_connect(base_url(agent) + "/api/v1/ws") as ws:
            await receive_until(ws, lambda m: m["type"] == "telemetry", 5)
            url = base_url(agent) + "/api/v1/simulation/under_voltage"
            async with session.post(url, json={"duration_s": "long"}) as response:
                assert response.status == 400
            async with session.post(url, json={"duration_s": 1}) as response:
                assert response.status == 202
            event = await receive_until(
                ws, lambda m: m["type"] == "event" and m["event"]["type"] == "under_voltage", 5
            )
            assert event["event"]["data"]["active"] is True


async def test_simulation_route_does_not_exist_on_a_real_pi(tmp_path: Path) -> None:
    from tests.agent.helpers import FixtureTree

    tree = FixtureTree(tmp_path / "root")
    tree.write("proc/meminfo", "MemTotal: 1000 kB\n")
    real = Agent(dataclasses.replace(agent_config(tmp_path), simulate=False, root=tree.base))
    await real.start()
    try:
        async with aiohttp.ClientSession(headers=auth(real)) as session:
            async with session.post(base_url(real) + "/api/v1/simulation/under_voltage") as response:
                assert response.status == 404
    finally:
        await real.stop()
