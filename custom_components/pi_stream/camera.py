"""A camera per stream: RTSP for live view (HA's go2rtc makes WebRTC of it), stills from the agent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from homeassistant.components.camera import Camera, CameraEntityDescription, CameraEntityFeature
from homeassistant.components.stream import CONF_RTSP_TRANSPORT
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamStreamEntity, async_add_stream_entities
from .services import agent_errors

if TYPE_CHECKING:
    from homeassistant.components.stream import Stream

# Coordinator-driven; stills are fetched on demand and the agent shares concurrent snapshot requests.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PiStreamCameraEntityDescription(CameraEntityDescription):
    url_key: str  # which of the stream's ``urls`` this camera plays: "main" or "sub"


MAIN_CAMERA = PiStreamCameraEntityDescription(key="camera", name=None, url_key="main")
SUB_CAMERA = PiStreamCameraEntityDescription(
    key="substream",
    translation_key="substream",
    url_key="sub",
    entity_registry_enabled_default=False,
)


def with_read_credentials(url: str, credentials: Mapping[str, str] | None) -> str:
    """``url`` with the RTSP read credentials as its (percent-encoded) userinfo; unchanged without them."""
    if not credentials or not credentials.get("username"):
        return url
    parts = urlsplit(url)
    hostport = parts.netloc.rpartition("@")[2]
    userinfo = quote(credentials["username"], safe="")
    if (password := credentials.get("password")) is not None:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{hostport}"))


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A camera for every stream, and a disabled-by-default one for each substream."""

    def cameras(coordinator: PiStreamCoordinator, stream_id: str) -> Iterable[Entity]:
        yield PiStreamCamera(coordinator, stream_id, MAIN_CAMERA)
        if "sub" in (coordinator.data.streams[stream_id].get("urls") or {}):
            yield PiStreamCamera(coordinator, stream_id, SUB_CAMERA)

    async_add_stream_entities(entry, async_add_entities, cameras)


class PiStreamCamera(PiStreamStreamEntity, Camera):
    """One stream of a Pi, as published to its RTSP server."""

    entity_description: PiStreamCameraEntityDescription
    _attr_supported_features = CameraEntityFeature.STREAM
    # Camera keeps its HLS worker in ``self.stream``; this plain class attribute shadows the base entity's
    # ``stream`` property (the stream's status) so Camera can assign it. The status is ``_status`` here.
    stream: Stream | None = None  # type: ignore[assignment]

    def __init__(
        self,
        coordinator: PiStreamCoordinator,
        stream_id: str,
        description: PiStreamCameraEntityDescription,
    ) -> None:
        super().__init__(coordinator, stream_id, description.key)
        Camera.__init__(self)
        self.entity_description = description

    @property
    def _status(self) -> dict[str, Any]:
        return self.coordinator.data.streams.get(self.stream_id, {})

    @property
    def _running(self) -> bool:
        return self._status.get("state") == "running"

    @property
    def available(self) -> bool:
        """Only while frames are flowing (not while the stream is starting, backing off or stopped)."""
        return super().available and self._running

    @property
    def is_streaming(self) -> bool:
        return self._running

    async def stream_source(self) -> str | None:
        """The RTSP URL, read credentials included: no I/O (go2rtc and HA's stream read it)."""
        url = (self._status.get("urls") or {}).get(self.entity_description.url_key)
        if not url:
            return None
        # HA's stream (HLS) tries TCP first and does not fall back on every server's refusal: read the way the
        # agent's RTSP server serves (``rtsp.read_transport`` on the agent; UDP-only servers exist).
        if (transport := self._status.get("read_transport")) in ("tcp", "udp"):
            self.stream_options[CONF_RTSP_TRANSPORT] = transport
        return with_read_credentials(str(url), self.coordinator.data.read_credentials)

    async def async_camera_image(self, width: int | None = None, height: int | None = None) -> bytes | None:
        """A JPEG the agent decodes from the published stream (HA scales it when asked to)."""
        name = str(self._status.get("name") or self.stream_id)
        with agent_errors("snapshot_failed", {"stream": name}):
            return await self.coordinator.client.snapshot(self.stream_id)
