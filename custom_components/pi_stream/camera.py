"""A camera per stream: RTSP for live view (HA's go2rtc makes WebRTC of it), stills from the agent.

When a stream runs again after a restart or a failure, the camera tells Home Assistant's own HLS worker
(``self.stream``, if someone watches) to reconnect at once. Left alone, that worker notices the old
publisher is gone only when its read fails or times out, and then waits 10 s (20 s, 30 s … on each
further failure) before it looks again, so the live view froze for 10-30 s after a 1 s restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.components.camera import Camera, CameraEntityDescription, CameraEntityFeature
from homeassistant.components.stream import CONF_RTSP_TRANSPORT
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamStreamEntity, async_add_stream_entities
from .services import agent_errors
from .urls import with_read_credentials

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

    _was_running = False
    _resetting_stream = False  # HA's worker is being replaced: stay unavailable until a viewer can ask again

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        self._was_running = self._running

    @callback
    def _handle_coordinator_update(self) -> None:
        running = self._running
        if running and not self._was_running and self.stream is not None:
            self._reconnect_stream(self.stream)
        self._was_running = running
        super()._handle_coordinator_update()

    @callback
    def _reconnect_stream(self, stream: Stream) -> None:
        """The publisher is back: make HA's HLS worker read the new one now, not after its retry wait."""
        if not stream.outputs():
            return  # nobody is watching: the next viewer starts a fresh worker anyway
        if stream.available:
            # The worker is inside a read of the old publisher's session. Told the source is new, it opens
            # it again the moment that read ends, without a retry wait.
            stream.update_source(stream.source)
            return
        # The worker lost the old publisher and sleeps before its next try; waking it ends it (HA's worker
        # loop) together with the viewers' HLS sessions. So end it ourselves, and stay unavailable until it
        # is gone: the viewer that asks again when the camera comes back gets a fresh worker at once.
        self._resetting_stream = True
        self.hass.async_create_task(self._async_reset_stream(stream), eager_start=True)

    async def _async_reset_stream(self, stream: Stream) -> None:
        try:
            if stream.dynamic_stream_settings.preload_stream:
                stream.update_source(stream.source)  # a kept-alive worker is not ended by stop()
            await stream.stop()
        finally:
            self._resetting_stream = False
            self.async_write_ha_state()

    @property
    def _status(self) -> dict[str, Any]:
        return self.coordinator.data.streams.get(self.stream_id, {})

    @property
    def _running(self) -> bool:
        return self._status.get("state") == "running"

    @property
    def available(self) -> bool:
        """Only while frames are flowing (not while the stream is starting, backing off or stopped)."""
        return super().available and self._running and not self._resetting_stream

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
