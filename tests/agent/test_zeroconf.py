"""The zeroconf advert: the ServiceInfo payload, and the announcer's life cycle against a fake AsyncZeroconf.

Nothing here sends multicast: the network part (zeroconf's AsyncZeroconf) is replaced by a fake that
records what the agent asked of it. That the integration's manifest lists SERVICE_TYPE is checked in
tests/integration/test_manifest.py.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from zeroconf import IPVersion, ServiceInfo

from pi_stream_agent import API_VERSION, __version__, zeroconf_ad
from pi_stream_agent.agent import Agent
from pi_stream_agent.config import AgentConfig, TelemetrySettings
from pi_stream_agent.zeroconf_ad import (
    SERVICE_TYPE,
    Advert,
    ZeroconfAnnouncer,
    build_service_info,
    local_addresses,
)
from tests.agent.test_cli import EXIT_OK, http_status, start_agent, stop_agent

AGENT_ID = "3f1e0c2b9a8d7e6f"


def advert(instance: str = "kitchen-pi", hostname: str = "kitchen-pi", **changes: Any) -> Advert:
    values: dict[str, Any] = {
        "instance": instance,
        "agent_id": AGENT_ID,
        "port": 8190,
        "addresses": ("192.168.1.23",),
        "hostname": hostname,
    }
    values.update(changes)
    return Advert(**values)


def txt_record(info: ServiceInfo) -> dict[str, str]:
    """The TXT record as it goes on the wire (``info.text``: length-prefixed ``key=value`` strings), the
    same in every zeroconf version (``info.properties`` is not: str keys in 0.47, bytes in newer ones)."""
    entries: dict[str, str] = {}
    data, offset = info.text, 0
    while offset < len(data):
        length = data[offset]
        key, _, value = data[offset + 1 : offset + 1 + length].decode("utf-8").partition("=")
        entries[key] = value
        offset += 1 + length
    return entries


def instance_of(info: ServiceInfo) -> str:
    assert info.name.endswith("." + SERVICE_TYPE)
    return info.name.removesuffix("." + SERVICE_TYPE)


# --- the payload --------------------------------------------------------------------------------------------


def test_service_info_payload() -> None:
    info = build_service_info(advert())
    assert SERVICE_TYPE == "_pi-stream._tcp.local."
    assert info.type == SERVICE_TYPE
    assert info.name == "kitchen-pi._pi-stream._tcp.local."
    assert info.port == 8190
    assert info.server == "kitchen-pi.local."
    assert info.parsed_addresses() == ["192.168.1.23"]
    assert txt_record(info) == {
        "id": AGENT_ID,
        "version": __version__,
        "api": str(API_VERSION),
        "path": "/api/v1",
    }


@pytest.mark.parametrize(
    ("name", "instance"),
    [
        ("Kitchen Pi", "Kitchen Pi"),
        ("Küche 🎥", "Küche 🎥"),  # DNS-SD instance names are UTF-8: kept
        ("garage.pi", "garagepi"),  # a dot would split the DNS label
        ("tab\there\nnewline\x00nul", "tabherenewlinenul"),  # control characters go
        ("  padded  ", "padded"),
        ("", "pi_stream"),
        (" . \t", "pi_stream"),  # nothing left: a fixed name rather than an empty label
    ],
)
def test_instance_name_is_sanitised(name: str, instance: str) -> None:
    assert instance_of(build_service_info(advert(instance=name))) == instance


@pytest.mark.parametrize(
    ("name", "expected_bytes"),
    [
        ("a" * 100, 63),
        ("é" * 40, 62),  # 2-byte characters: 31 fit, the 32nd would be split, so it goes
        ("Küche Pi 🎥" * 5, 62),  # 14 bytes each: 4 fit, then "Küche " (63); the trailing space goes
    ],
)
def test_instance_name_is_at_most_63_bytes_and_never_splits_a_character(
    name: str, expected_bytes: int
) -> None:
    instance = instance_of(build_service_info(advert(instance=name)))
    encoded = instance.encode("utf-8")
    assert len(encoded) == expected_bytes <= 63
    assert name.startswith(instance)
    assert instance == instance.strip()


@pytest.mark.parametrize(
    ("hostname", "server"),
    [
        ("raspberrypi", "raspberrypi.local."),
        ("pi.example.com.", "pi.local."),
        ("PI4", "PI4.local."),
        ("", "pi-stream.local."),
    ],
)
def test_server_is_the_hosts_first_label_in_local(hostname: str, server: str) -> None:
    assert build_service_info(advert(hostname=hostname)).server == server


def test_advert_without_addresses_has_none() -> None:
    assert build_service_info(advert(addresses=())).parsed_addresses() == []


def test_local_addresses_prefers_the_routed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zeroconf_ad, "_routed_address", lambda: "192.168.1.23")
    monkeypatch.setattr(zeroconf_ad, "_interface_addresses", lambda: ("10.0.0.5", "192.168.1.23"))
    assert local_addresses() == ("192.168.1.23",)


@pytest.mark.parametrize("routed", [None, "127.0.1.1"])
def test_without_a_default_route_every_interface_address_is_announced(
    routed: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A camera LAN without a gateway has no default route: the advert must still carry an address.
    monkeypatch.setattr(zeroconf_ad, "_routed_address", lambda: routed)
    monkeypatch.setattr(zeroconf_ad, "_interface_addresses", lambda: ("10.0.0.5", "169.254.7.9"))
    assert local_addresses() == ("10.0.0.5", "169.254.7.9")


def test_interface_listing_failure_means_no_addresses_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> list[tuple[int, str]]:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(zeroconf_ad, "_routed_address", lambda: None)
    monkeypatch.setattr("pi_stream_agent.zeroconf_ad.socket.if_nameindex", refuse)
    assert local_addresses() == ()


def test_interface_addresses_match_the_kernels_list() -> None:
    psutil = pytest.importorskip("psutil")
    import socket

    expected = {
        entry.address
        for entries in psutil.net_if_addrs().values()
        for entry in entries
        if entry.family == socket.AF_INET and not entry.address.startswith("127.")
    }
    found = zeroconf_ad._interface_addresses()
    assert set(found) <= expected  # the primary address of each interface (psutil also lists secondaries)
    assert bool(found) == bool(expected)
    for address in found:
        assert ipaddress.IPv4Address(address).version == 4


# --- the announcer, with the network part faked ----------------------------------------------------------


class FakeAsyncZeroconf:
    """Stands in for ``zeroconf.asyncio.AsyncZeroconf``; records each call. ``fail`` names the call that
    raises (``init``, ``register``, ``unregister``, ``close``); ``goodbye_s`` how long the goodbye task
    returned by unregister takes (None: never finishes)."""

    fail: str | None = None
    goodbye_s: float | None = 0.0
    created: list[FakeAsyncZeroconf] = []  # noqa: RUF012 - reset by the fixture

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.calls: list[tuple[str, Any]] = []
        self.goodbye_done = False
        type(self).created.append(self)
        if self.fail == "init":
            raise OSError(errno.ENODEV, "No such device")

    async def async_register_service(self, info: ServiceInfo, **kwargs: Any) -> Awaitable[None]:
        self.calls.append(("register", (info, kwargs)))
        if self.fail == "register":
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def async_unregister_service(self, info: ServiceInfo) -> Awaitable[None]:
        self.calls.append(("unregister", info))
        if self.fail == "unregister":
            raise RuntimeError("unregister failed")
        return asyncio.ensure_future(self._goodbye())

    async def _goodbye(self) -> None:
        if self.goodbye_s is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.goodbye_s or 0)
        self.goodbye_done = True

    async def async_close(self) -> None:
        self.calls.append(("close", None))
        if self.fail == "close":
            raise RuntimeError("close failed")

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeAsyncZeroconf]:
    class Fake(FakeAsyncZeroconf):
        created: list[FakeAsyncZeroconf] = []  # noqa: RUF012

    monkeypatch.setattr(zeroconf_ad, "AsyncZeroconf", Fake)
    return Fake


async def test_announcer_registers_then_says_goodbye(fake: type[FakeAsyncZeroconf]) -> None:
    announcer = ZeroconfAnnouncer(advert())
    await announcer.start()
    (zc,) = fake.created
    assert zc.kwargs == {"ip_version": IPVersion.V4Only}
    registered_while_running = announcer.registered
    assert registered_while_running
    assert zc.names() == ["register"]
    info, options = zc.calls[0][1]
    assert options == {"allow_name_change": True}  # a second Pi with the same hostname gets "name (2)"
    assert info.name == "kitchen-pi._pi-stream._tcp.local." and txt_record(info)["id"] == AGENT_ID
    await announcer.stop()
    assert zc.names() == ["register", "unregister", "close"]
    assert zc.calls[1][1] is info
    assert zc.goodbye_done  # the goodbye packets went out before the sockets closed
    assert not announcer.registered
    await announcer.stop()  # a second stop does nothing
    assert zc.names() == ["register", "unregister", "close"]


async def test_register_failure_is_a_warning_not_an_exception(
    fake: type[FakeAsyncZeroconf], caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail = "register"
    announcer = ZeroconfAnnouncer(advert())
    with caplog.at_level(logging.WARNING, logger="pi_stream_agent.zeroconf_ad"):
        await announcer.start()
    (zc,) = fake.created
    assert zc.names() == ["register", "close"]  # nothing to unregister; the sockets are closed
    assert not announcer.registered
    (record,) = [r for r in caplog.records if r.name == "pi_stream_agent.zeroconf_ad"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "Zeroconf announcement failed ([Errno 101] Network is unreachable); "
        "add the agent in Home Assistant by address"
    )
    await announcer.stop()
    assert zc.names() == ["register", "close"]


async def test_no_multicast_interface_is_a_warning_not_an_exception(
    fake: type[FakeAsyncZeroconf], caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail = "init"
    announcer = ZeroconfAnnouncer(advert())
    await announcer.start()
    await announcer.stop()
    assert "Zeroconf announcement failed ([Errno 19] No such device)" in caplog.text
    assert fake.created[0].names() == []


async def test_an_advert_without_addresses_is_registered_with_a_warning(
    fake: type[FakeAsyncZeroconf], caplog: pytest.LogCaptureFixture
) -> None:
    announcer = ZeroconfAnnouncer(advert(addresses=()))
    await announcer.start()
    await announcer.stop()
    assert "No IPv4 address to announce" in caplog.text
    assert fake.created[0].names() == ["register", "unregister", "close"]


@pytest.mark.parametrize("failing", ["unregister", "close"])
async def test_stop_never_raises(failing: str, fake: type[FakeAsyncZeroconf]) -> None:
    announcer = ZeroconfAnnouncer(advert())
    await announcer.start()
    fake.fail = failing
    await announcer.stop()
    assert fake.created[0].names()[-1] == "close"  # closed even when unregistering failed


async def test_a_goodbye_that_never_finishes_does_not_hold_up_shutdown(fake: type[FakeAsyncZeroconf]) -> None:
    fake.goodbye_s = None
    announcer = ZeroconfAnnouncer(advert())
    await announcer.start()
    started = time.monotonic()
    await announcer.stop()
    assert time.monotonic() - started < 3.0
    assert fake.created[0].names() == ["register", "unregister", "close"]


# --- the agent's advert -------------------------------------------------------------------------------------


def simulated_config(tmp_path: Path, name: str | None = None) -> AgentConfig:
    return AgentConfig(
        host="127.0.0.1",
        port=0,
        state_dir=tmp_path / "state",
        telemetry=TelemetrySettings(interval_s=1.0),
        zeroconf_enabled=True,
        zeroconf_name=name,
        simulate=True,
    )


async def test_agent_announces_its_port_and_id(tmp_path: Path, fake: type[FakeAsyncZeroconf]) -> None:
    agent = Agent(simulated_config(tmp_path, name="Garage Pi"))
    await agent.start()
    try:
        (zc,) = fake.created
        info, _ = zc.calls[0][1]
        assert info.name == "Garage Pi._pi-stream._tcp.local."
        assert info.port == agent.port and agent.port != 0
        assert txt_record(info)["id"] == agent.agent_id
    finally:
        await agent.stop()
    assert zc.names() == ["register", "unregister", "close"]


async def test_agent_serves_the_api_when_the_announcement_fails(
    tmp_path: Path, fake: type[FakeAsyncZeroconf], caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail = "register"
    agent = Agent(simulated_config(tmp_path))
    await agent.start()
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {agent.token}"}
            async with session.get(f"http://127.0.0.1:{agent.port}/api/v1/info", headers=headers) as response:
                assert response.status == 200
                assert (await response.json())["agent_id"] == agent.agent_id
    finally:
        await agent.stop()
    assert "Zeroconf announcement failed" in caplog.text


# The child process of the next test replaces AsyncZeroconf before the CLI starts: the rest is real.
FAILING_ZEROCONF_PRELUDE = """
import errno
import pi_stream_agent.zeroconf_ad as zeroconf_ad

