"""The devices this Pi can stream from, kept current, and pushed as events when a capture card comes or goes.

``DeviceRegistry.to_json()`` (served as ``GET /api/v1/devices`` and printed by ``devices --root DIR``)::

    {
      "capture_devices": [                      # USB capture cards / webcams: one per video capture node
        {"id": "usb-xhci-hcd.1-1",              # stable: udev by-id name when the device has a serial,
                                                #   else its USB port (bus info)
         "name": "USB Video",                   # card name ("USB Video: USB Video" shortened)
         "bus": "usb-xhci-hcd.1-1",             # VIDIOC_QUERYCAP bus_info
         "path": "/dev/video0",
         "stable_path": "/dev/v4l/by-id/usb-…-video-index0",   # or by-path, or null
         "driver": "uvcvideo",
         "formats": [{"fourcc": "MJPG", "description": "Motion-JPEG", "compressed": true,
                      "sizes": [{"width": 1920, "height": 1080, "fps": [30.0],
                                 "min_width": null, "min_height": null}]}],
         "controls": {"brightness": {"type": "int", "min": -64, "max": 64, "step": 1, "default": 0,
                                     "value": 0},           # v4l2-ctl --list-ctrls-menus (v4l2_controls.py)
                      "power_line_frequency": {"type": "menu", "min": 0, "max": 2, "default": 1, "value": 1,
                                               "menu": {"0": "Disabled", "1": "50 Hz", "2": "60 Hz"}},
                      "exposure_time_absolute": {"type": "int", "min": 1, "max": 5000, "step": 1,
                                                 "default": 156, "value": 156, "flags": ["inactive"]}}}
      ],
      "csi_cameras": [
        {"index": 0, "model": "imx708", "sensor_width": 4608, "sensor_height": 2592, "bit_depth": 10,
         "bayer": "RGGB", "id_path": "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a",
         "modes": [{"format": "SRGGB10_CSI2P", "width": 1536, "height": 864, "fps": 120.13,
                    "crop": {"x": 768, "y": 432, "width": 3072, "height": 1728}}],
         "controls": {"AfMode": {"min": 0, "max": 2}, "LensPosition": {"min": 0.0, "max": 32.0},
                      "AwbEnable": {"min": false, "max": true},     # rpicam-hello --list-cameras -v
                      "ScalerCrop": {"min": "(0, 0)/64x64", "max": "(0, 0)/4608x2592"}}}
      ],
      "audio_devices": [                        # ALSA capture devices (discovery/alsa.py)
        {"id": "alsa-usb-0000:01:00.0-1.3",     # stable: the USB port (else the ALSA card id); -devN
         "card": 1, "device": 0, "name": "MS2109",
         "alsa": "hw:CARD=MS2109,DEV=0",        # what ffmpeg -f alsa opens
         "usb_id": "534d:2109",                 # null for the Pi's own cards
         "bus_path": "usb-0000:01:00.0-1.3",    # null when not USB
         "video_device_id": "usb-0000:01:00.0-1.3",   # the capture device on the same USB device, or null
         "channels": [2], "rates": [48000]}     # what the card offers (USB stream0), null when unknown
      ],
      "hardware_encoder": {"h264": true, "device": "/dev/video11", "name": "bcm2835-codec-encode"},
                                                # h264 false on a Pi 5; null when no node list was readable
      "platform_nodes": [                       # the Pi's own codec/ISP/CSI nodes, never sources
        {"path": "/dev/video10", "name": "bcm2835-codec-decode", "bus": "platform:bcm2835-codec",
         "driver": "bcm2835-codec", "role": "h264_decoder"}
      ],
      "unavailable": {                          # why a list may be empty or incomplete; {} when all is well
        "csi_cameras": "rpicam-hello or libcamera-hello not found on PATH (…)",
        "formats": "v4l2-ctl not found on PATH (…)"     # also "capture_devices", "bus_info", "hotplug",
                                                        #   "controls" (the last read_controls failed),
                                                        #   "audio_devices" (/proc/asound unreadable)
      }
    }

Events on the :class:`~pi_stream_agent.events.EventBus`: ``device_added`` / ``device_removed`` with
``{"device": <capture device JSON>}`` when a capture card appears or disappears (compared by ``id``);
``audio_device_added`` / ``audio_device_removed`` with ``{"audio_device": <audio device JSON>}`` likewise
for ALSA capture devices (rescanned with the video nodes, also when ``/dev/snd`` changes). CSI cameras do
not hot-plug: they are read at start and on :meth:`DeviceRegistry.refresh`. A capture device's
controls are read with it at every scan (so a replugged card shows the values it came back with) and on
demand by :meth:`DeviceRegistry.read_controls` (after a change: one ``v4l2-ctl`` run for that device).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pi_stream_agent.discovery.alsa import AlsaScan, AudioDevice, scan_alsa
from pi_stream_agent.discovery.hotplug import HotplugWatcher
from pi_stream_agent.discovery.libcamera import DEFAULT_TOOLS, CsiCamera, CsiCameraReader, CsiListing
from pi_stream_agent.discovery.v4l2 import (
    CaptureDevice,
    HardwareEncoder,
    PlatformNode,
    ToolRunner,
    V4l2Scan,
    V4l2Scanner,
)
from pi_stream_agent.events import EventBus
from pi_stream_agent.rootfs import Root


class DeviceRegistry:
    """Current capture devices, CSI cameras and the Pi's encoder capability for one :class:`Root`.

    ``v4l2_ctl`` / ``csi_tools``: tool names looked up on PATH (or absolute paths); ``v4l2_ctl=None`` uses
    sysfs alone. Every scan runs in the default executor, so the event loop never waits on a subprocess.
    ``tool_runner`` answers for the tools instead of running them (the simulated Pi's devices).
    """

    def __init__(
        self,
        root: Root,
        bus: EventBus,
        *,
        v4l2_ctl: str | None = "v4l2-ctl",
        csi_tools: Sequence[str] = DEFAULT_TOOLS,
        tool_timeout_s: float = 5.0,
        csi_timeout_s: float = 10.0,
        hotplug: bool = True,
        debounce_s: float = 0.2,
        poll_interval_s: float = 2.0,
        use_inotify: bool = True,
        tool_runner: ToolRunner | None = None,
    ) -> None:
        self._bus = bus
        self._scanner = V4l2Scanner(root, v4l2_ctl, tool_timeout_s, runner=tool_runner)
        self._csi_reader = CsiCameraReader(csi_tools, csi_timeout_s, runner=tool_runner)
        self._watcher = (
            HotplugWatcher(
                root,
                self.rescan_capture,
                debounce_s=debounce_s,
                poll_interval_s=poll_interval_s,
                use_inotify=use_inotify,
            )
            if hotplug
            else None
        )
        self._lock = asyncio.Lock()
        self._scan = V4l2Scan()
        self._csi = CsiListing()
        self._alsa = AlsaScan()
        self._root = root
        self._controls_reason: str | None = None  # why the last on-demand controls read failed
        self._started = False

    # -- state -------------------------------------------------------------------------------------------

    @property
    def capture_devices(self) -> list[CaptureDevice]:
        return list(self._scan.capture_devices)

    @property
    def audio_devices(self) -> list[AudioDevice]:
        return list(self._alsa.devices)

    @property
    def csi_cameras(self) -> list[CsiCamera]:
        return list(self._csi.cameras)

    @property
    def hardware_encoder(self) -> HardwareEncoder:
        return self._scan.hardware_encoder

    @property
    def platform_nodes(self) -> list[PlatformNode]:
        return list(self._scan.platform_nodes)

    @property
    def hotplug_mode(self) -> str | None:
        """``"inotify"``, ``"poll"``, or None when not watching."""
        return self._watcher.mode if self._watcher else None

    def unavailable(self) -> dict[str, str]:
        hotplug = self._watcher.reason if self._watcher is not None and self._watcher.mode == "poll" else None
        reasons = _unavailable(self._scan, self._csi, hotplug, self._alsa)
        if self._controls_reason:
            reasons["controls"] = self._controls_reason
        return reasons

    def to_json(self) -> dict[str, Any]:
        return devices_json(self._scan, self._csi, self.unavailable(), self._alsa)

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Hot-plug watch first (so a card plugged during the first scan is not missed: its event just
        queues a rescan behind it), then the first scan (no events: nothing was known before) and the CSI
        listing."""
        if self._started:
            return
        self._started = True
        if self._watcher is not None:
            await self._watcher.start()
        loop = asyncio.get_running_loop()
        async with self._lock:
            self._scan = await loop.run_in_executor(None, self._scanner.scan)
            self._alsa = await loop.run_in_executor(None, self._scan_alsa, self._scan)
            self._csi = await loop.run_in_executor(None, self._csi_reader.read)

    def _scan_alsa(self, scan: V4l2Scan) -> AlsaScan:
        return scan_alsa(self._root, scan.capture_devices)

    async def stop(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()
        self._started = False

    async def refresh(self) -> None:
        """Rescan everything, CSI cameras included (the user asked); publishes capture-device changes."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            scan = await loop.run_in_executor(None, self._scanner.scan)
            alsa = await loop.run_in_executor(None, self._scan_alsa, scan)
            self._csi = await loop.run_in_executor(None, self._csi_reader.read)
            self._apply(scan, alsa)

    async def read_controls(self, device_id: str) -> dict[str, dict[str, Any]]:
        """Re-read one capture device's V4L2 controls (current values) and keep them in the device list.

        Raises :class:`KeyError` for an id not in the current list. When v4l2-ctl is missing or fails
        without printing a control, the controls last read are returned unchanged (the reason is in
        :meth:`unavailable` under ``"controls"``)."""
        device = next((d for d in self._scan.capture_devices if d.id == device_id), None)
        if device is None:
            raise KeyError(device_id)
        loop = asyncio.get_running_loop()
        async with self._lock:
            controls, reason = await loop.run_in_executor(None, self._scanner.read_controls, device.path)
        if reason is not None:
            self._controls_reason = reason
        elif controls is not None:
            self._controls_reason = None
        if controls is not None:
            device.controls = controls
        return device.controls

    async def rescan_capture(self) -> None:
        """Rescan V4L2 nodes and ALSA capture devices (the hot-plug path); publishes ``device_added``/
        ``device_removed`` and ``audio_device_added``/``audio_device_removed``."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            scan = await loop.run_in_executor(None, self._scanner.scan)
            self._apply(scan, await loop.run_in_executor(None, self._scan_alsa, scan))

    def _apply(self, scan: V4l2Scan, alsa: AlsaScan) -> None:
        self._apply_video(scan)
        before = {device.id: device for device in self._alsa.devices}
        after = {device.id: device for device in alsa.devices}
        self._alsa = alsa
        for device_id, audio in before.items():
            if device_id not in after:
                self._bus.publish("audio_device_removed", {"audio_device": audio.to_json()})
        for device_id, audio in after.items():
            if device_id not in before:
                self._bus.publish("audio_device_added", {"audio_device": audio.to_json()})

    def _apply_video(self, scan: V4l2Scan) -> None:
        before = {device.id: device for device in self._scan.capture_devices}
        after = {device.id: device for device in scan.capture_devices}
        self._scan = scan
        for device_id, device in before.items():
            if device_id not in after:
                self._bus.publish("device_removed", {"device": device.to_json()})
        for device_id, device in after.items():
            if device_id not in before:
                self._bus.publish("device_added", {"device": device.to_json()})


def _unavailable(
    scan: V4l2Scan, csi: CsiListing, hotplug_reason: str | None, alsa: AlsaScan | None = None
) -> dict[str, str]:
    reasons = dict(scan.reasons)
    if alsa is not None and alsa.reason:
        reasons["audio_devices"] = alsa.reason
    if csi.reason:
        reasons["csi_cameras"] = csi.reason
    if hotplug_reason:
        reasons["hotplug"] = hotplug_reason
    return reasons


def devices_json(
    scan: V4l2Scan, csi: CsiListing, unavailable: dict[str, str], alsa: AlsaScan | None = None
) -> dict[str, Any]:
    """The document described in this module's docstring."""
    return {
        "capture_devices": [device.to_json() for device in scan.capture_devices],
        "audio_devices": [device.to_json() for device in alsa.devices] if alsa is not None else [],
        "csi_cameras": [camera.to_json() for camera in csi.cameras],
        "hardware_encoder": scan.hardware_encoder.to_json(),
        "platform_nodes": [node.to_json() for node in scan.platform_nodes],
        "unavailable": unavailable,
    }


def describe_devices(
    root: Root,
    *,
    v4l2_ctl: str | None = "v4l2-ctl",
    csi_tools: Sequence[str] = DEFAULT_TOOLS,
    tool_timeout_s: float = 5.0,
    csi_timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One blocking scan as JSON, for the ``devices --root DIR`` command (no event loop, watch or events)."""
    scan = V4l2Scanner(root, v4l2_ctl, tool_timeout_s).scan()
    csi = CsiCameraReader(csi_tools, csi_timeout_s).read()
    alsa = scan_alsa(root, scan.capture_devices)
    return devices_json(scan, csi, _unavailable(scan, csi, None, alsa), alsa)
