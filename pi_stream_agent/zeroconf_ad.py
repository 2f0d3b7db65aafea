"""Zeroconf announcement ``_pi-stream._tcp.local.``, so Home Assistant discovers the agent."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

from pi_stream_agent import API_VERSION, __version__

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_pi-stream._tcp.local."
# DNS-SD instance names are one DNS label: at most 63 bytes.
_MAX_INSTANCE_BYTES = 63


@dataclass(frozen=True)
class Advert:
    instance: str
    agent_id: str
    port: int
    addresses: tuple[str, ...]
    hostname: str


def _instance_name(name: str) -> str:
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch != ".").strip() or "pi_stream"
    encoded = cleaned.encode("utf-8")[:_MAX_INSTANCE_BYTES]
    return encoded.decode("utf-8", errors="ignore")


def build_service_info(advert: Advert) -> ServiceInfo:
    """The ServiceInfo the agent registers: id, version and API version in TXT."""
    instance = _instance_name(advert.instance)
    server = advert.hostname.rstrip(".").split(".")[0] + ".local."
    return ServiceInfo(
        SERVICE_TYPE,
        f"{instance}.{SERVICE_TYPE}",
        port=advert.port,
        properties={"id": advert.agent_id, "version": __version__, "api": str(API_VERSION), "path": "/api/v1"},
        server=server,
        parsed_addresses=list(advert.addresses) or None,
    )


def local_addresses() -> tuple[str, ...]:
    """This host's non-loopback IPv4 addresses (the one a default route would use first)."""
    found: list[str] = []
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # connect() on UDP sends nothing; it only picks the outgoing interface.
        probe.connect(("192.0.2.1", 9))
        found.append(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    return tuple(address for address in found if not address.startswith("127."))


class ZeroconfAnnouncer:
    def __init__(self, advert: Advert) -> None:
        self._advert = advert
        self._zeroconf: AsyncZeroconf | None = None
        self._info: ServiceInfo | None = None

    async def start(self) -> None:
        try:
            self._zeroconf = AsyncZeroconf(ip_version=IPVersion.V4Only)
            self._info = build_service_info(self._advert)
            await self._zeroconf.async_register_service(self._info, allow_name_change=True)
            _LOGGER.info("Announcing %s on port %d", self._info.name, self._advert.port)
        except Exception as exc:  # noqa: BLE001 - discovery is a convenience; the API works without it
            _LOGGER.warning("Zeroconf announcement failed (%s); add the agent in Home Assistant by address", exc)
            await self.stop()

    async def stop(self) -> None:
        if self._zeroconf is None:
            return
        try:
            if self._info is not None:
                await self._zeroconf.async_unregister_service(self._info)
        except Exception:  # noqa: BLE001
            _LOGGER.debug("Zeroconf unregister failed", exc_info=True)
        finally:
            await self._zeroconf.async_close()
            self._zeroconf = None
            self._info = None
