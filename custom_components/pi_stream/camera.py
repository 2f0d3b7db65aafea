"""A camera per stream: RTSP for live view (HA's go2rtc makes WebRTC of it), stills from the agent.

When a stream runs again after a restart or a failure, the camera tells Home Assistant's own HLS worker
(``self.stream``, if someone watches) that its source is new, so it reopens it the moment its read of the
old publisher ends, in the same HLS session. Left alone, that read fails (or times out, 5 s over UDP) and
the worker then waits 10 s (20 s, 30 s … on each further failure) before it looks again: the live view
froze for 10-30 s after a 1 s restart. docs/benchmarks.md ("Restart → picture in Home Assistant").

Where the stream carries sound, the camera says so in its ``audio`` and ``audio_codec`` attributes (Home
Assistant's cameras have no audio feature to declare): the sound travels in the same RTSP stream, which
HA's HLS (AAC) and go2rtc's WebRTC (which turns AAC into Opus itself) both play. Where its sound is asked
for but missing (the sound card unplugged or busy), ``audio_problem`` carries the agent's reason.
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

from . import detection
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
        if not stream.outputs() or not stream.available:
            # Nobody watches (the next viewer starts a fresh worker), or the worker already lost the old
            # publisher and sleeps before its next try: waking it would end it and its viewers' HLS
            # sessions (HA's worker loop), and a new session takes longer to show a picture than the wait.
            return
        # The worker is inside a read of the old publisher's session (over UDP it notices the publisher has
        # gone only when that read times out). Told the source is new, it opens it again the moment the
        # read ends, in the same HLS session, instead of failing and waiting 10 s before its next try.
        stream.update_source(stream.source)

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

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Whether this camera's stream carries sound now, and in which codec (None without sound); why
        not, in the agent's words, while its sound is asked for but missing."""
        state = self.coordinator.data
        if not detection.has_audio(state, self.stream_id):
            return {}
        audio = detection.audio(state, self.stream_id) or {}
        carries = detection.audio_on(state, self.stream_id) and self._carries_audio
        problem = audio.get("reason") if self._carries_audio and not carries else None
        return {
            "audio": carries,
            "audio_codec": audio.get("codec") if carries else None,
            "audio_problem": problem,
        }

    @property
    def _carries_audio(self) -> bool:
        """The main stream carries the sound; a substream only where it is configured to
        (``substream.audio``)."""
        if self.entity_description.url_key == MAIN_CAMERA.url_key:
            return True
        substream = (self._status.get("config") or {}).get("substream") or {}
        return bool(substream.get("audio", False))

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