class UnreachableZeroconf:
    def __init__(self, **kwargs):
        pass
    async def async_register_service(self, info, **kwargs):
        raise OSError(errno.ENETUNREACH, "Network is unreachable")
    async def async_close(self):
        print("fake zeroconf closed", flush=True)

zeroconf_ad.AsyncZeroconf = UnreachableZeroconf
"""


def test_run_with_zeroconf_enabled_but_failing_still_serves(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("zeroconf:\n  enabled: true\n  name: Garage Pi\n")
    state = tmp_path / "state"
    agent = start_agent(
        "--config",
        config,
        "--simulate",
        "--listen",
        "127.0.0.1",
        "--port",
        "0",
        "--state-dir",
        state,
        log=tmp_path / "agent.log",
        state_dir=state,
        prelude=FAILING_ZEROCONF_PRELUDE,
    )
    try:
        token = (state / "token").read_text().strip()
        assert http_status(agent.url("/api/v1/info"), token) == 200
        deadline = time.monotonic() + 10
        while "Zeroconf announcement failed" not in agent.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        log = agent.log_text()
        warning = "WARNING pi_stream_agent.zeroconf_ad: Zeroconf announcement failed ([Errno 101] "
        assert warning + "Network is unreachable)" in log
        assert "fake zeroconf closed" in log
        assert http_status(agent.url("/api/v1/info"), token) == 200  # still serving after the failure
    finally:
        status = stop_agent(agent.process)
    assert status == EXIT_OK
    assert "Traceback" not in agent.log_text()
