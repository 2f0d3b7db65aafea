"""Motion detection for every stream: the detector of each stream with motion detection on, fed from its
publisher's motion tap, its ``motion`` events and the picture taken at each motion's start.

* :meth:`MotionService.pipeline_starting` / :meth:`~MotionService.pipeline_ended` (supervisor hooks) open a
  fresh :class:`~.motion_tap.MotionTap` for each publisher run whose pipeline has a motion output, and
  close it once the publisher has stopped. The detector (:mod:`.motion`) outlives restarts, so its
  background and noise floor carry over; a motion still going on when the publisher stops ends there.
* Each start and end is published on the event bus as ``motion`` (docs/api.md):
  ``{stream_id, state, score, started_at, ended_at, snapshot}``; the WebSocket pushes it at once.
* At each start a JPEG is taken of the first key frame captured after the motion was seen (the key-frame
  tap and snapshot service of the stream's snapshots, :mod:`.snapshot`: no second decode path), kept in
  memory for :data:`SNAPSHOT_KEEP_S` (one picture per stream, tens of kB) and served at
  ``GET /api/v1/streams/{id}/motion/snapshot``; a request that arrives while it is being taken waits for it.
* :meth:`~MotionService.configure` applies a changed sensitivity, minimum duration or region at once
  (no restart); turning motion detection off forgets the stream's detector and picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from pi_stream_agent.events import EventBus
from pi_stream_agent.streams.model import PipelineSpec, StreamConfig
from pi_stream_agent.streams.motion import (
    DEFAULT_MIN_DURATION_S,
    DEFAULT_SENSITIVITY,
    MotionChange,
    MotionDetector,
    MotionSettings,
    as_region,
)
from pi_stream_agent.streams.motion_tap import MotionTap
from pi_stream_agent.streams.snapshot import Snapshot, SnapshotError

_LOGGER = logging.getLogger(__name__)

MOTION_EVENT: Final = "motion"
# How long the picture of a motion's start is kept (in memory; one per stream).
SNAPSHOT_KEEP_S: Final = 600.0


def motion_snapshot_path(stream_id: str) -> str:
    return f"/api/v1/streams/{stream_id}/motion/snapshot"


def motion_enabled(config: StreamConfig) -> bool:
    return bool(config.settings.get("motion_detection"))


def motion_settings(config: StreamConfig) -> MotionSettings:
    """The detector's settings from the stream's ``settings:`` and ``motion_region``."""
    values = config.settings
    return MotionSettings(
        sensitivity=float(values.get("motion_sensitivity", DEFAULT_SENSITIVITY)),
        min_duration_s=float(values.get("motion_min_duration_s", DEFAULT_MIN_DURATION_S)),
        region=as_region(config.motion_region),
    )


class NoMotionSnapshotError(Exception):
    """There is no picture of a motion to serve (the message says why, plainly)."""


@dataclass(frozen=True)
class MotionSnapshot:
    jpeg: bytes
    started_at: float  # the motion's start
    taken_at: float
    width: int
    height: int


# Takes the picture for a motion that started at the given time (the manager's: key-frame tap, snapshot).
PictureTaker = Callable[[str, float], Awaitable[Snapshot]]


@dataclass
class _Monitor:
    name: str
    detector: MotionDetector | None = None
    tap: MotionTap | None = None
    picture: MotionSnapshot | None = None
    picture_task: asyncio.Task[None] | None = None
    forget_timer: asyncio.TimerHandle | None = None


class MotionService:
    def __init__(self, bus: EventBus, take_picture: PictureTaker) -> None:
        self._bus = bus
        self._take_picture = take_picture
        self._monitors: dict[str, _Monitor] = {}

    # -- configuration and publisher runs ----------------------------------------------------------------

    def configure(self, config: StreamConfig) -> None:
        """Apply a stream's motion settings now (live); motion detection off forgets the stream."""
        if not motion_enabled(config):
            self.forget(config.id)
            return
        monitor = self._monitors.setdefault(config.id, _Monitor(config.display_name))
        monitor.name = config.display_name
        if monitor.detector is not None:
            monitor.detector.configure(motion_settings(config))

    async def pipeline_starting(self, config: StreamConfig, spec: PipelineSpec) -> None:
        """Before a publisher starts: open its motion tap when its pipeline has a motion output. Raises
        OSError when the FIFO cannot be made (the start then fails: ffmpeg would write a plain file)."""
        self.configure(config)
        output = spec.motion
        if output is None:
            return
        monitor = self._monitors.setdefault(config.id, _Monitor(config.display_name))
        detector = monitor.detector
        if detector is None or (detector.width, detector.height) != (output.width, output.height):
            monitor.detector = MotionDetector(output.width, output.height, motion_settings(config))
        self._close_tap(monitor)
        stream_id = config.id
        tap = MotionTap(output.path, output.frame_bytes, lambda frame, at: self._frame(stream_id, frame, at))
        await tap.open()
        monitor.tap = tap

    def pipeline_ended(self, stream_id: str) -> None:
        """After a publisher has stopped: close its tap; a motion still going on ends now."""
        monitor = self._monitors.get(stream_id)
        if monitor is None:
            return
        self._close_tap(monitor)
        self._end_now(stream_id, monitor)

    def forget(self, stream_id: str) -> None:
        """The stream is gone or its motion detection is off: tap, detector and picture go."""
        monitor = self._monitors.pop(stream_id, None)
        if monitor is None:
            return
        self._close_tap(monitor)
        self._end_now(stream_id, monitor)
        if monitor.picture_task is not None:
            monitor.picture_task.cancel()
        if monitor.forget_timer is not None:
            monitor.forget_timer.cancel()

    async def close(self) -> None:
        tasks = [m.picture_task for m in self._monitors.values() if m.picture_task is not None]
        for stream_id in list(self._monitors):
            self.forget(stream_id)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- reading -----------------------------------------------------------------------------------------

    def status(self, stream_id: str) -> dict[str, Any] | None:
        """The stream status's ``motion``: null when motion detection is off."""
        monitor = self._monitors.get(stream_id)
        if monitor is None:
            return None
        if monitor.detector is None:  # on, but no frame analysed yet (the publisher has not run)
            return {"active": False, "score": 0.0, "started_at": None, "ended_at": None}
        return monitor.detector.status()

    async def snapshot(self, stream_id: str, name: str) -> MotionSnapshot:
        """The picture of the latest motion's start (waits for one being taken). Raises
        NoMotionSnapshotError with a plain reason."""
        monitor = self._monitors.get(stream_id)
        if monitor is None:
            raise NoMotionSnapshotError(
                f"Motion detection is off for {name}, so there is no motion picture; turn it on to get a "
                "picture of the next motion."
            )
        task = monitor.picture_task
        if task is not None and not task.done():
            await asyncio.wait((task,))
        picture = monitor.picture
        if picture is None or time.time() - picture.started_at > SNAPSHOT_KEEP_S:
            minutes = round(SNAPSHOT_KEEP_S / 60)
            raise NoMotionSnapshotError(
                f"No motion was seen on {name} in the last {minutes} minutes, so there is no motion "
                "picture; one is taken when the next motion starts."
            )
        return picture

    # -- frames and events -------------------------------------------------------------------------------

    def _frame(self, stream_id: str, frame: bytes, at: float) -> None:
        monitor = self._monitors.get(stream_id)
        if monitor is None or monitor.detector is None:
            return
        change = monitor.detector.feed(frame, at)
        if change is None:
            return
        self._publish(stream_id, change)
        if change.state == "start":
            self._start_picture(stream_id, monitor, change.started_at)

    def _end_now(self, stream_id: str, monitor: _Monitor) -> None:
        detector = monitor.detector
        if detector is None or not detector.active:
            return
        now = time.time()
        detector.active = False
        detector.ended_at = now
        assert detector.started_at is not None
        self._publish(stream_id, MotionChange("end", round(detector.peak_score, 2), detector.started_at, now))

    def _publish(self, stream_id: str, change: MotionChange) -> None:
        self._bus.publish(
            MOTION_EVENT,
            {
                "stream_id": stream_id,
                "state": change.state,
                "score": change.score,
                "started_at": round(change.started_at, 3),
                "ended_at": round(change.ended_at, 3) if change.ended_at is not None else None,
                "snapshot": motion_snapshot_path(stream_id),
            },
        )

    def _start_picture(self, stream_id: str, monitor: _Monitor, started_at: float) -> None:
        if monitor.picture_task is not None and not monitor.picture_task.done():
            return  # the previous motion's picture is still being taken: a new one follows at once anyway
        monitor.picture_task = asyncio.get_running_loop().create_task(
            self._take(stream_id, monitor, started_at), name=f"motion picture {stream_id}"
        )

    async def _take(self, stream_id: str, monitor: _Monitor, started_at: float) -> None:
        try:
            shot = await self._take_picture(stream_id, started_at)
        except SnapshotError as err:
            _LOGGER.info(
                "Stream %s: no picture of the motion at %.3f: %s", stream_id, started_at, err.message
            )
            return
        monitor.picture = MotionSnapshot(shot.jpeg, started_at, shot.taken_at, shot.width, shot.height)
        if monitor.forget_timer is not None:
            monitor.forget_timer.cancel()
        monitor.forget_timer = asyncio.get_running_loop().call_later(
            SNAPSHOT_KEEP_S, self._drop_picture, monitor, monitor.picture
        )

    @staticmethod
    def _drop_picture(monitor: _Monitor, picture: MotionSnapshot) -> None:
        if monitor.picture is picture:
            monitor.picture = None

    @staticmethod
    def _close_tap(monitor: _Monitor) -> None:
        tap, monitor.tap = monitor.tap, None
        if tap is not None:
            with contextlib.suppress(OSError):
                tap.close()
