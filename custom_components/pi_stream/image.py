"""An image per stream that can detect motion: the picture the agent took when the latest motion started
(``GET /api/v1/streams/{id}/motion/snapshot``).

Its state, ``image_last_updated``, is that motion's start (the stream's ``motion.started_at``, pushed with
the ``motion`` event), so it changes at each motion start and an automation or a card follows it. The
picture is fetched when someone asks for it, and then kept in memory until the next motion: the agent keeps
its own copy only for a short while (about 10 minutes).
"""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.components.image import Image, ImageEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from . import detection
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamStreamEntity, async_add_stream_entities
from .services import agent_errors

# Pushed by the coordinator; pictures are fetched on demand.
PARALLEL_UPDATES = 0

JPEG = "image/jpeg"


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A motion snapshot for every stream whose camera can detect motion (now, or once it can)."""

    def images(coordinator: PiStreamCoordinator, stream_id: str) -> Iterable[Entity]:
        yield PiStreamMotionSnapshot(hass, coordinator, stream_id)

    async_add_stream_entities(entry, async_add_entities, images, when=detection.can_detect_motion)


class PiStreamMotionSnapshot(PiStreamStreamEntity, ImageEntity):
    """The picture of the stream's latest motion start."""

    _attr_translation_key = "motion_snapshot"
    _attr_content_type = JPEG

    def __init__(self, hass: HomeAssistant, coordinator: PiStreamCoordinator, stream_id: str) -> None:
        super().__init__(coordinator, stream_id, "motion_snapshot")
        ImageEntity.__init__(self, hass)
        self._started_at: float | None = None
        self._shown: tuple[bool, float | None] | None = None
        self._follow_motion()

    def _follow_motion(self) -> bool:
        """Take the latest motion start; True when it is another one (a new picture)."""
        started_at = detection.motion_started_at(self.coordinator.data, self.stream_id)
        if started_at is None or started_at == self._started_at:
            return False
        self._started_at = started_at
        self._attr_image_last_updated = dt_util.utc_from_timestamp(started_at)
        self._cached_image = None  # the picture of the motion before
        return True

    @callback
    def _handle_coordinator_update(self) -> None:
        """Written when a motion starts or the availability changes, not at every pushed sample."""
        self._follow_motion()
        shown = (self.available, self._started_at)
        if shown != self._shown:
            self._shown = shown
            self.async_write_ha_state()

    async def async_image(self) -> bytes | None:
        """The snapshot of the latest motion; None when the agent has none (no motion yet, or too old)."""
        if self._cached_image is not None:
            return self._cached_image.content
        started_at = self._started_at
        name = str(self.stream.get("name") or self.stream_id)
        with agent_errors("motion_snapshot_failed", {"stream": name}):
            picture = await self.coordinator.client.motion_snapshot(self.stream_id)
        if picture is not None and started_at == self._started_at:
            # Kept only for the motion it was asked for: one that started meanwhile has its own picture.
            self._cached_image = Image(content_type=JPEG, content=picture)
        return picture
