"""Zeroconf announcement ``_pi-stream._tcp.local.``, so Home Assistant discovers the agent."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
from dataclasses import dataclass

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from pi_stream_agent import API_VERSION, __version__

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_pi-stream._tcp.local."
# DNS-SD instance names are one DNS label: at most 63 bytes.
_MAX_INSTANCE_BYTES = 63
_FALLBACK_INSTANCE = "pi_stream"
_FALLBACK_HOST = "pi-stream"
# Goodbye packets go out over ~250 ms; do not let a stuck network stack hold up shutdown longer than this.
_GOODBYE_TIMEOUT_S = 1.0
_SIOCGIFADDR = 0x8915  # linux/sockios.h


@dataclass(frozen=True)
class Advert:
    instance: str
    agent_id: str
    port: int
    addresses: tuple[str, ...]
    hostname: str


def _instance_name(name: str) -> str:
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch != ".").strip()
    # Cut at 63 bytes without splitting a UTF-8 sequence; the cut may leave a trailing space.
    encoded = cleaned.encode("utf-8")[:_MAX_INSTANCE_BYTES]
    return encoded.decode("utf-8", errors="ignore").strip() or _FALLBACK_INSTANCE


def build_service_info(advert: Advert) -> ServiceInfo:
    """The ServiceInfo the agent registers: id, version and API version in TXT."""
    instance = _instance_name(advert.instance)
    server = (advert.hostname.rstrip(".").split(".")[0] or _FALLBACK_HOST) + ".local."
    return ServiceInfo(
        SERVICE_TYPE,
        f"{instance}.{SERVICE_TYPE}",
        port=advert.port,
        properties={
            "id": advert.agent_id,
            "version": __version__,
            "api": str(API_VERSION),
            "path": "/api/v1",
        },
        server=server,
        parsed_addresses=list(advert.addresses) or None,
    )


def local_addresses() -> tuple[str, ...]:
    """This host's non-loopback IPv4 address a default route would use; without a default route (a
    LAN with no gateway) every interface's. An advert without addresses is useless: Home Assistant
    ignores discoveries it cannot connect to."""
    routed = _routed_address()
    if routed is not None and not routed.startswith("127."):
        return (routed,)
    return _interface_addresses()


def _routed_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # connect() on UDP sends nothing; it only picks the outgoing interface.
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()


def _interface_addresses() -> tuple[str, ...]:
    """The primary IPv4 address of every interface that has one (SIOCGIFADDR, netdevice(7))."""
    found: list[str] = []
    try:
        interfaces = socket.if_nameindex()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return ()  # called while the agent starts: no address is a warning (see start()), not a crash
    with sock:
        for _, name in interfaces:
            # struct ifreq: the name in 16 bytes, then a sockaddr_in whose address is at byte 20.
            request = struct.pack("40s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # EADDRNOTAVAIL: no IPv4 address on this interface
            address = socket.inet_ntoa(reply[20:24])
            if not address.startswith("127."):
                found.append(address)
    return tuple(found)


class ZeroconfAnnouncer:
    """Registers the advert on start and withdraws it on stop. Neither ever raises: discovery is a
    convenience, and the API must keep serving when multicast does not work."""

    def __init__(self, advert: Advert) -> None:
        self._advert = advert
        self._zeroconf: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None

    @property
    def registered(self) -> bool:
        return self._info is not None

    async def start(self) -> None:
        if not self._advert.addresses:
            _LOGGER.warning(
                "No IPv4 address to announce; Home Assistant will not discover the agent: add it by address"
            )
        try:
            self._zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
            info = build_service_info(self._advert)
            await self._zeroconf.async_register_service(info, allow_name_change=True)
            # Only a registered service is unregistered on stop.
            self._info = info
            _LOGGER.info("Announcing %s on port %d", info.name, self._advert.port)
        except Exception as exc:  # noqa: BLE001 - discovery is a convenience; the API works without it
            _LOGGER.warning(
                "Zeroconf announcement failed (%s); add the agent in Home Assistant by address",
                str(exc) or type(exc).__name__,  # zeroconf's own exceptions often carry no message
            )
            await self.stop()

    async def stop(self) -> None:
        zeroconf, info = self._zeroconf, self._info
        self._zeroconf = self._info = None
        if zeroconf is None:
            return
        try:
            if info is not None:
                goodbye = await zeroconf.async_unregister_service(info)
                # The goodbye packets tell Home Assistant at once that the agent left; send them before
                # the sockets close.
                await asyncio.wait_for(goodbye, _GOODBYE_TIMEOUT_S)
        except Exception:
            _LOGGER.debug("Zeroconf unregister failed", exc_info=True)
        try:
            await zeroconf.async_close()
        except Exception:
            _LOGGER.debug("Zeroconf close failed", exc_info=True)
